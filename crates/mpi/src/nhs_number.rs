//! The NHS number: ten digits whose last is a modulus-11 check digit, written 3-3-4.
//!
//! Owns parsing (with or without spaces), the check digit and formatting. Does not decide what a
//! write does with an invalid number; the hub's identity settings say whether to reject or flag.
//! See <https://www.datadictionary.nhs.uk/attributes/nhs_number.html>.

use std::fmt;

/// The identifier system of the NHS number in FHIR.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A valid NHS number (ten digits, correct check digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

/// Why a string is not an NHS number; the message is written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("an NHS number has 10 digits; found {0}")]
    WrongLength(usize),
    #[error("an NHS number contains only digits and spaces; found {0:?}")]
    NotADigit(char),
    #[error("the check digit is wrong (modulus 11)")]
    CheckDigit,
    #[error("no valid check digit exists for the first nine digits (modulus 11 gives 10)")]
    NoCheckDigit,
}

impl NhsNumber {
    /// Parses ten digits, allowing spaces anywhere (so `943 476 5919` and `9434765919` both
    /// parse) and surrounding whitespace.
    pub fn parse(text: &str) -> Result<Self, NhsNumberError> {
        let mut digits = [0u8; 10];
        let mut count = 0usize;
        for c in text.trim().chars() {
            if c == ' ' {
                continue;
            }
            let Some(d) = c.to_digit(10) else {
                return Err(NhsNumberError::NotADigit(c));
            };
            if count < 10 {
                digits[count] = d as u8;
            }
            count += 1;
        }
        if count != 10 {
            return Err(NhsNumberError::WrongLength(count));
        }
        match check_digit(&digits[..9]) {
            None => Err(NhsNumberError::NoCheckDigit),
            Some(c) if c != digits[9] => Err(NhsNumberError::CheckDigit),
            Some(_) => Ok(Self(digits)),
        }
    }

    /// Builds a valid number from nine digits by appending the check digit; `None` when none
    /// exists (modulus 11 gives 10, so no NHS number starts with those nine digits).
    pub fn from_first_nine(nine: [u8; 9]) -> Option<Self> {
        if nine.iter().any(|d| *d > 9) {
            return None;
        }
        let check = check_digit(&nine)?;
        let mut digits = [0u8; 10];
        digits[..9].copy_from_slice(&nine);
        digits[9] = check;
        Some(Self(digits))
    }

    /// The ten digits without spaces, the form FHIR `Identifier.value` carries.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// The number as a `u64`, a compact key for indexes.
    pub fn as_u64(&self) -> u64 {
        self.0.iter().fold(0u64, |acc, d| acc * 10 + u64::from(*d))
    }
}

/// Formats as 3-3-4 with spaces, the way the NHS shows the number to people.
impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(f, "{} {} {}", &d[0..3], &d[3..6], &d[6..10])
    }
}

/// The modulus-11 check digit of the first nine digits: weights 10 down to 2, 11 minus the
/// remainder, 11 becomes 0 and 10 means no valid number.
fn check_digit(nine: &[u8]) -> Option<u8> {
    let sum: u32 = nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_numbers() {
        // Published test-range examples.
        for ok in ["9434765919", "943 476 5919", " 9434765870 ", "4010232137"] {
            assert!(NhsNumber::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::CheckDigit)
        );
        assert_eq!(
            NhsNumber::parse("943476591"),
            Err(NhsNumberError::WrongLength(9))
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength(11))
        );
        assert_eq!(
            NhsNumber::parse("943-476-5919"),
            Err(NhsNumberError::NotADigit('-'))
        );
        assert_eq!(NhsNumber::parse(""), Err(NhsNumberError::WrongLength(0)));
        assert_eq!(
            NhsNumber::parse("9434765919").unwrap().to_string(),
            "943 476 5919"
        );
    }

    fn valid() -> impl Strategy<Value = NhsNumber> {
        proptest::array::uniform9(0u8..10)
            .prop_filter_map("no check digit", NhsNumber::from_first_nine)
    }

    proptest! {
        #[test]
        fn format_and_parse_round_trip(n in valid()) {
            prop_assert_eq!(NhsNumber::parse(&n.to_string()), Ok(n));
            prop_assert_eq!(NhsNumber::parse(&n.digits()), Ok(n));
        }

        #[test]
        fn every_single_digit_error_is_rejected(n in valid(), pos in 0usize..10, delta in 1u8..10) {
            let mut d: Vec<u8> = n.digits().into_bytes();
            d[pos] = b'0' + (d[pos] - b'0' + delta) % 10;
            let text = String::from_utf8(d).unwrap();
            prop_assert!(NhsNumber::parse(&text).is_err(), "{} accepted", text);
        }

        #[test]
        fn every_adjacent_swap_is_rejected(n in valid(), pos in 0usize..9) {
            let mut d: Vec<u8> = n.digits().into_bytes();
            prop_assume!(d[pos] != d[pos + 1]);
            d.swap(pos, pos + 1);
            let text = String::from_utf8(d).unwrap();
            prop_assert!(NhsNumber::parse(&text).is_err(), "{} accepted", text);
        }
    }
}
