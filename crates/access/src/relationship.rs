//! The legitimate relationship: the user's organisation holds the person's record or has recently
//! touched it.
//!
//! Owns the kinds of evidence, the recency window and the choice of the fact that establishes a
//! relationship. Does not: find the facts (the hub reads them from the source registry, the MPI
//! links and the record) or decide anything else about access.
//!
//! Rules:
//! - Organisations compare as ODS codes, ignoring ASCII case and surrounding spaces.
//! - `HoldsRecord` and `Registration` never expire.
//! - `Referral`, `Encounter` and `CarePackage` count while their time is within `recent_days` of
//!   now, on either side: a booked encounter or a referral dated tomorrow is as legitimate as one
//!   from last week, and a date implausibly far in the future (bad data) counts no more than one
//!   far in the past. Without a time they do not count, because recency cannot be shown.
//! - Of several facts, a non-expiring one is preferred, then the most recent, so the audit record
//!   names the strongest evidence.

use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;

/// What ties an organisation to a person's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// The organisation is a source that holds a record for the person.
    HoldsRecord,
    /// The person is registered with the organisation (a GP registration).
    Registration,
    /// The organisation sent or received a referral for the person.
    Referral,
    /// The organisation saw the person.
    Encounter,
    /// The organisation provides a care package for the person.
    CarePackage,
}

impl Evidence {
    /// Whether this kind of evidence lasts regardless of time.
    pub fn never_expires(self) -> bool {
        matches!(self, Evidence::HoldsRecord | Evidence::Registration)
    }
}

/// One fact tying an organisation to the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationshipFact {
    /// The organisation's ODS code.
    pub organization: String,
    pub evidence: Evidence,
    /// When the referral, encounter or care package happened (epoch milliseconds).
    pub at_ms: Option<i64>,
}

/// How recent a touch must be to count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationshipPolicy {
    pub recent_days: u32,
}

impl Default for RelationshipPolicy {
    fn default() -> Self {
        RelationshipPolicy { recent_days: 365 }
    }
}

/// The fact that gives `organization` a legitimate relationship at `now_ms`, if any.
pub fn relationship<'a>(
    organization: &str,
    facts: &'a [RelationshipFact],
    policy: &RelationshipPolicy,
    now_ms: i64,
) -> Option<&'a RelationshipFact> {
    let organization = organization.trim();
    if organization.is_empty() {
        return None;
    }
    let window = i64::from(policy.recent_days).saturating_mul(DAY_MS);
    facts
        .iter()
        .filter(|fact| fact.organization.trim().eq_ignore_ascii_case(organization))
        .filter(|fact| {
            fact.evidence.never_expires()
                || fact.at_ms.is_some_and(|at| {
                    now_ms.saturating_sub(at).unsigned_abs() <= window.unsigned_abs()
                })
        })
        .max_by_key(|fact| {
            (
                fact.evidence.never_expires(),
                fact.at_ms.unwrap_or(i64::MIN),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn fact(org: &str, evidence: Evidence, at_ms: Option<i64>) -> RelationshipFact {
        RelationshipFact {
            organization: org.to_owned(),
            evidence,
            at_ms,
        }
    }

    #[test]
    fn holding_or_registration_never_expire() {
        let policy = RelationshipPolicy::default();
        for evidence in [Evidence::HoldsRecord, Evidence::Registration] {
            let facts = [fact("A81001", evidence, None)];
            assert!(relationship("A81001", &facts, &policy, NOW).is_some());
            let facts = [fact("A81001", evidence, Some(0))];
            assert!(relationship("a81001 ", &facts, &policy, NOW).is_some());
            assert!(relationship("B82002", &facts, &policy, NOW).is_none());
        }
    }

    #[test]
    fn touches_count_within_the_window_either_side() {
        let policy = RelationshipPolicy { recent_days: 30 };
        for evidence in [
            Evidence::Referral,
            Evidence::Encounter,
            Evidence::CarePackage,
        ] {
            let at = |days: i64| [fact("RX1", evidence, Some(NOW + days * DAY_MS))];
            assert!(relationship("RX1", &at(-30), &policy, NOW).is_some());
            assert!(relationship("RX1", &at(0), &policy, NOW).is_some());
            assert!(relationship("RX1", &at(30), &policy, NOW).is_some());
            assert!(relationship("RX1", &at(-31), &policy, NOW).is_none());
            assert!(relationship("RX1", &at(31), &policy, NOW).is_none());
            assert!(relationship("RX1", &[fact("RX1", evidence, None)], &policy, NOW).is_none());
        }
    }

    #[test]
    fn the_strongest_fact_is_named() {
        let policy = RelationshipPolicy::default();
        let facts = [
            fact("RX1", Evidence::Encounter, Some(NOW - DAY_MS)),
            fact("RX1", Evidence::Referral, Some(NOW - 2 * DAY_MS)),
            fact("RX1", Evidence::Registration, None),
            fact("OTHER", Evidence::HoldsRecord, None),
        ];
        let got = relationship("RX1", &facts, &policy, NOW).unwrap();
        assert_eq!(got.evidence, Evidence::Registration);
        let got = relationship("RX1", &facts[..2], &policy, NOW).unwrap();
        assert_eq!(got.evidence, Evidence::Encounter);
    }

    #[test]
    fn an_empty_organisation_has_no_relationship_and_extremes_do_not_overflow() {
        let facts = [
            fact("", Evidence::HoldsRecord, None),
            fact("X", Evidence::Encounter, Some(i64::MIN)),
        ];
        let policy = RelationshipPolicy {
            recent_days: u32::MAX,
        };
        assert!(relationship("", &facts, &policy, NOW).is_none());
        assert!(relationship("  ", &facts, &policy, NOW).is_none());
        assert!(relationship("X", &facts, &policy, i64::MAX).is_none());
        assert!(relationship("X", &facts, &RelationshipPolicy::default(), i64::MIN).is_some());
    }
}
