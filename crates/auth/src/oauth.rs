//! The OAuth 2.0 token, introspection and revocation endpoints.
//!
//! Owns: `POST /oauth/token` for SMART backend services (client credentials with a
//! private_key_jwt assertion, RFC 7523: `iss` = `sub` = the client id, `aud` = this token
//! endpoint, at most five minutes to live, a `jti` never seen before, signed with a key of the
//! client's registered JWKS in ES256, ES384 or RS384), `POST /oauth/introspect` (RFC 7662, for
//! a caller holding a valid access token) and `POST /oauth/revoke` (RFC 7009). Errors follow RFC
//! 6749 section 5.2 and never quote a token or an assertion. Does not: sign users in or
//! exchange codes and refresh tokens (`code` does).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use crate::accounts::{Client, ClientAuth, ClientKind};
use crate::{AuthServer, Claims, now};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may live (SMART Backend Services: five minutes).
const MAX_ASSERTION_SECONDS: i64 = 300;

/// An RFC 6749 error response.
pub(crate) struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
}

impl OAuthError {
    pub(crate) fn new(code: &'static str, description: &'static str) -> OAuthError {
        let status = if code == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        OAuthError {
            status,
            code,
            description,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "error_description": self.description });
        (self.status, no_store(), Json(body)).into_response()
    }
}

pub(crate) fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

pub(crate) fn routes<S: Clone + Send + Sync + 'static>(auth: &AuthServer) -> Router<S> {
    Router::new()
        .route(
            "/oauth/authorize",
            axum::routing::get(crate::code::authorize_form).post(crate::code::authorize_submit),
        )
        .route(
            "/oauth/launch",
            axum::routing::post(crate::code::create_launch),
        )
        .route("/oauth/token", axum::routing::post(token))
        .route("/oauth/introspect", axum::routing::post(introspect))
        .route("/oauth/revoke", axum::routing::post(revoke))
        .with_state(auth.clone())
}

async fn token(
    State(auth): State<AuthServer>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let endpoint = format!("{}/oauth/token", auth.root(&headers));
    let result = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let auth = auth.clone();
            tokio_blocking(move || client_credentials(&auth, &form, &endpoint)).await
        }
        Some("authorization_code" | "refresh_token") => {
            crate::code::grant(auth.clone(), form, headers, endpoint).await
        }
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "the grant types are authorization_code, refresh_token and client_credentials",
        )),
        None => Err(OAuthError::new("invalid_request", "grant_type is required")),
    };
    match result {
        Ok(body) => (StatusCode::OK, no_store(), Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Runs database and signature work off the async workers.
pub(crate) async fn tokio_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OAuthError> + Send + 'static,
) -> Result<T, OAuthError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|_| {
        Err(OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            description: "the request could not be completed",
        })
    })
}

#[derive(Deserialize)]
struct AssertionClaims {
    /// The client id (`sub` must equal it too; the validation checks that).
    iss: String,
    exp: i64,
    #[serde(default)]
    jti: String,
}

fn client_credentials(
    auth: &AuthServer,
    form: &HashMap<String, String>,
    endpoint: &str,
) -> Result<serde_json::Value, OAuthError> {
    let client = assertion_client(auth, form, endpoint)?;
    if client.kind != ClientKind::Backend {
        return Err(OAuthError::new(
            "unauthorized_client",
            "the client is not registered as a backend service",
        ));
    }
    let scope = granted_scope(form.get("scope").map(String::as_str), &client.scopes)?;
    let claims = Claims {
        client_id: Some(client.client_id.clone()),
        ..Claims::system(client.client_id.clone(), scope.clone())
    };
    let access_token = auth.mint(&claims).map_err(|_| server_error())?;
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": auth.config().access_token_seconds,
        "scope": scope,
    }))
}

