//! The access decision: may this principal make this interaction on this type, for this person's
//! record, and if so what may they see of it. Decide first, mask second; deciding never mutates.
//!
//! Owns the rules below and the value types the hub fills in ([`Principal`], [`PersonFacts`],
//! [`Target`], [`Policy`]) and gets back ([`Decision`]). Does not: gather the facts (the hub reads
//! the token, the MPI, the source registry, consents and break-glass grants), read a clock (time
//! comes in as `now_ms`), mask resources (`mask` does, with the [`Filter`] a permit carries) or
//! audit (the hub records every decision with its basis or reason).
//!
//! Rules, in the order they are applied:
//!
//! 1. **System principals** (backend services) need a `system/` scope permitting the interaction
//!    on the type; then they are permitted on basis `System`. Roles, relationship and consent do
//!    not apply: a system principal is another node or a host system acting under its own
//!    agreement, and is audited as such.
//! 2. **Scopes first.** A user needs a `user/` or `patient/` scope permitting the interaction on
//!    the type, else `Deny(Scope)`. When only `patient/` scopes permit it, the request is bound to
//!    the SMART patient context: without one `Deny(NoPatientContext)`, and a person who is not
//!    that patient `Deny(NotOwnRecord)`. Scopes also narrow the filter's categories: a scope
//!    naming a type admits that type's category (and the social-care and patient-entered
//!    categories, which hold resources of every type); a `*` scope admits all. This is coarser
//!    than per type; the hub checks each type it reads with [`crate::scopes_permit`] as well.
//! 3. **Types that are not patient data** (Organization, Practitioner, Location, ...;
//!    [`crate::is_patient_data`]) are permitted to every user on basis `NotPatientData`; writing
//!    them needs the administrator or data steward role (else `Deny(Role)`).
//! 4. **Oversight**: a privacy officer reading or writing audit and consent, and a data steward
//!    working on demographics, act across the whole population (investigations, identity
//!    management); they are permitted on basis `Oversight`, with or without a person, with the
//!    categories of their roles and no consent filter.
//! 5. **Patient data needs a person**: with no person (a search across people) a user is denied
//!    `NoPatientContext`; the hub decides per person instead.
//! 6. **Patients and proxies**: a `patient` role whose SMART patient context is one of the
//!    person's Patient ids is permitted on basis `OwnRecord`; a `proxy` role with any of
//!    `proxy_for` among them on basis `Proxy`. They see everything of that record (no consent
//!    filter; scopes still narrow categories) and write only Consent and the patient-entered
//!    types (`citizen_may_write`), else `Deny(Role)`. Any other person: `Deny(NotOwnRecord)`
//!    (`NoPatientContext` for a patient token without a patient context). A principal that is
//!    also staff falls through to the staff rules when the citizen rules do not permit.
//! 7. **Staff: the role decides the categories**, the union over the principal's staff roles
//!    ([`crate::role_permits`]). If the target type's category is not permitted for the
//!    interaction (read or write): `Deny(Role)`.
//! 8. **Relationship or break-glass**: the principal's organisation has a legitimate relationship
//!    ([`crate::relationship()`]), basis `Relationship`; or the person's break-glass grant is for
//!    this principal's subject (and organisation, when the grant names one), is active at `now_ms`
//!    and the principal has a role that may break glass, basis `BreakGlass`. The hub passes only
//!    a grant recorded for this person (PersonFacts carries no person id to compare). Neither:
//!    `Deny(NoRelationship)` when a role may break glass (the message says so), else
//!    `Deny(BreakGlassNotAllowed)`.
//! 9. **Consent filter for staff**: an opt-out shows only records from the principal's own
//!    organisation (`only_organizations`), and so does a block on the principal's organisation
//!    (`ConsentPolicy::blocked_organizations`: that organisation may not see the shared record,
//!    only what it holds itself; a principal with no organisation then sees nothing); withheld
//!    organisations' records are withheld, except from that organisation itself; withheld
//!    sensitive categories become `withheld_codes`.
//! 10. **Emergency override**: with an active break-glass grant for this principal whose reason
//!     is emergency or urgent care, or whose principal declares purpose `ETREAT`, and a role in
//!     `EmergencyOverride::roles`, the opt-out, blocked and withheld organisations are lifted
//!     and the categories in `EmergencyOverride::categories` are revealed. The grant is required even
//!     with a relationship: lifting a person's consent is always a break-glass act, alerted and
//!     audited.
//!
//! Denial messages name the interaction, the type and roles, never the person or their data.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::break_glass::BreakGlass;
use crate::category::{Category, category_of, is_patient_data};
use crate::consent::{ConsentPolicy, EmergencyOverride, SensitiveCategories};
use crate::mask::{Filter, same_organization};
use crate::permission::{citizen_may_write, role_permits};
use crate::relationship::{RelationshipFact, RelationshipPolicy, relationship};
use crate::role::Role;
use crate::scope::{Interaction, Scope, ScopeContext, scopes_permit};

