//! What can go wrong on a page, and the page each problem becomes.
//!
//! Owns the portal's closed error vocabulary and its one mapping to an HTTP status and a page
//! (or, for a missing sign-in, a redirect to sign in). Messages are the portal's own sentences or
//! the FHIR API's OperationOutcome text, which never carries patient data. Does not: log (the
//! FHIR API already audited and logged the call behind the page).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde_json::Value;

use crate::layout;

#[derive(Debug, Clone)]
pub enum PortalError {
    /// Nobody is signed in (or the session ended): sign in, then come back to this path.
    SignIn {
        return_to: String,
    },
    /// The signed-in person may not do this.
    Forbidden(String),
    NotFound(String),
    /// The form was filled in wrongly; the message says which field and why.
    Invalid(String),
    /// A form came without this session's CSRF token.
    Csrf,
    /// The FHIR API refused or failed; its status and what its OperationOutcome said.
    Fhir(StatusCode, String),
    Internal,
}

impl PortalError {
    /// The error for a FHIR answer that was not a success.
    pub fn from_answer(answer: &crate::fhir::Answer) -> PortalError {
        let message = outcome_text(&answer.body)
            .unwrap_or_else(|| "The record service could not answer.".into());
        match answer.status {
            StatusCode::FORBIDDEN => PortalError::Forbidden(message),
            StatusCode::NOT_FOUND | StatusCode::GONE => PortalError::NotFound(message),
            StatusCode::UNAUTHORIZED => PortalError::SignIn {
                return_to: "/portal/".into(),
            },
            status => PortalError::Fhir(status, message),
        }
    }
}

/// The text of an OperationOutcome's first error issue (or first issue).
pub fn outcome_text(body: &Value) -> Option<String> {
    if body["resourceType"] != "OperationOutcome" {
        return None;
    }
    let issues = body["issue"].as_array()?;
    let issue = issues
        .iter()
        .find(|i| matches!(i["severity"].as_str(), Some("error" | "fatal")))
        .or_else(|| issues.first())?;
    issue["details"]["text"]
        .as_str()
        .or_else(|| issue["diagnostics"].as_str())
        .map(str::to_string)
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PortalError::SignIn { return_to } => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", &return_to)
                    .finish();
                return Redirect::to(&format!("/portal/login?{query}")).into_response();
            }
            PortalError::Forbidden(m) => (StatusCode::FORBIDDEN, "Access refused", m),
            PortalError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            PortalError::Invalid(m) => (StatusCode::BAD_REQUEST, "Please check the form", m),
            PortalError::Csrf => (
                StatusCode::FORBIDDEN,
                "The form expired",
                "The form expired or did not come from this portal. Go back, reload the page and try again."
                    .into(),
            ),
            PortalError::Fhir(status, m) => (
                if status.is_server_error() {
                    StatusCode::BAD_GATEWAY
                } else {
                    status
                },
                "Something went wrong",
                m,
            ),
            PortalError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be shown. Try again in a moment.".into(),
            ),
        };
        let body = html! {
            h1 { (title) }
            p { (message) }
            p { a href="/portal/" { "Back to the start" } }
        };
        (status, layout::page(title, None, body)).into_response()
    }
}
