//! Field comparisons: which agreement level two normalised records reach on each field.
//!
//! Owns the comparison vocabulary (the fields, their levels from best to worst, in the order the
//! model keeps m and u probabilities) and the string measures behind it (Jaro-Winkler, "within
//! one edit"). Every comparison is symmetric by construction: string measures see their two
//! arguments in a canonical order. Does not weigh levels (see [`crate::model`]); a field missing
//! on either side gives [`MISSING`], which the model scores as weight 0.

use crate::nicknames;
use crate::normalize::{Normalized, uk_postcode};

/// The level a missing field gets: no evidence either way.
pub const MISSING: u8 = u8::MAX;

pub const NHS: usize = 0;
pub const GIVEN: usize = 1;
pub const FAMILY: usize = 2;
pub const BIRTH_DATE: usize = 3;
pub const SEX: usize = 4;
pub const POSTCODE: usize = 5;
pub const ADDRESS: usize = 6;
pub const PHONE: usize = 7;
pub const OTHER_ID: usize = 8;
/// How many fields are compared.
pub const FIELDS: usize = 9;

/// A compared field: its name in evidence and its levels, best first.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub levels: &'static [&'static str],
}

/// The fields and levels. The last level of every field is the plain disagreement.
pub const SPECS: [FieldSpec; FIELDS] = [
    FieldSpec {
        name: "nhs_number",
        levels: &["exact", "one-digit-off-or-transposed", "different"],
    },
    FieldSpec {
        name: "given_name",
        levels: &[
            "exact",
            "nickname",
            "close",
            "middle-name",
            "similar",
            "initial",
            "different",
        ],
    },
    FieldSpec {
        name: "family_name",
        levels: &["exact", "close", "double-barrelled", "similar", "different"],
    },
    FieldSpec {
        name: "birth_date",
        levels: &[
            "exact",
            "day-month-swapped",
            "one-digit-off",
            "two-of-three",
            "different",
        ],
    },
    FieldSpec {
        name: "sex",
        levels: &["same", "different"],
    },
    FieldSpec {
        name: "postcode",
        levels: &["exact", "sector", "one-edit", "district", "different"],
    },
    FieldSpec {
        name: "address",
        levels: &["exact", "close", "partial", "different"],
    },
    FieldSpec {
        name: "phone",
        levels: &["exact", "one-edit", "different"],
    },
    FieldSpec {
        name: "other_identifier",
        levels: &["exact", "one-edit", "different"],
    },
];

/// The label of a name level reached crosswise (given and family names swapped).
pub fn swapped_label(field: usize, level: u8) -> &'static str {
    match (field, level) {
        (_, EXACT) => "exact-swapped",
        (GIVEN, G_SIMILAR) | (FAMILY, F_SIMILAR) => "similar-swapped",
        _ => "close-swapped",
    }
}

pub const G_EXACT: u8 = 0;
pub const G_NICKNAME: u8 = 1;
pub const G_CLOSE: u8 = 2;
pub const G_MIDDLE: u8 = 3;
pub const G_SIMILAR: u8 = 4;
pub const G_INITIAL: u8 = 5;
pub const G_DIFFERENT: u8 = 6;
pub const F_EXACT: u8 = 0;
pub const F_CLOSE: u8 = 1;
pub const F_DOUBLE: u8 = 2;
pub const F_SIMILAR: u8 = 3;
pub const F_DIFFERENT: u8 = 4;
pub const D_EXACT: u8 = 0;
pub const D_SWAPPED: u8 = 1;
pub const D_ONE_DIGIT: u8 = 2;
pub const D_TWO_OF_THREE: u8 = 3;
pub const D_DIFFERENT: u8 = 4;
pub const P_EXACT: u8 = 0;
pub const P_SECTOR: u8 = 1;
pub const P_ONE_EDIT: u8 = 2;
pub const P_DISTRICT: u8 = 3;
pub const P_DIFFERENT: u8 = 4;
/// Level 0 of every field is exact agreement.
pub const EXACT: u8 = 0;

/// Jaro-Winkler from this up is a "close" name (the usual threshold for typing slips).
pub const CLOSE_JW: f64 = 0.92;
/// Jaro-Winkler from this up is a "similar" name.
pub const SIMILAR_JW: f64 = 0.80;

