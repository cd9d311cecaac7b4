//! Local accounts, registered clients and the authorization server's other records, in
//! `<data>/auth.db` (SQLite, WAL).
//!
//! Owns: the schema (users, clients, refresh tokens, revoked token ids, authorization codes,
//! EHR launch contexts), argon2id password hashes, and sign-in lockout (five failures lock an
//! account for fifteen minutes). Does not: serve HTTP or sign tokens, and never stores or logs a
//! password, a secret or a token in clear (refresh tokens and client secrets are stored hashed).

use std::path::Path;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use concord_access::Role;
use concord_fhir::{Error, ErrorKind};
use rusqlite::{Connection, OptionalExtension, params};

/// Failed sign-ins that lock an account.
pub const LOCKOUT_FAILURES: u32 = 5;
/// How long a locked account stays locked, in seconds.
pub const LOCKOUT_SECONDS: i64 = 15 * 60;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    org TEXT,
    patient TEXT,
    proxy_for TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER
);
CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    auth TEXT NOT NULL CHECK (auth IN ('public', 'secret', 'private_key_jwt')),
    secret_hash TEXT,
    jwks TEXT,
    scopes TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('app', 'backend'))
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    scope TEXT NOT NULL,
    patient TEXT,
    expires INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family);
CREATE TABLE IF NOT EXISTS revoked_jtis (
    jti TEXT PRIMARY KEY,
    expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE TABLE IF NOT EXISTS authorization_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    sub TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT,
    patient TEXT,
    expires INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS launch_contexts (
    launch_hash TEXT PRIMARY KEY,
    patient TEXT NOT NULL,
    sub TEXT NOT NULL,
    expires INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
";

/// A local account, as stored (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    /// Role codes (`clinician`, `patient`, ...), each a [`Role`] code.
    pub roles: Vec<String>,
    pub org: Option<String>,
    /// For a patient: their hub Patient id.
    pub patient: Option<String>,
    /// For a proxy: the hub Patient ids they may act for.
    pub proxy_for: Vec<String>,
    pub disabled: bool,
    pub failed_attempts: u32,
    /// Unix seconds until which sign-in is refused.
    pub locked_until: Option<i64>,
}

/// A new account.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub id: String,
    pub roles: Vec<String>,
    pub org: Option<String>,
    pub patient: Option<String>,
    pub proxy_for: Vec<String>,
    pub password: String,
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// A public client (a browser or native app): PKCE only.
    Public,
    /// `client_secret_basic`: the stored value is an argon2id hash of the secret.
    Secret(String),
    /// `private_key_jwt`: the client's JWKS (JSON).
    PrivateKeyJwt(String),
}

/// An app (authorization code) or a backend service (client credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    App,
    Backend,
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// Exactly as registered; authorize requests must match one byte for byte.
    pub redirect_uris: Vec<String>,
    pub auth: ClientAuth,
    /// The scopes the client may be granted.
    pub scopes: Vec<String>,
    pub kind: ClientKind,
}

/// An authorization code's grant, until it is exchanged.
#[derive(Debug, Clone)]
pub(crate) struct IssuedCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub sub: String,
    pub scope: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub patient: Option<String>,
    pub expires: i64,
}

/// What a refresh token grants.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub patient: Option<String>,
    pub expires: i64,
}

pub(crate) enum RefreshUse {
    Unknown,
    /// Used before: the family is now revoked.
    Reused,
    Fresh {
        family: String,
        grant: RefreshGrant,
    },
}

