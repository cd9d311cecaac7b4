//! The negative suite of `concord_fhir::validate`: one invalid resource per case, its issues kept
//! as an insta snapshot (input and output side by side in `snapshots/`).
//!
//! Owns: the expected messages, codes and FHIRPath expressions of structural issues. Does not:
//! test the official examples (see `official_examples.rs`) or robustness on random input (see
//! `validate_proptest.rs`).

use concord_fhir::Issue;
use concord_fhir::validate::{MAX_ISSUES, validate_resource};
use serde_json::{Value, json};

/// Renders issues one per line: `severity code expression: diagnostics`.
fn render(issues: &[Issue]) -> String {
    if issues.is_empty() {
        return "(no issues)".into();
    }
    issues
        .iter()
        .map(|i| {
            let at = if i.expression.is_empty() {
                String::new()
            } else {
                format!(" {}", i.expression.join(", "))
            };
            format!(
                "{} {}{at}: {}",
                i.severity.code(),
                i.code.code(),
                i.diagnostics
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Validates `resource` and compares its issues with the snapshot `name`; the snapshot's
/// description holds the input so a reviewer sees both.
fn check(name: &str, resource: Value) {
    let issues = validate_resource(&resource);
    assert!(!issues.is_empty(), "{name}: expected issues for {resource}");
    let mut settings = insta::Settings::clone_current();
    let mut input = serde_json::to_string(&resource).unwrap();
    // Keeps generated inputs such as the huge array short enough to review.
    if let Some((cut, _)) = input.char_indices().nth(400) {
        input.truncate(cut);
        input.push_str("...");
    }
    settings.set_description(input);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, render(&issues)));
}

fn assert_valid(resource: Value) {
    let issues = validate_resource(&resource);
    assert!(issues.is_empty(), "{resource}\n{}", render(&issues));
}

#[test]
fn valid_codes_of_required_bindings_have_no_issues() {
    // A nested concept of a hierarchical CodeSystem (amended > corrected), a resource type, an
    // enumerated UCUM unit, a mime type (not checked: not enumerable) and a code given only by its
    // extensions.
    assert_valid(json!({
        "resourceType": "Observation",
        "status": "corrected",
        "code": {"text": "x"},
        "effectiveTiming": {"repeat": {"duration": 1, "durationUnit": "h"}},
        "dataAbsentReason": {"text": "y"}
    }));
    assert_valid(json!({
        "resourceType": "Patient",
        "_gender": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
        "contact": [{"gender": "other"}],
        "photo": [{"contentType": "application/x-anything"}]
    }));
    assert_valid(json!({
        "resourceType": "Subscription", "status": "active", "reason": "r", "criteria": "Patient?",
        "channel": {"type": "rest-hook", "payload": "application/fhir+json"}
    }));
    assert_valid(json!({
        "resourceType": "SearchParameter", "url": "http://example.org/sp", "name": "n",
        "status": "draft", "description": "d", "code": "c", "base": ["Patient", "Observation"],
        "type": "token"
    }));
}

#[test]
fn valid_resources_have_no_issues() {
    assert_valid(json!({
        "resourceType": "Observation",
        "id": "f0e1d2c3-b4a5-4697-8877-665544332211",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"}], "text": "Body Height"},
        "subject": {"reference": "urn:uuid:0b6e3c5e-4c3a-4ad0-9c8b-1a2b3c4d5e6f"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2012-06-18T05:10:30-04:00",
        "issued": "2012-06-18T05:10:30.322-04:00",
        "valueQuantity": {"value": 176.3, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"}
    }));
    // A primitive array with a value-less item carried by its `_name` twin, and a single primitive
    // that only has an extension.
    assert_valid(json!({
        "resourceType": "Patient",
        "name": [{"given": ["Ann", null], "_given": [null, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}]}],
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
        "contained": [{"resourceType": "Organization", "id": "o1", "name": "Org"}],
        "managingOrganization": {"reference": "#o1"}
    }));
    assert_valid(json!({
        "resourceType": "Questionnaire", "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string"}]}]
    }));
}

