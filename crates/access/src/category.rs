//! Data categories: the unit the permission matrix and the portal speak in.
//!
//! Owns the closed list of categories, the resource type → category table, the rule that places
//! one concrete resource (social-care source, patient-entered tag), and the list of resource
//! types that are not patient data. Does not: say who may see a category (`permission` does).
//!
//! | category | resource types |
//! |---|---|
//! | demographics | Patient, RelatedPerson, Person |
//! | encounters | Encounter, EpisodeOfCare |
//! | appointments | Appointment, AppointmentResponse |
//! | problems | Condition, FamilyMemberHistory, ClinicalImpression, DetectedIssue, Flag |
//! | allergies | AllergyIntolerance, AdverseEvent |
//! | medications | MedicationRequest, MedicationStatement, MedicationAdministration, MedicationDispense, Medication |
//! | immunisations | Immunization, ImmunizationEvaluation, ImmunizationRecommendation |
//! | results | Observation, DiagnosticReport, Specimen, ImagingStudy, Media, MolecularSequence |
//! | procedures | Procedure, DeviceRequest, DeviceUseStatement, NutritionOrder |
//! | care plans | CarePlan, CareTeam, Goal, ServiceRequest (referrals), Task, RequestGroup |
//! | documents | DocumentReference, DocumentManifest, Composition, Communication, CommunicationRequest, QuestionnaireResponse, Binary |
//! | social care | none by type: whatever a social-care source holds (but its Patient) |
//! | patient entered | none by type: whatever carries the patient-entered provenance tag |
//! | consent | Consent |
//! | audit | AuditEvent |
//! | other | every other type (Provenance, Organization, Practitioner, ...) |

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `meta.tag` system Concord uses for where a resource came from.
pub const PROVENANCE_TAG_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/provenance";
/// The `meta.tag` code that marks a resource the patient (or their proxy) wrote.
pub const PATIENT_ENTERED_CODE: &str = "patient-entered";
/// The source kind (as concord-federation spells it) whose records are social care.
pub const SOCIAL_CARE_SOURCE_KIND: &str = "social-care";

/// A data category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
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
    PatientEntered,
    Consent,
    Audit,
    Other,
}

impl Category {
    /// Every category, in table order.
    pub const ALL: [Category; 16] = [
        Category::Demographics,
        Category::Encounters,
        Category::Appointments,
        Category::Problems,
        Category::Allergies,
        Category::Medications,
        Category::Immunisations,
        Category::Results,
        Category::Procedures,
        Category::CarePlans,
        Category::Documents,
        Category::SocialCare,
        Category::PatientEntered,
        Category::Consent,
        Category::Audit,
        Category::Other,
    ];

    /// The wire code (configuration, audit, portal).
    pub fn code(self) -> &'static str {
        match self {
            Category::Demographics => "demographics",
            Category::Encounters => "encounters",
            Category::Appointments => "appointments",
            Category::Problems => "problems",
            Category::Allergies => "allergies",
            Category::Medications => "medications",
            Category::Immunisations => "immunisations",
            Category::Results => "results",
            Category::Procedures => "procedures",
            Category::CarePlans => "care-plans",
            Category::Documents => "documents",
            Category::SocialCare => "social-care",
            Category::PatientEntered => "patient-entered",
            Category::Consent => "consent",
            Category::Audit => "audit",
            Category::Other => "other",
        }
    }

    /// The category for a wire code.
    pub fn parse(code: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The name a person reads.
    pub fn display(self) -> &'static str {
        match self {
            Category::Demographics => "Demographics",
            Category::Encounters => "Encounters",
            Category::Appointments => "Appointments",
            Category::Problems => "Problems",
            Category::Allergies => "Allergies",
            Category::Medications => "Medications",
            Category::Immunisations => "Immunisations",
            Category::Results => "Results",
            Category::Procedures => "Procedures",
            Category::CarePlans => "Care plans",
            Category::Documents => "Documents",
            Category::SocialCare => "Social care",
            Category::PatientEntered => "Entered by the patient",
            Category::Consent => "Consent",
            Category::Audit => "Audit",
            Category::Other => "Other",
        }
    }
}

