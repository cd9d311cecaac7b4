//! Batch and transaction Bundles (<https://hl7.org/fhir/R4/http.html#transaction>).
//!
//! Owns: processing order (DELETE, POST, PUT/PATCH, GET/HEAD, as the specification requires),
//! `urn:uuid:` / `urn:oid:` fullUrls and conditional references resolved to the resources they
//! name, all-or-nothing transactions (one store unit of work) and independent batch entries. An
//! error in a transaction names the entry it came from.

use std::collections::{HashMap, HashSet};

use concord_access::Interaction;
use concord_fhir::outcome::from_error;
use concord_fhir::primitive::format_instant;
use concord_fhir::reference::{Reference, parse as parse_reference};
use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_store::{Method, NewVersion, StoreTx, StoredVersion};
use serde_json::Value;

use crate::Hub;
use crate::bundle::{Bundle, Entry, EntryResponse, etag, location, raw};
use crate::write::{
    WriteOutcome, conditional_matches, tx_conditional_delete, tx_conditional_update, tx_create,
    tx_delete, tx_patch, tx_update_checked,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verb {
    Delete,
    Post,
    Put,
    Patch,
    Get,
}

/// One request entry, checked.
#[derive(Debug, Clone)]
struct Request {
    index: usize,
    verb: Verb,
    /// `request.url`, relative to the base.
    url: String,
    full_url: Option<String>,
    resource: Option<Value>,
    if_none_exist: Option<String>,
    if_match: Option<u64>,
    /// For POST entries: the type and id the new (or conditionally matched) resource has.
    post_target: Option<(String, String)>,
    /// For POST entries: true when `ifNoneExist` matched an existing resource.
    existing: bool,
    /// For POST entries prepared before the write lock (see [`prepare_entries`]): the version to put.
    prepared: Option<NewVersion>,
    /// For PUT entries checked before the write lock (see [`prepare_entries`]).
    checked: Option<crate::write::Checked>,
    /// For conditional PUT entries with a fullUrl: what the condition matched when the ids were
    /// assigned, before any entry was written (see [`matched_still_holds`]).
    matched: Option<Vec<StoredVersion>>,
}

/// A transaction Bundle's entries, checked and partly prepared (see [`Hub::prepare_transaction`]).
pub(crate) struct PreparedTransaction(Vec<Request>);

/// What one entry produced.
enum Outcome {
    Written(WriteOutcome),
    Deleted,
    Read(StoredVersion),
}

impl Hub {
    /// Processes a `batch` or `transaction` Bundle and returns the response Bundle.
    pub fn process_bundle(
        &self,
        ctx: &RequestContext,
        bundle: &Value,
        base: &str,
    ) -> Result<Bundle, Error> {
        let bundle_type = match bundle.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => bundle
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            _ => return Err(Error::invalid("POST to the base takes a Bundle").at("resourceType")),
        };
        let requests = self.checked_requests(ctx, bundle)?;
        match bundle_type {
            "transaction" => self.transaction(ctx, bundle, requests, base),
            "batch" => self.batch(ctx, requests, base),
            other => Err(Error::invalid(format!(
                "Bundle.type must be 'transaction' or 'batch' to be processed, not '{other}'"
            ))
            .at("Bundle.type")),
        }
    }

    /// Decides every entry before any is processed: a caller other than a trusted system may
    /// only send entries it could send one by one. (A batch is refused whole too, so that a
    /// refusal never leaves half of one applied.)
    fn guard_requests(&self, ctx: &RequestContext, requests: &[Request]) -> Result<(), Error> {
        if crate::access::is_trusted_system(ctx) {
            return Ok(());
        }
        // The types of the resources this Bundle creates, by fullUrl (a citizen's Provenance
        // may target them).
        let created: HashMap<String, String> = requests
            .iter()
            .filter(|r| r.verb == Verb::Post)
            .filter_map(|r| {
                let resource_type = r.url.split(['/', '?']).next().unwrap_or_default();
                r.full_url
                    .clone()
                    .map(|full_url| (full_url, resource_type.to_string()))
            })
            .collect();
        let citizen = crate::access::is_citizen(ctx);
        for r in requests {
            let entry = format!("Bundle.entry[{}]", r.index);
            let path = r.url.split('?').next().unwrap_or_default();
            let mut parts = path.trim_matches('/').split('/');
            let resource_type = parts.next().unwrap_or_default();
            let id = parts.next();
            let result = match (r.verb, &r.resource, id) {
                (Verb::Post, Some(resource), _) if citizen && resource_type == "Provenance" => {
                    self.guard_citizen_provenance(ctx, resource, &created)
                }
                (Verb::Post, Some(resource), _) => {
                    self.guard_write(ctx, Interaction::Create, resource_type, resource)
                }
                (Verb::Put, Some(resource), Some(id)) => self
                    .guard_existing(ctx, Interaction::Update, resource_type, id)
                    .and_then(|()| {
                        self.guard_write(ctx, Interaction::Update, resource_type, resource)
                    }),
                (Verb::Patch | Verb::Delete, _, Some(id)) => {
                    let interaction = if r.verb == Verb::Delete {
                        Interaction::Delete
                    } else {
                        Interaction::Update
                    };
                    self.guard_existing(ctx, interaction, resource_type, id)
                }
                (Verb::Get, _, Some(id)) if !r.url.contains('?') => {
                    match self.store.read(&ctx.internal(), resource_type, id)? {
                        Some(version) if !version.is_deleted() => {
                            self.guard_read(ctx, Interaction::Read, &version, None)
                        }
                        _ => Ok(()),
                    }
                }
                _ => Err(Error::new(
                    ErrorKind::Forbidden,
                    "this kind of entry is only accepted from system callers",
                )),
            };
            result.map_err(|e| e.in_entry(&entry))?;
        }
        Ok(())
    }

    fn requests(&self, bundle: &Value) -> Result<Vec<Request>, Error> {
        let entries = match bundle.get("entry") {
            None => return Ok(Vec::new()),
            Some(Value::Array(entries)) => entries,
            Some(_) => {
                return Err(Error::invalid("Bundle.entry must be an array").at("Bundle.entry"));
            }
        };
        if entries.len() > self.config.max_bundle_entries {
            return Err(Error::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "a Bundle may hold at most {} entries",
                    self.config.max_bundle_entries
                ),
            ));
        }
        entries
            .iter()
            .enumerate()
            .map(|(index, entry)| parse_request(index, entry))
            .collect()
    }

    /// A Bundle's entries, decided for the caller and tagged as a patient's where they are.
    fn checked_requests(
        &self,
        ctx: &RequestContext,
        bundle: &Value,
    ) -> Result<Vec<Request>, Error> {
        let mut requests = self.requests(bundle)?;
        self.guard_requests(ctx, &requests)?;
        // What a patient or proxy writes in a Bundle is theirs, as one by one.
        for request in &mut requests {
            if matches!(request.verb, Verb::Post | Verb::Put)
                && let Some(resource) = request.resource.as_mut()
            {
                self.tag_patient_entered(ctx, resource);
            }
        }
        Ok(requests)
    }

    /// A transaction is one unit of work that can run again (`write_linked_repeatable`), so the
    /// store need not isolate it from the others it commits with; if another's failure undoes
    /// it, it prepares the Bundle's entries again from the Bundle and starts over.
    fn transaction(
        &self,
        ctx: &RequestContext,
        bundle: &Value,
        requests: Vec<Request>,
        base: &str,
    ) -> Result<Bundle, Error> {
        let mut prepared = Some(self.prepare_requests(requests)?);
        let mut results = Vec::new();
        self.write_linked_repeatable(ctx, &mut |tx| {
            let mut requests = match prepared.take() {
                Some(requests) => requests,
                None => self.prepare_requests(self.checked_requests(ctx, bundle)?)?,
            };
            results = self.apply_prepared(tx, &mut requests)?;
            Ok(())
        })?;
        let mut bundle = Bundle::new("transaction-response", self.clock.now_ms());
        for outcome in results {
            let outcome = outcome.ok_or_else(Error::internal)?;
            bundle.entry.push(response_entry(base, &outcome)?);
        }
        Ok(bundle)
    }

    /// Checks a `transaction` Bundle and does the work that needs no store (ids, validation and
    /// index extraction of plain creates) before any unit of work, for a caller that applies it
    /// inside a unit of its own ([`Hub::apply_transaction`]); the HL7 v2 feed logs, applies and
    /// marks a message in one.
    pub(crate) fn prepare_transaction(
        &self,
        ctx: &RequestContext,
        bundle: &Value,
    ) -> Result<PreparedTransaction, Error> {
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle")
            || bundle.get("type").and_then(Value::as_str) != Some("transaction")
        {
            return Err(Error::invalid("a transaction Bundle was expected").at("Bundle.type"));
        }
        let requests = self.requests(bundle)?;
        self.guard_requests(ctx, &requests)?;
        Ok(PreparedTransaction(self.prepare_requests(requests)?))
    }

    /// Applies a prepared transaction inside the caller's unit of work (all or nothing with it).
    pub(crate) fn apply_transaction(
        &self,
        tx: &mut dyn StoreTx,
        prepared: PreparedTransaction,
    ) -> Result<(), Error> {
        let mut requests = prepared.0;
        self.apply_prepared(tx, &mut requests).map(|_| ())
    }

    fn prepare_requests(&self, mut requests: Vec<Request>) -> Result<Vec<Request>, Error> {
        // Two entries may not address the same resource (the result would depend on order).
        let mut seen = HashMap::new();
        for r in &requests {
            if matches!(r.verb, Verb::Put | Verb::Delete | Verb::Patch)
                && !r.url.contains('?')
                && let Some(previous) = seen.insert(r.url.clone(), r.index)
            {
                return Err(Error::invalid(format!(
                    "entries {previous} and {} both change {}",
                    r.index, r.url
                )));
            }
        }
        prepare_entries(self, &mut requests)?;
        Ok(requests)
    }

    fn apply_prepared(
        &self,
        tx: &mut dyn StoreTx,
        requests: &mut [Request],
    ) -> Result<Vec<Option<Outcome>>, Error> {
        let mut results: Vec<Option<Outcome>> = (0..requests.len()).map(|_| None).collect();
        let ids = assign_ids(tx, requests)?;
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by_key(|&i| (requests[i].verb, i));
        // The resource types entries have written so far, for `matched_still_holds`.
        let mut written: HashSet<String> = HashSet::new();
        for i in order {
            if let Some(prepared) = requests[i].prepared.take() {
                written.insert(prepared.resource_type.clone());
                let version = tx
                    .put(prepared)
                    .map_err(|e| e.in_entry(&format!("Bundle.entry[{}]", requests[i].index)))?;
                results[i] = Some(Outcome::Written(WriteOutcome {
                    version,
                    created: true,
                    existing: false,
                }));
                continue;
            }
            // Taken, not copied, as the prepared POSTs are: a unit of work runs once.
            let mut resource = requests[i].resource.take();
            let checked = requests[i].checked.take();
            let matched = requests[i].matched.take();
            let request = &requests[i];
            let matched = matched.filter(|_| matched_still_holds(request, &written));
            if let Some(resource) = resource.as_mut() {
                resolve_references(tx, resource, &ids)
                    .map_err(|e| e.in_entry(&format!("Bundle.entry[{}]", request.index)))?;
            }
            if request.verb != Verb::Get {
                written.insert(written_type(request));
            }
            let outcome = execute(self, tx, request, resource, checked, matched)
                .map_err(|e| e.in_entry(&format!("Bundle.entry[{}]", request.index)))?;
            results[i] = Some(outcome);
        }
        Ok(results)
    }

    fn batch(
        &self,
        ctx: &RequestContext,
        requests: Vec<Request>,
        base: &str,
    ) -> Result<Bundle, Error> {
        let mut bundle = Bundle::new("batch-response", self.clock.now_ms());
        let mut entries: Vec<Option<Entry>> = (0..requests.len()).map(|_| None).collect();
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by_key(|&i| (requests[i].verb, i));
        for i in order {
            let mut request = requests[i].clone();
            let mut outcome = None;
            let result = self.write_linked(ctx, &mut |tx| {
                // Batch entries are independent: a fullUrl names nothing outside its own entry.
                let ids = assign_ids(tx, std::slice::from_mut(&mut request))?;
                let mut resource = request.resource.clone();
                if let Some(resource) = resource.as_mut() {
                    resolve_references(tx, resource, &ids)?;
                }
                outcome = Some(execute(self, tx, &request, resource, None, None)?);
                Ok(())
            });
            entries[i] = Some(match (result, outcome) {
                (Ok(()), Some(outcome)) => response_entry(base, &outcome)?,
                (Err(error), _) => error_entry(&error)?,
                (Ok(()), None) => error_entry(&Error::internal())?,
            });
        }
        bundle.entry = entries
            .into_iter()
            .map(|e| e.ok_or_else(Error::internal))
            .collect::<Result<_, _>>()?;
        Ok(bundle)
    }
}

