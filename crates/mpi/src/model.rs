//! The Fellegi-Sunter model: m and u probabilities per field and level, a prior, the weights they
//! give, term-frequency adjustment, and their estimation by EM.
//!
//! Owns scoring a compared pair ([`Comparison`]: weight, probability, grade, evidence), the rules
//! that keep the model from auto-linking what a person must look at (an NHS number shared by two
//! different-looking people; household agreement explained away when first name or date of birth
//! disagree), the decision thresholds ([`MatchConfig`]) and the EM estimation. Does not choose
//! which pairs to compare (see [`crate::blocking`]) or keep records (see [`crate::index`]).
//!
//! Estimation: u (agreement among non-matches) comes from the data without labels: for the exact
//! level of every field from value frequencies (the chance two random records share a value), for
//! the other levels from a deterministic sample of random pairs. m (agreement among matches) and
//! the share of matches among candidate pairs come from EM over the blocked candidate pairs with
//! u held fixed, as Splink does. Both start from [`Model::default_uk`], whose values also act as a
//! weak prior (pseudo-counts), so levels the data never shows keep sensible weights.

use std::collections::HashMap;

use crate::blocking::{self, hash_key};
use crate::compare::{
    self, BIRTH_DATE, D_DIFFERENT, EXACT, F_DOUBLE, FAMILY, FIELDS, G_DIFFERENT, G_MIDDLE, GIVEN,
    Levels, MISSING, NHS, OTHER_ID, SPECS,
};
use crate::normalize::Normalized;

/// FHIR match-grade of a candidate (`$match` search extension `match-grade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchGrade {
    Certain,
    Probable,
    Possible,
    CertainlyNot,
}

impl MatchGrade {
    /// The FHIR code: `certain`, `probable`, `possible`, `certainly-not`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Certain => "certain",
            Self::Probable => "probable",
            Self::Possible => "possible",
            Self::CertainlyNot => "certainly-not",
        }
    }
}

/// What one field contributed to a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldEvidence {
    pub field: &'static str,
    pub level: &'static str,
    pub weight: f64,
}

/// The outcome of comparing two records.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Total log2 likelihood-ratio weight, after term-frequency adjustment.
    pub weight: f64,
    /// Posterior match probability: the weight plus the prior log-odds through a logistic.
    pub probability: f64,
    pub grade: MatchGrade,
    /// Same valid NHS number but date of birth and name disagree: never auto-linked.
    pub nhs_conflict: bool,
    /// Why this pair may not be linked automatically however high it scores: two different valid
    /// NHS numbers (twins share everything else), or neither an NHS number nor a date of birth
    /// or strong identifier to agree on (a father and son of one name at one address).
    pub certain_blocked: Option<&'static str>,
    pub evidence: Vec<FieldEvidence>,
}

/// Decision thresholds, as posterior probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchConfig {
    /// From this probability up a pair is linked automatically (grade `certain`).
    pub link_threshold: f64,
    /// From this probability up a pair goes to a person for review (grade `probable`).
    pub review_threshold: f64,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            link_threshold: 0.99,
            review_threshold: 0.5,
        }
    }
}

/// What to do with a compared pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Link,
    Review,
    New,
}

/// Below the review threshold, pairs within this many bits of log-odds of it are `possible`.
pub const POSSIBLE_MARGIN_BITS: f64 = 6.0;

impl MatchConfig {
    /// Link, review or new. An NHS-number conflict always goes to review, whatever the score.
    pub fn decide(&self, c: &Comparison) -> Decision {
        let blocked = c.probability >= self.link_threshold && c.certain_blocked.is_some();
        if c.nhs_conflict || blocked {
            Decision::Review
        } else if c.probability >= self.link_threshold {
            Decision::Link
        } else if c.probability >= self.review_threshold {
            Decision::Review
        } else {
            Decision::New
        }
    }

    /// The grade of a probability under these thresholds; `blocked` (an NHS-number conflict or
    /// another reason the pair may not be linked automatically) caps it at `probable`.
    pub fn grade(&self, probability: f64, nhs_conflict: bool) -> MatchGrade {
        if probability >= self.link_threshold && !nhs_conflict {
            MatchGrade::Certain
        } else if probability >= self.review_threshold || nhs_conflict {
            MatchGrade::Probable
        } else if logit2(probability) >= logit2(self.review_threshold) - POSSIBLE_MARGIN_BITS {
            MatchGrade::Possible
        } else {
            MatchGrade::CertainlyNot
        }
    }
}

