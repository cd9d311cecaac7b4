//! Sharing choices and who looked at my record.
//!
//! Owns `GET/POST /portal/me/sharing`: the person's current choices read from their Consent
//! resources (`Consent?patient=`, read with `concord_access::ConsentPolicy::from_consents`), the
//! form with a plain explanation of each choice, and saving the choices as one new Consent
//! written by `concord_access::consent_resource` (<https://hl7.org/fhir/R4/consent.html>); and
//! `GET /portal/me/access-log`, the person's `Patient/[id]/$access-log` as a table. Does not:
//! apply the choices (the FHIR API does on every request) or keep them anywhere else.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use concord_access::consent::{ODS_SYSTEM, SENSITIVE_CATEGORIES};
use concord_access::{ConsentChoices, ConsentPolicy, consent_resource};
use maud::{Markup, html};
use serde_json::Value;

use super::{now_instant, own_patient, resources};
use crate::error::PortalError;
use crate::signin::SignedIn;
use crate::text;
use crate::{PortalState, layout};

/// The sensitive categories in plain words.
fn category_words(category: &str) -> &str {
    match category {
        "sexual-health" => "Sexual health",
        "hiv" => "HIV",
        "gender-identity" => "Gender identity",
        "fertility" => "Fertility treatment",
        "safeguarding" => "Safeguarding (protection from harm or abuse)",
        "mental-health" => "Mental health",
        other => other,
    }
}

/// The organisations the person can choose about: those holding their record (from the summary's
/// source extensions), those named by their consent, and those in the directory, by ODS code.
async fn organisations(
    state: &PortalState,
    signed_in: &SignedIn,
    patient: &str,
    policy: &ConsentPolicy,
) -> Result<BTreeMap<String, String>, PortalError> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let directory = state
        .fhir
        .get(&signed_in.caller(), "/fhir/Organization?_count=200")
        .await?;
    if directory.ok() {
        for org in resources(&directory.body) {
            let ods = org["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|i| {
                    (i["system"] == ODS_SYSTEM)
                        .then(|| i["value"].as_str())
                        .flatten()
                });
            if let (Some(ods), Some(name)) = (ods, org["name"].as_str()) {
                names.insert(ods.to_string(), name.to_string());
            }
        }
    }
    let summary = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!("/fhir/Patient/{patient}/$summary"),
        )
        .await?;
    if summary.ok() {
        for resource in resources(&summary.body) {
            let Some(source) = text::extension(
                &resource["meta"],
                concord_federation::SOURCE_ORGANIZATION_URL,
            ) else {
                continue;
            };
            let reference = &source["valueReference"];
            if let Some(ods) = reference["identifier"]["value"].as_str() {
                let name = reference["display"].as_str().unwrap_or(ods);
                names.insert(ods.to_string(), name.to_string());
            }
        }
    }
    for ods in policy
        .withheld_organizations
        .iter()
        .chain(&policy.blocked_organizations)
    {
        names.entry(ods.clone()).or_insert_with(|| ods.clone());
    }
    Ok(names)
}

/// The person's current sharing choices.
async fn current_policy(
    state: &PortalState,
    signed_in: &SignedIn,
    patient: &str,
) -> Result<ConsentPolicy, PortalError> {
    let answer = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!("/fhir/Consent?patient={patient}&_count=200"),
        )
        .await?
        .success()?;
    let consents: Vec<Value> = resources(&answer.body)
        .into_iter()
        .filter(|r| r["resourceType"] == "Consent")
        .cloned()
        .collect();
    let now_ms = crate::session::now().saturating_mul(1000);
    Ok(ConsentPolicy::from_consents(&consents, now_ms).0)
}

