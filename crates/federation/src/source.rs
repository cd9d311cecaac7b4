//! What the federation knows about a source and what one source answered.
//!
//! Owns the plain data types the connector (`concord-source`) fills in and [`crate::merge`]
//! consumes: [`SourceKind`], [`Freshness`], [`SourceInfo`], [`SourceStatus`] and
//! [`SourceResult`]. Does not: talk to a source, time a call or decide a status; the connector
//! does that and reports it here as data.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resource::Resource;

/// The kind of organisation a source is; it labels the source in the portal and in outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Gp,
    Acute,
    MentalHealth,
    Community,
    Ambulance,
    SocialCare,
    Hospice,
    /// Another Concord hub (a region) that federates its own sources and forwards their data.
    Region,
}

impl SourceKind {
    /// Every kind, in the order the portal lists them.
    pub const ALL: [SourceKind; 8] = [
        SourceKind::Gp,
        SourceKind::Acute,
        SourceKind::MentalHealth,
        SourceKind::Community,
        SourceKind::Ambulance,
        SourceKind::SocialCare,
        SourceKind::Hospice,
        SourceKind::Region,
    ];

    /// Reads the configuration spelling (`"mental-health"`); anything else is `None`, so a typo in
    /// configuration is reported by the caller rather than silently becoming some other kind.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The configuration spelling, the same as the serde one.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Gp => "gp",
            SourceKind::Acute => "acute",
            SourceKind::MentalHealth => "mental-health",
            SourceKind::Community => "community",
            SourceKind::Ambulance => "ambulance",
            SourceKind::SocialCare => "social-care",
            SourceKind::Hospice => "hospice",
            SourceKind::Region => "region",
        }
    }

    /// A label for people.
    pub fn label(&self) -> &'static str {
        match self {
            SourceKind::Gp => "GP practice",
            SourceKind::Acute => "Acute hospital",
            SourceKind::MentalHealth => "Mental health service",
            SourceKind::Community => "Community health service",
            SourceKind::Ambulance => "Ambulance service",
            SourceKind::SocialCare => "Social care",
            SourceKind::Hospice => "Hospice",
            SourceKind::Region => "Regional shared care record",
        }
    }
}

/// How current a source's data is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// The source answers from its live system.
    Live,
    /// The source answers from a periodic extract. `last_load_ms` (Unix epoch milliseconds) is
    /// when the extract last loaded, `None` when nobody knows; data older than `max_age_ms` is
    /// still shown but flagged stale.
    Batch {
        last_load_ms: Option<i64>,
        max_age_ms: i64,
    },
}

/// One configured source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// The configuration id, e.g. `"gp-a"`. Not patient data; safe in outcomes and logs.
    pub id: String,
    /// The organisation's name, e.g. `"Riverside Medical Practice"`.
    pub name: String,
    /// The organisation's ODS code, when it has one.
    pub ods_code: Option<String>,
    pub kind: SourceKind,
    /// The FHIR base URL, without a trailing slash.
    pub base_url: String,
    /// The resource types it serves; empty means all.
    pub resource_types: Vec<String>,
    pub freshness: Freshness,
}

/// What happened when the hub asked one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    Ok,
    /// The call ran out of time; any resources gathered before the deadline are still merged.
    Timeout {
        after_ms: u64,
    },
    /// Connection refused, HTTP 5xx, authentication failure. `reason` is safe text: no patient data.
    Failed {
        reason: String,
    },
    /// It answered, but not with valid FHIR JSON or not with a Bundle.
    Invalid {
        reason: String,
    },
    /// Not asked: its circuit breaker is open after repeated failures.
    BreakerOpen,
    /// Not asked, e.g. hop limit reached, no record there, type not served.
    Skipped {
        reason: String,
    },
}

impl SourceStatus {
    /// The status's code in the `source-status` CodeSystem, as the view's OperationOutcome and the
    /// hub's metrics name it (`stale`, the one code not here, is an `Ok` answer's data age).
    pub fn code(&self) -> &'static str {
        match self {
            SourceStatus::Ok => "ok",
            SourceStatus::Timeout { .. } => "timeout",
            SourceStatus::Failed { .. } => "failed",
            SourceStatus::Invalid { .. } => "invalid",
            SourceStatus::BreakerOpen => "breaker-open",
            SourceStatus::Skipped { .. } => "skipped",
        }
    }
}

/// One source's answer, as the connector gathered it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceResult {
    pub source: SourceInfo,
    pub status: SourceStatus,
    /// Resources as the source sent them (partial when paging was cut by the deadline). Anything
    /// that is not a resource with a valid `resourceType` and `id` is skipped by the merge and
    /// counted in this source's outcome issue.
    pub resources: Vec<Resource>,
    pub elapsed_ms: u64,
    /// Outcome issues a region hub passed back (its own per-source issues), forwarded as-is.
    pub forwarded_issues: Vec<Value>,
}
