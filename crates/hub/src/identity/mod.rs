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
    /// Whether this node keeps a master patient index: links every Patient it stores to a golden
    /// Person. A hub does. An edge whose Patients a hub links (it announces them through the
    /// identity feed) can leave that to the hub: it then writes no Person or Provenance for its
    /// Patients, and its access decisions treat each Patient as a person of its own.
    pub master_index: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            invalid_nhs_number: InvalidNhsNumber::Reject,
            matching: MatchConfig::default(),
            candidates: 10,
            master_index: true,
        }
    }
}

/// The index and the links, behind one lock: linking is a read-decide-write that must not
/// interleave with another linking of the same person.
///
/// Lock order: the store's writer, then this lock. Linking and the steward's operations take it
/// inside a unit of work ([`Identity::lock_in`]), and nothing waits for the writer while holding
/// it. So every unit links its own records, whatever other units share its commit.
pub(crate) struct Identity {
    state: Mutex<State>,
    /// The links as last committed, for readers that only ask which person a record belongs to
    /// (every access decision does). A unit's changes are copied here once it has committed (by
    /// its outcome hook, under the writer, so in commit order): a read never waits for linking,
    /// nor sees a link that could still be rolled back.
    published: RwLock<HashMap<String, String>>,
}

pub(crate) struct State {
    pub(crate) index: Index,
    /// Source record (Patient id at the hub) to golden person id.
    pub(crate) person_of: Links,
    /// (record, person) pairs a data steward decided are not the same person.
    pub(crate) kept_apart: HashSet<(String, String)>,
}

/// One change of a record's link, to publish when its unit commits or undo when it does not.
struct LinkChange {
    record: String,
    before: Option<String>,
    after: Option<String>,
}

/// The record-to-person map under the lock, remembering each change made since the lock was
/// taken.
#[derive(Default)]
pub(crate) struct Links {
    map: HashMap<String, String>,
    changes: Vec<LinkChange>,
}

impl Links {
    pub(crate) fn get(&self, record: &str) -> Option<&String> {
        self.map.get(record)
    }

    pub(crate) fn contains_key(&self, record: &str) -> bool {
        self.map.contains_key(record)
    }

    pub(crate) fn insert(&mut self, record: String, person: String) -> Option<String> {
        let before = self.map.insert(record.clone(), person.clone());
        self.changes.push(LinkChange {
            record,
            before: before.clone(),
            after: Some(person),
        });
        before
    }

    pub(crate) fn remove(&mut self, record: &str) -> Option<String> {
        let before = self.map.remove(record);
        if before.is_some() {
            self.changes.push(LinkChange {
                record: record.to_string(),
                before: before.clone(),
                after: None,
            });
        }
        before
    }

    fn restore(&mut self, change: LinkChange) {
        match change.before {
            Some(person) => self.map.insert(change.record, person),
            None => self.map.remove(&change.record),
        };
    }
}

/// The match index under the lock, remembering each record's entry before it was changed.
/// Reading goes to the [`MatchIndex`] itself.
pub(crate) struct Index {
    index: MatchIndex,
    changes: Vec<(String, Option<Demographics>)>,
    /// Whether changes are remembered: only inside a unit of work, where they may be undone.
    /// Loading a million records at start keeps no copy of each.
    journal: bool,
}

impl std::ops::Deref for Index {
    type Target = MatchIndex;

    fn deref(&self) -> &MatchIndex {
        &self.index
    }
}

impl Index {
    pub(crate) fn insert(&mut self, record: &str, demographics: Demographics) {
        let before = self.journal.then(|| self.index.get(record).cloned());
        self.index.insert(record, demographics);
        if let Some(before) = before {
            self.changes.push((record.to_string(), before));
        }
    }

    pub(crate) fn remove(&mut self, record: &str) -> Option<Demographics> {
        let before = self.index.remove(record);
        if self.journal && before.is_some() {
            self.changes.push((record.to_string(), before.clone()));
        }
        before
    }

    fn restore(&mut self, (record, before): (String, Option<Demographics>)) {
        match before {
            Some(demographics) => self.index.insert(&record, demographics),
            None => {
                self.index.remove(&record);
            }
        }
    }
}

/// A point in the changes made under the lock, to undo back to.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    links: usize,
    index: usize,
}

impl State {
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            links: self.person_of.changes.len(),
            index: self.index.changes.len(),
        }
    }

    /// Undoes the links and index entries changed since `mark`, newest first (the store's
    /// writes were undone by the caller's savepoint).
    pub(crate) fn undo_to(&mut self, mark: Mark) {
        let links: Vec<LinkChange> = self.person_of.changes.drain(mark.links..).collect();
        for change in links.into_iter().rev() {
            self.person_of.restore(change);
        }
        let index: Vec<_> = self.index.changes.drain(mark.index..).collect();
        for change in index.into_iter().rev() {
            self.index.restore(change);
        }
    }
}

