//! The in-memory match index: records by key, their blocks, and term frequencies.
//!
//! Owns [`MatchIndex`]: insert, replace and remove records, find the best candidates for a probe
//! through the blocks it falls in, and re-estimate the model over the records held. Each record is
//! normalised once, on insert; blocks map a 64-bit key to the record slots in it (a single slot
//! inline, so the many one-record blocks cost no allocation). Does not persist anything or decide
//! links (the caller applies [`MatchConfig::decide`]).

use std::collections::HashMap;

use crate::blocking::{self, INDEX_BLOCK_CAP};
use crate::demographics::Demographics;
use crate::model::{self, Comparison, MatchConfig, MatchGrade, Model, TermFrequencies};
use crate::normalize::Normalized;

/// A record found for a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub key: String,
    pub comparison: Comparison,
}

/// The slots of one block.
#[derive(Debug, Clone)]
enum Postings {
    One(u32),
    Many(Vec<u32>),
}

impl Postings {
    fn as_slice(&self) -> &[u32] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    key: Box<str>,
    record: Demographics,
    norm: Normalized,
}

/// Candidates scored by one `find`, at most (the largest blocks are skipped before this).
const MAX_CANDIDATES: usize = 20_000;

/// In-memory index of records for matching.
#[derive(Debug, Clone)]
pub struct MatchIndex {
    model: Model,
    config: MatchConfig,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_key: HashMap<Box<str>, u32>,
    blocks: HashMap<u64, Postings>,
    tf: TermFrequencies,
    len: usize,
}

impl MatchIndex {
    pub fn new(model: Model, config: MatchConfig) -> Self {
        Self {
            model,
            config,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            blocks: HashMap::new(),
            tf: TermFrequencies::default(),
            len: 0,
        }
    }

    /// Adds a record, replacing any record with the same key.
    pub fn insert(&mut self, key: &str, record: Demographics) {
        self.remove(key);
        let norm = Normalized::new(&record);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        let mut keys = Vec::new();
        blocking::keys(&norm, &mut keys);
        for k in keys {
            match self.blocks.entry(k) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(Postings::One(slot));
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let p = o.get_mut();
                    match p {
                        Postings::One(first) => *p = Postings::Many(vec![*first, slot]),
                        Postings::Many(v) => v.push(slot),
                    }
                }
            }
        }
        self.tf.add(&norm);
        self.by_key.insert(key.into(), slot);
        self.slots[slot as usize] = Some(Entry {
            key: key.into(),
            record,
            norm,
        });
        self.len += 1;
    }

    /// Removes the record with this key, returning it.
    pub fn remove(&mut self, key: &str) -> Option<Demographics> {
        let slot = self.by_key.remove(key)?;
        let entry = self.slots[slot as usize].take()?;
        let mut keys = Vec::new();
        blocking::keys(&entry.norm, &mut keys);
        for k in keys {
            if let std::collections::hash_map::Entry::Occupied(mut o) = self.blocks.entry(k) {
                let empty = match o.get_mut() {
                    Postings::One(s) => *s == slot,
                    Postings::Many(v) => {
                        v.retain(|s| *s != slot);
                        if v.len() == 1 {
                            let only = v[0];
                            *o.get_mut() = Postings::One(only);
                        }
                        false
                    }
                };
                if empty {
                    o.remove();
                }
            }
        }
        self.tf.remove(&entry.norm);
        self.free.push(slot);
        self.len -= 1;
        Some(entry.record)
    }

    pub fn get(&self, key: &str) -> Option<&Demographics> {
        let slot = *self.by_key.get(key)?;
        self.slots[slot as usize].as_ref().map(|e| &e.record)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// The model in use.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Compares two records with the index's model and term frequencies. Symmetric.
    pub fn compare(&self, a: &Demographics, b: &Demographics) -> Comparison {
        model::score(
            &self.model,
            Some(&self.tf),
            &Normalized::new(a),
            &Normalized::new(b),
            &self.config,
        )
    }

    /// Candidates from the blocks the probe falls in, scored, best first, at most `limit`,
    /// only those with grade better than `CertainlyNot` unless `include_unlikely`.
    pub fn find(
        &self,
        probe: &Demographics,
        limit: usize,
        include_unlikely: bool,
    ) -> Vec<Candidate> {
        let norm = Normalized::new(probe);
        let mut keys = Vec::new();
        blocking::keys(&norm, &mut keys);
        let mut slots: Vec<u32> = Vec::new();
        for k in &keys {
            if let Some(p) = self.blocks.get(k) {
                let s = p.as_slice();
                if s.len() <= INDEX_BLOCK_CAP && slots.len() + s.len() <= MAX_CANDIDATES {
                    slots.extend_from_slice(s);
                }
            }
        }
        slots.sort_unstable();
        slots.dedup();
        let mut scored: Vec<(Comparison, &Entry)> = slots
            .iter()
            .filter_map(|&s| self.slots[s as usize].as_ref())
            .map(|e| {
                let c = model::score(&self.model, Some(&self.tf), &norm, &e.norm, &self.config);
                (c, e)
            })
            .filter(|(c, _)| include_unlikely || c.grade != MatchGrade::CertainlyNot)
            .collect();
        scored.sort_by(|a, b| {
            b.0.probability
                .total_cmp(&a.0.probability)
                .then(b.0.weight.total_cmp(&a.0.weight))
                .then(a.1.key.cmp(&b.1.key))
        });
        scored
            .into_iter()
            .take(limit)
            .map(|(comparison, e)| Candidate {
                key: e.key.to_string(),
                comparison,
            })
            .collect()
    }

    /// Re-estimates the model by EM over the records held, replacing it.
    pub fn reestimate(&mut self) {
        let records: Vec<Normalized> = self
            .slots
            .iter()
            .flatten()
            .map(|e| e.norm.clone())
            .collect();
        self.model = model::estimate_normalized(&records, None);
    }

    /// Approximate heap bytes held per record by normalised fields (for memory reports).
    pub fn normalized_heap_bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|e| e.norm.heap_bytes())
            .sum()
    }
}
