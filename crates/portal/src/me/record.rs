//! My record, my test results and my appointments: the patient's read-only pages.
//!
//! Owns `GET /portal/me` (the federated `Patient/[id]/$summary` in plain words, each item saying
//! which organisation recorded it), `GET /portal/me/results` (numeric Observations grouped by
//! test, each with a trend chart and a table,
//! <https://hl7.org/fhir/R4/observation.html>) and `GET /portal/me/appointments` (the federated
//! search `Appointment?patient=[id]&date=ge[today]`, <https://hl7.org/fhir/R4/appointment.html>).
//! Does not: decide what is shown (the FHIR API masks by consent and role) or write anything.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;

use super::{has_suppressed, is_id, own_patient, recorded_by, resources, today};
use crate::chart::{self, Point};
use crate::error::PortalError;
use crate::signin::SignedIn;
use crate::text;
use crate::{PortalState, layout};

/// The sections of "my record", in the order shown, with the resource types each draws on.
const SECTIONS: [(&str, &str, &[&str]); 6] = [
    ("conditions", "Health conditions", &["Condition"]),
    (
        "medicines",
        "Medicines",
        &["MedicationRequest", "MedicationStatement"],
    ),
    ("allergies", "Allergies", &["AllergyIntolerance"]),
    (
        "recent-results",
        "Recent test results",
        &["Observation", "DiagnosticReport"],
    ),
    ("care-plans", "Care plans", &["CarePlan"]),
    ("vaccinations", "Vaccinations", &["Immunization"]),
];

/// At most this many recent results on the record page (all are on the results page).
const RECENT_RESULTS: usize = 10;

/// `GET /portal/me` (`?for=ID`: the record of someone the signed-in person acts for).
pub async fn my_record(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let mut patient = own_patient(&signed_in)?;
    if let Some(other) = query.get("for") {
        if !is_id(other) {
            return Err(PortalError::NotFound("There is no such record.".into()));
        }
        patient = other.clone();
    }
    let answer = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!("/fhir/Patient/{patient}/$summary"),
        )
        .await?;
    if answer.status == StatusCode::FORBIDDEN {
        let body = html! {
            h1 { "You cannot see this record" }
            p id="not-your-record" {
                "You can only see your own record, and the records of people you have been allowed to act for."
            }
            p { a href="/portal/me" { "Go to your own record" } }
        };
        return Ok((
            StatusCode::FORBIDDEN,
            layout::page("You cannot see this record", Some(&signed_in.session), body),
        )
            .into_response());
    }
    if !answer.ok() {
        return Err(PortalError::from_answer(&answer));
    }
    Ok(layout::page(
        "My record",
        Some(&signed_in.session),
        render_record(&answer.body),
    )
    .into_response())
}

/// The record page's content from a `$summary` document Bundle.
fn render_record(bundle: &Value) -> Markup {
    let all = resources(bundle);
    let patient = all.iter().find(|r| r["resourceType"] == "Patient");
    let name = patient.map(|p| text::name(&p["name"])).unwrap_or_default();
    let mut by_section: Vec<Vec<&Value>> = vec![Vec::new(); SECTIONS.len()];
    for resource in &all {
        let kind = resource["resourceType"].as_str().unwrap_or_default();
        if let Some(i) = SECTIONS
            .iter()
            .position(|(_, _, types)| types.contains(&kind))
        {
            by_section[i].push(resource);
        }
    }
    for items in &mut by_section {
        items.sort_by_key(|r| std::cmp::Reverse(when(r)));
    }
    if let Some(results) = by_section.get_mut(3) {
        results.truncate(RECENT_RESULTS);
    }
    html! {
        h1 { "My record" }
        @if !name.is_empty() {
            p class="lead" { "This is the health and care record for " strong { (name) } ", brought together from the organisations that look after you." }
        }
        @if has_suppressed(bundle) {
            div id="withheld" class="withheld" role="status" {
                p { "Some information in this record has been withheld." }
            }
        }
        nav class="section-nav" aria-label="Sections of my record" {
            ul {
                @for (id, title, _) in SECTIONS {
                    li { a href=(format!("#{id}")) { (title) } }
                }
            }
        }
        @for (i, (id, title, _)) in SECTIONS.iter().enumerate() {
            section id=(id) class="card" aria-labelledby=(format!("{id}-heading")) {
                h2 id=(format!("{id}-heading")) { (title) }
                @if by_section[i].is_empty() {
                    p { (empty_text(id)) }
                } @else {
                    ul class="record-list" {
                        @for resource in &by_section[i] {
                            li { (item(resource)) }
                        }
                    }
                }
                @if *id == "recent-results" {
                    p { a href="/portal/me/results" { "See all your test results and how they have changed" } }
                }
            }
        }
    }
}

