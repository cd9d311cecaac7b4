//! Audit (issue 6): the shape of one audit record as a FHIR AuditEvent after IHE BALP, and the
//! hash chain over the trail.
//!
//! Owns: the [`AuditRecord`] a request becomes, its AuditEvent ([`audit_event`], and
//! [`record_from_event`] to read one back), the compact form a trail entry stores it in
//! ([`stored_body`], read back by [`record_of_body`] and [`event_of_body`]), the chain hash of
//! each entry ([`chain_hash`]) and verifying a trail ([`verify`], [`ChainVerifier`]). Does not: store anything, log anything or read
//! the clock (the store appends, the hub passes the time). The audit trail is where patient ids
//! legitimately live, so nothing here writes them anywhere else.

mod chain;
mod event;
mod stored;

pub use chain::{ChainBreak, ChainVerifier, ChainedEntry, GENESIS, chain_hash, verify};
pub use concord_fhir::primitive::format_instant;
pub use event::{audit_event, record_from_event};
pub use stored::{event_of_body, record_of_body, stored_body};

/// Reads a FHIR `instant` (as `format_instant` writes it) into milliseconds since the epoch.
pub fn parse_instant(text: &str) -> Option<i64> {
    concord_fhir::primitive::search_date_range(text).map(|range| range.low)
}

/// What the request did to data (FHIR `AuditEvent.action`, which BALP uses as is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Execute,
}

impl Action {
    /// The `AuditEvent.action` code: `C`, `R`, `U`, `D` or `E`.
    pub const fn code(self) -> &'static str {
        match self {
            Action::Create => "C",
            Action::Read => "R",
            Action::Update => "U",
            Action::Delete => "D",
            Action::Execute => "E",
        }
    }

    pub fn parse(code: &str) -> Option<Action> {
        Some(match code {
            "C" => Action::Create,
            "R" => Action::Read,
            "U" => Action::Update,
            "D" => Action::Delete,
            "E" => Action::Execute,
            _ => return None,
        })
    }
}

/// How the request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It did what was asked.
    Success,
    /// Access was refused (authorization, consent, missing break-glass).
    Denied,
    /// It failed for another reason (bad request, server failure).
    Failed,
}

impl Outcome {
    /// The `AuditEvent.outcome` code: `0` success, `4` minor failure (a refusal is one), `8`
    /// serious failure.
    pub const fn code(self) -> &'static str {
        match self {
            Outcome::Success => "0",
            Outcome::Denied => "4",
            Outcome::Failed => "8",
        }
    }

    /// The word the store indexes and the CLI prints: `success`, `denied`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    /// Reads [`Outcome::as_str`] back.
    pub fn parse(word: &str) -> Option<Outcome> {
        Some(match word {
            "success" => Outcome::Success,
            "denied" => Outcome::Denied,
            "failed" => Outcome::Failed,
            _ => return None,
        })
    }

    fn from_code(code: &str) -> Option<Outcome> {
        Some(match code {
            "0" => Outcome::Success,
            "4" => Outcome::Denied,
            "8" => Outcome::Failed,
            _ => return None,
        })
    }
}

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agent {
    /// The user's or system's subject identifier.
    pub subject: String,
    /// `user` or `system`.
    pub kind: String,
    /// The role the request was made in, e.g. `clinician`.
    pub role: Option<String>,
    /// The ODS code (or local id) of the agent's organisation.
    pub organization: Option<String>,
    /// The OAuth client (SMART app) the request came through.
    pub client_id: Option<String>,
}

/// One audited request, before it becomes an AuditEvent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When it happened, milliseconds since the epoch (the caller's clock).
    pub recorded_ms: i64,
    pub request_id: String,
    pub action: Action,
    /// The FHIR restful-interaction code (`read`, `vread`, `search-type`, `create`, `update`,
    /// `delete`, `history`, `operation`, ...) or one of Concord's own: `break-glass`, `login`,
    /// `consent`.
    pub interaction: String,
    /// The operation's name for `operation`, e.g. `$summary`.
    pub operation: Option<String>,
    pub outcome: Outcome,
    /// The HTTP status the request was answered with.
    pub status: u16,
    pub agent: Agent,
    /// The v3 PurposeOfUse code, e.g. `TREAT`, `ETREAT`, `PATRQT`.
    pub purpose: String,
    /// The hub Patient ids whose data the request touched or asked for.
    pub patients: Vec<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// The query string of a search, kept only in the audit trail.
    pub query: Option<String>,
    /// A break-glass reason code and the user's text.
    pub break_glass: Option<(String, String)>,
    /// Why access was refused, when it was.
    pub denied_reason: Option<String>,
    /// This node's id (`AuditEvent.source.observer`).
    pub observer: String,
}
