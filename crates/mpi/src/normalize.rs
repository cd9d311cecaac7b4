//! Normalised demographics: the form of a record the comparisons and blocking keys work on.
//!
//! Owns folding text (accents, case, punctuation), dropping titles and suffixes from names,
//! splitting double-barrelled surnames, compacting postcodes (and telling UK-shaped ones apart),
//! abbreviating address words, and precomputing per record what every comparison would otherwise
//! recompute (phonetic codes, nickname groups). Does not compare or weigh anything. Never fails:
//! text that normalises to nothing is a missing field.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::demographics::{BirthDate, Demographics, Sex};
use crate::{nicknames, phonetic};

/// One record, normalised once (when it enters an index or a batch) and compared many times.
/// Strings are boxed slices (no spare capacity); an empty string means missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    pub nhs: Option<u64>,
    /// Given names, lower-case, space-separated; the first token is the first name.
    pub given: Box<str>,
    /// The surname with its parts run together (`smithjones` for Smith-Jones).
    pub family: Box<str>,
    /// The surname's parts, space-separated, when there is more than one (else empty).
    pub family_parts: Box<str>,
    pub given_groups: [u16; 3],
    pub given_soundex: Option<u16>,
    pub family_soundex: Option<u16>,
    pub birth_date: Option<BirthDate>,
    /// Male or female; other and unknown are not evidence and are left out.
    pub sex: Option<Sex>,
    /// Upper-case letters and digits only (`LS62AB`).
    pub postcode: Box<str>,
    /// Address words, lower-case, abbreviated (`22 high st leeds`).
    pub address: Box<str>,
    /// Digits only, UK international prefix turned back into a leading 0.
    pub phone: Box<str>,
    /// Upper-case letters and digits only.
    pub other_id: Box<str>,
}

impl Normalized {
    pub fn new(d: &Demographics) -> Self {
        let given_tokens: Vec<String> = d
            .given_names
            .iter()
            .flat_map(|g| name_tokens(g))
            .filter(|t| !is_title_or_suffix(t))
            .collect();
        let family_tokens: Vec<String> = d
            .family_name
            .as_deref()
            .map(name_tokens)
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !is_suffix(t))
            .collect();
        let given = given_tokens.join(" ");
        let family = family_tokens.concat();
        let first = given_tokens.first().map(String::as_str).unwrap_or("");
        Self {
            nhs: d.nhs_number.map(|n| n.as_u64()),
            given_groups: nicknames::groups(first),
            given_soundex: phonetic::soundex(first),
            family_soundex: phonetic::soundex(&family),
            family_parts: if family_tokens.len() > 1 {
                family_tokens.join(" ").into()
            } else {
                Box::default()
            },
            given: given.into(),
            family: family.into(),
            birth_date: d.birth_date,
            sex: d.sex.filter(|s| matches!(s, Sex::Male | Sex::Female)),
            postcode: compact_upper(d.postcode.as_deref().unwrap_or("")).into(),
            address: address_words(d.address.as_deref().unwrap_or("")).into(),
            phone: phone_digits(d.phone.as_deref().unwrap_or("")).into(),
            other_id: compact_upper(d.other_identifier.as_deref().unwrap_or("")).into(),
        }
    }

    /// The first given name, `""` when there is none.
    pub fn first_name(&self) -> &str {
        self.given.split(' ').next().unwrap_or("")
    }

    /// Given names after the first.
    pub fn other_given(&self) -> impl Iterator<Item = &str> {
        self.given.split(' ').skip(1)
    }

    /// The surname's parts (just the surname when it has one part).
    pub fn family_part_list(&self) -> impl Iterator<Item = &str> {
        let parts: &str = if self.family_parts.is_empty() {
            &self.family
        } else {
            &self.family_parts
        };
        parts.split(' ').filter(|p| !p.is_empty())
    }

    /// Bytes of heap this record holds, for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.given.len()
            + self.family.len()
            + self.family_parts.len()
            + self.postcode.len()
            + self.address.len()
            + self.phone.len()
            + self.other_id.len()
    }
}

/// Accent-folded lower-case text: `Zoë` → `zoe`, `ß` stays a letter.
fn fold(text: &str) -> impl Iterator<Item = char> + '_ {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
}

