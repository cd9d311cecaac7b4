//! Shared setup for the portal's tests: a real node (SQLite store and audit trail on a tempdir,
//! the authorization server, the FHIR API and the portal in one router, driven with `oneshot`),
//! and a browser-like client that keeps cookies and signs in through the real OAuth flow.

#![allow(dead_code)] // reason: each test file uses a different part of the shared setup

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use concord_auth::{AuthConfig, AuthServer, Claims, NewUser};
use concord_hub::access::AccessConfig;
use concord_hub::audit::AuditTrail;
use concord_hub::{Hub, HubConfig, SystemClock};
use concord_portal::{PortalConfig, PortalState};
use concord_rest::AppState;
use concord_store_sqlite::{SqliteAuditLog, SqliteOptions, SqliteStore};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The node's public root; the FHIR base is `{ROOT}/fhir`.
pub const ROOT: &str = "http://portal.test";
/// The organisation that runs the test node: its staff have a relationship with everyone it holds.
pub const ORGANIZATION: &str = "A81001";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestNode {
    pub app: Router,
    pub auth: AuthServer,
    pub hub: Hub,
    system_token: String,
    _dir: tempfile::TempDir,
}

impl TestNode {
    pub fn new() -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&SqliteOptions::new(dir.path().join("db"))).expect("store");
        let config = HubConfig {
            access: AccessConfig {
                organization: Some(ORGANIZATION.into()),
                ..AccessConfig::default()
            },
            ..HubConfig::default()
        };
        let audit = SqliteAuditLog::open(dir.path().join("audit.db")).expect("audit log");
        let trail = AuditTrail::open(Arc::new(audit), "portal-test").expect("audit trail");
        let hub = Hub::new(Arc::new(store), Arc::new(SystemClock), config)
            .expect("hub")
            .with_audit(trail);
        let auth = AuthServer::ephemeral(AuthConfig::for_base(Some(&format!("{ROOT}/fhir"))))
            .expect("auth");
        let secret = concord_portal::register_client(&auth, &[ROOT.to_string()]).expect("client");
        let fhir = concord_rest::router(AppState {
            hub: hub.clone(),
            auth: auth.clone(),
            base_url: Some(format!("{ROOT}/fhir")),
            max_body_bytes: 16 * 1024 * 1024,
            metrics: None,
        });
        let portal = PortalState::new(
            PortalConfig {
                client_secret: secret,
                demo_sign_ins: Vec::new(),
            },
            auth.clone(),
            fhir.clone(),
        );
        let app = concord_portal::router(portal).merge(fhir);
        let system_token = auth
            .mint(&Claims::system("portal-test-loader", "system/*.*"))
            .expect("token");
        TestNode {
            app,
            auth,
            hub,
            system_token,
            _dir: dir,
        }
    }

    /// Adds an account that signs in with [`PASSWORD`].
    pub fn add_user(&self, id: &str, role: &str, org: Option<&str>, patient: Option<&str>) {
        self.auth
            .add_user(&NewUser {
                id: id.into(),
                roles: vec![role.into()],
                org: org.map(str::to_string),
                patient: patient.map(str::to_string),
                proxy_for: Vec::new(),
                password: PASSWORD.into(),
            })
            .expect("user");
    }

    /// Sends FHIR JSON to the API as a trusted loader (a transaction Bundle to `/fhir`, or a
    /// resource to `/fhir/Type/id` with PUT) and returns the answer.
    pub async fn fhir(&self, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "portal.test")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.system_token),
            )
            .header(header::CONTENT_TYPE, "application/fhir+json")
            .body(Body::from(serde_json::to_vec(body).expect("json")))
            .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A browser with no cookies yet.
    pub fn browser(&self) -> Browser {
        Browser {
            app: self.app.clone(),
            cookies: BTreeMap::new(),
        }
    }
}

/// A page as the browser got it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of the first hidden `csrf` field on the page.
    pub fn csrf(&self) -> String {
        let at = self
            .html
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field");
        let rest = &self.html[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end of value")].to_string()
    }
}

/// A browser-like client: keeps cookies, does not follow redirects (tests follow them to check
/// each step).
pub struct Browser {
    app: Router,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(Method::POST, path, Some(body)).await
    }

    /// GET `path` and follow redirects within the node (at most ten).
    pub async fn follow(&mut self, path: &str) -> Page {
        let mut page = self.get(path).await;
        for _ in 0..10 {
            let Some(location) = page.location().map(str::to_string) else {
                break;
            };
            page = self.get(&location).await;
        }
        page
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<String>) -> Page {
        let path = path.strip_prefix(ROOT).unwrap_or(path);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "portal.test");
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(header::COOKIE, cookie.join("; "));
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form)
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).expect("request"))
            .await
            .expect("response");
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("cookie");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Page {
            status,
            headers,
            html: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Signs in through the real flow: the portal sends the browser to the authorization
    /// server's form, the form is filled in and posted, and the callback starts the session.
    /// Returns the page the portal lands on after the callback (not followed further).
    pub async fn sign_in(&mut self, user: &str, password: &str) -> Page {
        self.sign_in_to("/portal/login", user, password).await
    }

    /// As [`Browser::sign_in`], starting from `start` (e.g. a page that needs sign-in).
    pub async fn sign_in_to(&mut self, start: &str, user: &str, password: &str) -> Page {
        let mut page = self.get(start).await;
        while let Some(location) = page.location().map(str::to_string) {
            if location.starts_with("/oauth/authorize") {
                break;
            }
            page = self.get(&location).await;
        }
        let authorize = page
            .location()
            .expect("sent to the authorization server")
            .to_string();
        let form = self.get(&authorize).await;
        assert_eq!(
            form.status,
            StatusCode::OK,
            "the sign-in form: {}",
            form.html
        );
        let query = authorize
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default();
        let mut fields: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        fields.push(("csrf".into(), form.csrf()));
        fields.push(("username".into(), user.into()));
        fields.push(("password".into(), password.into()));
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let submitted = self.post_form("/oauth/authorize", &pairs).await;
        let callback = submitted
            .location()
            .unwrap_or_else(|| panic!("the sign-in did not redirect: {}", submitted.html))
            .to_string();
        self.get(&callback).await
    }
}
