//! The edge's side of the identity feed: which of this node's Patients to announce to the hub's
//! master patient index, and the record the hub is sent for each.
//!
//! Owns reading the node's Patients in store order after a position (the store's own version
//! sequence is the feed's log, so the write path needs nothing extra and nothing committed is
//! missed: a record written while the hub is down is simply further along the log), and the pure
//! transform of a local Patient into the hub's copy: its demographics only, the local `id` and
//! `meta` replaced by `meta.source` and the source identifier
//! `https://concord.health/fhir/sid/source/{source_id}|{local id}` that the hub's record locator
//! and federated reads use to come back to this node. Does not send anything or keep the cursor:
//! the binary's announcer does both, and decides what an answer from the hub means.

use concord_fhir::{Error, RequestContext};
use serde_json::{Map, Value};

use crate::Hub;

/// The identifier system prefix of a record announced by an edge; the source id follows it.
pub const SOURCE_SYSTEM_PREFIX: &str = "https://concord.health/fhir/sid/source/";

/// The identifier system under which the edge `source_id` announces its local Patient ids.
pub fn source_system(source_id: &str) -> String {
    format!("{SOURCE_SYSTEM_PREFIX}{source_id}")
}

/// The Patient elements the hub is sent: what identifies a person and where they are cared for.
/// Everything else (narrative, extensions, photos, contained resources and `link`, whose targets
/// are this node's own records) stays at the edge, where federated reads fetch it.
const DEMOGRAPHICS: &[&str] = &[
    "identifier",
    "active",
    "name",
    "telecom",
    "gender",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
    "address",
    "maritalStatus",
    "multipleBirthBoolean",
    "multipleBirthInteger",
    "contact",
    "communication",
    "generalPractitioner",
    "managingOrganization",
];

/// One Patient change to announce.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    /// The store position of the version announced.
    pub seq: i64,
    /// The Patient's id at this node.
    pub local_id: String,
    /// The hub's copy ([`hub_patient`]); `None` when the Patient was deleted here.
    pub patient: Option<Value>,
}

/// A page of announcements.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Announcements {
    /// In store order.
    pub items: Vec<Announcement>,
    /// Where the next page starts once every item is acknowledged: past the last item, and past
    /// any records this page passed over (see [`Hub::announcements`]). Equal to `after_seq` when
    /// there was nothing new.
    pub next_after: i64,
}

