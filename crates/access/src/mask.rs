//! The mask: what a permitted caller may see of each resource in the person's record.
//!
//! Owns the [`Filter`] a permit carries, the per-resource [`mask`] verdict and the
//! OperationOutcome issue a masked response carries. Does not: decide whether the caller may see
//! the record at all (`decide` does, first), remove anything from a response (the hub drops what
//! is withheld), or know the source of a resource (federation's provenance tells the hub).
//!
//! A resource is withheld when any of these holds, checked in this order; each only ever
//! withholds, so adding a withholding to a filter never reveals more:
//!
//! 1. its category (by [`crate::category::category_of_resource`]) is not in `categories`;
//! 2. `only_organizations` is set and its source organisation is unknown or not in it;
//! 3. its source organisation is in `withheld_organizations`;
//! 4. any Coding anywhere in it (`code`, `category`, `valueCodeableConcept`, `type`, `class`,
//!    `reasonCode`, `meta.security`, and every other element: a Coding is any object with a string
//!    `system` and `code`) matches one of `withheld_codes`.
//!
//! A Patient resource is never withheld: the person's own demographics are how the caller knows
//! whose record they opened, and the decision has already allowed it. Organisations compare as
//! ODS codes, ignoring ASCII case and surrounding spaces.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::category::{Category, category_of_head, is_patient_entered};
use crate::consent::CodeMatch;

/// What a caller may see of the person's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The categories the caller may see (by role and scopes).
    pub categories: BTreeSet<Category>,
    /// Organisations whose records are withheld (by consent).
    pub withheld_organizations: BTreeSet<String>,
    /// When set, only records from these organisations are shown (an opt-out).
    pub only_organizations: Option<BTreeSet<String>>,
    /// Codes whose presence withholds a resource (withheld sensitive categories).
    pub withheld_codes: Vec<CodeMatch>,
}

impl Filter {
    /// The filter that withholds nothing.
    pub fn everything() -> Filter {
        Filter {
            categories: Category::ALL.into_iter().collect(),
            withheld_organizations: BTreeSet::new(),
            only_organizations: None,
            withheld_codes: Vec::new(),
        }
    }

    /// Whether the filter withholds nothing, so the hub may skip masking.
    pub fn is_everything(&self) -> bool {
        self.categories.len() == Category::ALL.len()
            && self.withheld_organizations.is_empty()
            && self.only_organizations.is_none()
            && self.withheld_codes.is_empty()
    }
}

/// The mask's verdict on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Keep,
    Withhold,
}

/// Mask one resource of the person's record, by the rules in the module doc. Its source
/// organisation (ODS code) and source kind come from federation's provenance.
pub fn mask(
    filter: &Filter,
    resource: &Value,
    source_organization: Option<&str>,
    source_kind: Option<&str>,
) -> Verdict {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let head = mask_head(
        filter,
        resource_type,
        is_patient_entered(resource),
        source_organization,
        source_kind,
    );
    if head == Verdict::Keep
        && resource_type != "Patient"
        && !filter.withheld_codes.is_empty()
        && has_withheld_code(resource, &filter.withheld_codes)
    {
        return Verdict::Withhold;
    }
    head
}

/// Rules 1 to 3 of [`mask`], from the two things they read of a resource: its type and whether
/// its `meta.tag` marks it as written by the patient
/// ([`crate::category::is_patient_entered_tags`]). When [`reads_whole_resource`] is false this
/// is the whole verdict, and a caller holding resources it has not parsed (the federated view)
/// need not build a value for each.
pub fn mask_head(
    filter: &Filter,
    resource_type: &str,
    patient_entered: bool,
    source_organization: Option<&str>,
    source_kind: Option<&str>,
) -> Verdict {
    if resource_type == "Patient" {
        return Verdict::Keep;
    }
    if !filter.categories.contains(&category_of_head(
        resource_type,
        patient_entered,
        source_kind,
    )) {
        return Verdict::Withhold;
    }
    let in_set = |set: &BTreeSet<String>| {
        source_organization.is_some_and(|org| set.iter().any(|o| same_organization(o, org)))
    };
    if let Some(only) = &filter.only_organizations
        && !in_set(only)
    {
        return Verdict::Withhold;
    }
    if in_set(&filter.withheld_organizations) {
        return Verdict::Withhold;
    }
    Verdict::Keep
}

