//! The hash chain over the audit trail: each entry's hash covers the previous entry's hash, its own
//! sequence number and its body, so editing, removing or reordering an entry breaks the chain at
//! that point.
//!
//! Owns the hash encoding and verification. Does not store entries or decide who may verify. The
//! chain alone cannot show that the newest entries were cut off the end; the last sequence number
//! has to be kept elsewhere (exported, or compared with a known count) for that.

use std::fmt;

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A fixed prefix, so a chain hash can never collide with a hash of the same bytes made for
/// another purpose.
const DOMAIN: &[u8] = b"concord-audit-chain-v1\0";

/// SHA-256 (lower-case hex) over the previous hash, the sequence number and the body. Each
/// variable-length part is preceded by its length as eight big-endian bytes and the number is eight
/// big-endian bytes, so no two different inputs encode to the same bytes.
pub fn chain_hash(prev_hash: &str, seq: u64, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update((prev_hash.len() as u64).to_be_bytes());
    hasher.update(prev_hash.as_bytes());
    hasher.update(seq.to_be_bytes());
    hasher.update((body.len() as u64).to_be_bytes());
    hasher.update(body.as_bytes());
    hex::encode(hasher.finalize())
}

/// One entry of the trail as verification sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    pub body: String,
}

impl ChainedEntry {
    /// The entry that follows `prev_hash` at `seq`, with its hash computed.
    pub fn new(prev_hash: &str, seq: u64, body: String) -> ChainedEntry {
        ChainedEntry {
            seq,
            prev_hash: prev_hash.to_string(),
            hash: chain_hash(prev_hash, seq, &body),
            body,
        }
    }
}

/// The first place a trail is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// The entry's hash does not recompute from its contents: it was edited.
    Edited { seq: u64 },
    /// Entries are missing: after `after_seq` (0 at the start) the next one is `found_seq`.
    Missing { after_seq: u64, found_seq: u64 },
    /// The entry does not link to the one before it (its `prev_hash` is not that entry's hash):
    /// the entry, or the one before it, was replaced.
    BadLink { seq: u64 },
    /// An entry's number does not follow the one before it (repeated or out of order).
    OutOfOrder { after_seq: u64, found_seq: u64 },
}

impl ChainBreak {
    /// The sequence number of the entry where the break was found.
    pub fn seq(&self) -> u64 {
        match self {
            ChainBreak::Edited { seq } | ChainBreak::BadLink { seq } => *seq,
            ChainBreak::Missing { found_seq, .. } | ChainBreak::OutOfOrder { found_seq, .. } => {
                *found_seq
            }
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::Edited { seq } => {
                write!(
                    f,
                    "entry {seq} was edited: its hash does not match its contents"
                )
            }
            ChainBreak::Missing {
                after_seq,
                found_seq,
            } if found_seq - after_seq == 2 => write!(
                f,
                "entry {} is missing: entry {found_seq} follows entry {after_seq}",
                after_seq + 1
            ),
            ChainBreak::Missing {
                after_seq,
                found_seq,
            } => write!(
                f,
                "entries {} to {} are missing: entry {found_seq} follows entry {after_seq}",
                after_seq + 1,
                found_seq - 1
            ),
            ChainBreak::BadLink { seq } => write!(
                f,
                "entry {seq} does not link to the entry before it: one of them was replaced"
            ),
            ChainBreak::OutOfOrder {
                after_seq,
                found_seq,
            } => write!(
                f,
                "entry {found_seq} is out of order after entry {after_seq}"
            ),
        }
    }
}

impl std::error::Error for ChainBreak {}

/// Verifies a trail one entry at a time, so a caller can feed it page by page.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    last_seq: u64,
    last_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier::new()
    }
}

impl ChainVerifier {
    /// A verifier at the start of a trail.
    pub fn new() -> ChainVerifier {
        ChainVerifier {
            last_seq: 0,
            last_hash: GENESIS.to_string(),
        }
    }

    /// Checks the next entry: its number follows, it links to the previous hash, and its hash
    /// recomputes. The link is checked before the hash so an edited body reads as `Edited` and a
    /// replaced link as `BadLink`.
    pub fn push(&mut self, entry: &ChainedEntry) -> Result<(), ChainBreak> {
        let expected = self.last_seq + 1;
        if entry.seq > expected {
            return Err(ChainBreak::Missing {
                after_seq: self.last_seq,
                found_seq: entry.seq,
            });
        }
        if entry.seq < expected {
            return Err(ChainBreak::OutOfOrder {
                after_seq: self.last_seq,
                found_seq: entry.seq,
            });
        }
        if entry.prev_hash != self.last_hash {
            return Err(ChainBreak::BadLink { seq: entry.seq });
        }
        if chain_hash(&entry.prev_hash, entry.seq, &entry.body) != entry.hash {
            return Err(ChainBreak::Edited { seq: entry.seq });
        }
        self.last_seq = entry.seq;
        self.last_hash.clone_from(&entry.hash);
        Ok(())
    }