/// `GET /portal/me/sharing`.
pub async fn sharing(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, PortalError> {
    let patient = own_patient(&signed_in)?;
    let policy = current_policy(&state, &signed_in, &patient).await?;
    let orgs = organisations(&state, &signed_in, &patient, &policy).await?;
    let saved = query.get("saved").is_some_and(|v| v == "1");
    let session = &signed_in.session;
    let body = html! {
        h1 { "Sharing choices" }
        @if saved {
            div id="saved" class="card card-patient" role="status" { p { strong { "Your sharing choices were saved." } " They apply from now on, every time someone opens your record." } }
        }
        p class="lead" {
            "The organisations that look after you share your record so that whoever treats you has the whole picture. You can limit that sharing here. Your choices do not stop an organisation seeing what it recorded itself."
        }
        p { "In an emergency, a doctor or paramedic may still see your shared record to treat you. When they do, it is recorded and checked." }
        form method="post" action="/portal/me/sharing" {
            (layout::csrf_field(session))
            fieldset class="card" {
                legend { "Opting out of sharing" }
                label class="checkbox" for="opt_out" {
                    input type="checkbox" id="opt_out" name="opt_out" value="yes" checked[policy.opt_out];
                    "Do not share my record between organisations. Each organisation will see only what it recorded itself."
                }
            }
            @if !orgs.is_empty() {
                fieldset class="card" {
                    legend { "Keep what an organisation holds to itself" }
                    p class="hint" { "What a ticked organisation recorded about you is not shared with any other organisation." }
                    @for (ods, name) in &orgs {
                        label class="checkbox" for=(format!("withhold-{ods}")) {
                            input type="checkbox" id=(format!("withhold-{ods}")) name="withhold_org" value=(ods) checked[policy.withheld_organizations.contains(ods)];
                            "Don't share what " (name) " holds with others"
                        }
                    }
                }
                fieldset class="card" {
                    legend { "Stop an organisation seeing my shared record" }
                    p class="hint" { "A ticked organisation will see only what it recorded itself, not what other organisations hold about you." }
                    @for (ods, name) in &orgs {
                        label class="checkbox" for=(format!("block-{ods}")) {
                            input type="checkbox" id=(format!("block-{ods}")) name="block_org" value=(ods) checked[policy.blocked_organizations.contains(ods)];
                            (name) " may not see my shared record"
                        }
                    }
                }
            }
            fieldset class="card" {
                legend { "Keep sensitive information private" }
                p class="hint" { "Information of a ticked kind is not shared with anyone but you, even by the organisation that recorded it, except in an emergency if the service allows it." }
                @for category in SENSITIVE_CATEGORIES {
                    label class="checkbox" for=(format!("category-{category}")) {
                        input type="checkbox" id=(format!("category-{category}")) name="withhold_category" value=(category) checked[policy.withheld_categories.contains(category)];
                        (category_words(category))
                    }
                }
            }
            button type="submit" class="button" { "Save my sharing choices" }
        }
    };
    Ok(layout::page("Sharing choices", Some(session), body))
}

/// Whether `code` looks like an ODS organisation code.
fn is_ods(code: &str) -> bool {
    (2..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `POST /portal/me/sharing` (a form with repeated fields, so read as pairs).
pub async fn save_sharing(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    body: axum::body::Bytes,
) -> Result<Response, PortalError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    layout::check_csrf(&signed_in.session, csrf)?;
    let patient = own_patient(&signed_in)?;
    let values = |field: &str| -> BTreeSet<String> {
        pairs
            .iter()
            .filter(|(k, _)| k == field)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    let bad = |what: &str| PortalError::Invalid(format!("{what} is not one you can choose"));
    let withheld_organizations = values("withhold_org");
    let blocked_organizations = values("block_org");
    if !withheld_organizations
        .iter()
        .chain(&blocked_organizations)
        .all(|c| is_ods(c))
    {
        return Err(bad("An organisation"));
    }
    let withheld_categories = values("withhold_category");
    if !withheld_categories
        .iter()
        .all(|c| SENSITIVE_CATEGORIES.contains(&c.as_str()))
    {
        return Err(bad("A kind of information"));
    }
    let choices = ConsentChoices {
        opt_out: pairs.iter().any(|(k, v)| k == "opt_out" && !v.is_empty()),
        withheld_organizations,
        blocked_organizations,
        withheld_categories,
    };
    let consent = consent_resource(&patient, &choices, &now_instant());
    state
        .fhir
        .post(&signed_in.caller(), "/fhir/Consent", &consent)
        .await?
        .success()?;
    Ok(Redirect::to("/portal/me/sharing?saved=1").into_response())
}

/// The value of a part of an `$access-log` entry.
fn part<'a>(access: &'a Value, name: &str) -> Option<&'a Value> {
    access["part"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

fn part_text(access: &Value, name: &str) -> String {
    part(access, name)
        .and_then(|p| {
            ["valueString", "valueCode", "valueInstant"]
                .iter()
                .find_map(|f| p[*f].as_str())
        })
        .unwrap_or_default()
        .to_string()
}

fn purpose_words(code: &str) -> String {
    match code {
        "TREAT" => "Your care".into(),
        "ETREAT" => "Emergency care".into(),
        "HOPERAT" | "OPERAT" => "Running the service".into(),
        "PATRQT" => "You asked".into(),
        "" => "Not given".into(),
        other => other.to_string(),
    }
}

fn what_words(code: &str) -> String {
    match code {
        "read" | "vread" => "Opened part of your record".into(),
        "search-type" | "search" => "Searched your record".into(),
        "summary" | "$summary" => "Looked at your summary".into(),
        "everything" | "$everything" => "Looked at your whole record".into(),
        "create" => "Added to your record".into(),
        "update" => "Changed your record".into(),
        "break-glass" | "$break-glass" => "Asked for emergency access".into(),
        other => other.trim_start_matches('$').replace('-', " "),
    }
}

/// `GET /portal/me/access-log`.
pub async fn access_log(
    State(state): State<PortalState>,
    signed_in: SignedIn,
) -> Result<Markup, PortalError> {
    let patient = own_patient(&signed_in)?;
    let answer = state
        .fhir
        .get(
            &signed_in.caller(),
            &format!("/fhir/Patient/{patient}/$access-log"),
        )
        .await?
        .success()?;
    let accesses: Vec<&Value> = answer.body["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "access")
        .collect();
    let body = html! {
        h1 { "Who looked at my record" }
        p class="lead" { "Every time someone opens your record it is recorded. This list shows which organisation it was, their role, when and why. It does not name the person." }
        @if accesses.is_empty() {
            p id="no-access" { "Nobody has looked at your record yet." }
        } @else {
            div class="table-scroll" {
                table class="data-table" id="access-log" {
                    caption class="visually-hidden" { "Who looked at my record" }
                    thead { tr {
                        th scope="col" { "Organisation" }
                        th scope="col" { "Role" }
                        th scope="col" { "When" }
                        th scope="col" { "Why" }
                        th scope="col" { "What" }
                        th scope="col" { "Emergency" }
                    } }
                    tbody {
                        @for a in &accesses {
                            tr {
                                td { (non_empty(part_text(a, "organization"), "Not recorded")) }
                                td { (non_empty(part_text(a, "role").replace('-', " "), "Not recorded")) }
                                td { (text::date_time(&part_text(a, "when"))) }
                                td { (purpose_words(&part_text(a, "purpose"))) }
                                td { (what_words(&part_text(a, "what"))) }
                                td {
                                    @if part(a, "emergency").and_then(|p| p["valueBoolean"].as_bool()) == Some(true) {
                                        strong { "Yes, emergency access" }
                                    } @else { "No" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(
        "Who looked at my record",
        Some(&signed_in.session),
        body,
    ))
}

fn non_empty(value: String, otherwise: &str) -> String {
    if value.is_empty() {
        otherwise.to_string()
    } else {
        value
    }
}
