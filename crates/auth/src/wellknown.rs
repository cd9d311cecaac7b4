//! The public discovery documents: SMART configuration, OpenID Connect configuration, JWKS.
//!
//! Owns: the routes anyone may read without a token (the standards make them public) and the
//! list of those paths for the transport's default-deny middleware. Does not: serve the OAuth
//! endpoints themselves or authenticate anyone.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::AuthServer;

/// The SMART App Launch 2.0 capabilities this server offers.
const CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-standalone-patient",
    "permission-v1",
    "permission-v2",
    "permission-patient",
    "permission-user",
    "permission-offline",
    "sso-openid-connect",
    "authorize-post",
];

const SCOPES: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
    "patient/*.read",
    "user/*.read",
    "user/*.*",
    "system/*.read",
    "system/*.*",
];

/// Paths served without a token: the discovery documents and the JWKS (public by the SMART and
/// OpenID Connect specifications), and the OAuth endpoints, which authenticate their callers
/// themselves (a sign-in form, client authentication, or a bearer token checked inside).
pub fn is_public_path(path: &str) -> bool {
    matches!(
        path,
        "/.well-known/smart-configuration"
            | "/fhir/.well-known/smart-configuration"
            | "/.well-known/openid-configuration"
            | "/oauth/jwks"
            | "/oauth/authorize"
            | "/oauth/launch"
            | "/oauth/token"
            | "/oauth/introspect"
            | "/oauth/revoke"
    )
}

impl AuthServer {
    /// The authorization server's routes, to merge at the root of the application.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/.well-known/smart-configuration", get(smart_configuration))
            .route(
                "/fhir/.well-known/smart-configuration",
                get(smart_configuration),
            )
            .route(
                "/.well-known/openid-configuration",
                get(openid_configuration),
            )
            .route("/oauth/jwks", get(jwks))
            .with_state(self.clone())
            .merge(crate::oauth::routes(self))
    }

    /// The server root the endpoint URLs are built on: the configured public URL, else
    /// `http://` and the request's `Host` (checked to be a host name).
    pub fn root(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.config().public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}

async fn smart_configuration(State(auth): State<AuthServer>, headers: HeaderMap) -> Response {
    let root = auth.root(&headers);
    public_json(json!({
        "issuer": auth.config().issuer,
        "jwks_uri": format!("{root}/oauth/jwks"),
        "authorization_endpoint": format!("{root}/oauth/authorize"),
        "token_endpoint": format!("{root}/oauth/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS384"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "introspection_endpoint": format!("{root}/oauth/introspect"),
        "revocation_endpoint": format!("{root}/oauth/revoke"),
        "capabilities": CAPABILITIES,
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn openid_configuration(State(auth): State<AuthServer>, headers: HeaderMap) -> Response {
    let root = auth.root(&headers);
    public_json(json!({
        "issuer": auth.config().issuer,
        "jwks_uri": format!("{root}/oauth/jwks"),
        "authorization_endpoint": format!("{root}/oauth/authorize"),
        "token_endpoint": format!("{root}/oauth/token"),
        "introspection_endpoint": format!("{root}/oauth/introspect"),
        "revocation_endpoint": format!("{root}/oauth/revoke"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": SCOPES,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(auth): State<AuthServer>) -> Response {
    let mut response = Json(auth.jwks()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/jwk-set+json"),
    );
    response
}

fn public_json(body: Value) -> Response {
    Json(body).into_response()
}
