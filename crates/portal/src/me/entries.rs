//! What the patient enters themselves: readings (blood pressure, weight, pulse, blood glucose)
//! and "what matters to me".
//!
//! Owns `GET/POST /portal/me/readings` and `GET/POST /portal/me/what-matters`: the forms, their
//! range checks (each message names the field), and the transaction Bundle each save is
//! (<https://hl7.org/fhir/R4/http.html#transaction>): an Observation
//! (<https://hl7.org/fhir/R4/observation-vitalsigns.html>, LOINC codes, UCUM units) or a Goal
//! (<https://hl7.org/fhir/R4/goal.html>), with a Provenance
//! (<https://hl7.org/fhir/R4/provenance.html>) whose agent is the patient and whose target is the
//! new resource, linked by `urn:uuid` fullUrls. Does not: tag the entries as patient-entered or
//! check they are the person's own (the FHIR API does both for a patient's token).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{now_instant, own_patient, resources};
use crate::error::PortalError;
use crate::signin::SignedIn;
use crate::text;
use crate::{PortalState, layout};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// The kinds of reading, as posted in `kind`, with their words.
const KINDS: [(&str, &str); 4] = [
    ("blood-pressure", "Blood pressure"),
    ("weight", "Weight"),
    ("pulse", "Pulse (heart rate)"),
    ("blood-glucose", "Blood glucose (sugar)"),
];

/// A form field that was filled in wrongly.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The field's id on the page.
    pub field: &'static str,
    pub message: String,
}

/// Reads a number posted in `field`: `whole` numbers only when asked, within `low..=high`.
fn number(
    form: &HashMap<String, String>,
    field: &'static str,
    low: f64,
    high: f64,
    whole: bool,
    message: &str,
) -> Result<f64, FieldError> {
    let error = || FieldError {
        field,
        message: message.to_string(),
    };
    let text = form.get(field).map(|v| v.trim()).unwrap_or_default();
    let value: f64 = text.parse().map_err(|_| error())?;
    if !value.is_finite() || value < low || value > high || (whole && value.fract() != 0.0) {
        return Err(error());
    }
    Ok(value)
}

/// Checks a posted reading and returns the Observation it becomes (without the subject), or
/// the errors, each naming its field.
pub fn observation_from_form(form: &HashMap<String, String>) -> Result<Value, Vec<FieldError>> {
    // Whole numbers are written as integers, so 120 reads back as 120, not 120.0.
    let quantity = |value: f64, unit: &str, code: &str| {
        let value = if value.fract() == 0.0 {
            json!(value as i64)
        } else {
            json!(value)
        };
        json!({"value": value, "unit": unit, "system": UCUM, "code": code})
    };
    let coded = |code: &str, display: &str| json!({"coding": [{"system": LOINC, "code": code, "display": display}], "text": display});
    let vital = json!([{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}]);
    match form.get("kind").map(String::as_str) {
        Some("blood-pressure") => {
            let systolic = number(
                form,
                "systolic",
                50.0,
                300.0,
                true,
                "Enter the systolic pressure (the top number) as a whole number between 50 and 300",
            );
            let diastolic = number(
                form,
                "diastolic",
                30.0,
                200.0,
                true,
                "Enter the diastolic pressure (the bottom number) as a whole number between 30 and 200",
            );
            match (systolic, diastolic) {
                (Ok(s), Ok(d)) if s <= d => Err(vec![FieldError {
                    field: "systolic",
                    message: "The systolic pressure (the top number) must be higher than the diastolic pressure (the bottom number)".into(),
                }]),
                (Ok(s), Ok(d)) => Ok(json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "category": vital,
                    "code": coded("85354-9", "Blood pressure panel with all children optional"),
                    "component": [
                        {"code": coded("8480-6", "Systolic blood pressure"), "valueQuantity": quantity(s, "mmHg", "mm[Hg]")},
                        {"code": coded("8462-4", "Diastolic blood pressure"), "valueQuantity": quantity(d, "mmHg", "mm[Hg]")}
                    ]
                })),
                (s, d) => Err([s.err(), d.err()].into_iter().flatten().collect()),
            }
        }
        Some("weight") => number(
            form,
            "value",
            2.0,
            400.0,
            false,
            "Enter your weight in kilograms as a number between 2 and 400",
        )
        .map(|v| {
            json!({"resourceType": "Observation", "status": "final", "category": vital,
                "code": coded("29463-7", "Body weight"), "valueQuantity": quantity(v, "kg", "kg")})
        })
        .map_err(|e| vec![e]),
        Some("pulse") => number(
            form,
            "value",
            20.0,
            250.0,
            true,
            "Enter your pulse as a whole number of beats per minute between 20 and 250",
        )
        .map(|v| {
            json!({"resourceType": "Observation", "status": "final", "category": vital,
                "code": coded("8867-4", "Heart rate"), "valueQuantity": quantity(v, "beats/minute", "/min")})
        })
        .map_err(|e| vec![e]),
        Some("blood-glucose") => number(
            form,
            "value",
            0.5,
            50.0,
            false,
            "Enter your blood glucose in mmol/L as a number between 0.5 and 50",
        )
        .map(|v| {
            json!({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
                "code": coded("15074-8", "Glucose [Moles/volume] in Blood"), "valueQuantity": quantity(v, "mmol/L", "mmol/L")})
        })
        .map_err(|e| vec![e]),
        _ => Err(vec![FieldError {
            field: "kind-blood-pressure",
            message: "Choose what kind of reading you are adding".into(),
        }]),
    }
}

