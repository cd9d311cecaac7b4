//! Federated reads: one real-time view of a person across the organisations that hold their
//! records (the read path of `../shared/design.md`).
//!
//! Owns: resolving a hub Patient to its golden person, asking the record locator which sources
//! hold the person, discovering the person at other regions' hubs (by NHS number, demographics
//! where there is none), fanning out to every source in parallel through `concord-source`, adding
//! this hub's own data (patient-entered data lives here), the loop guard between hubs (the
//! origin and hop count every outbound request carries), and the rule that a view holds only the
//! person asked for, whatever a source answered (`keep_own_patient`). One module per operation:
//! [`everything`], [`summary`], [`search`].
//!
//! Does not: speak HTTP to clients (the REST crate does), talk to a source's wire itself
//! (`concord-source` does, with its deadline, retry and breaker), or merge (the pure
//! `concord-federation` crate does). Nothing is cached: every view asks the sources again.

pub mod everything;
pub mod search;
pub mod summary;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use concord_federation::{
    Freshness, Prepared, Resource, SourceInfo, SourceKind, SourceResult, SourceStatus,
};
use concord_fhir::{Error, RequestContext};
use concord_source::{Outbound, Source};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;

use crate::Hub;

/// The identifier system an edge's announcement puts on the hub's copy of a record:
/// `{SOURCE_RECORD_SYSTEM}{source id}` with the record's local id at that source as the value
/// (the identity feed's own constant, so the two can never drift apart).
pub use crate::announce::SOURCE_SYSTEM_PREFIX as SOURCE_RECORD_SYSTEM;
use concord_mpi::NHS_NUMBER_SYSTEM;

/// Who this hub is, for provenance of its own data and for the loop guard.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    /// This hub's id, sent as `X-Concord-Origin` (e.g. `north-central-london`).
    pub origin: String,
    /// This hub's display name, the organisation patient-entered data is shown as coming from.
    pub name: String,
    pub ods_code: Option<String>,
    /// How many hub-to-hub hops a request may take. 1: neighbours are asked, but they do not ask
    /// their own neighbours on our behalf, so hubs that list each other never loop.
    pub max_hops: u32,
}

/// The sources a hub federates, built once at start.
pub struct Federation {
    pub(crate) config: FederationConfig,
    pub(crate) sources: Vec<Arc<Source>>,
    pub(crate) by_id: BTreeMap<String, usize>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("config", &self.config)
            .field("sources", &self.by_id.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Federation {
    pub fn new(config: FederationConfig, sources: Vec<Source>) -> Federation {
        let sources: Vec<Arc<Source>> = sources.into_iter().map(Arc::new).collect();
        let by_id = sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.info().id.clone(), i))
            .collect();
        Federation {
            config,
            sources,
            by_id,
        }
    }

    pub fn sources(&self) -> impl Iterator<Item = &SourceInfo> {
        self.sources.iter().map(|s| s.info())
    }

    /// The registry entry of one source.
    pub fn info(&self, id: &str) -> Option<&SourceInfo> {
        self.by_id.get(id).map(|&i| self.sources[i].info())
    }

    /// What every outbound request of this view carries: the request id, the hub that started
    /// the request, and one more hop.
    pub(crate) fn outbound(
        &self,
        ctx: &RequestContext,
        hop: &Hop,
        view_started: std::time::Instant,
    ) -> Outbound {
        Outbound {
            request_id: ctx.request_id.clone(),
            origin: hop
                .origin
                .clone()
                .unwrap_or_else(|| self.config.origin.clone()),
            hops: hop.hops + 1,
            view_started: Some(view_started),
        }
    }

    /// Why a neighbouring region is not asked on this request, if it is not: the hop limit, a
    /// request that came from that region, or one that has come back to this hub.
    pub(crate) fn region_skip(&self, hop: &Hop, region: &SourceInfo) -> Option<&'static str> {
        let looped = hop.origin.as_deref() == Some(self.config.origin.as_str());
        if looped || hop.hops >= self.config.max_hops {
            Some("the request has already crossed the most hub-to-hub hops allowed")
        } else if hop.origin.as_deref() == Some(region.id.as_str()) {
            Some("the request came from this region")
        } else {
            None
        }
    }
}