fn logit2(p: f64) -> f64 {
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    (p / (1.0 - p)).log2()
}

/// One row of a model's weight table, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelWeight {
    pub field: &'static str,
    pub level: &'static str,
    pub m: f64,
    pub u: f64,
    /// log2(m / u)
    pub weight: f64,
}

/// m and u probabilities per field comparison level, plus the prior: the probability that two
/// records drawn at random are the same person.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    m: Vec<Vec<f64>>,
    u: Vec<Vec<f64>>,
    prior: f64,
    /// log2(m/u), cached.
    weights: Vec<Vec<f64>>,
}

/// Per-level default (m, u) of [`Model::default_uk`], in [`SPECS`] order.
const DEFAULTS: [&[(f64, f64)]; FIELDS] = [
    // nhs_number: exact, one-digit-off-or-transposed, different
    &[(0.997, 1e-7), (0.002, 1e-8), (0.001, 0.999_999_89)],
    // given_name: exact, nickname, close, middle-name, similar, initial, different
    &[
        (0.85, 0.004),
        (0.04, 0.001),
        (0.04, 0.002),
        (0.01, 0.0005),
        (0.02, 0.02),
        (0.02, 0.002),
        (0.02, 0.9705),
    ],
    // family_name: exact, close, double-barrelled, similar, different
    &[
        (0.88, 0.001),
        (0.05, 0.002),
        (0.02, 0.0003),
        (0.02, 0.02),
        (0.03, 0.9767),
    ],
    // birth_date: exact, day-month-swapped, one-digit-off, two-of-three, different
    &[
        (0.93, 3e-5),
        (0.01, 1e-5),
        (0.03, 6e-4),
        (0.02, 0.0035),
        (0.01, 0.995_86),
    ],
    // sex: same, different
    &[(0.98, 0.5), (0.02, 0.5)],
    // postcode: exact, sector, one-edit, district, different
    &[
        (0.8, 5e-5),
        (0.03, 0.003),
        (0.02, 5e-4),
        (0.05, 0.03),
        (0.1, 0.966_45),
    ],
    // address: exact, close, partial, different
    &[(0.5, 2e-5), (0.25, 1e-4), (0.1, 0.005), (0.15, 0.994_88)],
    // phone: exact, one-edit, different
    &[(0.7, 1e-5), (0.05, 1e-4), (0.25, 0.999_89)],
    // other_identifier: exact, one-edit, different
    &[(0.9, 1e-5), (0.05, 1e-4), (0.05, 0.999_89)],
];

/// Default prior: about one in a million random pairs is the same person (a regional index).
const DEFAULT_PRIOR: f64 = 1e-6;
/// Weights are kept within this many bits either way, so no single field is absolute.
const MAX_FIELD_BITS: f64 = 30.0;

impl Model {
    /// Sensible starting weights for UK demographics, before EM.
    pub fn default_uk() -> Self {
        let m = DEFAULTS
            .iter()
            .map(|f| f.iter().map(|l| l.0).collect())
            .collect();
        let u = DEFAULTS
            .iter()
            .map(|f| f.iter().map(|l| l.1).collect())
            .collect();
        Self::from_parts(m, u, DEFAULT_PRIOR)
    }

    fn from_parts(m: Vec<Vec<f64>>, u: Vec<Vec<f64>>, prior: f64) -> Self {
        let weights = m
            .iter()
            .zip(&u)
            .map(|(mf, uf): (&Vec<f64>, &Vec<f64>)| {
                mf.iter()
                    .zip(uf)
                    .map(|(m, u)| {
                        (m.max(1e-12) / u.max(1e-12))
                            .log2()
                            .clamp(-MAX_FIELD_BITS, MAX_FIELD_BITS)
                    })
                    .collect()
            })
            .collect();
        Self {
            m,
            u,
            prior: prior.clamp(1e-15, 0.5),
            weights,
        }
    }

    /// EM (unsupervised) over the blocked candidate pairs of one file.
    pub fn estimate(records: &[Demographics]) -> Self {
        let n: Vec<Normalized> = records.iter().map(Normalized::new).collect();
        estimate_normalized(&n, None)
    }

