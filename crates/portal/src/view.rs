//! The clinician's and care worker's single view of one person: `GET /portal/patient/{id}`.
//!
//! Owns: fetching the person's federated summary (`GET /fhir/Patient/{id}/$summary`, the IPS
//! `$summary` operation, <https://hl7.org/fhir/uv/ips/OperationDefinition-summary.html>, a
//! `document` Bundle, <https://hl7.org/fhir/R4/documents.html>), turning it into the page with
//! the pure [`render`] (benchmarked in `benches/render.rs`), the `Server-Timing` header, the
//! "no care relationship" page with the break-glass form, and its POST handler, which calls
//! `POST /fhir/Patient/{id}/$break-glass` (Concord's operation, a Parameters resource with
//! `reason` valueCode and `text` valueString, <https://hl7.org/fhir/R4/parameters.html>).
//! Does not: decide access, consent or what is withheld (the FHIR API does; a 403 answer is the
//! only way this page learns there is no relationship), or log anything about the person.

mod banner;
mod break_glass;
mod model;
mod sections;

use std::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;

use crate::error::PortalError;
use crate::session::Session;
use crate::signin::SignedIn;
use crate::{PortalState, layout};

pub use model::Record;

pub fn routes() -> Router<PortalState> {
    Router::new()
        .route("/portal/patient/{id}", get(patient_view))
        .route(
            "/portal/patient/{id}/break-glass",
            post(break_glass::break_glass),
        )
}

/// What [`render`] needs besides the summary Bundle.
#[derive(Debug, Clone)]
pub struct ViewOptions<'a> {
    /// The hub Patient id the page is about.
    pub patient_id: &'a str,
    /// Today as `YYYY-MM-DD` (for ages): passed in so rendering stays pure.
    pub today: &'a str,
    /// Show end-of-life, ReSPECT and crisis plans first (paramedics and urgent care).
    pub urgent_first: bool,
    /// The record is open through a break-glass grant this session made; `Some(expiry text)`.
    pub break_glass: Option<String>,
    /// The `$everything?_type=Patient,RelatedPerson` searchset fetched beside the summary: the
    /// person's records at each source and their carers.
    pub related: Option<&'a Value>,
}

/// Whether the signed-in person works in urgent care: their plans come first.
pub fn urgent_first(session: &Session) -> bool {
    session.has_role("paramedic")
}

/// The single view as a whole page, from the `$summary` document Bundle. Pure: no I/O, no clock.
pub fn render(summary: &Value, options: &ViewOptions<'_>, session: Option<&Session>) -> Markup {
    let record = Record::read(summary, options.related);
    let name = record.patient_name();
    let title = if name.is_empty() {
        "Care record".to_string()
    } else {
        format!("{name}: care record")
    };
    let banner = banner::banner(&record, options.today);
    let body = html! {
        h1 { "Shared care record" }
        @if let Some(expires) = &options.break_glass {
            div id="break-glass-notice" class="warning-callout" role="status" {
                p {
                    strong { "You opened this record by breaking glass." }
                    " There is no recorded care relationship between you and this person. "
                    "Your access, your reason and everything you view are audited and reviewed by the privacy officer."
                    @if !expires.is_empty() { " Access ends " (expires) "." }
                }
            }
        }
        (sections::sources_bar(&record))
        (sections::withheld(&record))
        @if options.urgent_first {
            (sections::urgent_plans(&record, 2))
        }
        (sections::summary(&record, options.urgent_first))
        (sections::problems(&record))
        (sections::allergies(&record))
        (sections::medications(&record))
        (sections::results(&record))
        (sections::encounters(&record))
        (sections::documents(&record))
        (sections::care_plans(&record, !options.urgent_first))
        (sections::social_care(&record))
        (sections::immunizations(&record))
        (sections::procedures(&record))
    };
    layout::page_with_banner(&title, session, banner, body)
}

/// Today's date as `YYYY-MM-DD`, UTC.
pub fn today() -> String {
    let now_ms = crate::session::now().saturating_mul(1000);
    concord_fhir::primitive::format_instant(now_ms)
        .get(..10)
        .unwrap_or_default()
        .to_string()
}

/// `GET /portal/patient/{id}`: the single view, or the no-relationship page with the
/// break-glass form (status 403).
async fn patient_view(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    if !concord_fhir::primitive::is_id(&id) {
        return Err(PortalError::NotFound("There is no such record.".into()));
    }
    let caller = signed_in.caller();
    let summary_path = format!("/fhir/Patient/{id}/$summary");
    // The person's records at each source (to compare demographics) and carers, which the
    // summary document leaves out: `$everything` (<https://hl7.org/fhir/R4/patient-operation-everything.html>).
    let related_path = format!("/fhir/Patient/{id}/$everything?_type=Patient,RelatedPerson");
    let (summary, related) = tokio::join!(
        state.fhir.get(&caller, &summary_path),
        state.fhir.get(&caller, &related_path)
    );
    let summary = summary?;
    if summary.status == StatusCode::FORBIDDEN {
        let message = crate::error::outcome_text(&summary.body).unwrap_or_default();
        // The API names its break-glass URL when the refusal is for want of a relationship; the
        // form is offered only to roles the API lets break glass, so nobody is shown a form that
        // can only be refused.
        if message.contains("$break-glass") && may_break_glass(&signed_in.session) {
            return Ok(break_glass::offer(&signed_in.session, &id, None));
        }
        return Err(PortalError::from_answer(&summary));
    }
    if !summary.ok() {
        return Err(PortalError::from_answer(&summary));
    }
    // Both calls ran at once: the fetch took as long as the slower.
    let fetch = match &related {
        Ok(answer) => summary.elapsed.max(answer.elapsed),
        Err(_) => summary.elapsed,
    };
    // Carers are an extra: a record without them (or a refusal) still shows.
    let related = related.ok().filter(|a| a.ok()).map(|a| a.body);
    let today = today();
    let options = ViewOptions {
        patient_id: &id,
        today: &today,
        urgent_first: urgent_first(&signed_in.session),
        break_glass: break_glass::active(&state.sessions, &signed_in.session, &id),
        related: related.as_ref(),
    };
    let started = Instant::now();
    let page = render(&summary.body, &options, Some(&signed_in.session));
    let render_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut response = page.into_response();
    let timing = format!(
        "fetch;dur={:.1}, render;dur={render_ms:.1}",
        fetch.as_secs_f64() * 1000.0
    );
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", value);
    }
    Ok(response)
}

/// The roles `concord_access` lets break glass: clinicians, nurses, paramedics and social workers.
fn may_break_glass(session: &crate::session::Session) -> bool {
    ["clinician", "nurse", "paramedic", "social-worker"]
        .iter()
        .any(|role| session.has_role(role))
}
