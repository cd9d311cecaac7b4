//! Federated patient-scoped search (`[base]/Observation?patient=[id]&code=...`,
//! <https://hl7.org/fhir/R4/search.html>): the same search at every source that holds the person,
//! with the patient parameter rewritten to each source's local id, merged and paged.
//!
//! Owns: deciding which searches federate (a `patient` or `subject` parameter naming one hub
//! Patient, on a type other than the index's own), the rewrite (at a neighbouring region, to the
//! record found there by NHS number), and the merge into one searchset.
//! Does not: evaluate search parameters (each source does its own search) or fetch over the
//! wire (`concord-source`). `_sort` is not applied across sources: the merged set keeps the
//! federation's consistent order (date descending), and the outcome says so.

use std::sync::Arc;

use concord_federation::{SourceKind, SourceResult, SourceStatus};
use concord_fhir::{Error, RequestContext};

use super::{Hop, blocking, page};
use crate::Hub;
use crate::bundle::Bundle;

/// Types that live at the hub itself and are never federated.
const HUB_TYPES: &[&str] = &[
    "Patient",
    "Person",
    "Task",
    "Provenance",
    "AuditEvent",
    "Consent",
];

/// Most resources asked of one source for one search.
const PER_SOURCE_LIMIT: usize = 1000;

impl Hub {
    /// The hub Patient a search is scoped to, when this search is to be federated.
    pub fn federated_search_patient(
        &self,
        resource_type: &str,
        params: &[(String, String)],
    ) -> Option<String> {
        self.federation.as_ref()?;
        if HUB_TYPES.contains(&resource_type) {
            return None;
        }
        params.iter().find_map(|(name, value)| {
            if name != "patient" && name != "subject" && name != "subject:Patient" {
                return None;
            }
            let id = value.strip_prefix("Patient/").unwrap_or(value);
            (!id.is_empty() && !id.contains(',') && !id.contains('/')).then(|| id.to_string())
        })
    }

    /// `GET [base]/[type]?patient=[id]&...` on a hub.
    pub async fn federated_search(
        &self,
        ctx: &RequestContext,
        hop: &Hop,
        resource_type: &str,
        patient_id: &str,
        params: &[(String, String)],
        base: &str,
    ) -> Result<Bundle, Error> {
        let federation = self
            .federation
            .clone()
            .ok_or_else(|| Error::not_supported("this node does not federate any sources"))?;
        let (offset, count) = page(params, self.config.default_count, self.config.max_count)?;
        let passed: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "patient"
                        | "subject"
                        | "subject:Patient"
                        | "_count"
                        | "_offset"
                        | "_format"
                        | "_pretty"
                        | "_sort"
                        | "_total"
                )
            })
            .cloned()
            .collect();

        // Every source's deadline counts from here, so the search as a whole keeps to it.
        let view_started = std::time::Instant::now();
        let (grant, resolved) = self
            .authorize_and_resolve(ctx, resource_type, patient_id)
            .await?;
        let hub = self.clone();
        let (ctx_owned, type_owned, passed_owned, base_owned) = (
            ctx.internal(),
            resource_type.to_string(),
            passed.clone(),
            base.to_string(),
        );
        let started = std::time::Instant::now();
        let records = resolved.hub_records.clone();
        let local = blocking(move || {
            let mut local = Vec::new();
            for record in &records {
                let mut params = passed_owned.clone();
                params.push(("patient".into(), format!("Patient/{record}")));
                params.push(("_count".into(), hub.config.max_count.to_string()));
                let bundle = hub.search(
                    &ctx_owned,
                    Some(&type_owned),
                    &params,
                    crate::search::Handling::Lenient,
                    &base_owned,
                )?;
                for entry in bundle.entry {
                    if let Some(raw) = entry.resource
                        && let Ok(resource) = concord_federation::Resource::from_json(raw.get())
                        && entry.search.as_ref().is_some_and(|s| s.mode == "match")
                    {
                        local.push(resource);
                    }
                }
            }
            Ok(local)
        })
        .await?;
        let mut results = vec![SourceResult {
            source: self.hub_source_info(&federation, base),
            status: SourceStatus::Ok,
            resources: local,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            forwarded_issues: Vec::new(),
        }];
        let out = federation.outbound(ctx, hop, view_started);
        let mut calls: Vec<std::pin::Pin<Box<dyn Future<Output = SourceResult> + Send>>> =
            Vec::new();
        let mut withheld = 0;
        for source in &federation.sources {
            let source: Arc<concord_source::Source> = source.clone();
            if !super::organization_allowed(&grant.filter, source.info()) {
                withheld += 1;
                continue;
            }
            if source.info().kind == SourceKind::Region {
                // The same search at a neighbouring region, for the person found there by NHS
                // number; never past the hop limit, so hubs that list each other never loop.
                let out = out.clone();
                let mut params = passed.clone();
                let resource_type = resource_type.to_string();
                let skip = federation.region_skip(hop, source.info());
                let nhs = resolved.nhs_number.clone();
                let demographics = super::demographic_params(&resolved.patient);
                calls.push(Box::pin(async move {
                    if let Some(reason) = skip {
                        return super::skipped(source.info(), reason);
                    }
                    match super::discover(&source, &out, nhs, demographics).await {
                        Ok((id, discovery_ms)) => {
                            params.push(("patient".into(), id));
                            let mut result = source
                                .search(&out, &resource_type, &params, PER_SOURCE_LIMIT)
                                .await;
                            result.elapsed_ms += discovery_ms;
                            result
                        }
                        Err(result) => result,
                    }
                }));
                continue;
            }
            let locals: Vec<String> = resolved
                .records
                .iter()
                .filter(|(s, _)| s == &source.info().id)
                .map(|(_, l)| l.clone())
                .collect();
            if locals.is_empty() {
                continue;
            }
            let out = out.clone();
            let mut params = passed.clone();
            params.push(("patient".into(), locals.join(",")));
            let resource_type = resource_type.to_string();
            calls.push(Box::pin(async move {
                let mut result = source
                    .search(&out, &resource_type, &params, PER_SOURCE_LIMIT)
                    .await;
                super::keep_own_patient(&mut result, &locals);
                result
            }));
        }
        for mut result in futures_util::future::join_all(calls).await {
            result.resources.retain(|r| !super::is_mpi_resource(r));
            results.push(result);
        }
        self.mask_results(&grant, &mut results, withheld);
        let merged = concord_federation::merge(results, self.clock.now_ms());
        super::everything::searchset(
            self.clock.now_ms(),
            merged,
            base,
            resource_type,
            params,
            offset,
            count,
        )
    }
}