/// Whether a principal is a person or a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    System,
}

/// Who is asking, as the hub read it from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub kind: PrincipalKind,
    pub roles: Vec<Role>,
    /// The ODS code of the organisation the user acts for.
    pub organization: Option<String>,
    pub scopes: Vec<String>,
    /// The SMART patient context: a hub Patient id.
    pub patient: Option<String>,
    /// Hub Patient ids the user is proxy for.
    pub proxy_for: Vec<String>,
    /// The v3 PurposeOfUse code (`TREAT`, `ETREAT`, ...).
    pub purpose: String,
}

/// What the hub knows about the person whose record is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonFacts {
    /// Every hub Patient id of the golden person.
    pub patient_ids: Vec<String>,
    pub relationships: Vec<RelationshipFact>,
    pub consent: ConsentPolicy,
    /// The break-glass grant recorded for this person and this principal, if any.
    pub break_glass: Option<BreakGlass>,
}

/// What is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource_type: String,
    pub interaction: Interaction,
    /// `None`: not one person's data (Organization, metadata, a type search without a patient).
    pub person: Option<PersonFacts>,
}

/// The configured part of the decision.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    pub relationship: RelationshipPolicy,
    pub sensitive: SensitiveCategories,
    pub emergency: EmergencyOverride,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Permit(Permit),
    Deny(Denial),
}

impl Decision {
    pub fn is_permit(&self) -> bool {
        matches!(self, Decision::Permit(_))
    }
}

/// A permit: on what basis, and what may be seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    pub basis: Basis,
    pub filter: Filter,
}

/// Why access was permitted (recorded in the audit event).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "basis")]
pub enum Basis {
    System,
    OwnRecord,
    Proxy,
    Relationship {
        organization: String,
    },
    BreakGlass,
    NotPatientData,
    /// A privacy officer's audit and consent work or a data steward's identity work (rule 4).
    Oversight,
}

impl Basis {
    /// The wire code for audit.
    pub fn code(&self) -> &'static str {
        match self {
            Basis::System => "system",
            Basis::OwnRecord => "own-record",
            Basis::Proxy => "proxy",
            Basis::Relationship { .. } => "relationship",
            Basis::BreakGlass => "break-glass",
            Basis::NotPatientData => "not-patient-data",
            Basis::Oversight => "oversight",
        }
    }
}

/// A refusal: the reason, and a message for the OperationOutcome (no patient data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    pub message: String,
}

/// Why access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyReason {
    Scope,
    Role,
    /// No legitimate relationship; the caller may break glass.
    NoRelationship,
    NotOwnRecord,
    NoPatientContext,
    /// No legitimate relationship, and no role of the caller may break glass.
    BreakGlassNotAllowed,
}

impl DenyReason {
    /// The wire code for audit.
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::Scope => "scope",
            DenyReason::Role => "role",
            DenyReason::NoRelationship => "no-relationship",
            DenyReason::NotOwnRecord => "not-own-record",
            DenyReason::NoPatientContext => "no-patient-context",
            DenyReason::BreakGlassNotAllowed => "break-glass-not-allowed",
        }
    }
}

fn deny(reason: DenyReason, message: String) -> Decision {
    Decision::Deny(Denial { reason, message })
}

fn permit(basis: Basis, filter: Filter) -> Decision {
    Decision::Permit(Permit { basis, filter })
}

fn interaction_name(interaction: Interaction) -> &'static str {
    match interaction {
        Interaction::Read => "read",
        Interaction::Search => "search",
        Interaction::Create => "create",
        Interaction::Update => "update",
        Interaction::Delete => "delete",
    }
}

/// A resource type fit to quote in a message: only a plausible type name, else a placeholder, so
/// a message never echoes arbitrary input.
fn type_name(resource_type: &str) -> &str {
    let plausible = resource_type.len() <= 64
        && resource_type
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
        && resource_type.chars().all(|c| c.is_ascii_alphanumeric());
    if plausible {
        resource_type
    } else {
        "this type"
    }
}

