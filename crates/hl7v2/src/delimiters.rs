//! The delimiters a message declares in MSH-1 and MSH-2, and the rules they must follow.
//!
//! Owns [`Delimiters`] and reading them from the start of an MSH segment. Does not: split or
//! escape text (the parser and [`crate::escape`] do).

use crate::error::{ErrorCode, ParseError};

/// The field separator (MSH-1) and encoding characters (MSH-2) of a message.
///
/// Every delimiter is a printable ASCII character that is not a letter, a digit or a space, and
/// all are different. `truncation` is the fifth encoding character of v2.7 and later (`#`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    pub field: u8,
    pub component: u8,
    pub repetition: u8,
    pub escape: u8,
    pub subcomponent: u8,
    pub truncation: Option<u8>,
}

impl Default for Delimiters {
    /// The standard `|^~\&`, without a truncation character.
    fn default() -> Self {
        Delimiters {
            field: b'|',
            component: b'^',
            repetition: b'~',
            escape: b'\\',
            subcomponent: b'&',
            truncation: None,
        }
    }
}

impl Delimiters {
    /// MSH-2 as written: component, repetition, escape, subcomponent and, when set, truncation.
    pub fn encoding_characters(&self) -> String {
        let mut out = String::with_capacity(5);
        for b in [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ] {
            out.push(char::from(b));
        }
        if let Some(t) = self.truncation {
            out.push(char::from(t));
        }
        out
    }

    /// Checks the rules above; the error names MSH-1 or MSH-2, never the characters.
    pub fn validate(&self) -> Result<(), ParseError> {
        if !usable(self.field) {
            return Err(msh_error(
                1,
                "the field separator (MSH-1) must be a printable ASCII character other than a \
                 letter, digit or space",
            ));
        }
        let encoding = [
            Some(self.component),
            Some(self.repetition),
            Some(self.escape),
            Some(self.subcomponent),
            self.truncation,
        ];
        let encoding: Vec<u8> = encoding.into_iter().flatten().collect();
        if !encoding.iter().all(|&b| usable(b)) {
            return Err(msh_error(
                2,
                "the encoding characters (MSH-2) must be printable ASCII characters other than \
                 letters, digits or spaces",
            ));
        }
        for (i, &b) in encoding.iter().enumerate() {
            if b == self.field || encoding[..i].contains(&b) {
                return Err(msh_error(
                    2,
                    "the encoding characters (MSH-2) must differ from each other and from the \
                     field separator",
                ));
            }
        }
        Ok(())
    }

    /// Reads the delimiters from an MSH segment's text (starting with `MSH`) and returns them with
    /// the byte offset just past MSH-2 (at the field separator before MSH-3, or the segment end).
    pub(crate) fn read_from_msh(segment: &str) -> Result<(Delimiters, usize), ParseError> {
        let bytes = segment.as_bytes();
        let too_short = || {
            ParseError::new(
                ErrorCode::RequiredFieldMissing,
                "MSH is too short to carry its delimiters: it needs the field separator (MSH-1) \
                 and at least four encoding characters (MSH-2)",
            )
            .with_segment("MSH", 1)
            .with_field(2)
        };
        let Some(&field) = bytes.get(3) else {
            return Err(too_short());
        };
        if !usable(field) {
            return Err(msh_error(
                1,
                "the field separator (MSH-1) must be a printable ASCII character other than a \
                 letter, digit or space",
            ));
        }
        let rest = &bytes[4..];
        let len = rest.iter().position(|&b| b == field).unwrap_or(rest.len());
        let encoding = &rest[..len];
        if encoding.len() < 4 {
            return Err(too_short());
        }
        if encoding.len() > 5 {
            return Err(msh_error(
                2,
                "MSH-2 holds more than five encoding characters; the field separator after it \
                 is missing or the delimiters are wrong",
            ));
        }
        let delimiters = Delimiters {
            field,
            component: encoding[0],
            repetition: encoding[1],
            escape: encoding[2],
            subcomponent: encoding[3],
            truncation: encoding.get(4).copied(),
        };
        delimiters.validate()?;
        Ok((delimiters, 4 + len))
    }

    /// Whether `c` is one of the delimiters (field, component, repetition, subcomponent) that
    /// split a field.
    pub(crate) fn splits(&self, b: u8) -> bool {
        b == self.field || b == self.component || b == self.repetition || b == self.subcomponent
    }
}

fn usable(b: u8) -> bool {
    b.is_ascii_graphic() && !b.is_ascii_alphanumeric()
}

fn msh_error(field: usize, message: &str) -> ParseError {
    ParseError::new(ErrorCode::DataType, message)
        .with_segment("MSH", 1)
        .with_field(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_standard_set() {
        assert_eq!(Delimiters::default().encoding_characters(), "^~\\&");
        assert!(Delimiters::default().validate().is_ok());
    }

    #[test]
    fn reads_custom_and_truncation() {
        let (d, end) = Delimiters::read_from_msh("MSH#$%!*@#X").unwrap();
        assert_eq!(d.field, b'#');
        assert_eq!(d.encoding_characters(), "$%!*@");
        assert_eq!(end, 9);
    }
}
