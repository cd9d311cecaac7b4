//! The parser: bytes to [`Message`].
//!
//! Owns reading the wire format. The steps: strip a UTF-8 byte-order mark; decode (UTF-8, with a
//! Windows-1252 fallback per invalid byte, see `decode`); skip leading whitespace; read the
//! delimiters from MSH-1 and MSH-2; cut segments; split each at field, repetition, component and
//! subcomponent delimiters; unescape each subcomponent.
//!
//! Segment ends: when the text holds a CR, the CR ends a segment and an LF right after it is part of
//! the ending (CRLF), while any other LF stays in the value (some senders put raw line breaks in
//! report text); when it holds no CR, LF ends a segment. Lines holding only whitespace (blank lines,
//! trailing whitespace at the end) are skipped.
//!
//! Does not: validate segment order or required fields beyond MSH (the mapping does), check the
//! version (see [`crate::check_supported`]), or accept batches (FHS/BHS) or several messages in one
//! input. It never panics: every index is checked, and every rejection is a [`ParseError`] that
//! names a segment position and field, never their contents.

use crate::decode::decode;
use crate::delimiters::Delimiters;
use crate::error::{ErrorCode, ParseError};
use crate::escape::unescape;
use crate::message::{Component, Field, List, Message, Repetition, Segment, is_segment_id};

impl Message {
    /// Parses bytes (BOM allowed, CR / LF / CRLF segment ends, trailing whitespace, custom
    /// delimiters from MSH). Never panics on any input.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let (text, charset_fallback) = decode(bytes);
        let text = text.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if text.is_empty() {
            return Err(ParseError::new(
                ErrorCode::SegmentSequence,
                "the message is empty: no MSH segment",
            ));
        }
        if !text.starts_with("MSH") {
            let message = if text.starts_with("FHS") || text.starts_with("BHS") {
                "the input is a batch (FHS/BHS); send its messages one at a time"
            } else {
                "the message does not start with an MSH segment"
            };
            return Err(ParseError::new(ErrorCode::SegmentSequence, message));
        }
        let cr_ends = text.contains('\r');
        let mut lines = text
            .split(if cr_ends { '\r' } else { '\n' })
            .map(|line| {
                if cr_ends {
                    line.strip_prefix('\n').unwrap_or(line)
                } else {
                    line
                }
            })
            .filter(|line| !line.bytes().all(|b| b.is_ascii_whitespace()));

        let header = lines.next().unwrap_or_default();
        let (delimiters, msh2_end) = Delimiters::read_from_msh(header)?;
        let mut segments = Vec::with_capacity(text.len() / 256 + 1);
        segments.push(parse_msh(header, msh2_end, &delimiters));
        for (i, line) in lines.enumerate() {
            let index = i + 2;
            segments.push(parse_segment(line, index, &delimiters)?);
        }
        Ok(Message {
            delimiters,
            segments,
            charset_fallback,
        })
    }
}

fn parse_msh(line: &str, msh2_end: usize, d: &Delimiters) -> Segment {
    let mut fields = vec![
        Field::from_text(char::from(d.field).to_string()),
        Field::from_text(d.encoding_characters()),
    ];
    // `msh2_end` is at the field separator before MSH-3 or at the end of the line.
    if let Some(rest) = line.get(msh2_end + 1..) {
        fields.extend(rest.split(char::from(d.field)).map(|f| parse_field(f, d)));
    }
    Segment {
        id: "MSH".to_owned(),
        index: 1,
        fields,
    }
}

fn parse_segment(line: &str, index: usize, d: &Delimiters) -> Result<Segment, ParseError> {
    let id = line.get(..3).filter(|id| is_segment_id(id));
    let after = line.as_bytes().get(3).copied();
    let Some(id) = id.filter(|_| after.is_none() || after == Some(d.field)) else {
        return Err(ParseError::new(
            ErrorCode::SegmentSequence,
            format!(
                "segment {index} does not start with a three-character segment id (A-Z, 0-9) \
                 followed by the field separator"
            ),
        ));
    };
    if id == "MSH" {
        return Err(ParseError::new(
            ErrorCode::SegmentSequence,
            format!(
                "segment {index} is a second MSH: one message per parse (batches and \
                 concatenated messages are not accepted)"
            ),
        )
        .with_segment("MSH", index));
    }
    let fields = match line.get(4..) {
        Some(rest) => rest
            .split(char::from(d.field))
            .map(|f| parse_field(f, d))
            .collect(),
        None => Vec::new(),
    };
    Ok(Segment {
        id: id.to_owned(),
        index,
        fields,
    })
}

fn parse_field(raw: &str, d: &Delimiters) -> Field {
    if raw.is_empty() {
        return Field::default();
    }
    Field::from_list(split(raw, d.repetition, |r| parse_repetition(r, d)))
}

fn parse_repetition(raw: &str, d: &Delimiters) -> Repetition {
    if raw.is_empty() {
        return Repetition::default();
    }
    Repetition::from_list(split(raw, d.component, |c| parse_component(c, d)))
}

fn parse_component(raw: &str, d: &Delimiters) -> Component {
    if raw.is_empty() {
        return Component::default();
    }
    Component::from_list(split(raw, d.subcomponent, |s| unescape(s, d)))
}

/// Splits `raw` at `delimiter`; a value without the delimiter (the common case) is one child,
/// held inline.
fn split<T>(raw: &str, delimiter: u8, part: impl Fn(&str) -> T) -> List<T> {
    if raw.as_bytes().contains(&delimiter) {
        List::Many(raw.split(char::from(delimiter)).map(part).collect())
    } else {
        List::One(part(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msh_fields_are_numbered_as_the_standard() {
        let m = Message::parse(b"MSH|^~\\&|APP|FAC\rPID|1||123^^^NHS~456").unwrap();
        let msh = m.msh();
        assert_eq!(msh.get(1, 1), Some("|"));
        assert_eq!(msh.get(2, 1), Some("^~\\&"));
        assert_eq!(msh.get(3, 1), Some("APP"));
        assert_eq!(m.sending_facility(), Some("FAC"));
        let pid = m.first("PID").unwrap();
        assert_eq!(pid.index(), 2);
        assert_eq!(pid.get(3, 1), Some("123"));
        assert_eq!(pid.get_sub(3, 1, 4, 1), Some("NHS"));
        assert_eq!(pid.get_sub(3, 2, 1, 1), Some("456"));
        assert_eq!(pid.repetitions(3).len(), 2);
        assert!(pid.field(2).unwrap().is_empty());
        assert_eq!(pid.field(4), None);
        assert_eq!(pid.field(0), None);
    }
}
