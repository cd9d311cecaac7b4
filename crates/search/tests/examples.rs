//! Extraction and FHIRPath evaluation over the official R4 example instances.

mod common;

use common::{package_dir, read_example, render_entries};
use concord_search::extract::index_entries;
use concord_search::{fhirpath, registry};
use serde_json::Value;

/// Every example resource instance in the package (definitions such as SearchParameters included,
/// since they are resources too).
fn examples() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(package_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") || name == "package.json" || name.starts_with('.') {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
        else {
            continue;
        };
        if value.get("resourceType").and_then(Value::as_str).is_some() {
            out.push((name, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_parameter_evaluates_over_every_example_of_its_type() {
    let examples = examples();
    assert!(
        examples.len() > 4000,
        "expected the whole package, found {}",
        examples.len()
    );
    let mut failures = Vec::new();
    let mut evaluations = 0;
    for (name, resource) in &examples {
        let rt = resource["resourceType"].as_str().unwrap();
        for def in registry::params_for(rt) {
            let Some(src) = def.expression else { continue };
            let expr = fhirpath::compiled(src).unwrap_or_else(|| panic!("{src} did not compile"));
            evaluations += 1;
            if let Err(e) = expr.evaluate(resource) {
                failures.push(format!("{name} {}: {src}: {e}", def.code));
            }
            for c in def.components {
                let ce = fhirpath::compiled(c.expression).unwrap();
                for item in expr.evaluate(resource).unwrap_or_default() {
                    if let Err(e) = ce.evaluate_on(resource, item) {
                        failures.push(format!(
                            "{name} {} component {}: {e}",
                            def.code, c.expression
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(evaluations > 50_000, "{evaluations}");
}

#[test]
fn extraction_covers_the_examples() {
    let examples = examples();
    let mut total = 0;
    let start = std::time::Instant::now();
    for (_, resource) in &examples {
        let entries = index_entries(resource);
        total += entries.len();
    }
    let elapsed = start.elapsed();
    eprintln!("{} resources, {total} entries, {elapsed:?}", examples.len());
    assert!(total > 100_000, "{total}");
    // A loose bound for debug builds: the release target is ~50 µs per resource.
    assert!(elapsed.as_secs() < 60, "{elapsed:?}");
}

#[test]
fn searchparameters_with_values_in_examples_produce_entries() {
    // Spot checks that common parameters find something on the examples that have the element.
    let p = read_example("Patient-example.json");
    let entries = index_entries(&p);
    for code in [
        "name",
        "family",
        "given",
        "birthdate",
        "gender",
        "identifier",
        "telecom",
        "address-city",
        "organization",
        "active",
    ] {
        assert!(
            entries.iter().any(|e| e.code == code),
            "Patient-example has no {code}"
        );
    }
}

#[test]
fn patient_example_snapshot() {
    insta::assert_snapshot!(render_entries(&index_entries(&read_example(
        "Patient-example.json"
    ))));
}

#[test]
fn observation_with_value_quantity_snapshot() {
    insta::assert_snapshot!(render_entries(&index_entries(&read_example(
        "Observation-example.json"
    ))));
}

#[test]
fn encounter_with_period_snapshot() {
    insta::assert_snapshot!(render_entries(&index_entries(&read_example(
        "Encounter-f203.json"
    ))));
}

#[test]
fn observation_with_components_snapshot() {
    insta::assert_snapshot!(render_entries(&index_entries(&read_example(
        "Observation-blood-pressure.json"
    ))));
}

/// Rewrites every `reference` string, as a transaction does when it gives its entries ids.
fn rewrite_references(value: &mut Value, n: &mut usize) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference" && child.is_string() {
                    *n += 1;
                    *child = Value::String(format!("Patient/rewritten-{n}"));
                } else {
                    rewrite_references(child, n);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, n)),
        _ => {}
    }
}

/// The hub indexes a transaction's entries in two steps: everything but the references before
/// the store's writer is taken, the references once they are rewritten. That is right only if
/// the two parts make the whole and rewriting references changes nothing in the first part.
#[test]
fn the_index_splits_into_references_and_the_rest() {
    use concord_search::extract::{Params, index_entries_of};
    let mut rewritten_examples = 0;
    for (name, resource) in examples() {
        let whole = render_entries(&index_entries(&resource));
        let mut parts = index_entries_of(&resource, Params::AllButReferences);
        let rest = render_entries(&parts);
        parts.extend(index_entries_of(&resource, Params::References));
        let mut whole_sorted: Vec<&str> = whole.lines().collect();
        let joined = render_entries(&parts);
        let mut parts_sorted: Vec<&str> = joined.lines().collect();
        whole_sorted.sort_unstable();
        parts_sorted.sort_unstable();
        assert_eq!(
            whole_sorted, parts_sorted,
            "{name}: the parts are not the whole"
        );
        let mut rewritten = resource.clone();
        let mut n = 0;
        rewrite_references(&mut rewritten, &mut n);
        if n > 0 {
            rewritten_examples += 1;
            let after = render_entries(&index_entries_of(&rewritten, Params::AllButReferences));
            assert_eq!(
                rest, after,
                "{name}: rewriting references changed other entries"
            );
        }
    }
    assert!(
        rewritten_examples > 500,
        "only {rewritten_examples} examples had references"
    );
}
