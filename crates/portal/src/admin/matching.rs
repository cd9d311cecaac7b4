//! The data steward's matching worklist: the possible duplicates the master patient index could
//! not decide, each shown as the new record beside the candidate person's records, with the
//! match score and evidence, and a decision to link them or keep them apart.
//!
//! Owns: `GET /portal/admin/matching` (the worklist, from
//! `GET [base]/Task?code=https://concord.health/fhir/CodeSystem/mpi|possible-match&status=requested`),
//! `GET /portal/admin/matching/{task}` (the comparison, reading the Task, the focus Patient and
//! the candidate Person's linked Patients) and `POST /portal/admin/matching/{task}` (the decision,
//! sent as `POST [base]/Task/{task}/$resolve-match` with `decision` and `reason`), as
//! docs/identity.md describes. FHIR Task: <https://hl7.org/fhir/R4/task.html>.
//!
//! Does not: match, link or merge anything itself (the hub's index does, on `$resolve-match`),
//! or decide who may (only a data steward's token may; anyone else gets the API's refusal).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::error::PortalError;
use crate::signin::SignedIn;
use crate::{PortalState, layout, text};

/// The master patient index's code system (Task code, decisions).
const MPI_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/mpi";
/// The extension on a worklist Task that carries the match evidence.
const EVIDENCE_EXTENSION: &str = "https://concord.health/fhir/StructureDefinition/match-evidence";
/// The longest reason the form takes.
const MAX_REASON: usize = 500;
/// The most records of the candidate person shown side by side.
const MAX_CANDIDATE_RECORDS: usize = 4;

pub fn routes() -> Router<PortalState> {
    Router::new()
        .route("/portal/admin/matching", get(worklist))
        .route("/portal/admin/matching/{task}", get(review).post(decide))
}

/// A worklist Task read for the pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkItem {
    pub id: String,
    pub status: String,
    pub urgent: bool,
    pub description: String,
    pub raised: String,
    /// The new record (a hub Patient id).
    pub record: String,
    /// The person it may belong to (a hub Person id).
    pub candidate: String,
    /// 0 to 1.
    pub score: Option<f64>,
    pub grade: String,
    pub nhs_conflict: bool,
    /// One line per compared field: `family_name: exact (+4.10)`.
    pub evidence: Vec<String>,
    /// For a resolved Task: `linked` or `kept-apart`, who decided and why.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
}