#[test]
fn wrong_json_types() {
    check(
        "string_for_boolean",
        json!({"resourceType": "Patient", "active": "true"}),
    );
    check(
        "number_for_string",
        json!({"resourceType": "Patient", "name": [{"family": 42}]}),
    );
    check(
        "object_for_array",
        json!({"resourceType": "Patient", "name": {"family": "Doe"}}),
    );
    check(
        "array_for_single",
        json!({"resourceType": "Patient", "gender": ["male"], "birthDate": ["2000-01-01"]}),
    );
    check(
        "string_for_object",
        json!({"resourceType": "Patient", "maritalStatus": "married"}),
    );
    check(
        "bad_decimal",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueQuantity": {"value": "12.5"}}),
    );
}

#[test]
fn unknown_elements() {
    check(
        "unknown_element",
        json!({"resourceType": "Patient", "foo": 1, "name": [{"given": ["a"], "middle": "b"}]}),
    );
    check(
        "unknown_choice_suffix",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueFoo": 1, "value": 2}),
    );
    check(
        "underscore_on_complex",
        json!({"resourceType": "Patient", "_name": {"id": "n"}}),
    );
}

#[test]
fn resource_type_problems() {
    check(
        "unknown_resource_type",
        json!({"resourceType": "Unicorn", "id": "1"}),
    );
    check(
        "datatype_as_resource_type",
        json!({"resourceType": "HumanName", "family": "Doe"}),
    );
    check(
        "abstract_resource_type",
        json!({"resourceType": "DomainResource"}),
    );
    check(
        "missing_resource_type",
        json!({"id": "1", "name": [{"family": "Doe"}]}),
    );
    check(
        "resource_type_not_a_string",
        json!({"resourceType": ["Patient"]}),
    );
    check("not_an_object", json!(["Patient"]));
}

#[test]
fn required_bindings() {
    check(
        "gender_not_in_value_set",
        json!({"resourceType": "Patient", "gender": "nonsense"}),
    );
    // Codes are case-sensitive.
    check(
        "gender_wrong_case",
        json!({"resourceType": "Patient", "gender": "Female"}),
    );
    check(
        "observation_status_not_in_value_set",
        json!({"resourceType": "Observation", "status": "done", "code": {"text": "x"}}),
    );
    check(
        "bundle_type_not_in_value_set",
        json!({"resourceType": "Bundle", "type": "bag"}),
    );
    // In a BackboneElement, in a datatype, and in a resource nested in a Bundle.
    check(
        "nested_code_not_in_value_set",
        json!({"resourceType": "Patient",
        "contact": [{"gender": "M"}],
        "name": [{"use": "common", "family": "Doe"}]}),
    );
    check(
        "code_in_bundle_entry_not_in_value_set",
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": {"resourceType": "Patient", "gender": "f"},
            "request": {"method": "GET", "url": "Patient"}
        }, {
            "resource": {"resourceType": "Patient"},
            "request": {"method": "FETCH", "url": "Patient"}
        }]}),
    );
    // A long list is cut short in the message.
    check(
        "long_value_set_is_summarised",
        json!({"resourceType": "CapabilityStatement", "status": "active", "date": "2020-01-01",
        "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
        "rest": [{"mode": "server", "resource": [{"type": "Patients"}]}]}),
    );
}

#[test]
fn primitive_values() {
    check("bad_id", json!({"resourceType": "Patient", "id": "a_b"}));
    check(
        "id_too_long",
        json!({"resourceType": "Patient", "id": "x".repeat(65)}),
    );
    check(
        "invalid_month",
        json!({"resourceType": "Patient", "birthDate": "2020-13-01"}),
    );
    check(
        "invalid_day",
        json!({"resourceType": "Patient", "birthDate": "2020-02-30"}),
    );
    check(
        "date_time_without_zone",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "effectiveDateTime": "2020-01-01T10:00:00"}),
    );
    check(
        "instant_without_time",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "issued": "2020-01-01"}),
    );
    check(
        "integer_out_of_range",
        json!({"resourceType": "Patient", "multipleBirthInteger": 3_000_000_000_i64}),
    );
    check(
        "integer_with_fraction",
        json!({"resourceType": "Patient", "multipleBirthInteger": 1.5}),
    );
    check(
        "positive_int_zero",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueSampledData": {"origin": {"value": 0}, "period": 1, "dimensions": 0}}),
    );
    check(
        "long_value_is_truncated",
        json!({"resourceType": "Patient", "gender": format!(" {}", "m".repeat(200))}),
    );
    check(
        "narrative_div_not_a_string",
        json!({"resourceType": "Patient", "text": {"status": "generated",
        "div": {"p": "hello"}}}),
    );
}

