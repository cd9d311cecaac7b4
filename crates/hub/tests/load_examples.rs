//! Data-loading conformance: every Synthea transaction Bundle in `../shared/testdata/synthea` and
//! every valid official R4 example instance loads through the service layer into a real SQLite
//! store and reads back equal apart from `meta` (and, for Bundle POSTs, the server-assigned ids).
//!
//! Owns: the end-to-end check of write → validate → extract → store → read over real data, exact
//! decimals, and the all-or-nothing rule of transactions. Does not: test search semantics (the
//! search and store crates do) or HTTP (the REST crate does).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use concord_fhir::ErrorKind;
use concord_fhir::validate::validate_resource;
use concord_hub::search::Handling;
use serde_json::{Value, json};

use support::{ctx, first_difference, hub, strip_server_meta};

const SYNTHEA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/synthea"
);
const PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/testdata/fhir-r4-examples/package"
);
const BASE: &str = "http://test/fhir";

/// Conformance and definition resources: not instance examples, so not loaded here.
const DEFINITION_TYPES: &[&str] = &[
    "StructureDefinition",
    "SearchParameter",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "OperationDefinition",
    "CompartmentDefinition",
    "ImplementationGuide",
    "CapabilityStatement",
    "NamingSystem",
];

/// Instance examples that are genuinely invalid R4; the reasons are in
/// `crates/fhir/tests/official_examples.rs` (`KNOWN_INVALID`), which this list must follow.
const KNOWN_INVALID: &[&str] = &["Bundle-v2-valuesets.json", "Questionnaire-qs1.json"];

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn json_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Replaces every `reference` that names a key of `ids` by its value.
fn rewrite_references(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(s) if key == "reference" => {
                        if let Some(target) = ids.get(s.as_str()) {
                            *s = target.clone();
                        }
                    }
                    _ => rewrite_references(child, ids),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_references(i, ids)),
        _ => {}
    }
}

/// `Type/id/_history/v` split into its parts.
fn parse_location(location: &str) -> (String, String, String) {
    match location.split('/').collect::<Vec<_>>().as_slice() {
        [t, id, "_history", v] => ((*t).to_string(), (*id).to_string(), (*v).to_string()),
        _ => panic!("'{location}' is not Type/id/_history/v"),
    }
}

fn without_id_and_meta(mut resource: Value) -> Value {
    if let Some(map) = resource.as_object_mut() {
        map.shift_remove("id");
        map.shift_remove("meta");
    }
    resource
}

