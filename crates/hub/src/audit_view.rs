//! Reading the audit trail (issue 6 item 5): privacy officers search it as FHIR AuditEvents
//! (`GET [base]/AuditEvent?...`), and a person sees who looked at their record
//! (`GET [base]/Patient/[id]/$access-log`: organisation, role, when, why; not the individual).
//!
//! Owns: the search parameters the trail answers, and the access decision for each view (only
//! privacy officers search the trail; the person, their proxy and privacy officers see a
//! person's access log). Does not: store or chain anything (`audit::AuditTrail` does).

use concord_access::Interaction;
use concord_fhir::primitive::{format_instant, search_date_range};
use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_store::AuditQuery;
use serde_json::{Value, json};

use crate::Hub;
use crate::bundle::{Bundle, Entry, EntrySearch, raw};

/// Most entries one page of an audit search returns.
const MAX_PAGE: usize = 500;

impl Hub {
    fn trail(&self) -> Result<&crate::audit::AuditTrail, Error> {
        self.audit
            .as_ref()
            .ok_or_else(|| Error::not_supported("this node keeps no audit trail"))
    }

    /// `GET [base]/AuditEvent?patient=&agent=&date=&outcome=&subtype=&_count=`, newest first.
    pub fn audit_search(
        &self,
        ctx: &RequestContext,
        params: &[(String, String)],
        base: &str,
    ) -> Result<Bundle, Error> {
        let trail = self.trail()?;
        self.authorize(ctx, "AuditEvent", Interaction::Search, None)?;
        let mut query = AuditQuery {
            limit: 50,
            ..AuditQuery::default()
        };
        for (name, value) in params {
            match name.as_str() {
                "patient" => {
                    query.patient = Some(value.strip_prefix("Patient/").unwrap_or(value).into());
                }
                "agent" | "who" => query.agent = Some(value.clone()),
                "organization" => query.organization = Some(value.clone()),
                "outcome" => {
                    query.outcome = Some(
                        match value.as_str() {
                            "0" | "success" => "success",
                            "4" | "denied" => "denied",
                            "8" | "12" | "failed" => "failed",
                            _ => {
                                return Err(Error::invalid(format!(
                                    "outcome: '{value}' is not one of 0, 4, 8, success, denied, failed"
                                ))
                                .at("outcome"));
                            }
                        }
                        .into(),
                    );
                }
                "subtype" => query.interaction = Some(value.clone()),
                "action" => query.action = Some(value.clone()),
                "date" => {
                    let (prefix, date) = split_prefix(value);
                    let range = search_date_range(date).ok_or_else(|| {
                        Error::invalid(format!("date: '{value}' is not a date")).at("date")
                    })?;
                    match prefix {
                        "ge" | "gt" => query.since_ms = Some(range.low),
                        "le" | "lt" => query.until_ms = Some(range.high.saturating_add(1)),
                        "eq" => {
                            query.since_ms = Some(range.low);
                            query.until_ms = Some(range.high.saturating_add(1));
                        }
                        other => {
                            return Err(Error::invalid(format!(
                                "date: the prefix '{other}' is not supported here; use ge, gt, le, lt or eq"
                            ))
                            .at("date"));
                        }
                    }
                }
                "_count" => {
                    query.limit = value
                        .parse::<usize>()
                        .map_err(|_| Error::invalid("_count must be a whole number").at("_count"))?
                        .clamp(1, MAX_PAGE);
                }
                "_before" => {
                    query.before_seq = Some(value.parse().map_err(|_| {
                        Error::invalid("_before must be a sequence number this server issued")
                    })?);
                }
                "_format" | "_pretty" => {}
                other => {
                    return Err(Error::invalid(format!(
                        "'{other}' is not a search parameter of the audit trail; use patient, agent, organization, outcome, subtype, action, date, _count"
                    ))
                    .at(other.to_string()));
                }
            }
        }
        let events = trail.search(ctx, &query)?;
        let mut bundle = Bundle::new("searchset", self.clock.now_ms());
        for event in &events {
            let id = event.get("id").and_then(Value::as_str).unwrap_or_default();
            bundle.entry.push(Entry {
                full_url: Some(format!("{base}/AuditEvent/{id}")),
                resource: Some(raw(event.to_string())?),
                search: Some(EntrySearch::mode("match")),
                ..Entry::default()
            });
        }
        Ok(bundle)
    }

    /// `GET [base]/Patient/[id]/$access-log`: who looked at this person's record (every hub
    /// record of the person), newest first, as a Parameters resource with one `access` each.
    pub fn access_log(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        limit: usize,
    ) -> Result<Value, Error> {
        let trail = self.trail()?;
        self.read(&ctx.internal(), "Patient", patient_id)?;
        self.authorize(ctx, "AuditEvent", Interaction::Read, Some(patient_id))?;
        let mut ids = vec![patient_id.to_string()];
        if let Some(person) = self.person_of(patient_id)
            && let Ok(locations) = self.locate(&ctx.internal(), &person)
        {
            ids.extend(locations.into_iter().map(|l| l.patient));
        }
        ids.sort();
        ids.dedup();
        let entries = trail.access_log(ctx, &ids, limit.clamp(1, MAX_PAGE))?;
        let parameter: Vec<Value> = entries
            .into_iter()
            .map(|e| {
                let mut part = vec![
                    json!({"name": "when", "valueInstant": format_instant(e.recorded_ms)}),
                    json!({"name": "purpose", "valueCode": e.purpose}),
                    json!({"name": "what", "valueCode": e.operation.unwrap_or(e.interaction)}),
                    json!({"name": "outcome", "valueCode": e.outcome.as_str()}),
                    json!({"name": "emergency", "valueBoolean": e.break_glass}),
                ];
                if let Some(org) = e.organization {
                    part.push(json!({"name": "organization", "valueString": org}));
                }
                if let Some(role) = e.role {
                    part.push(json!({"name": "role", "valueCode": role}));
                }
                if let Some(t) = e.resource_type {
                    part.push(json!({"name": "resourceType", "valueCode": t}));
                }
                json!({"name": "access", "part": part})
            })
            .collect();
        Ok(json!({"resourceType": "Parameters", "parameter": parameter}))
    }
}

fn split_prefix(value: &str) -> (&str, &str) {
    match value.get(..2) {
        Some(p @ ("ge" | "gt" | "le" | "lt" | "eq" | "ne" | "sa" | "eb" | "ap"))
            if value.len() > 2 && value.as_bytes()[2].is_ascii_digit() =>
        {
            (p, &value[2..])
        }
        _ => ("eq", value),
    }
}

/// The error a write to the trail gets: it is append-only, written only by the server.
pub(crate) fn read_only() -> Error {
    Error::new(
        ErrorKind::MethodNotAllowed,
        "the audit trail is written by the server only; AuditEvents cannot be created, changed or deleted",
    )
}