/// The categories the principal's read scopes admit (rule 2), in the given contexts.
fn scope_categories(scopes: &[String], contexts: &[ScopeContext]) -> BTreeSet<Category> {
    let mut categories = BTreeSet::new();
    let parsed = scopes
        .iter()
        .flat_map(|granted| granted.split_ascii_whitespace())
        .filter_map(Scope::parse)
        .filter(|s| contexts.contains(&s.context) && s.query.is_none() && (s.read || s.search));
    for scope in parsed {
        match scope.resource_type {
            None => return Category::ALL.into_iter().collect(),
            Some(name) => {
                categories.insert(category_of(&name));
                categories.insert(Category::SocialCare);
                categories.insert(Category::PatientEntered);
            }
        }
    }
    categories
}

fn narrowed(mut filter: Filter, admitted: &BTreeSet<Category>) -> Filter {
    filter.categories = filter.categories.intersection(admitted).copied().collect();
    filter
}

/// Decide, by the rules in the module doc.
pub fn decide(principal: &Principal, target: &Target, policy: &Policy, now_ms: i64) -> Decision {
    let interaction = target.interaction;
    let write = interaction.is_write();
    let what = format!(
        "{} on {}",
        interaction_name(interaction),
        type_name(&target.resource_type)
    );
    let contexts = scopes_permit(&principal.scopes, &target.resource_type, interaction);

    // Rule 1.
    if principal.kind == PrincipalKind::System {
        if !contexts.contains(&ScopeContext::System) {
            return deny(
                DenyReason::Scope,
                format!("no system scope granted permits {what}"),
            );
        }
        let admitted = scope_categories(&principal.scopes, &[ScopeContext::System]);
        return permit(Basis::System, narrowed(Filter::everything(), &admitted));
    }

    // Rule 2.
    let user_scope = contexts.contains(&ScopeContext::User);
    if !user_scope && !contexts.contains(&ScopeContext::Patient) {
        return deny(
            DenyReason::Scope,
            format!("no scope granted permits {what}"),
        );
    }
    let admitted = scope_categories(
        &principal.scopes,
        &[ScopeContext::User, ScopeContext::Patient],
    );
    let patient_data = is_patient_data(&target.resource_type);
    if !user_scope && patient_data {
        let Some(context) = &principal.patient else {
            return deny(
                DenyReason::NoPatientContext,
                format!("patient scopes permit {what} only with a patient in context"),
            );
        };
        if let Some(person) = &target.person
            && !person.patient_ids.contains(context)
        {
            return deny(
                DenyReason::NotOwnRecord,
                "patient scopes permit only the record of the patient in context".to_owned(),
            );
        }
    }

    // Rule 3.
    if !patient_data {
        if write
            && !principal
                .roles
                .iter()
                .any(|r| matches!(r, Role::Administrator | Role::DataSteward))
        {
            return deny(
                DenyReason::Role,
                format!("only administrators and data stewards may {what}"),
            );
        }
        return permit(
            Basis::NotPatientData,
            narrowed(Filter::everything(), &admitted),
        );
    }

    let staff: Vec<Role> = principal
        .roles
        .iter()
        .copied()
        .filter(|r| r.is_staff())
        .collect();
    let category = category_of(&target.resource_type);

    // Rule 4.
    let overseers: Vec<Role> = staff
        .iter()
        .copied()
        .filter(|role| {
            matches!(
                (role, category),
                (Role::PrivacyOfficer, Category::Audit | Category::Consent)
                    | (Role::DataSteward, Category::Demographics)
            ) && role_permits(*role, category, write)
        })
        .collect();
    if !overseers.is_empty() {
        let filter = Filter {
            categories: Category::ALL
                .into_iter()
                .filter(|c| overseers.iter().any(|r| role_permits(*r, *c, false)))
                .collect(),
            ..Filter::everything()
        };
        return permit(Basis::Oversight, narrowed(filter, &admitted));
    }

    // Rule 5.
    let Some(person) = &target.person else {
        return deny(
            DenyReason::NoPatientContext,
            format!("{what} must name one patient"),
        );
    };

    // Rule 6.
    let citizen = citizen_decision(
        principal,
        person,
        &target.resource_type,
        &what,
        write,
        &admitted,
    );
    match citizen {
        Some(decision @ Decision::Permit(_)) => return decision,
        Some(denial) if staff.is_empty() => return denial,
        _ => {}
    }
    if staff.is_empty() {
        return deny(DenyReason::Role, format!("no role permits {what}"));
    }

    // Rule 7.
    if !staff.iter().any(|r| role_permits(*r, category, write)) {
        return deny(
            DenyReason::Role,
            format!(
                "the role {} does not permit {what}",
                staff
                    .iter()
                    .map(|r| r.code())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }

    // Rule 8.
    let may_break_glass = staff.iter().any(|r| r.may_break_glass());
    let organization = principal
        .organization
        .as_deref()
        .filter(|o| !o.trim().is_empty());
    let related = organization
        .and_then(|org| relationship(org, &person.relationships, &policy.relationship, now_ms));
    let grant = person.break_glass.as_ref().filter(|grant| {
        may_break_glass
            && grant.subject == principal.subject
            && grant.is_active(now_ms)
            && grant.organization.as_deref().is_none_or(|granted| {
                organization.is_some_and(|org| same_organization(granted, org))
            })
    });
    let basis = match (related, grant) {
        (Some(fact), _) => Basis::Relationship {
            organization: fact.organization.clone(),
        },
        (None, Some(_)) => Basis::BreakGlass,
        (None, None) if may_break_glass => {
            return deny(
                DenyReason::NoRelationship,
                "your organisation has no legitimate relationship with this person; you may break glass, giving a reason".to_owned(),
            );
        }
        (None, None) => {
            return deny(
                DenyReason::BreakGlassNotAllowed,
                "your organisation has no legitimate relationship with this person, and your role may not break glass".to_owned(),
            );
        }
    };

    // Rules 9 and 10.
    let categories = Category::ALL
        .into_iter()
        .filter(|c| staff.iter().any(|r| role_permits(*r, *c, false)))
        .filter(|c| admitted.contains(c))
        .collect();
    let emergency = grant.is_some_and(|grant| {
        (grant.reason.is_emergency() || is_emergency_purpose(&principal.purpose))
            && staff.iter().any(|r| policy.emergency.roles.contains(r))
    });
    let filter = consent_filter(&person.consent, organization, emergency, policy, categories);
    permit(basis, filter)
}

fn is_emergency_purpose(purpose: &str) -> bool {
    purpose == "ETREAT" || purpose.ends_with("|ETREAT")
}

fn citizen_decision(
    principal: &Principal,
    person: &PersonFacts,
    resource_type: &str,
    what: &str,
    write: bool,
    admitted: &BTreeSet<Category>,
) -> Option<Decision> {
    let is_patient = principal.roles.contains(&Role::Patient);
    let is_proxy = principal.roles.contains(&Role::Proxy);
    if !is_patient && !is_proxy {
        return None;
    }
    let own = is_patient
        && principal
            .patient
            .as_ref()
            .is_some_and(|p| person.patient_ids.contains(p));
    let proxied = is_proxy
        && principal
            .proxy_for
            .iter()
            .any(|p| person.patient_ids.contains(p));
    if own || proxied {
        if write && !citizen_may_write(resource_type) {
            return Some(deny(
                DenyReason::Role,
                format!(
                    "patients and proxies may not {what}; they write their own entries and consent"
                ),
            ));
        }
        let basis = if own { Basis::OwnRecord } else { Basis::Proxy };
        return Some(permit(basis, narrowed(Filter::everything(), admitted)));
    }
    if is_patient && principal.patient.is_none() && !is_proxy {
        return Some(deny(
            DenyReason::NoPatientContext,
            "a patient token needs a patient context".to_owned(),
        ));
    }
    Some(deny(
        DenyReason::NotOwnRecord,
        "patients and proxies may see only their own record and those they are proxy for"
            .to_owned(),
    ))
}

fn consent_filter(
    consent: &ConsentPolicy,
    organization: Option<&str>,
    emergency: bool,
    policy: &Policy,
    categories: BTreeSet<Category>,
) -> Filter {
    let own = |org: &String| organization.is_some_and(|mine| same_organization(org, mine));
    let blocked = consent.blocked_organizations.iter().any(own);
    if emergency {
        let still_withheld: Vec<&String> = consent
            .withheld_categories
            .iter()
            .filter(|c| !policy.emergency.categories.contains(*c))
            .collect();
        return Filter {
            categories,
            withheld_organizations: BTreeSet::new(),
            only_organizations: None,
            withheld_codes: policy.sensitive.codes_for(still_withheld),
        };
    }
    Filter {
        categories,
        withheld_organizations: consent
            .withheld_organizations
            .iter()
            .filter(|org| !own(org))
            .cloned()
            .collect(),
        only_organizations: (consent.opt_out || blocked)
            .then(|| organization.map(str::to_owned).into_iter().collect()),
        withheld_codes: policy.sensitive.codes_for(&consent.withheld_categories),
    }
}
