//! Writes: create, update (also as create), conditional create/update/delete, JSON Patch and
//! delete (<https://hl7.org/fhir/R4/http.html#create>, `#update`, `#patch`, `#delete`, `#ccreate`,
//! `#cond-update`, `#3.1.0.7.1`).
//!
//! Owns: assigning ids and `meta`, validating every version before it is stored, extracting its
//! index entries, and the version rules (`If-Match`, lost-update conflicts). The `tx_*` functions
//! work inside a store unit of work so transactions reuse them.

use concord_access::Interaction;
use concord_fhir::primitive::format_instant;
use concord_fhir::resource::{is_resource_type, set_id, set_meta_version};
use concord_fhir::validate::validate_resource;
use concord_fhir::{Error, ErrorKind, Issue, IssueType, RequestContext};
use concord_search::extract::{Params, index_entries, index_entries_of};
use concord_search::index::IndexEntry;
use concord_search::query::SearchQuery;
use concord_store::{Method, NewVersion, StoreTx, StoredVersion};
use serde_json::Value;

use crate::Hub;

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    pub version: StoredVersion,
    /// True when a new resource came into being (201), false for a new version of one (200).
    pub created: bool,
    /// True when a conditional create found the resource already there and wrote nothing.
    pub existing: bool,
}

/// Fails unless `resource_type` is an R4 resource type (used for URL path segments).
pub fn ensure_type(resource_type: &str) -> Result<(), Error> {
    if is_resource_type(resource_type) {
        Ok(())
    } else {
        Err(Error::not_found(format!(
            "'{resource_type}' is not a FHIR R4 resource type"
        )))
    }
}

impl Hub {
    /// Runs `work` as one store unit of work and returns what it produced, then links the
    /// Patients it wrote to golden persons (see [`Hub::write_linked`]).
    pub(crate) fn in_unit<T>(
        &self,
        ctx: &RequestContext,
        work: impl FnOnce(&mut dyn StoreTx) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut work = Some(work);
        let mut result = None;
        self.write_linked(ctx, &mut |tx| {
            let work = work.take().ok_or_else(Error::internal)?;
            result = Some(work(tx)?);
            Ok(())
        })?;
        result.ok_or_else(Error::internal)
    }

    /// Like [`Hub::in_unit`] without linking: for the identity service's own writes, which take
    /// the identity lock inside the unit ([`crate::identity::Identity::lock_in`]).
    pub(crate) fn in_raw_unit<T>(
        &self,
        ctx: &RequestContext,
        work: impl FnOnce(&mut dyn StoreTx) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut work = Some(work);
        let mut result = None;
        self.store.write(ctx, &mut |tx| {
            let work = work.take().ok_or_else(Error::internal)?;
            result = Some(work(tx)?);
            Ok(())
        })?;
        result.ok_or_else(Error::internal)
    }

    /// Runs one store unit of work and links every Patient it wrote to a golden person in the
    /// same unit ([`Hub::link_in_unit`]), so a write and its linking are one commit. A linking
    /// failure never fails the write: the record is linked at the next start. A node that keeps
    /// no master patient index (`IdentityConfig::master_index`) links nothing.
    pub(crate) fn write_linked(
        &self,
        ctx: &RequestContext,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.write_linked_as(ctx, false, work)
    }

    /// [`Hub::write_linked`] for work that can run again from the start
    /// ([`concord_store::ResourceStore::write_repeatable`]); linking can, since a unit's linking
    /// is undone with it.
    pub(crate) fn write_linked_repeatable(
        &self,
        ctx: &RequestContext,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.write_linked_as(ctx, true, work)
    }

    fn write_linked_as(
        &self,
        ctx: &RequestContext,
        repeatable: bool,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let write = |work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>| {
            if repeatable {
                self.store.write_repeatable(ctx, work)
            } else {
                self.store.write(ctx, work)
            }
        };
        if !self.config.identity.master_index {
            return write(work);
        }
        let mut patients = Vec::new();
        write(&mut |tx| {
            patients.clear();
            work(&mut Recording {
                inner: &mut *tx,
                patients: &mut patients,
            })?;
            if !patients.is_empty() {
                self.link_in_unit(ctx, tx, &patients);
            }
            Ok(())
        })
    }

