//! The authorization code flow: the sign-in form at `/oauth/authorize`, and the
//! `authorization_code` and `refresh_token` grants at the token endpoint.
//!
//! Owns: checking an authorize request (the client and its exactly registered redirect URI
//! first, so errors go back to the app only through a URI it registered; PKCE with S256
//! required; `aud` must be this FHIR base), the server-rendered sign-in form (plain HTML, no
//! scripts or external resources, a CSRF token bound to a cookie), single-use codes that live
//! one minute, PKCE verification, client authentication (`client_secret_basic`, private_key_jwt,
//! or none for public clients), id tokens for `openid`, and rotating refresh tokens whose reuse
//! revokes their whole family; EHR launch (`POST /oauth/launch` by a host system holding
//! `system/launch`, then `authorize` with `launch=` signs that user in with that patient in
//! context and no form). Does not: keep sign-in sessions between authorize requests.

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use concord_fhir::ErrorKind;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::accounts::{Client, ClientAuth, IssuedCode, RefreshGrant, RefreshUse};
use crate::oauth::{
    OAuthError, assertion_client, granted_scope, no_store, server_error, tokio_blocking,
};
use crate::{AuthServer, Claims, now, random_id};

const CSRF_COOKIE: &str = "concord_csrf";
const CODE_SECONDS: i64 = 60;
const LAUNCH_SECONDS: i64 = 300;
/// Refresh tokens for `offline_access` live thirty days; for `online_access`, twelve hours.
const OFFLINE_SECONDS: i64 = 30 * 24 * 3600;
const ONLINE_SECONDS: i64 = 12 * 3600;

/// The authorize request's parameters, carried through the sign-in form.
const PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "launch",
];

/// How an authorize request fails: with a page of its own when the redirect URI cannot be
/// trusted, otherwise back to the app.
enum Refusal {
    Page(StatusCode, &'static str),
    Redirect(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page(status, message) => (
                status,
                page("Sign-in refused", &format!("<p>{}</p>", escape(message))),
            )
                .into_response(),
            Refusal::Redirect(location) => redirect(&location),
        }
    }
}

fn redirect(location: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, no_store()).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `redirect_uri` with the query parameters added.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = match url::Url::parse(uri) {
        Ok(url) => url,
        Err(_) => return uri.to_string(),
    };
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// A checked authorize request.
struct Authorize {
    client: Client,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    code_challenge: String,
    nonce: Option<String>,
}

