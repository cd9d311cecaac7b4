//! Extraction of index values from a resource (<https://hl7.org/fhir/R4/search.html>).
//!
//! Owns: evaluating each registry parameter of a resource's type and converting what the
//! expression selects into [`IndexValue`]s by parameter type and element type (a HumanName gives
//! one string per part, a CodeableConcept one token per coding carrying the concept's text, a
//! Period a date range, a decimal its implicit precision range...). Element types come from the
//! FHIRPath type tag when the JSON tells it (choice suffixes, `as Type`) and otherwise from the
//! element's shape.
//!
//! Does not: index `_id` and `_lastUpdated` (the store takes them from the id and meta), resolve
//! references, validate the resource, or support parameters without an expression (`_text`,
//! `_content`) or of type `special` (`near`).

use crate::fhirpath::{self, Node};
use crate::index::{IndexEntry, IndexValue};
use crate::normalize::normalize_string;
use crate::query::ParamType;
use crate::registry::{self, SearchParamDef};
use concord_fhir::primitive::date_range;
use serde_json::{Map, Value};

/// Combinations of a composite's component values beyond this are dropped, so a pathological
/// resource cannot make extraction quadratic or worse.
const MAX_COMPOSITE_COMBINATIONS: usize = 256;

/// The ContactPoint.system codes, which tell a ContactPoint from an Identifier by shape.
const CONTACT_POINT_SYSTEMS: &[&str] = &["phone", "fax", "email", "pager", "url", "sms", "other"];

/// Which of a resource type's parameters [`index_entries_of`] extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    All,
    /// The parameters whose values are references, alone or as a composite's component: the
    /// part of the index that changes when a transaction rewrites a resource's references to
    /// the ids its entries were given.
    References,
    /// Everything but [`Params::References`].
    AllButReferences,
}

impl Params {
    fn includes(self, def: &SearchParamDef) -> bool {
        let refers = def.param_type == ParamType::Reference
            || def
                .components
                .iter()
                .any(|c| c.param_type == ParamType::Reference);
        match self {
            Params::All => true,
            Params::References => refers,
            Params::AllButReferences => !refers,
        }
    }
}

/// The index entries of a resource, for every parameter of its type that has an expression
/// (except `_id` and `_lastUpdated`). Duplicates within the resource are dropped. A value that
/// cannot be converted (a malformed date, say) is skipped: validation reports it, not indexing.
pub fn index_entries(resource: &Value) -> Vec<IndexEntry> {
    index_entries_of(resource, Params::All)
}

/// [`index_entries`] for the chosen part of the type's parameters. The parts are disjoint and
/// together make the whole, so the index of a resource can be extracted in two steps, the second
/// after its references were rewritten.
pub fn index_entries_of(resource: &Value, params: Params) -> Vec<IndexEntry> {
    let mut entries = Vec::new();
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return entries;
    };
    let mut values = Vec::new();
    for def in registry::params_for(resource_type) {
        if matches!(def.code, "_id" | "_lastUpdated")
            || !def.is_supported()
            || !params.includes(def)
        {
            continue;
        }
        values.clear();
        param_values(def, resource, &mut values);
        entries.extend(values.drain(..).map(|value| IndexEntry {
            code: def.code.to_string(),
            value,
        }));
    }
    entries
}

/// The values of one parameter for one resource, deduplicated.
pub fn param_values(def: &SearchParamDef, resource: &Value, out: &mut Vec<IndexValue>) {
    let Some(expression) = def.expression.and_then(fhirpath::compiled) else {
        return;
    };
    let Ok(nodes) = expression.evaluate(resource) else {
        return;
    };
    if def.param_type == ParamType::Composite {
        for node in nodes {
            composite(def, resource, node, out);
        }
        return;
    }
    if def.is_phonetic() {
        for node in &nodes {
            phonetic_values(node, out);
        }
        return;
    }
    for node in &nodes {
        convert(def.param_type, node, out);
    }
}

