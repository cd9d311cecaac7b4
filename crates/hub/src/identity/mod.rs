//! Identity at the hub: the master patient index kept current as Patients arrive, golden persons,
//! the steward's worklist and the record locator.
//!
//! Owns the in-memory [`MatchIndex`] and the record-to-person map, loading them from the store at
//! start, and linking every Patient version the hub commits (from a FHIR write, a transaction, an
//! identity feed) to one golden person: automatic links, new persons, and possible matches that
//! become worklist Tasks. Every decision is stored as FHIR: the golden person as a tagged
//! `Person`, the decision with its evidence and author as a `Provenance`. The operations live in
//! the submodules, one per operation. Does not score records (the `concord-mpi` crate does) or
//! decide access.

pub mod locator;
pub mod r#match;
pub mod merge;
pub mod nhs;
pub mod pix;
pub mod worklist;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use concord_fhir::primitive::format_instant;
use concord_fhir::{Error, RequestContext};
use concord_mpi::persons::disagreements;
use concord_mpi::{
    Assurance, Comparison, Decision, Demographics, GoldenPerson, MatchConfig, MatchIndex, Model,
};
use concord_store::{Method, StoreTx, StoredVersion};
use serde_json::{Value, json};

use crate::Hub;
pub use nhs::InvalidNhsNumber;

/// Code system of the MPI's decisions (Provenance.activity) and worklist tasks (Task.code).
pub const MPI_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/mpi";
/// The extension on a Provenance that carries the match evidence.
pub const EVIDENCE_EXTENSION: &str =
    "https://concord.health/fhir/StructureDefinition/match-evidence";
/// The Task code of a possible match waiting for a data steward.
pub const POSSIBLE_MATCH: &str = "possible-match";

/// Identity settings of the hub.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub invalid_nhs_number: InvalidNhsNumber,
    pub matching: MatchConfig,
    /// How many candidates a new record is scored against.
    pub candidates: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            invalid_nhs_number: InvalidNhsNumber::Reject,
            matching: MatchConfig::default(),
            candidates: 10,
        }
    }
}

/// The index and the links, behind one lock: linking is a read-decide-write that must not
/// interleave with another linking of the same person.
pub(crate) struct Identity {
    state: Mutex<State>,
    /// Records waiting to be linked, combined into one unit of work by whoever links next.
    queue: Mutex<Vec<(Vec<String>, Arc<LinkRequest>)>>,
    /// The links as last committed, for readers that only ask which person a record belongs to
    /// (every access decision does). Linking holds `state` across its commit; a read must not
    /// wait for that, nor see a link the commit may still roll back, so the links a unit of work
    /// changed are copied here when its lock is released (see [`StateGuard`]).
    published: RwLock<HashMap<String, String>>,
}

pub(crate) struct State {
    pub(crate) index: MatchIndex,
    /// Source record (Patient id at the hub) to golden person id.
    pub(crate) person_of: Links,
    /// (record, person) pairs a data steward decided are not the same person.
    pub(crate) kept_apart: HashSet<(String, String)>,
}

/// The record-to-person map under the lock, remembering which records changed since the lock was
/// taken so only those are published.
#[derive(Default)]
pub(crate) struct Links {
    map: HashMap<String, String>,
    changed: Vec<String>,
}

impl Links {
    pub(crate) fn get(&self, record: &str) -> Option<&String> {
        self.map.get(record)
    }

    pub(crate) fn contains_key(&self, record: &str) -> bool {
        self.map.contains_key(record)
    }

    pub(crate) fn insert(&mut self, record: String, person: String) -> Option<String> {
        self.changed.push(record.clone());
        self.map.insert(record, person)
    }

    pub(crate) fn remove(&mut self, record: &str) -> Option<String> {
        self.changed.push(record.to_string());
        self.map.remove(record)
    }
}

/// The identity lock. Dropping it publishes the links changed under it: by then the unit of work
/// that changed them has committed, or been rolled back and its changes undone in memory.
pub(crate) struct StateGuard<'a> {
    state: MutexGuard<'a, State>,
    published: &'a RwLock<HashMap<String, String>>,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        let links = &mut self.state.person_of;
        if links.changed.is_empty() {
            return;
        }
        let mut published = self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for record in links.changed.drain(..) {
            match links.map.get(&record) {
                Some(person) => published.insert(record, person.clone()),
                None => published.remove(&record),
            };
        }
    }
}

