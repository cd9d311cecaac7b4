//! Maps every message in `../shared/testdata/hl7v2/messages` and checks the result.
//!
//! Owns: the data-driven test of the whole mapping. ADT, ORU, SIU and MDM messages must map without
//! error, every resource (and the transaction Bundle itself) must pass
//! `concord_fhir::validate::validate_resource`, and the redacted Bundle with its patient key,
//! merges and warnings is kept as an insta snapshot per message (`snapshots/`); every other
//! message type must fail with HL7 error 200 naming MSH-9. Does not: compare with the reference
//! bundles of FHIR-Converter (MAPPING.md discusses the differences) or test single rules (see
//! `rules.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use concord_fhir::validate::validate_resource;
use concord_hl7v2::Message;
use concord_v2fhir::{ErrorCode, LocalTime, MapOptions, map_message};
use serde_json::{Value, json};

fn messages_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/hl7v2/messages")
}

fn options() -> MapOptions {
    MapOptions {
        local_time: LocalTime::EuropeLondon,
        ..MapOptions::new("RX1", "2025-01-01T00:00:00+00:00")
    }
}

/// Replaces each `urn:uuid:` with a number in order of first appearance, so a snapshot shows which
/// entries refer to which without the hash values.
fn redact(value: &mut Value, seen: &mut BTreeMap<String, usize>) {
    match value {
        Value::String(s) if s.starts_with("urn:uuid:") => {
            let n = seen.len() + 1;
            let n = *seen.entry(s.clone()).or_insert(n);
            *s = format!("urn:uuid:[{n}]");
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, seen)),
        Value::Object(map) => map.values_mut().for_each(|v| redact(v, seen)),
        _ => {}
    }
}

/// Maps one message file; returns a problem description, or `None` when all is well.
fn check(name: &str, bytes: &[u8]) -> Option<String> {
    let message = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => return Some(format!("{name}: does not parse: {e:?}")),
    };
    let family = message.message_type().code;
    let supported = matches!(family.as_str(), "ADT" | "ORU" | "SIU" | "MDM");
    let result = map_message(&message, &options());
    if !supported {
        return match result {
            Err(e)
                if e.code == ErrorCode::UnsupportedMessageType
                    && e.segment == "MSH"
                    && e.field == Some(9) =>
            {
                None
            }
            Err(e) => Some(format!("{name}: wrong error for an unsupported type: {e}")),
            Ok(_) => Some(format!(
                "{name}: a {family} message mapped, but the type is not supported"
            )),
        };
    }
    let mapped = match result {
        Ok(m) => m,
        Err(e) => return Some(format!("{name}: {e}")),
    };
    let mut problems = Vec::new();
    let issues = validate_resource(&mapped.bundle);
    if !issues.is_empty() {
        problems.push(format!("{name}: Bundle: {issues:?}"));
    }
    for (i, entry) in mapped.bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let issues = validate_resource(&entry["resource"]);
        if !issues.is_empty() {
            problems.push(format!(
                "{name}: entry {i} ({}): {issues:?}",
                entry["resource"]["resourceType"]
            ));
        }
    }
    // Applying a message twice must be the same: the mapping is deterministic.
    let again = map_message(&message, &options()).expect("maps again");
    if again != mapped {
        problems.push(format!("{name}: a second mapping differs from the first"));
    }
    let mut bundle = mapped.bundle.clone();
    redact(&mut bundle, &mut BTreeMap::new());
    let snapshot = json!({
        "patient_key": mapped.patient_key,
        "merges": mapped.merges.iter().map(|m| json!({"retired": m.retired, "survivor": m.survivor})).collect::<Vec<_>>(),
        "warnings": mapped.warnings,
        "bundle": bundle,
    });
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    let text = serde_json::to_string_pretty(&snapshot).expect("JSON");
    settings.bind(|| insta::assert_snapshot!(name.to_string(), text));
    (!problems.is_empty()).then(|| problems.join("\n"))
}

#[test]
fn every_shared_message_maps_to_valid_fhir() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(messages_dir())
        .expect("the shared HL7 v2 messages")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hl7"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "expected the shared sample messages, found {}",
        files.len()
    );
    let mut problems = Vec::new();
    let mut mapped = 0;
    for path in &files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let bytes = std::fs::read(path).expect("message");
        if let Some(p) = check(&name, &bytes) {
            problems.push(p);
        }
        if ["ADT", "ORU", "SIU", "MDM"]
            .iter()
            .any(|f| name.starts_with(f))
        {
            mapped += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(mapped, 40, "ADT, ORU, SIU and MDM samples mapped");
}
