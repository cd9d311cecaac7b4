//! Sign-in sessions: who is signed in to the portal in this browser, with which access token.
//!
//! Owns: the session cookie (`concord_portal`: random, HttpOnly, SameSite=Lax, path `/portal`),
//! the sessions themselves, held in memory, the sign-ins in progress (the OAuth `state` and
//! PKCE verifier between `/portal/login` and `/portal/callback`), and each session's CSRF token
//! for the portal's forms, and the break-glass grants a session obtained. Does not: check passwords or mint tokens (the authorization server
//! does), or keep sessions across a restart: after one, people sign in again, the safe direction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The session cookie's name.
pub const COOKIE: &str = "concord_portal";
/// The cookie that binds a sign-in in progress to the browser that started it.
pub const LOGIN_COOKIE: &str = "concord_portal_login";
/// A sign-in in progress is forgotten after ten minutes.
const PENDING_SECONDS: i64 = 600;

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    /// Must accompany every form the portal posts.
    pub csrf: String,
    pub access_token: String,
    /// The user's id at the authorization server.
    pub user: String,
    /// Role codes from the token (`clinician`, `patient`, `privacy-officer`, ...).
    pub roles: Vec<String>,
    /// The user's organisation (ODS code).
    pub org: Option<String>,
    /// For a patient or a launch: the hub Patient id in context.
    pub patient: Option<String>,
    /// For a proxy: the people they may act for.
    pub proxy_for: Vec<String>,
    /// Unix seconds when the access token expires; the session ends then.
    pub expires: i64,
}

impl Session {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Patients and proxies see the person-held record, everyone else the staff pages.
    pub fn is_citizen(&self) -> bool {
        self.has_role("patient") || self.has_role("proxy")
    }
}

/// A sign-in between `/portal/login` and `/portal/callback`.
#[derive(Debug, Clone)]
pub struct Pending {
    pub verifier: String,
    /// Where to go once signed in (a `/portal/` path).
    pub return_to: String,
    pub created: i64,
}

/// The portal's sessions and sign-ins in progress; cheap to clone.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Arc<Session>>,
    pending: HashMap<String, Pending>,
    /// Break-glass grants each session obtained through the portal, so the record can say it
    /// is open by break-glass and until when: (session id, Patient id) → (expiry in unix
    /// seconds, the expiry in words). The API does not say why it allowed a read.
    grants: HashMap<(String, String), (i64, String)>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session and returns it.
    pub fn create(&self, mut session: Session) -> Arc<Session> {
        session.id = random_token();
        session.csrf = random_token();
        let session = Arc::new(session);
        let mut inner = self.lock();
        let now = now();
        inner.sessions.retain(|_, s| s.expires > now);
        inner.sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session the request's cookie names.
    pub fn find(&self, headers: &HeaderMap) -> Option<Arc<Session>> {
        let id = cookie(headers, COOKIE)?;
        let inner = self.lock();
        inner
            .sessions
            .get(&id)
            .filter(|s| s.expires > now())
            .cloned()
    }

    pub fn end(&self, id: &str) {
        let mut inner = self.lock();
        inner.sessions.remove(id);
        inner.grants.retain(|(session, _), _| session != id);
    }

    /// Remembers a break-glass grant the session obtained for `patient`.
    pub fn remember_grant(&self, session: &str, patient: &str, expires: i64, text: String) {
        let mut inner = self.lock();
        let now = now();
        inner.grants.retain(|_, (until, _)| *until > now);
        inner
            .grants
            .insert((session.to_string(), patient.to_string()), (expires, text));
    }

    /// The expiry (in words) of the session's break-glass grant for `patient`, while in force.
    pub fn grant(&self, session: &str, patient: &str) -> Option<String> {
        self.lock()
            .grants
            .get(&(session.to_string(), patient.to_string()))
            .filter(|(expires, _)| *expires > now())
            .map(|(_, text)| text.clone())
    }

    /// Remembers a sign-in in progress under its `state`.
    pub fn begin(&self, state: &str, pending: Pending) {
        let mut inner = self.lock();
        let now = now();
        inner
            .pending
            .retain(|_, p| now - p.created < PENDING_SECONDS);
        inner.pending.insert(state.to_string(), pending);
    }

    /// Takes the sign-in in progress for `state`, once.
    pub fn take_pending(&self, state: &str) -> Option<Pending> {
        let pending = self.lock().pending.remove(state)?;
        (now() - pending.created < PENDING_SECONDS).then_some(pending)
    }
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without an entropy source the node cannot run safely at all; getrandom only fails on
    // platforms that have none.
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The value of the request's cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// A `Set-Cookie` value for the portal's path; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path=/portal; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