impl Identity {
    pub(crate) fn new(config: &IdentityConfig) -> Self {
        Self {
            state: Mutex::new(State {
                index: MatchIndex::new(Model::default_uk(), config.matching.clone()),
                person_of: Links::default(),
                kept_apart: HashSet::new(),
            }),
            queue: Mutex::new(Vec::new()),
            published: RwLock::new(HashMap::new()),
        }
    }

    /// Waits for the identity lock. Never call this inside a store unit of work: a write that
    /// linked its Patients in its own unit ([`Hub::link_in_unit`]) holds this lock until its
    /// batch commits, and the batch may be waiting for that unit. Take this lock first, then
    /// the writer, as [`Hub::link_records`] and the steward's operations do.
    pub(crate) fn lock(&self) -> StateGuard<'_> {
        // A poisoned lock is still usable. A panic while linking rolls the store back but may
        // leave its link in memory until the next start reloads the links from the store.
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        StateGuard {
            state,
            published: &self.published,
        }
    }

    /// The lock if no one holds it now; see [`Hub::link_in_unit`] for why it must not wait.
    fn try_lock(&self) -> Option<StateGuard<'_>> {
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(StateGuard {
            state,
            published: &self.published,
        })
    }

    /// The golden person a record is linked to, as last committed. Never waits for linking.
    pub(crate) fn person_of(&self, record: &str) -> Option<String> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(record)
            .cloned()
    }
}

/// A record's link and index entry before a unit of work linked it.
struct Before {
    id: String,
    person: Option<String>,
    demographics: Option<Demographics>,
}

/// Records linked inside a unit of work that has yet to commit: the identity lock, held so that
/// no one links against decisions that may be rolled back, and what to restore if they are.
pub(crate) struct LinkedInUnit<'a> {
    state: StateGuard<'a>,
    before: Vec<Before>,
}

impl LinkedInUnit<'_> {
    /// The unit of work did not commit: the records' links and index entries are put back as
    /// they were (their golden persons and Provenance were rolled back with the unit).
    pub(crate) fn undo(mut self) {
        self.restore();
    }

    fn restore(&mut self) {
        for before in self.before.drain(..) {
            match before.person {
                Some(person) => self.state.person_of.insert(before.id.clone(), person),
                None => self.state.person_of.remove(&before.id),
            };
            match before.demographics {
                Some(demographics) => self.state.index.insert(&before.id, demographics),
                None => {
                    self.state.index.remove(&before.id);
                }
            }
        }
    }
}

/// Who made an automatic decision, as Provenance records it.
const AUTOMATIC: &str = "Concord master patient index (automatic)";

impl Hub {
    /// Loads golden persons, steward decisions and every current Patient into the index.
    pub(crate) fn load_identity(&self, ctx: &RequestContext) -> Result<(), Error> {
        let mut state = self.identity.lock();
        self.scan(ctx, "Person", |person| {
            if let Some(golden) = GoldenPerson::from_fhir(&person) {
                for record in golden.records() {
                    state
                        .person_of
                        .insert(record.to_string(), golden.id.clone());
                }
            }
        })?;
        self.scan(ctx, "Task", |task| {
            if let Some(pair) = worklist::kept_apart_pair(&task) {
                state.kept_apart.insert(pair);
            }
        })?;
        let mut unlinked = Vec::new();
        self.scan(ctx, "Patient", |patient| {
            let Some(id) = patient.get("id").and_then(Value::as_str) else {
                return;
            };
            if is_matchable(&patient) {
                state.index.insert(id, Demographics::from_patient(&patient));
            }
            if !state.person_of.contains_key(id) {
                unlinked.push(id.to_string());
            }
        })?;
        drop(state);
        // A crash between a Patient's commit and its linking leaves it unlinked; finish the job.
        self.link_records(ctx, &unlinked)
    }

