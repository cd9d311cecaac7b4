//! Access control in the service layer (issue 6): every use case asks here before it returns or
//! writes a person's data, so no transport can skip it.
//!
//! Owns: the [`Principal`] a request context stands for, the facts about a person that the
//! decision needs (which organisations hold the person's records, the person's Consent resources,
//! an active break-glass grant), turning a denial into the error vocabulary, masking what a permit
//! withholds, break-glass grants (`Patient/[id]/$break-glass`), and noting on the context whose
//! records a request touched and on what basis, for the audit record.
//!
//! Does not: decide (the pure `concord-access` crate does: decide first, mask second, and the
//! decision never mutates), authenticate (the transport does) or write audit (the transport writes
//! exactly one audit record per request from the context's note).
//!
//! System callers holding `system/*.*` (edges announcing their people, the hub's own jobs, the
//! CLI) are not person-filtered: an edge answers the hub in full and the hub masks for its user.
//! Grants live in memory: after a restart a user breaks glass again, the safe direction.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use concord_access::{
    Basis, BreakGlass, BreakGlassReason, ConsentPolicy, Decision, Evidence, Filter, Interaction,
    PersonFacts, Policy, Principal, PrincipalKind, RelationshipFact, Role, Target, Verdict,
};
use concord_fhir::context::Actor;
use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_search::index::IndexValue;
use concord_search::registry::{lookup, patient_compartment_params};
use concord_store::StoredVersion;
use serde_json::Value;

use crate::Hub;
use crate::federate::SOURCE_RECORD_SYSTEM;

/// How this node decides access.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// The ODS code of the organisation that runs this node. Its users have a relationship with
    /// every person whose record the node holds itself (an edge is one organisation's system).
    pub organization: Option<String>,
    /// Relationship window, sensitive code lists and emergency override.
    pub policy: Policy,
    /// How long a break-glass grant lasts.
    pub break_glass_ms: i64,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            organization: None,
            policy: Policy::default(),
            break_glass_ms: concord_access::DEFAULT_BREAK_GLASS_MS,
        }
    }
}

/// Break-glass grants in force, by (user, golden person or Patient id).
#[derive(Debug, Default)]
pub(crate) struct Grants {
    by_user: Mutex<HashMap<(String, String), BreakGlass>>,
}

/// What access decisions read from the store about a person (their records, the organisations
/// holding them, their consent), by the Patient asked about and its golden person, each entry
/// with the store's `last_seq` when it was read. Every write moves `last_seq`, so an entry is
/// used only while nothing at all has been written since: a changed consent or a new record is
/// seen by the very next decision. Reading these facts took about a third of a read's time (the
/// Person, each Patient of the person, and a Consent search). The golden person comes from the
/// index in memory and is part of the key, so a relink is never missed either.
#[derive(Debug, Default)]
pub(crate) struct FactsCache {
    entries: Mutex<HashMap<FactsKey, (i64, Arc<StoredFacts>)>>,
}

/// The Patient asked about and its golden person (the Patient id again when it has none).
type FactsKey = (String, String);

/// At most this many people are cached; the cache is emptied when it is full (a plain bound, as
/// entries live only until the next write anyway).
const FACTS_CACHE_ENTRIES: usize = 4096;

#[derive(Debug)]
pub(crate) struct StoredFacts {
    patient_ids: Vec<String>,
    relationships: Vec<RelationshipFact>,
    consent: ConsentPolicy,
}

impl FactsCache {
    fn get(&self, key: &FactsKey, seq: i64) -> Option<Arc<StoredFacts>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(at, _)| *at == seq)
            .map(|(_, facts)| facts.clone())
    }

    fn put(&self, key: FactsKey, seq: i64, facts: Arc<StoredFacts>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= FACTS_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (seq, facts));
    }
}

/// What a permit lets the caller see of one person.
#[derive(Debug, Clone)]
pub struct Grant {
    pub basis: Basis,
    pub filter: Filter,
}

impl Grant {
    fn everything(basis: Basis) -> Grant {
        Grant {
            basis,
            filter: Filter::everything(),
        }
    }
}