/// A transaction Bundle creating `resource` for `patient` and a Provenance saying the patient
/// entered it.
pub fn entry_bundle(patient: &str, mut resource: Value, now: &str) -> Value {
    let resource_url = format!("urn:uuid:{}", uuid_like());
    let provenance_url = format!("urn:uuid:{}", uuid_like());
    let resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let who = json!({"reference": format!("Patient/{patient}")});
    let provenance = json!({
        "resourceType": "Provenance",
        "target": [{"reference": resource_url}],
        "recorded": now,
        "agent": [{
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "author",
                "display": "Author"
            }]},
            "who": who
        }]
    });
    resource["subject"] = who.clone();
    if resource_type == "Observation" {
        resource["effectiveDateTime"] = json!(now);
        resource["performer"] = json!([who]);
    }
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": resource_url, "resource": resource,
             "request": {"method": "POST", "url": resource_type}},
            {"fullUrl": provenance_url, "resource": provenance,
             "request": {"method": "POST", "url": "Provenance"}}
        ]
    })
}

/// A random UUID for a `urn:uuid` fullUrl.
fn uuid_like() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn error_summary(errors: &[FieldError]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" {
                h2 id="error-summary-title" { "There is a problem" }
                ul {
                    @for e in errors {
                        li { a href=(format!("#{}", e.field)) { (e.message) } }
                    }
                }
            }
        }
    }
}

fn field_error<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| e.field == field)
}

/// A labelled number input with its unit, and its error when it has one.
fn number_field(
    id: &'static str,
    label: &str,
    hint: &str,
    unit: &str,
    form: &HashMap<String, String>,
    errors: &[FieldError],
) -> Markup {
    let error = field_error(errors, id);
    html! {
        div class=(if error.is_some() { "field field-error" } else { "field" }) {
            label for=(id) { (label) " (" (unit) ")" span class="hint" id=(format!("{id}-hint")) { (hint) } }
            @if let Some(e) = error {
                span class="error-message" id=(format!("{id}-error")) { span class="visually-hidden" { "Error: " } (e.message) }
            }
            input type="text" inputmode="decimal" id=(id) name=(id)
                value=(form.get(id).map(String::as_str).unwrap_or_default())
                aria-describedby=(if error.is_some() { format!("{id}-hint {id}-error") } else { format!("{id}-hint") })
                aria-invalid=[error.map(|_| "true")];
        }
    }
}

/// `GET /portal/me/readings`.
pub async fn readings(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let saved = query.get("saved").is_some_and(|v| v == "1");
    readings_page(
        &state,
        &signed_in,
        &HashMap::new(),
        &[],
        saved,
        StatusCode::OK,
    )
    .await
}