/// The changes a unit of work made under the lock, kept for its outcome hook.
#[derive(Default)]
struct Journal {
    links: Vec<LinkChange>,
    index: Vec<(String, Option<Demographics>)>,
}

/// The identity lock. Dropping it hands the changes made under it to the unit of work's outcome
/// hook, which publishes them once the unit has committed or undoes them if it does not. Taken
/// outside a unit (loading at start), the changes are committed state and are published at once.
pub(crate) struct StateGuard<'a> {
    state: MutexGuard<'a, State>,
    identity: &'a Identity,
    journal: Option<Arc<Mutex<Journal>>>,
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
        let links = std::mem::take(&mut self.state.person_of.changes);
        let index = std::mem::take(&mut self.state.index.changes);
        match &self.journal {
            Some(journal) => {
                let mut journal = journal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                journal.links.extend(links);
                journal.index.extend(index);
            }
            None => self.identity.publish(links),
        }
    }
}

impl Identity {
    pub(crate) fn new(config: &IdentityConfig) -> Self {
        Self {
            state: Mutex::new(State {
                index: Index {
                    index: MatchIndex::new(Model::default_uk(), config.matching.clone()),
                    changes: Vec::new(),
                    journal: false,
                },
                person_of: Links::default(),
                kept_apart: HashSet::new(),
            }),
            published: RwLock::new(HashMap::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock is still usable: a panic in a unit of work rolls it back, and its
        // outcome hook undoes its changes here.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The identity lock inside a unit of work of the store, which the caller holds (lock order:
    /// writer, then identity). The changes made under it are published when the unit commits and
    /// undone when it is rolled back, so the units that follow in the same commit link against
    /// them and no reader sees them early. Not reentrant: nothing done while holding it (linking
    /// in a nested attempt, say) may take it again, nor register a hook that would.
    pub(crate) fn lock_in(self: &Arc<Self>, tx: &mut dyn StoreTx) -> StateGuard<'_> {
        let journal = Arc::new(Mutex::new(Journal::default()));
        let identity = Arc::clone(self);
        let kept = Arc::clone(&journal);
        tx.on_outcome(Box::new(move |committed| identity.finish(&kept, committed)));
        let mut state = self.state();
        state.index.journal = true;
        StateGuard {
            state,
            identity: self,
            journal: Some(journal),
        }
    }

    /// The identity lock outside any unit of work, for reading the index, and for loading it at
    /// start from what the store has committed. Never hold it while waiting for the store's
    /// writer.
    pub(crate) fn lock(&self) -> StateGuard<'_> {
        let mut state = self.state();
        state.index.journal = false;
        StateGuard {
            state,
            identity: self,
            journal: None,
        }
    }

    /// A unit of work's outcome: publish its changes, or undo them newest first.
    fn finish(&self, journal: &Mutex<Journal>, committed: bool) {
        let journal = std::mem::take(
            &mut *journal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if committed {
            self.publish(journal.links);
            return;
        }
        let mut state = self.state();
        for change in journal.links.into_iter().rev() {
            state.person_of.restore(change);
        }
        for change in journal.index.into_iter().rev() {
            state.index.restore(change);
        }
    }

    fn publish(&self, links: Vec<LinkChange>) {
        if links.is_empty() {
            return;
        }
        let mut published = self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for change in links {
            match change.after {
                Some(person) => published.insert(change.record, person),
                None => published.remove(&change.record),
            };
        }
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

/// Who made an automatic decision, as Provenance records it.
const AUTOMATIC: &str = "Concord master patient index (automatic)";

impl Hub {
    /// Loads golden persons, steward decisions and every current Patient into the index.
    pub(crate) fn load_identity(&self, ctx: &RequestContext) -> Result<(), Error> {
        if !self.config.identity.master_index {
            return Ok(());
        }
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
        // A record whose linking failed, or that an older version left unlinked by a crash
        // between a commit and its linking, is linked now.
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

    /// Links stored Patients that have no golden person, in a unit of work of their own: those
    /// whose linking failed, and those an older version left unlinked by a crash between a
    /// commit and its linking. A record that cannot be linked is logged and stays unlinked until
    /// the next start.
    pub(crate) fn link_records(
        &self,
        ctx: &RequestContext,
        patients: &[String],
    ) -> Result<(), Error> {
        if patients.is_empty() {
            return Ok(());
        }
        self.in_raw_unit(ctx, |tx| {
            self.link_in_unit(ctx, tx, patients);
            Ok(())
        })
    }

    /// Links the Patients a unit of work wrote, inside that same unit, so a write and its linking
    /// are one commit. Linking runs in a nested savepoint, so a failure to link never fails the
    /// write: when the records cannot be linked together, each is tried alone, and one that still
    /// fails is logged and left unlinked until the next start links it.
    pub(crate) fn link_in_unit(
        &self,
        ctx: &RequestContext,
        tx: &mut dyn StoreTx,
        patients: &[String],
    ) {
        let mut state = self.identity.lock_in(tx);
        let mark = state.mark();
        let together = tx.attempt(&mut |tx| {
            for id in patients {
                self.link_in(ctx, tx, &mut state, id)?;
            }
            Ok(())
        });
        if together.is_ok() {
            return;
        }
        state.undo_to(mark);
        for id in patients {
            let mark = state.mark();
            if let Err(error) = tx.attempt(&mut |tx| self.link_in(ctx, tx, &mut state, id)) {
                state.undo_to(mark);
                tracing::warn!(request_id = %ctx.request_id, error = %error, "linking a patient record failed; it is retried at the next start");
            }
        }
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

    /// Loading at start changes links outside any unit of work: they are committed state, so
    /// they are published when the lock is released, and not before.
    #[test]
    fn links_changed_outside_a_unit_are_published_when_the_lock_is_released() {
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
        assert_eq!(identity.person_of("p2").as_deref(), Some("person-2"));
        drop(state);
        assert_eq!(identity.person_of("p1"), None);
        assert_eq!(identity.person_of("p2").as_deref(), Some("person-1"));
    }

    fn journal_of(identity: &Identity, change: impl FnOnce(&mut State)) -> Mutex<Journal> {
        let journal = Arc::new(Mutex::new(Journal::default()));
        let mut guard = identity.state();
        guard.index.journal = true;
        let mut state = StateGuard {
            state: guard,
            identity,
            journal: Some(Arc::clone(&journal)),
        };
        change(&mut state);
        drop(state);
        Arc::try_unwrap(journal).unwrap_or_else(|_| panic!("the journal is still shared"))
    }

    fn patient(family: &str) -> Demographics {
        Demographics::from_patient(
            &json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Ann"]}], "birthDate": "1950-01-02"}),
        )
    }

    /// Links made inside a unit of work are seen by the next holder of the lock at once (the
    /// units after it in the same commit link against them), but by readers only once the unit
    /// has committed.
    #[test]
    fn links_made_in_a_unit_are_published_when_it_commits() {
        let identity = Identity::new(&IdentityConfig::default());
        let journal = journal_of(&identity, |state| {
            state.person_of.insert("new".into(), "person-1".into());
        });
        assert_eq!(
            identity.lock().person_of.get("new").map(String::as_str),
            Some("person-1")
        );
        assert_eq!(identity.person_of("new"), None);
        identity.finish(&journal, true);
        assert_eq!(identity.person_of("new").as_deref(), Some("person-1"));
    }

    /// Two units of one commit change the same records and the commit fails: undone newest
    /// first, the links and the index are as they were, and readers never saw the changes.
    #[test]
    fn units_rolled_back_together_are_undone_newest_first() {
        let identity = Identity::new(&IdentityConfig::default());
        let mut state = identity.lock();
        state.person_of.insert("old".into(), "person-1".into());
        state.index.insert("old", patient("Hale"));
        drop(state);
        let first = journal_of(&identity, |state| {
            state.person_of.insert("old".into(), "person-2".into());
            state.person_of.insert("new".into(), "person-2".into());
            state.index.insert("new", patient("Hale"));
            state.index.insert("old", patient("Hall"));
        });
        let second = journal_of(&identity, |state| {
            state.person_of.remove("new");
            state.person_of.insert("old".into(), "person-3".into());
            state.index.remove("old");
        });
        // Rollback hooks run in reverse order of registration.
        identity.finish(&second, false);
        identity.finish(&first, false);
        let state = identity.lock();
        assert_eq!(
            state.person_of.get("old").map(String::as_str),
            Some("person-1")
        );
        assert_eq!(state.person_of.get("new"), None);
        assert_eq!(state.index.get("old"), Some(&patient("Hale")));
        assert!(state.index.get("new").is_none());
        drop(state);
        assert_eq!(identity.person_of("old").as_deref(), Some("person-1"));
        assert_eq!(identity.person_of("new"), None);
    }

    /// Linking that failed inside its savepoint is undone back to the mark, and only that: what
    /// the unit did before stays, to be published with it.
    #[test]
    fn undoing_to_a_mark_keeps_the_earlier_changes() {
        let identity = Identity::new(&IdentityConfig::default());
        let journal = journal_of(&identity, |state| {
            state.person_of.insert("a".into(), "person-1".into());
            let mark = state.mark();
            state.person_of.insert("b".into(), "person-2".into());
            state.person_of.insert("a".into(), "person-2".into());
            state.index.insert("b", patient("Hale"));
            state.undo_to(mark);
        });
        identity.finish(&journal, true);
        assert_eq!(identity.person_of("a").as_deref(), Some("person-1"));
        assert_eq!(identity.person_of("b"), None);
        assert!(identity.lock().index.get("b").is_none());
    }
}
