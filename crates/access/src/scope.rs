//! SMART App Launch 2.0 resource scopes, in both the v1 and the v2 syntax.
//!
//! Owns parsing one scope (`patient/Observation.read`, `user/*.*`, `system/*.write`,
//! `patient/Observation.rs`, `user/*.cruds`, `patient/Observation.rs?category=laboratory`) and
//! the question "in which contexts do these granted scopes permit this interaction on this type".
//! Does not: decide on roles or relationships (`decide` does), or check which scopes a client may
//! be granted (concord-auth does).
//!
//! - v1 `read` permits read and search; `write` permits create, update and delete; `*` all five.
//! - v2 permissions are the letters of `cruds` in that order, each at most once (`rs`, `cud`,
//!   `cruds`); a permission string out of order, repeated or with other letters is no scope.
//! - **A scope narrowed by a query (`?category=laboratory`) permits nothing here.** A query
//!   narrows what a search or read may return, and this crate cannot check it before the data is
//!   fetched; ignoring it would widen the grant, so it is parsed (and kept in [`Scope::query`])
//!   but not counted by [`scopes_permit`]. A client that wants such data asks for the unnarrowed
//!   scope.
//! - Scopes that are not resource scopes (`openid`, `fhirUser`, `launch/patient`,
//!   `offline_access`) are not parsed and permit nothing.

use serde::{Deserialize, Serialize};

/// The context a scope grants access in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeContext {
    /// `patient/`: only the record of the patient in the launch context.
    Patient,
    /// `user/`: whatever the user may see.
    User,
    /// `system/`: a backend service, no user.
    System,
}

/// A RESTful interaction, as far as scopes and permissions distinguish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interaction {
    Read,
    Search,
    Create,
    Update,
    Delete,
}

impl Interaction {
    /// Every interaction.
    pub const ALL: [Interaction; 5] = [
        Interaction::Read,
        Interaction::Search,
        Interaction::Create,
        Interaction::Update,
        Interaction::Delete,
    ];

    /// Whether the interaction changes data.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Interaction::Create | Interaction::Update | Interaction::Delete
        )
    }
}

/// One parsed resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub context: ScopeContext,
    /// A resource type, or `None` for `*`.
    pub resource_type: Option<String>,
    /// The interactions the scope grants.
    pub read: bool,
    pub search: bool,
    pub create: bool,
    pub update: bool,
    pub delete: bool,
    /// The narrowing query after `?`, if any (see the module doc: such a scope permits nothing).
    pub query: Option<String>,
}

impl Scope {
    /// Parse one scope; anything that is not a well-formed resource scope is `None`.
    pub fn parse(text: &str) -> Option<Scope> {
        let (context, rest) = text.split_once('/')?;
        let context = match context {
            "patient" => ScopeContext::Patient,
            "user" => ScopeContext::User,
            "system" => ScopeContext::System,
            _ => return None,
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query.to_owned())),
            None => (rest, None),
        };
        let (resource_type, permissions) = rest.split_once('.')?;
        let resource_type = match resource_type {
            "*" => None,
            name if is_type_name(name) => Some(name.to_owned()),
            _ => return None,
        };
        let mut scope = Scope {
            context,
            resource_type,
            read: false,
            search: false,
            create: false,
            update: false,
            delete: false,
            query,
        };
        match permissions {
            "read" => (scope.read, scope.search) = (true, true),
            "write" => (scope.create, scope.update, scope.delete) = (true, true, true),
            "*" => {
                (scope.read, scope.search) = (true, true);
                (scope.create, scope.update, scope.delete) = (true, true, true);
            }
            letters => {
                if letters.is_empty() {
                    return None;
                }
                // The v2 letters must appear in `cruds` order, each at most once.
                let mut order = "cruds".chars();
                for letter in letters.chars() {
                    order.by_ref().find(|c| *c == letter)?;
                    match letter {
                        'c' => scope.create = true,
                        'r' => scope.read = true,
                        'u' => scope.update = true,
                        'd' => scope.delete = true,
                        _ => scope.search = true,
                    }
                }
            }
        }
        Some(scope)
    }

    /// Whether the scope grants this interaction on this type (a narrowed scope grants nothing).
    pub fn permits(&self, resource_type: &str, interaction: Interaction) -> bool {
        if self.query.is_some() {
            return false;
        }
        if self
            .resource_type
            .as_deref()
            .is_some_and(|name| name != resource_type)
        {
            return false;
        }
        match interaction {
            Interaction::Read => self.read,
            Interaction::Search => self.search,
            Interaction::Create => self.create,
            Interaction::Update => self.update,
            Interaction::Delete => self.delete,
        }
    }
}