impl WorkItem {
    pub fn from_task(task: &Value) -> WorkItem {
        let inputs = task["input"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let input = |name: &str| inputs.iter().find(|i| i["type"]["text"] == name);
        let evidence = text::extension(task, EVIDENCE_EXTENSION);
        let parts = evidence
            .and_then(|e| e["extension"].as_array())
            .map(Vec::as_slice)
            .unwrap_or_default();
        WorkItem {
            id: task["id"].as_str().unwrap_or_default().into(),
            status: task["status"].as_str().unwrap_or_default().into(),
            urgent: task["priority"] == "urgent",
            description: task["description"].as_str().unwrap_or_default().into(),
            raised: task["authoredOn"].as_str().unwrap_or_default().into(),
            record: task["focus"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
                .unwrap_or_default()
                .into(),
            candidate: input("candidate-person")
                .and_then(|i| i["valueReference"]["reference"].as_str())
                .and_then(|r| r.strip_prefix("Person/"))
                .unwrap_or_default()
                .into(),
            score: input("score").and_then(|i| i["valueDecimal"].as_f64()),
            grade: input("grade")
                .and_then(|i| i["valueCode"].as_str())
                .unwrap_or_default()
                .into(),
            nhs_conflict: parts
                .iter()
                .any(|p| p["url"] == "nhs-number-conflict" && p["valueBoolean"] == true),
            evidence: parts
                .iter()
                .filter(|p| p["url"] == "field")
                .filter_map(|p| p["valueString"].as_str())
                .map(str::to_string)
                .collect(),
            decision: task["businessStatus"]["coding"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["system"] == MPI_SYSTEM))
                .and_then(|c| c["code"].as_str())
                .map(str::to_string),
            decided_by: task["owner"]["display"].as_str().map(str::to_string),
            decision_reason: task["statusReason"]["text"].as_str().map(str::to_string),
        }
    }

    /// `87% (probable)`.
    pub fn confidence(&self) -> String {
        let percent = self
            .score
            .map(|s| format!("{:.0}%", (s * 100.0).clamp(0.0, 100.0)));
        match (percent, self.grade.is_empty()) {
            (Some(p), false) => format!("{p} ({})", self.grade),
            (Some(p), true) => p,
            (None, false) => self.grade.clone(),
            (None, true) => "Not scored".into(),
        }
    }
}

/// A FHIR id as the API accepts it; anything else cannot name a Task.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// `GET /portal/admin/matching[?resolved=link|keep-apart]`: the open possible matches.
async fn worklist(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, PortalError> {
    let path = "/fhir/Task?code=https%3A%2F%2Fconcord.health%2Ffhir%2FCodeSystem%2Fmpi%7Cpossible-match&status=requested&_count=100";
    let answer = state.fhir.get(&signed_in.caller(), path).await?.success()?;
    let mut items: Vec<WorkItem> = answer.body["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| &e["resource"])
                .filter(|r| r["resourceType"] == "Task")
                .map(WorkItem::from_task)
                .filter(|t| t.status == "requested")
                .collect()
        })
        .unwrap_or_default();
    // Urgent first, then the oldest first: the queue is worked from the top.
    items.sort_by(|a, b| b.urgent.cmp(&a.urgent).then(a.raised.cmp(&b.raised)));
    let resolved = query.get("resolved").map(String::as_str);
    let body = html! {
        h1 { "Matching worklist" }
        @match resolved {
            Some("link") => div id="resolved" class="confirmation" role="status" {
                "Decision saved: the records were linked as one person."
            },
            Some("keep-apart") => div id="resolved" class="confirmation" role="status" {
                "Decision saved: the records are kept apart as different people and will not be raised again."
            },
            _ => {}
        }
        p class="lead" {
            "Records that may belong to a person the index already holds, but not surely enough to link them without a person checking. Compare each pair and decide."
        }
        @if items.is_empty() {
            p id="worklist-empty" { "There are no possible matches waiting." }
        } @else {
            div class="table-scroll" {
                table class="data-table" id="worklist" {
                    caption class="visually-hidden" { "Possible matches waiting for a decision, urgent first" }
                    thead {
                        tr {
                            th scope="col" { "Raised" }
                            th scope="col" { "Priority" }
                            th scope="col" { "Why" }
                            th scope="col" { "Match" }
                            th scope="col" { "Review" }
                        }
                    }
                    tbody {
                        @for (n, item) in items.iter().enumerate() {
                            tr {
                                td { (text::date_time(&item.raised)) }
                                td {
                                    @if item.urgent { span class="tag tag-urgent" { "Urgent" } }
                                    @else { "Routine" }
                                }
                                td { (item.description) }
                                td { (item.confidence()) }
                                td {
                                    a href={ "/portal/admin/matching/" (item.id) } {
                                        "Compare"
                                        span class="visually-hidden" { " possible match " (n + 1) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        "Matching worklist",
        Some(&signed_in.session),
        body,
    ))
}

/// What the comparison page shows: the Task and the records on each side.
struct Comparison {
    item: WorkItem,
    record: Value,
    candidates: Vec<Value>,
    /// The candidate person has more records than are shown.
    more: usize,
}

async fn load(
    state: &PortalState,
    signed_in: &SignedIn,
    task: &str,
) -> Result<Comparison, PortalError> {
    if !valid_id(task) {
        return Err(PortalError::NotFound(
            "There is no possible match with this id.".into(),
        ));
    }
    let caller = signed_in.caller();
    let answer = state
        .fhir
        .get(&caller, &format!("/fhir/Task/{task}"))
        .await?
        .success()?;
    let item = WorkItem::from_task(&answer.body);
    if !valid_id(&item.record) || !valid_id(&item.candidate) {
        return Err(PortalError::NotFound(
            "This task is not a possible match of the master patient index.".into(),
        ));
    }
    let record = state
        .fhir
        .get(&caller, &format!("/fhir/Patient/{}", item.record))
        .await?;
    if !record.ok() {
        return Err(PortalError::from_answer(&record));
    }
    let person = state
        .fhir
        .get(&caller, &format!("/fhir/Person/{}", item.candidate))
        .await?;
    if !person.ok() {
        return Err(PortalError::from_answer(&person));
    }
    let linked: Vec<String> = person.body["link"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .filter_map(|l| l["target"]["reference"].as_str())
                .filter_map(|r| r.strip_prefix("Patient/"))
                .filter(|id| valid_id(id) && *id != item.record)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut candidates = Vec::new();
    for id in linked.iter().take(MAX_CANDIDATE_RECORDS) {
        let answer = state
            .fhir
            .get(&caller, &format!("/fhir/Patient/{id}"))
            .await?;
        // A record deleted since the person was linked is simply not shown.
        if answer.ok() {
            candidates.push(answer.body);
        } else if answer.status != StatusCode::NOT_FOUND && answer.status != StatusCode::GONE {
            return Err(PortalError::from_answer(&answer));
        }
    }
    Ok(Comparison {
        item,
        record: record.body,
        candidates,
        more: linked.len().saturating_sub(MAX_CANDIDATE_RECORDS),
    })
}

/// How to read one compared field from a Patient.
type ReadField = fn(&Value) -> String;

/// The comparison rows: a label and how to read that field from a Patient.
fn fields() -> Vec<(&'static str, ReadField)> {
    vec![
        ("Name", |p| text::name(&p["name"])),
        ("NHS number", |p| {
            text::patient_nhs_number(p)
                .map(|n| text::nhs_number(&n))
                .unwrap_or_default()
        }),
        ("Date of birth", |p| {
            p["birthDate"].as_str().map(text::date).unwrap_or_default()
        }),
        ("Gender", |p| {
            p["gender"].as_str().unwrap_or_default().to_string()
        }),
        ("Address", |p| text::address(&p["address"])),
        ("Phone", |p| {
            p["telecom"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["system"] == "phone"))
                .and_then(|t| t["value"].as_str())
                .unwrap_or_default()
                .to_string()
        }),
        ("Held by", holder),
        ("Other identifiers", |p| {
            p["identifier"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter(|i| i["system"] != "https://fhir.nhs.uk/Id/nhs-number")
                        .filter_map(|i| i["value"].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        }),
        ("Record id", |p| {
            p["id"].as_str().unwrap_or_default().to_string()
        }),
    ]
}

/// The organisation that holds a record: its managing organisation, else where it came from.
fn holder(patient: &Value) -> String {
    let org = &patient["managingOrganization"];
    org["display"]
        .as_str()
        .or_else(|| org["identifier"]["value"].as_str())
        .or_else(|| org["reference"].as_str())
        .or_else(|| patient["meta"]["source"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The decision form as posted.
#[derive(Debug, Clone, Default)]
struct Decision {
    decision: String,
    reason: String,
}

fn decision_errors(form: &Decision) -> Vec<(&'static str, &'static str)> {
    let mut errors = Vec::new();
    if !["link", "keep-apart"].contains(&form.decision.as_str()) {
        errors.push((
            "decision-link",
            "Choose whether to link the records or keep them apart",
        ));
    }
    if form.reason.trim().is_empty() {
        errors.push(("reason", "Enter the reason for your decision"));
    } else if form.reason.chars().count() > MAX_REASON {
        errors.push(("reason", "Enter a reason of 500 characters or fewer"));
    }
    errors
}

/// `GET /portal/admin/matching/{task}`: the two sides and the decision form.
async fn review(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Path(task): Path<String>,
) -> Result<Markup, PortalError> {
    let comparison = load(&state, &signed_in, &task).await?;
    Ok(render(&signed_in, &comparison, &Decision::default(), &[]))
}

/// `POST /portal/admin/matching/{task}` with `decision` and `reason`.
async fn decide(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Path(task): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    layout::check_csrf(&signed_in.session, form.get("csrf").map(String::as_str))?;
    if !valid_id(&task) {
        return Err(PortalError::NotFound(
            "There is no possible match with this id.".into(),
        ));
    }
    let decision = Decision {
        decision: form.get("decision").cloned().unwrap_or_default(),
        reason: form.get("reason").cloned().unwrap_or_default(),
    };
    let errors = decision_errors(&decision);
    if !errors.is_empty() {
        let comparison = load(&state, &signed_in, &task).await?;
        let page = render(&signed_in, &comparison, &decision, &errors);
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "decision", "valueCode": decision.decision},
            {"name": "reason", "valueString": decision.reason.trim()},
        ]
    });
    state
        .fhir
        .post(
            &signed_in.caller(),
            &format!("/fhir/Task/{task}/$resolve-match"),
            &parameters,
        )
        .await?
        .success()?;
    Ok(Redirect::to(&format!(
        "/portal/admin/matching?resolved={}",
        decision.decision
    ))
    .into_response())
}

fn render(
    signed_in: &SignedIn,
    comparison: &Comparison,
    form: &Decision,
    errors: &[(&'static str, &'static str)],
) -> Markup {
    let item = &comparison.item;
    let error_of = |field: &str| errors.iter().find(|(f, _)| *f == field).map(|(_, m)| *m);
    let fields = fields();
    let reason_described = if error_of("reason").is_some() {
        "reason-hint reason-error"
    } else {
        "reason-hint"
    };
    let body = html! {
        p { a href="/portal/admin/matching" { "Back to the worklist" } }
        h1 { "Is this the same person?" }
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
        @if item.nhs_conflict {
            div class="warning-callout" id="nhs-conflict" {
                strong { "Check carefully: " }
                "the same NHS number arrived with a different name and date of birth."
            }
        }
        p { (item.description) }
        section aria-labelledby="comparison-heading" {
            h2 id="comparison-heading" { "The records side by side" }
            div class="table-scroll" {
                table class="data-table comparison" id="comparison" {
                    caption class="visually-hidden" {
                        "The new record compared with the records of the person it may belong to"
                    }
                    thead {
                        tr {
                            th scope="col" { "Detail" }
                            th scope="col" { "New record" }
                            @for n in 0..comparison.candidates.len() {
                                th scope="col" {
                                    "Existing person's record"
                                    @if comparison.candidates.len() > 1 { " " (n + 1) }
                                }
                            }
                        }
                    }
                    tbody {
                        @for (label, read) in &fields {
                            @let left = read(&comparison.record);
                            tr {
                                th scope="row" { (label) }
                                td { (left) }
                                @for candidate in &comparison.candidates {
                                    @let right = read(candidate);
                                    td {
                                        (right)
                                        @if *label != "Record id" && !left.is_empty() && !right.is_empty()
                                            && !left.eq_ignore_ascii_case(&right) {
                                            " " span class="tag tag-urgent" { "Differs" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if comparison.candidates.is_empty() {
                p { "The existing person has no other records that can be shown." }
            }
            @if comparison.more > 0 {
                p { "The existing person has " (comparison.more) " more records not shown here." }
            }
        }
        section aria-labelledby="evidence-heading" class="card" {
            h2 id="evidence-heading" { "Why the index was unsure" }
            p { "Match score: " strong id="match-score" { (item.confidence()) } }
            @if !item.evidence.is_empty() {
                h3 { "Field by field" }
                ul id="match-evidence" {
                    @for line in &item.evidence { li { (line) } }
                }
            }
        }
        @if item.status == "requested" {
            form method="post" action={ "/portal/admin/matching/" (item.id) } id="match-decision" class="card" novalidate {
                (layout::csrf_field(&signed_in.session))
                div.field.field-error[error_of("decision-link").is_some()] {
                    fieldset aria-describedby=[error_of("decision-link").map(|_| "decision-error")] {
                        legend { "Your decision" }
                        @if let Some(message) = error_of("decision-link") {
                            span class="error-message" id="decision-error" { (message) }
                        }
                        label class="checkbox" for="decision-link" {
                            input type="radio" id="decision-link" name="decision" value="link"
                                checked[form.decision == "link"];
                            span { strong { "Link" } ": they are the same person. Their records are brought together in one view." }
                        }
                        label class="checkbox" for="decision-keep-apart" {
                            input type="radio" id="decision-keep-apart" name="decision" value="keep-apart"
                                checked[form.decision == "keep-apart"];
                            span { strong { "Keep apart" } ": they are different people. This pair will not be raised again." }
                        }
                    }
                }
                div.field.field-error[error_of("reason").is_some()] {
                    label for="reason" {
                        "Reason"
                        span class="hint" id="reason-hint" { "What you checked. Kept with the decision; 500 characters at most." }
                    }
                    @if let Some(message) = error_of("reason") {
                        span class="error-message" id="reason-error" { (message) }
                    }
                    textarea id="reason" name="reason" maxlength="500" required
                        aria-describedby=(reason_described)
                        aria-invalid=[error_of("reason").map(|_| "true")] { (form.reason) }
                }
                button type="submit" class="button" { "Save decision" }
            }
        } @else {
            div class="card" id="already-resolved" {
                h2 { "Already decided" }
                p {
                    @match item.decision.as_deref() {
                        Some("linked") => "These records were linked as one person",
                        Some("kept-apart") => "These records were kept apart",
                        _ => "This possible match was closed",
                    }
                    @if let Some(by) = &item.decided_by { " by " (by) }
                    "."
                    @if let Some(reason) = &item.decision_reason { " Reason: " (reason) }
                }
            }
        }
    };
    layout::page("Compare possible match", Some(&signed_in.session), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worklist_task_reads_as_an_item() {
        let task = json!({
            "resourceType": "Task", "id": "t1", "status": "requested", "priority": "urgent",
            "description": "The same NHS number arrived with a different name",
            "authoredOn": "2026-03-07T10:00:00Z",
            "focus": {"reference": "Patient/b"},
            "extension": [{"url": EVIDENCE_EXTENSION, "extension": [
                {"url": "score", "valueDecimal": 0.42}, {"url": "nhs-number-conflict", "valueBoolean": true},
                {"url": "field", "valueString": "family_name: different (-3.00)"}]}],
            "input": [
                {"type": {"text": "candidate-person"}, "valueReference": {"reference": "Person/p9"}},
                {"type": {"text": "score"}, "valueDecimal": 0.4219},
                {"type": {"text": "grade"}, "valueCode": "possible"}]
        });
        let item = WorkItem::from_task(&task);
        assert_eq!(item.record, "b");
        assert_eq!(item.candidate, "p9");
        assert!(item.urgent && item.nhs_conflict);
        assert_eq!(item.confidence(), "42% (possible)");
        assert_eq!(item.evidence, ["family_name: different (-3.00)"]);
        assert_eq!(WorkItem::from_task(&Value::Null).confidence(), "Not scored");
    }

    #[test]
    fn the_decision_form_names_each_missing_field() {
        let fields: Vec<&str> = decision_errors(&Decision::default())
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(fields, ["decision-link", "reason"]);
        assert!(
            decision_errors(&Decision {
                decision: "keep-apart".into(),
                reason: "different dates of birth, checked with the GP".into(),
            })
            .is_empty()
        );
        assert!(!valid_id("../x") && valid_id("abc-1.2"));
    }
}