    /// `POST [base]/[type]`, with `If-None-Exist` for conditional create.
    pub fn create(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        mut body: Value,
        if_none_exist: Option<&str>,
    ) -> Result<WriteOutcome, Error> {
        ensure_type(resource_type)?;
        self.guard_write(ctx, Interaction::Create, resource_type, &body)?;
        self.tag_patient_entered(ctx, &mut body);
        self.in_unit(ctx, |tx| {
            if let Some(condition) = if_none_exist {
                match conditional_matches(tx, resource_type, condition)?.as_slice() {
                    [] => {}
                    [one] => {
                        return Ok(WriteOutcome {
                            version: one.clone(),
                            created: false,
                            existing: true,
                        });
                    }
                    _ => return Err(multiple_matches("If-None-Exist")),
                }
            }
            let version = tx_create(self, tx, resource_type, body, Hub::new_id(), Method::Post)?;
            Ok(WriteOutcome {
                version,
                created: true,
                existing: false,
            })
        })
    }

    /// `PUT [base]/[type]/[id]`: update, or create with the client's id when it does not exist.
    pub fn update(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        mut body: Value,
        if_match: Option<u64>,
    ) -> Result<WriteOutcome, Error> {
        ensure_type(resource_type)?;
        self.guard_existing(ctx, Interaction::Update, resource_type, id)?;
        self.guard_write(ctx, Interaction::Update, resource_type, &body)?;
        self.tag_patient_entered(ctx, &mut body);
        self.in_unit(ctx, |tx| {
            tx_update(self, tx, resource_type, id, body, if_match, Method::Put)
        })
    }

    /// `PUT [base]/[type]?[search]`: conditional update.
    pub fn conditional_update(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        condition: &str,
        body: Value,
        if_match: Option<u64>,
    ) -> Result<WriteOutcome, Error> {
        ensure_type(resource_type)?;
        self.guard_conditional(ctx, Interaction::Update, resource_type, condition)?;
        self.guard_write(ctx, Interaction::Update, resource_type, &body)?;
        self.in_unit(ctx, |tx| {
            tx_conditional_update(
                self,
                tx,
                resource_type,
                condition,
                body,
                if_match,
                Beforehand::default(),
            )
        })
    }

    /// `PATCH [base]/[type]/[id]` with a JSON Patch document (RFC 6902).
    pub fn patch(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        patch: &Value,
        if_match: Option<u64>,
    ) -> Result<WriteOutcome, Error> {
        ensure_type(resource_type)?;
        // The patch is decided on what it changes; the patched result must be writable too.
        self.guard_existing(ctx, Interaction::Update, resource_type, id)?;
        self.in_unit(ctx, |tx| {
            tx_patch(self, tx, resource_type, id, patch, if_match)
        })
    }