    /// EM over the blocked candidate pairs across two files.
    pub fn estimate_linkage(left: &[Demographics], right: &[Demographics]) -> Self {
        let l: Vec<Normalized> = left.iter().map(Normalized::new).collect();
        let r: Vec<Normalized> = right.iter().map(Normalized::new).collect();
        estimate_normalized(&l, Some(&r))
    }

    /// The probability that two records drawn at random are the same person.
    pub fn prior(&self) -> f64 {
        self.prior
    }

    /// The weight table: m, u and log2(m/u) for every field and level.
    pub fn weights(&self) -> Vec<LevelWeight> {
        let mut out = Vec::new();
        for (f, spec) in SPECS.iter().enumerate() {
            for (l, level) in spec.levels.iter().enumerate() {
                out.push(LevelWeight {
                    field: spec.name,
                    level,
                    m: self.m[f][l],
                    u: self.u[f][l],
                    weight: self.weights[f][l],
                });
            }
        }
        out
    }

    /// The same model with another prior (for an index whose population differs from the
    /// estimation data's).
    pub fn with_prior(&self, prior: f64) -> Self {
        Self::from_parts(self.m.clone(), self.u.clone(), prior)
    }

    /// Compares two records with this model alone (no term-frequency adjustment).
    pub fn compare(&self, a: &Demographics, b: &Demographics, config: &MatchConfig) -> Comparison {
        score(self, None, &Normalized::new(a), &Normalized::new(b), config)
    }

    pub(crate) fn level_weight(&self, field: usize, level: u8) -> f64 {
        self.weights[field][level as usize]
    }

    pub(crate) fn prior_bits(&self) -> f64 {
        logit2(self.prior)
    }
}

use crate::demographics::Demographics;

/// Counts of first names and surnames, for term-frequency adjustment.
#[derive(Debug, Clone, Default)]
pub struct TermFrequencies {
    given: HashMap<u64, u32>,
    family: HashMap<u64, u32>,
    given_total: u64,
    family_total: u64,
}

/// Pseudo-records of the shrinkage towards the average agreement rate: with few records the
/// adjustment stays near zero; from tens of thousands on the counts speak.
const TF_PSEUDO: f64 = 1_000.0;
/// The adjustment is kept within these bits (down for common names, up for rare ones).
const TF_MIN_BITS: f64 = -8.0;
const TF_MAX_BITS: f64 = 6.0;

impl TermFrequencies {
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Normalized>) -> Self {
        let mut tf = Self::default();
        for r in records {
            tf.add(r);
        }
        tf
    }

    fn given_key(n: &Normalized) -> Option<u64> {
        let f = n.first_name();
        (!f.is_empty()).then(|| hash_key(b'g', f.as_bytes()))
    }

    fn family_key(n: &Normalized) -> Option<u64> {
        (!n.family.is_empty()).then(|| hash_key(b'f', n.family.as_bytes()))
    }

    pub fn add(&mut self, n: &Normalized) {
        if let Some(k) = Self::given_key(n) {
            *self.given.entry(k).or_default() += 1;
            self.given_total += 1;
        }
        if let Some(k) = Self::family_key(n) {
            *self.family.entry(k).or_default() += 1;
            self.family_total += 1;
        }
    }

    pub fn remove(&mut self, n: &Normalized) {
        fn dec(map: &mut HashMap<u64, u32>, total: &mut u64, k: u64) {
            if let Some(c) = map.get_mut(&k) {
                *c -= 1;
                *total -= 1;
                if *c == 0 {
                    map.remove(&k);
                }
            }
        }
        if let Some(k) = Self::given_key(n) {
            dec(&mut self.given, &mut self.given_total, k);
        }
        if let Some(k) = Self::family_key(n) {
            dec(&mut self.family, &mut self.family_total, k);
        }
    }

    /// Bits to add to an exact agreement on `field` (given or family name) with this value:
    /// log2(u_exact / frequency of the value), the frequency shrunk towards u_exact.
    fn adjustment(&self, field: usize, n: &Normalized, u_exact: f64) -> f64 {
        let (map, total, key) = if field == GIVEN {
            (&self.given, self.given_total, Self::given_key(n))
        } else {
            (&self.family, self.family_total, Self::family_key(n))
        };
        let Some(key) = key else { return 0.0 };
        let count = f64::from(map.get(&key).copied().unwrap_or(0));
        let freq = (count + TF_PSEUDO * u_exact) / (total as f64 + TF_PSEUDO);
        (u_exact / freq).log2().clamp(TF_MIN_BITS, TF_MAX_BITS)
    }
}