/// The levels of one pair, one per field ([`MISSING`] when either side lacks it), plus whether
/// the names matched crosswise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Levels {
    pub levels: [u8; FIELDS],
    pub names_swapped: bool,
}

/// Compares two normalised records field by field.
pub fn compare(a: &Normalized, b: &Normalized) -> Levels {
    let mut levels = [MISSING; FIELDS];
    levels[NHS] = match (a.nhs, b.nhs) {
        (Some(x), Some(y)) => nhs_level(x, y),
        _ => MISSING,
    };
    let (given, family, names_swapped) = names(a, b);
    levels[GIVEN] = given;
    levels[FAMILY] = family;
    levels[BIRTH_DATE] = match (a.birth_date, b.birth_date) {
        (Some(x), Some(y)) => birth_date_level(x, y),
        _ => MISSING,
    };
    levels[SEX] = match (a.sex, b.sex) {
        (Some(x), Some(y)) => u8::from(x != y),
        _ => MISSING,
    };
    levels[POSTCODE] =
        present(&a.postcode, &b.postcode).map_or(MISSING, |(x, y)| postcode_level(x, y));
    levels[ADDRESS] = present(&a.address, &b.address).map_or(MISSING, |(x, y)| address_level(x, y));
    levels[PHONE] = present(&a.phone, &b.phone).map_or(MISSING, |(x, y)| edit_level(x, y));
    levels[OTHER_ID] = present(&a.other_id, &b.other_id).map_or(MISSING, |(x, y)| edit_level(x, y));
    Levels {
        levels,
        names_swapped,
    }
}

fn present<'a>(a: &'a str, b: &'a str) -> Option<(&'a str, &'a str)> {
    (!a.is_empty() && !b.is_empty()).then_some((a, b))
}

/// Exact / within one edit / different, for identifiers.
fn edit_level(a: &str, b: &str) -> u8 {
    if a == b {
        0
    } else if within_one_edit(a.as_bytes(), b.as_bytes()) {
        1
    } else {
        2
    }
}

fn nhs_level(a: u64, b: u64) -> u8 {
    if a == b {
        return 0;
    }
    let digits = |n: u64| {
        let mut d = [0u8; 10];
        let mut n = n;
        for slot in d.iter_mut().rev() {
            *slot = (n % 10) as u8;
            n /= 10;
        }
        d
    };
    // Two valid NHS numbers can never be one digit or one transposition apart (modulus 11
    // catches both), so this level only fires if validation is ever relaxed; kept for the model.
    if within_one_edit(&digits(a), &digits(b)) {
        1
    } else {
        2
    }
}

/// Given and family levels, trying the crosswise pairing when the straight one disagrees.
fn names(a: &Normalized, b: &Normalized) -> (u8, u8, bool) {
    let given = given_level(a, b);
    let family = family_level(a, b);
    let agrees = |g: u8| g <= G_CLOSE;
    if given == MISSING || family == MISSING || (agrees(given) && family <= F_CLOSE) {
        return (given, family, false);
    }
    // Crosswise: a's first name against b's surname and the other way round. Both crosswise
    // levels are reported as the worse of the two, so the result does not depend on the order.
    let cross = single_name_level(a.first_name(), &b.family)
        .max(single_name_level(&a.family, b.first_name()));
    if cross <= G_SIMILAR && !agrees(given) && family >= F_SIMILAR {
        return match cross {
            G_EXACT => (G_EXACT, F_EXACT, true),
            G_SIMILAR => (G_SIMILAR, F_SIMILAR, true),
            _ => (G_CLOSE, F_CLOSE, true),
        };
    }
    (given, family, false)
}

/// Two single names compared with the given-name levels exact / nickname / close / similar /
/// different.
fn single_name_level(a: &str, b: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        G_DIFFERENT
    } else if a == b {
        G_EXACT
    } else if nicknames::are_alternatives(a, b) {
        G_NICKNAME
    } else if a.len() > 1 && b.len() > 1 {
        let jw = jaro_winkler(a, b);
        if jw >= CLOSE_JW {
            G_CLOSE
        } else if jw >= SIMILAR_JW {
            G_SIMILAR
        } else {
            G_DIFFERENT
        }
    } else {
        G_DIFFERENT
    }
}