/// The values of a `phonetic` parameter: the sound of each family and given name (of a plain
/// string, such as `Organization.name`, its whole), as [`crate::normalize::phonetic_codes`] gives
/// them. Prefixes, suffixes and a name's `text` are not compared by sound.
fn phonetic_values(node: &Node<'_>, out: &mut Vec<IndexValue>) {
    let mut push = |s: &str| {
        for code in crate::normalize::phonetic_codes(s) {
            push_unique(
                out,
                IndexValue::String {
                    normalized: code.clone(),
                    exact: code,
                },
            );
        }
    };
    match node {
        Node::String(s) => push(s),
        Node::Element {
            value: Value::String(s),
            ..
        } => push(s),
        Node::Element {
            value: Value::Object(name),
            ..
        } => {
            for part in ["family", "given"] {
                for s in strings_of(name.get(part)) {
                    push(s);
                }
            }
        }
        _ => {}
    }
}

fn composite<'a>(
    def: &SearchParamDef,
    resource: &'a Value,
    item: Node<'a>,
    out: &mut Vec<IndexValue>,
) {
    let mut per_component: Vec<Vec<IndexValue>> = Vec::with_capacity(def.components.len());
    for component in def.components {
        let Some(expression) = fhirpath::compiled(component.expression) else {
            return;
        };
        let Ok(nodes) = expression.evaluate_on(resource, item) else {
            return;
        };
        let mut values = Vec::new();
        for node in &nodes {
            convert(component.param_type, node, &mut values);
        }
        if values.is_empty() {
            // A composite needs every component; an item missing one is not indexed.
            return;
        }
        per_component.push(values);
    }
    let mut combos: Vec<Vec<IndexValue>> = vec![Vec::new()];
    for values in &per_component {
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for v in values {
                if next.len() >= MAX_COMPOSITE_COMBINATIONS {
                    break;
                }
                let mut c = combo.clone();
                c.push(v.clone());
                next.push(c);
            }
        }
        combos = next;
    }
    for combo in combos {
        push_unique(out, IndexValue::Composite(combo));
    }
}

fn push_unique(out: &mut Vec<IndexValue>, value: IndexValue) {
    if !out.contains(&value) {
        out.push(value);
    }
}

/// Converts one selected node into the values of a parameter of `param_type`.
fn convert(param_type: ParamType, node: &Node<'_>, out: &mut Vec<IndexValue>) {
    let (value, fhir_type) = match node {
        Node::Element { value, fhir_type } => (*value, *fhir_type),
        Node::String(s) => {
            if param_type == ParamType::String {
                push_string(out, s);
            }
            return;
        }
        Node::Boolean(b) => {
            if param_type == ParamType::Token {
                push_unique(
                    out,
                    IndexValue::Token {
                        system: None,
                        code: Some(b.to_string()),
                        text: None,
                    },
                );
            }
            return;
        }
        Node::Integer(_) | Node::Resolved { .. } => return,
    };
    if fhir_type == Some("Extension") {
        // An extension is indexed by its value, whatever parameter selected it.
        if let Some(Value::Object(map)) = Some(value) {
            for (key, v) in map {
                if let Some(t) = key.strip_prefix("value").and_then(fhirpath::choice_type) {
                    convert(
                        param_type,
                        &Node::Element {
                            value: v,
                            fhir_type: Some(t),
                        },
                        out,
                    );
                }
            }
        }
        return;
    }
    match param_type {
        ParamType::String => string_values(value, out),
        ParamType::Token => token_values(value, fhir_type, out),
        ParamType::Date => date_values(value, out),
        ParamType::Number => {
            if let Value::Number(n) = value
                && let Some((value, low, high)) = implicit_range(&n.to_string())
            {
                push_unique(out, IndexValue::Number { value, low, high });
            }
        }
        ParamType::Quantity => quantity_values(value, fhir_type, out),
        ParamType::Reference => reference_values(value, out),
        ParamType::Uri => {
            if let Value::String(s) = value {
                push_unique(out, IndexValue::Uri(s.clone()));
            }
        }
        ParamType::Composite | ParamType::Special => {}
    }
}

fn push_string(out: &mut Vec<IndexValue>, s: &str) {
    if !s.trim().is_empty() {
        push_unique(
            out,
            IndexValue::String {
                normalized: normalize_string(s),
                exact: s.to_string(),
            },
        );
    }
}

