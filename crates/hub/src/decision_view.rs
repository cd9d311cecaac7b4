//! The part of a stored resource that an access decision reads, parsed without the rest.
//!
//! Owns: which top-level members of a resource a decision and the mask read (its type, id,
//! `meta` and identifiers, and the members its Patient-compartment search parameters start
//! from: `subject`, `patient`, `performer`, ...), and reading a stored body into a JSON object
//! of those members alone. A read by id parsed the whole body to decide on it, about 7% of the
//! server's CPU per read; most of a resource (its narrative, codes, values, a Patient's names
//! and addresses) is read by neither.
//! Does not: decide, or mask. A filter that withholds codes makes the mask read the whole
//! resource (`concord_access::reads_whole_resource`), and the caller then parses all of it.

use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use concord_search::registry::{lookup, patient_compartment_params};

/// The top-level members `patients_of` reads for a resource type (besides those [`holds`]
/// always keeps), from its Patient-compartment search parameters' expressions; `None` when an
/// expression does not start from a member of the type (then the whole resource is parsed).
fn decision_members(resource_type: &str) -> Option<Vec<&'static str>> {
    let mut members = Vec::new();
    if resource_type == "Patient" {
        return Some(members);
    }
    for code in patient_compartment_params(resource_type) {
        let def = lookup(resource_type, code)?;
        for path in def.expression?.split('|') {
            let path = path.trim().trim_start_matches('(');
            let rest = path.strip_prefix(def.base)?.strip_prefix('.')?;
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            members.push(&rest[..end]);
        }
    }
    Some(members)
}

/// Whether a JSON key holds one of `members`: the member itself, a choice type of it
/// (`value` → `valueQuantity`), or a primitive's extensions (`_subject`).
fn holds(key: &str, members: &[&str]) -> bool {
    if matches!(key, "resourceType" | "id" | "meta" | "identifier") {
        return true;
    }
    let key = key.strip_prefix('_').unwrap_or(key);
    members.iter().any(|m| {
        key.strip_prefix(m).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
        })
    })
}

/// The stored body as a JSON object holding what the decision reads (the whole body when the
/// members cannot be told). The rest of the text is checked to be JSON but not kept.
pub(crate) fn decision_view(resource_type: &str, body: &str) -> serde_json::Result<Value> {
    let Some(members) = decision_members(resource_type) else {
        return serde_json::from_str(body);
    };
    let mut de = serde_json::Deserializer::from_str(body);
    let value = (&mut de).deserialize_map(Members(&members))?;
    de.end()?;
    Ok(value)
}

/// Reads a top-level object, keeping the members [`holds`] accepts.
struct Members<'m>(&'m [&'m str]);

impl<'de> Visitor<'de> for Members<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a FHIR resource (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if holds(&key, self.0) {
                kept.insert(key, map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Object(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_what_the_decision_reads_and_drops_the_rest() {
        let observation = json!({
            "resourceType": "Observation", "id": "o1",
            "meta": {"security": [{"code": "R"}]},
            "identifier": [{"system": "urn:x", "value": "1"}],
            "status": "final",
            "code": {"text": "BP"},
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Practitioner/d1"}],
            "valueQuantity": {"value": 1},
            "text": {"div": "<div>long narrative</div>"}
        });
        let view = decision_view("Observation", &observation.to_string()).unwrap();
        assert_eq!(
            view,
            json!({
                "resourceType": "Observation", "id": "o1",
                "meta": {"security": [{"code": "R"}]},
                "identifier": [{"system": "urn:x", "value": "1"}],
                "subject": {"reference": "Patient/p1"},
                "performer": [{"reference": "Practitioner/d1"}]
            })
        );
        // The decision's own reading gives what it gives on the whole resource.
        assert_eq!(
            crate::access::patients_of("Observation", &view),
            crate::access::patients_of("Observation", &observation)
        );
    }

    #[test]
    fn a_patient_needs_only_its_id_and_meta() {
        let patient = json!({
            "resourceType": "Patient", "id": "p1", "meta": {"versionId": "1"},
            "name": [{"family": "Smith"}], "birthDate": "1970-01-01"
        });
        let view = decision_view("Patient", &patient.to_string()).unwrap();
        assert_eq!(
            view,
            json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "1"}})
        );
    }

    #[test]
    fn choice_types_and_primitive_extensions_are_kept() {
        assert!(holds("valueQuantity", &["value"]));
        assert!(holds("_subject", &["subject"]));
        assert!(!holds("valueset", &["value"]));
        assert!(!holds("subjectivity", &["subject"]));
    }

    #[test]
    fn every_compartment_type_has_its_members_found() {
        // Every resource type in the Patient compartment starts its parameters from members of
        // its own, so none falls back to parsing the whole body. A registry that broke that
        // would cost only speed; this test says so.
        for resource_type in concord_search::registry::compartment_types() {
            if resource_type == "Patient" {
                // The Patient's own id says whose it is.
                continue;
            }
            let members = decision_members(resource_type);
            assert!(
                members.as_ref().is_some_and(|m| !m.is_empty()),
                "{resource_type}: {members:?}"
            );
        }
    }

    #[test]
    fn bad_json_is_still_an_error() {
        assert!(decision_view("Observation", r#"{"resourceType":"Observation","text":{"#).is_err());
        assert!(
            decision_view("Observation", r#"{"resourceType":"Observation"} trailing"#).is_err()
        );
        assert!(decision_view("Patient", "[1, 2]").is_err());
    }
}
