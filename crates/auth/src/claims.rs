//! The claims of a Concord access token.
//!
//! Owns: the claim names and their JSON shape (SMART App Launch 2.0 and OpenID Connect names
//! where those standards name them). Does not: sign, verify or decide what the claims allow.

use serde::{Deserialize, Serialize};

/// What a Concord access token says about its bearer.
///
/// [`crate::AuthServer::mint`] fills the blanks of a value built with `..Claims::default()`:
/// an empty `iss`, `aud` or `jti` and a zero `iat` or `exp` take this server's issuer, audience,
/// a fresh random id, the current time and the configured lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer: this node (or, for verified external tokens, the external provider).
    pub iss: String,
    /// The subject: a user id or a system (client) name.
    pub sub: String,
    /// The audience: the FHIR base URL the token is for.
    #[serde(default)]
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The token's unique id, which revocation names.
    #[serde(default)]
    pub jti: String,
    /// Space-separated SMART scopes.
    #[serde(default)]
    pub scope: String,
    /// `user` or `system`.
    pub kind: String,
    /// National RBAC style role codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The user's organisation (ODS code or local id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The patient in context (SMART `patient`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// For a proxy: the hub Patient ids they may act for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxy_for: Vec<String>,
    /// v3 PurposeOfUse code; `TREAT` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The OAuth client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// SMART `fhirUser`: the FHIR resource (Practitioner, Patient, ...) for the user.
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
}

impl Claims {
    /// A user token's claims; issuer, audience, times and id are filled in when minted.
    pub fn user(
        sub: impl Into<String>,
        roles: Vec<String>,
        org: Option<String>,
        scope: impl Into<String>,
    ) -> Claims {
        Claims {
            sub: sub.into(),
            roles,
            org,
            scope: scope.into(),
            kind: "user".into(),
            ..Claims::default()
        }
    }

    /// A system (backend service) token's claims.
    pub fn system(sub: impl Into<String>, scope: impl Into<String>) -> Claims {
        Claims {
            sub: sub.into(),
            scope: scope.into(),
            kind: "system".into(),
            ..Claims::default()
        }
    }

    /// Whether this is a system (backend service) token.
    pub fn is_system(&self) -> bool {
        self.kind == "system"
    }
}
