//! The oversight pages: the privacy officer's break-glass review and audit search, and the data
//! steward's matching worklist (`admin::matching`).
//!
//! Owns: `GET /portal/admin/break-glass` (every emergency access, from
//! `GET [base]/AuditEvent?subtype=break-glass`), `GET /portal/admin/audit` (a search form over
//! the audit trail's FHIR search parameters `patient`, `agent`, `organization`, `outcome` and
//! `date`, see docs/access.md) and reading the trail's AuditEvents (the IHE Basic Audit Log
//! Patterns shape, <https://hl7.org/fhir/R4/auditevent.html>) as table rows.
//!
//! Does not: decide who may see the trail or the worklist. The pages ask the FHIR API with the
//! signed-in person's token; only a privacy officer's token may search AuditEvent and only a data
//! steward's may resolve a match, so anyone else gets the API's refusal as a 403 page. Does not
//! name anybody's patient data: an audit row shows the hub Patient id only.

pub mod matching;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use concord_access::BreakGlassReason;
use maud::{Markup, html};
use serde_json::Value;

use crate::error::PortalError;
use crate::signin::SignedIn;
use crate::{PortalState, layout, text};

/// The extension the audit trail puts the break-glass reason and text in.
const BREAK_GLASS_EXTENSION: &str = "https://concord.health/fhir/StructureDefinition/break-glass";
/// Most rows a page of the break-glass review or an audit search shows.
const PAGE_SIZE: usize = 100;

pub fn routes() -> Router<PortalState> {
    Router::new()
        .route("/portal/admin/break-glass", get(break_glass))
        .route("/portal/admin/audit", get(audit))
        .merge(matching::routes())
}

/// One AuditEvent read for a table row. Every field is text straight from the event (ids, codes
/// and the user's own break-glass words), never a person's demographics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRow {
    pub id: String,
    /// `recorded`, as written (an instant).
    pub recorded: String,
    /// The requesting user (or system) id.
    pub user: String,
    pub role: String,
    pub organization: String,
    /// The interaction and operation (`operation $everything`, `read`, `break-glass`, ...).
    pub action: String,
    /// The resource the request was about (`Patient/1`), when it named one.
    pub resource: String,
    /// The hub Patient ids the request touched.
    pub patients: Vec<String>,
    /// `Success`, `Refused` or `Failed`, with the HTTP status when the trail gives it.
    pub outcome: String,
    /// Whether the request was made under break-glass (purpose of use `BTG`).
    pub emergency: bool,
    /// The break-glass reason, in words, and the user's own text.
    pub reason: Option<String>,
    pub reason_text: Option<String>,
}

