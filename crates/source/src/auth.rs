//! How the connector authenticates to one source: no credentials, a fixed bearer token, or an
//! access token from an OAuth 2.0 token endpoint, obtained with a client secret (client
//! credentials, `client_secret_basic`) or with a signed JWT (SMART Backend Services,
//! `private_key_jwt`), and cached until 30 seconds before it expires.
//!
//! Owns the token request, the client assertion, the token cache and its invalidation when the
//! source rejects a cached token. Mutual TLS is not here: it is a property of the connection
//! (see `tls.rs`). Does not log or return secrets, tokens or assertions; a token endpoint's
//! error body is never quoted.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use crate::http::{self, Problem, X_REQUEST_ID};
use crate::{Auth, SourceSetupError};

/// Tokens are refreshed this long before the expiry the token endpoint announced, so a token is
/// never sent in its last seconds and rejected on arrival.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// Lifetime assumed when a token response has no `expires_in`. SMART Backend Services asks for
/// tokens of at most five minutes; if the real lifetime is shorter, the source's 401 makes the
/// connector fetch a new one (see [`Authenticator::forget`]).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);
/// Lifetime of a client assertion. SMART allows at most five minutes; four leaves room for the
/// token endpoint's clock being behind ours.
const ASSERTION_LIFETIME_SECS: u64 = 240;
/// A token response is a few hundred bytes; anything near this is not one.
const TOKEN_RESPONSE_LIMIT: usize = 1024 * 1024;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const WHO: &str = "the token endpoint";

pub(crate) struct Authenticator {
    scheme: Scheme,
    cache: tokio::sync::Mutex<Option<Cached>>,
}

enum Scheme {
    None,
    Static(HeaderValue),
    Token(TokenClient),
}

struct TokenClient {
    token_url: Url,
    scope: Option<String>,
    grant: Grant,
}

enum Grant {
    Secret {
        client_id: String,
        client_secret: String,
    },
    Jwt {
        client_id: String,
        /// The token URL exactly as configured: the assertion's `aud` must match what the token
        /// endpoint knows itself as, and `Url` would normalise it.
        audience: String,
        key: EncodingKey,
        algorithm: Algorithm,
        kid: Option<String>,
    },
}

struct Cached {
    header: HeaderValue,
    refresh_at: Instant,
}

/// The `Authorization` header for one request.
pub(crate) struct Credential {
    pub header: HeaderValue,
    /// It came from the token cache, so a 401 may just mean it was revoked or expired early, and
    /// a fresh one is worth one try.
    pub from_cache: bool,
}

impl Authenticator {
    pub(crate) fn new(source_id: &str, auth: &Auth) -> Result<Self, SourceSetupError> {
        let scheme = match auth {
            Auth::None | Auth::MutualTls { .. } => Scheme::None,
            Auth::Bearer { token } => {
                Scheme::Static(bearer(token).ok_or_else(|| SourceSetupError::Credentials {
                    source_id: source_id.to_string(),
                    what: "the bearer token is not a valid header value",
                })?)
            }
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => Scheme::Token(TokenClient {
                token_url: parse_token_url(source_id, token_url)?,
                scope: scope.clone(),
                grant: Grant::Secret {
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                },
            }),
            Auth::PrivateKeyJwt {
                token_url,
                client_id,
                key_pem,
                algorithm,
                kid,
                scope,
            } => {
                let (algorithm, key) = signing_key(source_id, algorithm, key_pem)?;
                Scheme::Token(TokenClient {
                    token_url: parse_token_url(source_id, token_url)?,
                    scope: scope.clone(),
                    grant: Grant::Jwt {
                        client_id: client_id.clone(),
                        audience: token_url.clone(),
                        key,
                        algorithm,
                        kid: kid.clone(),
                    },
                })
            }
        };
        Ok(Self {
            scheme,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The credential for the next request, fetching a token when none is cached. Concurrent
    /// callers wait for one fetch rather than each asking the token endpoint.
    pub(crate) async fn credential(
        &self,
        client: &reqwest::Client,
        request_id: Option<&HeaderValue>,
    ) -> Result<Option<Credential>, Problem> {
        let token_client = match &self.scheme {
            Scheme::None => return Ok(None),
            Scheme::Static(header) => {
                return Ok(Some(Credential {
                    header: header.clone(),
                    from_cache: false,
                }));
            }
            Scheme::Token(token_client) => token_client,
        };
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(Some(Credential {
                header: cached.header.clone(),
                from_cache: true,
            }));
        }
        let (header, lifetime) = token_client.fetch(client, request_id).await?;
        let received = Instant::now();
        *cache = lifetime
            .checked_sub(REFRESH_MARGIN)
            .filter(|usable| !usable.is_zero())
            .map(|usable| Cached {
                header: header.clone(),
                refresh_at: received + usable,
            });
        Ok(Some(Credential {
            header,
            from_cache: false,
        }))
    }

    /// Drops the cached token if it is still `header`: the source rejected it.
    pub(crate) async fn forget(&self, header: &HeaderValue) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|cached| cached.header == header) {
            *cache = None;
        }
    }
}

