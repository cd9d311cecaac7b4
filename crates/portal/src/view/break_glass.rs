//! Breaking glass: the page a clinician sees when the FHIR API refuses a record for want of a
//! care relationship (403), its form, and `POST /portal/patient/{id}/break-glass`, which calls
//! Concord's `POST /fhir/Patient/{id}/$break-glass` operation with a Parameters resource
//! (<https://hl7.org/fhir/R4/parameters.html>: `reason` valueCode, one of
//! [`concord_access::BreakGlassReason::REASONS`], and `text` valueString).
//!
//! Owns: the form, its checks, and remembering which grants this portal session obtained so the
//! view can say the record is open by break-glass. The session cannot see the hub's grants, and
//! the API does not say on a read why it permitted it, so the portal remembers what it itself
//! asked for and was granted (the API's answer carries the grant's `expires`), per session and
//! person, until that expiry or sign-out. A grant made outside the portal (another app with
//! the same user) is not shown: the notice errs on the side of silence only for access the
//! portal did not open. Does not: grant anything (the hub decides, audits, and time-boxes).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use concord_access::BreakGlassReason;
use maud::html;
use serde_json::json;

use crate::error::PortalError;
use crate::session::{Session, Sessions, now};
use crate::signin::SignedIn;
use crate::{PortalState, layout};

/// The longest reason text the form accepts.
pub const MAX_TEXT: usize = 500;

/// The expiry text of a break-glass grant this session obtained for `patient`, if in force.
pub fn active(sessions: &Sessions, session: &Session, patient: &str) -> Option<String> {
    sessions.grant(&session.id, patient)
}

fn remember(sessions: &Sessions, session: &Session, patient: &str, expires_instant: &str) {
    let expires = concord_fhir::primitive::date_range(expires_instant)
        .map(|r| r.low / 1000)
        // A grant whose expiry the portal cannot read is shown for the default hour at most.
        .unwrap_or_else(|| now() + 3600);
    let text = crate::text::date_time(expires_instant);
    let text = if text.is_empty() {
        String::new()
    } else {
        format!("{text} UTC")
    };
    sessions.remember_grant(&session.id, patient, expires, text);
}

/// The 403 page: no care relationship, and the form to break glass (with `error` shown when the
/// form came back wrong).
pub fn offer(session: &Session, patient: &str, error: Option<(&str, &str)>) -> Response {
    let action = format!("/portal/patient/{patient}/break-glass");
    let body = html! {
        h1 { "You do not have a recorded care relationship with this person" }
        p class="lead" {
            "You do not have a recorded care relationship with this person, so their shared record is not open to you."
        }
        p {
            "If you need it to care for them now, you can break glass. You must give a reason. "
            "Your access is time-limited, recorded, and reviewed by the privacy officer; the person can see it in their access log."
        }
        @if let Some((field, message)) = error {
            div class="error-summary" role="alert" aria-labelledby="error-summary-title" {
                h2 id="error-summary-title" { "There is a problem" }
                ul { li { a href={"#" (field)} { (message) } } }
            }
        }
        form id="break-glass" method="post" action=(action) class="card card-urgent" {
            (layout::csrf_field(session))
            div class=(if error.is_some_and(|(f, _)| f == "reason") { "field field-error" } else { "field" }) {
                label for="reason" { "Reason" }
                select id="reason" name="reason" required {
                    option value="" { "Choose a reason" }
                    @for reason in BreakGlassReason::REASONS {
                        option value=(reason.code()) { (reason.display()) }
                    }
                }
            }
            div class=(if error.is_some_and(|(f, _)| f == "text") { "field field-error" } else { "field" }) {
                label for="text" {
                    "Why you need this record now"
                    span class="hint" id="text-hint" { "In your own words, up to " (MAX_TEXT) " characters." }
                }
                @if let Some(("text", message)) = error {
                    span class="error-message" id="text-error" { (message) }
                }
                textarea id="text" name="text" required maxlength=(MAX_TEXT) aria-describedby="text-hint" {}
            }
            button type="submit" class="button button-warning" { "Break glass and open the record" }
        }
        p { a href="/portal/search" { "Back to finding a person" } }
    };
    (
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::FORBIDDEN
        },
        layout::page("No care relationship", Some(session), body),
    )
        .into_response()
}

/// `POST /portal/patient/{id}/break-glass`: checks the form, asks the FHIR API for the grant,
/// and on success remembers it and goes to the record (303).
pub async fn break_glass(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let session = &signed_in.session;
    layout::check_csrf(session, form.get("csrf").map(String::as_str))?;
    if !concord_fhir::primitive::is_id(&id) {
        return Err(PortalError::NotFound("There is no such record.".into()));
    }
    let reason = form.get("reason").map(String::as_str).unwrap_or_default();
    if BreakGlassReason::parse(reason).is_none() {
        return Ok(offer(
            session,
            &id,
            Some(("reason", "Choose the reason you need to break glass")),
        ));
    }
    let text = form.get("text").map(|t| t.trim()).unwrap_or_default();
    if text.is_empty() {
        return Ok(offer(
            session,
            &id,
            Some((
                "text",
                "Enter why you need this record now, in your own words",
            )),
        ));
    }
    if text.chars().count() > MAX_TEXT {
        return Ok(offer(
            session,
            &id,
            Some((
                "text",
                "Enter why you need this record in 500 characters or fewer",
            )),
        ));
    }
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "reason", "valueCode": reason},
            {"name": "text", "valueString": text},
        ],
    });
    let answer = state
        .fhir
        .post(
            &signed_in.caller(),
            &format!("/fhir/Patient/{id}/$break-glass"),
            &parameters,
        )
        .await?
        .success()?;
    let expires = answer.body["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "expires")
        .and_then(|p| p["valueInstant"].as_str())
        .map(str::to_string)
        .unwrap_or_default();
    remember(&state.sessions, session, &id, &expires);
    Ok(Redirect::to(&format!("/portal/patient/{id}")).into_response())
}