impl Hub {
    /// The Patient changes after store position `after_seq`, at most `limit` store rows read: the
    /// current version of each Patient written or deleted since, in store order. A version that
    /// has since been superseded is not listed, because the version that superseded it comes
    /// later in the same order. `source_id` and `base_url` name this node in the hub's copies.
    ///
    /// A Patient that already carries a source identifier is a copy of another node's record
    /// (this node is itself a hub) and is passed over, so a node that announces to itself cannot
    /// feed its own copies back in a loop.
    pub fn announcements(
        &self,
        ctx: &RequestContext,
        source_id: &str,
        base_url: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Announcements, Error> {
        let versions = self.store.changes(ctx, "Patient", after_seq, limit)?;
        let mut page = Announcements {
            items: Vec::with_capacity(versions.len()),
            next_after: versions.last().map_or(after_seq, |v| v.seq),
        };
        for version in versions {
            let patient = match version.body.as_deref() {
                None => None,
                Some(text) => {
                    let local: Value = serde_json::from_str(text).map_err(|_| {
                        tracing::error!(request_id = %ctx.request_id, seq = version.seq, "a stored Patient is not JSON");
                        Error::internal()
                    })?;
                    if is_announced_copy(&local) {
                        continue;
                    }
                    Some(hub_patient(&local, source_id, &version.id, base_url))
                }
            };
            page.items.push(Announcement {
                seq: version.seq,
                local_id: version.id,
                patient,
            });
        }
        Ok(page)
    }
}

/// True when a Patient carries an identifier some edge announced it under.
fn is_announced_copy(patient: &Value) -> bool {
    patient["identifier"].as_array().is_some_and(|ids| {
        ids.iter().any(|id| {
            id["system"]
                .as_str()
                .is_some_and(|s| s.starts_with(SOURCE_SYSTEM_PREFIX))
        })
    })
}

/// The hub's copy of a local Patient: its demographics (see the module doc), `meta.source` set to
/// this node's FHIR base, and the source identifier added (replacing any other with that system).
/// References to this node's resources (the GP, the managing organisation, a contact's
/// organisation) are made absolute against `base_url` so they cannot be read as the hub's own;
/// one that cannot be (to a contained resource) keeps only its identifier and display.
pub fn hub_patient(patient: &Value, source_id: &str, local_id: &str, base_url: &str) -> Value {
    let base = base_url.trim_end_matches('/');
    let system = source_system(source_id);
    let mut out = Map::new();
    out.insert("resourceType".into(), "Patient".into());
    out.insert("meta".into(), serde_json::json!({ "source": base }));
    let mut identifiers: Vec<Value> = patient["identifier"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter(|id| id["system"].as_str() != Some(system.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    identifiers.push(serde_json::json!({ "system": system, "value": local_id }));
    for &element in DEMOGRAPHICS {
        if element == "identifier" {
            out.insert(
                "identifier".into(),
                Value::Array(std::mem::take(&mut identifiers)),
            );
            continue;
        }
        let Some(value) = patient.get(element) else {
            continue;
        };
        let value = match element {
            "generalPractitioner" => references(value, base),
            "managingOrganization" => reference(value, base),
            "contact" => contacts(value, base),
            _ => Some(value.clone()),
        };
        if let Some(value) = value {
            out.insert(element.into(), value);
        }
    }
    Value::Object(out)
}

fn references(list: &Value, base: &str) -> Option<Value> {
    let kept: Vec<Value> = list
        .as_array()?
        .iter()
        .filter_map(|r| reference(r, base))
        .collect();
    (!kept.is_empty()).then_some(Value::Array(kept))
}

fn contacts(list: &Value, base: &str) -> Option<Value> {
    let kept: Vec<Value> = list
        .as_array()?
        .iter()
        .filter_map(|contact| {
            let mut contact = contact.as_object()?.clone();
            if let Some(organization) = contact.remove("organization")
                && let Some(organization) = reference(&organization, base)
            {
                contact.insert("organization".into(), organization);
            }
            (!contact.is_empty()).then_some(Value::Object(contact))
        })
        .collect();
    (!kept.is_empty()).then_some(Value::Array(kept))
}

/// A Reference as the hub should hold it, or `None` when nothing meaningful is left.
fn reference(value: &Value, base: &str) -> Option<Value> {
    let mut map = value.as_object()?.clone();
    if let Some(Value::String(target)) = map.get("reference") {
        let absolute = target.starts_with("http://") || target.starts_with("https://");
        if absolute {
            // Already names its server.
        } else if is_relative_reference(target) {
            let target = format!("{base}/{target}");
            map.insert("reference".into(), Value::String(target));
        } else {
            // A contained resource ("#x") is not sent, and a `urn:` is only meaningful inside
            // the Bundle it came in.
            map.remove("reference");
        }
    }
    let meaningful = ["reference", "identifier", "display"]
        .iter()
        .any(|k| map.contains_key(*k));
    meaningful.then_some(Value::Object(map))
}

/// `Type/id` or `Type/id/_history/vid`.
fn is_relative_reference(target: &str) -> bool {
    let mut parts = target.split('/');
    let (Some(resource_type), Some(id)) = (parts.next(), parts.next()) else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    concord_fhir::resource::is_resource_type(resource_type)
        && !id.is_empty()
        && (rest.is_empty() || (rest.len() == 2 && rest[0] == "_history"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BASE: &str = "https://edge.example/fhir";

    fn check(local: &Value, expected: &Value) {
        let actual = hub_patient(local, "gp-a", "p1", BASE);
        assert_eq!(
            &actual, expected,
            "\nactual:   {actual}\nexpected: {expected}"
        );
        // The transform is stable: announcing the hub's copy again changes nothing.
        assert_eq!(hub_patient(&actual, "gp-a", "p1", BASE), actual);
    }

    #[test]
    fn keeps_demographics_and_adds_the_source_identifier() {
        check(
            &json!({
                "resourceType": "Patient",
                "id": "p1",
                "meta": {"versionId": "3", "lastUpdated": "2024-01-01T00:00:00Z",
                         "tag": [{"system": "https://concord.health/fhir/CodeSystem/data-quality", "code": "invalid-nhs-number"}]},
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Ann Smith</div>"},
                "contained": [{"resourceType": "Organization", "id": "o"}],
                "extension": [{"url": "https://example.org/ethnicity", "valueString": "x"}],
                "identifier": [
                    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
                    {"system": "https://concord.health/fhir/sid/source/gp-a", "value": "stale"},
                    {"system": "https://concord.health/fhir/sid/source/gp-b", "value": "other"}
                ],
                "active": true,
                "name": [{"family": "Smith", "given": ["Ann"]}],
                "telecom": [{"system": "phone", "value": "01632 960000"}],
                "gender": "female",
                "birthDate": "1970-01-01",
                "deceasedBoolean": false,
                "address": [{"postalCode": "LS1 1AA"}],
                "maritalStatus": {"text": "married"},
                "multipleBirthInteger": 2,
                "photo": [{"contentType": "image/png", "data": "AAAA"}],
                "contact": [{"name": {"family": "Smith"}, "organization": {"reference": "#o"}}],
                "communication": [{"language": {"text": "English"}}],
                "generalPractitioner": [
                    {"reference": "Practitioner/dr1", "display": "Dr One"},
                    {"reference": "#o"},
                    {"reference": "https://ods.example/Organization/A81001"}
                ],
                "managingOrganization": {"reference": "Organization/org1/_history/2"},
                "link": [{"other": {"reference": "Patient/p0"}, "type": "replaces"}]
            }),
            &json!({
                "resourceType": "Patient",
                "meta": {"source": BASE},
                "identifier": [
                    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
                    {"system": "https://concord.health/fhir/sid/source/gp-b", "value": "other"},
                    {"system": "https://concord.health/fhir/sid/source/gp-a", "value": "p1"}
                ],
                "active": true,
                "name": [{"family": "Smith", "given": ["Ann"]}],
                "telecom": [{"system": "phone", "value": "01632 960000"}],
                "gender": "female",
                "birthDate": "1970-01-01",
                "deceasedBoolean": false,
                "address": [{"postalCode": "LS1 1AA"}],
                "maritalStatus": {"text": "married"},
                "multipleBirthInteger": 2,
                "contact": [{"name": {"family": "Smith"}}],
                "communication": [{"language": {"text": "English"}}],
                "generalPractitioner": [
                    {"reference": "https://edge.example/fhir/Practitioner/dr1", "display": "Dr One"},
                    {"reference": "https://ods.example/Organization/A81001"}
                ],
                "managingOrganization": {"reference": "https://edge.example/fhir/Organization/org1/_history/2"}
            }),
        );
    }

    #[test]
    fn a_bare_patient_gets_only_the_source_identifier() {
        check(
            &json!({"resourceType": "Patient", "id": "p1"}),
            &json!({
                "resourceType": "Patient",
                "meta": {"source": BASE},
                "identifier": [{"system": "https://concord.health/fhir/sid/source/gp-a", "value": "p1"}]
            }),
        );
    }

    #[test]
    fn references_that_cannot_travel_keep_what_identifies_them() {
        check(
            &json!({
                "resourceType": "Patient",
                "generalPractitioner": [{"reference": "urn:uuid:5b1c", "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}}],
                "managingOrganization": {"reference": "#org"},
                "contact": [{"organization": {"reference": "Organization/x", "display": "Care Home"}}, {"organization": {"reference": "#o"}}]
            }),
            &json!({
                "resourceType": "Patient",
                "meta": {"source": BASE},
                "identifier": [{"system": "https://concord.health/fhir/sid/source/gp-a", "value": "p1"}],
                "contact": [{"organization": {"reference": "https://edge.example/fhir/Organization/x", "display": "Care Home"}}],
                "generalPractitioner": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}}]
            }),
        );
    }

    #[test]
    fn relative_references_are_recognised() {
        assert!(is_relative_reference("Organization/a"));
        assert!(is_relative_reference("Organization/a/_history/2"));
        assert!(!is_relative_reference("Organization"));
        assert!(!is_relative_reference("Nonsense/a"));
        assert!(!is_relative_reference("Organization/a/b"));
        assert!(!is_relative_reference("#a"));
    }

    #[test]
    fn copies_announced_by_an_edge_are_recognised() {
        assert!(is_announced_copy(&json!({"identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
            {"system": "https://concord.health/fhir/sid/source/gp-a", "value": "p1"}
        ]})));
        assert!(!is_announced_copy(&json!({"identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}
        ]})));
        assert!(!is_announced_copy(&json!({"resourceType": "Patient"})));
    }
}
