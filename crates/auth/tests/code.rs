//! The authorization code flow over the real router: the sign-in form, CSRF, PKCE, single-use
//! codes, lockout, id tokens, and refresh token rotation with reuse detection.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use concord_auth::{AuthConfig, AuthServer, Client, ClientAuth, ClientKind, NewUser};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const BASE: &str = "https://hub.example/fhir";
const REDIRECT: &str = "https://portal.example/cb";
const PASSWORD: &str = "correct horse battery";
const VERIFIER: &str = "a-code-verifier-that-is-long-enough-for-pkce-0123456789";

struct Reply {
    status: StatusCode,
    headers: HashMap<String, String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn location(&self) -> url::Url {
        url::Url::parse(self.headers.get("location").expect("a redirect")).unwrap()
    }
}

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

struct App {
    auth: AuthServer,
    router: Router,
}

fn app() -> App {
    let auth = AuthServer::ephemeral(AuthConfig::for_base(Some(BASE))).unwrap();
    auth.add_user(&NewUser {
        id: "pat".into(),
        roles: vec!["patient".into()],
        patient: Some("p-1".into()),
        password: PASSWORD.into(),
        ..NewUser::default()
    })
    .unwrap();
    auth.add_client(&Client {
        client_id: "portal".into(),
        name: "Patient <portal>".into(),
        redirect_uris: vec![REDIRECT.into()],
        auth: ClientAuth::Public,
        scopes: [
            "openid",
            "fhirUser",
            "launch/patient",
            "offline_access",
            "patient/*.rs",
        ]
        .map(String::from)
        .to_vec(),
        kind: ClientKind::App,
    })
    .unwrap();
    App {
        router: auth.router(),
        auth,
    }
}

fn authorize_params(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "portal".into()),
        ("redirect_uri", REDIRECT.into()),
        (
            "scope",
            "openid fhirUser launch/patient offline_access patient/*.rs".into(),
        ),
        ("state", "st-123".into()),
        ("aud", BASE.into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("nonce", "n-456".into()),
    ]
}