    /// Calls `each` with every current resource of a type, read in keyset pages so that a large
    /// store is neither read quadratically nor held in memory at once.
    fn scan(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        mut each: impl FnMut(Value),
    ) -> Result<(), Error> {
        let mut after = 0;
        loop {
            let page = self.store.scan(ctx, resource_type, after, 5000)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            for version in page {
                if let Some(body) = version
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok())
                {
                    each(body);
                }
            }
        }
    }

    /// Links each committed Patient to a golden person. Called after the unit of work that wrote
    /// them has committed, so a failure here never loses the write: the record stays unlinked
    /// until the next start links it.
    ///
    /// Linking holds the index lock until its unit of work has committed, so callers that arrive
    /// meanwhile are combined: they queue their records, and whoever takes the lock next links
    /// every queued record in one unit of work (one commit) and hands each caller its outcome. If
    /// that shared unit fails, each record is linked again in a unit of its own, so one record
    /// that cannot be linked never leaves the others unlinked.
    pub(crate) fn link_records(
        &self,
        ctx: &RequestContext,
        patients: &[String],
    ) -> Result<(), Error> {
        let request = Arc::new(LinkRequest::default());
        self.identity
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((patients.to_vec(), Arc::clone(&request)));
        let mut state = self.identity.lock();
        if let Some(outcome) = request.take() {
            // Another caller linked these records while this one waited for the lock.
            return outcome;
        }
        let queued: Vec<(Vec<String>, Arc<LinkRequest>)> = std::mem::take(
            &mut *self
                .identity
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let ids: Vec<String> = queued.iter().flat_map(|(ids, _)| ids.clone()).collect();
        let before: Vec<(String, Option<String>)> = ids
            .iter()
            .map(|id| (id.clone(), state.person_of.get(id).cloned()))
            .collect();
        let together = self.in_raw_unit(ctx, |tx| {
            for id in &ids {
                self.link_in(ctx, tx, &mut state, id)?;
            }
            Ok(())
        });
        if together.is_ok() {
            for (_, request) in &queued {
                request.set(Ok(()));
            }
            return Ok(());
        }
        // The shared unit was rolled back: undo its decisions in memory, then one by one.
        for (id, person) in before {
            match person {
                Some(person) => state.person_of.insert(id, person),
                None => state.person_of.remove(&id),
            };
        }
        for (ids, request) in &queued {
            let mut first_error = None;
            for id in ids {
                if let Err(error) = self.link_record(ctx, &mut state, id) {
                    tracing::warn!(request_id = %ctx.request_id, error = %error, "linking a patient record failed; it is retried at the next start");
                    first_error.get_or_insert(error);
                }
            }
            request.set(first_error.map_or(Ok(()), Err));
        }
        request.take().unwrap_or_else(|| Err(Error::internal()))
    }

    /// Links the Patients a unit of work wrote inside that same unit, saving the unit of work
    /// of their own that [`Hub::link_records`] needs after the commit (in HTTP import, a second
    /// wait for the writer and a second commit per transaction Bundle).
    ///
    /// Only when the identity lock is free at this moment: the caller holds the writer, and
    /// waiting for the identity lock here would wait in the opposite order from
    /// [`Hub::link_records`] (identity, then writer). Linking runs in a nested savepoint, so a
    /// failure to link never fails the write. Returns `None` when the records are still to be
    /// linked after the commit (the lock was busy, the store cannot nest, or linking failed and
    /// was undone); otherwise the lock, which the caller holds until the unit has committed,
    /// and [`LinkedInUnit::undo`] for a unit that did not.
    pub(crate) fn link_in_unit(
        &self,
        ctx: &RequestContext,
        tx: &mut dyn StoreTx,
        patients: &[String],
    ) -> Option<LinkedInUnit<'_>> {
        let mut state = self.identity.try_lock()?;
        let before: Vec<Before> = patients
            .iter()
            .map(|id| Before {
                id: id.clone(),
                person: state.person_of.get(id).cloned(),
                demographics: state.index.get(id).cloned(),
            })
            .collect();
        let linked = tx.attempt(&mut |tx| {
            for id in patients {
                self.link_in(ctx, tx, &mut state, id)?;
            }
            Ok(())
        });
        let mut linked_in_unit = LinkedInUnit { state, before };
        match linked {
            Ok(()) => Some(linked_in_unit),
            Err(error) => {
                tracing::debug!(request_id = %ctx.request_id, error = %error, "linking inside the unit of work failed; linking after the commit");
                linked_in_unit.restore();
                None
            }
        }
    }

    fn link_record(&self, ctx: &RequestContext, state: &mut State, id: &str) -> Result<(), Error> {
        let result = self.in_raw_unit(ctx, |tx| self.link_in(ctx, tx, state, id));
        if result.is_err() {
            state.person_of.remove(id);
        }
        result
    }

    /// Links one record inside a unit of work (the index lock held by the caller).
    fn link_in(
        &self,
        ctx: &RequestContext,
        tx: &mut dyn StoreTx,
        state: &mut State,
        id: &str,
    ) -> Result<(), Error> {
        let current = tx.read("Patient", id)?;
        let body: Option<Value> = current
            .as_ref()
            .and_then(|v| v.body.as_deref())
            .and_then(|b| serde_json::from_str(b).ok());
        let Some(body) = body else {
            // Deleted: the record leaves the index and its person.
            state.index.remove(id);
            if let Some(person) = state.person_of.remove(id) {
                let mut golden = read_person(tx, &person)?;
                golden.unlink(id);
                save_person(self, tx, state, &mut golden)?;
            }
            return Ok(());
        };
        let demographics = Demographics::from_patient(&body);
        if is_matchable(&body) {
            state.index.insert(id, demographics.clone());
        } else {
            state.index.remove(id);
        }
        if let Some(person) = state.person_of.get(id).cloned() {
            // Already linked: refresh the person's shown demographics and conflict flag.
            let mut golden = read_person(tx, &person)?;
            save_person(self, tx, state, &mut golden)?;
            return Ok(());
        }
        let candidates = best_per_person(state, id, &demographics, self.config.identity.candidates);
        let matching = state.index.config().clone();
        let best = candidates.first();
        let decision = best.map_or(Decision::New, |(_, c)| matching.decide(c));
        let mut golden = match (decision, best) {
            (Decision::Link, Some((person, _))) => read_person(tx, person)?,
            _ => GoldenPerson::new(Hub::new_id()),
        };
        let assurance = match (decision, best) {
            (Decision::Link, Some((_, c))) => assurance_of(c),
            _ => Assurance::Level4,
        };
        golden.link(id, assurance);
        state.person_of.insert(id.to_string(), golden.id.clone());
        let version = save_person(self, tx, state, &mut golden)?;
        let (activity, comparison) = match (decision, best) {
            (Decision::Link, Some((_, c))) => ("link", Some(c)),
            _ => ("new-person", None),
        };
        record_decision(
            self,
            tx,
            ctx,
            &version,
            activity,
            &[id],
            comparison,
            AUTOMATIC,
            None,
        )?;
        if decision == Decision::Review {
            for (person, comparison) in candidates
                .iter()
                .filter(|(_, c)| matching.decide(c) != Decision::New)
            {
                worklist::open_task(self, tx, id, person, comparison)?;
            }
        }
        Ok(())
    }
}