fn given_level(a: &Normalized, b: &Normalized) -> u8 {
    let (x, y) = (a.first_name(), b.first_name());
    if x.is_empty() || y.is_empty() {
        return MISSING;
    }
    if x == y {
        return G_EXACT;
    }
    if nicknames::share_group(&a.given_groups, &b.given_groups) {
        return G_NICKNAME;
    }
    if x.chars().count() == 1 || y.chars().count() == 1 {
        return if x.chars().next() == y.chars().next() {
            G_INITIAL
        } else {
            G_DIFFERENT
        };
    }
    let jw = jaro_winkler(x, y);
    if jw >= CLOSE_JW {
        return G_CLOSE;
    }
    // Known by a middle name in one source: the first name of one is a later name of the other.
    let in_other = |first: &str, other: &Normalized| {
        first.chars().count() > 1 && other.other_given().any(|g| g == first)
    };
    if in_other(x, b) || in_other(y, a) {
        return G_MIDDLE;
    }
    if jw >= SIMILAR_JW || (a.given_soundex.is_some() && a.given_soundex == b.given_soundex) {
        return G_SIMILAR;
    }
    G_DIFFERENT
}

fn family_level(a: &Normalized, b: &Normalized) -> u8 {
    let (x, y) = (&*a.family, &*b.family);
    if x.is_empty() || y.is_empty() {
        return MISSING;
    }
    if x == y {
        return F_EXACT;
    }
    let jw = jaro_winkler(x, y);
    if jw >= CLOSE_JW {
        return F_CLOSE;
    }
    if double_barrelled(a, b) {
        return F_DOUBLE;
    }
    if jw >= SIMILAR_JW || (a.family_soundex.is_some() && a.family_soundex == b.family_soundex) {
        return F_SIMILAR;
    }
    F_DIFFERENT
}

/// Smith-Jones against Smith or Jones (or Jones-Smith, or smithjones written as one word):
/// a part of at least three letters in common, or one surname a prefix or suffix of the other.
fn double_barrelled(a: &Normalized, b: &Normalized) -> bool {
    let long = |p: &&str| p.len() >= 3;
    let shared = a
        .family_part_list()
        .filter(long)
        .any(|p| b.family_part_list().any(|q| q == p));
    if shared {
        return true;
    }
    let (x, y) = if a.family.len() <= b.family.len() {
        (&*a.family, &*b.family)
    } else {
        (&*b.family, &*a.family)
    };
    x.len() >= 3 && x.len() < y.len() && (y.starts_with(x) || y.ends_with(x))
}

fn birth_date_level(a: crate::BirthDate, b: crate::BirthDate) -> u8 {
    if a == b {
        return D_EXACT;
    }
    if a.year == b.year && a.day == b.month && a.month == b.day {
        return D_SWAPPED;
    }
    let text = |d: crate::BirthDate| {
        let mut s = [0u8; 8];
        let v = u32::from(d.year) * 10_000 + u32::from(d.month) * 100 + u32::from(d.day);
        let mut v = v;
        for slot in s.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        s
    };
    if within_one_edit(&text(a), &text(b)) {
        return D_ONE_DIGIT;
    }
    let same = u8::from(a.year == b.year) + u8::from(a.month == b.month) + u8::from(a.day == b.day);
    if same == 2 {
        D_TWO_OF_THREE
    } else {
        D_DIFFERENT
    }
}

/// UK codes: exact, same sector, one typing slip, same district, different. Other codes (FEBRL's
/// four digits, foreign codes): exact, one edit, different.
fn postcode_level(a: &str, b: &str) -> u8 {
    if a == b {
        return P_EXACT;
    }
    let uk = uk_postcode(a).zip(uk_postcode(b));
    if let Some(((_, sa), (_, sb))) = uk
        && sa == sb
    {
        return P_SECTOR;
    }
    if within_one_edit(a.as_bytes(), b.as_bytes()) {
        return P_ONE_EDIT;
    }
    if let Some(((da, _), (db, _))) = uk
        && da == db
    {
        return P_DISTRICT;
    }
    P_DIFFERENT
}