impl Hub {
    /// Decides a federated view of one person up front and finds where their records are, in
    /// one trip to the blocking pool (store reads): the Patient is read once, an unknown person
    /// is 404 for anyone, and a refused view reads nothing more.
    pub(crate) async fn authorize_and_resolve(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        patient_id: &str,
    ) -> Result<(crate::access::Grant, Resolved), Error> {
        // Indexed reads on a reader connection and the in-memory identity links: run on the
        // async worker, as `concord-rest` runs a read by id, because handing them to the
        // blocking pool (a queue, a wake-up, two thread switches) cost more than the reads.
        inline(|| {
            let internal = ctx.internal();
            let version = self.read(&internal, "Patient", patient_id)?;
            let grant = self.authorize(
                ctx,
                resource_type,
                concord_access::Interaction::Read,
                Some(patient_id),
            )?;
            let patient: Value = serde_json::from_str(version.body.as_deref().unwrap_or("{}"))
                .map_err(|_| Error::internal())?;
            let resolved = self.resolve_person(&internal, patient_id, patient)?;
            Ok((grant, resolved))
        })
    }

    /// Masks every source's answer with the grant. When anything was withheld (here, or by not
    /// asking a withheld organisation: `already_withheld`), the hub's own result carries the
    /// notice, so the view's OperationOutcome says so without saying what.
    pub(crate) fn mask_results(
        &self,
        grant: &crate::access::Grant,
        results: &mut [SourceResult],
        already_withheld: usize,
    ) {
        let mut withheld = already_withheld;
        for result in results.iter_mut() {
            withheld += self.mask_result(grant, result);
        }
        if withheld > 0
            && let Some(own) = results.first_mut()
        {
            own.forwarded_issues.push(concord_access::withheld_issue());
        }
    }

    /// Masks one source's answer with the grant; returns how many resources were withheld.
    pub(crate) fn mask_result(
        &self,
        grant: &crate::access::Grant,
        result: &mut SourceResult,
    ) -> usize {
        let filter = &grant.filter;
        if filter.is_everything() {
            return 0;
        }
        let org = result.source.ods_code.as_deref();
        let kind = Some(result.source.kind.as_str());
        // Only withheld codes (which may be anywhere) need the whole resource parsed; otherwise
        // the mask reads its type and `meta.tag` alone (`meta.tag` is parsed once and kept, for
        // `is_mpi_resource` too; the rest of `meta` is not parsed).
        let whole = concord_access::reads_whole_resource(filter);
        let before = result.resources.len();
        result.resources.retain(|resource| {
            let verdict = if whole {
                concord_access::mask(filter, &resource.to_value(), org, kind)
            } else {
                let patient_entered = resource
                    .get_in("meta", "tag")
                    .is_some_and(concord_access::category::is_patient_entered_tags);
                concord_access::mask_head(
                    filter,
                    resource.get_str("resourceType").unwrap_or_default(),
                    patient_entered,
                    org,
                    kind,
                )
            };
            verdict == concord_access::Verdict::Keep
        });
        before - result.resources.len()
    }
}

/// Whether a grant lets the caller see an organisation's records at all.
fn organization_allowed(filter: &concord_access::Filter, info: &SourceInfo) -> bool {
    // A neighbouring region is many organisations; its records are masked one by one.
    if info.kind == SourceKind::Region {
        return true;
    }
    let Some(ods) = info.ods_code.as_deref() else {
        return filter.only_organizations.is_none();
    };
    !filter.withheld_organizations.contains(ods)
        && filter
            .only_organizations
            .as_ref()
            .is_none_or(|only| only.contains(ods))
}

/// Where a request came from, read off `X-Concord-Origin` and `X-Concord-Hops`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hop {
    /// The hub that started the request, when another hub asks.
    pub origin: Option<String>,
    /// How many hubs the request has passed through before this one.
    pub hops: u32,
}