/// The database; one connection, serialised (sign-ins and token grants are rare next to the
/// reads the hub serves, and verification does not touch it).
pub(crate) struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, Error> {
        let conn = Connection::open(path)
            .map_err(|_| internal("the account database cannot be opened"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|_| internal("the account database cannot use WAL"))?;
        Db::with(conn)
    }

    pub fn memory() -> Result<Db, Error> {
        Db::with(Connection::open_in_memory().map_err(|_| internal("no in-memory database"))?)
    }

    fn with(conn: Connection) -> Result<Db, Error> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|_| internal("the account database schema cannot be created"))?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    pub fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add_user(&self, user: &NewUser) -> Result<(), Error> {
        check_id(&user.id, "user id")?;
        check_roles(&user.roles)?;
        if user.password.chars().count() < 12 {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a password needs at least 12 characters",
            ));
        }
        let has = |role: &str| user.roles.iter().any(|r| r == role);
        if has("patient") && user.patient.is_none() {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a patient account needs the patient's hub id (--patient)",
            ));
        }
        if has("proxy") && user.proxy_for.is_empty() {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a proxy account needs the people they act for (--proxy-for)",
            ));
        }
        let hash = hash_secret(&user.password)?;
        let inserted = self
            .conn()
            .execute(
                "INSERT INTO users (id, password_hash, roles, org, patient, proxy_for)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                params![
                    user.id,
                    hash,
                    user.roles.join(" "),
                    user.org,
                    user.patient,
                    user.proxy_for.join(" ")
                ],
            )
            .map_err(|_| internal("the account cannot be saved"))?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                "an account with that id exists already",
            ));
        }
        Ok(())
    }

    pub fn user(&self, id: &str) -> Result<Option<User>, Error> {
        self.conn()
            .query_row(
                "SELECT id, roles, org, patient, proxy_for, disabled, failed_attempts, locked_until
                 FROM users WHERE id = ?1",
                [id],
                user_from_row,
            )
            .optional()
            .map_err(|_| internal("the account cannot be read"))
    }

    pub fn users(&self) -> Result<Vec<User>, Error> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(
                "SELECT id, roles, org, patient, proxy_for, disabled, failed_attempts, locked_until
                 FROM users ORDER BY id",
            )
            .map_err(|_| internal("the accounts cannot be read"))?;
        let rows = statement
            .query_map([], user_from_row)
            .map_err(|_| internal("the accounts cannot be read"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|_| internal("the accounts cannot be read"))
    }

    pub fn set_roles(&self, id: &str, roles: &[String]) -> Result<(), Error> {
        check_roles(roles)?;
        self.update_user(
            id,
            "UPDATE users SET roles = ?2 WHERE id = ?1",
            &roles.join(" "),
        )
    }

    pub fn set_disabled(&self, id: &str, disabled: bool) -> Result<(), Error> {
        let changed = self
            .conn()
            .execute(
                "UPDATE users SET disabled = ?2 WHERE id = ?1",
                params![id, disabled],
            )
            .map_err(|_| internal("the account cannot be saved"))?;
        found(changed)
    }

    fn update_user(&self, id: &str, sql: &str, value: &str) -> Result<(), Error> {
        let changed = self
            .conn()
            .execute(sql, params![id, value])
            .map_err(|_| internal("the account cannot be saved"))?;
        found(changed)
    }

    /// Checks a password at `now`: refused when the account is unknown, disabled or locked, or
    /// the password is wrong (which counts towards the lockout). One message for every refusal,
    /// so a caller learns nothing about which accounts exist; the lockout has its own kind.
    pub fn check_password(&self, id: &str, password: &str, now: i64) -> Result<User, Error> {
        let refused = || {
            Error::new(
                ErrorKind::Unauthenticated,
                "the user id or password is not right",
            )
        };
        let stored: Option<(String, User)> = self
            .conn()
            .query_row(
                "SELECT id, roles, org, patient, proxy_for, disabled, failed_attempts, locked_until,
                        password_hash
                 FROM users WHERE id = ?1",
                [id],
                |row| Ok((row.get::<_, String>(8)?, user_from_row(row)?)),
            )
            .optional()
            .map_err(|_| internal("the account cannot be read"))?;
        let Some((hash, user)) = stored else {
            // Spend the time a real check would, so timing does not tell which ids exist.
            let _ = verify_secret(dummy_hash(), password);
            return Err(refused());
        };
        if user.locked_until.is_some_and(|until| until > now) {
            return Err(Error::new(
                ErrorKind::TooManyRequests,
                "this account is locked after too many failed sign-ins; try again later",
            ));
        }
        if !verify_secret(&hash, password) {
            let failures = user.failed_attempts.saturating_add(1);
            let locked_until = (failures >= LOCKOUT_FAILURES).then_some(now + LOCKOUT_SECONDS);
            // A lock starts a new count, so the next lock needs five more failures.
            let count = if locked_until.is_some() { 0 } else { failures };
            self.conn()
                .execute(
                    "UPDATE users SET failed_attempts = ?2, locked_until = COALESCE(?3, locked_until)
                     WHERE id = ?1",
                    params![id, count, locked_until],
                )
                .map_err(|_| internal("the account cannot be saved"))?;
            return Err(refused());
        }
        if user.disabled {
            return Err(refused());
        }
        self.conn()
            .execute(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL WHERE id = ?1",
                [id],
            )
            .map_err(|_| internal("the account cannot be saved"))?;
        Ok(User {
            failed_attempts: 0,
            locked_until: None,
            ..user
        })
    }

    pub fn add_client(&self, client: &Client) -> Result<(), Error> {
        self.save_client(client, false)
    }

    /// Registers a client, or replaces the registration of one with the same id when `replace`.
    pub fn save_client(&self, client: &Client, replace: bool) -> Result<(), Error> {
        check_id(&client.client_id, "client id")?;
        if client.kind == ClientKind::App && client.redirect_uris.is_empty() {
            return Err(Error::new(
                ErrorKind::Invalid,
                "an app needs at least one redirect URI",
            ));
        }
        for uri in &client.redirect_uris {
            let parsed = url::Url::parse(uri).map_err(|_| {
                Error::new(ErrorKind::Invalid, "a redirect URI is not an absolute URL")
            })?;
            if parsed.fragment().is_some() {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    "a redirect URI must not have a fragment",
                ));
            }
        }
        let (auth, secret_hash, jwks) = match &client.auth {
            ClientAuth::Public => ("public", None, None),
            ClientAuth::Secret(hash) => ("secret", Some(hash.clone()), None),
            ClientAuth::PrivateKeyJwt(jwks) => {
                let parsed: serde_json::Value = serde_json::from_str(jwks)
                    .map_err(|_| Error::new(ErrorKind::Invalid, "the client's JWKS is not JSON"))?;
                if !parsed["keys"].is_array() {
                    return Err(Error::new(
                        ErrorKind::Invalid,
                        "the client's JWKS has no keys list",
                    ));
                }
                ("private_key_jwt", None, Some(jwks.clone()))
            }
        };
        if client.kind == ClientKind::Backend && auth != "private_key_jwt" {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a backend service authenticates with private_key_jwt (--jwks-file)",
            ));
        }
        let inserted = self
            .conn()
            .execute(
                "INSERT INTO clients (client_id, name, redirect_uris, auth, secret_hash, jwks, scopes, kind)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (client_id) DO UPDATE SET name = ?2, redirect_uris = ?3, auth = ?4,
                     secret_hash = ?5, jwks = ?6, scopes = ?7, kind = ?8
                 WHERE ?9",
                params![
                    client.client_id,
                    client.name,
                    client.redirect_uris.join(" "),
                    auth,
                    secret_hash,
                    jwks,
                    client.scopes.join(" "),
                    match client.kind {
                        ClientKind::App => "app",
                        ClientKind::Backend => "backend",
                    },
                    replace
                ],
            )
            .map_err(|_| internal("the client cannot be saved"))?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                "a client with that id exists already",
            ));
        }
        Ok(())
    }

    pub fn client(&self, client_id: &str) -> Result<Option<Client>, Error> {
        self.conn()
            .query_row(
                "SELECT client_id, name, redirect_uris, auth, secret_hash, jwks, scopes, kind
                 FROM clients WHERE client_id = ?1",
                [client_id],
                |row| {
                    let auth: String = row.get(3)?;
                    let secret: Option<String> = row.get(4)?;
                    let jwks: Option<String> = row.get(5)?;
                    let kind: String = row.get(7)?;
                    Ok(Client {
                        client_id: row.get(0)?,
                        name: row.get(1)?,
                        redirect_uris: words(&row.get::<_, String>(2)?),
                        auth: match auth.as_str() {
                            "secret" => ClientAuth::Secret(secret.unwrap_or_default()),
                            "private_key_jwt" => {
                                ClientAuth::PrivateKeyJwt(jwks.unwrap_or_default())
                            }
                            _ => ClientAuth::Public,
                        },
                        scopes: words(&row.get::<_, String>(6)?),
                        kind: if kind == "backend" {
                            ClientKind::Backend
                        } else {
                            ClientKind::App
                        },
                    })
                },
            )
            .optional()
            .map_err(|_| internal("the client cannot be read"))
    }

    /// Records a client assertion's `jti`; false when the client has used it before (a
    /// replay). Expired entries are dropped first: an expired assertion is refused anyway.
    pub fn remember_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool, Error> {
        let conn = self.conn();
        conn.execute("DELETE FROM assertion_jtis WHERE expires < ?1", [now])
            .and_then(|_| {
                conn.execute(
                    "INSERT INTO assertion_jtis (client_id, jti, expires) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    params![client_id, jti, expires],
                )
            })
            .map(|inserted| inserted == 1)
            .map_err(|_| internal("the client assertion cannot be recorded"))
    }

    /// Stores an authorization code (by its hash) for one exchange before `expires`.
    pub fn save_code(&self, code_hash: &str, code: &IssuedCode) -> Result<(), Error> {
        self.conn()
            .execute(
                "INSERT INTO authorization_codes
                 (code_hash, client_id, redirect_uri, sub, scope, code_challenge, nonce, patient, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    code_hash,
                    code.client_id,
                    code.redirect_uri,
                    code.sub,
                    code.scope,
                    code.code_challenge,
                    code.nonce,
                    code.patient,
                    code.expires
                ],
            )
            .map_err(|_| internal("the authorization code cannot be saved"))?;
        Ok(())
    }

    /// Takes a code: marks it used and returns it, once. A second take finds nothing.
    pub fn take_code(&self, code_hash: &str) -> Result<Option<IssuedCode>, Error> {
        self.conn()
            .query_row(
                "UPDATE authorization_codes SET used = 1 WHERE code_hash = ?1 AND used = 0
                 RETURNING client_id, redirect_uri, sub, scope, code_challenge, nonce, patient, expires",
                [code_hash],
                |row| {
                    Ok(IssuedCode {
                        client_id: row.get(0)?,
                        redirect_uri: row.get(1)?,
                        sub: row.get(2)?,
                        scope: row.get(3)?,
                        code_challenge: row.get(4)?,
                        nonce: row.get(5)?,
                        patient: row.get(6)?,
                        expires: row.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|_| internal("the authorization code cannot be read"))
    }

    /// Stores a refresh token (by its hash) in a family (the chain of rotations from one grant).
    pub fn save_refresh(
        &self,
        token_hash: &str,
        family: &str,
        grant: &RefreshGrant,
    ) -> Result<(), Error> {
        self.conn()
            .execute(
                "INSERT INTO refresh_tokens (token_hash, family, client_id, sub, scope, patient, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![token_hash, family, grant.client_id, grant.sub, grant.scope, grant.patient, grant.expires],
            )
            .map_err(|_| internal("the refresh token cannot be saved"))?;
        Ok(())
    }

    /// Uses a refresh token once. A token used before (or revoked) is a sign it was stolen:
    /// its whole family is revoked and nothing is returned.
    pub fn use_refresh(&self, token_hash: &str) -> Result<RefreshUse, Error> {
        let conn = self.conn();
        let row: Option<(String, bool, bool, RefreshGrant)> = conn
            .query_row(
                "SELECT family, used, revoked, client_id, sub, scope, patient, expires
                 FROM refresh_tokens WHERE token_hash = ?1",
                [token_hash],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        RefreshGrant {
                            client_id: row.get(3)?,
                            sub: row.get(4)?,
                            scope: row.get(5)?,
                            patient: row.get(6)?,
                            expires: row.get(7)?,
                        },
                    ))
                },
            )
            .optional()
            .map_err(|_| internal("the refresh token cannot be read"))?;
        let Some((family, used, revoked, grant)) = row else {
            return Ok(RefreshUse::Unknown);
        };
        if used || revoked {
            conn.execute(
                "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1",
                [&family],
            )
            .map_err(|_| internal("the refresh token family cannot be revoked"))?;
            return Ok(RefreshUse::Reused);
        }
        conn.execute(
            "UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?1",
            [token_hash],
        )
        .map_err(|_| internal("the refresh token cannot be saved"))?;
        Ok(RefreshUse::Fresh { family, grant })
    }

    pub fn save_launch(
        &self,
        launch_hash: &str,
        patient: &str,
        sub: &str,
        expires: i64,
    ) -> Result<(), Error> {
        self.conn()
            .execute(
                "INSERT INTO launch_contexts (launch_hash, patient, sub, expires) VALUES (?1, ?2, ?3, ?4)",
                params![launch_hash, patient, sub, expires],
            )
            .map_err(|_| internal("the launch cannot be saved"))?;
        Ok(())
    }

    /// Takes a launch once: (patient, user, expiry).
    pub fn take_launch(&self, launch_hash: &str) -> Result<Option<(String, String, i64)>, Error> {
        self.conn()
            .query_row(
                "UPDATE launch_contexts SET used = 1 WHERE launch_hash = ?1 AND used = 0
                 RETURNING patient, sub, expires",
                [launch_hash],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(|_| internal("the launch cannot be read"))
    }

    pub fn revoke_jti(&self, jti: &str, expires: i64, now: i64) -> Result<(), Error> {
        let conn = self.conn();
        conn.execute("DELETE FROM revoked_jtis WHERE expires < ?1", [now])
            .and_then(|_| {
                conn.execute(
                    "INSERT INTO revoked_jtis (jti, expires) VALUES (?1, ?2)
                     ON CONFLICT (jti) DO UPDATE SET expires = excluded.expires",
                    params![jti, expires],
                )
            })
            .map_err(|_| internal("the revocation cannot be saved"))?;
        Ok(())
    }

    pub fn revoked_jtis(&self, now: i64) -> Result<Vec<(String, i64)>, Error> {
        let conn = self.conn();
        let mut statement = conn
            .prepare("SELECT jti, expires FROM revoked_jtis WHERE expires >= ?1")
            .map_err(|_| internal("the revocations cannot be read"))?;
        let rows = statement
            .query_map([now], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|_| internal("the revocations cannot be read"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|_| internal("the revocations cannot be read"))
    }
}

/// A hash of a random string, checked against when the account does not exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_secret("no such account").unwrap_or_default())
}

