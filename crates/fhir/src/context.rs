//! The request context: who is asking, for what purpose, under which request id.
//!
//! Owns: the value every service-layer and store call takes first, so that access decisions and
//! audit always know the caller. A background job is a named [`Actor::System`], never an implicit
//! caller. Does not: authenticate anyone (the transport does, and builds this value).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

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

/// What the access layer learned while serving a request: whose records it touched, on what
/// basis, and why it refused. The audit record written after the request reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFacts {
    /// Hub Patient ids whose data the request touched or asked for.
    pub patients: BTreeSet<String>,
    /// The basis access was granted on (`relationship`, `own-record`, `break-glass`, ...).
    pub basis: Option<String>,
    /// Why access was refused, when it was.
    pub denied: Option<String>,
    /// A break-glass grant used or made: reason code and the user's text.
    pub break_glass: Option<(String, String)>,
}

/// A request's [`AccessFacts`], shared by every clone of its context.
#[derive(Debug, Clone, Default)]
pub struct AccessNote(Arc<Mutex<AccessFacts>>);

/// Two contexts are the same request whatever their notes say so far.
impl PartialEq for AccessNote {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for AccessNote {}

impl AccessNote {
    /// Changes the facts. A poisoned lock still holds usable facts: audit must not be lost to a
    /// panic elsewhere.
    pub fn update(&self, change: impl FnOnce(&mut AccessFacts)) {
        let mut facts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut facts);
    }

    /// A copy of the facts so far.
    pub fn facts(&self) -> AccessFacts {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The context of one request, passed first to every service and store call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: String,
    pub actor: Actor,
    pub purpose: Purpose,
    /// What access decided, for the audit record.
    pub note: AccessNote,
}

impl RequestContext {
    /// A context for a caller the transport authenticated.
    pub fn new(request_id: impl Into<String>, actor: Actor, purpose: Purpose) -> Self {
        RequestContext {
            request_id: request_id.into(),
            actor,
            purpose,
            note: AccessNote::default(),
        }
    }

    /// The same request, acting as the service layer itself: for the reads a use case makes
    /// after access has been decided for it (locating a person's records, for example).
    pub fn internal(&self) -> Self {
        RequestContext {
            request_id: self.request_id.clone(),
            actor: Actor::System {
                name: "hub".into(),
                scopes: vec!["system/*.*".into()],
            },
            purpose: self.purpose.clone(),
            note: self.note.clone(),
        }
    }

    /// A context for a named system job (CLI import, tests, background work).
    pub fn system(name: &str, request_id: impl Into<String>) -> Self {
        RequestContext {
            request_id: request_id.into(),
            actor: Actor::System {
                name: name.to_string(),
                scopes: vec!["system/*.*".into()],
            },
            purpose: Purpose::operations(),
            note: AccessNote::default(),
        }
    }
}