fn parse_request(index: usize, entry: &Value) -> Result<Request, Error> {
    let at = |field: &str| format!("Bundle.entry[{index}].{field}");
    let request = entry
        .get("request")
        .ok_or_else(|| Error::invalid("the entry has no request").at(at("request")))?;
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::invalid("the entry's request has no method").at(at("request.method"))
        })?;
    let verb = match method {
        "DELETE" => Verb::Delete,
        "POST" => Verb::Post,
        "PUT" => Verb::Put,
        "PATCH" => Verb::Patch,
        "GET" | "HEAD" => Verb::Get,
        other => {
            return Err(Error::invalid(format!(
                "'{other}' is not an HTTP method a Bundle entry may use"
            ))
            .at(at("request.method")));
        }
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("the entry's request has no url").at(at("request.url")))?;
    let url = url.trim_start_matches('/').to_string();
    let resource = entry.get("resource").cloned();
    if matches!(verb, Verb::Post | Verb::Put | Verb::Patch) && resource.is_none() {
        return Err(Error::invalid(format!("a {method} entry needs a resource")).at(at("resource")));
    }
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        Some(tag) => Some(parse_etag(tag).ok_or_else(|| {
            Error::invalid(format!("'{tag}' is not an ETag such as W/\"1\""))
                .at(at("request.ifMatch"))
        })?),
        None => None,
    };
    Ok(Request {
        index,
        verb,
        url,
        full_url: entry
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource,
        if_none_exist: request
            .get("ifNoneExist")
            .and_then(Value::as_str)
            .map(str::to_string),
        if_match,
        post_target: None,
        existing: false,
        prepared: None,
        checked: None,
        matched: None,
    })
}

