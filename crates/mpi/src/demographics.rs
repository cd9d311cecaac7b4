//! The demographic record the matcher compares, and how one is read from a FHIR Patient.
//!
//! Owns the mapping from Patient JSON (name, birthDate, gender, address, telecom, identifier) to
//! [`Demographics`]. Does not normalise for comparison (that is the matcher's business) and never
//! fails: a Patient with odd or missing fields gives a record with those fields empty.

use serde_json::Value;

use crate::nhs_number::{NHS_NUMBER_SYSTEM, NhsNumber};

/// Administrative sex as FHIR `Patient.gender` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
    Other,
    Unknown,
}

impl Sex {
    /// Reads FHIR codes and the common one-letter forms of CSV extracts (`M`, `F`, `U`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "male" | "m" => Some(Self::Male),
            "female" | "f" => Some(Self::Female),
            "other" | "o" => Some(Self::Other),
            "unknown" | "u" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// A date of birth. Month and day stay separate so the matcher can see a day/month transposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BirthDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl BirthDate {
    /// Reads `YYYY-MM-DD` (FHIR `date` at day precision) or `YYYYMMDD` (HL7 v2, FEBRL). Partial
    /// dates are not a date of birth to match on, so they give `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let (y, m, d) = match t.len() {
            10 if t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' => {
                (&t[0..4], &t[5..7], &t[8..10])
            }
            8 if t.bytes().all(|b| b.is_ascii_digit()) => (&t[0..4], &t[4..6], &t[6..8]),
            _ => return None,
        };
        let date = Self {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
            day: d.parse().ok()?,
        };
        ((1..=12).contains(&date.month) && (1..=31).contains(&date.day)).then_some(date)
    }
}

/// One person's demographics as one source records them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demographics {
    /// A valid NHS number; an invalid one is never evidence and is left out.
    pub nhs_number: Option<NhsNumber>,
    /// Given names in order; the first is the first name.
    pub given_names: Vec<String>,
    pub family_name: Option<String>,
    pub birth_date: Option<BirthDate>,
    pub sex: Option<Sex>,
    /// Address lines and town, joined with spaces, without the postcode.
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub phone: Option<String>,
    /// Another identifier the sources share (a local hospital number, FEBRL's `soc_sec_id`),
    /// compared as a string.
    pub other_identifier: Option<String>,
}

impl Demographics {
    /// Reads a FHIR R4 Patient. The name used is the first `official` (else `usual`, else the
    /// first) name; the address is the first `home` address that has not ended (else the first).
    pub fn from_patient(patient: &Value) -> Self {
        let mut d = Self::default();
        if let Some(ids) = patient.get("identifier").and_then(Value::as_array) {
            d.nhs_number = ids
                .iter()
                .filter(|i| i.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM))
                .filter_map(|i| i.get("value").and_then(Value::as_str))
                .find_map(|v| NhsNumber::parse(v).ok());
        }
        if let Some(name) = pick(patient.get("name"), "use", &["official", "usual"]) {
            d.given_names = name
                .get("given")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .flat_map(str::split_whitespace)
                .map(str::to_string)
                .collect();
            d.family_name = name
                .get("family")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string);
        }
        d.birth_date = patient
            .get("birthDate")
            .and_then(Value::as_str)
            .and_then(BirthDate::parse);
        d.sex = patient
            .get("gender")
            .and_then(Value::as_str)
            .and_then(Sex::parse);
        if let Some(address) = pick(patient.get("address"), "use", &["home"]) {
            let parts: Vec<&str> = address
                .get("line")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .chain(address.get("city").and_then(Value::as_str))
                .filter(|s| !s.trim().is_empty())
                .collect();
            if !parts.is_empty() {
                d.address = Some(parts.join(" "));
            }
            d.postcode = address
                .get("postalCode")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string);
        }
        d.phone = patient
            .get("telecom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| t.get("system").and_then(Value::as_str) == Some("phone"))
            .and_then(|t| t.get("value").and_then(Value::as_str))
            .map(str::to_string);
        d
    }
}

/// The first element of an array whose `field` is the first of `preferred` present (ended
/// periods skipped), else the first element.
fn pick<'a>(list: Option<&'a Value>, field: &str, preferred: &[&str]) -> Option<&'a Value> {
    let items = list?.as_array()?;
    let current = |v: &&Value| v.get("period").and_then(|p| p.get("end")).is_none();
    preferred
        .iter()
        .find_map(|want| {
            items
                .iter()
                .filter(current)
                .find(|v| v.get(field).and_then(Value::as_str) == Some(*want))
        })
        .or_else(|| items.iter().find(current))
        .or_else(|| items.first())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_uk_core_patient() {
        let p = json!({
            "resourceType": "Patient",
            "identifier": [
                {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "123"},
                {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}
            ],
            "name": [
                {"use": "maiden", "family": "Jones", "given": ["Jane"]},
                {"use": "official", "family": "Smith-Jones", "given": ["Jane Anne", "Marie"]}
            ],
            "gender": "female",
            "birthDate": "1980-03-07",
            "address": [
                {"use": "home", "line": ["1 Old Road"], "postalCode": "LS1 1AA", "period": {"end": "2010"}},
                {"use": "home", "line": ["22 High Street", "Flat 2"], "city": "Leeds", "postalCode": "LS6 2AB"}
            ],
            "telecom": [{"system": "email", "value": "x@y"}, {"system": "phone", "value": "0113 496 0000"}]
        });
        let d = Demographics::from_patient(&p);
        assert_eq!(d.nhs_number.unwrap().digits(), "9434765919");
        assert_eq!(d.given_names, ["Jane", "Anne", "Marie"]);
        assert_eq!(d.family_name.as_deref(), Some("Smith-Jones"));
        assert_eq!(
            d.birth_date,
            Some(BirthDate {
                year: 1980,
                month: 3,
                day: 7
            })
        );
        assert_eq!(d.sex, Some(Sex::Female));
        assert_eq!(d.address.as_deref(), Some("22 High Street Flat 2 Leeds"));
        assert_eq!(d.postcode.as_deref(), Some("LS6 2AB"));
        assert_eq!(d.phone.as_deref(), Some("0113 496 0000"));
    }

    #[test]
    fn odd_patients_give_empty_fields_not_errors() {
        for p in [
            json!({}),
            json!({"name": "Smith", "birthDate": 1980, "gender": ["x"], "address": {}}),
            json!({"name": [], "birthDate": "1980", "identifier": [{"value": 3}]}),
        ] {
            let d = Demographics::from_patient(&p);
            assert_eq!(d, Demographics::default(), "{p}");
        }
    }

    #[test]
    fn birth_dates() {
        assert_eq!(BirthDate::parse("19800307"), BirthDate::parse("1980-03-07"));
        assert_eq!(BirthDate::parse("1980-13-07"), None);
        assert_eq!(BirthDate::parse("1980-03"), None);
    }
}