/// An argon2id hash (PHC string) of a password or client secret.
pub fn hash_secret(secret: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| internal("no randomness is available"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| internal("the salt cannot be encoded"))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| internal("the password cannot be hashed"))
}

/// Whether `secret` matches an argon2id hash; a malformed hash never matches.
pub fn verify_secret(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        roles: words(&row.get::<_, String>(1)?),
        org: row.get(2)?,
        patient: row.get(3)?,
        proxy_for: words(&row.get::<_, String>(4)?),
        disabled: row.get(5)?,
        failed_attempts: row.get(6)?,
        locked_until: row.get(7)?,
    })
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

fn check_id(id: &str, what: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Invalid,
            format!("a {what} is 1 to 64 letters, digits, '-', '.', '_' or '@'"),
        ))
    }
}

fn check_roles(roles: &[String]) -> Result<(), Error> {
    if roles.is_empty() {
        return Err(Error::new(
            ErrorKind::Invalid,
            "an account needs at least one role",
        ));
    }
    for role in roles {
        if Role::parse(role).is_none() {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.code()).collect();
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("unknown role {role:?}; the roles are {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn found(changed: usize) -> Result<(), Error> {
    if changed == 0 {
        Err(Error::new(ErrorKind::NotFound, "no account with that id"))
    } else {
        Ok(())
    }
}

fn internal(reason: &str) -> Error {
    Error::new(ErrorKind::Internal, reason)
}