/// Parses `W/"3"` or `"3"` into 3.
pub fn parse_etag(tag: &str) -> Option<u64> {
    tag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Prepares plain POST entries (no `ifNoneExist`) before the write lock is taken: gives each its
/// new id, rewrites references to other entries' fullUrls where those are already known, and, when
/// no reference still needs the store (a conditional reference, or the fullUrl of a conditional
/// entry), validates it, extracts its index entries and serialises it. That is most of the work of
/// a transaction, and done here it runs in parallel with other requests instead of inside the
/// store's single writer. PUT entries, whose ids and references may depend on what is stored,
/// are checked and indexed here as far as they can be ([`crate::write::precheck`]).
fn prepare_entries(hub: &Hub, requests: &mut [Request]) -> Result<(), Error> {
    let mut ids = HashMap::new();
    for request in requests.iter_mut() {
        let in_entry = |e: Error| e.in_entry(&format!("Bundle.entry[{}]", request.index));
        match request.verb {
            Verb::Post if request.if_none_exist.is_none() => {
                let resource_type = request
                    .url
                    .split(['/', '?'])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                crate::write::ensure_type(&resource_type).map_err(in_entry)?;
                let id = Hub::new_id();
                if let Some(full_url) = &request.full_url {
                    ids.insert(full_url.clone(), format!("{resource_type}/{id}"));
                }
                request.post_target = Some((resource_type, id));
            }
            Verb::Put | Verb::Patch if !request.url.contains('?') => {
                if let Some(full_url) = &request.full_url {
                    ids.insert(full_url.clone(), request.url.clone());
                }
            }
            _ => {}
        }
    }
    for request in requests.iter_mut() {
        let Some((resource_type, id)) = request.post_target.clone() else {
            continue;
        };
        let Some(mut resource) = request.resource.clone() else {
            continue;
        };
        if !rewrite_known_references(&mut resource, &ids) {
            continue;
        }
        let in_entry = |e: Error| e.in_entry(&format!("Bundle.entry[{}]", request.index));
        crate::write::check_body(&resource_type, &resource).map_err(in_entry)?;
        concord_fhir::resource::set_id(&mut resource, &id);
        request.prepared = Some(
            crate::write::prepare(hub, &resource_type, &id, resource, 1, Method::Post)
                .map_err(in_entry)?,
        );
    }
    for request in requests.iter_mut() {
        if request.verb != Verb::Put {
            continue;
        }
        let resource_type = request.url.split(['/', '?']).next().unwrap_or_default();
        if let Some(resource) = request.resource.as_mut() {
            request.checked = crate::write::precheck(hub, resource_type, resource);
        }
    }
    Ok(())
}

/// Rewrites references to known fullUrls; false when a reference is left that only the store can
/// resolve (a conditional reference, or a urn of an entry whose id is not known yet).
fn rewrite_known_references(value: &mut Value, ids: &HashMap<String, String>) -> bool {
    match value {
        Value::Object(map) => map.iter_mut().all(|(key, child)| match child {
            Value::String(reference) if key == "reference" => {
                if let Some(target) = ids.get(reference.as_str()) {
                    *reference = target.clone();
                    true
                } else {
                    !(reference.starts_with("urn:") || reference.contains('?'))
                }
            }
            _ => rewrite_known_references(child, ids),
        }),
        Value::Array(items) => items
            .iter_mut()
            .all(|item| rewrite_known_references(item, ids)),
        _ => true,
    }
}

/// Gives every POST entry its new id (or, for a conditional create that matches, the existing
/// one), and maps each entry's fullUrl to the `Type/id` it will have.
fn assign_ids(
    tx: &mut dyn StoreTx,
    requests: &mut [Request],
) -> Result<HashMap<String, String>, Error> {
    let mut ids = HashMap::new();
    for request in requests.iter_mut() {
        let target = match request.verb {
            Verb::Post if request.post_target.is_some() => request
                .post_target
                .as_ref()
                .map(|(resource_type, id)| format!("{resource_type}/{id}")),
            Verb::Post => {
                let resource_type = request
                    .url
                    .split(['/', '?'])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                crate::write::ensure_type(&resource_type)
                    .map_err(|e| e.in_entry(&format!("Bundle.entry[{}]", request.index)))?;
                let existing = match &request.if_none_exist {
                    Some(condition) => {
                        match conditional_matches(tx, &resource_type, condition)?.as_slice() {
                            [] => None,
                            [one] => Some(one.id.clone()),
                            _ => {
                                return Err(Error::new(
                                    ErrorKind::MultipleMatches,
                                    format!(
                                        "Bundle.entry[{}]: ifNoneExist matched more than one resource",
                                        request.index
                                    ),
                                ));
                            }
                        }
                    }
                    None => None,
                };
                request.existing = existing.is_some();
                let id = existing.unwrap_or_else(Hub::new_id);
                let target = format!("{resource_type}/{id}");
                request.post_target = Some((resource_type, id));
                Some(target)
            }
            Verb::Put | Verb::Patch if !request.url.contains('?') => Some(request.url.clone()),
            // A conditional update others reference by its fullUrl: find (or choose) its id now,
            // so the references can be rewritten; the id goes into the body so the update
            // itself lands on the same one.
            Verb::Put if request.full_url.is_some() => {
                let (resource_type, condition) = request.url.split_once('?').unwrap_or_default();
                let (resource_type, condition) = (resource_type.to_string(), condition.to_string());
                let in_entry = |e: Error| e.in_entry(&format!("Bundle.entry[{}]", request.index));
                crate::write::ensure_type(&resource_type).map_err(in_entry)?;
                let found =
                    conditional_matches(tx, &resource_type, &condition).map_err(in_entry)?;
                let body_id = request
                    .resource
                    .as_ref()
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let id = match found.as_slice() {
                    [] => body_id.unwrap_or_else(Hub::new_id),
                    [one] => one.id.clone(),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::MultipleMatches,
                            format!(
                                "Bundle.entry[{}]: the conditional update matched more than one resource",
                                request.index
                            ),
                        ));
                    }
                };
                if let Some(Value::Object(map)) = request.resource.as_mut() {
                    map.entry("id").or_insert_with(|| Value::String(id.clone()));
                }
                request.matched = Some(found);
                Some(format!("{resource_type}/{id}"))
            }
            _ => None,
        };
        if let (Some(full_url), Some(target)) = (&request.full_url, target) {
            ids.insert(full_url.clone(), target);
        }
    }
    Ok(ids)
}