/// What to fetch from each source for one person.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fetch {
    /// Resource types wanted (`None`: all).
    pub types: Option<Vec<String>>,
    /// `_since`, passed through as text.
    pub since: Option<String>,
}

/// A person resolved at the hub: the Patient asked about and where the person's records live.
pub(crate) struct Resolved {
    /// The hub's Patient record the request named.
    pub patient: Value,
    /// (source id, local id) of every record an edge announced.
    pub records: Vec<(String, String)>,
    /// The hub's own Patient ids of the person (for the hub's local data).
    pub hub_records: Vec<String>,
    pub nhs_number: Option<String>,
}

impl Hub {
    /// Makes this node a hub that federates reads across `federation`'s sources.
    pub fn with_federation(mut self, federation: Federation) -> Hub {
        self.parts_mut().federation = Some(Arc::new(federation));
        self
    }

    /// The federation, when this node federates.
    pub fn federation(&self) -> Option<&Federation> {
        self.federation.as_deref()
    }

    /// Finds the golden person of the hub Patient `patient` and every located record. Blocking
    /// (store reads).
    fn resolve_person(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        patient: Value,
    ) -> Result<Resolved, Error> {
        let locations = match self.person_of(patient_id) {
            Some(person) => self.locate(ctx, &person)?,
            None => vec![crate::identity::locator::location(patient_id, &patient)],
        };
        let mut records = Vec::new();
        let mut hub_records = Vec::new();
        let mut nhs_number = None;
        for location in &locations {
            hub_records.push(location.patient.clone());
            for (system, value) in &location.identifiers {
                if let Some(source) = system.strip_prefix(SOURCE_RECORD_SYSTEM) {
                    let record = (source.to_string(), value.clone());
                    if !records.contains(&record) {
                        records.push(record);
                    }
                } else if system == NHS_NUMBER_SYSTEM
                    && nhs_number.is_none()
                    && concord_mpi::nhs_number::NhsNumber::parse(value).is_ok()
                {
                    nhs_number = Some(value.replace(' ', ""));
                }
            }
        }
        Ok(Resolved {
            patient,
            records,
            hub_records,
            nhs_number,
        })
    }

    /// The hub's own data about the person (patient-entered readings, "what matters to me"),
    /// from every hub record of the person, without the index's own resources. Blocking.
    ///
    /// The store's Patient-compartment query, as `$everything` makes it, without `$everything`'s
    /// Patient read, access decision and Bundle: the view's access was decided once for the
    /// person (and its grant masks this data with the sources'), a hub record deleted since the
    /// index located it simply has nothing, and the resources go straight into the merge.
    pub(crate) fn local_data(
        &self,
        ctx: &RequestContext,
        hub_records: &[String],
        fetch: &Fetch,
    ) -> Result<Vec<Resource>, Error> {
        let since = fetch
            .since
            .as_deref()
            .map(crate::search::parse_since)
            .transpose()?;
        let wanted = |t: &str| {
            fetch
                .types
                .as_ref()
                .is_none_or(|list| list.iter().any(|w| w == t))
        };
        let members = concord_search::registry::compartment_types()
            .filter(|t| *t != "Patient" && wanted(t))
            .filter_map(|t| {
                let params = concord_search::registry::patient_compartment_params(t);
                (!params.is_empty()).then(|| {
                    (
                        t.to_string(),
                        params.iter().map(|p| (*p).to_string()).collect(),
                    )
                })
            })
            .collect();
        let mut query = concord_store::CompartmentQuery {
            owner_type: "Patient".into(),
            owner_id: String::new(),
            members,
            since,
            count: self.config.max_count,
            offset: 0,
            snapshot: None,
        };
        query.count = query.count.max(1);
        let mut out = Vec::new();
        for id in hub_records {
            query.owner_id.clone_from(id);
            query.offset = 0;
            // Page by page: a record holds as many resources as its person's care made, and a
            // view that stopped at one page would leave the rest out without saying so.
            loop {
                let page = self.store.compartment(ctx, &query)?;
                // Every later page is read as of the first, so a write meanwhile cannot move a
                // resource from one page to another.
                query.snapshot = Some(page.snapshot);
                let more = page.matches.len() >= query.count as usize;
                for version in page.matches {
                    let Some(body) = version.body else { continue };
                    let Ok(resource) = Resource::from_json(&body) else {
                        continue;
                    };
                    if is_index_resource(&resource) {
                        continue;
                    }
                    out.push(resource);
                }
                if !more {
                    break;
                }
                query.offset += query.count;
            }
        }
        Ok(out)
    }