async fn readings_page(
    state: &PortalState,
    signed_in: &SignedIn,
    form: &HashMap<String, String>,
    errors: &[FieldError],
    saved: bool,
    status: StatusCode,
) -> Result<Response, PortalError> {
    let patient = own_patient(signed_in)?;
    let answer = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!("/fhir/Observation?patient={patient}&_count=500"),
        )
        .await?
        .success()?;
    let mut mine: Vec<&Value> = resources(&answer.body)
        .into_iter()
        .filter(|r| r["resourceType"] == "Observation" && text::is_patient_entered(r))
        .collect();
    mine.sort_by(|a, b| {
        b["effectiveDateTime"]
            .as_str()
            .cmp(&a["effectiveDateTime"].as_str())
    });
    let session = &signed_in.session;
    let chosen = form
        .get("kind")
        .map(String::as_str)
        .unwrap_or("blood-pressure");
    let kind_error = field_error(errors, "kind-blood-pressure");
    let body = html! {
        h1 { "Add a reading" }
        @if saved {
            div id="saved" class="card card-patient" role="status" { p { strong { "Your reading was saved." } " It is now part of your record, marked as entered by you." } }
        }
        (error_summary(errors))
        p class="lead" { "Add a measurement you took yourself. The people who look after you will see it, marked as entered by you." }
        form method="post" action="/portal/me/readings" novalidate {
            (layout::csrf_field(session))
            fieldset class=(if kind_error.is_some() { "field field-error" } else { "field" }) {
                legend { "What are you measuring?" }
                @if let Some(e) = kind_error {
                    span class="error-message" { span class="visually-hidden" { "Error: " } (e.message) }
                }
                @for (value, words) in KINDS {
                    label class="checkbox" for=(format!("kind-{value}")) {
                        input type="radio" name="kind" id=(format!("kind-{value}")) value=(value) checked[chosen == value];
                        (words)
                    }
                }
            }
            fieldset {
                legend { "Blood pressure" }
                p class="hint" { "Fill these in for a blood pressure reading: the top and bottom numbers, for example 120 over 80." }
                div class="fields-row" {
                    (number_field("systolic", "Systolic pressure, the top number", "A whole number between 50 and 300", "mmHg", form, errors))
                    (number_field("diastolic", "Diastolic pressure, the bottom number", "A whole number between 30 and 200", "mmHg", form, errors))
                }
            }
            fieldset {
                legend { "Weight, pulse or blood glucose" }
                (number_field("value", "Your reading", "Weight in kilograms (2 to 400), pulse in beats per minute (20 to 250), or blood glucose in mmol/L (0.5 to 50)", "kg, beats per minute or mmol/L", form, errors))
            }
            button type="submit" class="button" { "Save reading" }
        }
        section class="card" aria-labelledby="my-readings-heading" {
            h2 id="my-readings-heading" { "Readings you have entered" }
            @if mine.is_empty() {
                p id="no-readings" { "You have not entered any readings yet." }
            } @else {
                div class="table-scroll" {
                    table class="data-table" id="my-readings" {
                        caption class="visually-hidden" { "Readings you have entered" }
                        thead { tr { th scope="col" { "Date" } th scope="col" { "Reading" } th scope="col" { "Value" } } }
                        tbody {
                            @for r in &mine {
                                tr {
                                    td { (r["effectiveDateTime"].as_str().map(text::date_time).unwrap_or_default()) }
                                    td { (text::concept(&r["code"])) }
                                    td { (reading_value(r)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok((status, layout::page("Add a reading", Some(session), body)).into_response())
}

fn reading_value(r: &Value) -> String {
    if r["valueQuantity"].is_object() {
        return text::quantity(&r["valueQuantity"]);
    }
    let values: Vec<String> = r["component"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["valueQuantity"]["value"].to_string())
        .collect();
    if values.len() == 2 {
        format!("{}/{} mmHg", values[0], values[1])
    } else {
        values.join(", ")
    }
}

/// `POST /portal/me/readings`.
pub async fn save_reading(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    layout::check_csrf(&signed_in.session, form.get("csrf").map(String::as_str))?;
    let patient = own_patient(&signed_in)?;
    let observation = match observation_from_form(&form) {
        Ok(observation) => observation,
        Err(errors) => {
            return readings_page(
                &state,
                &signed_in,
                &form,
                &errors,
                false,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let bundle = entry_bundle(&patient, observation, &now_instant());
    state
        .fhir
        .post(&signed_in.caller(), "/fhir", &bundle)
        .await?
        .success()?;
    Ok(Redirect::to("/portal/me/readings?saved=1").into_response())
}

/// The most "what matters to me" may say.
const WHAT_MATTERS_MAX: usize = 2000;

/// `GET /portal/me/what-matters`.
pub async fn what_matters(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let saved = query.get("saved").is_some_and(|v| v == "1");
    what_matters_page(&state, &signed_in, "", None, saved).await
}

async fn what_matters_page(
    state: &PortalState,
    signed_in: &SignedIn,
    text_value: &str,
    error: Option<&FieldError>,
    saved: bool,
) -> Result<Response, PortalError> {
    let patient = own_patient(signed_in)?;
    let answer = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!("/fhir/Goal?patient={patient}&_count=100"),
        )
        .await?
        .success()?;
    let mut goals: Vec<&Value> = resources(&answer.body)
        .into_iter()
        .filter(|r| r["resourceType"] == "Goal" && text::is_patient_entered(r))
        .collect();
    goals.sort_by(|a, b| b["startDate"].as_str().cmp(&a["startDate"].as_str()));
    let session = &signed_in.session;
    let errors: Vec<FieldError> = error.into_iter().cloned().collect();
    let body = html! {
        h1 { "What matters to me" }
        @if saved {
            div id="saved" class="card card-patient" role="status" { p { strong { "What matters to you was saved." } } }
        }
        (error_summary(&errors))
        p class="lead" { "Tell the people who look after you what matters most to you: your goals, what you want from your care, and what you would rather avoid." }
        form method="post" action="/portal/me/what-matters" novalidate {
            (layout::csrf_field(session))
            div class=(if error.is_some() { "field field-error" } else { "field" }) {
                label for="what-matters" { "What matters to you" span class="hint" id="what-matters-hint" { "For example: staying in my own home, being able to walk my dog. Up to 2000 characters." } }
                @if let Some(e) = error {
                    span class="error-message" id="what-matters-error" { span class="visually-hidden" { "Error: " } (e.message) }
                }
                textarea id="what-matters" name="text" rows="6" maxlength="2000"
                    aria-describedby=(if error.is_some() { "what-matters-hint what-matters-error" } else { "what-matters-hint" }) { (text_value) }
            }
            button type="submit" class="button" { "Save" }
        }
        section class="card" aria-labelledby="said-heading" {
            h2 id="said-heading" { "What you have told us" }
            @if goals.is_empty() {
                p { "You have not written anything here yet." }
            } @else {
                ul id="what-matters-list" {
                    @for g in &goals {
                        li {
                            (g["description"]["text"].as_str().unwrap_or_default())
                            @if let Some(date) = g["startDate"].as_str() { " " span class="item-date" { "(" (text::date(date)) ")" } }
                        }
                    }
                }
            }
        }
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        layout::page("What matters to me", Some(session), body),
    )
        .into_response())
}

/// `POST /portal/me/what-matters`.
pub async fn save_what_matters(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    layout::check_csrf(&signed_in.session, form.get("csrf").map(String::as_str))?;
    let patient = own_patient(&signed_in)?;
    let said = form.get("text").map(|t| t.trim()).unwrap_or_default();
    if said.is_empty() || said.chars().count() > WHAT_MATTERS_MAX {
        let error = FieldError {
            field: "what-matters",
            message: "Enter what matters to you, in up to 2000 characters".into(),
        };
        return what_matters_page(&state, &signed_in, said, Some(&error), false).await;
    }
    let now = now_instant();
    let goal = json!({
        "resourceType": "Goal",
        "lifecycleStatus": "active",
        "category": [{"text": "What matters to me"}],
        "description": {"text": said},
        "startDate": now.get(..10).unwrap_or_default(),
        "expressedBy": {"reference": format!("Patient/{patient}")}
    });
    let bundle = entry_bundle(&patient, goal, &now);
    state
        .fhir
        .post(&signed_in.caller(), "/fhir", &bundle)
        .await?
        .success()?;
    Ok(Redirect::to("/portal/me/what-matters?saved=1").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn readings_are_checked_and_coded() {
        let bp = observation_from_form(&form(&[
            ("kind", "blood-pressure"),
            ("systolic", "130"),
            ("diastolic", "85"),
        ]))
        .unwrap();
        assert_eq!(bp["code"]["coding"][0]["code"], "85354-9");
        assert_eq!(bp["component"][0]["code"]["coding"][0]["code"], "8480-6");
        assert_eq!(bp["component"][1]["valueQuantity"]["code"], "mm[Hg]");
        let errors = observation_from_form(&form(&[
            ("kind", "blood-pressure"),
            ("systolic", "400"),
            ("diastolic", "abc"),
        ]))
        .unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].message.contains("systolic"));
        assert!(errors[1].message.contains("diastolic"));
        let weight =
            observation_from_form(&form(&[("kind", "weight"), ("value", "72.5")])).unwrap();
        assert_eq!(weight["code"]["coding"][0]["code"], "29463-7");
        assert!(observation_from_form(&form(&[("kind", "pulse"), ("value", "72.5")])).is_err());
        let glucose =
            observation_from_form(&form(&[("kind", "blood-glucose"), ("value", "5.4")])).unwrap();
        assert_eq!(glucose["category"][0]["coding"][0]["code"], "laboratory");
        assert!(observation_from_form(&form(&[("kind", "x")])).is_err());
        assert!(observation_from_form(&form(&[("kind", "weight"), ("value", "NaN")])).is_err());
    }

    #[test]
    fn the_bundle_links_the_provenance_to_the_entry() {
        let bundle = entry_bundle(
            "p1",
            json!({"resourceType": "Observation"}),
            "2026-12-03T10:00:00Z",
        );
        let entries = bundle["entry"].as_array().unwrap();
        assert_eq!(
            entries[1]["resource"]["target"][0]["reference"],
            entries[0]["fullUrl"]
        );
        assert_eq!(entries[0]["resource"]["subject"]["reference"], "Patient/p1");
        assert_eq!(
            entries[1]["resource"]["agent"][0]["who"]["reference"],
            "Patient/p1"
        );
    }
}