/// The words of a name: letters only, apostrophes and dots dropped (`O'Brien` → `obrien`),
/// anything else (hyphens, spaces, commas, digits) separates words.
pub fn name_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in fold(text) {
        if c.is_alphabetic() {
            current.push(c);
        } else if matches!(c, '\'' | '’' | '‘' | '`' | '.') {
            // joined: O'Brien, St.John stay one word
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn is_suffix(t: &str) -> bool {
    matches!(
        t,
        "jr" | "jnr" | "junior" | "sr" | "snr" | "senior" | "ii" | "iii" | "iv"
    )
}

fn is_title_or_suffix(t: &str) -> bool {
    is_suffix(t)
        || matches!(
            t,
            "mr" | "mrs" | "ms" | "miss" | "mx" | "dr" | "prof" | "sir" | "dame" | "rev" | "revd"
        )
}

/// Letters and digits only, upper-case.
pub fn compact_upper(text: &str) -> String {
    fold(text)
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Digits only; `+44 113 ...` / `0044 113 ...` become `0113...`.
pub fn phone_digits(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("0044").or_else(|| {
        (text.trim_start().starts_with('+') && digits.starts_with("44")).then(|| &digits[2..])
    }) {
        let rest = rest.strip_prefix('0').unwrap_or(rest);
        return format!("0{rest}");
    }
    digits
}

/// Address words: lower-case letters and digits, common street words abbreviated the Royal Mail
/// way so `22 High Street` and `22 high st.` agree.
pub fn address_words(text: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(abbreviate(word));
        word.clear();
    };
    for c in fold(text) {
        if c.is_alphanumeric() {
            word.push(c);
        } else if c != '\'' && c != '.' {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn abbreviate(word: &str) -> &str {
    match word {
        "street" => "st",
        "road" => "rd",
        "avenue" => "ave",
        "av" => "ave",
        "lane" => "ln",
        "drive" => "dr",
        "place" => "pl",
        "crescent" => "cres",
        "court" => "ct",
        "close" => "cl",
        "terrace" => "tce",
        "terr" => "tce",
        "gardens" => "gdns",
        "grove" => "gr",
        "square" => "sq",
        "mount" => "mt",
        "north" => "n",
        "south" => "s",
        "east" => "e",
        "west" => "w",
        "apartment" | "apt" => "flat",
        "saint" => "st",
        "circuit" => "cct",
        "parade" => "pde",
        "highway" => "hwy",
        _ => word,
    }
}

/// A postcode split the UK way (`LS62AB` → district `LS6`, sector `LS6 2`), or `None` when the
/// compact code is not UK-shaped (FEBRL's four digits, a foreign code, a typo).
pub fn uk_postcode(compact: &str) -> Option<(&str, &str)> {
    let b = compact.as_bytes();
    if !(5..=7).contains(&b.len()) || !b[0].is_ascii_uppercase() {
        return None;
    }
    let n = b.len();
    if !(b[n - 3].is_ascii_digit()
        && b[n - 2].is_ascii_uppercase()
        && b[n - 1].is_ascii_uppercase())
    {
        return None;
    }
    let outward = &compact[..n - 3];
    if !outward.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((outward, &compact[..n - 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_tokens("O'Brien"), ["obrien"]);
        assert_eq!(name_tokens(" Smith-Jones "), ["smith", "jones"]);
        assert_eq!(name_tokens("Zoë  Ånne"), ["zoe", "anne"]);
        assert_eq!(name_tokens("--"), Vec::<String>::new());
        let d = Demographics {
            given_names: vec!["Mr".into(), "John Paul".into()],
            family_name: Some("Smith-Jones Jnr".into()),
            ..Demographics::default()
        };
        let n = Normalized::new(&d);
        assert_eq!(&*n.given, "john paul");
        assert_eq!(n.first_name(), "john");
        assert_eq!(n.other_given().collect::<Vec<_>>(), ["paul"]);
        assert_eq!(&*n.family, "smithjones");
        assert_eq!(n.family_part_list().collect::<Vec<_>>(), ["smith", "jones"]);
    }

    #[test]
    fn postcodes_and_addresses() {
        assert_eq!(compact_upper(" ls6 2ab"), "LS62AB");
        assert_eq!(uk_postcode("LS62AB"), Some(("LS6", "LS62")));
        assert_eq!(uk_postcode("SW1A1AA"), Some(("SW1A", "SW1A1")));
        assert_eq!(uk_postcode("4223"), None);
        assert_eq!(uk_postcode("ABCDE"), None);
        assert_eq!(
            address_words("22, High Street  Flat 2"),
            "22 high st flat 2"
        );
        assert_eq!(phone_digits("+44 (0)113 496 0000"), "01134960000");
        assert_eq!(phone_digits("0113 496 0000"), "01134960000");
    }

    #[test]
    fn empty_record_normalises_to_nothing() {
        let n = Normalized::new(&Demographics::default());
        assert_eq!(n.first_name(), "");
        assert_eq!(n.family_part_list().count(), 0);
        assert!(n.postcode.is_empty() && n.given_soundex.is_none());
    }
}
