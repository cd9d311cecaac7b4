//! The record locator: for a golden person, which source organisation holds a record under which
//! local id. Federation asks it where to send a query.
//!
//! Owns reading the locations off the linked Patient records: the organisation from
//! `Patient.managingOrganization` (a reference or an ODS identifier), the source system from
//! `meta.source`, and the record's identifiers. Identity feeds keep the Patients, and so the
//! locator, current. Also `GET [base]/Person/[id]/$locate`, the same as Parameters.

use concord_fhir::{Error, RequestContext};
use serde_json::{Value, json};

use crate::Hub;

/// Where one of a person's records lives.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordLocation {
    /// The Patient id at the hub.
    pub patient: String,
    /// The holding organisation: an ODS code, or a reference when no code is given.
    pub organization: Option<String>,
    /// `meta.source` of the record: the source system (and usually its local id).
    pub source: Option<String>,
    /// The record's identifiers as (system, value).
    pub identifiers: Vec<(String, String)>,
}

impl Hub {
    /// The golden person a source record is linked to.
    pub fn person_of(&self, patient: &str) -> Option<String> {
        self.identity.person_of(patient)
    }

    /// Every record of a golden person and where it lives, in record id order.
    pub fn locate(&self, ctx: &RequestContext, person: &str) -> Result<Vec<RecordLocation>, Error> {
        let version = self.read(ctx, "Person", person)?;
        let golden = version
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
            .and_then(|p| concord_mpi::GoldenPerson::from_fhir(&p))
            .ok_or_else(|| {
                Error::not_found(format!(
                    "Person/{person} is not a golden person of the index"
                ))
            })?;
        let records: Vec<String> = golden.records().map(str::to_string).collect();
        let mut out = Vec::new();
        for id in records {
            let Ok(version) = self.read(ctx, "Patient", &id) else {
                continue;
            };
            let body: Value = serde_json::from_str(version.body.as_deref().unwrap_or("{}"))
                .map_err(|_| Error::internal())?;
            out.push(location(&id, &body));
        }
        Ok(out)
    }

    /// `GET [base]/Person/[id]/$locate`: the locations as a Parameters resource.
    pub fn locate_parameters(&self, ctx: &RequestContext, person: &str) -> Result<Value, Error> {
        self.authorize_identity(ctx, false)?;
        let parameter: Vec<Value> = self
            .locate(ctx, person)?
            .into_iter()
            .map(|l| {
                let mut part = vec![json!({"name": "patient", "valueReference": {"reference": format!("Patient/{}", l.patient)}})];
                if let Some(org) = l.organization {
                    part.push(json!({"name": "organization", "valueString": org}));
                }
                if let Some(source) = l.source {
                    part.push(json!({"name": "source", "valueUri": source}));
                }
                for (system, value) in l.identifiers {
                    part.push(json!({"name": "identifier", "valueIdentifier": {"system": system, "value": value}}));
                }
                json!({"name": "location", "part": part})
            })
            .collect();
        Ok(json!({"resourceType": "Parameters", "parameter": parameter}))
    }
}

pub(crate) fn location(id: &str, patient: &Value) -> RecordLocation {
    let org = patient.get("managingOrganization");
    RecordLocation {
        patient: id.to_string(),
        organization: org
            .and_then(|o| o.pointer("/identifier/value"))
            .or_else(|| org.and_then(|o| o.get("reference")))
            .and_then(Value::as_str)
            .map(str::to_string),
        source: patient
            .pointer("/meta/source")
            .and_then(Value::as_str)
            .map(str::to_string),
        identifiers: identifiers(patient),
    }
}

pub(crate) fn identifiers(patient: &Value) -> Vec<(String, String)> {
    patient
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some((
                i.get("system")?.as_str()?.to_string(),
                i.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect()
}
