//! Blocking: which pairs are worth comparing at all.
//!
//! Owns the blocking keys of a normalised record and the candidate pairs of a batch. A record
//! falls in several blocks, each a 64-bit hash of a key kind and its value:
//!
//! - NHS number;
//! - date of birth with day and month in order (so a day/month transposition lands in the same block);
//! - phonetic first name and phonetic surname, as an unordered pair (so a given/family swap does too);
//! - full postcode with the first letter of the first name (a household, split by initial);
//! - phonetic surname with year of birth;
//! - the other identifier, and the phone number.
//!
//! Single keys that give huge blocks (a surname, a postcode district) are only ever used combined
//! with another field, and blocks larger than a cap are skipped: a record in an oversized block is
//! still reached through its other keys. Does not compare or score pairs.

use crate::normalize::Normalized;

/// Batch blocks larger than this (on either side of a linkage) generate no pairs.
pub const BATCH_BLOCK_CAP: usize = 400;
/// Index blocks larger than this are skipped by `find` (the probe's other keys still apply).
pub const INDEX_BLOCK_CAP: usize = 1_000;

const NHS: u8 = 1;
const BIRTH: u8 = 2;
const NAMES: u8 = 3;
const HOUSEHOLD: u8 = 4;
const SURNAME_YEAR: u8 = 5;
const OTHER_ID: u8 = 6;
const PHONE: u8 = 7;

/// FNV-1a over a kind byte and some bytes: a compact block key. A collision only merges two
/// blocks (more candidates), never loses one.
pub fn hash_key(kind: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&kind).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Finalise (splitmix) so that similar inputs spread over the hash map.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h
}

/// The blocking keys of one record, appended to `out` (no duplicates).
pub fn keys(n: &Normalized, out: &mut Vec<u64>) {
    let start = out.len();
    if let Some(nhs) = n.nhs {
        out.push(hash_key(NHS, &nhs.to_le_bytes()));
    }
    if let Some(d) = n.birth_date {
        let (lo, hi) = (d.month.min(d.day), d.month.max(d.day));
        let y = d.year.to_le_bytes();
        out.push(hash_key(BIRTH, &[y[0], y[1], lo, hi]));
    }
    if let (Some(g), Some(f)) = (n.given_soundex, n.family_soundex) {
        let (lo, hi) = (g.min(f), g.max(f));
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&lo.to_le_bytes());
        b[2..].copy_from_slice(&hi.to_le_bytes());
        out.push(hash_key(NAMES, &b));
    }
    if !n.postcode.is_empty() {
        let mut b = n.postcode.as_bytes().to_vec();
        b.push(b'/');
        b.extend(n.first_name().bytes().take(1));
        out.push(hash_key(HOUSEHOLD, &b));
    }
    if let (Some(f), Some(d)) = (n.family_soundex, n.birth_date) {
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&f.to_le_bytes());
        b[2..].copy_from_slice(&d.year.to_le_bytes());
        out.push(hash_key(SURNAME_YEAR, &b));
    }
    if !n.other_id.is_empty() {
        out.push(hash_key(OTHER_ID, n.other_id.as_bytes()));
    }
    if !n.phone.is_empty() {
        out.push(hash_key(PHONE, n.phone.as_bytes()));
    }
    let mine = &mut out[start..];
    mine.sort_unstable();
    let unique = {
        let mut w = 0;
        for r in 0..mine.len() {
            if r == 0 || mine[r] != mine[w - 1] {
                mine[w] = mine[r];
                w += 1;
            }
        }
        w
    };
    out.truncate(start + unique);
}

/// Candidate pairs of a batch: within `left` (pairs `(i, j)` with `i < j`) when `right` is
/// `None`, else across (`(i, j)` = left `i`, right `j`). Sorted, without duplicates.
pub fn candidate_pairs(left: &[Normalized], right: Option<&[Normalized]>) -> Vec<(u32, u32)> {
    use std::collections::HashMap;
    let mut blocks: HashMap<u64, (Vec<u32>, Vec<u32>)> = HashMap::new();
    let mut buf = Vec::new();
    for (i, n) in left.iter().enumerate() {
        buf.clear();
        keys(n, &mut buf);
        for k in &buf {
            blocks.entry(*k).or_default().0.push(i as u32);
        }
    }
    for (j, n) in right.unwrap_or_default().iter().enumerate() {
        buf.clear();
        keys(n, &mut buf);
        for k in &buf {
            if let Some(block) = blocks.get_mut(k) {
                block.1.push(j as u32);
            }
        }
    }
    let mut pairs: Vec<u64> = Vec::new();
    for (a, b) in blocks.values() {
        if right.is_some() {
            if b.is_empty() || a.len() > BATCH_BLOCK_CAP || b.len() > BATCH_BLOCK_CAP {
                continue;
            }
            for &i in a {
                pairs.extend(b.iter().map(|&j| (u64::from(i) << 32) | u64::from(j)));
            }
        } else {
            if a.len() < 2 || a.len() > BATCH_BLOCK_CAP {
                continue;
            }
            for (x, &i) in a.iter().enumerate() {
                pairs.extend(
                    a[x + 1..]
                        .iter()
                        .map(|&j| (u64::from(i) << 32) | u64::from(j)),
                );
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|p| ((p >> 32) as u32, p as u32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BirthDate, Demographics};

    #[test]
    fn swaps_share_blocks() {
        let a = Demographics {
            given_names: vec!["John".into()],
            family_name: Some("Smith".into()),
            birth_date: Some(BirthDate {
                year: 1980,
                month: 3,
                day: 7,
            }),
            ..Demographics::default()
        };
        let b = Demographics {
            given_names: vec!["Smith".into()],
            family_name: Some("John".into()),
            birth_date: Some(BirthDate {
                year: 1980,
                month: 7,
                day: 3,
            }),
            ..Demographics::default()
        };
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        keys(&Normalized::new(&a), &mut ka);
        keys(&Normalized::new(&b), &mut kb);
        assert_eq!(ka.len(), 3);
        assert_eq!(ka.iter().filter(|k| kb.contains(k)).count(), 2);
        let pairs = candidate_pairs(&[Normalized::new(&a), Normalized::new(&b)], None);
        assert_eq!(pairs, [(0, 1)]);
    }
}
