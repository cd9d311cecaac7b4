//! External OpenID Connect issuers, with a real local HTTP server acting as the issuer: its
//! tokens are accepted and mapped, a key it rotates in is fetched, foreign issuers are refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use concord_auth::{AuthConfig, AuthServer, ExternalIssuer};
use concord_fhir::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

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
    Key {
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }),
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

/// Serves the discovery document and the JWKS of the keys in `published`.
async fn issuer(published: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks_uri = format!("{base}/jwks");
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get({
                let base = base.clone();
                move || async move { Json(json!({"issuer": base, "jwks_uri": jwks_uri})) }
            }),
        )
        .route(
            "/jwks",
            get(move || async move { Json(json!({"keys": published.lock().unwrap().clone()})) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn config(base: &str) -> AuthConfig {
    AuthConfig {
        external: vec![ExternalIssuer {
            issuer: base.to_string(),
            audience: "concord-hub".into(),
            roles_claim: "nhsid_nrbac_roles".into(),
            org_claim: "org_code".into(),
            role_map: BTreeMap::from([
                ("R8000".to_string(), "clinician".to_string()),
                ("R8001".to_string(), "nurse".to_string()),
            ]),
            default_scope: "user/*.rs".into(),
        }],
        jwks_refresh_seconds: 0,
        ..AuthConfig::for_base(Some("https://hub.example/fhir"))
    }
}

fn claims(base: &str) -> Value {
    json!({
        "iss": base, "sub": "cis2-123", "aud": "concord-hub",
        "iat": now(), "exp": now() + 600,
        "nhsid_nrbac_roles": ["R8000", "R9999"], "org_code": "RX1",
    })
}

#[tokio::test]
async fn an_external_issuers_tokens_are_accepted_and_mapped() {
    let first = key("k1");
    let published = Arc::new(Mutex::new(vec![first.jwk.clone()]));
    let base = issuer(published.clone()).await;
    let auth = AuthServer::ephemeral(config(&base)).unwrap();
    let token = sign(&first, &claims(&base));
    let verified = auth.verify_async(&token).await.unwrap();
    assert_eq!(verified.iss, base);
    assert_eq!(verified.sub, "cis2-123");
    assert_eq!(verified.kind, "user");
    // R8000 maps to clinician; R9999 is not mapped and is dropped.
    assert_eq!(verified.roles, ["clinician"]);
    assert_eq!(verified.org.as_deref(), Some("RX1"));
    assert_eq!(verified.scope, "user/*.rs");
    // Cached now: the synchronous check accepts it too.
    auth.verify(&token).unwrap();
    // The issuer rotates in a new key; a token signed with it fetches the JWKS again.
    let second = key("k2");
    published.lock().unwrap().push(second.jwk.clone());
    let rotated = sign(&second, &claims(&base));
    assert!(auth.verify(&rotated).is_err(), "not known before the fetch");
    auth.verify_async(&rotated).await.unwrap();
    // This node's own tokens still verify alongside.
    let own = auth
        .mint(&concord_auth::Claims::system("edge", "system/*.rs"))
        .unwrap();
    auth.verify_async(&own).await.unwrap();
}

#[tokio::test]
async fn forged_misaddressed_and_foreign_tokens_are_refused() {
    let real = key("k1");
    let published = Arc::new(Mutex::new(vec![real.jwk.clone()]));
    let base = issuer(published).await;
    let auth = AuthServer::ephemeral(config(&base)).unwrap();
    // Signed by a key the issuer never published, under its kid.
    let forger = key("k1");
    let forged = sign(&forger, &claims(&base));
    // Signed by an unpublished key id.
    let unknown = sign(&key("k-unknown"), &claims(&base));
    let mut wrong_audience = claims(&base);
    wrong_audience["aud"] = json!("someone-else");
    let mut expired = claims(&base);
    expired["exp"] = json!(now() - 3600);
    // A well-formed token from an issuer nobody configured.
    let mut foreign = claims(&base);
    foreign["iss"] = json!("https://idp.elsewhere.example");
    for (case, token) in [
        ("forged", forged),
        ("unknown key", unknown),
        ("wrong audience", sign(&real, &wrong_audience)),
        ("expired", sign(&real, &expired)),
        ("foreign issuer", sign(&real, &foreign)),
    ] {
        let error = auth.verify_async(&token).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unauthenticated, "{case}");
    }
    // An HMAC token claiming the issuer is refused whatever its secret.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&base),
        &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    assert!(auth.verify_async(&hs).await.is_err());
}
