//! Test helpers shared by the case runner and the property tests: reading a source catalog and
//! source results from JSON, and rendering merged entries compactly for assertions.
//!
//! Owns only test plumbing; the crate's types have no serde on purpose (the contract keeps them
//! plain), so the tests read them by hand here.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use concord_federation::{
    ALSO_REPORTED_BY_URL, Freshness, Merged, Resource, SourceInfo, SourceKind, SourceResult,
    SourceStatus,
};
use serde_json::{Map, Value};

/// The Unix time (ms) the cases run at unless they say otherwise: 2024-06-01T12:00:00Z.
pub const NOW_MS: i64 = 1_717_243_200_000;

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn catalog() -> BTreeMap<String, Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sources.json");
    match read_json(&path) {
        Value::Object(map) => map.into_iter().collect(),
        _ => panic!("tests/sources.json must be an object"),
    }
}

fn freshness(value: &Value) -> Freshness {
    match value {
        Value::String(s) if s == "live" => Freshness::Live,
        Value::Object(map) => {
            let batch = &map["batch"];
            Freshness::Batch {
                last_load_ms: batch["last_load_ms"].as_i64(),
                max_age_ms: batch["max_age_ms"].as_i64().expect("max_age_ms"),
            }
        }
        other => panic!("bad freshness {other}"),
    }
}

/// A source from the catalog by id, or an object `{"use": id, ...overrides}`.
pub fn source_info(value: &Value, catalog: &BTreeMap<String, Value>) -> SourceInfo {
    let (id, overrides) = match value {
        Value::String(id) => (id.clone(), Map::new()),
        Value::Object(map) => (map["use"].as_str().expect("use").to_string(), map.clone()),
        other => panic!("bad source {other}"),
    };
    let mut fields = catalog
        .get(&id)
        .unwrap_or_else(|| panic!("source {id} is not in tests/sources.json"))
        .as_object()
        .cloned()
        .expect("catalog entry");
    for (k, v) in overrides {
        if k != "use" {
            fields.insert(k, v);
        }
    }
    SourceInfo {
        id: fields
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_string(),
        name: fields["name"].as_str().expect("name").to_string(),
        ods_code: fields
            .get("ods_code")
            .and_then(Value::as_str)
            .map(str::to_string),
        kind: SourceKind::parse(fields["kind"].as_str().expect("kind")).expect("known kind"),
        base_url: fields["base_url"].as_str().expect("base_url").to_string(),
        resource_types: Vec::new(),
        freshness: freshness(&fields["freshness"]),
    }
}

fn status(value: &Value) -> SourceStatus {
    let text = |v: &Value| v.as_str().expect("reason").to_string();
    match value {
        Value::Null => SourceStatus::Ok,
        Value::String(s) if s == "ok" => SourceStatus::Ok,
        Value::String(s) if s == "breaker-open" => SourceStatus::BreakerOpen,
        Value::Object(map) => match map.iter().next().expect("one key") {
            (k, v) if k == "timeout" => SourceStatus::Timeout {
                after_ms: v.as_u64().expect("after_ms"),
            },
            (k, v) if k == "failed" => SourceStatus::Failed { reason: text(v) },
            (k, v) if k == "invalid" => SourceStatus::Invalid { reason: text(v) },
            (k, v) if k == "skipped" => SourceStatus::Skipped { reason: text(v) },
            (k, _) => panic!("unknown status {k}"),
        },
        other => panic!("bad status {other}"),
    }
}

pub fn source_result(value: &Value, catalog: &BTreeMap<String, Value>) -> SourceResult {
    let list = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    SourceResult {
        source: source_info(&value["source"], catalog),
        status: status(value.get("status").unwrap_or(&Value::Null)),
        resources: list("resources").iter().map(resource).collect(),
        elapsed_ms: value
            .get("elapsed_ms")
            .and_then(Value::as_u64)
            .unwrap_or(100),
        forwarded_issues: list("forwarded_issues"),
    }
}

/// A resource as a connector reads it from a source's answer: from JSON text, so its members
/// stay unparsed until the merge reads them.
pub fn resource(value: &Value) -> Resource {
    Resource::from_json(&value.to_string())
        .unwrap_or_else(|e| panic!("a source resource must be a JSON object: {e}"))
}

/// `"gp-a Observation/o1"`, with `" also: A, B"` naming the also-reported-by organisations.
pub fn entry_lines(merged: &Merged) -> Vec<String> {
    merged
        .entries
        .iter()
        .map(|e| {
            let r = &e.resource.to_value();
            let mut line = format!(
                "{} {}/{}",
                e.source_id,
                r["resourceType"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?")
            );
            let also: Vec<&str> = r["meta"]["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["url"] == ALSO_REPORTED_BY_URL)
                .map(|x| x["valueReference"]["display"].as_str().unwrap_or("?"))
                .collect();
            if !also.is_empty() {
                line.push_str(&format!(" also: {}", also.join(", ")));
            }
            line
        })
        .collect()
}

/// `"warning timeout timeout"`: severity, code and source-status code (`-` when none).
pub fn issue_lines(merged: &Merged) -> Vec<String> {
    merged.outcome["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| {
            format!(
                "{} {} {}",
                i["severity"].as_str().unwrap_or("?"),
                i["code"].as_str().unwrap_or("?"),
                i["details"]["coding"][0]["code"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Serializes a JSON value with its numbers as plain numbers. The workspace turns on
/// serde_json's `arbitrary_precision`, under which a `Number` serializes as a private marker
/// struct to any serializer but serde_json's own, so insta would snapshot the marker instead.
/// Integers stay exact; other numbers pass through `f64`, which only drops trailing zeros.
pub struct Plain<'a>(pub &'a Value);

impl serde::Serialize for Plain<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    serializer.serialize_i64(i)
                } else if let Some(u) = n.as_u64() {
                    serializer.serialize_u64(u)
                } else {
                    serializer.serialize_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Plain(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(k, &Plain(v))?;
                }
                out.end()
            }
        }
    }
}