/// One caller's records waiting to be linked, and the outcome once they are.
#[derive(Default)]
pub(crate) struct LinkRequest(Mutex<Option<Result<(), Error>>>);

impl LinkRequest {
    fn set(&self, outcome: Result<(), Error>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
    }

    fn take(&self) -> Option<Result<(), Error>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// Inactive records and records merged into another (`Patient.link` replaced-by) are kept for
/// history but are no longer candidates.
fn is_matchable(patient: &Value) -> bool {
    let active = patient
        .get("active")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let replaced = patient
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|l| l.get("type").and_then(Value::as_str) == Some("replaced-by"));
    active && !replaced
}

/// The best comparison per golden person, best first, leaving out the record itself and
/// persons a steward kept apart from it.
pub(crate) fn best_per_person(
    state: &State,
    id: &str,
    probe: &Demographics,
    limit: usize,
) -> Vec<(String, Comparison)> {
    let mut best: Vec<(String, Comparison)> = Vec::new();
    for candidate in state.index.find(probe, limit + 1, false) {
        if candidate.key == id {
            continue;
        }
        let Some(person) = state.person_of.get(&candidate.key) else {
            continue;
        };
        if state.kept_apart.contains(&(id.to_string(), person.clone())) {
            continue;
        }
        if best.iter().any(|(p, _)| p == person) {
            continue;
        }
        best.push((person.clone(), candidate.comparison));
    }
    best.sort_by(|a, b| b.1.weight.total_cmp(&a.1.weight));
    best
}

/// Level 4 when an NHS number agreed, level 3 for a demographic match.
fn assurance_of(comparison: &Comparison) -> Assurance {
    let nhs_agrees = comparison
        .evidence
        .iter()
        .any(|e| e.field == "nhs_number" && e.weight > 0.0);
    if nhs_agrees {
        Assurance::Level4
    } else {
        Assurance::Level3
    }
}