    /// `DELETE [base]/[type]/[id]`. Deleting what does not exist, or is already deleted, succeeds
    /// and writes nothing (`None`), as the specification allows.
    pub fn delete(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<Option<StoredVersion>, Error> {
        ensure_type(resource_type)?;
        self.guard_existing(ctx, Interaction::Delete, resource_type, id)?;
        self.in_unit(ctx, |tx| tx_delete(self, tx, resource_type, id, if_match))
    }

    /// `DELETE [base]/[type]?[search]`: deletes the one match; several matches are an error.
    pub fn conditional_delete(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        condition: &str,
    ) -> Result<Option<StoredVersion>, Error> {
        ensure_type(resource_type)?;
        self.guard_conditional(ctx, Interaction::Delete, resource_type, condition)?;
        self.in_unit(ctx, |tx| {
            tx_conditional_delete(self, tx, resource_type, condition)
        })
    }
}

impl Hub {
    /// Decides a conditional update or delete on whatever its condition matches now.
    fn guard_conditional(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        resource_type: &str,
        condition: &str,
    ) -> Result<(), Error> {
        if crate::access::is_trusted_system(ctx) {
            return Ok(());
        }
        let params = crate::search::parse_query_string(condition);
        let parsed = concord_search::parse::parse_search(Some(resource_type), &params)?;
        let query = SearchQuery {
            count: Some(2),
            ..parsed.query
        };
        let found = self.store.search(&ctx.internal(), &query)?.matches;
        for version in &found {
            self.guard_existing(ctx, interaction, resource_type, &version.id)?;
        }
        Ok(())
    }
}

fn multiple_matches(what: &str) -> Error {
    Error::new(
        ErrorKind::MultipleMatches,
        format!("{what} matched more than one resource; make the criteria more specific"),
    )
}

/// The current resources matching a conditional interaction's search (at most two are fetched:
/// the caller only needs to know none, one or several).
pub(crate) fn conditional_matches(
    tx: &mut dyn StoreTx,
    resource_type: &str,
    condition: &str,
) -> Result<Vec<StoredVersion>, Error> {
    let params = crate::search::parse_query_string(condition);
    if params.is_empty() {
        return Err(Error::invalid(
            "the condition of a conditional interaction has no search parameters",
        ));
    }
    let parsed = concord_search::parse::parse_search(Some(resource_type), &params)?;
    if !parsed.unknown.is_empty() {
        // A condition that silently ignored a parameter could match the wrong resource.
        return Err(Error::invalid(format!(
            "the condition uses unknown or unsupported parameters: {}",
            parsed.unknown.join(", ")
        )));
    }
    if parsed.query.clauses.is_empty() {
        // Only control parameters (`_format`, `_count`, ...) or empty values: such a condition
        // would match every resource of the type.
        return Err(Error::invalid(
            "the condition of a conditional interaction has no search criteria",
        ));
    }
    let query = SearchQuery {
        count: Some(2),
        total: Some(concord_search::query::Total::None),
        ..parsed.query
    };
    Ok(tx.search(&query)?.matches)
}

/// Validates and stores a new resource under `id`.
pub(crate) fn tx_create(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    mut body: Value,
    id: String,
    method: Method,
) -> Result<StoredVersion, Error> {
    check_body(resource_type, &body)?;
    set_id(&mut body, &id);
    let version = prepare(hub, resource_type, &id, body, 1, method)?;
    tx.put(version)
}

/// Update or update-as-create.
pub(crate) fn tx_update(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    id: &str,
    body: Value,
    if_match: Option<u64>,
    method: Method,
) -> Result<WriteOutcome, Error> {
    tx_update_checked(hub, tx, resource_type, id, body, if_match, method, None)
}

/// [`tx_update`] of a body [`precheck`] has checked, when it has.
#[allow(
    clippy::too_many_arguments,
    reason = "tx_update's arguments and what was checked of them; a struct would only rename them"
)]
pub(crate) fn tx_update_checked(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    id: &str,
    body: Value,
    if_match: Option<u64>,
    method: Method,
    checked: Option<Checked>,
) -> Result<WriteOutcome, Error> {
    check_body(resource_type, &body)?;
    match body.get("id") {
        Some(Value::String(body_id)) if body_id == id => {}
        Some(Value::String(body_id)) => {
            return Err(Error::invalid(format!(
                "the resource's id '{body_id}' does not match the id '{id}' in the URL"
            ))
            .at(format!("{resource_type}.id")));
        }
        Some(_) => {
            return Err(Error::invalid("the resource's id must be a string")
                .at(format!("{resource_type}.id")));
        }
        None => {
            return Err(
                Error::invalid("an update must carry the resource's id in the body")
                    .at(format!("{resource_type}.id")),
            );
        }
    }
    if !concord_fhir::primitive::is_id(id) {
        return Err(Error::invalid(format!(
            "'{id}' is not a valid resource id (1-64 of A-Z a-z 0-9 - .)"
        )));
    }
    let current = tx.read(resource_type, id)?;
    let current_version = current.as_ref().map_or(0, |c| c.version_id);
    if let Some(expected) = if_match
        && expected != current_version
    {
        return Err(Error::new(
            ErrorKind::PreconditionFailed,
            format!(
                "If-Match asked for version {expected} but {resource_type}/{id} is at version {current_version}"
            ),
        ));
    }
    let created = current.as_ref().is_none_or(StoredVersion::is_deleted);
    let version = prepare_checked(
        hub,
        resource_type,
        id,
        body,
        current_version + 1,
        method,
        checked,
    )?;
    let version = tx.put(version)?;
    Ok(WriteOutcome {
        version,
        created,
        existing: false,
    })
}

/// What a transaction worked out for a conditional update before the update's turn.
#[derive(Default)]
pub(crate) struct Beforehand {
    /// The body's checks and index entries (see [`precheck`]).
    pub checked: Option<Checked>,
    /// What the condition matched a moment ago, while nothing it reads has been written since
    /// (`transaction::matched_still_holds`); `None` searches again.
    pub matched: Option<Vec<StoredVersion>>,
}