fn as_refs<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn get_form(app: &App, params: &[(&'static str, String)]) -> Reply {
    let uri = format!("/oauth/authorize?{}", form(&as_refs(params)));
    send(&app.router, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// The CSRF token from the form and its cookie.
fn csrf(reply: &Reply) -> (String, String) {
    let cookie = reply
        .headers
        .get("set-cookie")
        .expect("a CSRF cookie")
        .clone();
    let value = cookie.split(';').next().unwrap().to_string();
    let token = value.split_once('=').unwrap().1.to_string();
    (token, value)
}

async fn submit(
    app: &App,
    params: &[(&'static str, String)],
    csrf: Option<(&str, &str)>,
    password: &str,
) -> Reply {
    let mut pairs = as_refs(params);
    pairs.push(("username", "pat"));
    pairs.push(("password", password));
    let mut request = Request::post("/oauth/authorize")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some((token, cookie)) = csrf {
        pairs.push(("csrf", token));
        request = request.header("cookie", cookie);
    }
    send(&app.router, request.body(Body::from(form(&pairs))).unwrap()).await
}

async fn token(app: &App, pairs: &[(&str, &str)]) -> Reply {
    send(
        &app.router,
        Request::post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form(pairs)))
            .unwrap(),
    )
    .await
}

/// Signs in through the form and returns the code.
async fn code(app: &App) -> String {
    let params = authorize_params(&challenge(VERIFIER));
    let page = get_form(app, &params).await;
    let (token, cookie) = csrf(&page);
    let reply = submit(app, &params, Some((&token, &cookie)), PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let location = reply.location();
    assert!(location.as_str().starts_with(REDIRECT));
    let q = query(&location);
    assert_eq!(q["state"], "st-123");
    q["code"].clone()
}

async fn exchange(app: &App, code: &str, verifier: &str) -> Reply {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", "portal"),
        ],
    )
    .await
}

#[tokio::test]
async fn the_sign_in_form_is_plain_labelled_html_with_a_csrf_cookie() {
    let app = app();
    let reply = get_form(&app, &authorize_params(&challenge(VERIFIER))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers["content-type"].starts_with("text/html"));
    assert!(reply.body.contains("<label for=\"username\">"));
    assert!(reply.body.contains("<label for=\"password\">"));
    assert!(!reply.body.contains("<script"), "no scripts");
    assert!(
        !reply.body.contains("http://") && !reply.body.contains("src="),
        "no external resources"
    );
    // The client's name is escaped.
    assert!(reply.body.contains("Patient &lt;portal&gt;"));
    let cookie = &reply.headers["set-cookie"];
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Secure"), "https base: {cookie}");
    let (token, _) = csrf(&reply);
    assert!(
        reply
            .body
            .contains(&format!("name=\"csrf\" value=\"{token}\""))
    );
}

#[tokio::test]
async fn signing_in_gives_a_code_for_tokens_once() {
    let app = app();
    let code = code(&app).await;
    let reply = exchange(&app, &code, VERIFIER).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["patient"], "p-1");
    let claims = app
        .auth
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub, "pat");
    assert_eq!(claims.patient.as_deref(), Some("p-1"));
    assert_eq!(claims.client_id.as_deref(), Some("portal"));
    assert_eq!(claims.fhir_user.as_deref(), Some("Patient/p-1"));
    assert!(body["refresh_token"].is_string());
    // The id token is for the client, carries the nonce, and verifies with the JWKS.
    let id_token = body["id_token"].as_str().unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.auth.jwks()).unwrap();
    let kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["portal"]);
    validation.set_issuer(&["https://hub.example"]);
    let id = jsonwebtoken::decode::<Value>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["sub"], "pat");
    // The code works once.
    let again = exchange(&app, &code, VERIFIER).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let app = app();
    // No challenge: back to the app with an error and the state.
    let mut params = authorize_params("");
    params.retain(|(k, _)| *k != "code_challenge");
    let reply = get_form(&app, &params).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let q = query(&reply.location());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    // The plain method is refused.
    let mut params = authorize_params(VERIFIER);
    params.retain(|(k, _)| *k != "code_challenge_method");
    params.push(("code_challenge_method", "plain".into()));
    assert_eq!(
        query(&get_form(&app, &params).await.location())["error"],
        "invalid_request"
    );
    // A wrong verifier gets nothing, and the code is spent.
    let code = code(&app).await;
    let reply = exchange(
        &app,
        &code,
        "a-different-verifier-that-is-long-enough-0123456789",
    )
    .await;
    assert_eq!(reply.json()["error"], "invalid_grant");
    assert_eq!(
        exchange(&app, &code, VERIFIER).await.json()["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_client_gets_a_page_not_a_redirect() {
    let app = app();
    for (name, value) in [
        ("redirect_uri", "https://evil.example/cb"),
        ("client_id", "nobody"),
    ] {
        let mut params = authorize_params(&challenge(VERIFIER));
        params.retain(|(k, _)| *k != name);
        params.push((name, value.into()));
        let reply = get_form(&app, &params).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        assert!(!reply.headers.contains_key("location"), "{name}");
        assert!(reply.headers["content-type"].starts_with("text/html"));
    }
    // A wrong audience goes back to the (registered) app.
    let mut params = authorize_params(&challenge(VERIFIER));
    params.retain(|(k, _)| *k != "aud");
    params.push(("aud", "https://other.example/fhir".into()));
    assert_eq!(
        query(&get_form(&app, &params).await.location())["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn a_sign_in_without_the_csrf_token_and_cookie_is_refused() {
    let app = app();
    let params = authorize_params(&challenge(VERIFIER));
    let reply = submit(&app, &params, None, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let page = get_form(&app, &params).await;
    let (token, _) = csrf(&page);
    let reply = submit(
        &app,
        &params,
        Some((&token, "concord_csrf=something-else")),
        PASSWORD,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn five_failed_sign_ins_lock_the_account() {
    let app = app();
    let params = authorize_params(&challenge(VERIFIER));
    let page = get_form(&app, &params).await;
    let (token, cookie) = csrf(&page);
    for _ in 0..5 {
        let reply = submit(&app, &params, Some((&token, &cookie)), "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.contains("role=\"alert\""));
    }
    let reply = submit(&app, &params, Some((&token, &cookie)), PASSWORD).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!reply.headers.contains_key("location"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let app = app();
    let code = code(&app).await;
    let first = exchange(&app, &code, VERIFIER).await.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = |token: String| {
        let app = &app;
        async move { token_reply(app, &token).await }
    };
    let reply = refresh(first.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let second = reply.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    assert!(
        app.auth
            .verify(reply.json()["access_token"].as_str().unwrap())
            .is_ok()
    );
    // The first one again: refused, and the whole family with it.
    assert_eq!(refresh(first).await.json()["error"], "invalid_grant");
    assert_eq!(refresh(second).await.json()["error"], "invalid_grant");
}

async fn token_reply(app: &App, refresh_token: &str) -> Reply {
    token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "portal"),
        ],
    )
    .await
}

async fn launch(app: &App, token: &str, body: &str) -> Reply {
    send(
        &app.router,
        Request::post("/oauth/launch")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn an_ehr_launch_signs_the_user_in_with_the_patient_and_no_form() {
    let app = app();
    app.auth
        .add_user(&NewUser {
            id: "doc".into(),
            roles: vec!["clinician".into()],
            org: Some("A81001".into()),
            password: PASSWORD.into(),
            ..NewUser::default()
        })
        .unwrap();
    app.auth
        .add_client(&Client {
            client_id: "viewer".into(),
            name: "Record viewer".into(),
            redirect_uris: vec![REDIRECT.into()],
            auth: ClientAuth::Public,
            scopes: ["launch", "openid", "user/*.rs"].map(String::from).to_vec(),
            kind: ClientKind::App,
        })
        .unwrap();
    let host = app
        .auth
        .mint(&concord_auth::Claims::system("ehr-host", "system/launch"))
        .unwrap();
    // Only a host system with system/launch may create a launch.
    let plain = app
        .auth
        .mint(&concord_auth::Claims::system("edge", "system/*.rs"))
        .unwrap();
    let body = r#"{"patient": "p-9", "user": "doc"}"#;
    assert_eq!(
        launch(&app, &plain, body).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        launch(&app, &host, r#"{"patient": "p-9", "user": "nobody"}"#)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    let reply = launch(&app, &host, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let value = reply.json()["launch"].as_str().unwrap().to_string();
    let params = vec![
        ("response_type", "code".to_string()),
        ("client_id", "viewer".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "launch openid user/*.rs".into()),
        ("state", "s-1".into()),
        ("aud", BASE.into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("launch", value),
    ];
    let reply = get_form(&app, &params).await;
    assert_eq!(
        reply.status,
        StatusCode::SEE_OTHER,
        "no form: {}",
        reply.body
    );
    let q = query(&reply.location());
    assert_eq!(q["state"], "s-1");
    let reply = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "viewer"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["patient"], "p-9");
    let claims = app
        .auth
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub, "doc");
    assert_eq!(claims.roles, ["clinician"]);
    assert_eq!(claims.patient.as_deref(), Some("p-9"));
    // The launch is single use.
    let again = get_form(&app, &params).await;
    assert_eq!(query(&again.location())["error"], "invalid_request");
}

#[tokio::test]
async fn sign_ins_from_one_address_for_one_account_are_rate_limited() {
    let app = app();
    let params = authorize_params(&challenge(VERIFIER));
    let page = get_form(&app, &params).await;
    let (token, cookie) = csrf(&page);
    // Ten sign-ins in a minute are served (correct passwords, so no lockout is involved)...
    for _ in 0..10 {
        let reply = submit(&app, &params, Some((&token, &cookie)), PASSWORD).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
    }
    // ...the eleventh is not, and gets no code.
    let reply = submit(&app, &params, Some((&token, &cookie)), PASSWORD).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!reply.headers.contains_key("location"));
    assert!(reply.body.contains("Too many sign-in attempts"));
}
