//! Finding a person: `GET /portal/search`, for clinicians and care workers.
//!
//! Owns: the search form (`nhs_number`, or `family`, `given`, `birthdate`, `postcode`), checking
//! it, and the results table (`table#results`, one row per person, with the match confidence).
//! An NHS number is looked up exactly with an ordinary search,
//! `GET /fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N`
//! (<https://hl7.org/fhir/R4/patient.html#search>), shown as a 100% match; demographics go to
//! the master patient index with `POST /fhir/Patient/$match`
//! (<https://hl7.org/fhir/R4/patient-operation-match.html>), whose entries carry `search.score`
//! and the `match-grade` extension (docs/identity.md). Does not: decide who may be found (the
//! FHIR API does), open a record (the single view does), or log search terms.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::error::PortalError;
use crate::signin::SignedIn;
use crate::{PortalState, layout, text};

const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
const MATCH_GRADE_URL: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

pub fn routes() -> Router<PortalState> {
    Router::new().route("/portal/search", get(search))
}

/// Whether `digits` (ten digits) passes the NHS number's modulus 11 check.
pub fn nhs_number_valid(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    if bytes.len() != 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = bytes[..9]
        .iter()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * (10 - i as u32))
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == u32::from(bytes[9] - b'0')
}

/// The NHS number typed in, as ten digits, or the message saying what is wrong.
pub fn parse_nhs_number(input: &str) -> Result<String, &'static str> {
    let digits: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("Enter the NHS number using digits only, like 943 476 5919");
    }
    if digits.len() != 10 {
        return Err("Enter the NHS number as 10 digits, like 943 476 5919");
    }
    if !nhs_number_valid(&digits) {
        return Err(
            "Enter a valid NHS number: this one's check digit is wrong, so it may have been mistyped",
        );
    }
    Ok(digits)
}

/// Whether `value` is a real calendar date written `YYYY-MM-DD`.
fn valid_date(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
        return false;
    }
    concord_fhir::primitive::date_range(value).is_some()
}

/// One person found, and how sure the match is.
struct Found {
    patient: Value,
    /// 0 to 1.
    score: f64,
    grade: Option<String>,
}

fn field<'a>(query: &'a HashMap<String, String>, name: &str) -> &'a str {
    query.get(name).map(|v| v.trim()).unwrap_or_default()
}

async fn search(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let nhs = field(&query, "nhs_number");
    let family = field(&query, "family");
    let given = field(&query, "given");
    let birthdate = field(&query, "birthdate");
    let postcode = field(&query, "postcode");
    let asked = [nhs, family, given, birthdate, postcode]
        .iter()
        .any(|v| !v.is_empty());
    if !asked {
        return Ok(page(&signed_in, &query, &[], None).into_response());
    }
    let mut errors: Vec<(&str, &str)> = Vec::new();
    let found = if !nhs.is_empty() {
        match parse_nhs_number(nhs) {
            Ok(digits) => Some(by_nhs_number(&state, &signed_in, &digits).await?),
            Err(message) => {
                errors.push(("nhs_number", message));
                None
            }
        }
    } else {
        if family.is_empty() {
            errors.push((
                "family",
                "Enter the family name (or search by NHS number instead)",
            ));
        }
        if birthdate.is_empty() {
            errors.push((
                "birthdate",
                "Enter the date of birth as YYYY-MM-DD, for example 1950-03-27",
            ));
        } else if !valid_date(birthdate) {
            errors.push((
                "birthdate",
                "Enter the date of birth as a real date written YYYY-MM-DD, for example 1950-03-27",
            ));
        }
        if errors.is_empty() {
            Some(by_match(&state, &signed_in, family, given, birthdate, postcode).await?)
        } else {
            None
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, page(&signed_in, &query, &errors, found.as_deref())).into_response())
}

/// `GET /fhir/Patient?identifier=...|N`: the records with that NHS number, one row per person.
async fn by_nhs_number(
    state: &PortalState,
    signed_in: &SignedIn,
    digits: &str,
) -> Result<Vec<Found>, PortalError> {
    let path = format!("/fhir/Patient?identifier={NHS_NUMBER_SYSTEM}%7C{digits}&_count=20");
    let answer = state
        .fhir
        .get(&signed_in.caller(), &path)
        .await?
        .success()?;
    Ok(people(
        entries(&answer.body)
            .map(|e| Found {
                patient: e["resource"].clone(),
                score: 1.0,
                grade: Some("certain".into()),
            })
            .collect(),
    ))
}