/// Fields whose agreement a household shares: discounted when first name or date of birth
/// disagree outright (twins, parent and child, spouses).
const HOUSEHOLD_FIELDS: [usize; 4] = [
    compare::FAMILY,
    compare::POSTCODE,
    compare::ADDRESS,
    compare::PHONE,
];

/// An identifier level worth this many bits exempts a pair from the household discount.
const STRONG_ID_BITS: f64 = 10.0;

/// Scores a compared pair.
pub(crate) fn score_levels(
    model: &Model,
    tf: Option<&TermFrequencies>,
    a: &Normalized,
    levels: &Levels,
    config: &MatchConfig,
    with_evidence: bool,
) -> Comparison {
    let lv = &levels.levels;
    let mut evidence = Vec::new();
    let mut total = 0.0;
    let mut household = 0.0;
    for (f, &l) in lv.iter().enumerate() {
        if l == MISSING {
            continue;
        }
        let mut w = model.level_weight(f, l);
        let name_field = f == GIVEN || f == FAMILY;
        if name_field
            && l == EXACT
            && !levels.names_swapped
            && let Some(tf) = tf
        {
            w += tf.adjustment(f, a, model.u[f][0]);
        }
        if HOUSEHOLD_FIELDS.contains(&f) {
            household += w.max(0.0);
        }
        total += w;
        if with_evidence {
            let level = if name_field && levels.names_swapped {
                compare::swapped_label(f, l)
            } else {
                SPECS[f].levels[l as usize]
            };
            evidence.push(FieldEvidence {
                field: SPECS[f].name,
                level,
                weight: w,
            });
        }
    }
    // An identifier agreeing strongly (NHS number, or the other identifier where the data make
    // its agreement worth STRONG_ID_BITS) says "same person", not "same household".
    let strong_id = lv[NHS] == EXACT
        || (lv[OTHER_ID] != MISSING
            && model.level_weight(OTHER_ID, lv[OTHER_ID]) >= STRONG_ID_BITS);
    let critical = lv[GIVEN] == G_DIFFERENT || lv[BIRTH_DATE] == D_DIFFERENT;
    if critical && !strong_id && household > 0.0 {
        total -= household;
        if with_evidence {
            evidence.push(FieldEvidence {
                field: "household",
                level: "discounted-first-name-or-birth-date-differ",
                weight: -household,
            });
        }
    }
    let name_differs = (lv[GIVEN] != MISSING && lv[GIVEN] > G_MIDDLE)
        || (lv[FAMILY] != MISSING && lv[FAMILY] > F_DOUBLE);
    let nhs_conflict = lv[NHS] == EXACT && lv[BIRTH_DATE] == D_DIFFERENT && name_differs;
    let certain_blocked = if lv[NHS] != MISSING && lv[NHS] != EXACT {
        Some("different-nhs-numbers")
    } else if lv[BIRTH_DATE] == MISSING && !strong_id {
        Some("no-birth-date-or-identifier")
    } else {
        None
    };
    let probability = probability(total + model.prior_bits());
    Comparison {
        weight: total,
        probability,
        grade: config.grade(probability, nhs_conflict || certain_blocked.is_some()),
        nhs_conflict,
        certain_blocked,
        evidence,
    }
}

fn probability(log2_odds: f64) -> f64 {
    1.0 / (1.0 + (-log2_odds).exp2())
}

/// Compares and scores two normalised records, with evidence.
pub(crate) fn score(
    model: &Model,
    tf: Option<&TermFrequencies>,
    a: &Normalized,
    b: &Normalized,
    config: &MatchConfig,
) -> Comparison {
    let levels = compare::compare(a, b);
    score_levels(model, tf, a, &levels, config, true)
}