/// Whether [`mask`] under `filter` reads more of a resource than its `resourceType` and
/// `meta.tag` (which marks what a patient wrote): only withheld codes, which may be anywhere in
/// it, need the whole resource. A caller holding resources it has not parsed (the federated view)
/// hands the mask only those two otherwise.
pub fn reads_whole_resource(filter: &Filter) -> bool {
    !filter.withheld_codes.is_empty()
}

/// Whether two ODS codes name the same organisation.
pub(crate) fn same_organization(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Whether any Coding anywhere in the value matches. The walk uses its own stack, so no nesting
/// depth can exhaust the thread's.
fn has_withheld_code(resource: &Value, codes: &[CodeMatch]) -> bool {
    let mut stack = vec![resource];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let (Some(Value::String(system)), Some(Value::String(code))) =
                    (map.get("system"), map.get("code"))
                    && codes.iter().any(|m| m.matches(system, code))
                {
                    return true;
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

/// The OperationOutcome issue a masked response carries: it says that something was withheld,
/// never what or how much, so its presence alone is all a reader learns.
pub fn withheld_issue() -> Value {
    json!({
        "severity": "information",
        "code": "suppressed",
        "diagnostics": "Some information in this record has been withheld, in line with access rules or the person's consent."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNOMED: &str = "http://snomed.info/sct";

    fn hiv_condition() -> Value {
        json!({"resourceType": "Condition", "id": "c1",
            "code": {"coding": [{"system": SNOMED, "code": "86406008"}]}})
    }

    fn hiv_filter() -> Filter {
        Filter {
            withheld_codes: vec![CodeMatch::new(SNOMED, "86406008")],
            ..Filter::everything()
        }
    }

    #[test]
    fn without_withheld_codes_only_type_and_meta_tags_decide() {
        let filter = Filter {
            categories: BTreeSet::from([Category::Problems, Category::PatientEntered]),
            withheld_organizations: BTreeSet::from(["RXY".to_string()]),
            ..Filter::everything()
        };
        assert!(!reads_whole_resource(&filter));
        let whole = json!({"resourceType": "Observation", "id": "o",
            "meta": {"versionId": "3", "security": [{"code": "R"}],
                "tag": [{"system": crate::category::PROVENANCE_TAG_SYSTEM, "code": crate::category::PATIENT_ENTERED_CODE}]},
            "code": {"coding": [{"system": SNOMED, "code": "86406008"}]}});
        let head =
            json!({"resourceType": "Observation", "meta": {"tag": whole["meta"]["tag"].clone()}});
        for (org, kind) in [
            (None, None),
            (Some("RXY"), None),
            (Some("A1"), Some("social-care")),
        ] {
            assert_eq!(
                mask(&filter, &whole, org, kind),
                mask(&filter, &head, org, kind)
            );
            assert_eq!(
                mask(&filter, &whole, org, kind),
                mask_head(&filter, "Observation", true, org, kind)
            );
        }
        assert!(reads_whole_resource(&hiv_filter()));
    }

    #[test]
    fn everything_keeps_everything() {
        let filter = Filter::everything();
        assert!(filter.is_everything());
        for resource in [
            hiv_condition(),
            json!({"resourceType": "AuditEvent"}),
            json!(null),
            json!({}),
        ] {
            assert_eq!(mask(&filter, &resource, None, None), Verdict::Keep);
        }
        assert!(!hiv_filter().is_everything());
    }

    #[test]
    fn categories_withhold_by_resource_category() {
        let filter = Filter {
            categories: BTreeSet::from([Category::Demographics, Category::Problems]),
            ..Filter::everything()
        };
        assert_eq!(mask(&filter, &hiv_condition(), None, None), Verdict::Keep);
        assert_eq!(
            mask(&filter, &hiv_condition(), None, Some("social-care")),
            Verdict::Withhold
        );
        let obs = json!({"resourceType": "Observation"});
        assert_eq!(mask(&filter, &obs, None, None), Verdict::Withhold);
        // The person's Patient resource is never withheld.
        let nothing = Filter {
            categories: BTreeSet::new(),
            ..Filter::everything()
        };
        let patient = json!({"resourceType": "Patient"});
        assert_eq!(
            mask(&nothing, &patient, None, Some("social-care")),
            Verdict::Keep
        );
    }

    #[test]
    fn organisations_withhold_by_source() {
        let only = Filter {
            only_organizations: Some(BTreeSet::from(["RX1".to_owned()])),
            ..Filter::everything()
        };
        let obs = json!({"resourceType": "Observation"});
        assert_eq!(mask(&only, &obs, Some("rx1"), None), Verdict::Keep);
        assert_eq!(mask(&only, &obs, Some("A81001"), None), Verdict::Withhold);
        assert_eq!(mask(&only, &obs, None, None), Verdict::Withhold);
        let withheld = Filter {
            withheld_organizations: BTreeSet::from(["A81001".to_owned()]),
            ..Filter::everything()
        };
        assert_eq!(
            mask(&withheld, &obs, Some("A81001 "), None),
            Verdict::Withhold
        );
        assert_eq!(mask(&withheld, &obs, Some("RX1"), None), Verdict::Keep);
        assert_eq!(mask(&withheld, &obs, None, None), Verdict::Keep);
    }

    #[test]
    fn codes_are_found_anywhere() {
        let filter = hiv_filter();
        assert_eq!(
            mask(&filter, &hiv_condition(), None, None),
            Verdict::Withhold
        );
        let coding = json!({"coding": [{"system": SNOMED, "code": "86406008"}]});
        for (field, value) in [
            ("category", json!([coding.clone()])),
            ("valueCodeableConcept", coding.clone()),
            ("type", json!([coding.clone()])),
            ("class", json!({"system": SNOMED, "code": "86406008"})),
            ("reasonCode", json!([coding.clone()])),
            (
                "meta",
                json!({"security": [{"system": SNOMED, "code": "86406008"}]}),
            ),
            ("component", json!([{"code": coding.clone()}])),
        ] {
            let mut resource = json!({"resourceType": "Observation"});
            resource[field] = value;
            assert_eq!(
                mask(&filter, &resource, None, None),
                Verdict::Withhold,
                "{field}"
            );
        }
        let other = json!({"resourceType": "Condition", "code": {"coding": [{"system": SNOMED, "code": "1"}]}});
        assert_eq!(mask(&filter, &other, None, None), Verdict::Keep);
        let wrong_system = json!({"resourceType": "Condition", "code": {"coding": [{"system": "urn:x", "code": "86406008"}]}});
        assert_eq!(mask(&filter, &wrong_system, None, None), Verdict::Keep);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // Built by hand: `json!` serialises its arguments recursively, which is what this avoids.
        let mut value = json!({"system": SNOMED, "code": "86406008"});
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        let mut resource = json!({"resourceType": "Observation"});
        if let Value::Object(map) = &mut resource {
            map.insert("extension".to_owned(), value);
        }
        assert_eq!(
            mask(&hiv_filter(), &resource, None, None),
            Verdict::Withhold
        );
        // Dropping a value recurses; leak it rather than overflow the test thread.
        std::mem::forget(resource);
    }

    #[test]
    fn the_issue_says_only_that_something_was_withheld() {
        let issue = withheld_issue();
        assert_eq!(issue["severity"], "information");
        assert_eq!(issue["code"], "suppressed");
        assert!(issue["diagnostics"].as_str().unwrap().contains("withheld"));
    }
}
