//! Reading FHIR values as plain words for pages: names, dates, codes, quantities, NHS numbers,
//! and where a resource came from.
//!
//! Owns the small formatting rules every page shares. Does not: fetch or decide anything; every
//! function takes JSON and returns text, and missing or malformed values become empty text or
//! `None`, never a panic.

use serde_json::Value;

use concord_access::category::{PATIENT_ENTERED_CODE, PROVENANCE_TAG_SYSTEM};
use concord_federation::{SOURCE_DATA_AGE_URL, SOURCE_ORGANIZATION_URL};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A FHIR date or dateTime as `3 Dec 2026` (`Dec 2026`, `2026` for partial dates); the input
/// unchanged when it is not one.
pub fn date(value: &str) -> String {
    let mut parts = value.get(..10.min(value.len())).unwrap_or(value).split('-');
    let year = parts.next().unwrap_or_default();
    let month = parts.next().and_then(|m| m.parse::<usize>().ok());
    let day = parts.next().and_then(|d| d.parse::<u32>().ok());
    match (month, day) {
        (Some(m @ 1..=12), Some(d)) => format!("{d} {} {year}", MONTHS[m - 1]),
        (Some(m @ 1..=12), None) => format!("{} {year}", MONTHS[m - 1]),
        _ if year.len() == 4 => year.to_string(),
        _ => value.to_string(),
    }
}

/// A dateTime as `3 Dec 2026 14:05` (the date alone when there is no time).
pub fn date_time(value: &str) -> String {
    match value.get(11..16) {
        Some(time) if value.len() > 16 => format!("{} {time}", date(value)),
        _ => date(value),
    }
}

/// A CodeableConcept's words: its text, else its first coding's display, else its first code.
pub fn concept(value: &Value) -> String {
    if let Some(text) = value["text"].as_str().filter(|t| !t.is_empty()) {
        return text.to_string();
    }
    let codings = value["coding"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    codings
        .iter()
        .find_map(|c| c["display"].as_str().filter(|d| !d.is_empty()))
        .or_else(|| codings.iter().find_map(|c| c["code"].as_str()))
        .unwrap_or_default()
        .to_string()
}

/// A HumanName list's usual (or first) name as `Given FAMILY`-style plain text: `Jane Smith`.
pub fn name(names: &Value) -> String {
    let list = names.as_array().map(Vec::as_slice).unwrap_or_default();
    let chosen = list
        .iter()
        .find(|n| n["use"] == "usual" || n["use"] == "official")
        .or_else(|| list.first());
    let Some(n) = chosen else {
        return String::new();
    };
    if let Some(text) = n["text"].as_str().filter(|t| !t.is_empty()) {
        return text.to_string();
    }
    let given: Vec<&str> = n["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let family = n["family"].as_str().unwrap_or_default();
    let mut words = given;
    if !family.is_empty() {
        words.push(family);
    }
    words.join(" ")
}

/// `9434765919` as `943 476 5919`, the way the NHS writes it.
pub fn nhs_number(value: &str) -> String {
    if value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()) {
        format!("{} {} {}", &value[..3], &value[3..6], &value[6..])
    } else {
        value.to_string()
    }
}

/// The NHS number among a Patient's identifiers.
pub fn patient_nhs_number(patient: &Value) -> Option<String> {
    patient["identifier"].as_array()?.iter().find_map(|i| {
        (i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
            .then(|| i["value"].as_str().map(str::to_string))
            .flatten()
    })
}

/// An address as one line: `1 High Street, Leeds, LS1 1AA`.
pub fn address(value: &Value) -> String {
    let Some(a) = value.as_array().and_then(|l| l.first()).or(Some(value)) else {
        return String::new();
    };
    if let Some(text) = a["text"].as_str().filter(|t| !t.is_empty()) {
        return text.to_string();
    }
    let mut parts: Vec<&str> = a["line"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for field in ["city", "district", "postalCode"] {
        if let Some(v) = a[field].as_str().filter(|v| !v.is_empty()) {
            parts.push(v);
        }
    }
    parts.join(", ")
}

/// A Quantity as `120 mmHg`.
pub fn quantity(value: &Value) -> String {
    let number = match &value["value"] {
        Value::Number(n) => n.to_string(),
        _ => return String::new(),
    };
    let unit = value["unit"]
        .as_str()
        .or_else(|| value["code"].as_str())
        .unwrap_or_default();
    if unit.is_empty() {
        number
    } else {
        format!("{number} {unit}")
    }
}

/// The organisation a federated resource came from, by its `source-organization` extension.
pub fn source_name(resource: &Value) -> Option<String> {
    extension(&resource["meta"], SOURCE_ORGANIZATION_URL)
        .and_then(|e| e["valueReference"]["display"].as_str())
        .map(str::to_string)
}

/// How old the resource's source data was when read, in seconds (batch sources only).
pub fn source_age_secs(resource: &Value) -> Option<i64> {
    extension(&resource["meta"], SOURCE_DATA_AGE_URL)
        .and_then(|e| e["valueQuantity"]["value"].as_i64())
}

/// Whether the hub tagged the resource as entered by the patient (or their proxy).
pub fn is_patient_entered(resource: &Value) -> bool {
    resource["meta"]["tag"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["system"] == PROVENANCE_TAG_SYSTEM && t["code"] == PATIENT_ENTERED_CODE)
    })
}

/// The first extension of `element` with this URL.
pub fn extension<'a>(element: &'a Value, url: &str) -> Option<&'a Value> {
    element["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == url)
}

/// `3 hours`, `2 days`: a plain-language age.
pub fn age(seconds: i64) -> String {
    let (n, unit) = match seconds {
        s if s < 120 => (s.max(0), "second"),
        s if s < 7200 => (s / 60, "minute"),
        s if s < 2 * 86400 => (s / 3600, "hour"),
        s => (s / 86400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_read_the_nhs_way() {
        assert_eq!(date("2026-12-03"), "3 Dec 2026");
        assert_eq!(date("2026-12"), "Dec 2026");
        assert_eq!(date("2026"), "2026");
        assert_eq!(date_time("2026-12-03T14:05:00Z"), "3 Dec 2026 14:05");
        assert_eq!(date("garbage"), "garbage");
    }

    #[test]
    fn names_numbers_and_concepts() {
        assert_eq!(
            name(&json!([{"use": "official", "family": "Smith", "given": ["Jane", "Ann"]}])),
            "Jane Ann Smith"
        );
        assert_eq!(nhs_number("9434765919"), "943 476 5919");
        assert_eq!(nhs_number("12"), "12");
        assert_eq!(
            concept(&json!({"coding": [{"code": "x", "display": "Asthma"}]})),
            "Asthma"
        );
        assert_eq!(concept(&json!(null)), "");
        assert_eq!(quantity(&json!({"value": 120, "unit": "mmHg"})), "120 mmHg");
    }
}