/// A tiny deterministic generator (splitmix64) for sampling random pairs: no OS entropy, so
/// the same data always gives the same model.
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Random pairs sampled to estimate u.
const U_SAMPLE_PAIRS: usize = 100_000;
/// Candidate pairs EM looks at, at most (a deterministic subsample beyond).
const EM_MAX_PAIRS: usize = 4_000_000;
const EM_ITERATIONS: usize = 40;
/// Pseudo-count (in pairs) of the default m values in EM's M step.
const M_PSEUDO: f64 = 5.0;
/// Below this many expected matches EM has found nothing to learn from: keep default m.
const EM_MIN_MATCHES: f64 = 10.0;

/// The value a field's exact level compares, hashed, for value-frequency u estimates.
fn exact_value(n: &Normalized, field: usize) -> Option<u64> {
    let text = |t: &str| (!t.is_empty()).then(|| hash_key(field as u8, t.as_bytes()));
    match field {
        compare::NHS => n.nhs,
        compare::GIVEN => text(n.first_name()),
        compare::FAMILY => text(&n.family),
        compare::BIRTH_DATE => n
            .birth_date
            .map(|d| u64::from(d.year) * 10_000 + u64::from(d.month) * 100 + u64::from(d.day)),
        compare::SEX => n.sex.map(|s| s as u64),
        compare::POSTCODE => text(&n.postcode),
        compare::ADDRESS => text(&n.address),
        compare::PHONE => text(&n.phone),
        compare::OTHER_ID => text(&n.other_id),
        _ => None,
    }
}

/// Pairs agreeing exactly on `field` and pairs with the field present on both sides (unordered
/// pairs for a dedupe), from value counts; `None` when too few records carry the field.
fn exact_agreement(
    left: &[Normalized],
    right: Option<&[Normalized]>,
    field: usize,
) -> Option<(f64, f64)> {
    let count = |rs: &[Normalized]| {
        let mut c: HashMap<u64, u64> = HashMap::new();
        for r in rs {
            if let Some(v) = exact_value(r, field) {
                *c.entry(v).or_default() += 1;
            }
        }
        c
    };
    let cl = count(left);
    let nl: u64 = cl.values().sum();
    let (agree, pairs) = match right {
        None => (
            cl.values().map(|c| c * (c - 1) / 2).sum::<u64>() as f64,
            (nl * nl.saturating_sub(1) / 2) as f64,
        ),
        Some(r) => {
            let cr = count(r);
            let nr: u64 = cr.values().sum();
            (
                cl.iter()
                    .map(|(v, c)| c * cr.get(v).copied().unwrap_or(0))
                    .sum::<u64>() as f64,
                (nl * nr) as f64,
            )
        }
    };
    (pairs >= 100.0).then_some((agree, pairs))
}

/// Estimates u from value frequencies and random pairs, then m and the prior by EM.
pub(crate) fn estimate_normalized(left: &[Normalized], right: Option<&[Normalized]>) -> Model {
    let pairs = blocking::candidate_pairs(left, right);
    let other = right.unwrap_or(left);
    let levels: Vec<Levels> = pairs
        .iter()
        .map(|&(i, j)| compare::compare(&left[i as usize], &other[j as usize]))
        .collect();
    estimate_with_levels(left, right, &pairs, &levels)
}

/// A deterministic sample of random pairs, compared: the population EM mixes the candidates
/// into, and the source of u.
struct Sample {
    /// Per field and level, how many sampled pairs reached it.
    counts: Vec<Vec<f64>>,
    /// Patterns of sampled pairs that blocking did not make candidates, with counts.
    outside: HashMap<[u8; FIELDS], f64>,
    outside_total: f64,
}