fn strings_of<'a>(value: Option<&'a Value>) -> impl Iterator<Item = &'a str> {
    let items: &'a [Value] = match value {
        Some(Value::Array(items)) => items,
        Some(v @ Value::String(_)) => std::slice::from_ref(v),
        _ => &[],
    };
    items.iter().filter_map(Value::as_str)
}

/// HumanName and Address parts, and any `text`, each give their own string value.
const STRING_PARTS: &[&str] = &[
    "family",
    "given",
    "prefix",
    "suffix",
    "text",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

fn string_values(value: &Value, out: &mut Vec<IndexValue>) {
    match value {
        Value::String(s) => push_string(out, s),
        Value::Object(map) => {
            for part in STRING_PARTS {
                for s in strings_of(map.get(*part)) {
                    push_string(out, s);
                }
            }
        }
        _ => {}
    }
}

fn text_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(Value::as_str)
        .map(normalize_string)
        .filter(|s| !s.is_empty())
}

fn str_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

fn token_values(value: &Value, fhir_type: Option<&str>, out: &mut Vec<IndexValue>) {
    // A bare code, boolean or number is a token with no system.
    let scalar = match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(code) = scalar {
        push_unique(
            out,
            IndexValue::Token {
                system: None,
                code: Some(code),
                text: None,
            },
        );
        return;
    }
    let map = match value {
        Value::Object(map) => map,
        _ => return,
    };
    let kind = fhir_type.unwrap_or_else(|| {
        if map.contains_key("coding") {
            "CodeableConcept"
        } else if map.contains_key("rank")
            || map
                .get("system")
                .and_then(Value::as_str)
                .is_some_and(|s| CONTACT_POINT_SYSTEMS.contains(&s))
        {
            "ContactPoint"
        } else if map.contains_key("value") {
            "Identifier"
        } else if map.contains_key("code") || map.contains_key("system") {
            "Coding"
        } else {
            "CodeableConcept"
        }
    });
    match kind {
        "CodeableConcept" => {
            // The concept's text rides on each coding's row, beside the coding's display, rather
            // than in a row of its own: a row less per concept, and for composites such as
            // `code-value-quantity` half the combinations. `:text` matches either part, and a
            // newline cannot occur in normalised text, so no match spans the two.
            let text = text_of(map, "text");
            let first = out.len();
            if let Some(Value::Array(codings)) = map.get("coding") {
                for coding in codings {
                    if let Value::Object(c) = coding {
                        coding_value(c, text.as_deref(), out);
                    }
                }
            }
            if out.len() == first
                && let Some(text) = text
            {
                push_unique(
                    out,
                    IndexValue::Token {
                        system: None,
                        code: None,
                        text: Some(text),
                    },
                );
            }
        }
        "Coding" => coding_value(map, None, out),
        // The spec matches a ContactPoint on its value; its system says only phone or email.
        "ContactPoint" => {
            if let Some(v) = str_of(map, "value") {
                push_unique(
                    out,
                    IndexValue::Token {
                        system: None,
                        code: Some(v),
                        text: None,
                    },
                );
            }
        }
        "Identifier" => {
            let system = str_of(map, "system");
            let code = str_of(map, "value");
            let text = map
                .get("type")
                .and_then(Value::as_object)
                .and_then(|t| text_of(t, "text"));
            if system.is_some() || code.is_some() {
                push_unique(out, IndexValue::Token { system, code, text });
            }
        }
        _ => {}
    }
}

/// A coding's token; `concept_text` is the text of the CodeableConcept holding it, if any.
fn coding_value(map: &Map<String, Value>, concept_text: Option<&str>, out: &mut Vec<IndexValue>) {
    let system = str_of(map, "system");
    let code = str_of(map, "code");
    let text = match (text_of(map, "display"), concept_text) {
        (Some(display), Some(text)) if display != text => Some(format!("{display}\n{text}")),
        (Some(display), _) => Some(display),
        (None, text) => text.map(str::to_string),
    };
    if system.is_some() || code.is_some() || text.is_some() {
        push_unique(out, IndexValue::Token { system, code, text });
    }
}