/// The type table of the module doc; a type not listed is `Other`.
const TYPES: &[(&str, Category)] = &[
    ("Patient", Category::Demographics),
    ("RelatedPerson", Category::Demographics),
    ("Person", Category::Demographics),
    ("Encounter", Category::Encounters),
    ("EpisodeOfCare", Category::Encounters),
    ("Appointment", Category::Appointments),
    ("AppointmentResponse", Category::Appointments),
    ("Condition", Category::Problems),
    ("FamilyMemberHistory", Category::Problems),
    ("ClinicalImpression", Category::Problems),
    ("DetectedIssue", Category::Problems),
    ("Flag", Category::Problems),
    ("AllergyIntolerance", Category::Allergies),
    ("AdverseEvent", Category::Allergies),
    ("MedicationRequest", Category::Medications),
    ("MedicationStatement", Category::Medications),
    ("MedicationAdministration", Category::Medications),
    ("MedicationDispense", Category::Medications),
    ("Medication", Category::Medications),
    ("Immunization", Category::Immunisations),
    ("ImmunizationEvaluation", Category::Immunisations),
    ("ImmunizationRecommendation", Category::Immunisations),
    ("Observation", Category::Results),
    ("DiagnosticReport", Category::Results),
    ("Specimen", Category::Results),
    ("ImagingStudy", Category::Results),
    ("Media", Category::Results),
    ("MolecularSequence", Category::Results),
    ("Procedure", Category::Procedures),
    ("DeviceRequest", Category::Procedures),
    ("DeviceUseStatement", Category::Procedures),
    ("NutritionOrder", Category::Procedures),
    ("CarePlan", Category::CarePlans),
    ("CareTeam", Category::CarePlans),
    ("Goal", Category::CarePlans),
    ("ServiceRequest", Category::CarePlans),
    ("Task", Category::CarePlans),
    ("RequestGroup", Category::CarePlans),
    ("DocumentReference", Category::Documents),
    ("DocumentManifest", Category::Documents),
    ("Composition", Category::Documents),
    ("Communication", Category::Documents),
    ("CommunicationRequest", Category::Documents),
    ("QuestionnaireResponse", Category::Documents),
    ("Binary", Category::Documents),
    ("Consent", Category::Consent),
    ("AuditEvent", Category::Audit),
];

/// Types that hold no one person's data: directories, definitions and terminology. Every type not
/// listed here counts as patient data, so a type this table forgot is guarded, not exposed.
const NOT_PATIENT_DATA: &[&str] = &[
    "Organization",
    "OrganizationAffiliation",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "HealthcareService",
    "Endpoint",
    "Medication",
    "Substance",
    "Schedule",
    "Slot",
    "CapabilityStatement",
    "TerminologyCapabilities",
    "StructureDefinition",
    "SearchParameter",
    "OperationDefinition",
    "CompartmentDefinition",
    "ImplementationGuide",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "NamingSystem",
    "Questionnaire",
    "PlanDefinition",
    "ActivityDefinition",
    "Library",
    "Measure",
    "OperationOutcome",
];

/// The category of a resource type, by the table in the module doc.
pub fn category_of(resource_type: &str) -> Category {
    TYPES
        .iter()
        .find(|(name, _)| *name == resource_type)
        .map_or(Category::Other, |(_, category)| *category)
}

/// The resource types the table places in a category (empty for the categories placed by source
/// or tag, and for `Other`, which is everything else).
pub fn types_of(category: Category) -> impl Iterator<Item = &'static str> {
    TYPES
        .iter()
        .filter(move |(_, c)| *c == category)
        .map(|(name, _)| *name)
}

/// Whether a resource type holds a person's data. Directory, definition and terminology types do
/// not; every other type (including ones this crate does not know) does.
pub fn is_patient_data(resource_type: &str) -> bool {
    !NOT_PATIENT_DATA.contains(&resource_type)
}

/// The category of a concrete resource: `SocialCare` when it came from a social-care source
/// (source kind "social-care") unless it is a Patient; `PatientEntered` when its `meta.tag`
/// carries [`PROVENANCE_TAG_SYSTEM`] | [`PATIENT_ENTERED_CODE`]; otherwise by its type. A value
/// that is not a resource is `Other`.
pub fn category_of_resource(resource: &Value, source_kind: Option<&str>) -> Category {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    category_of_head(resource_type, is_patient_entered(resource), source_kind)
}

/// [`category_of_resource`] from the two things it reads of a resource: its type and whether
/// its `meta.tag` marks it as written by the patient ([`is_patient_entered_tags`]), for a caller
/// that holds resources it has not parsed whole.
pub fn category_of_head(
    resource_type: &str,
    patient_entered: bool,
    source_kind: Option<&str>,
) -> Category {
    if resource_type == "Patient" {
        return Category::Demographics;
    }
    if source_kind == Some(SOCIAL_CARE_SOURCE_KIND) {
        return Category::SocialCare;
    }
    if patient_entered {
        return Category::PatientEntered;
    }
    category_of(resource_type)
}

