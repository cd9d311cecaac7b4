//! FHIR references (<https://hl7.org/fhir/R4/references.html>).
//!
//! Owns: parsing a `Reference.reference` string into what it points at. Does not: resolve
//! anything (that needs a store) or decide whether an absolute URL is this server.

use crate::primitive::is_id;
use crate::resource::is_resource_type;

/// What a reference string points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `Patient/123` or `Patient/123/_history/2`, relative to the server base.
    Relative {
        resource_type: &'a str,
        id: &'a str,
        version_id: Option<&'a str>,
    },
    /// An absolute URL; when it ends in `Type/id(/_history/v)` that part is given, so a caller can
    /// recognise its own base.
    Absolute {
        url: &'a str,
        base: &'a str,
        resource_type: Option<&'a str>,
        id: Option<&'a str>,
    },
    /// `urn:uuid:...` or `urn:oid:...`, used inside Bundles.
    Urn(&'a str),
    /// `#id`, a contained resource (or `#` for the container).
    Contained(&'a str),
    /// `Patient?identifier=...`: a conditional reference, only valid inside a transaction.
    Conditional {
        resource_type: &'a str,
        query: &'a str,
    },
}

/// Why a reference string is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError(pub String);

/// Parses a reference string.
pub fn parse(reference: &str) -> Result<Reference<'_>, ReferenceError> {
    if reference.is_empty() {
        return Err(ReferenceError("the reference is empty".into()));
    }
    if reference.chars().any(char::is_whitespace) {
        return Err(ReferenceError(
            "a reference may not contain whitespace".into(),
        ));
    }
    if let Some(local) = reference.strip_prefix('#') {
        return Ok(Reference::Contained(local));
    }
    if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") {
        return Ok(Reference::Urn(reference));
    }
    if let Some((resource_type, query)) = reference.split_once('?') {
        if !is_resource_type(resource_type) {
            return Err(ReferenceError(format!(
                "'{resource_type}' is not a resource type"
            )));
        }
        return Ok(Reference::Conditional {
            resource_type,
            query,
        });
    }
    if reference.contains("://") {
        let (base, tail) = split_type_id_tail(reference);
        return Ok(match tail {
            Some((resource_type, id, _)) => Reference::Absolute {
                url: reference,
                base,
                resource_type: Some(resource_type),
                id: Some(id),
            },
            None => Reference::Absolute {
                url: reference,
                base: reference,
                resource_type: None,
                id: None,
            },
        });
    }
    let segments: Vec<&str> = reference.split('/').collect();
    match segments.as_slice() {
        [resource_type, id] => relative(resource_type, id, None),
        [resource_type, id, "_history", version] => relative(resource_type, id, Some(version)),
        _ => Err(ReferenceError(format!(
            "'{reference}' is not of the form Type/id, Type/id/_history/version, an absolute URL, a urn or #id"
        ))),
    }
}

fn relative<'a>(
    resource_type: &'a str,
    id: &'a str,
    version_id: Option<&'a str>,
) -> Result<Reference<'a>, ReferenceError> {
    if !is_resource_type(resource_type) {
        return Err(ReferenceError(format!(
            "'{resource_type}' is not a FHIR R4 resource type"
        )));
    }
    if !is_id(id) {
        return Err(ReferenceError(format!("'{id}' is not a valid resource id")));
    }
    if let Some(v) = version_id
        && !is_id(v)
    {
        return Err(ReferenceError(format!("'{v}' is not a valid version id")));
    }
    Ok(Reference::Relative {
        resource_type,
        id,
        version_id,
    })
}

/// The `Type/id(/_history/version)` tail of an absolute URL: (type, id, version).
type TypeIdTail<'a> = (&'a str, &'a str, Option<&'a str>);

/// Splits `http://x/fhir/Patient/1/_history/2` into (`http://x/fhir`, (Patient, 1, Some(2))).
fn split_type_id_tail(url: &str) -> (&str, Option<TypeIdTail<'_>>) {
    let segments: Vec<&str> = url.rsplitn(5, '/').collect();
    // rsplitn yields from the right: [last, second-last, ...].
    if segments.len() >= 5
        && segments[1] == "_history"
        && is_resource_type(segments[3])
        && is_id(segments[2])
    {
        let base_len = url.len() - segments[..4].iter().map(|s| s.len() + 1).sum::<usize>();
        return (
            &url[..base_len],
            Some((segments[3], segments[2], Some(segments[0]))),
        );
    }
    if segments.len() >= 3 && is_resource_type(segments[1]) && is_id(segments[0]) {
        let base_len = url.len() - segments[..2].iter().map(|s| s.len() + 1).sum::<usize>();
        return (&url[..base_len], Some((segments[1], segments[0], None)));
    }
    (url, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            parse("Patient/123").unwrap(),
            Reference::Relative {
                resource_type: "Patient",
                id: "123",
                version_id: None
            }
        );
        assert_eq!(
            parse("Patient/123/_history/2").unwrap(),
            Reference::Relative {
                resource_type: "Patient",
                id: "123",
                version_id: Some("2")
            }
        );
        assert_eq!(
            parse("http://example.org/fhir/Observation/a.b").unwrap(),
            Reference::Absolute {
                url: "http://example.org/fhir/Observation/a.b",
                base: "http://example.org/fhir",
                resource_type: Some("Observation"),
                id: Some("a.b")
            }
        );
        assert!(matches!(parse("urn:uuid:1234").unwrap(), Reference::Urn(_)));
        assert_eq!(parse("#p1").unwrap(), Reference::Contained("p1"));
        assert!(matches!(
            parse("Patient?identifier=x|1").unwrap(),
            Reference::Conditional { .. }
        ));
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "Patient",
            "Unicorn/1",
            "Patient/",
            "Patient/a_b",
            "Patient/1/2",
            "Pat ient/1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
