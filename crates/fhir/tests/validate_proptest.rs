//! Robustness of `concord_fhir::validate` on arbitrary JSON.
//!
//! Owns: the property that validation returns (never panics, never exceeds its issue cap) for any
//! JSON value, including values shaped like resources so the walk reaches deep into the table.
//! Does not: check which issues are reported (see `validate_negative.rs`).

use concord_fhir::validate::{MAX_ISSUES, validate_resource};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys that exist somewhere in the R4 element table, so random objects often match real
/// elements (and the validator descends) instead of stopping at the first unknown key.
const KEYS: &[&str] = &[
    "resourceType",
    "id",
    "_id",
    "meta",
    "text",
    "div",
    "status",
    "contained",
    "extension",
    "url",
    "valueString",
    "valueQuantity",
    "_valueString",
    "value",
    "name",
    "given",
    "_given",
    "family",
    "entry",
    "resource",
    "request",
    "method",
    "parameter",
    "part",
    "item",
    "linkId",
    "reference",
    "subject",
    "code",
    "coding",
    "system",
    "birthDate",
    "_birthDate",
    "active",
    "component",
    "valueBoolean",
    "valueInteger",
    "modifierExtension",
    "identifier",
    "period",
    "start",
];

const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Bundle",
    "Parameters",
    "Questionnaire",
    "Extension",
    "HumanName",
    "Unicorn",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9 :/#.-]{0,12}".prop_map(Value::from),
        prop::sample::select(TYPES).prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(8, 128, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner.clone()), 0..6).prop_map(
                |entries| Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect()
                )
            ),
            prop::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A resource-shaped object: a real (or fake) resourceType plus random members.
fn resource() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(TYPES),
        prop::collection::vec((prop::sample::select(KEYS), json()), 0..8),
    )
        .prop_map(|(resource_type, members)| {
            let mut map = Map::new();
            map.insert("resourceType".into(), Value::from(resource_type));
            for (k, v) in members {
                map.insert(k.to_string(), v);
            }
            Value::Object(map)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_json(value in json()) {
        let issues = validate_resource(&value);
        prop_assert!(issues.len() <= MAX_ISSUES + 1);
    }

    #[test]
    fn never_panics_on_resource_shaped_json(value in resource()) {
        let issues = validate_resource(&value);
        prop_assert!(issues.len() <= MAX_ISSUES + 1);
        prop_assert!(issues.iter().all(|i| i.is_error()));
    }
}