/// The client a private_key_jwt assertion (RFC 7523) authenticates.
pub(crate) fn assertion_client(
    auth: &AuthServer,
    form: &HashMap<String, String>,
    endpoint: &str,
) -> Result<Client, OAuthError> {
    let invalid_client = |description| OAuthError::new("invalid_client", description);
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(invalid_client(
            "client_credentials needs a private_key_jwt client assertion",
        ));
    }
    let assertion = form
        .get("client_assertion")
        .ok_or_else(|| invalid_client("client_assertion is required"))?;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| invalid_client("the client assertion is not a valid JWT"))?;
    if !matches!(
        header.alg,
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::RS384
    ) {
        return Err(invalid_client(
            "the client assertion must be signed with ES256, ES384 or RS384",
        ));
    }
    // The issuer names the client; it is only trusted once the signature checks against that
    // client's registered keys.
    let unverified: AssertionClaims = jsonwebtoken::dangerous::insecure_decode(assertion)
        .map_err(|_| invalid_client("the client assertion lacks iss, sub or exp"))?
        .claims;
    let client = auth
        .client(&unverified.iss)
        .map_err(|_| server_error())?
        .ok_or_else(|| invalid_client("the client is not registered"))?;
    let ClientAuth::PrivateKeyJwt(jwks) = &client.auth else {
        return Err(invalid_client(
            "the client is not registered for private_key_jwt",
        ));
    };
    let set: JwkSet = serde_json::from_str(jwks)
        .map_err(|_| invalid_client("the client's registered JWKS cannot be read"))?;
    let jwk = match &header.kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or_else(|| invalid_client("the client assertion's key is not among the client's keys"))?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| invalid_client("the client's registered key cannot be used"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    validation.set_audience(&[endpoint]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    validation.leeway = auth.config().leeway_seconds;
    let verified: AssertionClaims = jsonwebtoken::decode(assertion, &key, &validation)
        .map_err(|e| {
            invalid_client(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "the client assertion has expired"
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    "the client assertion is not addressed to this token endpoint"
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "the client assertion's signature is not valid"
                }
                _ => "the client assertion is not valid",
            })
        })?
        .claims;
    let now = now();
    if verified.exp > now + MAX_ASSERTION_SECONDS + i64::try_from(validation.leeway).unwrap_or(0) {
        return Err(invalid_client(
            "the client assertion lives longer than five minutes",
        ));
    }
    if verified.jti.is_empty() {
        return Err(invalid_client("the client assertion has no jti"));
    }
    let fresh = auth
        .inner
        .db
        .remember_assertion(&client.client_id, &verified.jti, verified.exp, now)
        .map_err(|_| server_error())?;
    if !fresh {
        return Err(invalid_client(
            "the client assertion's jti has been used before",
        ));
    }
    Ok(client)
}

/// The scopes granted: those asked for, each of which the client must be allowed; all the
/// client's scopes when none are asked for.
pub(crate) fn granted_scope(
    requested: Option<&str>,
    allowed: &[String],
) -> Result<String, OAuthError> {
    let requested: Vec<&str> = requested
        .map(|r| r.split_whitespace().collect())
        .unwrap_or_default();
    if requested.is_empty() {
        return Ok(allowed.join(" "));
    }
    if requested.iter().any(|s| !allowed.iter().any(|a| a == s)) {
        return Err(OAuthError::new(
            "invalid_scope",
            "a requested scope is not one the client may be granted",
        ));
    }
    Ok(requested.join(" "))
}

pub(crate) fn server_error() -> OAuthError {
    OAuthError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "server_error",
        description: "the request could not be completed",
    }
}

/// The caller's own access token, which introspection requires.
pub(crate) fn caller(auth: &AuthServer, headers: &HeaderMap) -> Option<Claims> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    auth.verify(token.trim()).ok()
}

async fn introspect(
    State(auth): State<AuthServer>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if caller(&auth, &headers).is_none() {
        let mut response =
            OAuthError::new("invalid_client", "introspection needs a bearer token").into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let Some(token) = form.get("token") else {
        return OAuthError::new("invalid_request", "token is required").into_response();
    };
    let body = match auth.verify(token) {
        Ok(claims) => {
            let mut body = json!({
                "active": true,
                "scope": claims.scope,
                "client_id": claims.client_id,
                "sub": claims.sub,
                "exp": claims.exp,
                "iat": claims.iat,
                "iss": claims.iss,
                "aud": claims.aud,
                "jti": claims.jti,
                "token_type": "Bearer",
            });
            if let Some(patient) = &claims.patient {
                body["patient"] = json!(patient);
            }
            if let Some(fhir_user) = &claims.fhir_user {
                body["fhirUser"] = json!(fhir_user);
            }
            body
        }
        // RFC 7662: an invalid, expired or revoked token is simply not active.
        Err(_) => json!({ "active": false }),
    };
    (StatusCode::OK, no_store(), Json(body)).into_response()
}

/// RFC 7009: the holder of an access token may revoke it. The answer is 200 whether or not the
/// token was valid, so the endpoint says nothing about tokens it is shown.
async fn revoke(
    State(auth): State<AuthServer>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(token) = form.get("token") else {
        return OAuthError::new("invalid_request", "token is required").into_response();
    };
    if let Ok(claims) = auth.verify(token) {
        let auth = auth.clone();
        let revoked =
            tokio::task::spawn_blocking(move || auth.revoke(&claims.jti, claims.exp)).await;
        if !matches!(revoked, Ok(Ok(()))) {
            return server_error().into_response();
        }
    }
    (StatusCode::OK, no_store()).into_response()
}
