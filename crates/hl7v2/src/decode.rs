//! Bytes to text: the byte-order mark, UTF-8, and the Windows-1252 fallback for bytes that are not
//! UTF-8.
//!
//! Owns the one decoding rule of the crate: valid UTF-8 sequences are UTF-8, and every byte that is
//! not part of one is a Windows-1252 character (ISO 8859-1 for all printable characters; the
//! C1 range 0x80-0x9F gets the Windows-1252 punctuation, and its five unassigned bytes map to the
//! same-numbered control characters, as the WHATWG decoder does). Valid UTF-8 input is borrowed, not
//! copied. Does not: honour MSH-18 (senders often get it wrong) or decode UTF-16.

use std::borrow::Cow;

/// The UTF-8 byte-order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Windows-1252 characters for bytes 0x80..=0x9F.
const CP1252_C1: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// One byte read as Windows-1252.
pub(crate) fn cp1252(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_C1[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// Decodes `bytes` (after stripping a leading BOM); the flag says whether any byte needed the
/// Windows-1252 fallback.
pub(crate) fn decode(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), false),
        Err(_) => (Cow::Owned(decode_lossy(bytes)), true),
    }
}

/// Decodes bytes that may not be UTF-8, per sequence: UTF-8 where valid, Windows-1252 elsewhere.
pub(crate) fn decode_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|&b| cp1252(b)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_borrowed_and_bom_stripped() {
        let (text, fallback) = decode(b"\xEF\xBB\xBFMSH|caf\xC3\xA9");
        assert!(matches!(text, Cow::Borrowed("MSH|caf\u{e9}")));
        assert!(!fallback);
    }

    #[test]
    fn latin1_and_cp1252_bytes_fall_back() {
        let (text, fallback) = decode(b"Ren\xE9e \x80 \x93q\x94 \xC3\xA9");
        assert_eq!(text, "Ren\u{e9}e \u{20ac} \u{201c}q\u{201d} \u{e9}");
        assert!(fallback);
    }
}
