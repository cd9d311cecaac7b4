//! Property tests of the merge: the result does not depend on the order a source sent its
//! resources, the output is ordered and tagged as promised, and no input whatever makes the merge
//! or the summary panic.
//!
//! Owns the generators: resources drawn from a small universe of types, ids, identifiers, codes,
//! dates and values, so that duplicates across and within sources and repeats of one id are
//! common rather than rare.

mod common;

use std::collections::BTreeSet;

use common::{NOW_MS, catalog, resource as read_resource, source_info};
use concord_federation::{
    Freshness, Resource, SOURCE_ORGANIZATION_URL, SourceResult, SourceStatus, merge, summary,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const SOURCES: [&str; 4] = ["gp-a", "acute-b", "mh-c", "sc-e"];

fn opt<T: Clone + std::fmt::Debug + 'static>(
    values: &'static [T],
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(prop::sample::select(values))
}

/// A resource from a small universe: the same type and id often repeat within a source (with
/// different content), and the same facts often repeat across sources.
fn resource() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(
            &[
                "Observation",
                "Condition",
                "Immunization",
                "Patient",
                "Encounter",
            ][..],
        ),
        0..5u8,
        opt(&["A", "B"][..]),
        opt(&["1", "2", "3"][..]),
        opt(&[
            "2024-05-01",
            "2024-05-01T10:00:00+01:00",
            "2024-05-02",
            "2024-05",
        ][..]),
        opt(&[48i64, 49][..]),
        opt(&["1", "2", "10"][..]),
    )
        .prop_map(
            |(resource_type, id, identifier, code, date, value, version)| {
                let mut r = Map::new();
                r.insert("resourceType".into(), json!(resource_type));
                r.insert("id".into(), json!(format!("r{id}")));
                if let Some(version) = version {
                    r.insert("meta".into(), json!({ "versionId": version }));
                }
                if let Some(identifier) = identifier {
                    r.insert(
                        "identifier".into(),
                        json!([{ "system": "https://example.org/id", "value": identifier }]),
                    );
                }
                if let Some(code) = code {
                    let key = if resource_type == "Immunization" {
                        "vaccineCode"
                    } else {
                        "code"
                    };
                    r.insert(
                        key.into(),
                        json!({ "coding": [{ "system": "http://snomed.info/sct", "code": code }] }),
                    );
                }
                if let Some(date) = date {
                    let key = match resource_type {
                        "Observation" => "effectiveDateTime",
                        "Condition" => "onsetDateTime",
                        "Immunization" => "occurrenceDateTime",
                        _ => "date",
                    };
                    r.insert(key.into(), json!(date));
                }
                if let Some(value) = value {
                    r.insert(
                        "valueQuantity".into(),
                        json!({ "value": value, "code": "mmol/mol" }),
                    );
                }
                Value::Object(r)
            },
        )
}

/// One source's resources as sent, and the same resources in another order.
fn source_resources() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    prop::collection::vec(resource(), 0..12)
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

fn results(per_source: Vec<Vec<Value>>) -> Vec<SourceResult> {
    let catalog = catalog();
    per_source
        .into_iter()
        .zip(SOURCES)
        .map(|(resources, id)| SourceResult {
            source: source_info(&json!(id), &catalog),
            status: SourceStatus::Ok,
            resources: resources.iter().map(read_resource).collect(),
            elapsed_ms: 10,
            forwarded_issues: Vec::new(),
        })
        .collect()
}