/// Rewrites every reference to a Bundle fullUrl into the `Type/id` it was given, and resolves
/// conditional references (`Patient?identifier=...`) to the one resource they match.
fn resolve_references(
    tx: &mut dyn StoreTx,
    value: &mut Value,
    ids: &HashMap<String, String>,
) -> Result<(), Error> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(reference) = child
                {
                    if let Some(target) = ids.get(reference.as_str()) {
                        *reference = target.clone();
                        continue;
                    }
                    match parse_reference(reference) {
                        Ok(Reference::Conditional {
                            resource_type,
                            query,
                        }) => {
                            let (resource_type, query) =
                                (resource_type.to_string(), query.to_string());
                            let found = conditional_matches(tx, &resource_type, &query)?;
                            match found.as_slice() {
                                [one] => *reference = format!("{resource_type}/{}", one.id),
                                [] => {
                                    return Err(Error::new(
                                        ErrorKind::Unprocessable,
                                        format!(
                                            "the conditional reference {resource_type}?{query} matches no resource"
                                        ),
                                    ));
                                }
                                _ => {
                                    return Err(Error::new(
                                        ErrorKind::MultipleMatches,
                                        format!(
                                            "the conditional reference {resource_type}?{query} matches more than one resource"
                                        ),
                                    ));
                                }
                            }
                        }
                        Ok(Reference::Urn(urn)) => {
                            return Err(Error::new(
                                ErrorKind::Unprocessable,
                                format!("the reference {urn} names no entry of this Bundle"),
                            ));
                        }
                        _ => {}
                    }
                } else {
                    resolve_references(tx, child, ids)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                resolve_references(tx, item, ids)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether what a conditional PUT's condition matched when the ids were assigned is still what
/// it would match now, so the update need not search again inside the store's writer, where
/// every search delays every other writer (an HL7 v2 message is several of them). It holds when
/// no entry written since was of the entry's type, and the condition reads no other type (no
/// chain, no `_has`): the search reads the index of that type alone.
fn matched_still_holds(request: &Request, written: &HashSet<String>) -> bool {
    let Some((resource_type, condition)) = request.url.split_once('?') else {
        return false;
    };
    !written.contains(resource_type)
        && crate::search::parse_query_string(condition)
            .iter()
            .all(|(name, _)| !name.contains('.') && !name.starts_with("_has"))
}

/// The resource type an entry writes (or deletes).
fn written_type(request: &Request) -> String {
    match &request.post_target {
        Some((resource_type, _)) => resource_type.clone(),
        None => request
            .url
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

fn execute(
    hub: &Hub,
    tx: &mut dyn StoreTx,
    request: &Request,
    resource: Option<Value>,
    checked: Option<crate::write::Checked>,
    matched: Option<Vec<StoredVersion>>,
) -> Result<Outcome, Error> {
    let (path, query) = match request.url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (request.url.as_str(), None),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match request.verb {
        Verb::Post => {
            let (resource_type, id) = request.post_target.as_ref().ok_or_else(Error::internal)?;
            if request.existing {
                let version = tx.read(resource_type, id)?.ok_or_else(Error::internal)?;
                return Ok(Outcome::Written(WriteOutcome {
                    version,
                    created: false,
                    existing: true,
                }));
            }
            let version = tx_create(
                hub,
                tx,
                resource_type,
                resource.ok_or_else(Error::internal)?,
                id.clone(),
                Method::Post,
            )?;
            Ok(Outcome::Written(WriteOutcome {
                version,
                created: true,
                existing: false,
            }))
        }
        Verb::Put => {
            let resource = resource.ok_or_else(Error::internal)?;
            match (segments.as_slice(), query) {
                ([resource_type], Some(condition)) => {
                    crate::write::ensure_type(resource_type)?;
                    Ok(Outcome::Written(tx_conditional_update(
                        hub,
                        tx,
                        resource_type,
                        condition,
                        resource,
                        request.if_match,
                        crate::write::Beforehand { checked, matched },
                    )?))
                }
                ([resource_type, id], None) => {
                    crate::write::ensure_type(resource_type)?;
                    Ok(Outcome::Written(tx_update_checked(
                        hub,
                        tx,
                        resource_type,
                        id,
                        resource,
                        request.if_match,
                        Method::Put,
                        checked,
                    )?))
                }
                _ => Err(Error::invalid(format!(
                    "'{}' is not a URL a PUT entry may use (Type/id or Type?search)",
                    request.url
                ))),
            }
        }
        Verb::Patch => match segments.as_slice() {
            [resource_type, id] if query.is_none() => {
                crate::write::ensure_type(resource_type)?;
                let patch = resource.ok_or_else(Error::internal)?;
                let patch = binary_patch(patch)?;
                Ok(Outcome::Written(tx_patch(
                    hub,
                    tx,
                    resource_type,
                    id,
                    &patch,
                    request.if_match,
                )?))
            }
            _ => Err(Error::invalid(format!(
                "'{}' is not a URL a PATCH entry may use (Type/id)",
                request.url
            ))),
        },
        Verb::Delete => {
            match (segments.as_slice(), query) {
                ([resource_type], Some(condition)) => {
                    crate::write::ensure_type(resource_type)?;
                    tx_conditional_delete(hub, tx, resource_type, condition)?;
                }
                ([resource_type, id], None) => {
                    crate::write::ensure_type(resource_type)?;
                    tx_delete(hub, tx, resource_type, id, request.if_match)?;
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "'{}' is not a URL a DELETE entry may use",
                        request.url
                    )));
                }
            }
            Ok(Outcome::Deleted)
        }
        Verb::Get => match segments.as_slice() {
            [resource_type, id] if query.is_none() => {
                crate::write::ensure_type(resource_type)?;
                match tx.read(resource_type, id)? {
                    Some(v) if !v.is_deleted() => Ok(Outcome::Read(v)),
                    Some(_) => Err(Error::new(
                        ErrorKind::Gone,
                        format!("{resource_type}/{id} was deleted"),
                    )),
                    None => Err(Error::not_found(format!(
                        "{resource_type}/{id} is not known"
                    ))),
                }
            }
            _ => Err(Error::not_supported(
                "GET entries in a Bundle may only read by id (Type/id)",
            )),
        },
    }
}