fn date_values(value: &Value, out: &mut Vec<IndexValue>) {
    match value {
        Value::String(s) => {
            if let Some(r) = date_range(s) {
                push_unique(
                    out,
                    IndexValue::Date {
                        low: r.low,
                        high: r.high,
                    },
                );
            }
        }
        Value::Object(map) if map.contains_key("start") || map.contains_key("end") => {
            let start = map.get("start").and_then(Value::as_str).map(date_range);
            let end = map.get("end").and_then(Value::as_str).map(date_range);
            // A malformed end is not taken as open: the value is skipped instead.
            let low = match start {
                None => i64::MIN,
                Some(Some(r)) => r.low,
                Some(None) => return,
            };
            let high = match end {
                None => i64::MAX,
                Some(Some(r)) => r.high,
                Some(None) => return,
            };
            push_unique(out, IndexValue::Date { low, high });
        }
        Value::Object(map) => {
            // Timing: each event, and the repeat's bounds when they are a Period.
            for s in strings_of(map.get("event")) {
                if let Some(r) = date_range(s) {
                    push_unique(
                        out,
                        IndexValue::Date {
                            low: r.low,
                            high: r.high,
                        },
                    );
                }
            }
            if let Some(bounds) = map.get("repeat").and_then(|r| r.get("boundsPeriod")) {
                date_values(bounds, out);
            }
        }
        _ => {}
    }
}

fn quantity_values(value: &Value, fhir_type: Option<&str>, out: &mut Vec<IndexValue>) {
    let Value::Object(map) = value else { return };
    if fhir_type == Some("Range") || map.contains_key("low") || map.contains_key("high") {
        // A Range is indexed as one quantity covering low..high, valued at its low end.
        let bound = |key: &str| -> Option<(f64, f64, f64, &Map<String, Value>)> {
            let q = map.get(key)?.as_object()?;
            let (v, l, h) = implicit_range(&q.get("value")?.as_number()?.to_string())?;
            Some((v, l, h, q))
        };
        let low = bound("low");
        let high = bound("high");
        let Some(unit_of) = low.or(high).map(|b| b.3) else {
            return;
        };
        push_unique(
            out,
            IndexValue::Quantity {
                value: low.or(high).map_or(0.0, |b| b.0),
                low: low.map_or(f64::NEG_INFINITY, |b| b.1),
                high: high.map_or(f64::INFINITY, |b| b.2),
                system: str_of(unit_of, "system"),
                code: str_of(unit_of, "code"),
                unit: str_of(unit_of, "unit"),
            },
        );
        return;
    }
    let Some(Value::Number(n)) = map.get("value") else {
        return;
    };
    let Some((v, low, high)) = implicit_range(&n.to_string()) else {
        return;
    };
    let (system, code) = match map.get("currency").and_then(Value::as_str) {
        // Money: the currency is an ISO 4217 code.
        Some(currency) => (
            Some("urn:iso:std:iso:4217".to_string()),
            Some(currency.to_string()),
        ),
        None => (str_of(map, "system"), str_of(map, "code")),
    };
    push_unique(
        out,
        IndexValue::Quantity {
            value: v,
            low,
            high,
            system,
            code,
            unit: str_of(map, "unit"),
        },
    );
}

fn reference_values(value: &Value, out: &mut Vec<IndexValue>) {
    match value {
        // canonical, uri and url elements that a reference parameter selects.
        Value::String(s) => {
            if let Some(v) = reference_string(s, true) {
                push_unique(out, v);
            }
        }
        Value::Object(map) => {
            let identifier = map
                .get("identifier")
                .and_then(Value::as_object)
                .and_then(|i| {
                    let value = str_of(i, "value")?;
                    Some((str_of(i, "system"), value))
                });
            let from_reference = map
                .get("reference")
                .and_then(Value::as_str)
                .and_then(|s| reference_string(s, false));
            match (from_reference, identifier) {
                (
                    Some(IndexValue::Reference {
                        resource_type,
                        id,
                        url,
                        version,
                        ..
                    }),
                    identifier,
                ) => {
                    push_unique(
                        out,
                        IndexValue::Reference {
                            resource_type,
                            id,
                            url,
                            version,
                            identifier,
                        },
                    );
                }
                (_, Some(identifier)) => push_unique(
                    out,
                    IndexValue::Reference {
                        resource_type: None,
                        id: None,
                        url: None,
                        version: None,
                        identifier: Some(identifier),
                    },
                ),
                _ => {}
            }
        }
        _ => {}
    }
}

