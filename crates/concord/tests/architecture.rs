//! Checks the shape of the workspace that ARCHITECTURE.md promises: every Rust file opens with a
//! `//!` doc saying what it owns, and the crates depend on each other only along the documented
//! edges (dependencies point down the layers). A new edge is an architecture change: update
//! ARCHITECTURE.md and the table below in the same commit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The allowed `concord-*` dependencies of each crate (normal and dev), as ARCHITECTURE.md draws them.
fn allowed_edges() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    BTreeMap::from([
        ("concord-fhir", BTreeSet::new()),
        ("concord-mpi", BTreeSet::new()),
        ("concord-hl7v2", BTreeSet::new()),
        // The access decision and consent are plain data in, a decision out; FHIR dates are read
        // with concord-fhir's primitives.
        ("concord-access", BTreeSet::from(["concord-fhir"])),
        // The audit record's shape (IHE BALP) and its hash chain are pure; instants are
        // concord-fhir's.
        ("concord-audit", BTreeSet::from(["concord-fhir"])),
        // Tests validate the mapped resources with concord-fhir's validator.
        (
            "concord-v2fhir",
            BTreeSet::from(["concord-fhir", "concord-hl7v2", "concord-mpi"]),
        ),
        // `phonetic` parameters sound names out with the master patient index's Soundex.
        (
            "concord-search",
            BTreeSet::from(["concord-fhir", "concord-mpi"]),
        ),
        // Merging sources' answers is pure; it shapes OperationOutcomes with concord-fhir.
        ("concord-federation", BTreeSet::from(["concord-fhir"])),
        // The source connector speaks FHIR REST to other servers and reports in federation's terms.
        (
            "concord-source",
            BTreeSet::from(["concord-fhir", "concord-federation"]),
        ),
        // The authorization server: keys, tokens, users, clients; it knows roles from concord-access.
        (
            "concord-auth",
            BTreeSet::from(["concord-access", "concord-fhir"]),
        ),
        (
            "concord-store",
            BTreeSet::from(["concord-fhir", "concord-search"]),
        ),
        (
            "concord-store-sqlite",
            BTreeSet::from(["concord-fhir", "concord-search", "concord-store"]),
        ),
        // The hub's tests run it over the real embedded store.
        (
            "concord-hub",
            BTreeSet::from([
                "concord-access",
                "concord-audit",
                "concord-federation",
                "concord-fhir",
                "concord-hl7v2",
                "concord-mpi",
                "concord-search",
                "concord-source",
                "concord-store",
                "concord-store-sqlite",
                "concord-v2fhir",
            ]),
        ),
        // The MLLP transport hands messages to the hub; its tests run a hub over SQLite.
        (
            "concord-mllp",
            BTreeSet::from([
                "concord-fhir",
                "concord-hl7v2",
                "concord-hub",
                "concord-store-sqlite",
            ]),
        ),
        // The REST crate reaches data only through the hub; its tests build a hub over SQLite
        // and give it sources.
        (
            "concord-rest",
            BTreeSet::from([
                "concord-access",
                "concord-audit",
                "concord-auth",
                "concord-federation",
                "concord-fhir",
                "concord-hub",
                "concord-source",
                "concord-store-sqlite",
            ]),
        ),
        // The portal is a SMART app of its own node: it reaches data only through the FHIR API
        // (the router it is handed), never the hub; its tests build a node over SQLite.
        (
            "concord-portal",
            BTreeSet::from([
                "concord-access",
                "concord-auth",
                "concord-federation",
                "concord-fhir",
                "concord-hub",
                "concord-rest",
                "concord-store-sqlite",
            ]),
        ),
        (
            "concord",
            BTreeSet::from([
                "concord-access",
                "concord-audit",
                "concord-auth",
                "concord-federation",
                "concord-fhir",
                "concord-hub",
                "concord-mllp",
                "concord-mpi",
                "concord-portal",
                "concord-rest",
                "concord-source",
                "concord-store",
                "concord-store-sqlite",
                "concord-v2fhir",
            ]),
        ),
    ])
}

#[test]
fn crates_depend_only_along_documented_edges() {
    let root = workspace_root();
    let allowed = allowed_edges();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let manifest = entry.expect("entry").path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("Cargo.toml");
        let value: toml::Value = toml::from_str(&text).expect("valid Cargo.toml");
        let name = value["package"]["name"]
            .as_str()
            .expect("package name")
            .to_string();
        let Some(permitted) = allowed.get(name.as_str()) else {
            panic!(
                "crate {name} is not in ARCHITECTURE.md's code map; add it there and to this test"
            );
        };
        seen.insert(name.clone());
        for table in ["dependencies", "dev-dependencies"] {
            let Some(deps) = value.get(table).and_then(toml::Value::as_table) else {
                continue;
            };
            for dep in deps.keys().filter(|d| d.starts_with("concord")) {
                assert!(
                    permitted.contains(dep.as_str()),
                    "{name} depends on {dep} ({table}), an edge ARCHITECTURE.md does not have"
                );
            }
        }
        // The portal reaches data only through the FHIR API it is handed.
        if name == "concord-portal" {
            let deps = value
                .get("dependencies")
                .and_then(toml::Value::as_table)
                .cloned()
                .unwrap_or_default();
            for forbidden in [
                "concord-hub",
                "concord-rest",
                "concord-store",
                "concord-store-sqlite",
                "rusqlite",
            ] {
                assert!(
                    !deps.contains_key(forbidden),
                    "the portal may not depend on {forbidden} outside its tests"
                );
            }
        }
        // The pure domain crates stay free of I/O runtimes.
        if [
            "concord-fhir",
            "concord-search",
            "concord-mpi",
            "concord-hl7v2",
            "concord-v2fhir",
            "concord-federation",
            "concord-access",
            "concord-audit",
        ]
        .contains(&name.as_str())
        {
            let deps = value
                .get("dependencies")
                .and_then(toml::Value::as_table)
                .cloned()
                .unwrap_or_default();
            for forbidden in ["tokio", "rusqlite", "axum", "reqwest", "tracing"] {
                assert!(
                    !deps.contains_key(forbidden),
                    "{name} is pure and may not depend on {forbidden}"
                );
            }
        }
    }
    let expected: BTreeSet<String> = allowed.keys().map(|k| (*k).to_string()).collect();
    assert_eq!(seen, expected, "every documented crate exists");
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = workspace_root();
    let mut missing = Vec::new();
    let mut stack = vec![root.join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n != "snapshots" && n != "target")
                {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                if !text.trim_start().starts_with("//!") {
                    missing.push(
                        path.strip_prefix(&root)
                            .unwrap_or(&path)
                            .display()
                            .to_string(),
                    );
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a //! doc saying what they own: {missing:?}"
    );
}

#[test]
fn the_pure_crates_read_no_clock_environment_or_files() {
    let root = workspace_root();
    let mut offenders = Vec::new();
    for krate in [
        "crates/fhir/src",
        "crates/search/src",
        "crates/mpi/src",
        "crates/hl7v2/src",
        "crates/v2fhir/src",
        "crates/federation/src",
        "crates/access/src",
        "crates/audit/src",
    ] {
        let mut stack = vec![root.join(krate)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source");
                // Test modules may read files; only the code before `mod tests` counts.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for forbidden in [
                    "SystemTime::now",
                    "Instant::now",
                    "std::env::",
                    "std::fs::",
                    "File::open",
                ] {
                    if code.contains(forbidden) {
                        offenders.push(format!("{}: {forbidden}", path.display()));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the domain core must stay pure: {offenders:?}"
    );
}
