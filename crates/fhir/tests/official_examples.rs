//! Validates every resource of the official FHIR R4 examples package against the base definitions.
//!
//! Owns: the data-driven positive test of `concord_fhir::validate` and the explicit list of official
//! examples that are genuinely invalid R4. Does not: test specific failure messages (see
//! `validate_negative.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use concord_fhir::validate::validate_resource;

const PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/testdata/fhir-r4-examples/package"
);

/// Official examples that break the base R4 structure, with the reason. The test asserts that this
/// list is exact, so a fix (here or upstream) shows up as a failure to update it.
const KNOWN_INVALID: &[(&str, &str)] = &[
    (
        "Bundle-v2-valuesets.json",
        "contains CodeSystem-v2-0550, see there",
    ),
    (
        "CodeSystem-v2-0550.json",
        "mojibake codes '\u{a0}', '\u{c2}\u{a0}', 'CHEST\u{c2}\u{a0}', 'KIDN\u{c2}\u{a0}': primitive::Primitive::Code \
         rejects U+00A0 as whitespace (the spec regex's \\s, read as XML Schema/Java \\s, would not)",
    ),
    (
        "ImplementationGuide-fhir.json",
        "no name or status (both 1..1), and a reference id longer than 64 characters",
    ),
    (
        "Questionnaire-qs1.json",
        "nested items without linkId (1..1)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-author.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-effective.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-end.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-keyword.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-workflow.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json",
        "id is 67 characters (id allows at most 64)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-author.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-effective.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-end.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-keyword.json",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-workflow.json",
        "no base (1..*)",
    ),
    (
        "ig-r4.json",
        "the same ImplementationGuide as ImplementationGuide-fhir.json",
    ),
];

#[test]
fn every_official_example_is_structurally_valid() {
    let dir = Path::new(PACKAGE);
    assert!(
        dir.join("StructureDefinition-Patient.json").is_file(),
        "the FHIR R4 examples package is missing at {PACKAGE}; run tools/fetch-testdata.sh"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.') && n != "package.json")
        .collect();
    names.sort();
    assert!(
        names.len() > 5000,
        "only {} files in {PACKAGE}; run tools/fetch-testdata.sh",
        names.len()
    );

    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let issues = validate_resource(&json);
        if issues.iter().any(|i| i.is_error()) {
            let lines = issues
                .iter()
                .map(|i| {
                    format!(
                        "{} [{}] {}",
                        i.expression.join(", "),
                        i.code.code(),
                        i.diagnostics
                    )
                })
                .collect();
            failures.insert(name.clone(), lines);
        }
    }
    let unexpected: Vec<String> = failures
        .iter()
        .filter(|(name, _)| !KNOWN_INVALID.iter().any(|(known, _)| known == name))
        .map(|(name, lines)| {
            format!(
                "{name}:\n  {}",
                lines
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )
        })
        .collect();
    let fixed: Vec<&str> = KNOWN_INVALID
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !failures.contains_key(*name))
        .collect();
    assert!(
        unexpected.is_empty() && fixed.is_empty(),
        "{} of {} examples failed unexpectedly:\n{}\n\nlisted as invalid but now valid: {fixed:?}",
        unexpected.len(),
        names.len(),
        unexpected.join("\n")
    );
}