    /// This hub as a source, for provenance of its own data.
    pub(crate) fn hub_source_info(&self, federation: &Federation, base: &str) -> SourceInfo {
        SourceInfo {
            id: federation.config.origin.clone(),
            name: federation.config.name.clone(),
            ods_code: federation.config.ods_code.clone(),
            kind: SourceKind::Region,
            base_url: base.trim_end_matches('/').to_string(),
            resource_types: Vec::new(),
            freshness: Freshness::Live,
        }
    }

    /// Asks every source that holds the person, and every neighbouring region, in parallel, and
    /// adds this hub's own data. Each answer is masked with the caller's grant and prepared for
    /// the merge as it arrives. Sources are returned in registry order, this hub first.
    pub(crate) async fn gather(
        &self,
        ctx: &RequestContext,
        hop: &Hop,
        patient_id: &str,
        fetch: Fetch,
        base: &str,
    ) -> Result<Gathered, Error> {
        // A node with no sources (an edge) answers from its own data alone.
        let federation = self.federation.clone().unwrap_or_else(|| {
            Arc::new(Federation::new(
                FederationConfig {
                    origin: "local".into(),
                    name: "this server".into(),
                    ods_code: None,
                    max_hops: 0,
                },
                Vec::new(),
            ))
        });
        // Every source's deadline counts from here, so the view as a whole keeps to it.
        let view_started = std::time::Instant::now();
        // The view is as of its start: data ages and the outcome are reckoned from here.
        let now_ms = self.clock.now_ms();
        // Access is decided before any source is asked: a refused view asks no one.
        let (grant, resolved) = self
            .authorize_and_resolve(ctx, "Patient", patient_id)
            .await?;
        let grant = Arc::new(grant);
        // The hub's own data is read while the sources are asked, not before: below, once the
        // calls have sent their requests. A hub holds little of a person (its copies of the
        // sources' Patients, what the person entered), read here in the view's own task. A node
        // with no sources (an edge's own `$summary` or portal view) reads the whole record, which
        // can be large, so it reads on the blocking pool and leaves the async worker to others.
        let whole_record = federation.sources.is_empty();
        let local = async {
            // The first poll only lets the calls go first.
            tokio::task::yield_now().await;
            let started = std::time::Instant::now();
            let local = if whole_record {
                let (hub, ctx, records, fetch) = (
                    self.clone(),
                    ctx.internal(),
                    resolved.hub_records.clone(),
                    fetch.clone(),
                );
                blocking(move || hub.local_data(&ctx, &records, &fetch)).await
            } else {
                inline(|| self.local_data(&ctx.internal(), &resolved.hub_records, &fetch))
            };
            let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            local.map(|local| (local, elapsed))
        };

        let out = federation.outbound(ctx, hop, view_started);
        let types = fetch.types.clone();
        let since = fetch.since.clone();
        let mut calls = Vec::new();
        let mut withheld = 0;
        for source in &federation.sources {
            let info = source.info();
            if !organization_allowed(&grant.filter, info) {
                // The person withheld this organisation's records: it is not asked, and the view
                // says something was withheld without naming what.
                withheld += 1;
                continue;
            }
            if info.kind == SourceKind::Region {
                let source = source.clone();
                let out = out.clone();
                let skip = federation.region_skip(hop, info);
                let nhs = resolved.nhs_number.clone();
                let demographics = demographic_params(&resolved.patient);
                let (types, since) = (types.clone(), since.clone());
                calls.push((
                    info.clone(),
                    Box::pin(async move {
                        if let Some(reason) = skip {
                            return skipped(source.info(), reason);
                        }
                        discover_and_fetch(&source, &out, nhs, demographics, types, since).await
                    })
                        as std::pin::Pin<Box<dyn Future<Output = SourceResult> + Send>>,
                ));
                continue;
            }
            let locals: Vec<String> = resolved
                .records
                .iter()
                .filter(|(s, _)| s == &info.id)
                .map(|(_, l)| l.clone())
                .collect();
            if locals.is_empty() {
                continue;
            }
            let source = source.clone();
            let out = out.clone();
            let (types, since) = (types.clone(), since.clone());
            calls.push((
                info.clone(),
                Box::pin(async move {
                    let mut results = Vec::new();
                    for local in &locals {
                        results.push(
                            source
                                .patient_data(&out, local, types.as_deref(), since.as_deref())
                                .await,
                        );
                    }
                    let mut result = combine(results);
                    keep_own_patient(&mut result, &locals);
                    result
                }),
            ));
        }
        // The sources are asked at once and each answer is read, masked and prepared as soon as
        // it arrives, all inside this view's own task. Spawning a task per source spread one
        // view over both cores, but under load there are views enough to keep every core busy,
        // and a view's answers then moved between threads: a fifth more of the hub's CPU went to
        // waking, stealing and freeing memory another thread had allocated. Dropping the view
        // (the client went away) drops every call still in flight.
        let infos: Vec<SourceInfo> = calls.iter().map(|(info, _)| info.clone()).collect();
        let mut pending: FuturesUnordered<_> = calls
            .into_iter()
            .enumerate()
            .map(|(index, (_, call))| {
                let (hub, grant) = (self, &grant);
                AssertUnwindSafe(async move {
                    let mut result = call.await;
                    // A Concord source's own index (its golden Persons, worklist Tasks and
                    // decision Provenance) is its business, not part of the person's record.
                    result.resources.retain(|r| !is_mpi_resource(r));
                    let withheld = hub.mask_result(grant, &mut result);
                    (index, concord_federation::prepare(result, now_ms), withheld)
                })
                .catch_unwind()
            })
            .collect();
        let answers = async {
            let mut answered: Vec<Option<Prepared>> = infos.iter().map(|_| None).collect();
            let mut withheld = 0;
            while let Some(joined) = pending.next().await {
                if let Ok((index, prepared, masked)) = joined {
                    answered[index] = Some(prepared);
                    withheld += masked;
                }
            }
            (answered, withheld)
        };
        let ((answered, masked), local) = tokio::join!(answers, local);
        withheld += masked;
        let (local, local_elapsed) = local?;
        let mut own = SourceResult {
            source: self.hub_source_info(&federation, base),
            status: SourceStatus::Ok,
            resources: local,
            elapsed_ms: local_elapsed,
            forwarded_issues: Vec::new(),
        };
        withheld += self.mask_result(&grant, &mut own);
        // When anything was withheld (by the mask, or by not asking a withheld organisation),
        // the hub's own result carries the notice, so the view's OperationOutcome says so
        // without saying what.
        if withheld > 0 {
            own.forwarded_issues.push(concord_access::withheld_issue());
        }
        let mut sources = vec![concord_federation::prepare(own, now_ms)];
        // A call can only fail to finish by panicking; its source is then reported as failed,
        // never silently left out.
        sources.extend(answered.into_iter().zip(infos).map(|(prepared, info)| {
            prepared.unwrap_or_else(|| {
                concord_federation::prepare(
                    SourceResult {
                        source: info,
                        status: SourceStatus::Failed {
                            reason: "the hub failed while reading this source's answer".into(),
                        },
                        resources: Vec::new(),
                        elapsed_ms: 0,
                        forwarded_issues: Vec::new(),
                    },
                    now_ms,
                )
            })
        }));
        Ok(Gathered {
            patient: resolved.patient,
            sources,
            now_ms,
        })
    }
}