/// A PATCH entry carries its JSON Patch as a Binary resource (base64 `data`), per the spec.
fn binary_patch(resource: Value) -> Result<Value, Error> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Binary") {
        return Err(Error::invalid(
            "a PATCH entry carries its JSON Patch document in a Binary resource",
        ));
    }
    let data = resource
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("the PATCH entry's Binary has no data"))?;
    let bytes = base64_decode(data)
        .ok_or_else(|| Error::invalid("the PATCH entry's Binary.data is not base64"))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(format!(
            "the PATCH entry's Binary.data is not a JSON Patch document: {e}"
        ))
    })
}

/// Decodes standard base64. Hand-written because this one call does not justify a dependency.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

fn response_entry(base: &str, outcome: &Outcome) -> Result<Entry, Error> {
    Ok(match outcome {
        Outcome::Written(written) => {
            let status = if written.created {
                "201 Created"
            } else {
                "200 OK"
            };
            Entry {
                full_url: Some(crate::bundle::full_url(base, &written.version)),
                response: Some(EntryResponse {
                    status: status.to_string(),
                    location: Some(location(&written.version)),
                    etag: Some(etag(&written.version)),
                    last_modified: Some(format_instant(written.version.last_updated)),
                    outcome: None,
                }),
                ..Entry::default()
            }
        }
        Outcome::Deleted => Entry {
            response: Some(EntryResponse {
                status: "204 No Content".into(),
                ..EntryResponse::default()
            }),
            ..Entry::default()
        },
        Outcome::Read(version) => Entry {
            full_url: Some(crate::bundle::full_url(base, version)),
            resource: version.body.clone().map(raw).transpose()?,
            response: Some(EntryResponse {
                status: "200 OK".into(),
                etag: Some(etag(version)),
                last_modified: Some(format_instant(version.last_updated)),
                ..EntryResponse::default()
            }),
            ..Entry::default()
        },
    })
}

fn error_entry(error: &Error) -> Result<Entry, Error> {
    let status = error.http_status();
    Ok(Entry {
        response: Some(EntryResponse {
            status: status.to_string(),
            outcome: Some(raw(from_error(error).to_string())?),
            ..EntryResponse::default()
        }),
        ..Entry::default()
    })
}
