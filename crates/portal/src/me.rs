//! The person-held record: what a patient (or someone acting for them) sees and does in the
//! portal, in plain language.
//!
//! Owns the `/portal/me` pages: my record (from the federated `Patient/[id]/$summary`,
//! <https://build.fhir.org/ig/HL7/fhir-ips/OperationDefinition-summary.html>), test results with
//! trends, upcoming appointments (federated `Appointment?patient=`,
//! <https://hl7.org/fhir/R4/appointment.html>), entering readings and "what matters to me"
//! (Observation or Goal plus a Provenance in one transaction,
//! <https://hl7.org/fhir/R4/http.html#transaction>), sharing choices (a Consent,
//! <https://hl7.org/fhir/R4/consent.html>) and who looked at my record (`$access-log`).
//!
//! Does not: decide what the person may see or write (the FHIR API does, with their token, and
//! tags what they write as patient-entered), or render the clinician's single view (`view`).

mod entries;
mod record;
mod sharing;

use axum::Router;
use axum::routing::get;
use serde_json::Value;

use crate::PortalState;
use crate::error::PortalError;
use crate::signin::SignedIn;

pub fn routes() -> Router<PortalState> {
    Router::new()
        .route("/portal/me", get(record::my_record))
        .route("/portal/me/results", get(record::results))
        .route("/portal/me/appointments", get(record::appointments))
        .route(
            "/portal/me/readings",
            get(entries::readings).post(entries::save_reading),
        )
        .route(
            "/portal/me/what-matters",
            get(entries::what_matters).post(entries::save_what_matters),
        )
        .route(
            "/portal/me/sharing",
            get(sharing::sharing).post(sharing::save_sharing),
        )
        .route("/portal/me/access-log", get(sharing::access_log))
}

/// The hub Patient id of the signed-in person's own record; staff have none here.
fn own_patient(signed_in: &SignedIn) -> Result<String, PortalError> {
    let session = &signed_in.session;
    if !session.is_citizen() {
        return Err(PortalError::Forbidden(
            "These pages are for patients looking at their own record.".into(),
        ));
    }
    session
        .patient
        .clone()
        .or_else(|| session.proxy_for.first().cloned())
        .filter(|id| is_id(id))
        .ok_or_else(|| {
            PortalError::Forbidden("Your account is not linked to a health record yet.".into())
        })
}

/// Whether `id` is a FHIR id (so it can go in a path as it is).
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The resources of a Bundle's entries.
fn resources(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| &e["resource"])
                .filter(|r| r.is_object())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the answer's OperationOutcome (as a search's `outcome` entry or the body) says
/// something was withheld.
fn has_suppressed(body: &Value) -> bool {
    let outcomes = resources(body)
        .into_iter()
        .filter(|r| r["resourceType"] == "OperationOutcome")
        .chain(std::iter::once(body).filter(|b| b["resourceType"] == "OperationOutcome"));
    for outcome in outcomes {
        if outcome["issue"]
            .as_array()
            .is_some_and(|issues| issues.iter().any(|i| i["code"] == "suppressed"))
        {
            return true;
        }
    }
    false
}

/// Now as a FHIR instant (UTC, seconds).
fn now_instant() -> String {
    concord_fhir::primitive::format_instant(crate::session::now().saturating_mul(1000))
}

/// Today as a FHIR date.
fn today() -> String {
    now_instant().chars().take(10).collect()
}

/// Where an item came from, in plain words.
fn recorded_by(resource: &Value) -> String {
    if crate::text::is_patient_entered(resource) {
        return "You".into();
    }
    crate::text::source_name(resource).unwrap_or_else(|| "This care record service".into())
}