/// A reference string as an index value; `canonical` allows the `url|version` form.
fn reference_string(s: &str, canonical: bool) -> Option<IndexValue> {
    use concord_fhir::reference::{Reference, parse};
    let (target, version) = match s.split_once('|') {
        Some((url, version)) if canonical || s.contains("://") => (url, Some(version.to_string())),
        _ => (s, None),
    };
    let value =
        |resource_type: Option<&str>, id: Option<&str>, url: Option<&str>| IndexValue::Reference {
            resource_type: resource_type.map(str::to_string),
            id: id.map(str::to_string),
            url: url.map(str::to_string),
            version: version.clone(),
            identifier: None,
        };
    match parse(target) {
        Ok(Reference::Relative {
            resource_type, id, ..
        }) => Some(value(Some(resource_type), Some(id), None)),
        Ok(Reference::Absolute {
            url,
            resource_type,
            id,
            ..
        }) => Some(value(resource_type, id, Some(url))),
        Ok(Reference::Urn(urn)) => Some(value(None, None, Some(urn))),
        // Contained and conditional references point at nothing a search can find.
        Ok(Reference::Contained(_) | Reference::Conditional { .. }) => None,
        // Other canonicals and uris (`urn:ietf:...`, plain names) are kept as urls.
        Err(_)
            if !target.is_empty()
                && !target.chars().any(char::is_whitespace)
                && (canonical || target.contains(':')) =>
        {
            Some(value(None, None, Some(target)))
        }
        Err(_) => None,
    }
}

