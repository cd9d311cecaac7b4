//! `POST [base]/Patient/$match` (<https://hl7.org/fhir/R4/patient-operation-match.html>):
//! the master patient index scores a Patient against the records it holds.
//!
//! Owns reading the operation's Parameters (`resource`, `onlyCertainMatches`, `count`), and the
//! searchset answer: each matching record with `search.score` from 0 to 1 and the `match-grade`
//! extension. Does not link anything: `$match` is a query.

use concord_fhir::{Error, RequestContext};
use concord_mpi::{Demographics, MatchGrade};
use serde_json::{Value, json};

use super::round4;
use crate::Hub;
use crate::bundle::{Bundle, Entry, EntrySearch, full_url, raw};

/// <http://hl7.org/fhir/StructureDefinition/match-grade>.
pub const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

/// The operation's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRequest {
    pub patient: Value,
    pub only_certain: bool,
    pub count: usize,
}

impl MatchRequest {
    /// Reads the Parameters body, naming the parameter at fault.
    pub fn from_parameters(body: &Value) -> Result<Self, Error> {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(Error::invalid("$match takes a Parameters resource").at("resourceType"));
        }
        let mut request = MatchRequest {
            patient: Value::Null,
            only_certain: false,
            count: 10,
        };
        for (i, p) in body
            .get("parameter")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("Parameters.parameter[{i}]");
            match p.get("name").and_then(Value::as_str) {
                Some("resource") => {
                    let Some(patient) = p.get("resource").filter(|r| {
                        r.get("resourceType").and_then(Value::as_str) == Some("Patient")
                    }) else {
                        return Err(Error::invalid("the resource parameter must hold a Patient")
                            .at(format!("{at}.resource")));
                    };
                    request.patient = patient.clone();
                }
                Some("onlyCertainMatches") => {
                    request.only_certain = p
                        .get("valueBoolean")
                        .and_then(Value::as_bool)
                        .ok_or_else(|| {
                            Error::invalid("onlyCertainMatches must be a valueBoolean")
                                .at(format!("{at}.valueBoolean"))
                        })?;
                }
                Some("count") => {
                    let count = p
                        .get("valueInteger")
                        .and_then(Value::as_u64)
                        .filter(|c| (1..=100).contains(c));
                    request.count = count.ok_or_else(|| {
                        Error::invalid("count must be a valueInteger from 1 to 100")
                            .at(format!("{at}.valueInteger"))
                    })? as usize;
                }
                Some(other) => {
                    return Err(Error::invalid(format!("$match has no parameter '{other}'"))
                        .at(format!("{at}.name")));
                }
                None => {
                    return Err(Error::invalid("a parameter has no name").at(format!("{at}.name")));
                }
            }
        }
        if request.patient.is_null() {
            return Err(
                Error::invalid("$match needs a Patient in the resource parameter")
                    .at("Parameters.parameter"),
            );
        }
        Ok(request)
    }
}

impl Hub {
    /// Scores the Patient against the index and returns the matching records, best first.
    pub fn match_patient(
        &self,
        ctx: &RequestContext,
        request: &MatchRequest,
        base: &str,
    ) -> Result<Bundle, Error> {
        self.authorize_identity(ctx, false)?;
        let probe = Demographics::from_patient(&request.patient);
        let mut found = {
            let state = self.identity.lock();
            state
                .index
                .find(&probe, request.count, false)
                .into_iter()
                .map(|c| {
                    let person = state.person_of.get(&c.key).cloned();
                    (c, person)
                })
                .collect::<Vec<_>>()
        };
        if request.only_certain {
            found.retain(|(c, _)| c.comparison.grade == MatchGrade::Certain);
            // Certain matches to two different people are not certain at all.
            let first = found.first().map(|(_, p)| p.clone());
            if found.iter().any(|(_, p)| Some(p.clone()) != first) {
                found.clear();
            }
        }
        let mut bundle = Bundle::new("searchset", self.clock.now_ms());
        for (candidate, _) in found {
            let Ok(version) = self.read(ctx, "Patient", &candidate.key) else {
                continue;
            };
            let Some(body) = version.body.clone() else {
                continue;
            };
            bundle.entry.push(Entry {
                full_url: Some(full_url(base, &version)),
                resource: Some(raw(body)?),
                search: Some(EntrySearch {
                    extension: vec![
                        json!({"url": MATCH_GRADE, "valueCode": candidate.comparison.grade.code()}),
                    ],
                    mode: "match",
                    score: Some(round4(candidate.comparison.probability)),
                }),
                ..Entry::default()
            });
        }
        bundle.total = Some(bundle.entry.len() as u64);
        Ok(bundle)
    }
}
