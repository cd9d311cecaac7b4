//! External OpenID Connect issuers (NHS CIS2, NHS login, a trust's identity provider): their
//! tokens are accepted and their claims mapped to Concord roles and organisations.
//!
//! Owns: the issuer settings, discovering each issuer's JWKS from
//! `{issuer}/.well-known/openid-configuration`, caching it and fetching it again when a token
//! names a key it does not hold (no more often than the configured interval), verifying the
//! tokens (asymmetric algorithms only; issuer, audience, expiry) and mapping the role and
//! organisation claims. Does not: trust anything in a token before its signature checks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use concord_fhir::{Error, ErrorKind};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::Claims;

/// A trusted external issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIssuer {
    /// The issuer URL, exactly as its tokens' `iss`.
    pub issuer: String,
    /// The `aud` its tokens must carry for this node.
    pub audience: String,
    /// The claim holding the user's roles (a string or a list of strings).
    pub roles_claim: String,
    /// The claim holding the user's organisation.
    pub org_claim: String,
    /// External role values to Concord role codes; values not listed are dropped. When empty,
    /// values that are Concord role codes already are kept.
    pub role_map: BTreeMap<String, String>,
    /// The SMART scopes granted when the token carries no `scope` claim.
    pub default_scope: String,
}

/// The JWKS of each external issuer, fetched on demand.
pub(crate) struct Externals {
    issuers: Vec<ExternalIssuer>,
    cache: RwLock<HashMap<String, (JwkSet, Instant)>>,
    client: Option<reqwest::Client>,
    refresh_after: Duration,
}

/// Why an external token could not be verified yet: its key is not in the cached JWKS.
pub(crate) const UNKNOWN_KEY: &str =
    "the access token's signing key is not published by its issuer";

impl Externals {
    pub fn new(issuers: Vec<ExternalIssuer>, refresh_after: Duration) -> Externals {
        let client = if issuers.is_empty() {
            None
        } else {
            http_client()
        };
        Externals {
            issuers,
            cache: RwLock::new(HashMap::new()),
            client,
            refresh_after,
        }
    }

    pub fn find(&self, iss: &str) -> Option<&ExternalIssuer> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }

    /// Verifies a token from `issuer` with the cached keys.
    pub fn verify(
        &self,
        issuer: &ExternalIssuer,
        token: &str,
        leeway: u64,
    ) -> Result<Claims, Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the access token is not a valid JWT"))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
        ) {
            return Err(unauthenticated(
                "the access token's algorithm is not accepted",
            ));
        }
        let key = {
            let cache = self
                .cache
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let set = cache.get(&issuer.issuer).map(|(set, _)| set);
            let jwk = match (&header.kid, set) {
                (Some(kid), Some(set)) => set.find(kid),
                (None, Some(set)) if set.keys.len() == 1 => set.keys.first(),
                _ => None,
            };
            let jwk = jwk.ok_or_else(|| unauthenticated(UNKNOWN_KEY))?;
            DecodingKey::from_jwk(jwk)
                .map_err(|_| unauthenticated("the issuer's key cannot be used"))?
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&[&issuer.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.leeway = leeway;
        let payload = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| unauthenticated(crate::jwt_reason(&e)))?
            .claims;
        Ok(map_claims(issuer, &payload))
    }

    /// Fetches the issuer's JWKS again unless it was fetched within the refresh interval.
    pub async fn refresh(&self, issuer: &ExternalIssuer) -> Result<(), Error> {
        let recent = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&issuer.issuer)
            .is_some_and(|(_, at)| at.elapsed() < self.refresh_after);
        if recent {
            return Ok(());
        }
        let client = self.client.as_ref().ok_or_else(unavailable)?;
        let base = issuer.issuer.trim_end_matches('/');
        let discovery: Value =
            fetch(client, &format!("{base}/.well-known/openid-configuration")).await?;
        let jwks_uri = discovery["jwks_uri"].as_str().ok_or_else(unavailable)?;
        let set: JwkSet =
            serde_json::from_value(fetch(client, jwks_uri).await?).map_err(|_| unavailable())?;
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(issuer.issuer.clone(), (set, Instant::now()));
        Ok(())
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Value, Error> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|_| unavailable())?;
    if !response.status().is_success() {
        return Err(unavailable());
    }
    response.json().await.map_err(|_| unavailable())
}

fn unavailable() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "the token's issuer could not be reached to check its keys",
    )
}

fn unauthenticated(reason: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, reason)
}

/// An HTTP client with the ring provider and the platform's certificate verifier; `None` when
/// TLS cannot be set up (external tokens are then refused).
fn http_client() -> Option<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).ok()?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The Concord claims for a verified external token.
fn map_claims(issuer: &ExternalIssuer, payload: &Value) -> Claims {
    let roles: Vec<String> = strings(&payload[&issuer.roles_claim])
        .into_iter()
        .filter_map(|value| {
            if issuer.role_map.is_empty() {
                concord_access::Role::parse(&value).map(|r| r.code().to_string())
            } else {
                issuer.role_map.get(&value).cloned()
            }
        })
        .collect();
    let scope = payload["scope"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| issuer.default_scope.clone());
    Claims {
        iss: issuer.issuer.clone(),
        aud: issuer.audience.clone(),
        iat: payload["iat"].as_i64().unwrap_or_default(),
        exp: payload["exp"].as_i64().unwrap_or_default(),
        jti: payload["jti"].as_str().unwrap_or_default().to_string(),
        org: payload[&issuer.org_claim].as_str().map(str::to_string),
        ..Claims::user(
            payload["sub"].as_str().unwrap_or_default(),
            roles,
            None,
            scope,
        )
    }
}
