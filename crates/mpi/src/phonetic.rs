//! Phonetic codes for names, used as blocking keys and as a weak "sounds alike" comparison level.
//!
//! Owns American Soundex over the normalised (lower-case ASCII) names of [`crate::normalize`].
//! Does not normalise text itself and does not decide what a phonetic agreement is worth (that is
//! the model's business). Written here rather than taken from a crate because Soundex is a dozen
//! lines, and the phonetic crates pull in `regex` and `serde`, which cost minutes of build on the
//! project's two-core machines for no gain.

/// The Soundex digit of a letter, `0` for vowels (which separate equal digits), `None` for `h`
/// and `w` (which do not) and anything that is not an ASCII letter.
fn digit(c: u8) -> Option<u8> {
    Some(match c {
        b'b' | b'f' | b'p' | b'v' => 1,
        b'c' | b'g' | b'j' | b'k' | b'q' | b's' | b'x' | b'z' => 2,
        b'd' | b't' => 3,
        b'l' => 4,
        b'm' | b'n' => 5,
        b'r' => 6,
        b'a' | b'e' | b'i' | b'o' | b'u' | b'y' => 0,
        _ => return None,
    })
}

/// American Soundex packed in a `u16` (first letter × 1000 + three digits, so `smith` = S530).
/// `None` when the name does not start with an ASCII letter.
pub fn soundex(name: &str) -> Option<u16> {
    let bytes = name.as_bytes();
    let first = *bytes.first()?;
    if !first.is_ascii_lowercase() {
        return None;
    }
    let mut code: u16 = u16::from(first - b'a') * 1000;
    let mut last = digit(first).unwrap_or(0);
    let mut count = 0;
    for &c in &bytes[1..] {
        if count == 3 {
            break;
        }
        match digit(c) {
            None => {} // h, w and non-letters: transparent
            Some(0) => last = 0,
            Some(d) if d == last => {}
            Some(d) => {
                code += u16::from(d) * [100, 10, 1][count];
                count += 1;
                last = d;
            }
        }
    }
    Some(code)
}

/// The printable form (`S530`) of a packed code: for explanations, and the form `phonetic`
/// search parameters index (`concord-search`).
pub fn soundex_text(code: u16) -> String {
    let letter = char::from(b'A' + (code / 1000) as u8);
    format!("{letter}{:03}", code % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_codes() {
        for (name, code) in [
            ("robert", "R163"),
            ("rupert", "R163"),
            ("rubin", "R150"),
            ("ashcraft", "A261"),
            ("ashcroft", "A261"),
            ("tymczak", "T522"),
            ("pfister", "P236"),
            ("honeyman", "H555"),
            ("smith", "S530"),
            ("smyth", "S530"),
            ("lee", "L000"),
        ] {
            assert_eq!(
                soundex(name).map(soundex_text).as_deref(),
                Some(code),
                "{name}"
            );
        }
        assert_eq!(soundex(""), None);
        assert_eq!(soundex("éa"), None);
    }
}
