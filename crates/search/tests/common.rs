//! Helpers shared by the integration tests: locating the R4 package and rendering index entries and
//! parsed searches as readable text for snapshots.

#![allow(dead_code)] // reason: each test binary uses a different subset of the helpers

use concord_fhir::primitive::format_instant;
use concord_search::index::{IndexEntry, IndexValue};
use concord_search::query::{Clause, Modifier, ParamRef, SearchValue, TokenSystem};
use std::path::PathBuf;

/// The extracted official R4 package; fails loudly when it has not been fetched.
pub fn package_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/testdata/fhir-r4-examples/package"
    ));
    assert!(
        dir.join("package.json").is_file(),
        "the FHIR R4 example package is missing at {}; run tools/fetch-testdata.sh",
        dir.display()
    );
    dir
}

pub fn read_example(name: &str) -> serde_json::Value {
    let path = package_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn date(ms: i64) -> String {
    match ms {
        i64::MIN => "-inf".into(),
        i64::MAX => "+inf".into(),
        _ => format_instant(ms),
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

pub fn render_value(v: &IndexValue) -> String {
    match v {
        IndexValue::String { normalized, exact } => format!("string {exact:?} ~ {normalized:?}"),
        IndexValue::Token { system, code, text } => {
            let mut s = format!("token {}|{}", opt(system), opt(code));
            if let Some(t) = text {
                s.push_str(&format!(" text={t:?}"));
            }
            s
        }
        IndexValue::Date { low, high } => format!("date {} .. {}", date(*low), date(*high)),
        IndexValue::Number { value, low, high } => format!("number {value} [{low}, {high}]"),
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            unit,
        } => {
            format!(
                "quantity {value} [{low}, {high}] {}|{} unit={}",
                opt(system),
                opt(code),
                opt(unit)
            )
        }
        IndexValue::Reference {
            resource_type,
            id,
            url,
            version,
            identifier,
        } => {
            let mut s = format!("reference {}/{}", opt(resource_type), opt(id));
            if let Some(u) = url {
                s.push_str(&format!(" url={u}"));
            }
            if let Some(v) = version {
                s.push_str(&format!(" version={v}"));
            }
            if let Some((system, value)) = identifier {
                s.push_str(&format!(" identifier={}|{value}", opt(system)));
            }
            s
        }
        IndexValue::Uri(u) => format!("uri {u}"),
        IndexValue::Composite(parts) => {
            format!(
                "composite ({})",
                parts
                    .iter()
                    .map(render_value)
                    .collect::<Vec<_>>()
                    .join(" $ ")
            )
        }
    }
}

pub fn render_entries(entries: &[IndexEntry]) -> String {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| format!("{}: {}", e.code, render_value(&e.value)))
        .collect();
    lines.sort();
    lines.join("\n")
}

pub fn render_search_value(v: &SearchValue) -> String {
    match v {
        SearchValue::String { normalized, exact } => format!("{exact:?}~{normalized:?}"),
        SearchValue::Token { system, code } => {
            let code = code.as_deref().unwrap_or("");
            match system {
                TokenSystem::Any => code.to_string(),
                TokenSystem::NoSystem => format!("|{code}"),
                TokenSystem::Is(s) => format!("{s}|{code}"),
            }
        }
        SearchValue::Date { prefix, range } => {
            format!(
                "{prefix:?} [{} .. {}] ({:?})",
                date(range.low),
                date(range.high),
                range.precision
            )
        }
        SearchValue::Number {
            prefix,
            value,
            low,
            high,
        } => format!("{prefix:?} {value} [{low}, {high}]"),
        SearchValue::Quantity {
            prefix,
            value,
            low,
            high,
            system,
            code,
        } => {
            format!(
                "{prefix:?} {value} [{low}, {high}] {}|{}",
                opt(system),
                opt(code)
            )
        }
        SearchValue::Reference {
            resource_type,
            id,
            url,
            version,
        } => {
            let mut s = format!("ref {}/{}", opt(resource_type), opt(id));
            if let Some(u) = url {
                s.push_str(&format!(" url={u}"));
            }
            if let Some(v) = version {
                s.push_str(&format!(" version={v}"));
            }
            s
        }
        SearchValue::Uri(u) => format!("uri {u}"),
        SearchValue::Composite(parts) => parts
            .iter()
            .map(render_search_value)
            .collect::<Vec<_>>()
            .join(" $ "),
    }
}

pub fn render_clause(c: &Clause) -> String {
    match c {
        Clause::Param(p) => {
            let name = match &p.param {
                ParamRef::Id => "_id".to_string(),
                ParamRef::LastUpdated => "_lastUpdated".to_string(),
                ParamRef::Indexed { code, param_type } => format!("{code}<{}>", param_type.code()),
            };
            let modifier = match &p.modifier {
                Modifier::None => String::new(),
                other => format!(" :{other:?}"),
            };
            let values: Vec<String> = p.values.iter().map(render_search_value).collect();
            format!("{name}{modifier} = {}", values.join(" OR "))
        }
        Clause::Chain {
            reference,
            target_types,
            inner,
        } => {
            format!(
                "{reference}->({}).{}",
                target_types.join(","),
                render_clause(inner)
            )
        }
        Clause::Has {
            source_type,
            reference,
            inner,
        } => {
            format!(
                "_has {source_type}.{reference} where {}",
                render_clause(inner)
            )
        }
    }
}