pub(crate) fn read_person(tx: &mut dyn StoreTx, id: &str) -> Result<GoldenPerson, Error> {
    tx.read("Person", id)?
        .and_then(|v| v.body)
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .and_then(|p| GoldenPerson::from_fhir(&p))
        .ok_or_else(|| Error::not_found(format!("Person/{id} is not a golden person of the index")))
}

/// Writes a new version of a golden person, its shown demographics taken from its first linked
/// record and its conflict flag recomputed from all of them.
pub(crate) fn save_person(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    state: &State,
    golden: &mut GoldenPerson,
) -> Result<StoredVersion, Error> {
    let records: Vec<&Demographics> = golden
        .records()
        .filter_map(|r| state.index.get(r))
        .collect();
    golden.conflicts = disagreements(records);
    let shown = match golden.records().next() {
        Some(first) => tx
            .read("Patient", first)?
            .and_then(|v| v.body)
            .and_then(|b| serde_json::from_str::<Value>(&b).ok()),
        None => None,
    };
    let body = golden.to_fhir(shown.as_ref());
    // A record's update that changes nothing the person shows writes no new Person version.
    if let Some(current) = tx.read("Person", &golden.id)?
        && let Some(mut stored) = current
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok())
    {
        let mut without_meta = body.clone();
        for v in [&mut stored, &mut without_meta] {
            if let Some(map) = v.as_object_mut() {
                map.remove("meta");
            }
        }
        if stored == without_meta {
            return Ok(current);
        }
    }
    put(hub, tx, "Person", &golden.id, body)
}

/// Creates or updates a resource the identity service owns, through the same validation and
/// indexing as any write.
pub(crate) fn put(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    id: &str,
    mut body: Value,
) -> Result<StoredVersion, Error> {
    concord_fhir::resource::set_id(&mut body, id);
    let current = tx.read(resource_type, id)?.map_or(0, |v| v.version_id);
    let method = if current == 0 {
        Method::Post
    } else {
        Method::Put
    };
    let version = crate::write::prepare(hub, resource_type, id, body, current + 1, method)?;
    tx.put(version)
}

/// Stores a decision as a Provenance: what changed (usually the person's new version), what it was about
/// (the records), who decided, why, and the match evidence when there was a comparison.
#[allow(
    clippy::too_many_arguments,
    reason = "one flat record of a decision reads better than a builder"
)]
pub(crate) fn record_decision(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    ctx: &RequestContext,
    target: &StoredVersion,
    activity: &str,
    records: &[&str],
    comparison: Option<&Comparison>,
    who: &str,
    reason: Option<&str>,
) -> Result<StoredVersion, Error> {
    let mut provenance = json!({
        "resourceType": "Provenance",
        "meta": {"tag": [{"system": MPI_SYSTEM, "code": "decision", "display": "Decision of the master patient index"}]},
        "target": [{"reference": format!("{}/{}/_history/{}", target.resource_type, target.id, target.version_id)}],
        "recorded": format_instant(hub.clock.now_ms()),
        "activity": {"coding": [{"system": MPI_SYSTEM, "code": activity}]},
        "agent": [{"who": {"display": who}}],
        "entity": records.iter().map(|r| json!({"role": "source", "what": {"reference": format!("Patient/{r}")}})).collect::<Vec<_>>(),
    });
    if who != AUTOMATIC {
        provenance["agent"][0]["who"] = json!({"display": actor_name(ctx)});
    }
    if let Some(reason) = reason {
        provenance["reason"] = json!([{"text": reason}]);
    }
    if let Some(c) = comparison {
        provenance["extension"] = json!([evidence_extension(c)]);
    }
    put(hub, tx, "Provenance", &Hub::new_id(), provenance)
}

/// The match evidence as a complex extension: score, grade, and one entry per field.
pub(crate) fn evidence_extension(c: &Comparison) -> Value {
    let mut parts = vec![
        json!({"url": "score", "valueDecimal": round4(c.probability)}),
        json!({"url": "grade", "valueCode": c.grade.code()}),
    ];
    if c.nhs_conflict {
        parts.push(json!({"url": "nhs-number-conflict", "valueBoolean": true}));
    }
    parts.extend(c.evidence.iter().map(|e| {
        json!({"url": "field", "valueString": format!("{}: {} ({:+.2})", e.field, e.level, e.weight)})
    }));
    json!({"url": EVIDENCE_EXTENSION, "extension": parts})
}