/// `POST /fhir/Patient/$match` with the demographics as a Patient.
async fn by_match(
    state: &PortalState,
    signed_in: &SignedIn,
    family: &str,
    given: &str,
    birthdate: &str,
    postcode: &str,
) -> Result<Vec<Found>, PortalError> {
    let mut name = json!({ "family": family });
    if !given.is_empty() {
        name["given"] = json!([given]);
    }
    let mut patient = json!({
        "resourceType": "Patient",
        "name": [name],
        "birthDate": birthdate,
    });
    if !postcode.is_empty() {
        patient["address"] = json!([{ "postalCode": postcode }]);
    }
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            { "name": "resource", "resource": patient },
            { "name": "count", "valueInteger": 20 },
        ],
    });
    let answer = state
        .fhir
        .post(&signed_in.caller(), "/fhir/Patient/$match", &parameters)
        .await?
        .success()?;
    Ok(people(
        entries(&answer.body)
            .map(|e| Found {
                patient: e["resource"].clone(),
                score: e["search"]["score"].as_f64().unwrap_or_default(),
                grade: text::extension(&e["search"], MATCH_GRADE_URL)
                    .and_then(|x| x["valueCode"].as_str())
                    .map(str::to_string),
            })
            .collect(),
    ))
}

fn entries(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] == "Patient")
}

/// One row per person, best first. Records with the same NHS number are the same person (the
/// index links them), so only the best-scoring one is kept. A record without an NHS number (a
/// council's, say) joins a row only when its family name, given name and date of birth are the
/// same as that row's: `$match` does not say which golden person a record belongs to, and two
/// people wrongly shown as one would hide one of them, so anything less stays a row of its own.
fn people(found: Vec<Found>) -> Vec<Found> {
    fn same_demographics(a: &Value, b: &Value) -> bool {
        let key = |p: &Value| {
            (
                p["name"][0]["family"].as_str().map(str::to_lowercase),
                p["name"][0]["given"][0].as_str().map(str::to_lowercase),
                p["birthDate"].as_str().map(str::to_string),
            )
        };
        let (ka, kb) = (key(a), key(b));
        ka.0.is_some() && ka.1.is_some() && ka.2.is_some() && ka == kb
    }
    let mut rows: Vec<Found> = Vec::new();
    let (with_number, without): (Vec<Found>, Vec<Found>) = found
        .into_iter()
        .partition(|f| text::patient_nhs_number(&f.patient).is_some());
    for f in with_number {
        let key = text::patient_nhs_number(&f.patient);
        match rows
            .iter_mut()
            .find(|r| text::patient_nhs_number(&r.patient) == key)
        {
            Some(row) if row.score >= f.score => {}
            Some(row) => *row = f,
            None => rows.push(f),
        }
    }
    for f in without {
        if !rows
            .iter()
            .any(|r| same_demographics(&r.patient, &f.patient))
        {
            rows.push(f);
        }
    }
    rows.sort_by(|a, b| b.score.total_cmp(&a.score));
    rows
}

fn grade_words(grade: Option<&str>) -> &'static str {
    match grade {
        Some("certain") => "certain",
        Some("probable") => "probable",
        Some("possible") => "possible",
        Some("certainly-not") => "not a match",
        _ => "unknown",
    }
}