/// A caller that may do anything: the hub itself, an edge, the CLI (`system/*.*`).
pub(crate) fn is_trusted_system(ctx: &RequestContext) -> bool {
    matches!(&ctx.actor, Actor::System { scopes, .. } if scopes.iter().any(|s| s == "system/*.*" || s == "system/*.cruds"))
}

/// Whether the caller is a patient or proxy and no staff role (what they write is theirs).
pub(crate) fn is_citizen(ctx: &RequestContext) -> bool {
    let principal = principal(ctx);
    principal.kind == PrincipalKind::User
        && principal
            .roles
            .iter()
            .any(|r| matches!(r, Role::Patient | Role::Proxy))
        && !principal.roles.iter().any(|r| r.is_staff())
}

/// The principal a request context stands for.
pub fn principal(ctx: &RequestContext) -> Principal {
    match &ctx.actor {
        Actor::User {
            id,
            roles,
            organization,
            scopes,
            patient,
            proxy_for,
            ..
        } => Principal {
            subject: id.clone(),
            kind: PrincipalKind::User,
            roles: roles.iter().filter_map(|r| Role::parse(r)).collect(),
            organization: organization.clone(),
            scopes: scopes.clone(),
            patient: patient.clone(),
            proxy_for: proxy_for.clone(),
            purpose: ctx.purpose.0.clone(),
        },
        Actor::System { name, scopes } => Principal {
            subject: name.clone(),
            kind: PrincipalKind::System,
            roles: Vec::new(),
            organization: None,
            scopes: scopes.clone(),
            patient: None,
            proxy_for: Vec::new(),
            purpose: ctx.purpose.0.clone(),
        },
    }
}

/// A stored body parsed whole, for the mask when it looks for withheld codes.
fn whole_of(body: &str) -> Result<Cow<'static, Value>, Error> {
    serde_json::from_str(body)
        .map(Cow::Owned)
        .map_err(|_| Error::internal())
}

/// The hub Patient ids a resource is about: itself for a Patient, else the Patient references of
/// its Patient-compartment search parameters (`subject`, `patient`, ...).
pub fn patients_of(resource_type: &str, resource: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    if resource_type == "Patient" {
        if let Some(id) = resource.get("id").and_then(Value::as_str) {
            out.insert(id.to_string());
        }
        return out.into_iter().collect();
    }
    let mut values = Vec::new();
    for code in patient_compartment_params(resource_type) {
        let Some(def) = lookup(resource_type, code) else {
            continue;
        };
        values.clear();
        concord_search::extract::param_values(def, resource, &mut values);
        for value in &values {
            if let IndexValue::Reference {
                resource_type: Some(t),
                id: Some(id),
                url: None,
                ..
            } = value
                && t == "Patient"
            {
                out.insert(id.clone());
            }
        }
    }
    out.into_iter().collect()
}

/// Whether a resource is a worklist Task of the master patient index (tagged
/// `https://concord.health/fhir/CodeSystem/mpi|worklist`).
pub fn is_worklist_task(resource_type: &str, resource: &Value) -> bool {
    resource_type == "Task"
        && resource
            .pointer("/meta/tag")
            .and_then(Value::as_array)
            .is_some_and(|tags| {
                tags.iter().any(|t| {
                    t.get("system").and_then(Value::as_str) == Some(crate::identity::MPI_SYSTEM)
                        && t.get("code").and_then(Value::as_str) == Some("worklist")
                })
            })
}

/// Whether a principal's role lets them look people up by demographics.
fn may_look_up(principal: &Principal) -> bool {
    principal.kind == PrincipalKind::User
        && principal.patient.is_none()
        && principal.roles.iter().any(|r| {
            concord_access::role_permits(*r, concord_access::Category::Demographics, false)
        })
        && !principal
            .roles
            .iter()
            .any(|r| matches!(r, Role::Patient | Role::Proxy))
}

impl Hub {
    /// The access settings of this node.
    pub fn access_config(&self) -> &AccessConfig {
        &self.config.access
    }

    /// Decides a request about one person (`patient_id` a hub Patient id) or, with `None`, about
    /// no one in particular. Notes the person and the basis on the context; a denial is an error
    /// (403) that says why and, where the caller may, how to break glass.
    pub fn authorize(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        interaction: Interaction,
        patient_id: Option<&str>,
    ) -> Result<Grant, Error> {
        self.authorize_at(ctx, resource_type, interaction, patient_id, None)
    }

