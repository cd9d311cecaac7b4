//! The public discovery documents and the JWKS, over the real router.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use concord_auth::{AuthConfig, AuthServer, Claims, is_public_path};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn get(app: &Router, uri: &str, host: &str) -> (StatusCode, String, Value) {
    let response = app
        .clone()
        .oneshot(
            Request::get(uri)
                .header("host", host)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn smart_configuration_names_the_endpoints_and_capabilities() {
    let auth =
        AuthServer::ephemeral(AuthConfig::for_base(Some("https://hub.example/fhir"))).unwrap();
    let app: Router = auth.router();
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ] {
        let (status, content_type, doc) = get(&app, path, "ignored.example").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(doc["issuer"], "https://hub.example");
        assert_eq!(doc["jwks_uri"], "https://hub.example/oauth/jwks");
        assert_eq!(
            doc["authorization_endpoint"],
            "https://hub.example/oauth/authorize"
        );
        assert_eq!(doc["token_endpoint"], "https://hub.example/oauth/token");
        assert_eq!(
            doc["introspection_endpoint"],
            "https://hub.example/oauth/introspect"
        );
        assert_eq!(
            doc["revocation_endpoint"],
            "https://hub.example/oauth/revoke"
        );
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        let list = |field: &str| -> Vec<String> {
            doc[field]
                .as_array()
                .unwrap_or_else(|| panic!("{field} is a list"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for capability in [
            "launch-ehr",
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "context-ehr-patient",
            "context-standalone-patient",
            "permission-v1",
            "permission-v2",
            "permission-patient",
            "permission-user",
            "permission-offline",
            "sso-openid-connect",
            "authorize-post",
        ] {
            assert!(
                list("capabilities").contains(&capability.to_string()),
                "{capability}"
            );
        }
        assert!(list("grant_types_supported").contains(&"client_credentials".to_string()));
        assert!(
            list("token_endpoint_auth_methods_supported").contains(&"private_key_jwt".to_string())
        );
        assert!(list("scopes_supported").contains(&"launch/patient".to_string()));
    }
}

#[tokio::test]
async fn without_a_configured_base_the_endpoints_follow_the_host() {
    let auth = AuthServer::ephemeral(AuthConfig::default()).unwrap();
    let app: Router = auth.router();
    let (_, _, doc) = get(&app, "/.well-known/openid-configuration", "node.local:8080").await;
    assert_eq!(doc["token_endpoint"], "http://node.local:8080/oauth/token");
    // A Host header that is not a host name is not echoed into the document.
    let (_, _, doc) = get(
        &app,
        "/.well-known/openid-configuration",
        "evil.example/\"x",
    )
    .await;
    assert_eq!(doc["token_endpoint"], "http://localhost/oauth/token");
}

#[tokio::test]
async fn openid_configuration_and_jwks_match_the_signing_keys() {
    let auth =
        AuthServer::ephemeral(AuthConfig::for_base(Some("https://hub.example/fhir"))).unwrap();
    let app: Router = auth.router();
    let (status, _, doc) = get(&app, "/.well-known/openid-configuration", "x").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["issuer"], "https://hub.example");
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    let old = auth.mint(&Claims::system("edge", "system/*.rs")).unwrap();
    auth.rotate().unwrap();
    let new = auth.mint(&Claims::system("edge", "system/*.rs")).unwrap();
    let (status, content_type, jwks) = get(&app, "/oauth/jwks", "x").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/jwk-set+json");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    assert_eq!(set.keys.len(), 2);
    for token in [old, new] {
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        let jwk = set.find(&kid).expect("published");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["https://hub.example/fhir"]);
        jsonwebtoken::decode::<Claims>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap();
    }
    // Public keys only.
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "a private key is published");
    }
}

#[test]
fn the_public_paths_are_the_discovery_documents_and_oauth_endpoints() {
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
        "/.well-known/openid-configuration",
        "/oauth/jwks",
        "/oauth/authorize",
        "/oauth/launch",
        "/oauth/token",
        "/oauth/introspect",
        "/oauth/revoke",
    ] {
        assert!(is_public_path(path), "{path}");
    }
    for path in [
        "/fhir/Patient",
        "/.well-known/other",
        "/oauth/jwks/x",
        "/oauth",
    ] {
        assert!(!is_public_path(path), "{path}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    use axum::routing::get;
    use concord_auth::SecurityHeaders;
    let plain: Router = Router::new()
        .route("/fhir/Patient", get(|| async { "[]" }))
        .route("/healthz", get(|| async { "ok" }))
        .layer(SecurityHeaders::new(false));
    let secure: Router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .layer(SecurityHeaders::new(true));
    let send = |app: Router, uri: &'static str| async move {
        app.oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap()
            .headers()
            .clone()
    };
    for (headers, path) in [
        (send(plain.clone(), "/fhir/Patient").await, "/fhir/Patient"),
        (send(plain.clone(), "/healthz").await, "/healthz"),
        (send(plain.clone(), "/nowhere").await, "/nowhere"),
    ] {
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'self'",
            "{path}"
        );
        assert!(headers.get("strict-transport-security").is_none(), "{path}");
    }
    assert_eq!(
        send(plain.clone(), "/fhir/Patient").await["cache-control"],
        "no-store"
    );
    assert!(send(plain, "/healthz").await.get("cache-control").is_none());
    assert!(
        send(secure, "/healthz").await["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}