fn page(
    signed_in: &SignedIn,
    query: &HashMap<String, String>,
    errors: &[(&str, &str)],
    found: Option<&[Found]>,
) -> Markup {
    let error_for = |name: &str| errors.iter().find(|(f, _)| *f == name).map(|(_, m)| *m);
    let input = |name: &'static str,
                 label: &'static str,
                 hint: &'static str,
                 kind: &'static str| {
        let error = error_for(name);
        let hint_id = format!("{name}-hint");
        let error_id = format!("{name}-error");
        let described = if error.is_some() {
            format!("{hint_id} {error_id}")
        } else {
            hint_id.clone()
        };
        html! {
            div class=(if error.is_some() { "field field-error" } else { "field" }) {
                label for=(name) { (label) span class="hint" id=(hint_id) { (hint) } }
                @if let Some(message) = error { span class="error-message" id=(error_id) { (message) } }
                input type=(kind) id=(name) name=(name) value=(field(query, name)) aria-describedby=(described)
                    aria-invalid=(if error.is_some() { "true" } else { "false" });
            }
        }
    };
    let body = html! {
        h1 { "Find a person" }
        @if !errors.is_empty() {
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" {
                h2 id="error-summary-title" { "There is a problem" }
                ul { @for (f, m) in errors { li { a href={"#" (f)} { (m) } } } }
            }
        }
        form method="get" action="/portal/search" class="card" {
            h2 { "By NHS number" }
            (input("nhs_number", "NHS number", "10 digits, for example 943 476 5919", "text"))
            h2 { "Or by name and date of birth" }
            div class="fields-row" {
                (input("family", "Family name", "Surname", "text"))
                (input("given", "Given name", "Optional", "text"))
                (input("birthdate", "Date of birth", "YYYY-MM-DD, for example 1950-03-27", "text"))
                (input("postcode", "Postcode", "Optional, for example LS1 4AP", "text"))
            }
            button type="submit" class="button" { "Search" }
        }
        @if let Some(found) = found {
            @if found.is_empty() {
                p id="no-results" { "No one matched. Check the details and try again, or search by NHS number." }
            } @else {
                div class="table-scroll" {
                    table id="results" class="data-table" {
                        caption { (found.len()) @if found.len() == 1 { " person found" } @else { " people found" } }
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "NHS number" } th scope="col" { "Born" }
                            th scope="col" { "Gender" } th scope="col" { "Address" } th scope="col" { "Match" }
                        } }
                        tbody {
                            @for f in found {
                                @let id = f.patient["id"].as_str().unwrap_or_default();
                                @let name = text::name(&f.patient["name"]);
                                tr {
                                    td { a href={"/portal/patient/" (id)} { @if name.is_empty() { "Name not recorded" } @else { (name) } } }
                                    td { (text::patient_nhs_number(&f.patient).map(|n| text::nhs_number(&n)).unwrap_or_default()) }
                                    td { (f.patient["birthDate"].as_str().map(text::date).unwrap_or_default()) }
                                    td { (f.patient["gender"].as_str().unwrap_or_default()) }
                                    td { (text::address(&f.patient["address"])) }
                                    td { ((f.score * 100.0).round() as i64) "% " span class="source" { (grade_words(f.grade.as_deref())) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Find a person", Some(&signed_in.session), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_checked() {
        assert_eq!(
            parse_nhs_number("943 476 5919").as_deref(),
            Ok("9434765919")
        );
        assert!(parse_nhs_number("943 476 5918").is_err());
        assert!(parse_nhs_number("12345").is_err());
        assert!(parse_nhs_number("94347659A9").is_err());
    }

    #[test]
    fn one_row_per_person() {
        let record = |id: &str, nhs: Option<&str>, given: &str, score: f64| {
            let mut patient = json!({"resourceType": "Patient", "id": id,
                "name": [{"family": "Wilson", "given": [given]}], "birthDate": "1941-02-26"});
            if let Some(n) = nhs {
                patient["identifier"] = json!([{"system": NHS_NUMBER_SYSTEM, "value": n}]);
            }
            Found {
                patient,
                score,
                grade: None,
            }
        };
        let rows = people(vec![
            record("council", None, "Patricia", 0.998),
            record("gp", Some("9991997598"), "Patricia", 0.998),
            record("acute", Some("9991997598"), "Pat", 0.994),
            record("other", None, "Peter", 0.6),
        ]);
        let ids: Vec<&str> = rows
            .iter()
            .map(|r| r.patient["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["gp", "other"]);
    }

    #[test]
    fn dates_must_be_real() {
        assert!(valid_date("1950-03-27"));
        assert!(!valid_date("1950-02-30"));
        assert!(!valid_date("27/03/1950"));
    }
}