fn is_type_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The contexts in which the granted scopes permit this interaction on this type, each once, in
/// the order patient, user, system. Scopes are taken one per string (a space-separated scope
/// string is split by the caller or passed whole: both work).
pub fn scopes_permit(
    scopes: &[String],
    resource_type: &str,
    interaction: Interaction,
) -> Vec<ScopeContext> {
    let mut contexts: Vec<ScopeContext> = scopes
        .iter()
        .flat_map(|granted| granted.split_ascii_whitespace())
        .filter_map(Scope::parse)
        .filter(|scope| scope.permits(resource_type, interaction))
        .map(|scope| scope.context)
        .collect();
    contexts.sort();
    contexts.dedup();
    contexts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permitted(
        scopes: &[&str],
        resource_type: &str,
        interaction: Interaction,
    ) -> Vec<ScopeContext> {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        scopes_permit(&scopes, resource_type, interaction)
    }

    #[test]
    fn v1_scopes() {
        use Interaction::*;
        let p = ScopeContext::Patient;
        assert_eq!(
            permitted(&["patient/Observation.read"], "Observation", Read),
            [p]
        );
        assert_eq!(
            permitted(&["patient/Observation.read"], "Observation", Search),
            [p]
        );
        assert!(permitted(&["patient/Observation.read"], "Observation", Create).is_empty());
        assert!(permitted(&["patient/Observation.read"], "Condition", Read).is_empty());
        assert_eq!(
            permitted(&["user/*.*"], "Condition", Delete),
            [ScopeContext::User]
        );
        assert_eq!(
            permitted(&["system/*.write"], "Patient", Update),
            [ScopeContext::System]
        );
        assert!(permitted(&["system/*.write"], "Patient", Read).is_empty());
    }

    #[test]
    fn v2_scopes() {
        use Interaction::*;
        let u = ScopeContext::User;
        assert_eq!(
            permitted(&["user/Observation.rs"], "Observation", Read),
            [u]
        );
        assert_eq!(
            permitted(&["user/Observation.rs"], "Observation", Search),
            [u]
        );
        assert!(permitted(&["user/Observation.rs"], "Observation", Update).is_empty());
        for interaction in Interaction::ALL {
            assert_eq!(permitted(&["user/*.cruds"], "Encounter", interaction), [u]);
        }
        assert_eq!(permitted(&["user/*.c"], "Encounter", Create), [u]);
        assert!(permitted(&["user/*.c"], "Encounter", Read).is_empty());
        assert_eq!(permitted(&["user/*.cud"], "Encounter", Delete), [u]);
        // Out of order, repeated or foreign letters make no scope.
        for bad in [
            "user/*.sr",
            "user/*.rr",
            "user/*.rx",
            "user/*.",
            "user/*.READ",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn narrowed_scopes_parse_but_permit_nothing() {
        let scope = Scope::parse("patient/Observation.rs?category=laboratory").unwrap();
        assert_eq!(scope.query.as_deref(), Some("category=laboratory"));
        assert!(scope.read && scope.search);
        assert!(!scope.permits("Observation", Interaction::Search));
        assert!(
            permitted(
                &["patient/Observation.rs?category=laboratory"],
                "Observation",
                Interaction::Read
            )
            .is_empty()
        );
    }

    #[test]
    fn non_resource_scopes_and_junk_are_ignored() {
        for text in [
            "openid",
            "fhirUser",
            "launch/patient",
            "launch",
            "offline_access",
            "",
            "/",
            "patient/",
            "patient/.read",
            "admin/*.read",
            "patient/observation.read",
            "patient/Obs-x.read",
            "patient/*",
            "user/*.*.*",
        ] {
            assert!(
                Interaction::ALL
                    .into_iter()
                    .all(|i| permitted(&[text], "Observation", i).is_empty()),
                "{text}"
            );
        }
    }

    #[test]
    fn contexts_are_deduplicated_and_ordered() {
        let got = permitted(
            &[
                "system/*.read",
                "patient/*.read",
                "user/Patient.rs",
                "patient/Patient.r",
            ],
            "Patient",
            Interaction::Read,
        );
        assert_eq!(
            got,
            [
                ScopeContext::Patient,
                ScopeContext::User,
                ScopeContext::System
            ]
        );
        // A whole space-separated scope string works too.
        let got = permitted(&["openid user/Patient.rs"], "Patient", Interaction::Search);
        assert_eq!(got, [ScopeContext::User]);
    }
}