/// Address similarity: the share of words (Dice) that agree exactly, or closely for words of
/// four letters or more (typing slips in street names).
fn address_level(a: &str, b: &str) -> u8 {
    if a == b {
        return 0;
    }
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    let wa: Vec<&str> = a.split(' ').take(64).collect();
    let wb: Vec<&str> = b.split(' ').take(64).collect();
    let mut used: u64 = 0;
    let mut matched = 0usize;
    for x in &wa {
        let hit = wb.iter().enumerate().position(|(j, y)| {
            used & (1 << j) == 0
                && (x == y || (x.len() >= 4 && y.len() >= 4 && jaro_winkler(x, y) >= 0.9))
        });
        if let Some(j) = hit {
            used |= 1 << j;
            matched += 1;
        }
    }
    // Greedy matching in a's order is not symmetric in general; score both ways, keep the best.
    let mut used_b: u64 = 0;
    let mut matched_b = 0usize;
    for y in &wb {
        let hit = wa.iter().enumerate().position(|(i, x)| {
            used_b & (1 << i) == 0
                && (x == y || (x.len() >= 4 && y.len() >= 4 && jaro_winkler(x, y) >= 0.9))
        });
        if let Some(i) = hit {
            used_b |= 1 << i;
            matched_b += 1;
        }
    }
    let dice = 2.0 * matched.max(matched_b) as f64 / (wa.len() + wb.len()) as f64;
    if dice >= 0.8 {
        1
    } else if dice >= 0.5 {
        2
    } else {
        3
    }
}

/// Whether two byte strings are at most one edit apart (insert, delete, substitute, or swap of
/// two adjacent characters: optimal string alignment distance <= 1).
pub fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match b.len() - a.len() {
        0 => {
            let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) else {
                return true;
            };
            if a[i + 1..] == b[i + 1..] {
                return true; // one substitution
            }
            i + 1 < a.len() && a[i] == b[i + 1] && a[i + 1] == b[i] && a[i + 2..] == b[i + 2..]
        }
        1 => {
            let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len());
            a[i..] == b[i + 1..]
        }
        _ => false,
    }
}

/// Jaro-Winkler similarity (prefix scale 0.1, up to four characters, boost above 0.7), the same
/// numbers as `strsim::jaro_winkler`; symmetric because the arguments are put in order first.
/// ASCII strings up to 64 bytes take an allocation-free path (normalised names nearly always
/// do); anything else goes to `strsim`.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    if a.is_ascii() && b.is_ascii() && a.len() <= 64 && b.len() <= 64 {
        jaro_winkler_ascii(a.as_bytes(), b.as_bytes())
    } else {
        strsim::jaro_winkler(a, b)
    }
}

