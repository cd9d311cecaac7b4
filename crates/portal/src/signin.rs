//! Signing in and out: the portal's side of SMART App Launch
//! (<https://hl7.org/fhir/smart-app-launch/app-launch.html>).
//!
//! Owns: starting the authorization code flow with PKCE (`/portal/login`), EHR launch
//! (`/portal/launch?iss=&launch=`, which opens the patient in context with no second sign-in),
//! the callback that exchanges the code at the token endpoint as a confidential client, the
//! session that follows, signing out (which revokes the token), and [`SignedIn`], the extractor
//! every page uses. Does not: show a sign-in form or check passwords (the authorization server
//! at `/oauth/authorize` does, with its lockout and rate limits).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use maud::html;
use sha2::{Digest, Sha256};

use crate::error::PortalError;
use crate::fhir::Caller;
use crate::session::{
    COOKIE, LOGIN_COOKIE, Pending, Session, cookie, now, random_token, set_cookie,
};
use crate::{CLIENT_ID, PortalState, SCOPE, layout};

/// A page request from a signed-in person: their session, and what the FHIR calls made for the
/// page need to carry.
pub struct SignedIn {
    pub session: Arc<Session>,
    pub host: String,
    pub request_id: Option<String>,
}

impl SignedIn {
    /// The caller for FHIR requests made on this person's behalf.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            token: Some(&self.session.access_token),
            host: &self.host,
            request_id: self.request_id.as_deref(),
        }
    }
}

impl FromRequestParts<PortalState> for SignedIn {
    type Rejection = PortalError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PortalState,
    ) -> Result<Self, Self::Rejection> {
        let Some(session) = state.sessions.find(&parts.headers) else {
            let return_to = parts
                .uri
                .path_and_query()
                .map_or("/portal/", |p| p.as_str())
                .to_string();
            // Only a page the browser asked for with GET is worth returning to.
            let return_to = if parts.method == axum::http::Method::GET {
                return_to
            } else {
                "/portal/".into()
            };
            return Err(PortalError::SignIn { return_to });
        };
        Ok(SignedIn {
            session,
            host: host(&parts.headers),
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }
}

/// The request's `Host`, as the FHIR calls made for it should carry.
pub fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost")
        .to_string()
}

/// Where a person goes when they sign in or open the portal's front page.
pub fn home_of(session: &Session) -> &'static str {
    if session.is_citizen() {
        "/portal/me"
    } else if session.has_role("privacy-officer") {
        "/portal/admin/break-glass"
    } else if session.has_role("data-steward") {
        "/portal/admin/matching"
    } else {
        "/portal/search"
    }
}

fn secure(state: &PortalState) -> bool {
    state
        .auth
        .config()
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

/// `GET /portal/login?return_to=/portal/...`: off to the authorization server's sign-in.
pub async fn login(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let return_to = query
        .get("return_to")
        .filter(|r| r.starts_with("/portal/") && !r.starts_with("/portal//"))
        .cloned()
        .unwrap_or_else(|| "/portal/".into());
    authorize(&state, &headers, return_to, None)
}

/// `GET /portal/launch?iss=...&launch=...`: SMART EHR launch from a host system.
pub async fn launch(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let root = state.auth.root(&headers);
    let expected = format!("{root}/fhir");
    let iss = query.get("iss").map(|i| i.trim_end_matches('/'));
    if iss != Some(expected.as_str()) {
        return Err(PortalError::Invalid(
            "The launch came for a different record server (iss) than this portal's.".into(),
        ));
    }
    let Some(launch) = query.get("launch").filter(|l| !l.is_empty()) else {
        return Err(PortalError::Invalid(
            "The launch has no launch value.".into(),
        ));
    };
    Ok(authorize(&state, &headers, "/portal/".into(), Some(launch)))
}

fn authorize(
    state: &PortalState,
    headers: &HeaderMap,
    return_to: String,
    launch: Option<&str>,
) -> Response {
    let root = state.auth.root(headers);
    let oauth_state = random_token();
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    state.sessions.begin(
        &oauth_state,
        Pending {
            verifier,
            return_to,
            created: now(),
        },
    );
    let redirect_uri = format!("{root}/portal/callback");
    let aud = format!("{root}/fhir");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", SCOPE)
        .append_pair("state", &oauth_state)
        .append_pair("aud", &aud)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(launch) = launch {
        query.append_pair("launch", launch);
    }
    let mut response =
        Redirect::to(&format!("/oauth/authorize?{}", query.finish())).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &oauth_state, 600, secure(state)),
    );
    response
}

