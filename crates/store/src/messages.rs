//! The message log port: raw inbound messages (HL7 v2 from a source system) kept durably before
//! they are acknowledged, with what became of each.
//!
//! Owns the [`MessageLog`] trait and its value types. A message is identified by its sender and
//! control id (MSH-3/4 and MSH-10), so a repeat is recognised and not applied twice. Does not parse
//! or map messages (the hl7v2 and v2fhir crates do) or decide acknowledgements (the hub does).

use concord_fhir::{Error, RequestContext};

/// What became of a logged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// Stored, not yet applied.
    Received,
    /// Mapped and stored as FHIR.
    Applied,
    /// Could not be mapped or applied; kept with its error for `concord feed dead-letters`.
    DeadLetter,
}

impl MessageStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Applied => "applied",
            Self::DeadLetter => "dead-letter",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "received" => Some(Self::Received),
            "applied" => Some(Self::Applied),
            "dead-letter" => Some(Self::DeadLetter),
            _ => None,
        }
    }
}

/// One logged message.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedMessage {
    /// Position in the log, increasing.
    pub seq: i64,
    /// Sending application and facility, e.g. `PAS|RX1`.
    pub sender: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-9, e.g. `ADT^A01`.
    pub message_type: String,
    /// When it arrived (ms since the epoch).
    pub received_at: i64,
    pub raw: Vec<u8>,
    pub status: MessageStatus,
    /// Why it is a dead letter (no patient data: segment, field and reason).
    pub error: Option<String>,
    /// The acknowledgement code it was given (AA, AE, AR), so a repeat is answered the same way.
    pub ack_code: Option<String>,
}

/// What appending found.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// A new message, stored at this position.
    New(i64),
    /// The sender already sent this control id; here is what became of it.
    Repeat(LoggedMessage),
}

/// A message about to be logged.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub sender: String,
    pub control_id: String,
    pub message_type: String,
    pub received_at: i64,
    pub raw: Vec<u8>,
}

/// The durable message log.
pub trait MessageLog: Send + Sync {
    /// Stores a message durably (committed when this returns), unless the sender already sent
    /// the same control id.
    fn append(&self, ctx: &RequestContext, message: NewMessage) -> Result<Appended, Error>;

    /// Records what became of a message.
    fn set_status(
        &self,
        ctx: &RequestContext,
        seq: i64,
        status: MessageStatus,
        error: Option<&str>,
        ack_code: &str,
    ) -> Result<(), Error>;

    fn get(&self, ctx: &RequestContext, seq: i64) -> Result<Option<LoggedMessage>, Error>;

    /// Messages with a status, oldest first, after `after`, at most `limit`.
    fn list(
        &self,
        ctx: &RequestContext,
        status: MessageStatus,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LoggedMessage>, Error>;
}
