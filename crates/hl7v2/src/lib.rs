//! HL7 v2 core for Concord: bytes from a feed in, a navigable message out, and back.
//!
//! Owns the v2 wire format: reading a message ([`Message::parse`]) with the delimiters its MSH
//! declares, escape sequences, repetitions, components and subcomponents, CR / LF / CRLF segment
//! ends and a byte-order mark; writing it back ([`Message::encode`]); the version gate
//! ([`check_supported`], 2.3 to 2.8); acknowledgements ([`ack`]); and MLLP framing ([`mllp`]).
//!
//! Does not: perform I/O, read a clock or the environment, validate message structures against the
//! standard's abstract message definitions, or map anything to FHIR (the mapping crate does). Times
//! and control ids arrive as arguments.
//!
//! The parser is written by hand: the Rust HL7 v2 crates we looked at are immature (panics on odd
//! input, no Latin-1, no custom delimiters or lossy escape handling), and the format is small.
//!
//! Text: input that is valid UTF-8 is read as UTF-8. Any byte sequence that is not valid UTF-8 is
//! read as Windows-1252 (a superset of ISO 8859-1 for printable characters), because many feeds
//! send 8859-1 whatever MSH-18 says; such a message reports [`Message::charset_fallback`].
//! [`Message::encode`] always writes UTF-8.
//!
//! Errors never quote field contents: a [`ParseError`] names a segment, a field position and an
//! HL7 error code (table 0357), so it can go into logs and ACKs without leaking patient data.

pub mod ack;
mod decode;
mod delimiters;
mod encode;
mod error;
mod escape;
mod message;
pub mod mllp;
mod parse;

pub use delimiters::Delimiters;
pub use error::{ErrorCode, ParseError};
pub use message::{Component, Field, Message, MessageType, Repetition, Segment};

/// The oldest and newest HL7 v2 versions Concord accepts (MSH-12.1 major.minor, inclusive).
pub const SUPPORTED_VERSIONS: (&str, &str) = ("2.3", "2.8");

/// Checks that MSH-12 names a version from 2.3 to 2.8 (any patch level, such as 2.5.1 or 2.8.2).
///
/// A missing MSH-12 is [`ErrorCode::RequiredFieldMissing`]; any other version is
/// [`ErrorCode::UnsupportedVersion`]. Kept apart from [`Message::parse`] so a message in an
/// unsupported version can still be read well enough to acknowledge it.
pub fn check_supported(message: &Message) -> Result<(), ParseError> {
    let Some(version) = message.version() else {
        return Err(ParseError::new(
            ErrorCode::RequiredFieldMissing,
            "MSH-12 (version id) is empty",
        )
        .with_segment("MSH", 1)
        .with_field(12));
    };
    let mut parts = version.trim().split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    let patch_ok = parts.all(|p| p.parse::<u32>().is_ok());
    if major == Some(2) && minor.is_some_and(|m| (3..=8).contains(&m)) && patch_ok {
        return Ok(());
    }
    // A version id is not patient data, but the field may hold anything: quote it only when it
    // looks like a version.
    let looks_like_version = version.len() <= 12
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let message = if looks_like_version {
        format!(
            "HL7 version {version} is not supported (supported: {} to {})",
            SUPPORTED_VERSIONS.0, SUPPORTED_VERSIONS.1
        )
    } else {
        format!(
            "MSH-12 does not hold a supported HL7 version (supported: {} to {})",
            SUPPORTED_VERSIONS.0, SUPPORTED_VERSIONS.1
        )
    };
    Err(ParseError::new(ErrorCode::UnsupportedVersion, message)
        .with_segment("MSH", 1)
        .with_field(12))
}