    /// [`Hub::authorize`] with the store position the person's facts may be cached under, when
    /// the caller read it already (once for a whole page of search results, instead of once per
    /// person on it); `None` reads it.
    fn authorize_at(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        interaction: Interaction,
        patient_id: Option<&str>,
        seq: Option<i64>,
    ) -> Result<Grant, Error> {
        if is_trusted_system(ctx) {
            if let Some(id) = patient_id {
                ctx.note.update(|n| {
                    n.patients.insert(id.to_string());
                });
            }
            return Ok(Grant::everything(Basis::System));
        }
        let principal = principal(ctx);
        let person = match patient_id {
            Some(id) => Some(self.person_facts(ctx, id, &principal, seq)?),
            None => None,
        };
        if let Some(id) = patient_id {
            ctx.note.update(|n| {
                n.patients.insert(id.to_string());
            });
        }
        let target = Target {
            resource_type: resource_type.to_string(),
            interaction,
            person,
        };
        let now = self.clock.now_ms();
        let decision = concord_access::decide(&principal, &target, &self.config.access.policy, now);
        self.note_decision(ctx, decision, &target, patient_id)
    }

    fn note_decision(
        &self,
        ctx: &RequestContext,
        decision: Decision,
        target: &Target,
        patient_id: Option<&str>,
    ) -> Result<Grant, Error> {
        match decision {
            Decision::Permit(permit) => {
                let break_glass = match (&permit.basis, &target.person) {
                    (Basis::BreakGlass, Some(person)) => person
                        .break_glass
                        .as_ref()
                        .map(|g| (g.reason.code().to_string(), g.text.clone())),
                    _ => None,
                };
                ctx.note.update(|n| {
                    n.basis = Some(permit.basis.code().to_string());
                    if break_glass.is_some() {
                        n.break_glass = break_glass;
                    }
                });
                Ok(Grant {
                    basis: permit.basis,
                    filter: permit.filter,
                })
            }
            Decision::Deny(denial) => {
                ctx.note.update(|n| n.denied = Some(denial.message.clone()));
                let mut message = denial.message;
                if denial.reason == concord_access::DenyReason::NoRelationship
                    && let Some(id) = patient_id
                {
                    message = format!(
                        "{}: POST Patient/{id}/$break-glass",
                        message.trim_end_matches('.')
                    );
                }
                Err(Error::new(ErrorKind::Forbidden, message))
            }
        }
    }

    /// Decides a request for one stored resource: about the person it belongs to, or about no one.
    /// Returns the grant and whether the mask withholds the resource itself. `seq` is the store
    /// position to key the person's cached facts by when the caller has read it (see
    /// [`Hub::filter_versions`]); `None` reads it.
    pub fn authorize_resource(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        resource: &Value,
        seq: Option<i64>,
    ) -> Result<(Grant, Verdict), Error> {
        self.authorize_view(ctx, interaction, resource_type, resource, seq, &|| {
            Ok(Cow::Borrowed(resource))
        })
    }

