//! The portals: the clinician's and care worker's single view of a person, the person-held
//! record, and the privacy officer's and data steward's pages, rendered on the server as plain
//! HTML (no scripts, no external resources) under `/portal`.
//!
//! Owns: the `/portal` routes, the portal's sign-in sessions, and turning FHIR answers into pages.
//! The portal is an ordinary SMART on FHIR app of the node it runs in: it signs people in through
//! the node's authorization server (authorization code with PKCE, or EHR launch) and reads and
//! writes through the node's own FHIR API with the signed-in person's token, in process.
//!
//! Does not: decide who may see what, apply consent or write the audit trail. The FHIR API does
//! all three for the portal exactly as for any other app, so a page can never show more than the
//! person's token may read, and every page's reads are audited as that person.

pub mod admin;
pub mod chart;
pub mod error;
pub mod fhir;
pub mod home;
pub mod layout;
pub mod me;
pub mod search;
pub mod session;
pub mod signin;
pub mod text;
pub mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use concord_auth::{AuthServer, Client, ClientAuth, ClientKind};

pub use fhir::Fhir;
pub use session::Sessions;

/// The portal's OAuth client id at the node's authorization server.
pub const CLIENT_ID: &str = "concord-portal";

/// The scopes the portal asks for: whatever the signed-in person's role, relationships and
/// consent let them read and write (the hub narrows every request), EHR launch, and for a
/// patient or proxy their own record in context (`launch/patient`).
pub const SCOPE: &str = "openid fhirUser launch launch/patient user/*.*";

/// A sign-in shown on the landing page of a demo node (never configured in production).
#[derive(Debug, Clone)]
pub struct DemoSignIn {
    pub user: String,
    pub password: String,
    /// Who they are, e.g. "GP at Riverside Surgery (clinician)".
    pub label: String,
}

/// How the portal is set up.
#[derive(Debug, Clone, Default)]
pub struct PortalConfig {
    /// The secret the portal authenticates with at the token endpoint (new at every start).
    pub client_secret: String,
    /// Shown on the landing page when not empty: the demo's accounts.
    pub demo_sign_ins: Vec<DemoSignIn>,
}

/// What the portal's handlers share.
#[derive(Clone)]
pub struct PortalState {
    pub(crate) config: Arc<PortalConfig>,
    pub(crate) auth: AuthServer,
    pub(crate) fhir: Fhir,
    pub(crate) sessions: Sessions,
}

impl PortalState {
    /// The portal over `fhir_app`, the node's whole FHIR application router (the one
    /// `concord_rest::router` builds, with its authentication, access and audit layers).
    pub fn new(config: PortalConfig, auth: AuthServer, fhir_app: Router) -> PortalState {
        PortalState {
            config: Arc::new(config),
            auth,
            fhir: Fhir::new(fhir_app),
            sessions: Sessions::default(),
        }
    }
}

/// Registers (or re-registers) the portal as a confidential client of `auth` whose redirect
/// URIs are `{root}/portal/callback` for each root the node is reached at, and returns the
/// secret to put in [`PortalConfig::client_secret`].
pub fn register_client(auth: &AuthServer, roots: &[String]) -> Result<String, concord_fhir::Error> {
    let secret = session::random_token();
    let hash = concord_auth::hash_secret(&secret)?;
    let mut redirect_uris: Vec<String> = roots
        .iter()
        .map(|root| format!("{}/portal/callback", root.trim_end_matches('/')))
        .collect();
    redirect_uris.dedup();
    auth.put_client(&Client {
        client_id: CLIENT_ID.into(),
        name: "Concord portal".into(),
        redirect_uris,
        auth: ClientAuth::Secret(hash),
        scopes: SCOPE.split(' ').map(str::to_string).collect(),
        kind: ClientKind::App,
    })?;
    Ok(secret)
}

/// The portal's routes, to merge into the node's application beside the FHIR API.
pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal/") }))
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(home::landing))
        .route("/portal/static/portal.css", get(stylesheet))
        .route("/portal/login", get(signin::login))
        .route("/portal/callback", get(signin::callback))
        .route("/portal/launch", get(signin::launch))
        .route("/portal/logout", post(signin::logout))
        .merge(search::routes())
        .merge(view::routes())
        .merge(me::routes())
        .merge(admin::routes())
        .layer(axum::middleware::map_response(portal_headers))
        .with_state(state)
}

/// Pages carry people's records: never cached, never framed, and nothing but this origin's own
/// stylesheet loads (no scripts at all).
async fn portal_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const STYLESHEET: &str = include_str!("../static/portal.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