fn sample_pairs(
    left: &[Normalized],
    right: Option<&[Normalized]>,
    candidates: &[(u32, u32)],
) -> Sample {
    let other = right.unwrap_or(left);
    let mut sample = Sample {
        counts: SPECS.iter().map(|s| vec![0.0; s.levels.len()]).collect(),
        outside: HashMap::new(),
        outside_total: 0.0,
    };
    if left.is_empty() || other.is_empty() || (right.is_none() && left.len() < 2) {
        return sample;
    }
    let total = match right {
        None => left.len() * (left.len() - 1) / 2,
        Some(_) => left.len() * other.len(),
    };
    let mut visit = |pair: (u32, u32)| {
        let lv = compare::compare(&left[pair.0 as usize], &other[pair.1 as usize]);
        for (f, &l) in lv.levels.iter().enumerate() {
            if l != MISSING {
                sample.counts[f][l as usize] += 1.0;
            }
        }
        if candidates.binary_search(&pair).is_err() {
            *sample.outside.entry(lv.levels).or_default() += 1.0;
            sample.outside_total += 1.0;
        }
    };
    if total <= U_SAMPLE_PAIRS {
        // Small batches: every pair, no sampling.
        for i in 0..left.len() {
            let start = if right.is_none() { i + 1 } else { 0 };
            for j in start..other.len() {
                visit((i as u32, j as u32));
            }
        }
        return sample;
    }
    let mut rng = SplitMix::new(0x00c0_4c0d_2024);
    for _ in 0..U_SAMPLE_PAIRS {
        let i = rng.below(left.len()) as u32;
        let j = rng.below(other.len()) as u32;
        visit(match right {
            None if i == j => continue,
            None => (i.min(j), i.max(j)),
            Some(_) => (i, j),
        });
    }
    sample
}

/// As [`estimate_normalized`], with the candidate pairs (sorted) already compared.
///
/// EM runs over the whole population of pairs, not the candidates alone: candidates count once
/// each, and the pairs blocking left out are represented by the sampled pairs outside the
/// candidates, each standing for its share of them. Over candidates alone EM would take the
/// non-matches that blocking forced to agree (same date of birth, same postcode) for matches.
pub(crate) fn estimate_with_levels(
    left: &[Normalized],
    right: Option<&[Normalized]>,
    pairs: &[(u32, u32)],
    candidates: &[Levels],
) -> Model {
    let default = Model::default_uk();
    let total_pairs = match right {
        None => left.len() as f64 * (left.len() as f64 - 1.0) / 2.0,
        Some(r) => left.len() as f64 * r.len() as f64,
    };
    let agreement: Vec<Option<(f64, f64)>> = (0..FIELDS)
        .map(|f| exact_agreement(left, right, f))
        .collect();
    let sample = sample_pairs(left, right, pairs);
    let mut u = estimate_u(&default, &sample, &agreement, None);
    // Distinct patterns with counts: EM runs over thousands of patterns, not millions of pairs.
    let step = candidates.len().div_ceil(EM_MAX_PAIRS).max(1);
    let mut patterns: HashMap<[u8; FIELDS], f64> = HashMap::new();
    for l in candidates.iter().step_by(step) {
        *patterns.entry(l.levels).or_default() += step as f64;
    }
    let outside_pairs = (total_pairs - candidates.len() as f64).max(0.0);
    if sample.outside_total > 0.0 {
        let scale = outside_pairs / sample.outside_total;
        for (p, c) in &sample.outside {
            *patterns.entry(*p).or_default() += c * scale;
        }
    }
    let patterns: Vec<([u8; FIELDS], f64)> = patterns.into_iter().collect();
    let mut fit = em(&patterns, &default, &u);
    // Value frequencies count the matches' own agreement too (a person recorded twice shares
    // every value): take the expected matching pairs out and fit again.
    if fit.expected >= EM_MIN_MATCHES {
        u = estimate_u(&default, &sample, &agreement, Some(&fit));
        fit = em(&patterns, &default, &u);
    }
    if fit.expected < EM_MIN_MATCHES || candidates.is_empty() {
        return Model::from_parts(default.m, u, default.prior);
    }
    Model::from_parts(fit.m, u, fit.expected / total_pairs.max(1.0))
}

/// What EM found: m, the expected number of matching pairs, and how many of them agree exactly
/// on each field.
struct Fit {
    m: Vec<Vec<f64>>,
    expected: f64,
    exact_matches: Vec<f64>,
}

