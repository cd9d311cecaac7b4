//! Break-glass: access to a record without a legitimate relationship, for a stated reason, for a
//! limited time.
//!
//! Owns the reasons, the validation of a request (reason from the list, free text required and
//! bounded, duration bounded) and whether a grant is active at a time. Does not: store grants,
//! alert the privacy officers or audit (the hub does all three when it records a grant), or decide
//! which roles may break glass (`Role::may_break_glass`).

use serde::{Deserialize, Serialize};

/// How long a grant lasts unless the request says otherwise: four hours.
pub const DEFAULT_BREAK_GLASS_MS: i64 = 4 * 3600 * 1000;
/// The longest grant a request may ask for: one day, so a grant always ends within a shift or two.
pub const MAX_BREAK_GLASS_MS: i64 = 24 * 3600 * 1000;
/// The longest free text, in characters.
pub const MAX_TEXT_CHARS: usize = 500;

/// Why glass was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreakGlassReason {
    /// Immediate danger to life or limb.
    EmergencyCare,
    /// Care that cannot wait for a relationship to be recorded.
    UrgentCare,
    /// Protecting a child or an adult at risk.
    Safeguarding,
    /// The person cannot consent (unconscious, lacks capacity) and needs care.
    PatientUnableToConsent,
    /// The person is in the organisation's care but the relationship is not recorded yet.
    ContinuityOfCare,
    /// The person is present and asks for their record to be opened.
    PatientRequest,
}

impl BreakGlassReason {
    /// Every reason, in the order a form lists them.
    pub const REASONS: [BreakGlassReason; 6] = [
        BreakGlassReason::EmergencyCare,
        BreakGlassReason::UrgentCare,
        BreakGlassReason::Safeguarding,
        BreakGlassReason::PatientUnableToConsent,
        BreakGlassReason::ContinuityOfCare,
        BreakGlassReason::PatientRequest,
    ];

    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            BreakGlassReason::EmergencyCare => "emergency-care",
            BreakGlassReason::UrgentCare => "urgent-care",
            BreakGlassReason::Safeguarding => "safeguarding",
            BreakGlassReason::PatientUnableToConsent => "patient-unable-to-consent",
            BreakGlassReason::ContinuityOfCare => "continuity-of-care",
            BreakGlassReason::PatientRequest => "patient-request",
        }
    }

    /// The reason for a wire code.
    pub fn parse(code: &str) -> Option<BreakGlassReason> {
        BreakGlassReason::REASONS
            .into_iter()
            .find(|r| r.code() == code)
    }

    /// The text a form and the audit viewer show.
    pub fn display(self) -> &'static str {
        match self {
            BreakGlassReason::EmergencyCare => "Emergency care",
            BreakGlassReason::UrgentCare => "Urgent care",
            BreakGlassReason::Safeguarding => "Safeguarding",
            BreakGlassReason::PatientUnableToConsent => "Patient unable to consent",
            BreakGlassReason::ContinuityOfCare => "Continuity of care",
            BreakGlassReason::PatientRequest => "At the patient's request",
        }
    }

    /// Whether the reason is an emergency, which may lift consent (see `decide`).
    pub fn is_emergency(self) -> bool {
        matches!(
            self,
            BreakGlassReason::EmergencyCare | BreakGlassReason::UrgentCare
        )
    }
}

/// One break-glass grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    /// The user who broke glass (the principal's subject).
    pub subject: String,
    /// The organisation the user acted for.
    pub organization: Option<String>,
    /// The person (golden person id) whose record was opened.
    pub person: String,
    pub reason: BreakGlassReason,
    /// The user's own words; required, at most [`MAX_TEXT_CHARS`] characters.
    pub text: String,
    pub granted_ms: i64,
    pub expires_ms: i64,
}

