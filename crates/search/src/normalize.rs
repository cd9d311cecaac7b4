//! String normalisation for `string` search parameters.
//!
//! Owns: the one function both index extraction and query parsing use, so that an indexed value
//! and a searched value compare equal exactly when the spec says a string search should match
//! (case- and accent-insensitive); and the codes `phonetic` parameters are indexed and searched
//! by (Soundex, the one the master patient index blocks on, from `concord-mpi`).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Decomposes (NFD), drops combining marks (accents), lower-cases, and collapses runs of
/// whitespace into one space, trimming both ends: `"  Émile\tZOLA "` becomes `"emile zola"`.
pub fn normalize_string(s: &str) -> String {
    if s.is_ascii() {
        normalize_ascii(s)
    } else {
        normalize_unicode(s)
    }
}

/// The sounds of a name, for `phonetic` parameters: the American Soundex code (`S530`) of the
/// whole name, and of each of its words when it has several (`Mc Donald`, `Smith-Jones`), so a
/// search for the whole or for one word finds it. Accents are dropped first; a word that does not
/// start with a Latin letter has no code. Codes are upper case and normalised strings lower
/// case, so a code never equals an indexed string by accident.
pub fn phonetic_codes(name: &str) -> Vec<String> {
    let normalized = normalize_string(name);
    let mut codes = Vec::new();
    let mut push = |word: &str| {
        let word = word.trim_start_matches(|c: char| !c.is_ascii_lowercase());
        if let Some(code) = concord_mpi::phonetic::soundex(word) {
            let code = concord_mpi::phonetic::soundex_text(code);
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
    };
    push(&normalized);
    let words: Vec<&str> = normalized
        .split(|c: char| !c.is_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > 1 {
        words.into_iter().for_each(&mut push);
    }
    codes
}

/// The code a `phonetic` search value is compared by: the sound of the whole value (the first
/// of [`phonetic_codes`]). `None` when it has none (it then matches nothing).
pub fn phonetic_code(value: &str) -> Option<String> {
    phonetic_codes(value).into_iter().next()
}

/// What [`normalize_unicode`] does, for text that is all ASCII (most names, codes' displays and
/// addresses), where decomposition changes nothing and there are no marks to drop: profiles of
/// import showed the decomposition as a third of index extraction's time.
fn normalize_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
    }
    out
}

fn normalize_unicode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        // Lower-casing may yield several chars (e.g. for 'İ'); all are kept.
        out.extend(c.to_lowercase());
    }
    // Lower-casing can re-introduce combining marks ('İ' lower-cases to 'i' plus a dot above).
    if out.chars().any(is_combining_mark) {
        out.chars().filter(|c| !is_combining_mark(*c)).collect()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{normalize_string, normalize_unicode, phonetic_code, phonetic_codes};
    use proptest::prelude::*;

    proptest! {
        /// The ASCII path is only a shortcut: it must agree with the general one, whitespace
        /// control characters included.
        #[test]
        fn ascii_text_normalises_as_any_text(s in "[ -~\t\n\r\x0b\x0c]{0,40}") {
            prop_assert_eq!(normalize_string(&s), normalize_unicode(&s));
        }
    }

    #[test]
    fn folds_case_accents_and_whitespace() {
        assert_eq!(normalize_string("  Émile\tZOLA "), "emile zola");
        assert_eq!(normalize_string("Chalmers"), "chalmers");
        assert_eq!(
            normalize_string("Müller-Lüdenscheidt"),
            "muller-ludenscheidt"
        );
        assert_eq!(normalize_string("İstanbul"), "istanbul");
        assert_eq!(normalize_string("a \n\n b"), "a b");
        assert_eq!(normalize_string(""), "");
        assert_eq!(normalize_string("   "), "");
    }

    #[test]
    fn names_that_sound_alike_share_a_code() {
        for (a, b) in [
            ("Smith", "Smyth"),
            ("Katherine", "Kathryn"),
            ("Stephen", "Steven"),
            ("Müller", "Muller"),
            ("O'Brien", "Obrien"),
        ] {
            assert_eq!(phonetic_code(a), phonetic_code(b), "{a} and {b}");
        }
        assert_ne!(phonetic_code("Smith"), phonetic_code("Jones"));
        assert_ne!(
            phonetic_code("Catherine"),
            phonetic_code("Katherine"),
            "Soundex keeps the first letter"
        );
    }

    #[test]
    fn a_name_of_several_words_is_coded_whole_and_by_word() {
        assert_eq!(phonetic_codes("Mc Donald"), ["M235", "M200", "D543"]);
        assert_eq!(phonetic_codes("Smith-Jones"), ["S532", "S530", "J520"]);
        assert_eq!(phonetic_codes("Jones"), ["J520"]);
        // Codes are upper case, so none equals a normalised (lower case) string.
        assert!(
            phonetic_codes("Ann")
                .iter()
                .all(|c| c != &normalize_string(c))
        );
    }

    #[test]
    fn a_value_with_no_latin_letter_has_no_sound() {
        assert_eq!(phonetic_code("123"), None);
        assert_eq!(phonetic_code(""), None);
        assert_eq!(phonetic_code("Ωμέγα"), None);
        assert!(phonetic_codes(" - ").is_empty());
    }
}