pub(crate) fn tx_conditional_update(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    condition: &str,
    mut body: Value,
    if_match: Option<u64>,
    beforehand: Beforehand,
) -> Result<WriteOutcome, Error> {
    let Beforehand { checked, matched } = beforehand;
    let found = match matched {
        Some(found) => found,
        None => conditional_matches(tx, resource_type, condition)?,
    };
    let body_id = body.get("id").and_then(Value::as_str).map(str::to_string);
    let id = match found.as_slice() {
        [] => body_id.unwrap_or_else(Hub::new_id),
        [one] => {
            if let Some(body_id) = body_id
                && body_id != one.id
            {
                return Err(Error::invalid(format!(
                    "the resource's id '{body_id}' differs from the id of the resource the condition matched"
                )));
            }
            one.id.clone()
        }
        _ => return Err(multiple_matches("the conditional update's search")),
    };
    set_id(&mut body, &id);
    tx_update_checked(
        hub,
        tx,
        resource_type,
        &id,
        body,
        if_match,
        Method::Put,
        checked,
    )
}

pub(crate) fn tx_patch(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    id: &str,
    patch: &Value,
    if_match: Option<u64>,
) -> Result<WriteOutcome, Error> {
    let current = tx.read(resource_type, id)?;
    let Some(current) = current else {
        return Err(Error::not_found(format!(
            "{resource_type}/{id} is not known"
        )));
    };
    let Some(text) = &current.body else {
        return Err(Error::new(
            ErrorKind::Gone,
            format!("{resource_type}/{id} was deleted"),
        ));
    };
    let operations: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| Error::invalid(format!("the body is not a JSON Patch document: {e}")))?;
    let mut resource: Value = serde_json::from_str(text).map_err(|_| Error::internal())?;
    json_patch::patch(&mut resource, &operations).map_err(|e| {
        Error::with_issues(
            ErrorKind::Unprocessable,
            vec![Issue::error(
                IssueType::Processing,
                format!("the patch could not be applied: {e}"),
            )],
        )
    })?;
    if resource.get("resourceType").and_then(Value::as_str) != Some(resource_type) {
        return Err(Error::new(
            ErrorKind::Unprocessable,
            "a patch may not change resourceType",
        ));
    }
    if resource.get("id").and_then(Value::as_str) != Some(id) {
        return Err(Error::new(
            ErrorKind::Unprocessable,
            "a patch may not change or remove the id",
        ));
    }
    tx_update(
        hub,
        tx,
        resource_type,
        id,
        resource,
        if_match,
        Method::Patch,
    )
}

pub(crate) fn tx_delete(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    id: &str,
    if_match: Option<u64>,
) -> Result<Option<StoredVersion>, Error> {
    let current = tx.read(resource_type, id)?;
    if let Some(expected) = if_match {
        let current_version = current.as_ref().map_or(0, |c| c.version_id);
        if expected != current_version {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                format!(
                    "If-Match asked for version {expected} but {resource_type}/{id} is at version {current_version}"
                ),
            ));
        }
    }
    let Some(current) = current else {
        return Ok(None);
    };
    if current.is_deleted() {
        return Ok(None);
    }
    let version = tx.put(NewVersion {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        version_id: current.version_id + 1,
        last_updated: hub.clock.now_ms(),
        method: Method::Delete,
        body: None,
        index: Vec::new(),
    })?;
    Ok(Some(version))
}

pub(crate) fn tx_conditional_delete(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    resource_type: &str,
    condition: &str,
) -> Result<Option<StoredVersion>, Error> {
    let found = conditional_matches(tx, resource_type, condition)?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => {
            let id = one.id.clone();
            tx_delete(hub, tx, resource_type, &id, None)
        }
        _ => Err(multiple_matches("the conditional delete's search")),
    }
}

/// The body must be a JSON object whose resourceType is the URL's type.
pub(crate) fn check_body(resource_type: &str, body: &Value) -> Result<(), Error> {
    let Value::Object(map) = body else {
        return Err(Error::invalid(format!(
            "the body must be a JSON object, found {}",
            concord_fhir::primitive::json_kind(body)
        )));
    };
    match map.get("resourceType") {
        Some(Value::String(t)) if t == resource_type => Ok(()),
        Some(Value::String(t)) if !is_resource_type(t) => {
            Err(Error::invalid(format!("'{t}' is not a FHIR R4 resource type")).at("resourceType"))
        }
        Some(Value::String(t)) => Err(Error::invalid(format!(
            "the body's resourceType is {t} but the URL is for {resource_type}"
        ))
        .at("resourceType")),
        Some(_) => Err(Error::invalid("resourceType must be a string").at("resourceType")),
        None => Err(Error::invalid("the body has no resourceType").at("resourceType")),
    }
}