impl BreakGlass {
    /// Validate a request and make the grant, from `now_ms` for `duration_ms`. Errors say what is
    /// wrong with the request and never repeat its text.
    pub fn request(
        subject: &str,
        organization: Option<&str>,
        person: &str,
        reason: BreakGlassReason,
        text: &str,
        now_ms: i64,
        duration_ms: i64,
    ) -> Result<BreakGlass, String> {
        if subject.trim().is_empty() {
            return Err("break-glass needs the user who asks".to_owned());
        }
        if person.trim().is_empty() {
            return Err("break-glass needs the person whose record is opened".to_owned());
        }
        let text = text.trim();
        if text.is_empty() {
            return Err("break-glass needs a reason in your own words".to_owned());
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(format!(
                "the break-glass reason is longer than {MAX_TEXT_CHARS} characters"
            ));
        }
        if duration_ms <= 0 || duration_ms > MAX_BREAK_GLASS_MS {
            return Err(format!(
                "break-glass lasts more than nothing and at most {} hours",
                MAX_BREAK_GLASS_MS / 3_600_000
            ));
        }
        let expires_ms = now_ms
            .checked_add(duration_ms)
            .ok_or_else(|| "the break-glass time is out of range".to_owned())?;
        Ok(BreakGlass {
            subject: subject.to_owned(),
            organization: organization.map(str::to_owned),
            person: person.to_owned(),
            reason,
            text: text.to_owned(),
            granted_ms: now_ms,
            expires_ms,
        })
    }

    /// Whether the grant is in force: from its grant (inclusive) to its expiry (exclusive).
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.granted_ms <= now_ms && now_ms < self.expires_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn ask(text: &str, duration_ms: i64) -> Result<BreakGlass, String> {
        BreakGlass::request(
            "u1",
            Some("RX1"),
            "person-1",
            BreakGlassReason::EmergencyCare,
            text,
            NOW,
            duration_ms,
        )
    }

    #[test]
    fn a_grant_is_time_boxed() {
        let grant = ask("collapsed in A&E", DEFAULT_BREAK_GLASS_MS).unwrap();
        assert_eq!(grant.granted_ms, NOW);
        assert_eq!(grant.expires_ms, NOW + 4 * 3_600_000);
        assert!(grant.is_active(NOW));
        assert!(grant.is_active(NOW + DEFAULT_BREAK_GLASS_MS - 1));
        assert!(!grant.is_active(NOW + DEFAULT_BREAK_GLASS_MS));
        assert!(!grant.is_active(NOW - 1));
        assert_eq!(grant.organization.as_deref(), Some("RX1"));
    }

    #[test]
    fn the_text_is_required_and_bounded_and_never_echoed() {
        assert!(ask("", DEFAULT_BREAK_GLASS_MS).is_err());
        assert!(ask("   ", DEFAULT_BREAK_GLASS_MS).is_err());
        assert!(ask(&"é".repeat(500), DEFAULT_BREAK_GLASS_MS).is_ok());
        let long = "secret".repeat(100);
        let err = ask(&long, DEFAULT_BREAK_GLASS_MS).unwrap_err();
        assert!(!err.contains("secret"));
    }

    #[test]
    fn durations_and_parties_are_checked() {
        assert!(ask("x", 0).is_err());
        assert!(ask("x", -1).is_err());
        assert!(ask("x", MAX_BREAK_GLASS_MS + 1).is_err());
        assert!(ask("x", MAX_BREAK_GLASS_MS).is_ok());
        let r = BreakGlassReason::Safeguarding;
        assert!(BreakGlass::request("", None, "p", r, "x", NOW, 1).is_err());
        assert!(BreakGlass::request("u", None, " ", r, "x", NOW, 1).is_err());
        assert!(BreakGlass::request("u", None, "p", r, "x", i64::MAX, 1).is_err());
    }

    #[test]
    fn reasons_round_trip() {
        for reason in BreakGlassReason::REASONS {
            assert_eq!(BreakGlassReason::parse(reason.code()), Some(reason));
            assert!(!reason.display().is_empty());
        }
        assert_eq!(BreakGlassReason::parse("because"), None);
        assert!(BreakGlassReason::EmergencyCare.is_emergency());
        assert!(BreakGlassReason::UrgentCare.is_emergency());
        assert!(!BreakGlassReason::Safeguarding.is_emergency());
    }
}