/// What [`Hub::gather`] found: the hub's Patient, every source's prepared answer (this hub
/// first), and the time the view is as of.
pub(crate) struct Gathered {
    pub patient: Value,
    pub sources: Vec<Prepared>,
    pub now_ms: i64,
}

/// Finds the person at a neighbouring region's hub: the id of one of their records there (that hub
/// federates the whole person from any one), or the result to report when there is none.
pub(crate) async fn discover(
    source: &Source,
    out: &Outbound,
    nhs_number: Option<String>,
    demographics: Option<Vec<(String, String)>>,
) -> Result<(String, u64), SourceResult> {
    let params = match (nhs_number, demographics) {
        (Some(nhs), _) => vec![(
            "identifier".to_string(),
            format!("{NHS_NUMBER_SYSTEM}|{nhs}"),
        )],
        (None, Some(demographics)) => demographics,
        (None, None) => {
            return Err(skipped(
                source.info(),
                "the person has no NHS number and too few demographics to look for them",
            ));
        }
    };
    let found = source.find_patients(out, &params).await;
    if found.status != SourceStatus::Ok {
        return Err(found);
    }
    let first = found
        .resources
        .iter()
        .filter(|r| r.get_str("resourceType") == Some("Patient"))
        .find_map(|r| r.get_str("id").map(str::to_string));
    match first {
        Some(id) => Ok((id, found.elapsed_ms)),
        None => {
            let mut none = skipped(source.info(), "the person is not known in this region");
            none.elapsed_ms = found.elapsed_ms;
            Err(none)
        }
    }
}

