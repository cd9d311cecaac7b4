//! Validates every resource of the Synthea sample bundles, entry by entry, as an import would.
//!
//! Owns: the data-driven check that realistic generated patient records (the data Concord is
//! benchmarked and demonstrated with) pass structural validation, required code bindings
//! included. Does not: test the official examples (see `official_examples.rs`) or failure
//! messages (see `validate_negative.rs`).

use std::path::Path;

use concord_fhir::validate::validate_resource;
use serde_json::Value;

const SYNTHEA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/synthea"
);

#[test]
fn every_synthea_entry_is_structurally_valid() {
    let dir = Path::new(SYNTHEA);
    assert!(
        dir.is_dir(),
        "the Synthea sample bundles are missing at {SYNTHEA} (expected the shared test data next to \
         the repository, at ../shared/testdata/synthea)"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no Synthea bundles (*.json) in {SYNTHEA}"
    );

    let mut entries = 0;
    let mut failures = Vec::new();
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let bundle: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(bundle["resourceType"], "Bundle", "{name}");
        let items = bundle["entry"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no entries"));
        for (i, entry) in items.iter().enumerate() {
            entries += 1;
            let resource = &entry["resource"];
            let issues = validate_resource(resource);
            if issues.iter().any(|issue| issue.is_error()) {
                let lines: Vec<String> = issues
                    .iter()
                    .take(5)
                    .map(|issue| {
                        format!(
                            "    {} [{}] {}",
                            issue.expression.join(", "),
                            issue.code.code(),
                            issue.diagnostics
                        )
                    })
                    .collect();
                failures.push(format!(
                    "{name} entry[{i}] ({}):\n{}",
                    resource["resourceType"],
                    lines.join("\n")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {entries} entries in {} bundles failed:\n{}",
        failures.len(),
        names.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
