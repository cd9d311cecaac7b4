//! The error a v2 message is rejected or flagged with: where (segment, field) and what (an HL7
//! table 0357 code), in words that never quote field contents.
//!
//! Owns [`ParseError`] and [`ErrorCode`]. Does not: decide the acknowledgement code or severity
//! (the caller and [`crate::ack`] do).

use std::fmt;

/// What is wrong, where: for the ACK's ERR segment and for logs (never includes field contents).
///
/// `segment` is the segment id and its 1-based position in the message; `field` the 1-based field
/// position. Both are `None` when the problem is not tied to one place (an empty message) or the
/// segment id itself could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub segment: Option<(String, usize)>,
    pub field: Option<usize>,
    pub code: ErrorCode,
    pub message: String,
}

impl ParseError {
    /// An error with a code and a message, tied to no place yet.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ParseError {
            segment: None,
            field: None,
            code,
            message: message.into(),
        }
    }

    /// Ties the error to a segment (its id and 1-based position in the message).
    #[must_use]
    pub fn with_segment(mut self, id: &str, index: usize) -> Self {
        self.segment = Some((id.to_owned(), index));
        self
    }

    /// Ties the error to a 1-based field position.
    #[must_use]
    pub fn with_field(mut self, field: usize) -> Self {
        self.field = Some(field);
        self
    }

    /// Ties the error to `segment` of a parsed message and, when given, one of its fields.
    #[must_use]
    pub fn at(self, segment: &crate::Segment, field: Option<usize>) -> Self {
        let error = self.with_segment(segment.id(), segment.index());
        match field {
            Some(n) => error.with_field(n),
            None => error,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.segment, self.field) {
            (Some((id, index)), Some(field)) => write!(f, "{id}-{field} (segment {index}): ")?,
            (Some((id, index)), None) => write!(f, "{id} (segment {index}): ")?,
            (None, Some(field)) => write!(f, "field {field}: ")?,
            (None, None) => {}
        }
        write!(
            f,
            "{} ({} {})",
            self.message,
            self.code.code(),
            self.code.text()
        )
    }
}

impl std::error::Error for ParseError {}

/// HL7 table 0357, message error condition codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 100: segments out of order, a required segment missing, or a line that is not a segment.
    SegmentSequence,
    /// 101: a required field is missing.
    RequiredFieldMissing,
    /// 102: a field's value does not fit its data type (here also: unusable delimiters).
    DataType,
    /// 103: a coded value is not in its table.
    TableValueNotFound,
    /// 200: the message type (MSH-9.1) is not supported.
    UnsupportedMessageType,
    /// 201: the trigger event (MSH-9.2) is not supported.
    UnsupportedEventCode,
    /// 202: the processing id (MSH-11) is not supported.
    UnsupportedProcessingId,
    /// 203: the version (MSH-12) is not supported.
    UnsupportedVersion,
    /// 207: the application failed for another reason.
    ApplicationError,
}

impl ErrorCode {
    /// The numeric code as HL7 writes it in ERR-3.1.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "100",
            ErrorCode::RequiredFieldMissing => "101",
            ErrorCode::DataType => "102",
            ErrorCode::TableValueNotFound => "103",
            ErrorCode::UnsupportedMessageType => "200",
            ErrorCode::UnsupportedEventCode => "201",
            ErrorCode::UnsupportedProcessingId => "202",
            ErrorCode::UnsupportedVersion => "203",
            ErrorCode::ApplicationError => "207",
        }
    }

    /// The table's description, for ERR-3.2.
    pub fn text(&self) -> &'static str {
        match self {
            ErrorCode::SegmentSequence => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataType => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEventCode => "Unsupported event code",
            ErrorCode::UnsupportedProcessingId => "Unsupported processing id",
            ErrorCode::UnsupportedVersion => "Unsupported version id",
            ErrorCode::ApplicationError => "Application internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.text())
    }
}
