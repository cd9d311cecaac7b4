//! HL7 v2 to FHIR R4 for Concord's feeds, following the HL7 v2-to-FHIR implementation guide
//! (<https://build.fhir.org/ig/HL7/v2-to-fhir/>).
//!
//! Owns: [`map_message`], which turns one parsed v2 message (ADT, ORU^R01, SIU, MDM) into a FHIR
//! `transaction` Bundle whose entries are conditional writes keyed by business identifiers
//! (`PUT Patient?identifier=system|value`, ...), so applying the same message twice changes
//! nothing; the key that orders one person's messages ([`Mapped::patient_key`]); the record pairs
//! an A40 merge joins ([`Mapped::merges`]); and warnings for what could not be mapped. Where and
//! why the mapping differs from the guide and from Microsoft's FHIR-Converter is in `MAPPING.md`.
//!
//! Does not: parse v2 (`concord-hl7v2` does), store anything, or read a clock or the environment:
//! the source and the time arrive in [`MapOptions`]. Errors and warnings name segments and fields,
//! never their contents, so they can be logged and returned in an acknowledgement.

mod adt;
mod bundle;
mod context;
mod datatype;
mod encounter;
mod mdm;
mod observation;
mod oru;
mod patient;
mod siu;
mod tables;
mod time;

use std::fmt;

pub use concord_hl7v2::ErrorCode;
use concord_hl7v2::{Message, ParseError};
use serde_json::Value;

use crate::context::{Ctx, error};

/// What the mapping needs to know besides the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapOptions {
    /// The source the message came from (the edge's organisation code, e.g. an ODS code, or a
    /// URI). Identifier systems for the source's local identifiers are minted under it
    /// (`https://concord.health/fhir/source/{code}/id/{authority}`), and a plain code also becomes
    /// the Patient's `managingOrganization` (as an ODS code).
    pub source_system: String,
    /// The current time as a FHIR instant; becomes `Bundle.timestamp`.
    pub now: String,
    /// The UTC offset to assume for times the message gives without one.
    pub local_time: LocalTime,
}

impl MapOptions {
    /// Options with no local time rule (times without an offset use MSH-7's, else keep the date).
    pub fn new(source_system: impl Into<String>, now: impl Into<String>) -> Self {
        MapOptions {
            source_system: source_system.into(),
            now: now.into(),
            local_time: LocalTime::Unknown,
        }
    }
}

/// How to read a v2 time that carries no UTC offset. FHIR needs an offset on every time, and
/// many senders (most UK ones) leave it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalTime {
    /// Use the offset of MSH-7 if it has one; otherwise keep only the date, with a warning.
    #[default]
    Unknown,
    /// A fixed offset, in minutes east of UTC.
    FixedOffset(i32),
    /// UK civil time: GMT, and BST (+01:00) from the last Sunday of March to the last Sunday of
    /// October.
    EuropeLondon,
}

/// A mapped message.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// A FHIR R4 `transaction` Bundle. Each entry is `PUT Type?identifier=system|value` (the
    /// record the message is about), or `POST Type` with `ifNoneExist` (a Patient or Encounter a
    /// result or document refers to, which another feed owns). Entries refer to each other by
    /// `urn:uuid:` fullUrls that are derived from the keys, so they are the same on every run.
    pub bundle: Value,
    /// The identifier (`system|value`) of the patient the message is about, to apply one person's
    /// messages in order. `None` only when a message has no patient.
    pub patient_key: Option<String>,
    /// For A40: the records merged, so the caller can re-point data filed under the retired one.
    pub merges: Vec<Merge>,
    /// What could not be mapped, by position (never by value).
    pub warnings: Vec<String>,
}

/// One merge of A40: `retired` was merged into `survivor` (both `system|value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub retired: String,
    pub survivor: String,
}

/// Why a message cannot be mapped: which segment (id and 1-based position; position 0 when the
/// segment is missing), which field, and an HL7 error code (table 0357) for the ACK's ERR segment.
/// The message names positions only, never field contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub segment: String,
    pub index: usize,
    pub field: Option<usize>,
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}-{field}", self.segment)?,
            None => write!(f, "{}", self.segment)?,
        }
        if self.index > 0 {
            write!(f, " (segment {})", self.index)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for MapError {}

impl MapError {
    /// The error as the parser's [`ParseError`], for the ERR segment of an acknowledgement
    /// ([`concord_hl7v2::ack::build`]). A missing segment (position 0) names no segment there; the
    /// message says which one is missing.
    pub fn to_parse_error(&self) -> ParseError {
        let mut e = ParseError::new(self.code, self.message.clone());
        if self.index > 0 {
            e = e.with_segment(&self.segment, self.index);
        }
        if let Some(field) = self.field {
            e = e.with_field(field);
        }
        e
    }
}

/// Maps one parsed v2 message to a FHIR transaction Bundle.
///
/// Supported: ADT (every event with a visit, A28/A29/A31 person updates, A40 merge, A41, A45 move
/// visit, A47 identifier change, A60), ORU^R01, SIU S12-S17 and S26, MDM T01-T11. Any other
/// message type fails with [`ErrorCode::UnsupportedMessageType`], any other event with
/// [`ErrorCode::UnsupportedEventCode`], both naming MSH-9.
pub fn map_message(message: &Message, options: &MapOptions) -> Result<Mapped, MapError> {
    let mt = message.message_type();
    let code = mt.code.trim().to_ascii_uppercase();
    let mut event = mt.trigger.trim().to_ascii_uppercase();
    if event.is_empty() {
        // Before v2.3 the event could be given in EVN-1 only.
        if let Some(evn) = message.first("EVN") {
            event = datatype::val(evn, 1, 1)
                .unwrap_or_default()
                .to_ascii_uppercase();
        }
    }
    let mut ctx = Ctx::new(message, options);
    match code.as_str() {
        "ADT" => adt::map(&mut ctx, &event)?,
        "ORU" if event == "R01" => oru::map(&mut ctx)?,
        "ORU" => {
            return Err(error(
                message.msh(),
                Some(9),
                ErrorCode::UnsupportedEventCode,
                format!("ORU event {event} is not supported (only R01)"),
            ));
        }
        "SIU" => siu::map(&mut ctx, &event)?,
        "MDM" => mdm::map(&mut ctx, &event)?,
        _ => {
            return Err(error(
                message.msh(),
                Some(9),
                ErrorCode::UnsupportedMessageType,
                format!(
                    "message type {} is not supported (ADT, ORU, SIU and MDM are)",
                    if code.is_empty() {
                        "(empty)"
                    } else {
                        code.as_str()
                    }
                ),
            ));
        }
    }
    Ok(ctx.finish())
}
