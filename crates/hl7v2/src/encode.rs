//! The encoder: [`Message`] back to v2 text.
//!
//! Owns writing the wire format: the message's own delimiters, CR after every segment (the last
//! included), values escaped (see `escape`), UTF-8 output. `Message::parse(&m.encode())` gives back
//! a message equal to `m`. Does not: frame for MLLP (see [`crate::mllp`]) or re-create the sender's
//! bytes exactly (escape spellings, segment endings and character set may differ).

use crate::delimiters::Delimiters;
use crate::escape::escape_into;
use crate::message::{Field, Message};

impl Message {
    /// Back to v2 text with CR segment ends and escapes re-applied (UTF-8).
    pub fn encode(&self) -> Vec<u8> {
        let d = &self.delimiters;
        let field_separator = char::from(d.field);
        let mut out = String::with_capacity(self.segments.len() * 128);
        for (position, segment) in self.segments.iter().enumerate() {
            out.push_str(&segment.id);
            let mut fields = segment.fields.iter();
            if position == 0 {
                // MSH-1 and MSH-2 are the delimiters themselves, written unescaped.
                out.push(field_separator);
                out.push_str(&d.encoding_characters());
                fields.nth(1);
            }
            for field in fields {
                out.push(field_separator);
                encode_field(field, d, &mut out);
            }
            out.push('\r');
        }
        out.into_bytes()
    }
}

fn encode_field(field: &Field, d: &Delimiters, out: &mut String) {
    for (r, repetition) in field.repetitions().iter().enumerate() {
        if r > 0 {
            out.push(char::from(d.repetition));
        }
        for (c, component) in repetition.components().iter().enumerate() {
            if c > 0 {
                out.push(char::from(d.component));
            }
            for (s, sub) in component.subcomponents().iter().enumerate() {
                if s > 0 {
                    out.push(char::from(d.subcomponent));
                }
                escape_into(sub, d, out);
            }
        }
    }
}