    /// How many entries have been verified (the last good sequence number).
    pub fn checked(&self) -> u64 {
        self.last_seq
    }

    /// The hash of the last verified entry ([`GENESIS`] before any).
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }
}

/// Verifies entries in sequence order from [`GENESIS`]: each entry's hash recomputes, links to the
/// previous one, and numbers run 1, 2, 3 ... Returns how many entries were checked, or the first
/// break.
pub fn verify(entries: impl IntoIterator<Item = ChainedEntry>) -> Result<u64, ChainBreak> {
    let mut verifier = ChainVerifier::new();
    for entry in entries {
        verifier.push(&entry)?;
    }
    Ok(verifier.checked())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain(bodies: &[&str]) -> Vec<ChainedEntry> {
        let mut prev = GENESIS.to_string();
        let mut out = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let entry = ChainedEntry::new(&prev, i as u64 + 1, (*body).to_string());
            prev.clone_from(&entry.hash);
            out.push(entry);
        }
        out
    }

    #[test]
    fn the_hash_is_sha256_over_an_unambiguous_encoding() {
        let h = chain_hash(GENESIS, 1, "{}");
        assert_eq!(h.len(), 64);
        assert!(
            h.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        // Moving bytes between the parts changes the hash.
        assert_ne!(chain_hash("ab", 1, "c"), chain_hash("a", 1, "bc"));
        assert_ne!(chain_hash(GENESIS, 1, "x"), chain_hash(GENESIS, 2, "x"));
        // Pinned, so a change of encoding (which would break every stored trail) is noticed.
        insta::assert_snapshot!(chain_hash(GENESIS, 1, "{}"));
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(chain(&["a", "b", "c"])), Ok(3));
        assert_eq!(verify(Vec::new()), Ok(0));
    }

    #[test]
    fn an_edited_body_is_found() {
        let mut entries = chain(&["a", "b", "c"]);
        entries[1].body = "B".into();
        assert_eq!(verify(entries), Err(ChainBreak::Edited { seq: 2 }));
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let mut entries = chain(&["a", "b", "c"]);
        entries[1] = ChainedEntry::new(&entries[0].hash, 2, "B".into());
        assert_eq!(verify(entries), Err(ChainBreak::BadLink { seq: 3 }));
    }

    #[test]
    fn a_removed_entry_is_found() {
        let mut entries = chain(&["a", "b", "c", "d"]);
        entries.remove(1);
        let err = verify(entries).unwrap_err();
        assert_eq!(
            err,
            ChainBreak::Missing {
                after_seq: 1,
                found_seq: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "entry 2 is missing: entry 3 follows entry 1"
        );
        let mut entries = chain(&["a", "b", "c"]);
        entries.remove(0);
        assert_eq!(
            verify(entries),
            Err(ChainBreak::Missing {
                after_seq: 0,
                found_seq: 2
            })
        );
    }

    #[test]
    fn a_repeated_entry_is_found() {
        let mut entries = chain(&["a", "b"]);
        entries.push(entries[1].clone());
        assert_eq!(
            verify(entries),
            Err(ChainBreak::OutOfOrder {
                after_seq: 2,
                found_seq: 2
            })
        );
    }

    proptest! {
        /// Any single change to any entry of any chain is found at that entry or the next.
        #[test]
        fn any_tampering_is_found(
            bodies in proptest::collection::vec("[ -~]{0,20}", 1..12),
            pick in any::<prop::sample::Index>(),
            what in 0u8..4,
        ) {
            let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
            let mut entries = chain(&refs);
            let i = pick.index(entries.len());
            let seq = entries[i].seq;
            match what {
                0 => entries[i].body.push('!'),
                1 => entries[i].hash = chain_hash("x", seq, "y"),
                2 => entries[i].prev_hash = chain_hash("x", seq, "y"),
                _ => { entries.remove(i); }
            }
            let result = verify(entries.clone());
            if what == 3 && i == entries.len() {
                // Cutting off the newest entry is the one change the chain cannot show.
                prop_assert_eq!(result, Ok(entries.len() as u64));
            } else {
                let err = result.unwrap_err();
                prop_assert!(err.seq() == seq || err.seq() == seq + 1, "{err:?} at {seq}");
            }
        }
    }
}