fn empty_text(section: &str) -> &'static str {
    match section {
        "conditions" => "No health conditions are recorded.",
        "medicines" => "No medicines are recorded.",
        "allergies" => "No allergies are recorded.",
        "recent-results" => "No test results are recorded.",
        "care-plans" => "No care plans are recorded.",
        _ => "No vaccinations are recorded.",
    }
}

/// The date that orders an item (FHIR dates sort as text).
fn when(resource: &Value) -> String {
    [
        "effectiveDateTime",
        "issued",
        "onsetDateTime",
        "recordedDate",
        "authoredOn",
        "occurrenceDateTime",
        "dateAsserted",
        "date",
    ]
    .iter()
    .find_map(|f| resource[*f].as_str())
    .or_else(|| resource["period"]["start"].as_str())
    .or_else(|| resource["effectivePeriod"]["start"].as_str())
    .unwrap_or_default()
    .to_string()
}

/// One item of my record in plain words.
fn item(resource: &Value) -> Markup {
    let kind = resource["resourceType"].as_str().unwrap_or_default();
    let (what, detail) = match kind {
        "Condition" => (
            text::concept(&resource["code"]),
            match text::concept(&resource["clinicalStatus"]).as_str() {
                "resolved" | "inactive" | "remission" => "Now resolved".to_string(),
                _ => String::new(),
            },
        ),
        "MedicationRequest" | "MedicationStatement" => (
            medicine_name(resource),
            resource["dosageInstruction"][0]["text"]
                .as_str()
                .or_else(|| resource["dosage"][0]["text"].as_str())
                .unwrap_or_default()
                .to_string(),
        ),
        "AllergyIntolerance" => (
            text::concept(&resource["code"]),
            resource["reaction"][0]["manifestation"]
                .get(0)
                .map(|m| format!("Reaction: {}", text::concept(m)))
                .unwrap_or_default(),
        ),
        "Observation" => (
            text::concept(&resource["code"]),
            observation_value(resource),
        ),
        "DiagnosticReport" => (
            text::concept(&resource["code"]),
            resource["conclusion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        "CarePlan" => (
            resource["title"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    resource["category"]
                        .get(0)
                        .map(text::concept)
                        .unwrap_or_else(|| "Care plan".into())
                }),
            resource["description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ),
        "Immunization" => (text::concept(&resource["vaccineCode"]), String::new()),
        _ => (String::new(), String::new()),
    };
    let date = when(resource);
    html! {
        span class="item-what" { (if what.is_empty() { "Not named".to_string() } else { what }) }
        @if !detail.is_empty() { " — " (detail) }
        @if !date.is_empty() { " " span class="item-date" { "(" (text::date(&date)) ")" } }
        " "
        @if text::is_patient_entered(resource) {
            span class="tag tag-patient" { "Entered by you" }
        } @else {
            span class="source" { "Recorded by " (recorded_by(resource)) }
        }
    }
}

fn medicine_name(resource: &Value) -> String {
    let named = text::concept(&resource["medicationCodeableConcept"]);
    if named.is_empty() {
        resource["medicationReference"]["display"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        named
    }
}

/// An Observation's value in words: `120 mmHg`, or its components `120/80 mmHg` style.
fn observation_value(resource: &Value) -> String {
    if resource["valueQuantity"].is_object() {
        return text::quantity(&resource["valueQuantity"]);
    }
    if let Some(s) = resource["valueString"].as_str() {
        return s.to_string();
    }
    if resource["valueCodeableConcept"].is_object() {
        return text::concept(&resource["valueCodeableConcept"]);
    }
    let parts: Vec<String> = resource["component"]
        .as_array()
        .map(|components| {
            components
                .iter()
                .filter(|c| c["valueQuantity"].is_object())
                .map(|c| {
                    format!(
                        "{} {}",
                        text::concept(&c["code"]),
                        text::quantity(&c["valueQuantity"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    parts.join(", ")
}

/// One measured series: a test (or a component of one) over time.
struct Series {
    label: String,
    unit: String,
    points: Vec<(String, f64, String)>,
    range: Option<(f64, f64)>,
}

/// The numeric series in a set of Observations, by code.
fn series(observations: &[&Value]) -> Vec<Series> {
    let mut by_key: BTreeMap<String, Series> = BTreeMap::new();
    let mut add = |code: &Value, quantity: &Value, range: &Value, resource: &Value| {
        let Some(value) = quantity["value"].as_f64() else {
            return;
        };
        let key = code["coding"][0]["code"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| text::concept(code));
        if key.is_empty() {
            return;
        }
        let entry = by_key.entry(key).or_insert_with(|| Series {
            label: text::concept(code),
            unit: quantity["unit"]
                .as_str()
                .or_else(|| quantity["code"].as_str())
                .unwrap_or_default()
                .to_string(),
            points: Vec::new(),
            range: None,
        });
        if let (Some(low), Some(high)) = (
            range[0]["low"]["value"].as_f64(),
            range[0]["high"]["value"].as_f64(),
        ) {
            entry.range = Some((low, high));
        }
        entry
            .points
            .push((when(resource), value, recorded_by(resource)));
    };
    for resource in observations {
        if resource["valueQuantity"].is_object() {
            add(
                &resource["code"],
                &resource["valueQuantity"],
                &resource["referenceRange"],
                resource,
            );
        }
        for component in resource["component"].as_array().into_iter().flatten() {
            add(
                &component["code"],
                &component["valueQuantity"],
                &component["referenceRange"],
                resource,
            );
        }
    }
    let mut out: Vec<Series> = by_key.into_values().collect();
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

fn slug(label: &str, index: usize) -> String {
    let words: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("result-{index}-{}", words.trim_matches('-'))
}

/// `GET /portal/me/results`.
pub async fn results(
    State(state): State<PortalState>,
    signed_in: SignedIn,
) -> Result<Markup, PortalError> {
    let patient = own_patient(&signed_in)?;
    let answer = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!("/fhir/Observation?patient={patient}&_count=500"),
        )
        .await?
        .success()?;
    let observations: Vec<&Value> = resources(&answer.body)
        .into_iter()
        .filter(|r| r["resourceType"] == "Observation")
        .collect();
    let all = series(&observations);
    let body = html! {
        h1 { "Test results" }
        p class="lead" { "Your measurements and test results over time, from every organisation that looks after you and the readings you entered." }
        @if has_suppressed(&answer.body) {
            div id="withheld" class="withheld" role="status" { p { "Some information in this record has been withheld." } }
        }
        @if all.is_empty() {
            p id="no-results" { "You have no test results with numbers to show yet." }
        }
        @for (i, s) in all.iter().enumerate() {
            @let id = slug(&s.label, i);
            section class="card result-trend" id=(id) aria-labelledby=(format!("{id}-heading")) {
                h2 id=(format!("{id}-heading")) { (s.label) @if !s.unit.is_empty() { " (" (s.unit) ")" } }
                @if let Some((low, high)) = s.range {
                    p class="hint" { "The usual range is " (chart::number(low)) " to " (chart::number(high)) " " (s.unit) ", shaded green on the chart." }
                }
                @if s.points.len() > 1 {
                    (chart::trend(&s.points.iter().map(|(at, value, _)| Point { when: at.clone(), value: *value }).collect::<Vec<_>>(), s.range, &s.unit, &s.label))
                }
                div class="table-scroll" {
                    table class="data-table" {
                        caption class="visually-hidden" { (s.label) " results" }
                        thead { tr { th scope="col" { "Date" } th scope="col" { "Result" } th scope="col" { "Recorded by" } } }
                        tbody {
                            @for (at, value, by) in s.points.iter().rev() {
                                tr {
                                    td { (text::date_time(at)) }
                                    td { (chart::number(*value)) " " (s.unit) }
                                    td { (by) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Test results", Some(&signed_in.session), body))
}

/// `GET /portal/me/appointments`.
pub async fn appointments(
    State(state): State<PortalState>,
    signed_in: SignedIn,
) -> Result<Markup, PortalError> {
    let patient = own_patient(&signed_in)?;
    let answer = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!(
                "/fhir/Appointment?patient={patient}&date=ge{}&_count=200",
                today()
            ),
        )
        .await?
        .success()?;
    let mut list: Vec<&Value> = resources(&answer.body)
        .into_iter()
        .filter(|r| r["resourceType"] == "Appointment")
        .filter(|r| !matches!(r["status"].as_str(), Some("cancelled" | "entered-in-error")))
        .collect();
    list.sort_by(|a, b| a["start"].as_str().cmp(&b["start"].as_str()));
    let body = html! {
        h1 { "Appointments" }
        p class="lead" { "Your upcoming appointments with the organisations that look after you." }
        @if list.is_empty() {
            p id="no-appointments" { "You have no upcoming appointments." }
        } @else {
            div class="table-scroll" {
                table class="data-table" id="appointments" {
                    caption class="visually-hidden" { "Upcoming appointments" }
                    thead { tr {
                        th scope="col" { "When" }
                        th scope="col" { "What for" }
                        th scope="col" { "With" }
                        th scope="col" { "Status" }
                        th scope="col" { "Organisation" }
                    } }
                    tbody {
                        @for a in &list {
                            tr {
                                td { (a["start"].as_str().map(text::date_time).unwrap_or_else(|| "Time to be confirmed".into())) }
                                td { (appointment_what(a)) }
                                td { (appointment_with(a)) }
                                td { (appointment_status(a["status"].as_str().unwrap_or_default())) }
                                td { (recorded_by(a)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Appointments", Some(&signed_in.session), body))
}

fn appointment_what(a: &Value) -> String {
    a["description"]
        .as_str()
        .map(str::to_string)
        .or_else(|| a["serviceType"].get(0).map(text::concept))
        .or_else(|| {
            a["appointmentType"]
                .is_object()
                .then(|| text::concept(&a["appointmentType"]))
        })
        .or_else(|| a["reasonCode"].get(0).map(text::concept))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Appointment".into())
}

fn appointment_with(a: &Value) -> String {
    let names: Vec<&str> = a["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            !p["actor"]["reference"]
                .as_str()
                .is_some_and(|r| r.starts_with("Patient/"))
        })
        .filter_map(|p| p["actor"]["display"].as_str())
        .collect();
    names.join(", ")
}

fn appointment_status(status: &str) -> &'static str {
    match status {
        "booked" => "Booked",
        "proposed" | "pending" | "waitlist" => "Not confirmed yet",
        "arrived" | "checked-in" => "Checked in",
        "fulfilled" => "Attended",
        "noshow" => "Missed",
        _ => "Booked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_record_reads_in_plain_words() {
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"given": ["Ann"], "family": "Lee"}]}},
            {"resource": {"resourceType": "Condition", "code": {"text": "Asthma"}, "onsetDateTime": "2020-01-02"}},
            {"resource": {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"text": "Salbutamol"},
                "dosageInstruction": [{"text": "Two puffs when needed"}]}}
        ]});
        let page = render_record(&bundle).into_string();
        assert!(page.contains("Health conditions"));
        assert!(page.contains("Asthma"));
        assert!(page.contains("Two puffs when needed"));
        assert!(page.contains("Recorded by This care record service"));
        assert!(page.contains("No allergies are recorded."));
    }

    #[test]
    fn blood_pressure_components_are_two_series() {
        let bp = json!({"resourceType": "Observation", "effectiveDateTime": "2026-01-01",
            "code": {"coding": [{"code": "85354-9"}]}, "component": [
            {"code": {"coding": [{"code": "8480-6", "display": "Systolic"}]}, "valueQuantity": {"value": 120, "unit": "mmHg"}},
            {"code": {"coding": [{"code": "8462-4", "display": "Diastolic"}]}, "valueQuantity": {"value": 80, "unit": "mmHg"}}
        ]});
        let s = series(&[&bp]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label, "Diastolic");
        assert_eq!(s[1].points[0].1, 120.0);
    }
}