/// Any JSON, biased towards the keys the merge reads, so malformed shapes of exactly those
/// elements are tried.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(
            &[
                "Observation",
                "Patient",
                "Condition",
                "x",
                "",
                "2024-05-01",
                "2024-13-45",
                "2024-05-01T25:61:00+99:99",
                "9999-12-31T23:59:59.9999999-14:00",
                "-0001",
                "../x",
                "http://loinc.org",
                "vital-signs",
                "laboratory",
                "#x",
                "Patient/1",
                "https://concord.health/fhir/StructureDefinition/source-organization",
            ][..]
        )
        .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(
                        &[
                            "resourceType",
                            "id",
                            "meta",
                            "extension",
                            "url",
                            "valueReference",
                            "source",
                            "identifier",
                            "system",
                            "value",
                            "code",
                            "coding",
                            "vaccineCode",
                            "effectiveDateTime",
                            "effectivePeriod",
                            "start",
                            "onsetDateTime",
                            "recordedDate",
                            "valueQuantity",
                            "component",
                            "valueCodeableConcept",
                            "category",
                            "reference",
                            "versionId",
                            "lastUpdated",
                            "display",
                            "text",
                        ][..]
                    ),
                    inner,
                ),
                0..6,
            )
            .prop_map(|pairs| Value::Object(
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn status() -> impl Strategy<Value = SourceStatus> {
    prop_oneof![
        Just(SourceStatus::Ok),
        any::<u64>().prop_map(|after_ms| SourceStatus::Timeout { after_ms }),
        "\\PC{0,12}".prop_map(|reason| SourceStatus::Failed { reason }),
        "\\PC{0,12}".prop_map(|reason| SourceStatus::Invalid { reason }),
        Just(SourceStatus::BreakerOpen),
        "\\PC{0,12}".prop_map(|reason| SourceStatus::Skipped { reason }),
    ]
}

proptest! {
    #[test]
    fn order_within_a_source_does_not_change_the_result(
        sources in prop::collection::vec(source_resources(), 1..=4),
    ) {
        let (sent, shuffled): (Vec<_>, Vec<_>) = sources.into_iter().unzip();
        let a = merge(results(sent), NOW_MS);
        let b = merge(results(shuffled), NOW_MS);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn output_is_ordered_tagged_and_unique(
        sources in prop::collection::vec(prop::collection::vec(resource(), 0..12), 1..=4),
    ) {
        let consulted = sources.len();
        let merged = merge(results(sources), NOW_MS);
        let mut seen = BTreeSet::new();
        let mut last_type: Option<(bool, String)> = None;
        for entry in &merged.entries {
            prop_assert!(seen.insert(entry.full_url.clone()), "fullUrl {} twice", entry.full_url);
            let r = &entry.resource.to_value();
            let resource_type = r["resourceType"].as_str().unwrap().to_string();
            let key = (resource_type != "Patient", resource_type.clone());
            if let Some(last) = &last_type {
                prop_assert!(*last <= key, "{last:?} before {key:?}");
            }
            last_type = Some(key);
            let tail = format!("/{}/{}", resource_type, r["id"].as_str().unwrap());
            prop_assert!(entry.full_url.ends_with(&tail), "{} ends with {}", entry.full_url, tail);
            prop_assert!(r["meta"]["source"].as_str().is_some_and(|s| entry.full_url.starts_with(s)));
            let origins = r["meta"]["extension"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["url"] == SOURCE_ORGANIZATION_URL)
                .count();
            prop_assert_eq!(origins, 1);
        }
        // One issue per source, none forwarded here.
        prop_assert_eq!(merged.outcome["issue"].as_array().unwrap().len(), consulted);
    }

    #[test]
    fn no_input_makes_merge_or_summary_panic(
        inputs in prop::collection::vec(
            (
                prop::collection::vec(arbitrary_json(), 0..6),
                prop::collection::vec(arbitrary_json(), 0..3),
                status(),
                any::<u64>(),
                prop::option::of(any::<i64>()),
                any::<i64>(),
            ),
            0..4,
        ),
        now_ms in any::<i64>(),
        patient in arbitrary_json(),
    ) {
        let catalog = catalog();
        let count = inputs.len();
        let results: Vec<SourceResult> = inputs
            .into_iter()
            .zip(SOURCES)
            .map(|((resources, forwarded_issues, status, elapsed_ms, last_load_ms, max_age_ms), id)| {
                let mut source = source_info(&json!(id), &catalog);
                source.freshness = Freshness::Batch { last_load_ms, max_age_ms };
                // Only objects reach the merge: the connector refuses an answer with anything else.
                let resources = resources
                    .iter()
                    .filter_map(|v| Resource::from_json(&v.to_string()).ok())
                    .collect();
                SourceResult { source, status, resources, elapsed_ms, forwarded_issues }
            })
            .collect();
        let merged = merge(results, now_ms);
        let issues = merged.outcome["issue"].as_array().unwrap();
        prop_assert!(issues.len() >= count.max(1));
        let document = summary(merged.clone(), &patient, "c", "b", "2024-06-01T12:00:00Z");
        // The hand-written text is exactly what the serializer writes.
        prop_assert_eq!(document.to_json(), serde_json::to_string(&document).unwrap());
        let document = document.to_value();
        prop_assert_eq!(&document["type"], "document");
    }
}
