//! SMART backend services over the real router: client credentials with a private_key_jwt
//! assertion, then introspection and revocation of the token it gets.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use concord_auth::{AuthConfig, AuthServer, Client, ClientAuth, ClientKind};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN_URL: &str = "https://hub.example/oauth/token";

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    let secret = p256::SecretKey::from_slice(&bytes).unwrap();
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    });
    Key {
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        jwk,
    }
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn assertion(key: &Key, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn good_claims(jti: &str) -> Value {
    json!({"iss": "edge", "sub": "edge", "aud": TOKEN_URL, "exp": now() + 240, "jti": jti})
}

struct App {
    auth: AuthServer,
    router: Router,
    key: Key,
}

fn app() -> App {
    let auth =
        AuthServer::ephemeral(AuthConfig::for_base(Some("https://hub.example/fhir"))).unwrap();
    let key = key("edge-key-1");
    auth.add_client(&Client {
        client_id: "edge".into(),
        name: "GP edge".into(),
        redirect_uris: Vec::new(),
        auth: ClientAuth::PrivateKeyJwt(json!({ "keys": [key.jwk.clone()] }).to_string()),
        scopes: vec!["system/Patient.rs".into(), "system/Observation.rs".into()],
        kind: ClientKind::Backend,
    })
    .unwrap();
    App {
        router: auth.router(),
        auth,
        key,
    }
}

async fn post(
    router: &Router,
    path: &str,
    form: &[(&str, &str)],
    bearer: Option<&str>,
) -> (StatusCode, HashMap<String, String>, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request =
        Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn grant(app: &App, assertion: &str, scope: Option<&str>) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let (status, headers, body) = post(&app.router, "/oauth/token", &form, None).await;
    assert_eq!(
        headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
    (status, body)
}

#[tokio::test]
async fn a_backend_service_gets_a_system_token_for_its_allowed_scopes() {
    let app = app();
    let signed = assertion(&app.key, good_claims("one"));
    let (status, body) = grant(&app, &signed, Some("system/Patient.rs")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "system/Patient.rs");
    assert_eq!(body["expires_in"], 3600);
    let claims = app
        .auth
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.kind, "system");
    assert_eq!(claims.sub, "edge");
    assert_eq!(claims.client_id.as_deref(), Some("edge"));
    assert_eq!(claims.scope, "system/Patient.rs");
    // Without a scope, the client gets all it may have.
    let (_, body) = grant(&app, &assertion(&app.key, good_claims("two")), None).await;
    assert_eq!(body["scope"], "system/Patient.rs system/Observation.rs");
}

#[tokio::test]
async fn bad_assertions_are_refused() {
    let app = app();
    let stranger = key("edge-key-1");
    let cases: Vec<(&str, String)> = vec![
        ("bad signature", assertion(&stranger, good_claims("a"))),
        (
            "expired",
            assertion(
                &app.key,
                json!({"iss": "edge", "sub": "edge", "aud": TOKEN_URL, "exp": now() - 600, "jti": "b"}),
            ),
        ),
        (
            "too long-lived",
            assertion(
                &app.key,
                json!({"iss": "edge", "sub": "edge", "aud": TOKEN_URL, "exp": now() + 3600, "jti": "c"}),
            ),
        ),
        (
            "wrong audience",
            assertion(
                &app.key,
                json!({"iss": "edge", "sub": "edge", "aud": "https://other.example/token", "exp": now() + 60, "jti": "d"}),
            ),
        ),
        (
            "sub differs",
            assertion(
                &app.key,
                json!({"iss": "edge", "sub": "someone", "aud": TOKEN_URL, "exp": now() + 60, "jti": "e"}),
            ),
        ),
        (
            "no jti",
            assertion(
                &app.key,
                json!({"iss": "edge", "sub": "edge", "aud": TOKEN_URL, "exp": now() + 60}),
            ),
        ),
        (
            "unknown client",
            assertion(
                &app.key,
                json!({"iss": "nobody", "sub": "nobody", "aud": TOKEN_URL, "exp": now() + 60, "jti": "f"}),
            ),
        ),
        ("not a JWT", "garbage".to_string()),
    ];
    for (case, signed) in cases {
        let (status, body) = grant(&app, &signed, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(body["error"], "invalid_client", "{case}");
        assert!(
            !body.to_string().contains(&signed),
            "{case}: the assertion is quoted"
        );
    }
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let app = app();
    let signed = assertion(&app.key, good_claims("once"));
    assert_eq!(grant(&app, &signed, None).await.0, StatusCode::OK);
    let (status, body) = grant(&app, &signed, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{body}"
    );
}

#[tokio::test]
async fn scopes_beyond_the_registration_and_other_grants_are_refused() {
    let app = app();
    let (status, body) = grant(
        &app,
        &assertion(&app.key, good_claims("s")),
        Some("system/*.cruds"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
    let (status, _, body) = post(
        &app.router,
        "/oauth/token",
        &[("grant_type", "password")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    let (status, _, body) = post(&app.router, "/oauth/token", &[], None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn introspection_needs_a_caller_and_revocation_ends_a_token() {
    let app = app();
    let (_, body) = grant(&app, &assertion(&app.key, good_claims("i")), None).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let (status, _, _) = post(&app.router, "/oauth/introspect", &[("token", &token)], None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = post(
        &app.router,
        "/oauth/introspect",
        &[("token", &token)],
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "edge");
    assert_eq!(body["scope"], "system/Patient.rs system/Observation.rs");
    let (_, body) = grant(&app, &assertion(&app.key, good_claims("j")), None).await;
    let observer = body["access_token"].as_str().unwrap().to_string();
    let (status, _, _) = post(&app.router, "/oauth/revoke", &[("token", &token)], None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.auth.verify(&token).is_err());
    let (_, _, body) = post(
        &app.router,
        "/oauth/introspect",
        &[("token", &token)],
        Some(&observer),
    )
    .await;
    assert_eq!(body, json!({"active": false}));
    // Revoking garbage is answered the same way.
    let (status, _, _) = post(&app.router, "/oauth/revoke", &[("token", "garbage")], None).await;
    assert_eq!(status, StatusCode::OK);
}