/// Finds the person at a neighbouring region's hub and fetches their record there.
async fn discover_and_fetch(
    source: &Source,
    out: &Outbound,
    nhs_number: Option<String>,
    demographics: Option<Vec<(String, String)>>,
    types: Option<Vec<String>>,
    since: Option<String>,
) -> SourceResult {
    match discover(source, out, nhs_number, demographics).await {
        Ok((id, discovery_ms)) => {
            let mut result = source
                .patient_data(out, &id, types.as_deref(), since.as_deref())
                .await;
            result.elapsed_ms += discovery_ms;
            result
        }
        Err(result) => result,
    }
}

/// Keeps only what is about the person asked for. A source that ignores the patient parameter of
/// a search (some servers do, with only a warning) answers with every patient's records; showing
/// them in this person's view would be a serious clinical safety and privacy failure. So a
/// Patient must be one of `local_ids`, and a resource of a Patient-compartment type must refer to
/// one of them; anything else of such a type is left out and the source is reported as `invalid`.
/// Resources outside the compartment (a Medication, a Practitioner) are context, not patient
/// data, and are kept.
pub(crate) fn keep_own_patient(result: &mut SourceResult, local_ids: &[String]) {
    let targets: Vec<String> = local_ids.iter().map(|id| format!("Patient/{id}")).collect();
    let before = result.resources.len();
    // Whether the last type seen is in the compartment: a source's answer comes in runs of one
    // type, and the table's search compares names.
    let mut last_type: (String, bool) = (String::new(), false);
    result.resources.retain(|resource| {
        let resource_type = resource.get_str("resourceType").unwrap_or_default();
        if resource_type == "Patient" {
            return resource
                .get_str("id")
                .is_some_and(|id| local_ids.iter().any(|l| l == id));
        }
        if last_type.0 != resource_type {
            let in_compartment =
                !concord_search::registry::patient_compartment_params(resource_type).is_empty();
            last_type = (resource_type.to_string(), in_compartment);
        }
        if !last_type.1 {
            return true;
        }
        // Nearly every such resource names its patient in `subject` or `patient`; looking
        // there first spares walking the rest (narrative, notes) of the whole record.
        resource.any_reference_first_in(&["subject", "patient"], |reference| {
            refers_to(reference, &targets)
        })
    });
    let dropped = before - result.resources.len();
    if dropped > 0 {
        let reason = format!(
            "the source answered with {dropped} records that are not about this patient (it may not support the patient search parameter); they were left out"
        );
        result.status = match &result.status {
            SourceStatus::Ok => SourceStatus::Invalid { reason },
            other => other.clone(),
        };
    }
}