    /// [`Hub::authorize_resource`] over a part of the resource that holds at least what
    /// `crate::decision_view` keeps; `whole` gives the whole resource, which only the mask reads.
    fn authorize_view<'r>(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        resource: &Value,
        seq: Option<i64>,
        whole: &dyn Fn() -> Result<Cow<'r, Value>, Error>,
    ) -> Result<(Grant, Verdict), Error> {
        if is_trusted_system(ctx) {
            return Ok((Grant::everything(Basis::System), Verdict::Keep));
        }
        if is_worklist_task(resource_type, resource) {
            self.authorize_worklist(ctx)?;
            return Ok((Grant::everything(Basis::Oversight), Verdict::Keep));
        }
        let patients = patients_of(resource_type, resource);
        let patient = patients.first().map(String::as_str);
        let grant = self.authorize_at(ctx, resource_type, interaction, patient, seq)?;
        // A resource about two people (a rare shared Encounter) needs both.
        for other in patients.iter().skip(1) {
            self.authorize_at(ctx, resource_type, interaction, Some(other), seq)?;
        }
        // The mask reads the type, `meta.tag` and the identifiers (for an announced copy's
        // source), which the part holds, unless the filter withholds codes, which may be anywhere.
        let verdict = if concord_access::reads_whole_resource(&grant.filter) {
            self.mask_local(&grant, resource_type, &*whole()?)
        } else {
            self.mask_local(&grant, resource_type, resource)
        };
        Ok((grant, verdict))
    }

    /// Like [`Hub::authorize_resource`], and a staff member whose role includes demographics may
    /// look up anyone's Patient or Person (finding a person, as a national demographics service
    /// allows) without a relationship; opening the record still needs one.
    pub fn authorize_lookup(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        resource: &Value,
        seq: Option<i64>,
    ) -> Result<(Grant, Verdict), Error> {
        self.authorize_lookup_view(ctx, interaction, resource_type, resource, seq, &|| {
            Ok(Cow::Borrowed(resource))
        })
    }

    /// [`Hub::authorize_lookup`] for a stored body: the decision reads the part of it that
    /// `crate::decision_view` keeps, and the whole is parsed only if the mask needs it.
    pub(crate) fn authorize_stored(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        body: &str,
        seq: Option<i64>,
    ) -> Result<(Grant, Verdict), Error> {
        let view = crate::decision_view::decision_view(resource_type, body)
            .map_err(|_| Error::internal())?;
        self.authorize_lookup_view(ctx, interaction, resource_type, &view, seq, &|| {
            whole_of(body)
        })
    }

    fn authorize_lookup_view<'r>(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        resource: &Value,
        seq: Option<i64>,
        whole: &dyn Fn() -> Result<Cow<'r, Value>, Error>,
    ) -> Result<(Grant, Verdict), Error> {
        let result = self.authorize_view(ctx, interaction, resource_type, resource, seq, whole);
        match result {
            Err(error)
                if matches!(resource_type, "Patient" | "Person")
                    && matches!(interaction, Interaction::Read | Interaction::Search)
                    && may_look_up(&principal(ctx)) =>
            {
                let _ = error;
                ctx.note.update(|n| {
                    n.denied = None;
                    n.basis = Some("demographics-lookup".into());
                });
                Ok((Grant::everything(Basis::NotPatientData), Verdict::Keep))
            }
            other => other,
        }
    }

    /// Decides a write of `resource` (a create, or the new content of an update): about the
    /// people it references who are already known here, or, for a new record, as a record this
    /// node's organisation creates.
    pub(crate) fn guard_write(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        resource: &Value,
    ) -> Result<(), Error> {
        if resource_type == "AuditEvent" && self.audit.is_some() {
            return Err(crate::audit_view::read_only());
        }
        if is_trusted_system(ctx) {
            return Ok(());
        }
        if resource_type == "Provenance" && is_citizen(ctx) {
            return self.guard_citizen_provenance(ctx, resource, &HashMap::new());
        }
        let internal = ctx.internal();
        let known: Vec<String> = patients_of(resource_type, resource)
            .into_iter()
            .filter(|id| matches!(self.store.read(&internal, "Patient", id), Ok(Some(v)) if !v.is_deleted()))
            .collect();
        if known.is_empty() {
            let principal = principal(ctx);
            let target = Target {
                resource_type: resource_type.to_string(),
                interaction,
                person: Some(PersonFacts {
                    patient_ids: Vec::new(),
                    relationships: self
                        .config
                        .access
                        .organization
                        .iter()
                        .map(|org| RelationshipFact {
                            organization: org.clone(),
                            evidence: Evidence::HoldsRecord,
                            at_ms: None,
                        })
                        .collect(),
                    consent: ConsentPolicy::default(),
                    break_glass: None,
                }),
            };
            let decision = concord_access::decide(
                &principal,
                &target,
                &self.config.access.policy,
                self.clock.now_ms(),
            );
            return self.note_decision(ctx, decision, &target, None).map(|_| ());
        }
        for id in &known {
            self.authorize(ctx, resource_type, interaction, Some(id))?;
        }
        Ok(())
    }

    /// A Provenance a patient or proxy writes for what they entered themselves (the portal's
    /// readings: <https://hl7.org/fhir/R4/provenance.html>). Provenance is not one of the
    /// patient-writable types and names no patient of its own (its `patient` search parameter is
    /// a target that is a Patient), so it is decided by its targets instead: there must be at
    /// least one, and each must be either an entry of the same transaction whose fullUrl is in
    /// `created` (type by fullUrl: a patient-writable type, itself decided as an entry of the
    /// caller's own record), or a stored resource that is patient-entered and that the caller
    /// may change. An agent naming a Patient must name one the caller acts for. The Provenance
    /// is tagged patient-entered like everything a citizen writes.
    pub(crate) fn guard_citizen_provenance(
        &self,
        ctx: &RequestContext,
        resource: &Value,
        created: &HashMap<String, String>,
    ) -> Result<(), Error> {
        let refuse = |message: &str| {
            ctx.note.update(|n| n.denied = Some(message.into()));
            Err(Error::new(ErrorKind::Forbidden, message))
        };
        let principal = principal(ctx);
        let own: Vec<&String> = principal
            .patient
            .iter()
            .chain(principal.proxy_for.iter())
            .collect();
        let agents_ok = resource
            .get("agent")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.pointer("/who/reference").and_then(Value::as_str))
            .filter_map(|r| r.strip_prefix("Patient/"))
            .all(|id| own.iter().any(|o| o.as_str() == id));
        if !agents_ok {
            return refuse(
                "a patient's Provenance may name only them (or whom they act for) as agent",
            );
        }
        let targets: Vec<&str> = resource
            .get("target")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| {
                t.get("reference")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            })
            .collect();
        if targets.is_empty() {
            return refuse("a patient's Provenance must name what they entered as its target");
        }
        for target in targets {
            if let Some(resource_type) = created.get(target) {
                if !concord_access::permission::PATIENT_WRITABLE_TYPES
                    .contains(&resource_type.as_str())
                {
                    return refuse(
                        "a patient's Provenance may target only what patients enter themselves",
                    );
                }
                continue;
            }
            let stored = match target.split_once('/') {
                Some((resource_type, id)) if !id.contains('/') => self
                    .store
                    .read(&ctx.internal(), resource_type, id)?
                    .filter(|v| !v.is_deleted())
                    .and_then(|v| v.body)
                    .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                    .map(|body| (resource_type.to_string(), body)),
                _ => None,
            };
            match stored {
                Some((resource_type, body))
                    if concord_access::category::is_patient_entered(&body) =>
                {
                    self.guard_write(ctx, Interaction::Update, &resource_type, &body)?;
                }
                _ => {
                    return refuse(
                        "a patient's Provenance may target only what they entered themselves",
                    );
                }
            }
        }
        Ok(())
    }

    /// The master patient index's own operations. Changing it (merging or unmerging records and
    /// persons, resolving a possible match) is for data stewards and trusted systems; looking
    /// people up in it (`$match`, PIX, `$locate`) also for staff who may look people up.
    pub fn authorize_identity(&self, ctx: &RequestContext, change: bool) -> Result<(), Error> {
        if is_trusted_system(ctx) {
            return Ok(());
        }
        let principal = principal(ctx);
        let basis = if principal.roles.contains(&Role::DataSteward) {
            Some("oversight")
        } else if !change && may_look_up(&principal) {
            Some("demographics-lookup")
        } else {
            None
        };
        match basis {
            Some(basis) => {
                ctx.note.update(|n| n.basis = Some(basis.into()));
                Ok(())
            }
            None => {
                let message = if change {
                    "only data stewards may change the master patient index"
                } else {
                    "your role may not search the master patient index"
                };
                ctx.note.update(|n| n.denied = Some(message.into()));
                Err(Error::new(ErrorKind::Forbidden, message))
            }
        }
    }

    /// The master patient index's worklist (its possible-match Tasks, which name records and
    /// persons rather than belong to one) is for data stewards and trusted systems only.
    pub fn authorize_worklist(&self, ctx: &RequestContext) -> Result<(), Error> {
        if is_trusted_system(ctx) {
            return Ok(());
        }
        if principal(ctx).roles.contains(&Role::DataSteward) {
            ctx.note.update(|n| n.basis = Some("oversight".into()));
            return Ok(());
        }
        let message = "only data stewards may see the master patient index's worklist";
        ctx.note.update(|n| n.denied = Some(message.into()));
        Err(Error::new(ErrorKind::Forbidden, message))
    }

    /// HL7 v2 feeds come from source systems only: a system caller whose scopes let it create
    /// records. (MLLP peers are systems by construction; `POST /hl7v2` checks here.)
    pub fn authorize_feed(&self, ctx: &RequestContext) -> Result<(), Error> {
        if let Actor::System { scopes, .. } = &ctx.actor
            && concord_access::scopes_permit(scopes, "Patient", Interaction::Create)
                .contains(&concord_access::ScopeContext::System)
        {
            return Ok(());
        }
        let message = "HL7 v2 feeds are accepted only from source systems (a system token that may create records)";
        ctx.note.update(|n| n.denied = Some(message.into()));
        Err(Error::new(ErrorKind::Forbidden, message))
    }

    /// Marks what a patient or proxy writes as patient-entered (`meta.tag`), so clinicians see
    /// it as entered by the patient, not by a clinician.
    pub(crate) fn tag_patient_entered(&self, ctx: &RequestContext, resource: &mut Value) {
        let Actor::User { roles, .. } = &ctx.actor else {
            return;
        };
        if !roles.iter().any(|r| r == "patient" || r == "proxy") {
            return;
        }
        if concord_access::category::is_patient_entered(resource) {
            return;
        }
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let meta = object
            .entry("meta")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            let tags = meta
                .entry("tag")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(tags) = tags.as_array_mut() {
                tags.push(concord_access::category::patient_entered_tag());
            }
        }
    }

    /// Decides changing or deleting what is stored now under `resource_type/id`, if anything.
    pub(crate) fn guard_existing(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        id: &str,
    ) -> Result<(), Error> {
        if is_trusted_system(ctx) {
            return Ok(());
        }
        if let Some(current) = self.store.read(&ctx.internal(), resource_type, id)?
            && let Some(body) = current.body.as_deref()
        {
            let resource: Value = serde_json::from_str(body).map_err(|_| Error::internal())?;
            self.guard_write(ctx, interaction, resource_type, &resource)?;
        }
        Ok(())
    }

    /// Applies a grant's mask to a resource this node holds itself.
    pub(crate) fn mask_local(
        &self,
        grant: &Grant,
        resource_type: &str,
        resource: &Value,
    ) -> Verdict {
        if grant.filter.is_everything() || resource_type == "Patient" {
            return Verdict::Keep;
        }
        let (org, kind) = self.local_source(resource);
        concord_access::mask(&grant.filter, resource, org.as_deref(), kind.as_deref())
    }

    /// Where a resource this node holds came from: an announced copy names its source; anything
    /// else is this node's organisation's own.
    fn local_source(&self, resource: &Value) -> (Option<String>, Option<String>) {
        if let Some(federation) = self.federation.as_deref() {
            for (system, _) in crate::identity::locator::identifiers(resource) {
                if let Some(source) = system.strip_prefix(SOURCE_RECORD_SYSTEM)
                    && let Some(info) = federation.info(source)
                {
                    return (info.ods_code.clone(), Some(info.kind.as_str().to_string()));
                }
            }
        }
        (self.config.access.organization.clone(), None)
    }

    /// Filters stored versions a search or history found: each is decided for its own person
    /// (the same person is decided once), and whatever is denied or masked is left out. Returns
    /// how many were left out.
    pub(crate) fn filter_versions(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        versions: &mut Vec<StoredVersion>,
        snapshot: Option<i64>,
    ) -> usize {
        if is_trusted_system(ctx) {
            return 0;
        }
        let mut grants: HashMap<String, Option<Grant>> = HashMap::new();
        // One position for the page (the search's own snapshot when the caller has it): each
        // person's facts may then come from the cache without a trip to the store each (the
        // facts read later are never older than this position).
        let seq = snapshot.or_else(|| self.store.last_seq(&ctx.internal()).ok());
        let before = versions.len();
        versions.retain(|version| {
            // A deletion carries no content to decide on, only that something existed.
            let Some(body) = version.body.as_deref() else {
                return false;
            };
            // What the decision reads; the mask reads the whole only for withheld codes.
            let Ok(resource) = crate::decision_view::decision_view(&version.resource_type, body)
            else {
                return false;
            };
            if is_worklist_task(&version.resource_type, &resource) {
                return self.authorize_worklist(ctx).is_ok();
            }
            let patients = patients_of(&version.resource_type, &resource);
            if patients.is_empty() {
                // Not about anyone: a directory resource is permitted, patient data with no
                // patient reference is not.
                return self
                    .authorize_at(ctx, &version.resource_type, interaction, None, seq)
                    .is_ok();
            }
            patients.iter().all(|patient| {
                let lookup = matches!(version.resource_type.as_str(), "Patient" | "Person");
                let grant = grants
                    .entry(format!("{patient}|{lookup}"))
                    .or_insert_with(|| {
                        if lookup {
                            // The part already parsed decides; the whole only if the mask needs it.
                            self.authorize_lookup_view(
                                ctx,
                                interaction,
                                &version.resource_type,
                                &resource,
                                seq,
                                &|| whole_of(body),
                            )
                            .ok()
                            .map(|(g, _)| g)
                        } else {
                            self.authorize_at(
                                ctx,
                                &version.resource_type,
                                interaction,
                                Some(patient),
                                seq,
                            )
                            .ok()
                        }
                    })
                    .clone();
                grant.is_some_and(|g| {
                    let verdict = if concord_access::reads_whole_resource(&g.filter) {
                        serde_json::from_str::<Value>(body).map_or(Verdict::Withhold, |whole| {
                            self.mask_local(&g, &version.resource_type, &whole)
                        })
                    } else {
                        self.mask_local(&g, &version.resource_type, &resource)
                    };
                    verdict == Verdict::Keep
                })
            })
        });
        before - versions.len()
    }

    /// The facts the decision needs about the person a hub Patient id belongs to.
    fn person_facts(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        principal: &Principal,
        seq: Option<i64>,
    ) -> Result<PersonFacts, Error> {
        let internal = ctx.internal();
        // Read before the facts, so an entry is never older than its key says.
        let seq = match seq {
            Some(seq) => seq,
            None => self.store.last_seq(&internal)?,
        };
        let person = self.person_of(patient_id);
        let person_key = person.clone().unwrap_or_else(|| patient_id.to_string());
        let key = (patient_id.to_string(), person_key.clone());
        let stored = match self.facts_cache.get(&key, seq) {
            Some(stored) => stored,
            None => {
                let stored =
                    Arc::new(self.stored_facts(&internal, patient_id, person.as_deref())?);
                self.facts_cache.put(key, seq, stored.clone());
                stored
            }
        };
        let now = self.clock.now_ms();
        let break_glass = self
            .grants
            .by_user
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(principal.subject.clone(), person_key))
            .filter(|g| g.is_active(now))
            .cloned();
        Ok(PersonFacts {
            patient_ids: stored.patient_ids.clone(),
            relationships: stored.relationships.clone(),
            consent: stored.consent.clone(),
            break_glass,
        })
    }

    /// The store's part of [`Hub::person_facts`]: every record of the person, the organisations
    /// holding them, and their consent.
    fn stored_facts(
        &self,
        internal: &RequestContext,
        patient_id: &str,
        person: Option<&str>,
    ) -> Result<StoredFacts, Error> {
        let locations = match person {
            Some(person) => self.locate(internal, person).unwrap_or_default(),
            None => Vec::new(),
        };
        let mut patient_ids: BTreeSet<String> =
            locations.iter().map(|l| l.patient.clone()).collect();
        patient_ids.insert(patient_id.to_string());
        let mut relationships = Vec::new();
        let mut announced = BTreeSet::new();
        for location in &locations {
            for (system, _) in &location.identifiers {
                if let Some(source) = system.strip_prefix(SOURCE_RECORD_SYSTEM) {
                    announced.insert(location.patient.clone());
                    if let Some(ods) = self
                        .federation
                        .as_deref()
                        .and_then(|f| f.info(source))
                        .and_then(|info| info.ods_code.clone())
                    {
                        relationships.push(RelationshipFact {
                            organization: ods,
                            evidence: Evidence::HoldsRecord,
                            at_ms: None,
                        });
                    }
                }
            }
            if let Some(org) = &location.organization
                && !org.contains('/')
            {
                relationships.push(RelationshipFact {
                    organization: org.clone(),
                    evidence: Evidence::HoldsRecord,
                    at_ms: None,
                });
            }
        }
        // A record this node holds itself (not an announced copy) is its organisation's.
        if let Some(org) = &self.config.access.organization
            && patient_ids.iter().any(|id| !announced.contains(id))
        {
            relationships.push(RelationshipFact {
                organization: org.clone(),
                evidence: Evidence::HoldsRecord,
                at_ms: None,
            });
        }
        let consent = self.consent_policy(internal, &patient_ids)?;
        Ok(StoredFacts {
            patient_ids: patient_ids.into_iter().collect(),
            relationships,
            consent,
        })
    }

    /// The person's sharing choices, from the Consent resources this hub keeps for any of their
    /// records.
    fn consent_policy(
        &self,
        ctx: &RequestContext,
        patient_ids: &BTreeSet<String>,
    ) -> Result<ConsentPolicy, Error> {
        let references: Vec<String> = patient_ids
            .iter()
            .map(|id| format!("Patient/{id}"))
            .collect();
        let params = vec![
            ("patient".to_string(), references.join(",")),
            ("_count".to_string(), "100".to_string()),
        ];
        let parsed = concord_search::parse::parse_search(Some("Consent"), &params)?;
        let page = self.store.search(ctx, &parsed.query)?;
        let consents: Vec<Value> = page
            .matches
            .iter()
            .filter_map(|v| v.body.as_deref())
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect();
        let (policy, issues) = ConsentPolicy::from_consents(&consents, self.clock.now_ms());
        for issue in issues {
            // The issue names a Consent element, never a value.
            tracing::warn!(request_id = %ctx.request_id, issue = %issue, "a Consent resource could not be read fully");
        }
        Ok(policy)
    }

    /// `POST [base]/Patient/[id]/$break-glass`: opens a person's record to a user with no
    /// legitimate relationship, for a reason from the list and the user's own words, for a
    /// limited time. The grant is noted for the audit record (which privacy officers review) and
    /// raised as an alert.
    pub fn break_glass(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        reason: &str,
        text: &str,
    ) -> Result<BreakGlass, Error> {
        let Actor::User {
            id, organization, ..
        } = &ctx.actor
        else {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "break-glass is for people; system callers have their own scopes",
            ));
        };
        let reason = BreakGlassReason::parse(reason).ok_or_else(|| {
            let known: Vec<&str> = BreakGlassReason::REASONS.iter().map(|r| r.code()).collect();
            Error::invalid(format!(
                "reason: not a break-glass reason; use one of {}",
                known.join(", ")
            ))
            .at("Parameters.parameter[reason]")
        })?;
        self.read(&ctx.internal(), "Patient", patient_id)?;
        let principal = principal(ctx);
        if !principal.roles.iter().any(|r| r.may_break_glass()) {
            ctx.note
                .update(|n| n.denied = Some("role may not break glass".into()));
            return Err(Error::new(
                ErrorKind::Forbidden,
                "your role may not break glass; ask a clinician caring for this person",
            ));
        }
        let person = self
            .person_of(patient_id)
            .unwrap_or_else(|| patient_id.to_string());
        let now = self.clock.now_ms();
        let grant = BreakGlass::request(
            id,
            organization.as_deref(),
            &person,
            reason,
            text,
            now,
            self.config.access.break_glass_ms,
        )
        .map_err(|problem| Error::invalid(problem).at("Parameters.parameter[text]"))?;
        ctx.note.update(|n| {
            n.patients.insert(patient_id.to_string());
            n.basis = Some("break-glass".into());
            n.break_glass = Some((grant.reason.code().to_string(), grant.text.clone()));
        });
        // The alert names the user and organisation, never the person (logs carry no patient data).
        tracing::warn!(
            target: "concord::alert",
            request_id = %ctx.request_id,
            user = %id,
            organization = organization.as_deref().unwrap_or("-"),
            reason = grant.reason.code(),
            "break-glass: a user opened a record without a legitimate relationship"
        );
        metrics::counter!("concord_break_glass_total").increment(1);
        self.grants
            .by_user
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((id.clone(), person), grant.clone());
        Ok(grant)
    }
}
