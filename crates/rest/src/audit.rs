//! The audit record of every request (issue 6): exactly one AuditEvent per access attempt,
//! refused ones included, written durably before the response leaves.
//!
//! Owns: turning a finished request (its route, method, status, the caller and what the access
//! layer noted on the context) into one `AuditRecord`, and refusing to answer (503) when the
//! audit trail cannot take it: a shared care record that cannot say who looked must not show.
//! Does not: build the AuditEvent or the hash chain (`concord-audit`), store it (the hub's
//! `AuditTrail`), or decide access (the hub does, and notes the decision on the context).
//!
//! The probes, metrics and the public discovery documents are not audited: they carry no one's
//! data and would drown the trail.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concord_audit::{Action, Agent, AuditRecord, Outcome};
use concord_fhir::{Error, ErrorKind, RequestContext};

use crate::Shared;
use crate::error::ApiError;

/// Paths never audited (see the module doc).
fn is_unaudited(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/fhir/metadata")
        || path.contains("/.well-known/")
        || path.starts_with("/.well-known/")
        || path == "/oauth/jwks"
}

/// The FHIR restful-interaction code and action of a request, from its route template.
fn interaction(method: &Method, route: &str, path: &str) -> (String, Action, Option<String>) {
    let operation = path
        .rsplit('/')
        .next()
        .filter(|last| last.starts_with('$'))
        .map(str::to_string);
    let (code, action) = match (method.as_str(), route) {
        // Break-glass has its own code, so privacy officers find it with `subtype=break-glass`.
        (_, r) if r.contains("{operation}") && operation.as_deref() == Some("$break-glass") => {
            ("break-glass", Action::Execute)
        }
        (_, r) if operation.is_some() && r.contains("{operation}") => {
            ("operation", Action::Execute)
        }
        ("GET", "/fhir/{resource_type}/{id}") => ("read", Action::Read),
        ("GET", "/fhir/{resource_type}/{id}/_history/{version_id}") => ("vread", Action::Read),
        ("GET", r) if r.ends_with("_history") => ("history", Action::Read),
        ("GET", "/fhir/{resource_type}") | ("POST", "/fhir/{resource_type}/_search") => {
            ("search-type", Action::Read)
        }
        ("GET", "/fhir") | ("GET", "/fhir/") | ("POST", "/fhir/_search") => {
            ("search-system", Action::Read)
        }
        ("POST", "/fhir") | ("POST", "/fhir/") => ("transaction", Action::Execute),
        ("POST", "/fhir/{resource_type}") => ("create", Action::Create),
        ("PUT", _) => ("update", Action::Update),
        ("PATCH", _) => ("patch", Action::Update),
        ("DELETE", _) => ("delete", Action::Delete),
        ("POST", "/hl7v2") => ("create", Action::Create),
        ("POST", r) if r.starts_with("/oauth/") => ("login", Action::Execute),
        (_, _) => ("other", Action::Execute),
    };
    (code.to_string(), action, operation)
}

/// The resource type and id a FHIR path names, when it names them.
fn resource_of(path: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = path.strip_prefix("/fhir/") else {
        return (None, None);
    };
    let mut parts = rest.split('/');
    let resource_type = parts
        .next()
        .filter(|t| t.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .map(str::to_string);
    let id = parts
        .next()
        .filter(|id| !id.starts_with('$') && !id.starts_with('_'))
        .map(str::to_string);
    let id = id.filter(|_| resource_type.is_some());
    (resource_type, id)
}

fn agent(ctx: Option<&RequestContext>) -> Agent {
    match ctx {
        Some(ctx) => concord_hub::audit::agent_of(&ctx.actor),
        // Refused before anyone was identified.
        None => Agent {
            subject: "anonymous".into(),
            kind: "user".into(),
            role: None,
            organization: None,
            client_id: None,
        },
    }
}

/// Middleware: one audit record per request, durable before the response is returned.
pub async fn record(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let Some(trail) = state.hub.audit().cloned() else {
        return next.run(request).await;
    };
    if is_unaudited(&path) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let query = request.uri().query().map(str::to_string);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let recorded_ms = state.hub.now_ms();
    let mut response = next.run(request).await;
    // The authentication layer hands the context back on the response (it is built inside).
    let ctx = response.extensions_mut().remove::<RequestContext>();
    let status = response.status();
    let facts = ctx.as_ref().map(|c| c.note.facts()).unwrap_or_default();
    let (interaction, action, operation) = interaction(&method, &route, &path);
    let (resource_type, resource_id) = resource_of(&path);
    let outcome = if status.is_success() || status.is_redirection() {
        Outcome::Success
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        Outcome::Denied
    } else {
        Outcome::Failed
    };
    let record = AuditRecord {
        recorded_ms,
        request_id,
        action,
        interaction,
        operation,
        outcome,
        status: status.as_u16(),
        agent: agent(ctx.as_ref()),
        purpose: ctx
            .as_ref()
            .map_or_else(|| "TREAT".to_string(), |c| c.purpose.0.clone()),
        patients: facts.patients.into_iter().collect(),
        resource_type,
        resource_id,
        query,
        break_glass: facts.break_glass,
        denied_reason: facts.denied,
        observer: trail.observer().to_string(),
    };
    match trail.record_async(record).await {
        Ok(_) => response,
        Err(error) => {
            tracing::error!(reason = %error, "the audit trail refused a record; the response is withheld");
            ApiError(Error::new(
                ErrorKind::Unavailable,
                "the audit trail is unavailable, so nothing can be shown; try again shortly",
            ))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_restful_interactions() {
        let cases = [
            (
                "GET",
                "/fhir/{resource_type}/{id}",
                "/fhir/Patient/1",
                "read",
            ),
            (
                "GET",
                "/fhir/{resource_type}",
                "/fhir/Observation",
                "search-type",
            ),
            (
                "POST",
                "/fhir/{resource_type}",
                "/fhir/Observation",
                "create",
            ),
            (
                "PUT",
                "/fhir/{resource_type}/{id}",
                "/fhir/Observation/1",
                "update",
            ),
            (
                "DELETE",
                "/fhir/{resource_type}/{id}",
                "/fhir/Observation/1",
                "delete",
            ),
            (
                "GET",
                "/fhir/{resource_type}/{id}/{operation}",
                "/fhir/Patient/1/$summary",
                "operation",
            ),
            ("POST", "/fhir", "/fhir", "transaction"),
            (
                "POST",
                "/fhir/{resource_type}/{id}/{operation}",
                "/fhir/Patient/1/$break-glass",
                "break-glass",
            ),
        ];
        for (method, route, path, expected) in cases {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            assert_eq!(interaction(&method, route, path).0, expected, "{route}");
        }
    }

    #[test]
    fn paths_name_their_resource() {
        assert_eq!(
            resource_of("/fhir/Patient/123/$summary"),
            (Some("Patient".into()), Some("123".into()))
        );
        assert_eq!(
            resource_of("/fhir/Observation"),
            (Some("Observation".into()), None)
        );
        assert_eq!(resource_of("/fhir/_history"), (None, None));
        assert_eq!(resource_of("/healthz"), (None, None));
    }
}
