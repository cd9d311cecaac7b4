//! Data-driven tests of the merge and the summary: each file in `tests/cases/` gives the sources'
//! answers and a short `expect` block (the entries kept, in order, with who else reported them;
//! the outcome issues; the summary's sections), and the whole result is an insta snapshot so any
//! other change in the output shows as a readable diff.
//!
//! Owns the case runner only; sources come from `tests/sources.json` (see `common`).

mod common;

use std::path::{Path, PathBuf};

use common::{NOW_MS, Plain, catalog, entry_lines, issue_lines, read_json, source_result};
use concord_federation::{Resource, merge, section_of, summary};
use serde_json::{Value, json};

/// `"11450-4 2"` or `"48765-2 empty"` per Composition section.
fn section_lines(document: &Value) -> Vec<String> {
    document["entry"][0]["resource"]["section"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| {
            let code = s["code"]["coding"][0]["code"].as_str().unwrap_or("?");
            match s["entry"].as_array() {
                Some(entries) => format!("{code} {}", entries.len()),
                None => {
                    assert_eq!(
                        s["emptyReason"]["coding"][0]["code"], "unavailable",
                        "an empty section says why"
                    );
                    format!("{code} empty")
                }
            }
        })
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a list of strings, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// Runs one case: merge (and summary when asked), check the `expect` block, snapshot the rest.
fn check(path: &Path) {
    let name = path.file_stem().unwrap().to_string_lossy().to_string();
    let case = read_json(path);
    let catalog = catalog();
    let results: Vec<_> = case["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| source_result(s, &catalog))
        .collect();
    let now_ms = case.get("now_ms").and_then(Value::as_i64).unwrap_or(NOW_MS);
    let merged = merge(results, now_ms);
    let expect = &case["expect"];
    assert!(
        expect.is_object(),
        "{name}: every case states what it expects"
    );

    assert_eq!(
        entry_lines(&merged),
        strings(&expect["entries"]),
        "{name}: entries"
    );
    assert_eq!(
        issue_lines(&merged),
        strings(&expect["issues"]),
        "{name}: outcome issues"
    );
    if let Some(needles) = expect.get("diagnostics") {
        let issues = merged.outcome["issue"].as_array().unwrap();
        // Exact text: the sentences are what a clinician reads, so a change is a decision.
        for (i, want) in strings(needles).iter().enumerate() {
            assert_eq!(
                issues[i]["diagnostics"], *want,
                "{name}: issue {i} diagnostics"
            );
            assert_eq!(
                issues[i]["details"]["text"], *want,
                "{name}: issue {i} details.text"
            );
        }
    }

    let mut snapshot = json!({
        "entries": merged.entries.iter().map(|e| json!({
            "fullUrl": e.full_url,
            "source_id": e.source_id,
            "origin": e.origin,
            "resource": e.resource,
        })).collect::<Vec<_>>(),
        "outcome": merged.outcome,
    });
    if let Some(request) = case.get("summary") {
        let document = summary(
            merged.clone(),
            &request["patient"],
            request["composition_id"].as_str().expect("composition_id"),
            request["bundle_id"].as_str().expect("bundle_id"),
            request["now"].as_str().expect("now"),
        )
        .to_value();
        assert_eq!(
            section_lines(&document),
            strings(&expect["sections"]),
            "{name}: summary sections"
        );
        if let Some(urls) = expect.get("summary_entries") {
            let got: Vec<String> = document["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["fullUrl"].as_str().unwrap_or("?").to_string())
                .collect();
            let want = strings(urls);
            assert_eq!(got.len(), want.len(), "{name}: summary entries {got:#?}");
            for (got, want) in got.iter().zip(&want) {
                // `urn:uuid:*` stands for a derived UUID; the snapshot pins its value.
                if want == "urn:uuid:*" {
                    assert!(got.starts_with("urn:uuid:"), "{name}: {got} is a urn:uuid");
                } else {
                    assert_eq!(got, want, "{name}: summary entries");
                }
            }
        }
        // Every reference in the document resolves to an entry in it: a FHIR document must be
        // self-contained for the references the summary follows.
        let full_urls: Vec<&str> = document["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["fullUrl"].as_str())
            .collect();
        for section in document["entry"][0]["resource"]["section"]
            .as_array()
            .unwrap()
        {
            for reference in section["entry"].as_array().into_iter().flatten() {
                let reference = reference["reference"].as_str().unwrap();
                assert!(
                    full_urls.contains(&reference),
                    "{name}: section entry {reference} is in the Bundle"
                );
            }
        }
        snapshot["summary"] = document;
    } else {
        assert!(
            expect.get("sections").is_none(),
            "{name}: sections expected but no summary requested"
        );
    }
    insta::assert_json_snapshot!(name.as_str(), Plain(&snapshot));
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn cases() {
    let files = case_files();
    assert!(files.len() >= 12, "the case files are all there");
    for path in files {
        check(&path);
    }
}

/// Every snapshot belongs to a case, so a renamed or deleted case leaves nothing stale behind.
#[test]
fn every_snapshot_has_a_case() {
    let cases: Vec<String> = case_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for entry in std::fs::read_dir(dir).expect("tests/snapshots") {
        let file = entry.unwrap().file_name().to_string_lossy().to_string();
        if let Some(stem) = file
            .strip_prefix("cases__")
            .and_then(|f| f.strip_suffix(".snap"))
        {
            assert!(cases.iter().any(|c| c == stem), "{file} has no case");
        }
    }
}

#[test]
fn sections_follow_resource_type_and_observation_category() {
    let category = |code: &str| {
        json!({
            "resourceType": "Observation",
            "category": [{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": code
            }] }]
        })
    };
    let table = [
        (json!({ "resourceType": "Condition" }), Some("11450-4")),
        (
            json!({ "resourceType": "AllergyIntolerance" }),
            Some("48765-2"),
        ),
        (
            json!({ "resourceType": "MedicationStatement" }),
            Some("10160-0"),
        ),
        (
            json!({ "resourceType": "MedicationRequest" }),
            Some("10160-0"),
        ),
        (json!({ "resourceType": "Immunization" }), Some("11369-6")),
        (
            json!({ "resourceType": "DiagnosticReport" }),
            Some("30954-2"),
        ),
        (category("laboratory"), Some("30954-2")),
        (category("imaging"), Some("30954-2")),
        (category("vital-signs"), Some("8716-3")),
        (category("social-history"), None),
        (json!({ "resourceType": "Observation" }), None),
        (
            json!({ "resourceType": "Observation", "category": [{ "coding": [
                { "system": "http://example.org/other", "code": "laboratory" }
            ] }] }),
            None,
        ),
        (
            json!({ "resourceType": "Observation", "category": [
                { "coding": [{ "code": "laboratory" }] },
                { "coding": [{ "code": "vital-signs" }] }
            ] }),
            Some("8716-3"),
        ),
        (json!({ "resourceType": "Procedure" }), Some("47519-4")),
        (json!({ "resourceType": "CarePlan" }), Some("18776-5")),
        (json!({ "resourceType": "Encounter" }), Some("46240-8")),
        (
            json!({ "resourceType": "DocumentReference" }),
            Some("documents"),
        ),
        (
            json!({ "resourceType": "EpisodeOfCare" }),
            Some("social-care"),
        ),
        (json!({ "resourceType": "Patient" }), None),
        (json!({ "resourceType": "Medication" }), None),
        (json!({ "resourceType": 7 }), None),
        (json!("Condition"), None),
        (json!(null), None),
    ];
    for (resource, expected) in table {
        assert_eq!(
            Resource::from_value(resource.clone())
                .and_then(|r| section_of(&r))
                .map(|s| s.code().1),
            expected,
            "{resource}"
        );
    }
}

#[test]
fn source_kinds_round_trip_in_kebab_case() {
    use concord_federation::SourceKind;
    for kind in SourceKind::ALL {
        assert_eq!(SourceKind::parse(kind.as_str()), Some(kind));
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            Value::from(kind.as_str())
        );
        assert!(!kind.label().is_empty());
    }
    assert_eq!(
        SourceKind::parse("mental-health"),
        Some(SourceKind::MentalHealth)
    );
    assert_eq!(
        serde_json::from_value::<SourceKind>(json!("social-care")).unwrap(),
        SourceKind::SocialCare
    );
    assert_eq!(SourceKind::parse("MentalHealth"), None);
    assert_eq!(SourceKind::parse("GP"), None);
    assert_eq!(SourceKind::Gp.label(), "GP practice");
}
