//! The authorization server (issue 6): OAuth 2.0 and OpenID Connect with SMART App Launch 2.0.
//!
//! Owns: the node's ES256 signing keys and their rotation, local accounts, registered clients,
//! the OAuth endpoints, and verifying access tokens (this node's and configured external
//! issuers'). Does not: decide what a verified caller may see (concord-access and the hub do).
//!
//! [`AuthServer`] is the one value the transport holds: [`AuthServer::verify`] runs on every
//! request, [`AuthServer::mint`] signs tokens (for the CLI and the OAuth endpoints), and
//! [`AuthServer::router`] serves the public discovery documents and the JWKS.

mod accounts;
mod claims;
mod code;
mod external;
mod headers;
mod keys;
mod oauth;
mod verified;
mod wellknown;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use concord_fhir::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Value, json};

pub use accounts::{
    Client, ClientAuth, ClientKind, LOCKOUT_FAILURES, LOCKOUT_SECONDS, NewUser, User, hash_secret,
};
pub use claims::Claims;
pub use external::ExternalIssuer;
pub use headers::{SecurityHeaders, SecurityHeadersService};
pub use keys::thumbprint;
pub use wellknown::is_public_path;

use accounts::Db;
use keys::Ring;

/// How the authorization server is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The `iss` of tokens this node mints and the OpenID Connect issuer.
    pub issuer: String,
    /// The `aud` this node's tokens carry and require: its FHIR base URL.
    pub audience: String,
    /// The public server root (`https://host`) for endpoint URLs in the discovery documents;
    /// taken from the request's `Host` header when `None`.
    pub public_url: Option<String>,
    /// Rotate the signing key at start when it is at least this old.
    pub key_rotation_days: u64,
    /// A superseded key still verifies for this long; it must outlive the tokens it signed.
    pub key_retire_days: u64,
    /// The lifetime of an access token minted without an explicit `exp`.
    pub access_token_seconds: i64,
    /// Clock skew allowed when checking `exp` and `iat`.
    pub leeway_seconds: u64,
    /// External OpenID Connect issuers whose tokens are accepted.
    pub external: Vec<ExternalIssuer>,
    /// An external issuer's JWKS is fetched again for an unknown key at most this often.
    pub jwks_refresh_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "concord".into(),
            audience: "concord".into(),
            public_url: None,
            key_rotation_days: 90,
            // Longer than the longest token `concord token issue` mints (30 days).
            key_retire_days: 31,
            access_token_seconds: 3600,
            leeway_seconds: 30,
            external: Vec::new(),
            jwks_refresh_seconds: 60,
        }
    }
}

impl AuthConfig {
    /// The settings for a node whose public FHIR base is `fhir_base` (e.g.
    /// `https://hub.example/fhir`): the issuer is the server root, the audience the FHIR base.
    /// Without a configured base, both are the fixed name `concord`.
    pub fn for_base(fhir_base: Option<&str>) -> AuthConfig {
        match fhir_base
            .map(|b| b.trim_end_matches('/'))
            .filter(|b| !b.is_empty())
        {
            None => AuthConfig::default(),
            Some(base) => {
                let root = base.strip_suffix("/fhir").unwrap_or(base).to_string();
                AuthConfig {
                    issuer: root.clone(),
                    audience: base.to_string(),
                    public_url: Some(root),
                    ..AuthConfig::default()
                }
            }
        }
    }
}