/// EM over level patterns with u fixed: m and the share of matches.
fn em(patterns: &[([u8; FIELDS], f64)], default: &Model, u: &[Vec<f64>]) -> Fit {
    let mut m = default.m.clone();
    let all: f64 = patterns.iter().map(|(_, c)| c).sum();
    let mut lambda: f64 = (1e-4_f64).max(10.0 / all.max(1.0)).min(0.1);
    let mut expected = 0.0;
    let mut exact_matches = vec![0.0; FIELDS];
    for _ in 0..EM_ITERATIONS {
        let mut counts: Vec<Vec<f64>> = m.iter().map(|f| vec![0.0; f.len()]).collect();
        let mut matched = 0.0;
        for (p, c) in patterns {
            // log-space likelihood ratio, so long patterns do not underflow
            let mut log_ratio = (lambda / (1.0 - lambda)).ln();
            for (f, &l) in p.iter().enumerate() {
                if l != MISSING {
                    let l = l as usize;
                    log_ratio += (m[f][l].max(1e-300) / u[f][l].max(1e-300)).ln();
                }
            }
            let r = 1.0 / (1.0 + (-log_ratio).exp());
            matched += c * r;
            for (f, &l) in p.iter().enumerate() {
                if l != MISSING {
                    counts[f][l as usize] += c * r;
                }
            }
        }
        let new_lambda = (matched / all.max(1.0)).clamp(1e-15, 0.999);
        for f in 0..FIELDS {
            let present: f64 = counts[f].iter().sum();
            for l in 0..m[f].len() {
                m[f][l] = (counts[f][l] + M_PSEUDO * default.m[f][l]) / (present + M_PSEUDO);
            }
            exact_matches[f] = counts[f][0];
        }
        expected = matched;
        let done = (new_lambda - lambda).abs() <= 1e-4 * lambda;
        lambda = new_lambda;
        if done {
            break;
        }
    }
    Fit {
        m,
        expected,
        exact_matches,
    }
}

/// u per field and level: exact levels from value frequencies (less the matches EM expects, once
/// there is a fit), the other levels from the random sample.
fn estimate_u(
    default: &Model,
    sample: &Sample,
    agreement: &[Option<(f64, f64)>],
    fit: Option<&Fit>,
) -> Vec<Vec<f64>> {
    let mut u = default.u.clone();
    for f in 0..FIELDS {
        let sampled: f64 = sample.counts[f].iter().sum();
        let Some((agree, pairs)) = agreement[f] else {
            continue;
        };
        let (agree, pairs) = match fit {
            Some(fit) => (
                agree - fit.exact_matches[f].min(agree),
                (pairs - fit.expected).max(1.0),
            ),
            None => (agree, pairs),
        };
        let exact = (agree.max(0.5) / pairs).min(0.5);
        if sampled < 1_000.0 {
            // Too few pairs carry the field: keep the default shape, rescaled to the exact rate.
            let rest: f64 = default.u[f][1..].iter().sum();
            u[f][0] = exact;
            for l in 1..u[f].len() {
                u[f][l] = default.u[f][l] / rest * (1.0 - exact);
            }
            continue;
        }
        // Levels the sample never saw get half an observation: "rarer than one in the sample".
        let rest: Vec<f64> = sample.counts[f][1..].iter().map(|c| c.max(0.5)).collect();
        let rest_total: f64 = rest.iter().sum();
        u[f][0] = exact;
        for (l, c) in rest.iter().enumerate() {
            u[f][l + 1] = c / rest_total * (1.0 - exact);
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_and_decisions() {
        let config = MatchConfig::default();
        assert_eq!(config.grade(0.999, false), MatchGrade::Certain);
        assert_eq!(config.grade(0.999, true), MatchGrade::Probable);
        assert_eq!(config.grade(0.6, false), MatchGrade::Probable);
        assert_eq!(config.grade(0.1, false), MatchGrade::Possible);
        assert_eq!(config.grade(1e-6, false), MatchGrade::CertainlyNot);
        assert_eq!(MatchGrade::CertainlyNot.code(), "certainly-not");
    }

    #[test]
    fn default_weights_point_the_right_way() {
        let model = Model::default_uk();
        for (f, spec) in SPECS.iter().enumerate() {
            let w = &model.weights[f];
            assert!(w[0] > 0.0, "{} exact", spec.name);
            assert!(*w.last().unwrap() < 0.0, "{} different", spec.name);
            assert_eq!(w.len(), spec.levels.len());
            let m: f64 = model.m[f].iter().sum();
            let u: f64 = model.u[f].iter().sum();
            assert!(
                (m - 1.0).abs() < 1e-6 && (u - 1.0).abs() < 1e-6,
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn splitmix_is_deterministic() {
        let mut a = SplitMix::new(7);
        let mut b = SplitMix::new(7);
        for _ in 0..10 {
            assert_eq!(a.below(10), b.below(10));
        }
    }
}