fn jaro_winkler_ascii(a: &[u8], b: &[u8]) -> f64 {
    let (la, lb) = (a.len(), b.len());
    if la == 0 && lb == 0 {
        return 1.0;
    }
    if la == 0 || lb == 0 {
        return 0.0;
    }
    let window = (la.max(lb) / 2).saturating_sub(1);
    let (mut fa, mut fb) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, &c) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(lb);
        for (j, &d) in b.iter().enumerate().take(hi).skip(lo) {
            if fb & (1 << j) == 0 && d == c {
                fa |= 1 << i;
                fb |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut j = 0usize;
    for (i, &c) in a.iter().enumerate() {
        if fa & (1 << i) == 0 {
            continue;
        }
        while fb & (1 << j) == 0 {
            j += 1;
        }
        if b[j] != c {
            transpositions += 1;
        }
        j += 1;
    }
    let m = matches as f64;
    let t = (transpositions / 2) as f64;
    let jaro = (m / la as f64 + m / lb as f64 + (m - t) / m) / 3.0;
    if jaro > 0.7 {
        let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
        jaro + 0.1 * prefix as f64 * (1.0 - jaro)
    } else {
        jaro
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Demographics;
    use proptest::prelude::*;

    fn norm(given: &str, family: &str) -> Normalized {
        Normalized::new(&Demographics {
            given_names: vec![given.into()],
            family_name: Some(family.into()),
            ..Demographics::default()
        })
    }

    #[test]
    fn one_edit() {
        assert!(within_one_edit(b"1234", b"1234"));
        assert!(within_one_edit(b"1234", b"1244"));
        assert!(within_one_edit(b"1234", b"1324"));
        assert!(within_one_edit(b"1234", b"124"));
        assert!(within_one_edit(b"", b"1"));
        assert!(!within_one_edit(b"1234", b"4321"));
        assert!(!within_one_edit(b"1234", b"12"));
        assert!(!within_one_edit(b"1234", b"1243x"));
    }

    #[test]
    fn name_levels() {
        let level = |a: (&str, &str), b: (&str, &str)| {
            let l = compare(&norm(a.0, a.1), &norm(b.0, b.1));
            (l.levels[GIVEN], l.levels[FAMILY], l.names_swapped)
        };
        assert_eq!(
            level(("Bill", "Smith"), ("William", "Smith")),
            (G_NICKNAME, F_EXACT, false)
        );
        assert_eq!(
            level(("Jon", "Smith"), ("John", "Smyth")),
            (G_NICKNAME, F_SIMILAR, false)
        );
        assert_eq!(
            level(("Jon", "Smith"), ("John", "Smiht")),
            (G_NICKNAME, F_CLOSE, false)
        );
        assert_eq!(level(("J", "Smith"), ("John", "Smith")).0, G_INITIAL);
        assert_eq!(
            level(("Jane", "Smith-Jones"), ("Jane", "Jones")).1,
            F_DOUBLE
        );
        assert_eq!(
            level(("Jane", "Smith"), ("Jane", "Smith Jones")).1,
            F_DOUBLE
        );
        assert_eq!(
            level(("Smith", "John"), ("John", "Smith")),
            (G_EXACT, F_EXACT, true)
        );
        assert_eq!(level(("Ann", "Lee"), ("Zed", "Moss")).0, G_DIFFERENT);
    }

    #[test]
    fn dates_and_postcodes() {
        let d = |y, m, dd| crate::BirthDate {
            year: y,
            month: m,
            day: dd,
        };
        assert_eq!(birth_date_level(d(1980, 3, 7), d(1980, 7, 3)), D_SWAPPED);
        assert_eq!(birth_date_level(d(1980, 3, 7), d(1981, 3, 7)), D_ONE_DIGIT);
        assert_eq!(birth_date_level(d(1980, 3, 7), d(1990, 3, 7)), D_ONE_DIGIT);
        assert_eq!(
            birth_date_level(d(1980, 3, 7), d(1975, 3, 7)),
            D_TWO_OF_THREE
        );
        assert_eq!(birth_date_level(d(1980, 3, 7), d(1975, 4, 7)), D_DIFFERENT);
        assert_eq!(postcode_level("LS62AB", "LS62AB"), P_EXACT);
        assert_eq!(postcode_level("LS62AB", "LS62QT"), P_SECTOR);
        assert_eq!(postcode_level("LS62AB", "LS63QT"), P_DISTRICT);
        assert_eq!(postcode_level("LS62AB", "LS52AB"), P_ONE_EDIT);
        assert_eq!(postcode_level("LS62AB", "M11AA"), P_DIFFERENT);
        assert_eq!(postcode_level("4223", "4232"), P_ONE_EDIT);
        assert_eq!(postcode_level("4223", "4560"), P_DIFFERENT);
    }

    proptest! {
        #[test]
        fn jaro_winkler_agrees_with_strsim(a in "[a-e]{0,12}", b in "[a-e]{0,12}") {
            let ours = jaro_winkler(&a, &b);
            let (x, y) = if a <= b { (&a, &b) } else { (&b, &a) };
            prop_assert!((ours - strsim::jaro_winkler(x, y)).abs() < 1e-12);
            prop_assert_eq!(ours, jaro_winkler(&b, &a));
        }

        #[test]
        fn one_edit_is_symmetric(a in "[ab]{0,6}", b in "[ab]{0,6}") {
            prop_assert_eq!(within_one_edit(a.as_bytes(), b.as_bytes()), within_one_edit(b.as_bytes(), a.as_bytes()));
            prop_assert_eq!(within_one_edit(a.as_bytes(), b.as_bytes()), strsim::osa_distance(&a, &b) <= 1);
        }
    }
}
