//! The request context: who is asking, for what purpose, under which request id.
//!
//! Owns: the value every service-layer and store call takes first, so that access decisions and
//! audit always know the caller. A background job is a named [`Actor::System`], never an implicit
//! caller. Does not: authenticate anyone (the transport does, and builds this value).

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person signed in (or a SMART app acting for one).
    User {
        /// Stable subject identifier (`sub`).
        id: String,
        /// National RBAC style role codes, e.g. `clinician`.
        roles: Vec<String>,
        /// The ODS code (or local id) of the user's organisation.
        organization: Option<String>,
        /// SMART scopes granted to the token, space-separated in the token.
        scopes: Vec<String>,
        /// The patient in context (SMART `patient`): for a patient's own token, their hub Patient id.
        patient: Option<String>,
        /// For a proxy: the hub Patient ids of the people they may act for.
        proxy_for: Vec<String>,
        /// The OAuth client (SMART app) the user is acting through, when there is one.
        client_id: Option<String>,
    },
    /// A named system caller: an edge node, a CLI command, a background job.
    System { name: String, scopes: Vec<String> },
}

impl Actor {
    /// A label for logs and audit that carries no patient data.
    pub fn label(&self) -> &str {
        match self {
            Actor::User { id, .. } => id,
            Actor::System { name, .. } => name,
        }
    }
}

/// The purpose of use (v3 PurposeOfUse codes such as `TREAT`, `ETREAT`, `PATRQT`, `HOPERAT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose(pub String);

impl Purpose {
    pub fn treatment() -> Self {
        Purpose("TREAT".into())
    }

    pub fn operations() -> Self {
        Purpose("HOPERAT".into())
    }
}

/// The context of one request, passed first to every service and store call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: String,
    pub actor: Actor,
    pub purpose: Purpose,
}

impl RequestContext {
    /// A context for a named system job (CLI import, tests, background work).
    pub fn system(name: &str, request_id: impl Into<String>) -> Self {
        RequestContext {
            request_id: request_id.into(),
            actor: Actor::System {
                name: name.to_string(),
                scopes: vec!["system/*.*".into()],
            },
            purpose: Purpose::operations(),
        }
    }
}