#[test]
fn references() {
    check(
        "bad_reference_syntax",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "Patient/"},
        "performer": [{"reference": "Unicorn/1"}, {"reference": "Practitioner/a b"}, {"reference": "Practitioner/1"}]}),
    );
}

#[test]
fn empty_and_null_values() {
    check(
        "empty_object",
        json!({"resourceType": "Patient", "maritalStatus": {}}),
    );
    check(
        "empty_array",
        json!({"resourceType": "Patient", "name": []}),
    );
    check(
        "empty_string",
        json!({"resourceType": "Patient", "gender": ""}),
    );
    check(
        "null_value",
        json!({"resourceType": "Patient", "active": null}),
    );
    check(
        "null_in_array_without_extension",
        json!({"resourceType": "Patient", "name": [{"given": ["a", null]}, null]}),
    );
    check(
        "misaligned_primitive_extensions",
        json!({"resourceType": "Patient",
        "name": [{"given": ["a", "b"], "_given": [null]}],
        "_gender": "x", "_active": [{"id": "1"}], "_birthDate": {}}),
    );
    check(
        "primitive_extension_unknown_member",
        json!({"resourceType": "Patient", "birthDate": "2000",
        "_birthDate": {"value": "2000", "extension": [{"valueString": "no url"}]}}),
    );
}

#[test]
fn cardinality() {
    check(
        "missing_required",
        json!({"resourceType": "Observation", "valueString": "x"}),
    );
    check(
        "extension_without_url",
        json!({"resourceType": "Patient", "extension": [{"valueBoolean": true}]}),
    );
    check(
        "choice_with_two_values",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "valueString": "a", "valueBoolean": true, "_valueString": {"id": "ok"}}),
    );
    check(
        "content_reference_children",
        json!({"resourceType": "Questionnaire", "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [{"type": "string", "item": [{"linkId": "x", "type": "bad code "}]}]}]}),
    );
}

#[test]
fn nested_resources() {
    check(
        "contained_errors",
        json!({"resourceType": "Patient",
        "contained": [
            {"resourceType": "Organization", "id": "o_1", "nmae": "Org"},
            {"id": "x"},
            {"resourceType": "Unicorn"},
            "Organization"
        ]}),
    );
    check(
        "bundle_entry_errors",
        json!({"resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Observation", "code": {"coding": {"code": "x"}}},
             "request": {"method": "POST", "url": "Observation"}},
            {"resource": {"resourceType": "Patient", "birthDate": "1990-02-31"}, "request": {"url": "Patient"}},
            {"resource": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Patient", "active": 1}}]}}
        ]}),
    );
    check(
        "parameters_resource",
        json!({"resourceType": "Parameters",
        "parameter": [{"name": "p", "resource": {"resourceType": "Patient", "gender": 1}}, {"name": "q", "part": [{"valueBoolean": "no"}]}]}),
    );
}

#[test]
fn bounded_work() {
    // Extensions nested far deeper than any real resource: one issue at the depth limit instead of
    // a stack overflow.
    let mut extension = json!({"url": "http://example.org/leaf", "valueString": "x"});
    for _ in 0..500 {
        extension = json!({"url": "http://example.org/n", "extension": [extension]});
    }
    let deep = json!({"resourceType": "Patient", "extension": [extension]});
    let issues = validate_resource(&deep);
    assert_eq!(issues.len(), 1, "{}", render(&issues));
    assert!(issues[0].diagnostics.contains("nested more than 64 levels"));
    assert!(issues[0].expression[0].starts_with("Patient.extension[0].extension[0].extension[0]."));

    // Contained resources and Bundles nested within each other count towards the same limit.
    let mut bundle = json!({"resourceType": "Patient"});
    for _ in 0..200 {
        bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bundle}]});
    }
    let issues = validate_resource(&bundle);
    assert_eq!(issues.len(), 1, "{}", render(&issues));

    // A huge garbage array stops after MAX_ISSUES issues plus one saying so.
    let names: Vec<Value> = (0..100_000).map(|i| json!({"foo": i})).collect();
    let huge = json!({"resourceType": "Patient", "name": names});
    let issues = validate_resource(&huge);
    assert_eq!(issues.len(), MAX_ISSUES + 1);
    assert_eq!(issues[0].expression, ["Patient.name[0].foo"]);
    assert_eq!(issues[MAX_ISSUES - 1].expression, ["Patient.name[99].foo"]);
    check("huge_array_capped", huge);
}