/// Whether a reference names one of `targets` (`Patient/id`), relative or absolute.
fn refers_to(reference: &str, targets: &[String]) -> bool {
    // Built once: `str::split` builds a searcher per call, which cost more than the search for
    // the few hundred references of a view.
    static HISTORY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("/_history/"));
    let text = HISTORY
        .find(reference.as_bytes())
        .map_or(reference, |at| &reference[..at]);
    targets.iter().any(|t| {
        text.strip_suffix(t.as_str())
            .is_some_and(|head| head.is_empty() || head.ends_with('/'))
    })
}

/// Exact-demographics discovery parameters, used only when there is no NHS number: family name,
/// given name and date of birth must all be present, so a neighbour is never asked a vague
/// question whose answers could be someone else.
pub(crate) fn demographic_params(patient: &Value) -> Option<Vec<(String, String)>> {
    let name = patient.get("name")?.as_array()?.first()?;
    let family = name.get("family")?.as_str()?;
    let given = name.get("given")?.as_array()?.first()?.as_str()?;
    let birth_date = patient.get("birthDate")?.as_str()?;
    Some(vec![
        ("family:exact".into(), family.to_string()),
        ("given".into(), given.to_string()),
        ("birthdate".into(), birth_date.to_string()),
    ])
}

pub(crate) fn skipped(info: &SourceInfo, reason: &str) -> SourceResult {
    SourceResult {
        source: info.clone(),
        status: SourceStatus::Skipped {
            reason: reason.to_string(),
        },
        resources: Vec::new(),
        elapsed_ms: 0,
        forwarded_issues: Vec::new(),
    }
}

/// One source holding several records of the person (a duplicate at the source) is one result:
/// every record's resources, the worst status, and the longest time.
fn combine(results: Vec<SourceResult>) -> SourceResult {
    let mut iter = results.into_iter();
    let mut first = iter
        .next()
        .expect("a source is only asked for at least one record");
    for next in iter {
        first.resources.extend(next.resources);
        first.forwarded_issues.extend(next.forwarded_issues);
        first.elapsed_ms = first.elapsed_ms.max(next.elapsed_ms);
        if first.status == SourceStatus::Ok {
            first.status = next.status;
        }
    }
    first
}

/// A resource the master patient index keeps about the person (golden Person, worklist Task,
/// decision Provenance), which is the index's business, not part of the record.
pub(crate) fn is_mpi_resource(resource: &Resource) -> bool {
    // `meta.tag` is parsed and kept, not read from its text: the mask reads it too.
    resource
        .get_in("meta", "tag")
        .and_then(Value::as_array)
        .is_some_and(|tags| {
            tags.iter().any(|t| {
                t.get("system").and_then(Value::as_str) == Some(crate::identity::MPI_SYSTEM)
            })
        })
}

/// What of the hub's own data is not the record: the index's resources, and the hub's copies of
/// the sources' Patients (the sources' own Patients are in the view).
fn is_index_resource(resource: &Resource) -> bool {
    is_mpi_resource(resource) || resource.get_str("resourceType") == Some("Patient")
}

/// Runs short store reads on the async worker itself ([`Hub::authorize_and_resolve`]). Only for
/// work that never waits long: `concord`'s `open_store` keeps a reader connection for every
/// worker besides those the blocking pool holds, and the identity links are read without
/// waiting for linking. A panic is an internal error, as on the blocking pool.
fn inline<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("a federated view's store reads panicked");
        Err(Error::internal())
    })
}

/// Runs blocking store work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::internal())?
}

/// Reads `_count` and `_offset` for paging over a merged result.
pub(crate) fn page(
    params: &[(String, String)],
    default: u32,
    max: u32,
) -> Result<(usize, usize), Error> {
    let mut count = default;
    let mut offset = 0u32;
    for (name, value) in params {
        match name.as_str() {
            "_count" => {
                count = value
                    .parse()
                    .map_err(|_| Error::invalid("_count must be a whole number").at("_count"))?;
            }
            "_offset" => {
                offset = value
                    .parse()
                    .map_err(|_| Error::invalid("_offset must be a whole number").at("_offset"))?;
            }
            _ => {}
        }
    }
    Ok((offset as usize, count.min(max) as usize))
}