/// The value of a decimal's lexical form and the implicit range of its precision: `100` covers
/// [99.5, 100.5], `1.50` covers [1.495, 1.505], `1e2` covers [50, 150]
/// (<https://hl7.org/fhir/R4/search.html#number>). `None` when `lexical` is not a decimal.
pub fn implicit_range(lexical: &str) -> Option<(f64, f64, f64)> {
    if !concord_fhir::primitive::is_decimal(lexical) {
        return None;
    }
    let value: f64 = lexical.parse().ok()?;
    let (mantissa, exponent) = match lexical.find(['e', 'E']) {
        Some(i) => (&lexical[..i], lexical[i + 1..].parse::<i32>().ok()?),
        None => (lexical, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
    let decimals = i32::try_from(decimals).ok()?;
    let half = 0.5 * 10f64.powi(exponent.saturating_sub(decimals));
    value
        .is_finite()
        .then_some((value, value - half, value + half))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn implicit_ranges_follow_precision() {
        assert_eq!(implicit_range("100"), Some((100.0, 99.5, 100.5)));
        let (_, low, high) = implicit_range("1.5").unwrap();
        assert!((low - 1.45).abs() < 1e-12 && (high - 1.55).abs() < 1e-12);
        assert_eq!(implicit_range("1e2"), Some((100.0, 50.0, 150.0)));
        assert_eq!(implicit_range("-2"), Some((-2.0, -2.5, -1.5)));
        assert_eq!(implicit_range("abc"), None);
        assert_eq!(implicit_range("1e999"), None);
    }

    fn codes(resource: &Value, code: &str) -> Vec<IndexValue> {
        index_entries(resource)
            .into_iter()
            .filter(|e| e.code == code)
            .map(|e| e.value)
            .collect()
    }

    #[test]
    fn tokens_by_element_type() {
        let p = json!({"resourceType": "Patient", "active": true, "gender": "male",
            "identifier": [{"system": "urn:s", "value": "1", "type": {"text": "MRN"}}],
            "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@b.c"}],
            "meta": {"tag": [{"system": "t", "code": "c", "display": "Tag"}], "security": [{"code": "R"}],
                     "profile": ["http://p"], "source": "http://s"}});
        assert_eq!(
            codes(&p, "active"),
            [IndexValue::Token {
                system: None,
                code: Some("true".into()),
                text: None
            }]
        );
        assert_eq!(
            codes(&p, "identifier"),
            [IndexValue::Token {
                system: Some("urn:s".into()),
                code: Some("1".into()),
                text: Some("mrn".into())
            }]
        );
        assert_eq!(
            codes(&p, "phone"),
            [IndexValue::Token {
                system: None,
                code: Some("555".into()),
                text: None
            }]
        );
        assert_eq!(codes(&p, "telecom").len(), 2);
        assert_eq!(
            codes(&p, "_tag"),
            [IndexValue::Token {
                system: Some("t".into()),
                code: Some("c".into()),
                text: Some("tag".into())
            }]
        );
        assert_eq!(codes(&p, "_security").len(), 1);
        assert_eq!(codes(&p, "_profile"), [IndexValue::Uri("http://p".into())]);
        assert_eq!(codes(&p, "_source"), [IndexValue::Uri("http://s".into())]);
        assert!(codes(&p, "_id").is_empty());
    }

    #[test]
    fn a_concepts_text_rides_on_its_codings() {
        let token =
            |system: Option<&str>, code: Option<&str>, text: Option<&str>| IndexValue::Token {
                system: system.map(Into::into),
                code: code.map(Into::into),
                text: text.map(Into::into),
            };
        let o = json!({"resourceType": "Observation", "code": {"text": "Body Weight", "coding": [
            {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"},
            {"system": "http://snomed.info/sct", "code": "27113001", "display": "Body weight measure"},
            {"system": "urn:local", "code": "w"}]}});
        assert_eq!(
            codes(&o, "code"),
            [
                token(
                    Some("http://loinc.org"),
                    Some("29463-7"),
                    Some("body weight")
                ),
                token(
                    Some("http://snomed.info/sct"),
                    Some("27113001"),
                    Some("body weight measure\nbody weight")
                ),
                token(Some("urn:local"), Some("w"), Some("body weight")),
            ]
        );
        // A concept with text alone still gets a row, so `:text` finds it.
        let text_only = json!({"resourceType": "Observation", "code": {"text": "Feeling low"}});
        assert_eq!(
            codes(&text_only, "code"),
            [token(None, None, Some("feeling low"))]
        );
        // The composite pairs each coding (not the text as well) with the value.
        let composite = json!({"resourceType": "Observation", "code": {"text": "Weight",
            "coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "valueQuantity": {"value": 70, "system": "http://unitsofmeasure.org", "code": "kg"}});
        assert_eq!(
            index_entries(&composite)
                .iter()
                .filter(|e| e.code == "code-value-quantity")
                .count(),
            1
        );
    }

    #[test]
    fn dates_periods_and_bad_values() {
        let e = json!({"resourceType": "Encounter", "period": {"start": "2020-01-01"}});
        let d = codes(&e, "date");
        let start = date_range("2020-01-01").unwrap().low;
        assert_eq!(
            d,
            [IndexValue::Date {
                low: start,
                high: i64::MAX
            }]
        );
        let bad = json!({"resourceType": "Patient", "birthDate": "not a date", "name": "not a name", "active": [1, {"x": 2}]});
        assert!(codes(&bad, "birthdate").is_empty());
        assert!(index_entries(&json!({"resourceType": 7})).is_empty());
        assert!(index_entries(&json!([])).is_empty());
    }

    #[test]
    fn references_canonicals_and_identifiers() {
        let o = json!({"resourceType": "Observation", "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "http://x.org/fhir/Practitioner/7"}, {"identifier": {"system": "s", "value": "v"}}, {"reference": "#c"}],
            "basedOn": [{"reference": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"}]});
        assert_eq!(
            codes(&o, "patient"),
            [IndexValue::Reference {
                resource_type: Some("Patient".into()),
                id: Some("p1".into()),
                url: None,
                version: None,
                identifier: None
            }]
        );
        let performers = codes(&o, "performer");
        assert_eq!(performers.len(), 2, "{performers:?}");
        assert_eq!(codes(&o, "based-on").len(), 1);
        let q = json!({"resourceType": "QuestionnaireResponse", "questionnaire": "http://q.org/Questionnaire/q1|2.0"});
        assert_eq!(
            codes(&q, "questionnaire"),
            [IndexValue::Reference {
                resource_type: Some("Questionnaire".into()),
                id: Some("q1".into()),
                url: Some("http://q.org/Questionnaire/q1".into()),
                version: Some("2.0".into()),
                identifier: None
            }]
        );
    }
}
