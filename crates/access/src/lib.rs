//! The access decision (issue 6): who may see which part of whose record, and what the person's
//! consent withholds.
//!
//! Owns: roles, data categories, SMART scopes, the role permission matrix, the legitimate
//! relationship rule, break-glass grants, consent read from FHIR Consent resources, the decision
//! and the mask applied after it. Does not: read a store, a clock or a token (the hub gathers the
//! facts and passes the time in), or write audit (the hub does, with the decision's basis).
//!
//! How the hub uses it, per request: build a [`Principal`] from the verified token and a
//! [`Target`] (with the person's [`PersonFacts`]: Patient ids, [`RelationshipFact`]s, the
//! [`ConsentPolicy`] read by [`ConsentPolicy::from_consents`], any [`BreakGlass`] grant), call
//! [`decide()`], audit the basis or the denial, and on a permit run [`mask()`] over each resource
//! fetched, dropping what it withholds and adding [`withheld_issue`] to the OperationOutcome when
//! anything was dropped. A search across people (no person) is denied for patient data: the hub
//! decides per person found instead.

pub mod break_glass;
pub mod category;
pub mod consent;
pub mod decide;
pub mod mask;
pub mod permission;
pub mod relationship;
pub mod role;
pub mod scope;

pub use break_glass::{BreakGlass, BreakGlassReason, DEFAULT_BREAK_GLASS_MS, MAX_BREAK_GLASS_MS};
pub use category::{Category, category_of, category_of_resource, is_patient_data};
pub use consent::{
    CodeMatch, ConsentChoices, ConsentPolicy, EmergencyOverride, SensitiveCategories,
    consent_resource,
};
pub use decide::{
    Basis, Decision, Denial, DenyReason, Permit, PersonFacts, Policy, Principal, PrincipalKind,
    Target, decide,
};
pub use mask::{Filter, Verdict, mask, mask_head, reads_whole_resource, withheld_issue};
pub use permission::{citizen_may_write, role_permits};
pub use relationship::{Evidence, RelationshipFact, RelationshipPolicy, relationship};
pub use role::Role;
pub use scope::{Interaction, Scope, ScopeContext, scopes_permit};