/// Whether `meta.tag` marks the resource as written by the patient.
pub fn is_patient_entered(resource: &Value) -> bool {
    // Read member by member: `Value::pointer` unescapes each step of its path with
    // `str::replace`, which cost more than the rest of masking a view's resources.
    resource
        .get("meta")
        .and_then(|meta| meta.get("tag"))
        .is_some_and(is_patient_entered_tags)
}

/// Whether a `meta.tag` array holds the patient-entered tag.
pub fn is_patient_entered_tags(tags: &Value) -> bool {
    tags.as_array().is_some_and(|tags| {
        tags.iter().any(|tag| {
            tag.get("system").and_then(Value::as_str) == Some(PROVENANCE_TAG_SYSTEM)
                && tag.get("code").and_then(Value::as_str) == Some(PATIENT_ENTERED_CODE)
        })
    })
}

/// The `meta.tag` coding the hub puts on what a patient or proxy writes.
pub fn patient_entered_tag() -> Value {
    serde_json::json!({
        "system": PROVENANCE_TAG_SYSTEM,
        "code": PATIENT_ENTERED_CODE,
        "display": "Entered by the patient"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_map_to_their_category() {
        for (resource_type, category) in [
            ("Patient", Category::Demographics),
            ("Encounter", Category::Encounters),
            ("Appointment", Category::Appointments),
            ("Condition", Category::Problems),
            ("AllergyIntolerance", Category::Allergies),
            ("MedicationRequest", Category::Medications),
            ("Immunization", Category::Immunisations),
            ("Observation", Category::Results),
            ("Procedure", Category::Procedures),
            ("CarePlan", Category::CarePlans),
            ("DocumentReference", Category::Documents),
            ("Consent", Category::Consent),
            ("AuditEvent", Category::Audit),
            ("Provenance", Category::Other),
            ("Organization", Category::Other),
            ("NoSuchType", Category::Other),
            ("", Category::Other),
        ] {
            assert_eq!(category_of(resource_type), category, "{resource_type}");
        }
    }

    #[test]
    fn every_table_row_is_unique_and_codes_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, _) in TYPES {
            assert!(seen.insert(*name), "{name} listed twice");
        }
        for category in Category::ALL {
            assert_eq!(Category::parse(category.code()), Some(category));
            let json = serde_json::to_value(category).unwrap();
            assert_eq!(json, json!(category.code()));
        }
        assert_eq!(types_of(Category::Consent).collect::<Vec<_>>(), ["Consent"]);
        assert_eq!(types_of(Category::SocialCare).count(), 0);
    }

    #[test]
    fn directory_types_are_not_patient_data_and_unknown_types_are() {
        assert!(!is_patient_data("Organization"));
        assert!(!is_patient_data("Practitioner"));
        assert!(!is_patient_data("Location"));
        assert!(is_patient_data("Observation"));
        assert!(is_patient_data("Patient"));
        assert!(is_patient_data("SomethingNew"));
    }

    #[test]
    fn a_resource_is_placed_by_source_then_tag_then_type() {
        let obs = json!({"resourceType": "Observation"});
        assert_eq!(category_of_resource(&obs, None), Category::Results);
        assert_eq!(category_of_resource(&obs, Some("gp")), Category::Results);
        assert_eq!(
            category_of_resource(&obs, Some("social-care")),
            Category::SocialCare
        );
        let patient = json!({"resourceType": "Patient"});
        assert_eq!(
            category_of_resource(&patient, Some("social-care")),
            Category::Demographics
        );
        let mut tagged = obs.clone();
        tagged["meta"] = json!({"tag": [patient_entered_tag()]});
        assert_eq!(
            category_of_resource(&tagged, None),
            Category::PatientEntered
        );
        let other_tag = json!({"resourceType": "Observation",
            "meta": {"tag": [{"system": "urn:x", "code": "patient-entered"}]}});
        assert_eq!(category_of_resource(&other_tag, None), Category::Results);
        assert_eq!(category_of_resource(&json!(42), None), Category::Other);
        let bad_meta = json!({"resourceType": "Observation", "meta": {"tag": "x"}});
        assert_eq!(category_of_resource(&bad_meta, None), Category::Results);
    }
}
