//! De-duplication across sources: the same fact reported by two organisations is shown once.
//!
//! Owns the match keys (shared identifier; or shared code, clinical day and, for Observation,
//! value) and the rule for which copy is kept and what it records about the others. Does not:
//! read the keys out of elements (see [`crate::facts`]), tag resources (see
//! [`crate::provenance`]) or order the result (see [`crate::merge`]).

use std::collections::{BTreeSet, HashMap};

use crate::facts::{clinical_date, identifier_keys, instant_key, read_fact};
use crate::provenance::{Accepted, SourceTags, add_also_reported_by, reporters, set_extension};
use crate::resource::{RawText, Resource};

/// A tagged resource with its match keys and its clinical date, read once when
/// its source is prepared.
pub(crate) struct Keyed {
    accepted: Accepted,
    keys: Vec<String>,
    /// What it is in words, when reading its keys settled them ([`crate::facts::Fact::label`]).
    label: Option<String>,
    date_ms: Option<i64>,
    /// Whether its extensions are exactly its source's own tags (see `provenance::tag`).
    only_own_tags: bool,
}

impl Keyed {
    pub(crate) fn new(accepted: Accepted, only_own_tags: bool) -> Keyed {
        let date = clinical_date(&accepted.resource_type, &accepted.resource);
        let date_ms = date.and_then(instant_key);
        let (keys, label) = match_keys(&accepted.resource_type, &accepted.resource, date);
        Keyed {
            accepted,
            keys,
            label,
            date_ms,
            only_own_tags,
        }
    }
}

/// A resource that survived de-duplication so far.
pub(crate) struct Kept {
    pub resource: Resource,
    pub resource_type: String,
    pub id: String,
    /// When its clinical date starts, in milliseconds since the epoch (UTC).
    pub date_ms: Option<i64>,
    /// Position of its source in the input.
    pub source_index: usize,
    /// The sources whose copies it has absorbed; at most one copy per source, so two distinct
    /// resources of one source are never folded into one.
    absorbed: BTreeSet<usize>,
    /// Whether its extensions are still exactly its source's own tags.
    only_own_tags: bool,
    /// Whether its origin is its own source's organisation: it named no origin when it arrived,
    /// as data a region hub forwards does.
    pub own_origin: bool,
    /// What it is in words, when reading its keys settled them ([`crate::facts::Fact::label`]).
    pub label: Option<String>,
}

/// The kept resources and an index from match key to the kept resources that carry it.
#[derive(Default)]
pub(crate) struct Dedup {
    kept: Vec<Kept>,
    /// Hashed with foldhash, not the standard library's SipHash: the keys are long and looked up
    /// several times for every resource of a view, and are not chosen by an attacker who sees
    /// the hashes (the seed is random per process).
    index: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
    /// Each source's provenance tags, by position in the input.
    sources: Vec<SourceTags>,
    /// The credits made so far, one per pair of sources.
    credits: Vec<Credit>,
}

/// The `meta.extension` text of a kept copy from one source that also credits another
/// ([`SourceTags::extension_crediting`]), made once per pair of sources: checking the text as
/// JSON cost more than the rest of crediting a copy.
struct Credit {
    /// The kept copy's source and the crediting source, by position in the input.
    sources: (usize, usize),
    extension: Option<RawText>,
}

/// The match keys of a resource (whose clinical date is `date`), qualified by its type so only
/// resources of one type can match, and its [`crate::facts::Fact::label`]. Patients have none:
/// each source's demographics are kept so disagreement stays visible.
fn match_keys(
    resource_type: &str,
    resource: &Resource,
    date: Option<&str>,
) -> (Vec<String>, Option<String>) {
    if resource_type == "Patient" {
        return (Vec::new(), None);
    }
    // Both kinds of key come qualified by the type and the kind, each written once.
    let fact = read_fact(resource_type, resource, date);
    let mut keys = identifier_keys(resource_type, resource);
    keys.extend(fact.keys);
    (keys, fact.label)
}

impl Dedup {
    /// Starts the next source's resources; returns its position, for [`Dedup::offer`].
    pub(crate) fn add_source(&mut self, tags: SourceTags) -> usize {
        self.sources.push(tags);
        self.sources.len() - 1
    }

    /// Offers one tagged resource from the source at `source_index`. Sources must be offered in
    /// input order, so the kept copy of a fact is always the one from the earliest source.
    ///
    /// A resource that matches a kept resource of another source (one that has not yet absorbed
    /// a copy from this source) is dropped, and the kept one gains an `also-reported-by` for
    /// each organisation the dropped copy names. When several kept resources match, the first
    /// kept wins, so the choice does not depend on hash order. The dropped copy's keys are added
    /// to the kept one, so a third source that shares a key only with the dropped copy still
    /// matches.
    pub(crate) fn offer(&mut self, source_index: usize, keyed: Keyed) {
        let Keyed {
            accepted:
                Accepted {
                    resource,
                    resource_type,
                    id,
                },
            keys,
            label,
            date_ms,
            only_own_tags,
        } = keyed;
        let target = keys
            .iter()
            .filter_map(|k| self.index.get(k))
            .flatten()
            .copied()
            .filter(|&i| {
                let kept = &self.kept[i];
                kept.source_index != source_index && !kept.absorbed.contains(&source_index)
            })
            .min();
        let at = match target {
            Some(i) => {
                let kept = &mut self.kept[i];
                kept.absorbed.insert(source_index);
                let reporter = &self.sources[source_index];
                if only_own_tags && kept.only_own_tags {
                    // Both carry their own source's tags alone: written from the sources' tags.
                    let sources = (kept.source_index, source_index);
                    let at = match self.credits.iter().position(|c| c.sources == sources) {
                        Some(at) => at,
                        None => {
                            self.credits.push(Credit {
                                sources,
                                extension: self.sources[sources.0].extension_crediting(reporter),
                            });
                            self.credits.len() - 1
                        }
                    };
                    if let Some(text) = &self.credits[at].extension {
                        set_extension(&mut kept.resource, text.clone());
                    }
                } else if only_own_tags {
                    add_also_reported_by(&mut kept.resource, reporter.organization());
                } else {
                    for organization in reporters(&resource) {
                        add_also_reported_by(&mut kept.resource, &organization);
                    }
                }
                // Its extensions may now name another organisation besides its source's.
                kept.only_own_tags = false;
                i
            }
            None => {
                self.kept.push(Kept {
                    resource,
                    resource_type,
                    id,
                    date_ms,
                    source_index,
                    absorbed: BTreeSet::new(),
                    only_own_tags,
                    own_origin: only_own_tags,
                    label,
                });
                self.kept.len() - 1
            }
        };
        for key in keys {
            let holders = self.index.entry(key).or_default();
            if !holders.contains(&at) {
                holders.push(at);
            }
        }
    }

    pub(crate) fn into_kept(self) -> Vec<Kept> {
        self.kept
    }
}