impl TokenClient {
    async fn fetch(
        &self,
        client: &reqwest::Client,
        request_id: Option<&HeaderValue>,
    ) -> Result<(HeaderValue, Duration), Problem> {
        let mut request = client
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(request_id) = request_id {
            request = request.header(X_REQUEST_ID, request_id.clone());
        }
        // The form is finished before any await: its serializer is not `Send`.
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &self.scope {
                form.append_pair("scope", scope);
            }
            match &self.grant {
                Grant::Secret {
                    client_id,
                    client_secret,
                } => {
                    // RFC 6749 section 2.3.1: both parts are form-encoded before Basic encoding.
                    request = request
                        .basic_auth(form_encode(client_id), Some(form_encode(client_secret)));
                }
                Grant::Jwt {
                    client_id,
                    audience,
                    key,
                    algorithm,
                    kid,
                } => {
                    let assertion =
                        assertion(client_id, audience, key, *algorithm, kid.as_deref())?;
                    form.append_pair("client_assertion_type", JWT_BEARER);
                    form.append_pair("client_assertion", &assertion);
                }
            }
            form.finish()
        };
        let response = request
            .body(form)
            .send()
            .await
            .map_err(|e| Problem::Unavailable(http::describe(WHO, &e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(Problem::Unavailable(format!(
                "the token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            // The body (an OAuth error) is not quoted: it may echo the client's own claims.
            return Err(Problem::Refused(format!(
                "the token endpoint refused our credentials (HTTP {})",
                status.as_u16()
            )));
        }
        let body = http::read_limited(response, TOKEN_RESPONSE_LIMIT, WHO).await?;
        read_token_response(&body).map_err(|what| Problem::Unavailable(what.to_string()))
    }
}

/// The bearer header and lifetime in a token response, or why it is not one.
fn read_token_response(body: &[u8]) -> Result<(HeaderValue, Duration), &'static str> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the token endpoint's answer is not JSON")?;
    let token = value
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or("the token endpoint's answer has no access_token")?;
    if let Some(kind) = value.get("token_type").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err("the token endpoint issued a token that is not a bearer token");
    }
    let header =
        bearer(token).ok_or("the token endpoint's access_token is not a valid header value")?;
    // `expires_in` is a number, but some servers send it as a string.
    let lifetime = match value.get("expires_in") {
        Some(Value::Number(seconds)) => seconds.as_f64(),
        Some(Value::String(seconds)) => seconds.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
    .map_or(ASSUMED_LIFETIME, Duration::from_secs_f64);
    Ok((header, lifetime))
}

/// A signed client assertion (RFC 7523) as SMART Backend Services wants it: `iss` and `sub` the
/// client id, `aud` the token URL, a short `exp` and a fresh `jti` so it cannot be replayed.
fn assertion(
    client_id: &str,
    audience: &str,
    key: &EncodingKey,
    algorithm: Algorithm,
    kid: Option<&str>,
) -> Result<String, Problem> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let mut header = Header::new(algorithm);
    header.typ = Some("JWT".to_string());
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key)
        .map_err(|_| Problem::Refused("could not sign the client assertion".to_string()))
}

/// Reads the private key for `algorithm` and signs a test assertion with it, so a key that does
/// not fit the algorithm (a P-256 key for ES384, say) is a set-up error, not a failure on every
/// call.
fn signing_key(
    source_id: &str,
    algorithm: &str,
    key_pem: &str,
) -> Result<(Algorithm, EncodingKey), SourceSetupError> {
    let unusable = |what| SourceSetupError::Credentials {
        source_id: source_id.to_string(),
        what,
    };
    let algorithm_value = match algorithm {
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "RS384" => Algorithm::RS384,
        _ => {
            return Err(SourceSetupError::Algorithm {
                source_id: source_id.to_string(),
                algorithm: algorithm.to_string(),
            });
        }
    };
    let key = match algorithm_value {
        Algorithm::RS384 => EncodingKey::from_rsa_pem(key_pem.as_bytes()),
        _ => EncodingKey::from_ec_pem(key_pem.as_bytes()),
    }
    .map_err(|_| {
        unusable("the private_key_jwt key is not a PKCS#8 PEM private key of the algorithm's kind (PKCS#1 is also read for RS384)")
    })?;
    jsonwebtoken::encode(&Header::new(algorithm_value), &json!({}), &key).map_err(|_| {
        unusable("the private_key_jwt key cannot sign with the configured algorithm")
    })?;
    Ok((algorithm_value, key))
}

fn parse_token_url(source_id: &str, text: &str) -> Result<Url, SourceSetupError> {
    Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| SourceSetupError::Credentials {
            source_id: source_id.to_string(),
            what: "the token URL is not an http or https URL",
        })
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    // Keeps the token out of hyper's and reqwest's debug output.
    header.set_sensitive(true);
    Some(header)
}

fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses() {
        let (header, lifetime) = read_token_response(
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#,
        )
        .unwrap();
        assert_eq!(header, "Bearer abc");
        assert!(header.is_sensitive());
        assert_eq!(lifetime, Duration::from_secs(3600));
        let (_, lifetime) = read_token_response(
            br#"{"access_token":"abc","token_type":"bearer","expires_in":"60"}"#,
        )
        .unwrap();
        assert_eq!(lifetime, Duration::from_secs(60));
        let (_, lifetime) = read_token_response(br#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(lifetime, ASSUMED_LIFETIME);
        assert!(read_token_response(br#"{"access_token":"abc","token_type":"mac"}"#).is_err());
        assert!(read_token_response(br#"{"token_type":"bearer"}"#).is_err());
        assert!(read_token_response(b"<html>").is_err());
    }

    #[test]
    fn unknown_algorithms_and_mismatched_keys_are_set_up_errors() {
        assert!(matches!(
            signing_key("s", "HS256", "x"),
            Err(SourceSetupError::Algorithm { .. })
        ));
        assert!(matches!(
            signing_key("s", "ES384", "not a key"),
            Err(SourceSetupError::Credentials { .. })
        ));
    }
}
