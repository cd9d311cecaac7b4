//! Acknowledgements: the ACK a receiver sends back for a message, parsed or not.
//!
//! Owns the shape of the ACK. MSH: the original's delimiters, sender and receiver swapped (MSH-3/4
//! from MSH-5/6 and back, whole fields), MSH-7 the given timestamp, MSH-9 `ACK^<trigger>^ACK`,
//! MSH-10 the given control id, MSH-11 and MSH-12 echoed. In enhanced mode (the original has MSH-15
//! or MSH-16) the ACK carries MSH-15 and MSH-16 `NE`, so nobody acknowledges the acknowledgement;
//! in original mode both stay empty. MSA-1 the code, MSA-2 the original's control id. One ERR per
//! error: ERR-2 segment id, sequence and field position, ERR-3 the table 0357 code and text,
//! ERR-4 severity (`W` on an accepting ACK, AA or CA, otherwise `E`), ERR-8 the message; for
//! versions 2.3 and 2.4, whose ERR has only ERR-1, ERR-1 carries the same location and code, and
//! MSA-3 the first error's message.
//!
//! Does not: decide the code (the caller knows whether the message was stored, and whether the
//! sender uses enhanced mode), send anything, or frame it for MLLP.

use crate::ParseError;
use crate::decode::decode_lossy;
use crate::delimiters::Delimiters;
use crate::message::{Component, Field, Message, Repetition, Segment};

/// Acknowledgement codes (HL7 table 0008): application (A*) and, in enhanced mode, commit (C*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Application accept.
    AA,
    /// Application error.
    AE,
    /// Application reject.
    AR,
    /// Commit accept.
    CA,
    /// Commit error.
    CE,
    /// Commit reject.
    CR,
}

impl AckCode {
    /// The code as written in MSA-1.
    pub fn as_str(&self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }

    /// Whether the code accepts the message (AA, CA).
    pub fn is_accept(&self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }
}

/// The version an ACK names when the original's could not be read.
const FALLBACK_VERSION: &str = "2.5.1";

/// The longest value copied from an unparseable message into its ACK.
const MAX_COPIED: usize = 199;

/// What an ACK takes from the message it answers.
struct Header {
    delimiters: Delimiters,
    sending_application: Field,
    sending_facility: Field,
    receiving_application: Field,
    receiving_facility: Field,
    trigger: String,
    control_id: String,
    processing_id: Field,
    version: Field,
    enhanced: bool,
}

/// Builds the ACK for `original` (MSH swapped sender/receiver, MSA-1 code, MSA-2 control id, ERR
/// segments naming segment id, sequence, field position (ERR-2) and HL7 error code + text (ERR-3),
/// severity ERR-4 E/W, ERR-8 user message).
pub fn build(
    original: &Message,
    code: AckCode,
    errors: &[ParseError],
    control_id: &str,
    timestamp: &str,
) -> Vec<u8> {
    let msh = original.msh();
    let field = |n| msh.field(n).cloned().unwrap_or_default();
    let header = Header {
        delimiters: *original.delimiters(),
        sending_application: field(3),
        sending_facility: field(4),
        receiving_application: field(5),
        receiving_facility: field(6),
        trigger: original.message_type().trigger,
        control_id: original.control_id().unwrap_or_default().to_owned(),
        processing_id: field(11),
        version: field(12),
        enhanced: original.enhanced_ack_mode(),
    };
    render(&header, code, errors, control_id, timestamp)
}

/// For input that did not even parse: an AR ACK built from whatever MSH fields could be read
/// (first components only, each cut to 199 characters), with the standard delimiters.
pub fn reject_unparseable(
    bytes: &[u8],
    error: &ParseError,
    control_id: &str,
    timestamp: &str,
) -> Vec<u8> {
    let header = salvage_header(bytes);
    render(
        &header,
        AckCode::AR,
        std::slice::from_ref(error),
        control_id,
        timestamp,
    )
}