fn check(
    auth: &AuthServer,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Authorize, Refusal> {
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let client = get("client_id")
        .and_then(|id| auth.client(id).ok().flatten())
        .ok_or(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The application is not registered with this server.",
        ))?;
    let redirect_uri = get("redirect_uri")
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
        .ok_or(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The application's return address is not one it registered.",
        ))?
        .to_string();
    let state = get("state").map(str::to_string);
    let back = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(state) = &state {
            pairs.push(("state", state));
        }
        Refusal::Redirect(with_query(&redirect_uri, &pairs))
    };
    if get("response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let Some(code_challenge) = get("code_challenge") else {
        return Err(back(
            "invalid_request",
            "PKCE is required: code_challenge with S256",
        ));
    };
    if get("code_challenge_method") != Some("S256") {
        return Err(back(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    let audience = auth.config().audience.trim_end_matches('/');
    let derived = format!("{}/fhir", auth.root(headers));
    let aud = get("aud").map(|a| a.trim_end_matches('/'));
    if aud != Some(audience) && aud != Some(derived.as_str()) {
        return Err(back(
            "invalid_request",
            "aud must be this server's FHIR base URL",
        ));
    }
    let scope = granted_scope(get("scope"), &client.scopes).map_err(|_| {
        back(
            "invalid_scope",
            "a requested scope is not one the application may be granted",
        )
    })?;
    Ok(Authorize {
        code_challenge: code_challenge.to_string(),
        nonce: get("nonce").map(str::to_string),
        client,
        redirect_uri,
        scope,
        state,
    })
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

fn secure(auth: &AuthServer) -> &'static str {
    if auth
        .config()
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
    {
        "; Secure"
    } else {
        ""
    }
}

pub(crate) async fn authorize_form(
    State(auth): State<AuthServer>,
    headers: HeaderMap,
    axum::extract::Query(params): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let checked = {
        let auth = auth.clone();
        let headers = headers.clone();
        let params = params.clone();
        tokio::task::spawn_blocking(move || {
            let request = check(&auth, &params, &headers)?;
            match params.get("launch").filter(|l| !l.is_empty()) {
                Some(launch) => ehr_launch(&auth, request, launch).map(Next::Redirect),
                None => Ok(Next::Form(request.client.name)),
            }
        })
        .await
    };
    match checked {
        Ok(Ok(Next::Form(name))) => sign_in_form(&auth, &params, &name, None, StatusCode::OK),
        Ok(Ok(Next::Redirect(location))) => redirect(&location),
        Ok(Err(refusal)) => refusal.into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            page("Error", "<p>The request could not be completed.</p>"),
        )
            .into_response(),
    }
}

fn sign_in_form(
    auth: &AuthServer,
    params: &HashMap<String, String>,
    client_name: &str,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let Ok(csrf) = random_id() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            page("Error", "<p>The request could not be completed.</p>"),
        )
            .into_response();
    };
    let mut hidden = String::new();
    for name in PARAMS {
        if let Some(value) = params.get(*name) {
            hidden.push_str(&format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                escape(value)
            ));
        }
    }
    let problem = problem
        .map(|p| {
            format!(
                "<p role=\"alert\" class=\"error-summary\">{}</p>\n",
                escape(p)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>\n<p>{} is asking to use your Concord account.</p>\n{problem}\
         <form method=\"post\" action=\"/oauth/authorize\">\n{hidden}\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <div class=\"field\"><label for=\"username\">User id</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required></div>\n\
         <div class=\"field\"><label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></div>\n\
         <p><button type=\"submit\" class=\"button\">Sign in</button></p>\n</form>",
        escape(client_name)
    );
    let mut response = (status, no_store(), page("Sign in", &body)).into_response();
    let set_cookie = format!(
        "{CSRF_COOKIE}={csrf}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=900{}",
        secure(auth)
    );
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub(crate) async fn authorize_submit(
    State(auth): State<AuthServer>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    // Without connection info (a server not started with it) every caller shares one address,
    // which still limits each account.
    let ip = peer.map_or_else(|| "-".to_string(), |p| p.0.0.ip().to_string());
    let task = {
        let auth = auth.clone();
        let params = params.clone();
        move || sign_in(&auth, &params, &headers, &ip)
    };
    match tokio::task::spawn_blocking(task).await {
        Ok(Ok(location)) => redirect(&location),
        Ok(Err(SignInFailure::Refused(refusal))) => refusal.into_response(),
        Ok(Err(SignInFailure::Again(name, message, status))) => {
            sign_in_form(&auth, &params, &name, Some(message), status)
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            page("Error", "<p>The request could not be completed.</p>"),
        )
            .into_response(),
    }
}

enum SignInFailure {
    Refused(Refusal),
    /// Show the form again with this message.
    Again(String, &'static str, StatusCode),
}

fn sign_in(
    auth: &AuthServer,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    ip: &str,
) -> Result<String, SignInFailure> {
    let request = check(auth, params, headers).map_err(SignInFailure::Refused)?;
    let csrf = params.get("csrf").filter(|c| !c.is_empty());
    if csrf.is_none() || csrf.cloned() != cookie(headers, CSRF_COOKIE) {
        return Err(SignInFailure::Refused(Refusal::Page(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this server. Go back to the application and start again.",
        )));
    }
    let username = params
        .get("username")
        .map(String::as_str)
        .unwrap_or_default();
    if !auth.inner.attempts.allow(ip, username) {
        return Err(SignInFailure::Again(
            request.client.name,
            "Too many sign-in attempts: wait a minute and try again.",
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let password = params
        .get("password")
        .map(String::as_str)
        .unwrap_or_default();
    let user = match auth.check_password(username, password) {
        Ok(user) => user,
        Err(error) if error.kind == ErrorKind::TooManyRequests => {
            return Err(SignInFailure::Again(
                request.client.name,
                "Too many failed sign-ins: this account is locked for 15 minutes.",
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }
        Err(error) if error.kind == ErrorKind::Unauthenticated => {
            return Err(SignInFailure::Again(
                request.client.name,
                "The user id or password is not right.",
                StatusCode::UNAUTHORIZED,
            ));
        }
        Err(_) => {
            return Err(SignInFailure::Refused(Refusal::Page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The request could not be completed.",
            )));
        }
    };
    let scopes: Vec<&str> = request.scope.split_whitespace().collect();
    // A patient's standalone launch puts their own record in context.
    let patient = if scopes.contains(&"launch/patient") {
        user.patient.clone()
    } else {
        None
    };
    issue_code(auth, request, user.id, patient).map_err(SignInFailure::Refused)
}

/// Stores a code for the signed-in user and returns the redirect that hands it to the app.
fn issue_code(
    auth: &AuthServer,
    request: Authorize,
    sub: String,
    patient: Option<String>,
) -> Result<String, Refusal> {
    let failed = || {
        Refusal::Page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The request could not be completed.",
        )
    };
    let code = random_id().map_err(|_| failed())?;
    auth.inner
        .db
        .save_code(
            &digest(&code),
            &IssuedCode {
                client_id: request.client.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                sub,
                scope: request.scope,
                code_challenge: request.code_challenge,
                nonce: request.nonce,
                patient,
                expires: now() + CODE_SECONDS,
            },
        )
        .map_err(|_| failed())?;
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        pairs.push(("state", state));
    }
    Ok(with_query(&request.redirect_uri, &pairs))
}

/// An EHR launch: the host system already signed the user in and chose the patient, so the
/// code is issued without a form.
fn ehr_launch(auth: &AuthServer, request: Authorize, launch: &str) -> Result<String, Refusal> {
    let back = |description: &str| {
        let mut pairs = vec![
            ("error", "invalid_request"),
            ("error_description", description),
        ];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        Refusal::Redirect(with_query(&request.redirect_uri, &pairs))
    };
    if !request.scope.split_whitespace().any(|s| s == "launch") {
        return Err(back("an EHR launch needs the launch scope"));
    }
    let Ok(Some((patient, sub, expires))) = auth.inner.db.take_launch(&digest(launch)) else {
        return Err(back("the launch is unknown or was used already"));
    };
    if expires < now() {
        return Err(back("the launch has expired"));
    }
    if auth.user(&sub).ok().flatten().is_none_or(|u| u.disabled) {
        return Err(back("the launch's user cannot sign in"));
    }
    issue_code(auth, request, sub, Some(patient))
}

/// What a checked authorize request leads to.
enum Next {
    /// Show the sign-in form (for this client name).
    Form(String),
    /// Straight back to the app with a code (EHR launch).
    Redirect(String),
}

/// SHA-256, hex: codes and refresh tokens are stored only as this.
pub(crate) fn digest(secret: &str) -> String {
    hex_encode(&Sha256::digest(secret.as_bytes()))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Authenticates the client at the token endpoint: HTTP Basic for a secret, an assertion for
/// private_key_jwt, and for a public client only its id.
fn token_client(
    auth: &AuthServer,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
    endpoint: &str,
) -> Result<Client, OAuthError> {
    let invalid = |d| OAuthError::new("invalid_client", d);
    if form.contains_key("client_assertion") {
        return assertion_client(auth, form, endpoint);
    }
    if let Some((id, secret)) = basic(headers) {
        let client = auth
            .client(&id)
            .map_err(|_| server_error())?
            .ok_or_else(|| invalid("the client could not be authenticated"))?;
        return match &client.auth {
            ClientAuth::Secret(hash) if crate::accounts::verify_secret(hash, &secret) => Ok(client),
            _ => Err(invalid("the client could not be authenticated")),
        };
    }
    let id = form
        .get("client_id")
        .ok_or_else(|| invalid("client_id is required"))?;
    let client = auth
        .client(id)
        .map_err(|_| server_error())?
        .ok_or_else(|| invalid("the client could not be authenticated"))?;
    if client.auth != ClientAuth::Public {
        return Err(invalid("this client must authenticate"));
    }
    Ok(client)
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8()
        .ok()?
        .to_string();
    let secret = percent_encoding::percent_decode_str(secret)
        .decode_utf8()
        .ok()?
        .to_string();
    Some((id, secret))
}

pub(crate) async fn grant(
    auth: AuthServer,
    form: HashMap<String, String>,
    headers: HeaderMap,
    endpoint: String,
) -> Result<Value, OAuthError> {
    tokio_blocking(move || {
        let client = token_client(&auth, &form, &headers, &endpoint)?;
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => authorization_code(&auth, &client, &form),
            _ => refresh(&auth, &client, &form),
        }
    })
    .await
}

fn invalid_grant(description: &'static str) -> OAuthError {
    OAuthError::new("invalid_grant", description)
}

fn authorization_code(
    auth: &AuthServer,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::new("invalid_request", "code is required"))?;
    let issued = auth
        .inner
        .db
        .take_code(&digest(code))
        .map_err(|_| server_error())?
        .ok_or_else(|| invalid_grant("the code is unknown or was used already"))?;
    if issued.expires < now() {
        return Err(invalid_grant("the code has expired"));
    }
    if issued.client_id != client.client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if form.get("redirect_uri") != Some(&issued.redirect_uri) {
        return Err(invalid_grant(
            "redirect_uri does not match the authorize request",
        ));
    }
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| invalid_grant("code_verifier is required (PKCE)"))?;
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != issued.code_challenge {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let grant = RefreshGrant {
        client_id: issued.client_id,
        sub: issued.sub,
        scope: issued.scope,
        patient: issued.patient,
        expires: 0,
    };
    tokens(auth, &grant, None, issued.nonce.as_deref())
}

fn refresh(
    auth: &AuthServer,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let token = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required"))?;
    match auth
        .inner
        .db
        .use_refresh(&digest(token))
        .map_err(|_| server_error())?
    {
        RefreshUse::Unknown => Err(invalid_grant("the refresh token is not valid")),
        RefreshUse::Reused => {
            tracing::warn!(client = %client.client_id, "a refresh token was used twice; its family is revoked");
            Err(invalid_grant("the refresh token is not valid"))
        }
        RefreshUse::Fresh { family, grant } => {
            if grant.client_id != client.client_id {
                return Err(invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            if grant.expires < now() {
                return Err(invalid_grant("the refresh token has expired"));
            }
            tokens(auth, &grant, Some(family), None)
        }
    }
}

/// The token response for a user grant: an access token with the user's current roles, a
/// rotated refresh token when offline or online access was granted, an id token for `openid`.
fn tokens(
    auth: &AuthServer,
    grant: &RefreshGrant,
    family: Option<String>,
    nonce: Option<&str>,
) -> Result<Value, OAuthError> {
    let user = auth
        .user(&grant.sub)
        .map_err(|_| server_error())?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_grant("the account is no longer active"))?;
    let scopes: Vec<&str> = grant.scope.split_whitespace().collect();
    // A patient's FHIR user is their own Patient record.
    let fhir_user = user
        .patient
        .as_ref()
        .filter(|_| user.roles.iter().any(|r| r == "patient"))
        .map(|patient| format!("Patient/{patient}"));
    let claims = Claims {
        patient: grant.patient.clone(),
        proxy_for: user.proxy_for.clone(),
        client_id: Some(grant.client_id.clone()),
        fhir_user: fhir_user.clone(),
        ..Claims::user(
            user.id.clone(),
            user.roles.clone(),
            user.org.clone(),
            grant.scope.clone(),
        )
    };
    let access_token = auth.mint(&claims).map_err(|_| server_error())?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": auth.config().access_token_seconds,
        "scope": grant.scope,
    });
    if let Some(patient) = &grant.patient {
        body["patient"] = json!(patient);
    }
    let lifetime = if scopes.contains(&"offline_access") {
        Some(OFFLINE_SECONDS)
    } else if scopes.contains(&"online_access") {
        Some(ONLINE_SECONDS)
    } else {
        None
    };
    if let Some(lifetime) = lifetime {
        let token = random_id().map_err(|_| server_error())?;
        let family = match family {
            Some(family) => family,
            None => random_id().map_err(|_| server_error())?,
        };
        // A rotated token keeps the family's original expiry: rotation does not extend a grant.
        let expires = if grant.expires > 0 {
            grant.expires
        } else {
            now() + lifetime
        };
        auth.inner
            .db
            .save_refresh(
                &digest(&token),
                &family,
                &RefreshGrant {
                    expires,
                    ..grant.clone()
                },
            )
            .map_err(|_| server_error())?;
        body["refresh_token"] = json!(token);
    }
    if scopes.contains(&"openid") {
        let mut id_claims = json!({
            "iss": auth.config().issuer,
            "sub": user.id,
            "aud": grant.client_id,
            "iat": now(),
            "exp": now() + auth.config().access_token_seconds,
        });
        if let Some(nonce) = nonce {
            id_claims["nonce"] = json!(nonce);
        }
        if let Some(fhir_user) = fhir_user {
            id_claims["fhirUser"] = json!(fhir_user);
        }
        body["id_token"] = json!(auth.sign_json(&id_claims).map_err(|_| server_error())?);
    }
    Ok(body)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A page in the portal's look: it links the portal's stylesheet (`/portal/static/portal.css`,
/// served by the same node), and reads as plain HTML where no portal is mounted.
fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} - Concord</title>\n<link rel=\"stylesheet\" href=\"/portal/static/portal.css\">\n</head>\n<body>\n\
         <header class=\"site-header\"><div class=\"container header-row\"><span class=\"service-name\">Concord Care Record</span></div></header>\n\
         <main class=\"container\">\n{body}\n</main>\n</body>\n</html>\n",
        escape(title)
    ))
}

/// `POST /oauth/launch` `{"patient": id, "user": sub}` by a host system whose token has the
/// `system/launch` scope: a single-use launch value that lives five minutes.
pub(crate) async fn create_launch(
    State(auth): State<AuthServer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let host = crate::oauth::caller(&auth, &headers)
        .filter(|c| c.is_system() && c.scope.split_whitespace().any(|s| s == "system/launch"));
    if host.is_none() {
        return OAuthError::new(
            "invalid_client",
            "a launch needs a system token with the system/launch scope",
        )
        .into_response();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return OAuthError::new("invalid_request", "the body must be JSON").into_response();
    };
    let (Some(patient), Some(user)) = (request["patient"].as_str(), request["user"].as_str())
    else {
        return OAuthError::new("invalid_request", "patient and user are required").into_response();
    };
    let (patient, user) = (patient.to_string(), user.to_string());
    let created = tokio_blocking(move || {
        if auth.user(&user).ok().flatten().is_none_or(|u| u.disabled) {
            return Err(OAuthError::new(
                "invalid_request",
                "the user cannot sign in",
            ));
        }
        let launch = random_id().map_err(|_| server_error())?;
        auth.inner
            .db
            .save_launch(&digest(&launch), &patient, &user, now() + LAUNCH_SECONDS)
            .map_err(|_| server_error())?;
        Ok(launch)
    })
    .await;
    match created {
        Ok(launch) => (
            StatusCode::OK,
            no_store(),
            axum::Json(json!({ "launch": launch })),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// Sign-in attempts per client address and account in the last minute: more than
/// [`ATTEMPTS_PER_MINUTE`] are answered 429 before the password is checked.
#[derive(Default)]
pub(crate) struct Attempts(std::sync::Mutex<HashMap<(String, String), Vec<std::time::Instant>>>);

pub(crate) const ATTEMPTS_PER_MINUTE: usize = 10;

impl Attempts {
    pub fn allow(&self, ip: &str, account: &str) -> bool {
        let window = std::time::Duration::from_secs(60);
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Old entries are dropped as the map grows, so it holds about a minute of attempts.
        if map.len() > 10_000 {
            map.retain(|_, times| times.iter().any(|t| t.elapsed() < window));
        }
        let times = map
            .entry((ip.to_string(), account.to_string()))
            .or_default();
        times.retain(|t| t.elapsed() < window);
        if times.len() >= ATTEMPTS_PER_MINUTE {
            return false;
        }
        times.push(std::time::Instant::now());
        true
    }
}