/// Scores shown to people and stored in FHIR are rounded to four places (and JSON numbers
/// must be finite).
pub(crate) fn round4(p: f64) -> serde_json::Number {
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    };
    serde_json::Number::from_f64((p * 10_000.0).round() / 10_000.0).unwrap_or_else(|| 0.into())
}

/// The actor as Provenance names them (no patient data: a user id and organisation).
pub(crate) fn actor_name(ctx: &RequestContext) -> String {
    match &ctx.actor {
        concord_fhir::context::Actor::User {
            id, organization, ..
        } => match organization {
            Some(org) => format!("{id} ({org})"),
            None => id.clone(),
        },
        concord_fhir::context::Actor::System { name, .. } => name.clone(),
    }
}

/// A `valueString` or `valueCode` parameter of an operation's Parameters body.
pub fn param_string(parameters: &Value, name: &str) -> Result<Option<String>, Error> {
    let Some((i, p)) = find_param(parameters, name)? else {
        return Ok(None);
    };
    p.get("valueString")
        .or_else(|| p.get("valueCode"))
        .and_then(Value::as_str)
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| {
            Error::invalid(format!("{name} must be a valueString or valueCode"))
                .at(format!("Parameters.parameter[{i}]"))
        })
}

/// The id in a required `valueReference` parameter that must point at `resource_type`.
pub fn param_reference(
    parameters: &Value,
    name: &str,
    resource_type: &str,
) -> Result<String, Error> {
    let Some((i, p)) = find_param(parameters, name)? else {
        return Err(
            Error::invalid(format!("the parameter {name} is required")).at("Parameters.parameter")
        );
    };
    p.pointer("/valueReference/reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(resource_type)?.strip_prefix('/'))
        .filter(|id| concord_fhir::primitive::is_id(id))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{name} must be a valueReference to {resource_type}/[id]"
            ))
            .at(format!("Parameters.parameter[{i}].valueReference"))
        })
}

fn find_param<'a>(parameters: &'a Value, name: &str) -> Result<Option<(usize, &'a Value)>, Error> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::invalid("the operation takes a Parameters resource").at("resourceType"));
    }
    Ok(parameters
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .find(|(_, p)| p.get("name").and_then(Value::as_str) == Some(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An access decision asks for a record's person while linking may hold the lock across a
    /// commit: it must neither wait nor see a link that commit could still roll back.
    #[test]
    fn links_are_published_when_the_lock_is_released() {
        let identity = Identity::new(&IdentityConfig::default());
        let mut state = identity.lock();
        state.person_of.insert("p1".into(), "person-1".into());
        state.person_of.insert("p2".into(), "person-2".into());
        assert_eq!(identity.person_of("p1"), None);
        drop(state);
        assert_eq!(identity.person_of("p1").as_deref(), Some("person-1"));

        let mut state = identity.lock();
        state.person_of.remove("p1");
        state.person_of.insert("p2".into(), "person-1".into());
        assert_eq!(identity.person_of("p1").as_deref(), Some("person-1"));
        assert_eq!(identity.person_of("p2").as_deref(), Some("person-2"));
        drop(state);
        assert_eq!(identity.person_of("p1"), None);
        assert_eq!(identity.person_of("p2").as_deref(), Some("person-1"));
    }

    /// A unit of work that linked records and then did not commit: the links and index entries
    /// are put back, and readers never saw the rolled-back links.
    #[test]
    fn undoing_links_made_in_a_unit_restores_them() {
        let identity = Identity::new(&IdentityConfig::default());
        let mut state = identity.lock();
        state.person_of.insert("old".into(), "person-1".into());
        drop(state);
        let mut state = identity.lock();
        let before = vec![
            Before {
                id: "old".into(),
                person: state.person_of.get("old").cloned(),
                demographics: state.index.get("old").cloned(),
            },
            Before {
                id: "new".into(),
                person: None,
                demographics: None,
            },
        ];
        let patient = json!({"resourceType": "Patient", "name": [{"family": "Hale", "given": ["Ann"]}], "birthDate": "1950-01-02"});
        state
            .index
            .insert("new", Demographics::from_patient(&patient));
        state.person_of.insert("new".into(), "person-2".into());
        state.person_of.insert("old".into(), "person-2".into());
        LinkedInUnit { state, before }.undo();
        assert_eq!(identity.person_of("old").as_deref(), Some("person-1"));
        assert_eq!(identity.person_of("new"), None);
        assert!(identity.lock().index.get("new").is_none());
    }
}