impl AuditRow {
    /// Reads an AuditEvent resource. Missing parts become empty text.
    pub fn from_event(event: &Value) -> AuditRow {
        let agents = event["agent"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let requestor = agents
            .iter()
            .find(|a| a["requestor"] == true)
            .or_else(|| agents.first())
            .unwrap_or(&Value::Null);
        let who = &requestor["who"]["identifier"];
        let role = requestor["role"]
            .as_array()
            .and_then(|r| r.first())
            .map(text::concept)
            .unwrap_or_default();
        let emergency = requestor["purposeOfUse"].as_array().is_some_and(|p| {
            p.iter().any(|c| {
                c["coding"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["code"] == "BTG"))
            })
        });
        let subtypes: Vec<&str> = event["subtype"]
            .as_array()
            .map(|s| s.iter().filter_map(|c| c["code"].as_str()).collect())
            .unwrap_or_default();
        let entities = event["entity"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut patients: Vec<String> = entities
            .iter()
            .filter(|e| e["role"]["code"] == "1")
            .filter_map(|e| e["what"]["reference"].as_str())
            .map(|r| r.strip_prefix("Patient/").unwrap_or(r).to_string())
            .collect();
        patients.dedup();
        let resource = entities
            .iter()
            .find(|e| e["role"]["code"] == "4")
            .and_then(|e| e["what"]["reference"].as_str())
            .unwrap_or_default()
            .to_string();
        let outcome = match event["outcome"].as_str() {
            Some("0") => "Success",
            Some("4") => "Refused",
            Some(_) => "Failed",
            None => "",
        };
        let outcome = match event["outcomeDesc"].as_str() {
            Some(desc) if !outcome.is_empty() => format!("{outcome} ({desc})"),
            _ => outcome.to_string(),
        };
        let glass = text::extension(event, BREAK_GLASS_EXTENSION);
        let part = |name: &str| {
            glass
                .and_then(|g| g["extension"].as_array())
                .and_then(|parts| parts.iter().find(|p| p["url"] == name))
        };
        let reason = part("reason")
            .and_then(|r| r["valueCoding"]["code"].as_str())
            .map(|code| {
                BreakGlassReason::parse(code)
                    .map_or_else(|| code.to_string(), |r| r.display().to_string())
            });
        let reason_text = part("text")
            .and_then(|t| t["valueString"].as_str())
            .map(str::to_string);
        AuditRow {
            id: event["id"].as_str().unwrap_or_default().to_string(),
            recorded: event["recorded"].as_str().unwrap_or_default().to_string(),
            user: who["value"].as_str().unwrap_or_default().to_string(),
            role,
            organization: who["assigner"]["identifier"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            action: subtypes.join(" "),
            resource,
            patients,
            outcome,
            emergency: emergency || glass.is_some(),
            reason,
            reason_text,
        }
    }
}

/// The AuditEvents of a searchset Bundle, as rows.
pub fn rows(bundle: &Value) -> Vec<AuditRow> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| &e["resource"])
                .filter(|r| r["resourceType"] == "AuditEvent")
                .map(AuditRow::from_event)
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /portal/admin/break-glass`: every break-glass request, newest first.
async fn break_glass(
    State(state): State<PortalState>,
    signed_in: SignedIn,
) -> Result<Markup, PortalError> {
    let path = format!("/fhir/AuditEvent?subtype=break-glass&_count={PAGE_SIZE}");
    let answer = state
        .fhir
        .get(&signed_in.caller(), &path)
        .await?
        .success()?;
    let events = rows(&answer.body);
    let body = html! {
        h1 { "Break-glass review" }
        p class="lead" {
            "Each time someone opened a record with no recorded care relationship, by breaking glass, with the reason they gave. Check each one was justified."
        }
        @if events.is_empty() {
            p id="no-break-glass" { "Nobody has broken glass." }
        } @else {
            div class="table-scroll" {
                table class="data-table" id="break-glass-events" {
                    caption class="visually-hidden" { "Break-glass requests, newest first" }
                    thead {
                        tr {
                            th scope="col" { "When" }
                            th scope="col" { "User" }
                            th scope="col" { "Organisation" }
                            th scope="col" { "Reason" }
                            th scope="col" { "What they wrote" }
                            th scope="col" { "Person (record id)" }
                            th scope="col" { "Outcome" }
                        }
                    }
                    tbody {
                        @for event in &events {
                            tr {
                                td { (text::date_time(&event.recorded)) }
                                td { (event.user) @if !event.role.is_empty() { span class="source" { (event.role) } } }
                                td { (event.organization) }
                                td { (event.reason.as_deref().unwrap_or("Not given")) }
                                td { (event.reason_text.as_deref().unwrap_or("")) }
                                td { (event.patients.join(", ")) }
                                td { (event.outcome) }
                            }
                        }
                    }
                }
            }
            @if events.len() >= PAGE_SIZE {
                p { "The newest " (PAGE_SIZE) " are shown. Use the " a href="/portal/admin/audit?action=break-glass" { "audit search" } " to look further back by date." }
            }
        }
    };
    Ok(layout::page(
        "Break-glass review",
        Some(&signed_in.session),
        body,
    ))
}

/// The audit search form as filled in.
#[derive(Debug, Clone, Default)]
struct AuditForm {
    patient: String,
    agent: String,
    organization: String,
    outcome: String,
    from: String,
    to: String,
    /// `break-glass` to see only break-glass requests.
    action: String,
}

impl AuditForm {
    fn read(query: &HashMap<String, String>) -> AuditForm {
        let field = |name: &str| {
            query
                .get(name)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        AuditForm {
            patient: field("patient"),
            agent: field("agent"),
            organization: field("organization"),
            outcome: field("outcome"),
            from: field("from"),
            to: field("to"),
            action: field("action"),
        }
    }

    /// Each wrong field with the sentence that says how to put it right.
    fn errors(&self) -> Vec<(&'static str, String)> {
        let mut errors = Vec::new();
        let id_like = |v: &str| {
            v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._@".contains(c))
        };
        if !id_like(&self.patient) {
            errors.push((
                "patient",
                "Enter the person's record id using only letters, digits, dots and dashes".into(),
            ));
        }
        if !id_like(&self.agent) {
            errors.push((
                "agent",
                "Enter the user id using only letters, digits, dots, dashes and @".into(),
            ));
        }
        if !id_like(&self.organization) {
            errors.push((
                "organization",
                "Enter the organisation's ODS code using only letters and digits".into(),
            ));
        }
        if !["", "success", "denied", "failed"].contains(&self.outcome.as_str()) {
            errors.push(("outcome", "Choose an outcome from the list".into()));
        }
        if !["", "break-glass"].contains(&self.action.as_str()) {
            errors.push((
                "action",
                "Choose which requests to show from the list".into(),
            ));
        }
        if !self.from.is_empty() && !is_date(&self.from) {
            errors.push((
                "from",
                "Enter the 'from' date as year-month-day, for example 2026-03-07".into(),
            ));
        }
        if !self.to.is_empty() && !is_date(&self.to) {
            errors.push((
                "to",
                "Enter the 'to' date as year-month-day, for example 2026-03-07".into(),
            ));
        }
        if is_date(&self.from) && is_date(&self.to) && self.from > self.to {
            errors.push(("to", "Enter a 'to' date on or after the 'from' date".into()));
        }
        errors
    }

    /// The FHIR search for this form.
    fn fhir_path(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("patient", &self.patient),
            ("agent", &self.agent),
            ("organization", &self.organization),
            ("outcome", &self.outcome),
            ("subtype", &self.action),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if !self.from.is_empty() {
            query.append_pair("date", &format!("ge{}", self.from));
        }
        if !self.to.is_empty() {
            query.append_pair("date", &format!("le{}", self.to));
        }
        query.append_pair("_count", &PAGE_SIZE.to_string());
        format!("/fhir/AuditEvent?{}", query.finish())
    }
}

/// `YYYY-MM-DD` with a real month and day number.
fn is_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| {
        value
            .get(range)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u32>().ok())
    };
    matches!(
        (digits(0..4), digits(5..7), digits(8..10)),
        (Some(_), Some(1..=12), Some(1..=31))
    )
}

/// `GET /portal/admin/audit?patient=&agent=&organization=&outcome=&from=&to=&action=`: the
/// search form, and the newest matching entries of the audit trail.
async fn audit(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::response::Response, PortalError> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    let form = AuditForm::read(&query);
    let errors = form.errors();
    if !errors.is_empty() {
        let page = audit_page(&signed_in, &form, &errors, None);
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let answer = state
        .fhir
        .get(&signed_in.caller(), &form.fhir_path())
        .await?
        .success()?;
    let found = rows(&answer.body);
    Ok(audit_page(&signed_in, &form, &errors, Some(&found)).into_response())
}

fn audit_page(
    signed_in: &SignedIn,
    form: &AuditForm,
    errors: &[(&'static str, String)],
    found: Option<&[AuditRow]>,
) -> Markup {
    let error_of = |field: &str| {
        errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    };
    let text_field = |id: &'static str, label: &str, hint: &str, value: &str| {
        let error = error_of(id);
        let described = match error {
            Some(_) => format!("{id}-hint {id}-error"),
            None => format!("{id}-hint"),
        };
        html! {
            div.field.field-error[error.is_some()] {
                label for=(id) { (label) span class="hint" id={ (id) "-hint" } { (hint) } }
                @if let Some(message) = error {
                    span class="error-message" id={ (id) "-error" } { (message) }
                }
                input type="text" id=(id) name=(id) value=(value) aria-describedby=(described)
                    aria-invalid=[error.map(|_| "true")];
            }
        }
    };
    let date_field = |id: &'static str, label: &str, value: &str| {
        let error = error_of(id);
        html! {
            div.field.field-error[error.is_some()] {
                label for=(id) { (label) }
                @if let Some(message) = error {
                    span class="error-message" id={ (id) "-error" } { (message) }
                }
                input type="date" id=(id) name=(id) value=(value)
                    aria-describedby=[error.map(|_| format!("{id}-error"))]
                    aria-invalid=[error.map(|_| "true")];
            }
        }
    };
    let select_field = |id: &'static str, label: &str, options: &[(&str, &str)], value: &str| {
        let error = error_of(id);
        html! {
            div.field.field-error[error.is_some()] {
                label for=(id) { (label) }
                @if let Some(message) = error {
                    span class="error-message" id={ (id) "-error" } { (message) }
                }
                select id=(id) name=(id)
                    aria-describedby=[error.map(|_| format!("{id}-error"))]
                    aria-invalid=[error.map(|_| "true")] {
                    @for (code, words) in options {
                        option value=(code) selected[*code == value] { (words) }
                    }
                }
            }
        }
    };
    let body = html! {
        h1 { "Audit search" }
        p class="lead" { "Search the record of every request made to this care record: who, when, about whom, and whether it was allowed." }
        @if !errors.is_empty() {
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" {
                h2 id="error-summary-title" { "There is a problem" }
                ul {
                    @for (field, message) in errors {
                        li { a href={ "#" (field) } { (message) } }
                    }
                }
            }
        }
        form method="get" action="/portal/admin/audit" id="audit-search" class="card" {
            div class="fields-row" {
                (text_field("patient", "Person", "Their record id at this hub", &form.patient))
                (text_field("agent", "User", "The user id, for example gp.clinician", &form.agent))
                (text_field("organization", "Organisation", "ODS code, for example R9A", &form.organization))
            }
            div class="fields-row" {
                (select_field("outcome", "Outcome", &[("", "Any"), ("success", "Allowed"), ("denied", "Refused"), ("failed", "Failed")], &form.outcome))
                (select_field("action", "Requests", &[("", "All requests"), ("break-glass", "Break-glass only")], &form.action))
                (date_field("from", "From date", &form.from))
                (date_field("to", "To date", &form.to))
            }
            button type="submit" class="button" { "Search the audit trail" }
        }
        @if let Some(found) = found {
            h2 id="audit-results-heading" { "Results" }
            @if found.is_empty() {
                p id="no-audit-results" { "No entries match this search." }
            } @else {
                p { "The newest " (found.len()) " matching entries, newest first." }
                div class="table-scroll" {
                    table class="data-table" id="audit-results" aria-labelledby="audit-results-heading" {
                        thead {
                            tr {
                                th scope="col" { "When" }
                                th scope="col" { "User" }
                                th scope="col" { "Organisation" }
                                th scope="col" { "What" }
                                th scope="col" { "Person (record id)" }
                                th scope="col" { "Outcome" }
                                th scope="col" { "Emergency" }
                            }
                        }
                        tbody {
                            @for row in found {
                                tr {
                                    td { (text::date_time(&row.recorded)) }
                                    td { (row.user) @if !row.role.is_empty() { span class="source" { (row.role) } } }
                                    td { (row.organization) }
                                    td { (row.action) @if !row.resource.is_empty() { span class="source" { (row.resource) } } }
                                    td { (row.patients.join(", ")) }
                                    td { (row.outcome) }
                                    td {
                                        @if row.emergency {
                                            span class="tag tag-urgent" { "Break-glass" }
                                            @if let Some(reason) = &row.reason { span class="source" { (reason) } }
                                        } @else { "No" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Audit search", Some(&signed_in.session), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_break_glass_event_reads_as_a_row() {
        let event = json!({
            "resourceType": "AuditEvent", "id": "7",
            "extension": [{"url": BREAK_GLASS_EXTENSION, "extension": [
                {"url": "reason", "valueCoding": {"code": "emergency-care"}},
                {"url": "text", "valueString": "Unconscious in A&E"}]}],
            "subtype": [{"code": "operation"}, {"code": "$break-glass"}],
            "recorded": "2026-03-07T10:00:00.000Z", "outcome": "0", "outcomeDesc": "HTTP 200",
            "agent": [{"requestor": true, "role": [{"coding": [{"code": "clinician"}]}],
                "who": {"identifier": {"value": "dr-who", "assigner": {"identifier": {"value": "R9A"}}}}}],
            "entity": [{"role": {"code": "1"}, "what": {"reference": "Patient/p1"}},
                {"role": {"code": "4"}, "what": {"reference": "Patient/p1"}}]
        });
        let row = AuditRow::from_event(&event);
        assert_eq!(row.user, "dr-who");
        assert_eq!(row.organization, "R9A");
        assert_eq!(row.role, "clinician");
        assert_eq!(row.patients, ["p1"]);
        assert_eq!(row.reason.as_deref(), Some("Emergency care"));
        assert_eq!(row.reason_text.as_deref(), Some("Unconscious in A&E"));
        assert_eq!(row.outcome, "Success (HTTP 200)");
        assert!(row.emergency);
        assert_eq!(AuditRow::from_event(&json!(null)), AuditRow::default());
    }

    #[test]
    fn the_search_form_checks_each_field_and_builds_the_fhir_search() {
        let form = AuditForm {
            patient: "p1".into(),
            outcome: "denied".into(),
            from: "2026-03-01".into(),
            to: "2026-03-07".into(),
            ..AuditForm::default()
        };
        assert!(form.errors().is_empty());
        assert_eq!(
            form.fhir_path(),
            "/fhir/AuditEvent?patient=p1&outcome=denied&date=ge2026-03-01&date=le2026-03-07&_count=100"
        );
        let wrong = AuditForm {
            patient: "p1&x=1".into(),
            from: "07/03/2026".into(),
            outcome: "maybe".into(),
            ..AuditForm::default()
        };
        let fields: Vec<&str> = wrong.errors().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["patient", "outcome", "from"]);
        let backwards = AuditForm {
            from: "2026-03-07".into(),
            to: "2026-03-01".into(),
            ..AuditForm::default()
        };
        assert_eq!(backwards.errors()[0].0, "to");
        assert!(is_date("2026-02-28") && !is_date("2026-13-01") && !is_date("2026-1-01"));
    }
}