#[test]
fn synthea_bundles_load_and_read_back() {
    let dir = Path::new(SYNTHEA);
    assert!(
        dir.is_dir(),
        "the Synthea test data is missing at {SYNTHEA} (expected 62 transaction Bundles)"
    );
    let names = json_files(dir);
    assert_eq!(names.len(), 62, "expected 62 Synthea Bundles in {SYNTHEA}");

    let started = Instant::now();
    let (hub, _dir) = hub();
    let ctx = ctx();
    let mut per_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut entries = 0usize;
    for name in &names {
        let bundle = read_json(&dir.join(name));
        let response = match hub.process_bundle(&ctx, &bundle, BASE) {
            Ok(response) => response,
            Err(e) => {
                failures.push(format!("{name}: the transaction failed: {e}"));
                continue;
            }
        };
        let submitted = bundle["entry"].as_array().expect("Bundle.entry");
        assert_eq!(response.entry.len(), submitted.len(), "{name}: entry count");
        entries += submitted.len();

        // fullUrl → Type/id, from the request's fullUrls and the response's locations.
        let mut ids = HashMap::new();
        let mut targets = Vec::new();
        for (i, (request, answer)) in submitted.iter().zip(&response.entry).enumerate() {
            let answer = answer.response.as_ref().expect("entry.response");
            if answer.status != "201 Created" {
                failures.push(format!("{name}: entry[{i}] answered {}", answer.status));
            }
            let location = answer.location.as_deref().expect("entry.response.location");
            let (resource_type, id, version) = parse_location(location);
            if let Some(full_url) = request["fullUrl"].as_str() {
                ids.insert(full_url.to_string(), format!("{resource_type}/{id}"));
            }
            targets.push((resource_type, id, version));
        }

        for (i, (request, (resource_type, id, version))) in
            submitted.iter().zip(&targets).enumerate()
        {
            let mut expected = request["resource"].clone();
            assert_eq!(
                expected["resourceType"].as_str(),
                Some(resource_type.as_str()),
                "{name}: entry[{i}] was stored as another type"
            );
            *per_type.entry(resource_type.clone()).or_default() += 1;
            rewrite_references(&mut expected, &ids);
            let stored = match hub.vread(&ctx, resource_type, id, version) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{name}: entry[{i}] cannot be read back: {e}"));
                    continue;
                }
            };
            let stored: Value = serde_json::from_str(stored.body.as_deref().unwrap()).unwrap();
            assert_eq!(
                stored["id"].as_str(),
                Some(id.as_str()),
                "{name}: entry[{i}]"
            );
            assert_eq!(
                stored["meta"]["versionId"].as_str(),
                Some("1"),
                "{name}: entry[{i}]"
            );
            if let Some(d) =
                first_difference(&without_id_and_meta(expected), &without_id_and_meta(stored))
            {
                failures.push(format!("{name}: entry[{i}] {resource_type}: {d}"));
            }
        }
    }
    let loaded = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} problems loading Synthea:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(entries, 18_570, "entries across the 62 Bundles");

    // Every resource is found by search, per type.
    let mut total = 0;
    for (resource_type, expected) in &per_type {
        // The master patient index's own Person, Provenance and Task resources are tagged; leave
        // them out of the count.
        let mut params = vec![("_summary".to_string(), "count".to_string())];
        for code in ["golden-person", "decision", "worklist"] {
            params.push((
                "_tag:not".to_string(),
                format!("https://concord.health/fhir/CodeSystem/mpi|{code}"),
            ));
        }
        let bundle = hub
            .search(&ctx, Some(resource_type), &params, Handling::Strict, BASE)
            .unwrap_or_else(|e| panic!("{resource_type}?_summary=count: {e}"));
        assert_eq!(
            bundle.total,
            Some(*expected),
            "{resource_type}?_summary=count"
        );
        assert!(bundle.entry.is_empty(), "_summary=count returns no entries");
        total += expected;
    }
    assert_eq!(total, 18_570);
    eprintln!(
        "synthea: {} Bundles, {entries} resources of {} types loaded and read back equal in {:.1?} \
         (whole test {:.1?})",
        names.len(),
        per_type.len(),
        loaded,
        started.elapsed()
    );
}

#[test]
fn decimals_keep_their_exact_text() {
    let (hub, _dir) = hub();
    let ctx = ctx();
    // Parsed from text: the `json!` macro would go through f64 and lose the trailing zeros.
    let observation: Value = serde_json::from_str(
        r#"{
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "exact decimals"},
            "valueQuantity": {"value": 1.50, "unit": "mmol/L"},
            "referenceRange": [{"low": {"value": 0.0100}, "high": {"value": 100.000}}],
            "component": [{
                "code": {"text": "big"},
                "valueQuantity": {"value": 12345678901234567890.123456789012345678901}
            }]
        }"#,
    )
    .unwrap();
    let text = observation.to_string();
    assert!(
        text.contains("\"value\":1.50"),
        "the literal keeps 1.50: {text}"
    );

    let created = hub
        .create(&ctx, "Observation", observation.clone(), None)
        .expect("create");
    let stored = hub
        .read(&ctx, "Observation", &created.version.id)
        .expect("read");
    let body = stored.body.as_deref().unwrap();
    for literal in [
        "\"value\":1.50",
        "\"value\":0.0100",
        "\"value\":100.000",
        "\"value\":12345678901234567890.123456789012345678901",
    ] {
        assert!(body.contains(literal), "{literal} not in the stored {body}");
    }
    let stored: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        without_id_and_meta(stored),
        without_id_and_meta(observation.clone())
    );

    // The same through a transaction.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:2b0f4a62-7c3e-4a0e-9d1b-1f1a4c7a9b01",
            "resource": observation,
            "request": {"method": "POST", "url": "Observation"}
        }]
    });
    let response = hub
        .process_bundle(&ctx, &bundle, BASE)
        .expect("transaction");
    let location = response.entry[0]
        .response
        .as_ref()
        .and_then(|r| r.location.clone())
        .unwrap();
    let (_, id, _) = parse_location(&location);
    let stored = hub.read(&ctx, "Observation", &id).expect("read");
    assert!(
        stored.body.as_deref().unwrap().contains("\"value\":1.50"),
        "{:?}",
        stored.body
    );
}

