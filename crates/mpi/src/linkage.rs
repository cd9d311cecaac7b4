//! Batch record linkage and deduplication: block, estimate, score, keep the likely pairs.
//!
//! Owns [`link_records`], the engine behind `concord mpi link|eval`. Does not read files, cluster
//! pairs into persons or decide links (the caller applies [`MatchConfig::decide`] or its own
//! threshold to the probabilities).

use crate::blocking;
use crate::compare::{self, Levels};
use crate::demographics::Demographics;
use crate::model::{self, MatchConfig, Model, TermFrequencies};
use crate::normalize::Normalized;

/// A scored candidate pair of a batch: indexes into the left (and right) slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    pub left: usize,
    pub right: usize,
    pub weight: f64,
    pub probability: f64,
    /// What the index would do with the pair: scores alone never link a pair the rules block
    /// (an NHS-number conflict, different NHS numbers, nothing to check a date of birth against).
    pub decision: crate::Decision,
}

/// Batch dedupe (`right = None`: pairs within `left`, `left < right` index) or linkage (pairs
/// `left × right`): blocks, estimates the model by EM unless one is given, scores (with term
/// frequencies from the batch), and returns pairs with probability >= `config.review_threshold`,
/// best first.
pub fn link_records(
    left: &[Demographics],
    right: Option<&[Demographics]>,
    model: Option<Model>,
    config: &MatchConfig,
) -> Vec<ScoredPair> {
    let left_n: Vec<Normalized> = left.iter().map(Normalized::new).collect();
    let right_n: Option<Vec<Normalized>> = right.map(|r| r.iter().map(Normalized::new).collect());
    let right_n = right_n.as_deref();
    let pairs = blocking::candidate_pairs(&left_n, right_n);
    let other = right_n.unwrap_or(&left_n);
    let levels: Vec<Levels> = pairs
        .iter()
        .map(|&(i, j)| compare::compare(&left_n[i as usize], &other[j as usize]))
        .collect();
    let model =
        model.unwrap_or_else(|| model::estimate_with_levels(&left_n, right_n, &pairs, &levels));
    let tf = TermFrequencies::from_records(left_n.iter().chain(right_n.unwrap_or_default()));
    let mut out: Vec<ScoredPair> = pairs
        .iter()
        .zip(&levels)
        .filter_map(|(&(i, j), lv)| {
            let c = model::score_levels(&model, Some(&tf), &left_n[i as usize], lv, config, false);
            (c.probability >= config.review_threshold || c.nhs_conflict).then_some(ScoredPair {
                left: i as usize,
                right: j as usize,
                weight: c.weight,
                probability: c.probability,
                decision: config.decide(&c),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then(b.weight.total_cmp(&a.weight))
            .then(a.left.cmp(&b.left))
            .then(a.right.cmp(&b.right))
    });
    out
}