/// `GET /portal/callback?code=&state=` (or `?error=`): the code becomes a session.
pub async fn callback(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    let oauth_state = query.get("state").cloned().unwrap_or_default();
    if oauth_state.is_empty() || cookie(&headers, LOGIN_COOKIE).as_deref() != Some(&oauth_state) {
        return Err(PortalError::Invalid(
            "This sign-in was not started in this browser, or it expired. Start again from the portal's front page."
                .into(),
        ));
    }
    let pending = state.sessions.take_pending(&oauth_state).ok_or_else(|| {
        PortalError::Invalid(
            "This sign-in expired. Start again from the portal's front page.".into(),
        )
    })?;
    if let Some(error) = query.get("error") {
        let description = query
            .get("error_description")
            .cloned()
            .unwrap_or_else(|| error.clone());
        return Err(PortalError::Forbidden(format!(
            "Sign-in did not complete: {description}."
        )));
    }
    let code = query
        .get("code")
        .ok_or_else(|| PortalError::Invalid("The sign-in came back without a code.".into()))?;
    let root = state.auth.root(&headers);
    let redirect_uri = format!("{root}/portal/callback");
    let host = host(&headers);
    let mut extra = HeaderMap::new();
    let basic = STANDARD.encode(format!("{CLIENT_ID}:{}", state.config.client_secret));
    if let Ok(value) = HeaderValue::from_str(&format!("Basic {basic}")) {
        extra.insert(header::AUTHORIZATION, value);
    }
    let answer = state
        .fhir
        .post_form(
            &Caller {
                token: None,
                host: &host,
                request_id: None,
            },
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &redirect_uri),
                ("code_verifier", &pending.verifier),
            ],
            extra,
        )
        .await?;
    let token = answer.body["access_token"].as_str().filter(|_| answer.ok());
    let Some(token) = token else {
        return Err(PortalError::Forbidden(
            "The sign-in could not be completed. Start again from the portal's front page.".into(),
        ));
    };
    let claims = state
        .auth
        .verify(token)
        .map_err(|_| PortalError::Internal)?;
    let launched = answer.body["patient"].as_str().map(str::to_string);
    let session = state.sessions.create(Session {
        id: String::new(),
        csrf: String::new(),
        access_token: token.to_string(),
        user: claims.sub.clone(),
        roles: claims.roles.clone(),
        org: claims.org.clone(),
        patient: launched.clone().or(claims.patient.clone()),
        proxy_for: claims.proxy_for.clone(),
        expires: claims.exp,
    });
    let destination = match &launched {
        Some(patient) if !session.is_citizen() => format!("/portal/patient/{patient}"),
        _ if pending.return_to != "/portal/" => pending.return_to,
        _ => home_of(&session).to_string(),
    };
    let mut response = Redirect::to(&destination).into_response();
    let secure = secure(&state);
    let lifetime = (session.expires - now()).max(0);
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(COOKIE, &session.id, lifetime, secure),
    );
    headers.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, secure));
    Ok(response)
}

/// `POST /portal/logout`: ends the session and revokes its token.
pub async fn logout(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PortalError> {
    layout::check_csrf(&signed_in.session, form.get("csrf").map(String::as_str))?;
    state.sessions.end(&signed_in.session.id);
    let mut extra = HeaderMap::new();
    let basic = STANDARD.encode(format!("{CLIENT_ID}:{}", state.config.client_secret));
    if let Ok(value) = HeaderValue::from_str(&format!("Basic {basic}")) {
        extra.insert(header::AUTHORIZATION, value);
    }
    // Revocation is best effort: the session is gone either way, and the token expires soon.
    let _ = state
        .fhir
        .post_form(
            &Caller {
                token: None,
                host: &signed_in.host,
                request_id: signed_in.request_id.as_deref(),
            },
            "/oauth/revoke",
            &[("token", &signed_in.session.access_token)],
            extra,
        )
        .await;
    let body = html! {
        h1 { "You have signed out" }
        p { a href="/portal/login" { "Sign in again" } }
    };
    let mut response = layout::page("Signed out", None, body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(COOKIE, "", 0, secure(&state)),
    );
    Ok(response)
}