/// Reads what it can of the first line of something that should have been an MSH.
fn salvage_header(bytes: &[u8]) -> Header {
    let mut header = Header {
        delimiters: Delimiters::default(),
        sending_application: Field::default(),
        sending_facility: Field::default(),
        receiving_application: Field::default(),
        receiving_facility: Field::default(),
        trigger: String::new(),
        control_id: String::new(),
        processing_id: Field::default(),
        version: Field::from_text(FALLBACK_VERSION),
        enhanced: false,
    };
    let bytes = bytes.strip_prefix(crate::decode::BOM).unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let bytes = &bytes[start..];
    let end = bytes
        .iter()
        .take(64 * 1024)
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len().min(64 * 1024));
    let line = decode_lossy(&bytes[..end]);
    let Some(rest) = line.strip_prefix("MSH") else {
        return header;
    };
    let Some(separator) = rest.chars().next().filter(char::is_ascii_graphic) else {
        return header;
    };
    if separator.is_ascii_alphanumeric() {
        return header;
    }
    let fields: Vec<&str> = rest[separator.len_utf8()..].split(separator).collect();
    // fields[0] is MSH-2, fields[n - 2] is MSH-n.
    let component = fields
        .first()
        .and_then(|f| f.chars().next())
        .filter(|c| c.is_ascii_graphic() && !c.is_ascii_alphanumeric())
        .unwrap_or('^');
    let value = |n: usize, c: usize| -> String {
        let raw = fields.get(n - 2).copied().unwrap_or_default();
        let part = raw.split(component).nth(c - 1).unwrap_or_default();
        part.chars().take(MAX_COPIED).collect()
    };
    header.sending_application = Field::from_text(value(3, 1));
    header.sending_facility = Field::from_text(value(4, 1));
    header.receiving_application = Field::from_text(value(5, 1));
    header.receiving_facility = Field::from_text(value(6, 1));
    header.trigger = value(9, 2);
    header.control_id = value(10, 1);
    header.processing_id = Field::from_text(value(11, 1));
    let version = value(12, 1);
    if !version.is_empty()
        && version.len() <= 12
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        header.version = Field::from_text(version);
    }
    header.enhanced = !value(15, 1).is_empty() || !value(16, 1).is_empty();
    header
}

fn render(
    header: &Header,
    code: AckCode,
    errors: &[ParseError],
    control_id: &str,
    timestamp: &str,
) -> Vec<u8> {
    let legacy_err = {
        let version = header.version.text();
        version.starts_with("2.3") || version.starts_with("2.4")
    };
    let message_type = if header.trigger.is_empty() {
        Field::from_text("ACK")
    } else {
        Field::from_components(["ACK", header.trigger.as_str(), "ACK"])
    };
    let mut msh = vec![
        Field::default(), // MSH-1 and MSH-2 are set from the delimiters.
        Field::default(),
        header.receiving_application.clone(),
        header.receiving_facility.clone(),
        header.sending_application.clone(),
        header.sending_facility.clone(),
        Field::from_text(timestamp),
        Field::default(),
        message_type,
        Field::from_text(control_id),
        header.processing_id.clone(),
        header.version.clone(),
    ];
    if header.enhanced {
        msh.extend([
            Field::default(),
            Field::default(),
            Field::from_text("NE"),
            Field::from_text("NE"),
        ]);
    }
    let mut msa = vec![
        Field::from_text(code.as_str()),
        Field::from_text(header.control_id.as_str()),
    ];
    if legacy_err && let Some(first) = errors.first() {
        msa.push(Field::from_text(first.message.as_str()));
    }
    let mut segments = vec![Segment::new("MSH", msh), Segment::new("MSA", msa)];
    let severity = if code.is_accept() { "W" } else { "E" };
    for error in errors {
        segments.push(Segment::new("ERR", err_fields(error, severity, legacy_err)));
    }
    for segment in &mut segments {
        while segment.fields.len() > 2 && segment.fields.last().is_some_and(Field::is_empty) {
            segment.fields.pop();
        }
    }
    match Message::new(header.delimiters, segments) {
        Ok(message) => message.encode(),
        // Unreachable: the delimiters come from a parsed message or are the defaults, and the
        // segment ids are constants. Degrade to the minimum rather than panic.
        Err(_) => format!("MSH|^~\\&\rMSA|{}\r", code.as_str()).into_bytes(),
    }
}

fn err_fields(error: &ParseError, severity: &str, legacy: bool) -> Vec<Field> {
    let text = |s: &str| Component::new(vec![s.to_owned()]);
    let location: Vec<Component> = match &error.segment {
        Some((id, index)) => {
            let mut parts = vec![text(id), text(&index.to_string())];
            if let Some(field) = error.field {
                parts.push(text(&field.to_string()));
            }
            parts
        }
        None => Vec::new(),
    };
    let code = Field::from_components([error.code.code(), error.code.text(), "HL70357"]);
    let err1 = if legacy {
        // ELD: segment id ^ sequence ^ field position ^ code (CE, as subcomponents).
        let mut parts = location.clone();
        parts.resize_with(3, Component::default);
        parts.push(Component::new(vec![
            error.code.code().to_owned(),
            error.code.text().to_owned(),
            "HL70357".to_owned(),
        ]));
        Field::new(vec![Repetition::new(parts)])
    } else {
        Field::default()
    };
    vec![
        err1,
        Field::new(vec![Repetition::new(location)]),
        code,
        Field::from_text(severity),
        Field::default(),
        Field::default(),
        Field::default(),
        Field::from_text(error.message.as_str()),
    ]
}
