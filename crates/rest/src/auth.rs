//! Bearer-token authentication: default deny on every endpoint the standard does not make public.
//!
//! Owns: reading `Authorization: Bearer` tokens, having the node's [`concord_auth::AuthServer`]
//! verify them (ES256, this node's key ring, external issuers), and turning their claims into
//! the [`RequestContext`] every service call takes; and which paths are public.
//!
//! Does not: sign or verify tokens itself (concord-auth does), decide what a caller may see (the
//! service layer does) or log token contents.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concord_fhir::context::{Actor, Purpose};
use concord_fhir::{Error, ErrorKind, RequestContext};

use crate::Shared;
use crate::error::ApiError;

pub use concord_auth::Claims;

/// Builds the request context from verified claims.
pub fn context_from_claims(claims: Claims, request_id: String) -> RequestContext {
    let scopes: Vec<String> = claims
        .scope
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let actor = if claims.kind == "system" {
        Actor::System {
            name: claims.sub,
            scopes,
        }
    } else {
        Actor::User {
            id: claims.sub,
            roles: claims.roles,
            organization: claims.org,
            scopes,
            patient: claims.patient,
            proxy_for: claims.proxy_for,
            client_id: claims.client_id,
        }
    };
    RequestContext::new(
        request_id,
        actor,
        Purpose(claims.purpose.unwrap_or_else(|| "TREAT".into())),
    )
}

/// Paths anyone may read: the CapabilityStatement (the spec requires it to be public), the
/// operational probes (they carry no patient data), and the authorization server's discovery
/// documents, JWKS and OAuth endpoints (public by SMART and OpenID Connect; the OAuth endpoints
/// authenticate their callers themselves).
fn is_public(path: &str) -> bool {
    matches!(path, "/fhir/metadata" | "/healthz" | "/readyz" | "/metrics")
        || concord_auth::is_public_path(path)
}

/// Middleware: verifies the bearer token and puts the [`RequestContext`] into the request.
pub async fn require_auth(
    State(state): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    if is_public(request.uri().path()) {
        request
            .extensions_mut()
            .insert(RequestContext::system("anonymous", request_id));
        return next.run(request).await;
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 7235 section 2.1).
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token));
    let result = match token {
        None => Err(Error::new(
            ErrorKind::Unauthenticated,
            "this endpoint requires a bearer token (Authorization: Bearer ...)",
        )),
        Some(token) => state.auth.verify_async(token.trim()).await,
    };
    match result {
        Ok(claims) => {
            let ctx = context_from_claims(claims, request_id);
            request.extensions_mut().insert(ctx.clone());
            let mut response = next.run(request).await;
            // The audit layer outside reads who asked and what access noted.
            response.extensions_mut().insert(ctx);
            response
        }
        Err(error) => {
            tracing::info!(request_id = %request_id, reason = %error, "request refused: not authenticated");
            let mut response = ApiError(error).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"concord\""),
            );
            response
        }
    }
}