/// The authorization server: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct AuthServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    ring: RwLock<Ring>,
    db: Db,
    external: external::Externals,
    /// Recent sign-in attempts, for the per-address and account rate limit.
    attempts: code::Attempts,
    /// Revoked token ids and when their tokens expire (after which they need no remembering).
    revoked: RwLock<HashMap<String, i64>>,
    /// This node's tokens whose signature has been verified, so a bearer's every request does
    /// not pay for the ES256 check again (see [`AuthServer::verify`]).
    verified: verified::Verified,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.inner.config.issuer)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// Opens the server over `data_dir`: the key ring in `<data_dir>/keys/` (created with a first
    /// key when absent; rotated when the current key is older than `key_rotation_days`).
    pub fn open(data_dir: &Path, config: AuthConfig) -> Result<AuthServer, Error> {
        let ring = Ring::open(
            &data_dir.join("keys"),
            now(),
            config.key_rotation_days,
            config.key_retire_days,
        )?;
        let db = Db::open(&data_dir.join("auth.db"))?;
        let revoked = db.revoked_jtis(now())?.into_iter().collect();
        Ok(AuthServer::with(ring, db, revoked, config))
    }

    /// A server whose single key lives in memory only: for tests and throwaway nodes.
    pub fn ephemeral(config: AuthConfig) -> Result<AuthServer, Error> {
        Ok(AuthServer::with(
            Ring::ephemeral(now())?,
            Db::memory()?,
            HashMap::new(),
            config,
        ))
    }

    fn with(ring: Ring, db: Db, revoked: HashMap<String, i64>, config: AuthConfig) -> AuthServer {
        let external = external::Externals::new(
            config.external.clone(),
            std::time::Duration::from_secs(config.jwks_refresh_seconds),
        );
        AuthServer {
            inner: Arc::new(Inner {
                external,
                attempts: code::Attempts::default(),
                config,
                ring: RwLock::new(ring),
                db,
                revoked: RwLock::new(revoked),
                verified: verified::Verified::default(),
            }),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The `kid` of the key that signs new tokens.
    pub fn current_kid(&self) -> Option<String> {
        self.read_ring().current().map(|k| k.kid.clone())
    }

    /// Makes a new signing key now; tokens signed with the old one keep verifying until it
    /// retires, `key_retire_days` from now.
    pub fn rotate(&self) -> Result<(), Error> {
        let mut ring = self.write_ring();
        ring.rotate(now())?;
        let retired = ring.retire(now(), self.inner.config.key_retire_days);
        // Every cache hit checks its key against the ring anyway; clearing here as well drops
        // the entries of keys that just retired, at the price of one signature check per live
        // token after a rotation.
        self.inner.verified.clear();
        retired
    }

    /// Signs claims into an ES256 JWT whose header names the key (`kid`). Blank `iss`, `aud`,
    /// `jti`, `iat` and `exp` are filled in (see [`Claims`]).
    pub fn mint(&self, claims: &Claims) -> Result<String, Error> {
        let config = &self.inner.config;
        let now = now();
        let mut claims = claims.clone();
        if claims.iss.is_empty() {
            claims.iss.clone_from(&config.issuer);
        }
        if claims.aud.is_empty() {
            claims.aud.clone_from(&config.audience);
        }
        if claims.iat == 0 {
            claims.iat = now;
        }
        if claims.exp == 0 {
            claims.exp = now.saturating_add(config.access_token_seconds);
        }
        if claims.jti.is_empty() {
            claims.jti = random_id()?;
        }
        if claims.sub.is_empty() || !matches!(claims.kind.as_str(), "user" | "system") {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a token needs a subject and a kind of user or system",
            ));
        }
        let ring = self.read_ring();
        let key = ring
            .current()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "the node has no signing key"))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|_| Error::new(ErrorKind::Internal, "the token cannot be signed"))
    }

    /// Signs any JSON claims with the current key (id tokens).
    pub(crate) fn sign_json(&self, claims: &Value) -> Result<String, Error> {
        let ring = self.read_ring();
        let key = ring
            .current()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "the node has no signing key"))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|_| Error::new(ErrorKind::Internal, "the token cannot be signed"))
    }

    /// Verifies an access token: signed by a key of this node's ring that has not retired,
    /// issued by this node for this audience, not expired (with the configured leeway), and
    /// not revoked. Errors are [`ErrorKind::Unauthenticated`] and never quote the token.
    ///
    /// This node's own tokens that pass are remembered (by the SHA-256 digest of the whole
    /// token, in a cache of at most 10,000 entries) so the same token's signature is not
    /// checked again on the bearer's next request; every later use still checks its expiry,
    /// that its signing key has not retired and that it has not been revoked. Failures are
    /// never remembered. External issuers' tokens are not cached: each is verified in full.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let claims = match self.external_issuer(token) {
            Some(issuer) => {
                self.inner
                    .external
                    .verify(issuer, token, self.inner.config.leeway_seconds)?
            }
            None => self.verify_own(token)?,
        };
        if self.is_revoked(&claims.jti) {
            return Err(unauthenticated("the access token has been revoked"));
        }
        Ok(claims)
    }

    /// [`AuthServer::verify`], fetching an external issuer's keys first when the token names
    /// one not yet known (the issuer rotated its keys, or this is its first token).
    pub async fn verify_async(&self, token: &str) -> Result<Claims, Error> {
        match self.verify(token) {
            Err(error) if error.to_string().contains(external::UNKNOWN_KEY) => {
                if let Some(issuer) = self.external_issuer(token) {
                    self.inner.external.refresh(issuer).await?;
                }
                self.verify(token)
            }
            other => other,
        }
    }

    /// The configured external issuer a token claims to come from (unverified: the signature
    /// check that follows uses that issuer's keys only).
    fn external_issuer(&self, token: &str) -> Option<&ExternalIssuer> {
        if self.inner.config.external.is_empty() {
            return None;
        }
        let payload = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
            .ok()?
            .claims;
        let iss = payload["iss"].as_str()?;
        if iss == self.inner.config.issuer {
            return None;
        }
        self.inner.external.find(iss)
    }

    fn verify_own(&self, token: &str) -> Result<Claims, Error> {
        let key = verified::key(token);
        if let Some(entry) = self.inner.verified.get(&key) {
            let answer = self.recheck(&entry);
            if answer.is_err() {
                self.inner.verified.remove(&key);
            }
            return answer;
        }
        let (claims, kid) = self.verify_signed(token)?;
        if self.is_revoked(&claims.jti) {
            return Err(unauthenticated("the access token has been revoked"));
        }
        self.inner.verified.insert(
            key,
            verified::Entry {
                claims: claims.clone(),
                kid,
            },
        );
        Ok(claims)
    }

    /// A cached token's checks that can change after it was verified: its signing key must
    /// still verify, it must not have expired, and it must not have been revoked. The rest
    /// (signature, algorithm, issuer, audience, kind) depend only on the token's exact text
    /// and this server's fixed configuration, so they hold as they did when it was cached.
    fn recheck(&self, entry: &verified::Entry) -> Result<Claims, Error> {
        let config = &self.inner.config;
        {
            // The same lookup as the full check, so a key retired by time, by `rotate` or by
            // re-reading the ring from disk refuses cached tokens exactly as uncached ones.
            let ring = self.ring_with(&entry.kid);
            let key = ring
                .find(&entry.kid)
                .ok_or_else(|| unauthenticated("the access token was not signed by this node"))?;
            if !key.verifies_at(now(), config.key_retire_days) {
                return Err(unauthenticated(
                    "the access token was signed with a retired key",
                ));
            }
        }
        if expired(entry.claims.exp, config.leeway_seconds) {
            return Err(unauthenticated(jwt_reason(
                &jsonwebtoken::errors::ErrorKind::ExpiredSignature.into(),
            )));
        }
        if self.is_revoked(&entry.claims.jti) {
            return Err(unauthenticated("the access token has been revoked"));
        }
        Ok(entry.claims.clone())
    }

    /// Every check of this node's token but revocation, in full: the claims and the `kid` of
    /// the key that signed it.
    fn verify_signed(&self, token: &str) -> Result<(Claims, String), Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("the access token is not a valid JWT"))?;
        if header.alg != Algorithm::ES256 {
            return Err(unauthenticated("the access token is not signed with ES256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthenticated("the access token names no signing key"))?;
        let config = &self.inner.config;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.leeway = config.leeway_seconds;
        let claims = {
            let ring = self.ring_with(&kid);
            let key = ring
                .find(&kid)
                .ok_or_else(|| unauthenticated("the access token was not signed by this node"))?;
            if !key.verifies_at(now(), config.key_retire_days) {
                return Err(unauthenticated(
                    "the access token was signed with a retired key",
                ));
            }
            jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
                .map_err(|e| unauthenticated(jwt_reason(&e)))?
                .claims
        };
        if !matches!(claims.kind.as_str(), "user" | "system") {
            return Err(unauthenticated(
                "the access token's kind is neither user nor system",
            ));
        }
        Ok((claims, kid))
    }

    /// Refuses the token with this id from now on (until it would have expired anyway), in this
    /// process at once and, through `auth.db`, in processes opened later.
    pub fn revoke(&self, jti: &str, exp: i64) -> Result<(), Error> {
        let now = now();
        self.inner.db.revoke_jti(jti, exp, now)?;
        let mut revoked = self
            .inner
            .revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Expired entries are dropped as new ones arrive, so the list stays as short as the
        // set of live revoked tokens.
        revoked.retain(|_, until| *until >= now);
        revoked.insert(jti.to_string(), exp);
        Ok(())
    }

    /// Creates a local account (argon2id password hash); the roles must be known role codes.
    pub fn add_user(&self, user: &NewUser) -> Result<(), Error> {
        self.inner.db.add_user(user)
    }

    pub fn user(&self, id: &str) -> Result<Option<User>, Error> {
        self.inner.db.user(id)
    }

    /// Every account, by id.
    pub fn users(&self) -> Result<Vec<User>, Error> {
        self.inner.db.users()
    }

    /// Replaces an account's roles.
    pub fn set_roles(&self, id: &str, roles: &[String]) -> Result<(), Error> {
        self.inner.db.set_roles(id, roles)
    }

    /// Disables (or re-enables) an account: a disabled account cannot sign in.
    pub fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), Error> {
        self.inner.db.set_disabled(id, disabled)
    }

    /// Checks a sign-in now, counting failures towards the lockout ([`LOCKOUT_FAILURES`]
    /// failures lock the account for [`LOCKOUT_SECONDS`]; a locked account is refused with
    /// [`ErrorKind::TooManyRequests`]).
    pub fn check_password(&self, id: &str, password: &str) -> Result<User, Error> {
        self.inner.db.check_password(id, password, now())
    }

    /// Registers a client. A confidential client's [`ClientAuth::Secret`] holds the secret's
    /// hash ([`hash_secret`]); a backend service must use [`ClientAuth::PrivateKeyJwt`].
    pub fn add_client(&self, client: &Client) -> Result<(), Error> {
        self.inner.db.add_client(client)
    }

    /// Registers a client, replacing any registration with the same id: for clients the node
    /// itself runs (the portal), whose secret is new at every start.
    pub fn put_client(&self, client: &Client) -> Result<(), Error> {
        self.inner.db.save_client(client, true)
    }

    pub fn client(&self, client_id: &str) -> Result<Option<Client>, Error> {
        self.inner.db.client(client_id)
    }

    fn is_revoked(&self, jti: &str) -> bool {
        !jti.is_empty()
            && self
                .inner
                .revoked
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(jti)
    }

    /// The JWKS document: the public keys that still verify (current and not yet retired).
    pub fn jwks(&self) -> Value {
        let now = now();
        let retire = self.inner.config.key_retire_days;
        let ring = self.read_ring();
        let keys: Vec<Value> = ring
            .keys
            .iter()
            .rev()
            .filter(|k| k.verifies_at(now, retire))
            .map(keys::RingKey::jwk)
            .collect();
        json!({ "keys": keys })
    }

    /// The ring, re-read from disk first when `kid` is unknown and another process (such as
    /// `concord token issue`) has rotated the keys since.
    fn ring_with(&self, kid: &str) -> std::sync::RwLockReadGuard<'_, Ring> {
        {
            let ring = self.read_ring();
            if ring.find(kid).is_some() || !ring.changed_on_disk() {
                return ring;
            }
        }
        {
            let mut ring = self.write_ring();
            if ring.changed_on_disk()
                && let Some(dir) = ring.dir.clone()
            {
                match Ring::load(&dir) {
                    Ok(fresh) => *ring = fresh,
                    Err(error) => {
                        tracing::warn!(reason = %error, "the key ring could not be re-read")
                    }
                }
            }
        }
        self.read_ring()
    }

    fn read_ring(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.inner
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_ring(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.inner
            .ring
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) fn jwt_reason(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as Jwt;
    match error.kind() {
        Jwt::ExpiredSignature => "the access token has expired",
        Jwt::ImmatureSignature => "the access token is not valid yet",
        Jwt::InvalidIssuer => "the access token was not issued by this node",
        Jwt::InvalidAudience => "the access token is not for this server",
        Jwt::InvalidSignature => "the access token's signature is not valid",
        Jwt::MissingRequiredClaim(_) => "the access token lacks a required claim",
        _ => "the access token is not a valid JWT",
    }
}

/// Whether a token with this `exp` has expired now, as jsonwebtoken's validation decides it:
/// refused when `exp < now - leeway`, on jsonwebtoken's own clock. A negative `exp` never gets
/// this far (jsonwebtoken refuses it as malformed), so it counts as expired.
fn expired(exp: i64, leeway: u64) -> bool {
    let now = jsonwebtoken::get_current_timestamp();
    u64::try_from(exp).map_or(true, |exp| exp < now.saturating_sub(leeway))
}

fn unauthenticated(reason: &str) -> Error {
    Error::new(ErrorKind::Unauthenticated, reason)
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// 128 random bits, base64url: token ids, codes, CSRF tokens.
pub(crate) fn random_id() -> Result<String, Error> {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|_| Error::new(ErrorKind::Internal, "no randomness is available"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    //! The cache's inner workings, which the integration tests in `tests/tokens.rs` cannot
    //! see: that a verified token is remembered, that failures are not, and that a hit checks
    //! its key against the ring itself rather than relying on `rotate` clearing the cache.

    use super::*;

    fn server() -> AuthServer {
        AuthServer::ephemeral(AuthConfig::default()).unwrap()
    }

    #[test]
    fn a_verified_token_is_remembered_and_a_refused_one_is_not() {
        let auth = server();
        let token = auth.mint(&Claims::system("feed", "system/*.rs")).unwrap();
        let first = auth.verify(&token).unwrap();
        assert_eq!(auth.inner.verified.len(), 1);
        assert_eq!(auth.verify(&token).unwrap(), first);
        assert_eq!(auth.inner.verified.len(), 1);
        let expired = auth
            .mint(&Claims {
                iat: now() - 7200,
                exp: now() - 3600,
                ..Claims::system("feed", "system/*.rs")
            })
            .unwrap();
        assert!(auth.verify(&expired).is_err());
        assert!(auth.verify("not-a-jwt").is_err());
        assert_eq!(auth.inner.verified.len(), 1, "failures are not cached");
        // A refused hit is forgotten.
        auth.revoke(&first.jti, first.exp).unwrap();
        assert!(auth.verify(&token).is_err());
        assert_eq!(auth.inner.verified.len(), 0);
        // A revoked token is refused before it is remembered.
        assert!(auth.verify(&token).is_err());
        assert_eq!(auth.inner.verified.len(), 0);
    }

    #[test]
    fn a_hit_is_refused_when_its_key_has_retired_though_the_cache_was_not_cleared() {
        let auth = server();
        let token = auth.mint(&Claims::system("feed", "system/*.rs")).unwrap();
        auth.verify(&token).unwrap();
        // The key was superseded longer ago than `key_retire_days`: it retired by the passing
        // of time, which no rotation call announces.
        {
            let mut ring = auth.write_ring();
            ring.rotate(now()).unwrap();
            let retire_days = i64::try_from(auth.config().key_retire_days).unwrap();
            ring.keys[0].superseded = Some(now() - (retire_days + 1) * 86_400);
        }
        assert_eq!(auth.inner.verified.len(), 1);
        let error = auth.verify(&token).unwrap_err();
        assert!(error.to_string().contains("retired key"), "{error}");
        assert_eq!(auth.inner.verified.len(), 0);
    }
}
