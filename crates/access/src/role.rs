//! Roles modelled on the national RBAC baseline (issue 6, item 2).
//!
//! Owns the closed list of roles a principal can carry, their wire codes (as tokens and the CLI
//! spell them) and their display names, plus the two role facts the decision needs: which roles
//! are staff and which may break glass. Does not: say what a role may see (`permission` does) or
//! map an external provider's claims to roles (concord-auth does).

use serde::{Deserialize, Serialize};

/// A role a user acts in. A token may carry several; the decision takes the union of what they
/// permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Clinician,
    Nurse,
    Paramedic,
    SocialWorker,
    Receptionist,
    PrivacyOfficer,
    DataSteward,
    Analyst,
    Administrator,
    Patient,
    Proxy,
}

impl Role {
    /// Every role, in the order the permission table lists them.
    pub const ALL: [Role; 11] = [
        Role::Clinician,
        Role::Nurse,
        Role::Paramedic,
        Role::SocialWorker,
        Role::Receptionist,
        Role::PrivacyOfficer,
        Role::DataSteward,
        Role::Analyst,
        Role::Administrator,
        Role::Patient,
        Role::Proxy,
    ];

    /// The wire code, as tokens, the CLI and the configuration spell it.
    pub fn code(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::Nurse => "nurse",
            Role::Paramedic => "paramedic",
            Role::SocialWorker => "social-worker",
            Role::Receptionist => "receptionist",
            Role::PrivacyOfficer => "privacy-officer",
            Role::DataSteward => "data-steward",
            Role::Analyst => "analyst",
            Role::Administrator => "administrator",
            Role::Patient => "patient",
            Role::Proxy => "proxy",
        }
    }

    /// The role for a wire code; codes are exact (lower case, hyphenated).
    pub fn parse(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.code() == code)
    }

    /// The name a person reads, for the portal's "who looked at my record".
    pub fn display(self) -> &'static str {
        match self {
            Role::Clinician => "Clinician",
            Role::Nurse => "Nurse",
            Role::Paramedic => "Paramedic",
            Role::SocialWorker => "Social worker",
            Role::Receptionist => "Receptionist",
            Role::PrivacyOfficer => "Privacy officer",
            Role::DataSteward => "Data steward",
            Role::Analyst => "Analyst",
            Role::Administrator => "Administrator",
            Role::Patient => "Patient",
            Role::Proxy => "Proxy",
        }
    }

    /// Whether the role acts for an organisation (every role but patient and proxy, who act for
    /// themselves or the people they are proxy for).
    pub fn is_staff(self) -> bool {
        !matches!(self, Role::Patient | Role::Proxy)
    }

    /// Whether a user in this role may break glass: the roles that give direct care.
    pub fn may_break_glass(self) -> bool {
        matches!(
            self,
            Role::Clinician | Role::Nurse | Role::Paramedic | Role::SocialWorker
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for role in Role::ALL {
            assert_eq!(Role::parse(role.code()), Some(role));
            assert!(seen.insert(role.code()));
            assert!(!role.display().is_empty());
        }
        assert_eq!(Role::parse("Clinician"), None);
        assert_eq!(Role::parse(""), None);
        assert_eq!(Role::SocialWorker.code(), "social-worker");
    }

    #[test]
    fn serde_uses_the_wire_code() {
        for role in Role::ALL {
            let json = serde_json::to_value(role).unwrap();
            assert_eq!(json, serde_json::Value::String(role.code().to_owned()));
            let back: Role = serde_json::from_value(json).unwrap();
            assert_eq!(back, role);
        }
    }

    #[test]
    fn only_direct_care_roles_break_glass() {
        let breakers: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| r.may_break_glass())
            .map(Role::code)
            .collect();
        assert_eq!(
            breakers,
            ["clinician", "nurse", "paramedic", "social-worker"]
        );
        assert!(!Role::Patient.is_staff());
        assert!(!Role::Proxy.is_staff());
        assert!(Role::Analyst.is_staff());
    }
}
