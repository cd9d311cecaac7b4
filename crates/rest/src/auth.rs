//! Bearer-token authentication: default deny on every endpoint the standard does not make public.
//!
//! Owns: verifying `Authorization: Bearer` tokens and turning their claims into the
//! [`RequestContext`] every service call takes, and minting tokens with the node's key (for
//! `concord token issue` and tests). Tokens are JWTs signed with the node's secret (HS256), kept
//! in the data directory. This is the foundation's scheme; the access issue replaces the key with
//! ES256 and adds SMART on FHIR, OpenID Connect and external issuers on the same claims.
//!
//! Does not: decide what a caller may see (the service layer does) or log token contents.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concord_fhir::context::{Actor, Purpose};
use concord_fhir::{Error, ErrorKind, RequestContext};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

/// The issuer Concord writes into the tokens it mints.
pub const ISSUER: &str = "concord";

/// The claims of a Concord access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Space-separated SMART scopes.
    pub scope: String,
    /// `user` or `system`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The patient in context (SMART `patient`), for patient-facing tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// v3 PurposeOfUse code; `TREAT` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// The node's signing key.
#[derive(Clone)]
pub struct NodeKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(..)")
    }
}

impl NodeKey {
    /// A key from stored secret bytes (at least 32).
    pub fn from_secret(secret: Vec<u8>) -> Result<NodeKey, String> {
        if secret.len() < 32 {
            return Err("the node secret must be at least 32 bytes".into());
        }
        Ok(NodeKey { secret })
    }

    /// A fresh random key.
    pub fn generate() -> Result<NodeKey, String> {
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness available: {e}"))?;
        Ok(NodeKey { secret })
    }

    /// The secret as hex, for storing in the data directory.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.secret)
    }

    pub fn from_hex(text: &str) -> Result<NodeKey, String> {
        let secret =
            hex::decode(text.trim()).map_err(|_| "the node secret file is not hex".to_string())?;
        NodeKey::from_secret(secret)
    }

    /// Signs claims into a token.
    pub fn mint(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| format!("cannot sign the token: {e}"))
    }

    /// Verifies a token's signature, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&self.secret), &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                let reason = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        "the access token has expired"
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                        "the access token was not issued by this node"
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        "the access token's signature is not valid"
                    }
                    _ => "the access token is not a valid JWT",
                };
                Error::new(ErrorKind::Unauthenticated, reason)
            })
    }
}

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
            proxy_for: Vec::new(),
            client_id: None,
        }
    };
    RequestContext::new(
        request_id,
        actor,
        Purpose(claims.purpose.unwrap_or_else(|| "TREAT".into())),
    )
}

/// Paths anyone may read: the CapabilityStatement (the spec requires it to be public) and the
/// operational probes (they carry no patient data).
fn is_public(path: &str) -> bool {
    matches!(path, "/fhir/metadata" | "/healthz" | "/readyz" | "/metrics")
}

/// Middleware: verifies the bearer token and puts the [`RequestContext`] into the request.
pub async fn require_auth(
    State(state): State<AppState>,
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
        Some(token) => state.key.verify(token.trim()),
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