/// What to do with one file of the examples package.
enum Example {
    Skip,
    Load { resource_type: String, json: Value },
}

fn classify(name: &str, dir: &Path) -> Example {
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) || name == "package.json" {
        return Example::Skip;
    }
    // The package names files `Type-id.json`; reading the thousands of definitions is slow in a
    // debug build, so the name decides for them (the resourceType check below stays exact).
    if name
        .split(['-', '.'])
        .next()
        .is_some_and(|prefix| DEFINITION_TYPES.contains(&prefix))
    {
        return Example::Skip;
    }
    let json = read_json(&dir.join(name));
    let Some(resource_type) = json["resourceType"].as_str().map(str::to_string) else {
        return Example::Skip;
    };
    if DEFINITION_TYPES.contains(&resource_type.as_str()) {
        return Example::Skip;
    }
    Example::Load {
        resource_type,
        json,
    }
}

#[test]
fn official_examples_load_and_read_back() {
    let dir = Path::new(PACKAGE);
    assert!(
        dir.join("Patient-example.json").is_file(),
        "the FHIR R4 examples package is missing at {PACKAGE}; run tools/fetch-testdata.sh"
    );
    let names = json_files(dir);
    assert!(
        names.len() > 5000,
        "only {} files in {PACKAGE}",
        names.len()
    );

    let started = Instant::now();
    let (hub, _dir) = hub();
    let ctx = ctx();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut invalid: Vec<String> = Vec::new();
    let mut loaded = 0usize;
    let mut skipped = 0usize;
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut reused_ids: Vec<String> = Vec::new();
    let mut processable_bundles = 0usize;
    for name in &names {
        let Example::Load {
            resource_type,
            json,
        } = classify(name, dir)
        else {
            skipped += 1;
            continue;
        };
        if validate_resource(&json).iter().any(|i| i.is_error()) {
            invalid.push(name.clone());
            continue;
        }
        let written = match json["id"].as_str() {
            Some(id) => hub.update(&ctx, &resource_type, id, json.clone(), None),
            None => hub.create(&ctx, &resource_type, json.clone(), None),
        };
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                failures.insert(name.clone(), format!("load failed: {e}"));
                continue;
            }
        };
        if resource_type == "Bundle"
            && matches!(json["type"].as_str(), Some("transaction" | "batch"))
        {
            processable_bundles += 1;
        }
        let key = format!("{resource_type}/{}", written.version.id);
        if let Some(previous) = seen.insert(key.clone(), name.clone()) {
            reused_ids.push(format!("{key} ({previous}, {name})"));
        }
        let stored = match hub.read(&ctx, &resource_type, &written.version.id) {
            Ok(v) => v,
            Err(e) => {
                failures.insert(name.clone(), format!("read back failed: {e}"));
                continue;
            }
        };
        let mut stored: Value = serde_json::from_str(stored.body.as_deref().unwrap()).unwrap();
        let mut expected = json;
        strip_server_meta(&mut stored);
        strip_server_meta(&mut expected);
        if expected.get("id").is_none()
            && let Some(map) = stored.as_object_mut()
        {
            map.shift_remove("id");
        }
        match first_difference(&expected, &stored) {
            None => loaded += 1,
            Some(d) => {
                failures.insert(name.clone(), format!("read back differs: {d}"));
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "official examples: {loaded} loaded and read back equal (of them {processable_bundles} \
         transaction or batch Bundles, stored as resources), {} invalid R4 (not loaded), \
         {skipped} definitions or other files skipped, {} failed, in {elapsed:.1?}",
        invalid.len(),
        failures.len()
    );
    if !reused_ids.is_empty() {
        eprintln!(
            "{} examples share a Type/id with an earlier one (stored as a new version): {}",
            reused_ids.len(),
            reused_ids.join("; ")
        );
    }
    let listing: Vec<String> = failures
        .iter()
        .map(|(name, error)| format!("{name}: {error}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} valid official examples failed:\n{}",
        failures.len(),
        listing.join("\n")
    );
    assert_eq!(
        invalid, KNOWN_INVALID,
        "the instance examples that do not validate changed; keep this list and \
         crates/fhir/tests/official_examples.rs in step"
    );
    assert!(loaded > 700, "only {loaded} examples loaded");

    // Every stored example is found by a search of its type.
    let mut per_type: BTreeMap<&str, u64> = BTreeMap::new();
    for key in seen.keys() {
        *per_type.entry(key.split('/').next().unwrap()).or_default() += 1;
    }
    for (resource_type, expected) in per_type {
        // The master patient index's own Person, Provenance and Task resources are tagged; leave
        // them out of the count.
        let mut params = vec![("_summary".to_string(), "count".to_string())];
        for code in ["golden-person", "decision", "worklist"] {
            params.push((
                "_tag:not".to_string(),
                format!("https://concord.health/fhir/CodeSystem/mpi|{code}"),
            ));
        }
        let bundle = hub
            .search(&ctx, Some(resource_type), &params, Handling::Strict, BASE)
            .unwrap_or_else(|e| panic!("{resource_type}?_summary=count: {e}"));
        assert_eq!(
            bundle.total,
            Some(expected),
            "{resource_type}?_summary=count"
        );
    }
}

#[test]
fn a_transaction_with_one_invalid_entry_writes_nothing() {
    let (hub, _dir) = hub();
    let ctx = ctx();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f1d9a3e-5b2c-4d7e-8f90-a1b2c3d4e5f6",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "http://test/ids", "value": "all-or-nothing"}]
                },
                "request": {"method": "POST", "url": "Patient"}
            },
            {
                "resource": {"resourceType": "Patient", "id": "good-1", "gender": "female"},
                "request": {"method": "PUT", "url": "Patient/good-1"}
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "good-2",
                    "status": "final",
                    "code": {"text": "ok"},
                    "subject": {"reference": "urn:uuid:6f1d9a3e-5b2c-4d7e-8f90-a1b2c3d4e5f6"}
                },
                "request": {"method": "PUT", "url": "Observation/good-2"}
            },
            {
                "resource": {"resourceType": "Patient", "id": "bad", "birthDate": "yesterday"},
                "request": {"method": "PUT", "url": "Patient/bad"}
            }
        ]
    });
    let error = hub
        .process_bundle(&ctx, &bundle, BASE)
        .expect_err("the transaction must fail");
    assert_eq!(error.kind, ErrorKind::Unprocessable, "{error}");
    assert!(
        error.to_string().contains("Bundle.entry[3]"),
        "the error names the failing entry: {error}"
    );

    for (resource_type, id) in [
        ("Patient", "good-1"),
        ("Observation", "good-2"),
        ("Patient", "bad"),
    ] {
        let e = hub
            .read(&ctx, resource_type, id)
            .expect_err("nothing of the transaction may be stored");
        assert_eq!(e.kind, ErrorKind::NotFound, "{resource_type}/{id}: {e}");
    }
    for resource_type in ["Patient", "Observation"] {
        // The master patient index's own Person, Provenance and Task resources are tagged; leave
        // them out of the count.
        let mut params = vec![("_summary".to_string(), "count".to_string())];
        for code in ["golden-person", "decision", "worklist"] {
            params.push((
                "_tag:not".to_string(),
                format!("https://concord.health/fhir/CodeSystem/mpi|{code}"),
            ));
        }
        let found = hub
            .search(&ctx, Some(resource_type), &params, Handling::Strict, BASE)
            .unwrap();
        assert_eq!(found.total, Some(0), "{resource_type} count");
    }
}
