//! The NHS number rule on every write: an identifier in the system
//! `https://fhir.nhs.uk/Id/nhs-number` must carry a valid number (ten digits, modulus-11 check).
//!
//! Owns finding such identifiers anywhere in a resource (Patient.identifier, a reference's
//! identifier, a contained resource) and applying the configured policy: reject the write with an
//! OperationOutcome naming each bad identifier, or accept it and flag it with a `meta.tag` that a
//! data-quality search can find. Does not match people; the index ignores invalid numbers.

use concord_fhir::{Error, ErrorKind, Issue, IssueType};
use concord_mpi::{NHS_NUMBER_SYSTEM, NhsNumber};
use serde_json::{Value, json};

/// The tag a flagged write carries (search with `_tag=<system>|invalid-nhs-number`).
pub const DATA_QUALITY_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/data-quality";
pub const INVALID_NHS_NUMBER: &str = "invalid-nhs-number";

/// What a write with an invalid NHS number does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidNhsNumber {
    /// Refuse the write (422 with an OperationOutcome naming the identifier).
    #[default]
    Reject,
    /// Store it with the data-quality tag, for legacy feeds that cannot be corrected at source.
    Flag,
}

/// Applies the policy to one resource about to be stored.
pub fn check(policy: InvalidNhsNumber, resource_type: &str, body: &mut Value) -> Result<(), Error> {
    let mut issues = Vec::new();
    walk(body, resource_type, &mut Vec::new(), &mut issues);
    if issues.is_empty() {
        return Ok(());
    }
    match policy {
        InvalidNhsNumber::Reject => Err(Error::with_issues(ErrorKind::Unprocessable, issues)),
        InvalidNhsNumber::Flag => {
            add_tag(body);
            Ok(())
        }
    }
}

/// One step of the path from the resource to a value.
enum Step<'a> {
    Member(&'a str),
    Item(usize),
}

/// The FHIRPath-style path of the steps, written only for an issue: every write is checked, and
/// nearly all pass, so the path is kept as steps rather than text.
fn path_text(resource_type: &str, steps: &[Step<'_>]) -> String {
    let mut path = resource_type.to_string();
    for step in steps {
        match step {
            Step::Member(key) => {
                path.push('.');
                path.push_str(key);
            }
            Step::Item(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn walk<'a>(
    value: &'a Value,
    resource_type: &str,
    steps: &mut Vec<Step<'a>>,
    issues: &mut Vec<Issue>,
) {
    match value {
        Value::Object(map) => {
            if map.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM) {
                let problem = match map.get("value") {
                    Some(Value::String(v)) => NhsNumber::parse(v).err().map(|e| e.to_string()),
                    Some(_) => Some("the NHS number must be a string".to_string()),
                    None => None,
                };
                if let Some(problem) = problem {
                    let path = path_text(resource_type, steps);
                    issues.push(
                        Issue::error(
                            IssueType::Value,
                            format!("{path} is not a valid NHS number: {problem}"),
                        )
                        .at(format!("{path}.value")),
                    );
                }
            }
            for (key, child) in map {
                if child.is_object() || child.is_array() {
                    steps.push(Step::Member(key));
                    walk(child, resource_type, steps, issues);
                    steps.pop();
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                if child.is_object() || child.is_array() {
                    steps.push(Step::Item(i));
                    walk(child, resource_type, steps, issues);
                    steps.pop();
                }
            }
        }
        _ => {}
    }
}

fn add_tag(body: &mut Value) {
    let tag = json!({"system": DATA_QUALITY_SYSTEM, "code": INVALID_NHS_NUMBER, "display": "Carries an invalid NHS number"});
    let Some(map) = body.as_object_mut() else {
        return;
    };
    let meta = map.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut()
            && !tags
                .iter()
                .any(|t| t.get("code") == tag.get("code") && t.get("system") == tag.get("system"))
        {
            tags.push(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient(value: Value) -> Value {
        json!({"resourceType": "Patient", "identifier": [
            {"system": "urn:oid:1.2.3", "value": "x"},
            {"system": NHS_NUMBER_SYSTEM, "value": value}
        ]})
    }

    #[test]
    fn valid_numbers_pass_untouched() {
        let mut p = patient(json!("943 476 5919"));
        let before = p.clone();
        check(InvalidNhsNumber::Reject, "Patient", &mut p).unwrap();
        assert_eq!(p, before);
    }

    #[test]
    fn an_invalid_number_is_named() {
        let mut p = patient(json!("9434765918"));
        let error = check(InvalidNhsNumber::Reject, "Patient", &mut p).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unprocessable);
        assert_eq!(
            error.issues[0].expression,
            vec!["Patient.identifier[1].value".to_string()]
        );
        assert!(
            error.issues[0].diagnostics.contains("check digit"),
            "{:?}",
            error.issues
        );
    }

    #[test]
    fn references_and_contained_resources_are_checked_too() {
        let mut obs = json!({"resourceType": "Observation", "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": "123"}}});
        let error = check(InvalidNhsNumber::Reject, "Observation", &mut obs).unwrap_err();
        assert_eq!(
            error.issues[0].expression,
            vec!["Observation.subject.identifier.value".to_string()]
        );
    }

    #[test]
    fn flagging_keeps_the_write_and_tags_it_once() {
        let mut p = patient(json!(12));
        check(InvalidNhsNumber::Flag, "Patient", &mut p).unwrap();
        check(InvalidNhsNumber::Flag, "Patient", &mut p).unwrap();
        assert_eq!(p["meta"]["tag"].as_array().unwrap().len(), 1);
        assert_eq!(p["meta"]["tag"][0]["code"], INVALID_NHS_NUMBER);
    }
}
