//! Shared setup for the REST-level tests: a real SQLite store on a tempdir, a stepping clock, a
//! node key with a minted token, and the router driven with `oneshot` (no sockets).

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use concord_auth::{AuthConfig, AuthServer, Claims};
use concord_hub::access::AccessConfig;
use concord_hub::audit::AuditTrail;
use concord_hub::{Clock, Hub, HubConfig};
use concord_rest::{AppState, router};
use concord_store_sqlite::{SqliteAuditLog, SqliteOptions, SqliteStore};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// 2024-01-01T00:00:00Z.
pub const EPOCH_MS: i64 = 1_704_067_200_000;

/// A clock that starts at [`EPOCH_MS`] and moves one second forward every time it is read, so
/// every write has its own, predictable timestamp.
#[derive(Debug)]
pub struct SteppingClock(AtomicI64);

impl SteppingClock {
    pub fn new() -> Self {
        SteppingClock(AtomicI64::new(EPOCH_MS))
    }
}

impl Clock for SteppingClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1000, Ordering::SeqCst)
    }
}

/// A response: status, headers, and the body as JSON (`Value::Null` when empty, a JSON string
/// when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The resources of a Bundle's entries.
    pub fn resources(&self) -> Vec<Value> {
        entries(&self.body)
            .iter()
            .filter_map(|e| e.get("resource").cloned())
            .collect()
    }

    /// `Type/id` of the entries with search mode `mode`.
    pub fn refs(&self, mode: &str) -> Vec<String> {
        entries(&self.body)
            .iter()
            .filter(|e| e["search"]["mode"] == mode)
            .map(|e| {
                format!(
                    "{}/{}",
                    e["resource"]["resourceType"].as_str().unwrap_or_default(),
                    e["resource"]["id"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// The URL of the Bundle link with this relation.
    pub fn link(&self, relation: &str) -> Option<String> {
        self.body["link"]
            .as_array()?
            .iter()
            .find(|l| l["relation"] == relation)
            .and_then(|l| l["url"].as_str())
            .map(str::to_string)
    }
}

pub fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().cloned().unwrap_or_default()
}

pub struct TestApp {
    pub state: AppState,
    pub token: String,
    pub key: AuthServer,
    _dir: tempfile::TempDir,
}

pub const BASE: &str = "http://test.example/fhir";

/// The organisation that runs a test node, and the test clinician's organisation: so the
/// clinician has a relationship with everyone the node holds.
pub const ORGANIZATION: &str = "A81001";

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_limit(1024 * 1024)
    }

    pub fn with_limit(max_body_bytes: usize) -> TestApp {
        TestApp::with(max_body_bytes, |_| {})
    }

    /// A node whose service-layer settings `edit` changes (small pages, say).
    pub fn with_config(edit: impl FnOnce(&mut HubConfig)) -> TestApp {
        TestApp::with(1024 * 1024, edit)
    }

    fn with(max_body_bytes: usize, edit: impl FnOnce(&mut HubConfig)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&SqliteOptions::new(dir.path().join("db"))).expect("store");
        let mut config = HubConfig {
            access: AccessConfig {
                organization: Some(ORGANIZATION.into()),
                ..AccessConfig::default()
            },
            ..HubConfig::default()
        };
        edit(&mut config);
        let audit = SqliteAuditLog::open(dir.path().join("audit.db")).expect("audit log");
        let trail = AuditTrail::open(Arc::new(audit), "test-node").expect("audit trail");
        let hub = Hub::new(Arc::new(store), Arc::new(SteppingClock::new()), config)
            .expect("hub")
            .with_audit(trail);
        let key = AuthServer::ephemeral(AuthConfig::for_base(Some(BASE))).expect("key");
        // The FHIR interaction tests call as a trusted system (an integrator's loader); people's
        // access is tested with user tokens (`mint_user`) in tests/access.rs and federation.rs.
        let token = mint_system(&key, "integration-test");
        let state = AppState {
            hub,
            auth: key.clone(),
            base_url: Some(BASE.to_string()),
            max_body_bytes,
            metrics: None,
        };
        TestApp {
            state,
            token,
            key,
            _dir: dir,
        }
    }

    /// Sends a request with the bearer token. `body` is sent as it is; a JSON body needs a
    /// Content-Type header (see [`TestApp::json`] for the usual case).
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let mut all: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.send_raw(method, uri, &all, body).await
    }

    /// Sends a request with another caller's bearer token.
    pub async fn send_as(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let auth = format!("Bearer {token}");
        let mut all: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
        all.extend_from_slice(headers);
        self.send_raw(method, uri, &all, body).await
    }

    /// A GET with another caller's bearer token.
    pub async fn get_as(&self, token: &str, uri: &str) -> Reply {
        self.send_as(token, Method::GET, uri, &[], Body::empty())
            .await
    }

    /// Sends a request with exactly these headers (no token added).
    pub async fn send_raw(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.into()).expect("request");
        let response = router(self.state.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends a FHIR JSON body.
    pub async fn json(&self, method: Method, uri: &str, body: &Value) -> Reply {
        self.json_with(method, uri, &[], body).await
    }

    pub async fn json_with(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Reply {
        let mut all: Vec<(&str, &str)> = vec![("content-type", "application/fhir+json")];
        all.extend_from_slice(headers);
        self.send(method, uri, &all, body.to_string()).await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    /// Creates a resource and returns its id (asserting 201).
    pub async fn create(&self, resource: &Value) -> String {
        let resource_type = resource["resourceType"].as_str().expect("resourceType");
        let reply = self
            .json(Method::POST, &format!("/fhir/{resource_type}"), resource)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "create: {}", reply.body);
        reply.body["id"].as_str().expect("id").to_string()
    }

    /// Follows an absolute link from a Bundle.
    pub async fn follow(&self, url: &str) -> Reply {
        let path = url
            .strip_prefix("http://test.example")
            .expect("link under BASE");
        self.get(path).await
    }
}

/// Mints a one-hour token for a user with one role at an organisation, with a patient in
/// context for a patient's own token.
pub fn mint_user(
    key: &AuthServer,
    sub: &str,
    role: &str,
    org: Option<&str>,
    patient: Option<&str>,
) -> String {
    let scope = if role == "patient" {
        "patient/*.*"
    } else {
        "user/*.*"
    };
    key.mint(&Claims {
        patient: patient.map(str::to_string),
        ..Claims::user(sub, vec![role.into()], org.map(str::to_string), scope)
    })
    .expect("mint")
}

/// Mints a one-hour `system/*.*` token, as an edge or another hub holds.
pub fn mint_system(key: &AuthServer, sub: &str) -> String {
    key.mint(&Claims::system(sub, "system/*.*")).expect("mint")
}

/// Mints a token for a clinician that expires `ttl_secs` from now (negative: already expired).
pub fn mint(key: &AuthServer, ttl_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let now = i64::try_from(now).expect("time fits");
    key.mint(&Claims {
        iat: now.min(now + ttl_secs),
        exp: now + ttl_secs,
        ..Claims::user(
            "alice",
            vec!["clinician".into()],
            Some(ORGANIZATION.into()),
            "user/*.*",
        )
    })
    .expect("mint")
}

/// Asserts a body is an OperationOutcome with an error issue that explains itself.
pub fn assert_error_outcome(body: &Value) {
    assert_eq!(
        body["resourceType"], "OperationOutcome",
        "not an OperationOutcome: {body}"
    );
    let issues = body["issue"].as_array().expect("issue array");
    assert!(
        issues.iter().any(|i| {
            matches!(i["severity"].as_str(), Some("error" | "fatal"))
                && i["diagnostics"]
                    .as_str()
                    .is_some_and(|d| !d.trim().is_empty())
        }),
        "no error issue with diagnostics: {body}"
    );
}