/// Validates a resource and turns it into a new version: `meta` set, JSON serialised, index
/// entries extracted.
pub(crate) fn prepare(
    hub: &Hub,
    resource_type: &str,
    id: &str,
    body: Value,
    version_id: u64,
    method: Method,
) -> Result<NewVersion, Error> {
    prepare_checked(hub, resource_type, id, body, version_id, method, None)
}

/// What [`precheck`] found out about a body before the store's writer was taken: it passed the
/// NHS number check and validation, and these are its index entries but the references.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    index_but_references: Vec<IndexEntry>,
}

/// Checks a body that is to be written later, in a unit of work, once its id and references
/// are known; returns `None` when the body fails a check (the unit then checks it again and
/// reports why). The NHS number check's tag, if any, is added to `body` itself.
///
/// The body the unit writes differs from this one only in its id, its `meta.versionId` and
/// `meta.lastUpdated`, which the unit sets to valid values, and references rewritten to
/// `Type/id`, which are as valid as what they replace. So a body that passes here passes there,
/// and of its index only the references need extracting again. This keeps validation and most
/// of the indexing out of the writer's critical section, which every write of the node shares.
pub(crate) fn precheck(hub: &Hub, resource_type: &str, body: &mut Value) -> Option<Checked> {
    // The check changes the body only when it passes, by tagging it, and tagging again is a no-op,
    // so a body that fails a check here meets the writer's own checks as if it had not been here.
    crate::identity::nhs::check(hub.config.identity.invalid_nhs_number, resource_type, body)
        .ok()?;
    if validate_resource(body).iter().any(Issue::is_error) {
        return None;
    }
    Some(Checked {
        index_but_references: index_entries_of(body, Params::AllButReferences),
    })
}

/// [`prepare`], skipping what [`precheck`] did when it did.
fn prepare_checked(
    hub: &Hub,
    resource_type: &str,
    id: &str,
    mut body: Value,
    version_id: u64,
    method: Method,
    checked: Option<Checked>,
) -> Result<NewVersion, Error> {
    let now = hub.clock.now_ms();
    let index = match checked {
        Some(checked) => {
            set_meta_version(&mut body, &version_id.to_string(), &format_instant(now));
            let mut index = checked.index_but_references;
            index.extend(index_entries_of(&body, Params::References));
            index
        }
        None => {
            crate::identity::nhs::check(
                hub.config.identity.invalid_nhs_number,
                resource_type,
                &mut body,
            )?;
            set_meta_version(&mut body, &version_id.to_string(), &format_instant(now));
            let issues = validate_resource(&body);
            if issues.iter().any(Issue::is_error) {
                return Err(Error::with_issues(ErrorKind::Unprocessable, issues));
            }
            index_entries(&body)
        }
    };
    let text = serde_json::to_string(&body).map_err(|_| Error::internal())?;
    Ok(NewVersion {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        version_id,
        last_updated: now,
        method,
        body: Some(text),
        index,
    })
}

/// A unit of work that notes the Patients written through it.
struct Recording<'a> {
    inner: &'a mut dyn StoreTx,
    patients: &'a mut Vec<String>,
}

impl StoreTx for Recording<'_> {
    fn read(&mut self, resource_type: &str, id: &str) -> Result<Option<StoredVersion>, Error> {
        self.inner.read(resource_type, id)
    }

    fn search(&mut self, query: &SearchQuery) -> Result<concord_store::SearchPage, Error> {
        self.inner.search(query)
    }

    fn append_message(
        &mut self,
        message: concord_store::NewMessage,
    ) -> Result<concord_store::Appended, Error> {
        self.inner.append_message(message)
    }

    fn set_message_status(
        &mut self,
        seq: i64,
        status: concord_store::MessageStatus,
        error: Option<&str>,
        ack_code: &str,
    ) -> Result<(), Error> {
        self.inner.set_message_status(seq, status, error, ack_code)
    }

    fn on_outcome(&mut self, hook: concord_store::OutcomeHook) {
        self.inner.on_outcome(hook);
    }

    fn put(&mut self, version: NewVersion) -> Result<StoredVersion, Error> {
        let patient = (version.resource_type == "Patient").then(|| version.id.clone());
        let stored = self.inner.put(version)?;
        self.patients.extend(patient);
        Ok(stored)
    }
}
