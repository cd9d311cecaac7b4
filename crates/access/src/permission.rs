//! The role × data category × read/write permission matrix.
//!
//! Owns which categories each role may read and write. Does not: decide whose record (the
//! relationship, own record and break-glass rules live in `decide`), or apply consent.
//!
//! R = read, W = read and write, - = neither.
//!
//! | category        | clinician, nurse, paramedic | social worker | receptionist | privacy officer | data steward | analyst, administrator | patient, proxy |
//! |-----------------|---|---|---|---|---|---|---|
//! | demographics    | W | R | W | - | W | - | R |
//! | encounters      | W | R | R | - | - | - | R |
//! | appointments    | W | W | W | - | - | - | R |
//! | problems        | W | - | - | - | - | - | R |
//! | allergies       | W | R | - | - | - | - | R |
//! | medications     | W | - | - | - | - | - | R |
//! | immunisations   | W | - | - | - | - | - | R |
//! | results         | W | - | - | - | - | - | R |
//! | procedures      | W | - | - | - | - | - | R |
//! | care plans      | W | W | - | - | - | - | R |
//! | documents       | W | - | - | - | - | - | R |
//! | social care     | R | W | - | - | - | - | R |
//! | patient entered | R | - | - | - | - | - | W |
//! | consent         | - | - | - | W | - | - | W |
//! | audit           | - | - | - | R | - | - | R |
//! | other           | W | - | - | - | - | - | R |
//!
//! Why the less obvious cells are as they are:
//!
//! - Social workers see allergies for safety (they arrange meals and placements) but not results,
//!   documents or problems, which are clinical.
//! - Privacy officers see record data only through break-glass; `role_permits` gives them none,
//!   so even break-glass does not: they investigate through the audit trail and consent.
//! - Analysts and administrators get no identifiable record data at all; directory resources
//!   (Organization, Practitioner, ...) are not patient data and are handled by `decide`.
//! - Clinical roles read social care and patient-entered data but do not write them: those belong
//!   to the social-care source and to the patient. They do not see the consent itself (what a
//!   person withholds is itself sensitive) or the audit trail.
//! - Patients and proxies read everything in their own (or proxied) record, including the audit
//!   trail ("who looked at my record"), and write only what they enter themselves
//!   ([`PATIENT_WRITABLE_TYPES`], tagged patient-entered by the hub) and their consent.

use crate::category::{Category, category_of};
use crate::role::Role;

/// The resource types a patient or proxy may write, besides Consent; the hub tags what they write
/// as patient-entered.
pub const PATIENT_WRITABLE_TYPES: [&str; 3] = ["Observation", "QuestionnaireResponse", "Goal"];

/// Whether the role may read (`write` false) or write (`write` true) data of the category, by the
/// table in the module doc. Write implies read.
pub fn role_permits(role: Role, category: Category, write: bool) -> bool {
    use Category::*;
    let (read, written): (&[Category], &[Category]) = match role {
        Role::Clinician | Role::Nurse | Role::Paramedic => (
            &[SocialCare, PatientEntered],
            &[
                Demographics,
                Encounters,
                Appointments,
                Problems,
                Allergies,
                Medications,
                Immunisations,
                Results,
                Procedures,
                CarePlans,
                Documents,
                Other,
            ],
        ),
        Role::SocialWorker => (
            &[Demographics, Encounters, Allergies],
            &[Appointments, CarePlans, SocialCare],
        ),
        Role::Receptionist => (&[Encounters], &[Demographics, Appointments]),
        Role::PrivacyOfficer => (&[Audit], &[Consent]),
        Role::DataSteward => (&[], &[Demographics]),
        Role::Analyst | Role::Administrator => (&[], &[]),
        Role::Patient | Role::Proxy => (
            &[
                Demographics,
                Encounters,
                Appointments,
                Problems,
                Allergies,
                Medications,
                Immunisations,
                Results,
                Procedures,
                CarePlans,
                Documents,
                SocialCare,
                Audit,
                Other,
            ],
            &[PatientEntered, Consent],
        ),
    };
    written.contains(&category) || (!write && read.contains(&category))
}

/// Whether a patient or proxy may write a resource of this type to their own (or proxied) record:
/// Consent and [`PATIENT_WRITABLE_TYPES`].
pub fn citizen_may_write(resource_type: &str) -> bool {
    category_of(resource_type) == Category::Consent
        || PATIENT_WRITABLE_TYPES.contains(&resource_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module doc's table, row by row, in `Category::ALL` order; columns in the doc's order.
    const TABLE: &str = "
        W R W - W - R
        W R R - - - R
        W W W - - - R
        W - - - - - R
        W R - - - - R
        W - - - - - R
        W - - - - - R
        W - - - - - R
        W - - - - - R
        W W - - - - R
        W - - - - - R
        R W - - - - R
        R - - - - - W
        - - - W - - W
        - - - R - - R
        W - - - - - R";

    #[test]
    fn the_matrix_is_the_documented_table() {
        let columns: [&[Role]; 7] = [
            &[Role::Clinician, Role::Nurse, Role::Paramedic],
            &[Role::SocialWorker],
            &[Role::Receptionist],
            &[Role::PrivacyOfficer],
            &[Role::DataSteward],
            &[Role::Analyst, Role::Administrator],
            &[Role::Patient, Role::Proxy],
        ];
        let rows: Vec<&str> = TABLE.trim().lines().map(str::trim).collect();
        assert_eq!(rows.len(), Category::ALL.len());
        for (category, row) in Category::ALL.into_iter().zip(rows) {
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells.len(), columns.len());
            for (roles, cell) in columns.iter().zip(cells) {
                for role in *roles {
                    let expect = (cell != "-", cell == "W");
                    let got = (
                        role_permits(*role, category, false),
                        role_permits(*role, category, true),
                    );
                    assert_eq!(got, expect, "{role:?} {category:?}");
                }
            }
        }
    }

    #[test]
    fn write_implies_read() {
        for role in Role::ALL {
            for category in Category::ALL {
                if role_permits(role, category, true) {
                    assert!(role_permits(role, category, false), "{role:?} {category:?}");
                }
            }
        }
    }

    #[test]
    fn citizens_write_only_their_entries_and_consent() {
        for t in ["Observation", "QuestionnaireResponse", "Goal", "Consent"] {
            assert!(citizen_may_write(t), "{t}");
        }
        for t in [
            "Condition",
            "Patient",
            "AuditEvent",
            "MedicationRequest",
            "",
        ] {
            assert!(!citizen_may_write(t), "{t}");
        }
    }
}
