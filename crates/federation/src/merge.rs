//! The merge: every source's answer in, one tagged, de-duplicated, ordered set and one
//! OperationOutcome out.
//!
//! Owns [`merge`], its two steps [`prepare`] (one source's answer, alone) and [`merge_prepared`]
//! (across the sources), [`Merged`] and [`MergedEntry`]: skipping values that are not resources,
//! collapsing a source's repeats of one resource, the order sources and resources are processed
//! in (which makes the result independent of the order a source sent its resources), fullUrls,
//! and the final order. Does not: build the response Bundle (the hub does) or the summary
//! document (see [`crate::summary`]).

use std::cmp::{Ordering, Reverse};

use serde_json::Value;

use crate::dedup::{Dedup, Kept, Keyed};
use crate::facts::instant_key;
use crate::outcome::{self, SourceReport};
use crate::provenance::{Accepted, SourceTags, accept, data_age_secs, origin_display, tag};
use crate::resource::Resource;
use crate::source::SourceResult;

/// The merged answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The resources to show, in display order.
    pub entries: Vec<MergedEntry>,
    /// One OperationOutcome with an issue per source consulted, in input order.
    pub outcome: Value,
}

/// One resource to show.
#[derive(Clone, Debug, PartialEq)]
pub struct MergedEntry {
    /// `{base_url}/{resourceType}/{id}` of the source it came through, so relative references
    /// inside it resolve against that source.
    pub full_url: String,
    pub resource: Resource,
    /// The configuration id of the source it came through (the region, for forwarded data).
    pub source_id: String,
    /// The name of the organisation that holds the record: its source's, or for data a region
    /// hub forwarded, the one the region named. `None` when nothing names one.
    pub origin: Option<String>,
    /// What it is in words, for the summary's narrative, when the merge's reading of it to
    /// match it settled them (the code's words and an observation's value); `None` leaves the
    /// narrative to read the resource.
    pub label: Option<String>,
    /// When its clinical date starts, in milliseconds since the epoch (UTC), for ordering; `None`
    /// when it has none that reads as a date.
    pub date_ms: Option<i64>,
}

/// How much to trust one copy of a resource over another copy with the same type and id from the
/// same source (paging overlapped while the data changed): the higher version, then the later
/// update, then, so the choice never depends on arrival order, the copy whose JSON sorts first.
fn recency(accepted: &Accepted) -> (Option<u64>, Option<i64>, Reverse<Vec<u8>>) {
    let resource = &accepted.resource;
    let version = resource
        .get_in("meta", "versionId")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok());
    let updated = resource
        .get_in("meta", "lastUpdated")
        .and_then(Value::as_str)
        .and_then(instant_key);
    // The text the serializer writes, written without checking unread members again.
    let mut text = Vec::new();
    accepted.resource.write_json(&mut text);
    (version, updated, Reverse(text))
}

/// Merges what the sources answered, as of `now_ms` (Unix epoch milliseconds, for data ages).
///
/// Sources are processed in input order (the first listed wins a duplicate); each source's
/// resources are processed sorted by type and id, whatever order they arrived in. The same as
/// [`prepare`] on each answer, then [`merge_prepared`].
pub fn merge(results: Vec<SourceResult>, now_ms: i64) -> Merged {
    let prepared = results
        .into_iter()
        .map(|result| prepare(result, now_ms))
        .collect();
    merge_prepared(prepared, now_ms)
}

/// One source's answer made ready for the merge: its resources accepted, collapsed to one copy
/// each, tagged with their provenance, and keyed for matching and ordering. Preparing needs
/// nothing from the other sources, so a caller can prepare each answer as it arrives, on any
/// thread (the hub does, so a view's CPU work is spread over its cores).
pub struct Prepared {
    report: SourceReport,
    tags: SourceTags,
    /// The source's base URL without a trailing `/`, for fullUrls.
    base: String,
    resources: Vec<Keyed>,
}

/// Prepares one source's answer, as of `now_ms` (for a batch source's data age).
pub fn prepare(result: SourceResult, now_ms: i64) -> Prepared {
    let SourceResult {
        source,
        status,
        resources,
        elapsed_ms,
        forwarded_issues,
    } = result;
    let mut rejected = 0;
    let mut all: Vec<Accepted> = Vec::with_capacity(resources.len());
    for value in resources {
        match accept(value) {
            Some(accepted) => all.push(accepted),
            None => rejected += 1,
        }
    }
    // Ordered by type and id, and one of each: the most recent copy, else the first sent. A
    // stable sort keeps copies in the order they came, and needs no key copied out of them.
    all.sort_by(|a, b| {
        (a.resource_type.as_str(), a.id.as_str()).cmp(&(b.resource_type.as_str(), b.id.as_str()))
    });
    let mut distinct: Vec<Accepted> = Vec::with_capacity(all.len());
    for accepted in all {
        match distinct.last_mut() {
            Some(kept)
                if kept.resource_type == accepted.resource_type && kept.id == accepted.id =>
            {
                if recency(&accepted) > recency(kept) {
                    *kept = accepted;
                }
            }
            _ => distinct.push(accepted),
        }
    }
    let accepted = distinct.len();
    let tags = SourceTags::new(&source, data_age_secs(&source.freshness, now_ms));
    let resources = distinct
        .into_iter()
        .map(|mut resource| {
            let only_own_tags = tag(&mut resource.resource, &tags);
            Keyed::new(resource, only_own_tags)
        })
        .collect();
    let (forwarded, rejected_forwarded): (Vec<Value>, Vec<Value>) =
        forwarded_issues.into_iter().partition(Value::is_object);
    Prepared {
        tags,
        base: source.base_url.trim_end_matches('/').to_string(),
        report: SourceReport {
            info: source,
            status,
            elapsed_ms,
            accepted,
            rejected,
            forwarded,
            rejected_forwarded: rejected_forwarded.len(),
        },
        resources,
    }
}

/// Merges prepared answers, as of `now_ms` (for the data ages the outcome names), in input
/// order as [`merge`] does.
pub fn merge_prepared(prepared: Vec<Prepared>, now_ms: i64) -> Merged {
    let mut dedup = Dedup::default();
    let mut reports = Vec::with_capacity(prepared.len());
    let mut sources = Vec::with_capacity(prepared.len());
    for source in prepared {
        let source_index = dedup.add_source(source.tags);
        for resource in source.resources {
            dedup.offer(source_index, resource);
        }
        sources.push((
            source.report.info.id.clone(),
            source.base,
            source.report.info.name.clone(),
        ));
        reports.push(source.report);
    }
    let outcome = outcome::build(&reports, now_ms);

    let kept = dedup.into_kept();
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by(|&a, &b| display_order(&kept[a], &kept[b], &sources));
    let mut slots: Vec<Option<Kept>> = kept.into_iter().map(Some).collect();
    let entries = order
        .into_iter()
        .filter_map(|i| slots[i].take())
        .map(|k| {
            let (source_id, base, name) = &sources[k.source_index];
            MergedEntry {
                full_url: [base.as_str(), "/", &k.resource_type, "/", &k.id].concat(),
                label: k.label,
                date_ms: k.date_ms,
                origin: if k.own_origin {
                    Some(name.clone())
                } else {
                    origin_display(&k.resource)
                },
                resource: k.resource,
                source_id: source_id.clone(),
            }
        })
        .collect();
    Merged { entries, outcome }
}

/// Patient first, then by resource type, then clinical date descending (undated last), then the
/// id of the source and the resource; the source's position settles the only remaining tie (two
/// sources configured with one id), so the order is total and the same for the same input.
fn display_order(a: &Kept, b: &Kept, sources: &[(String, String, String)]) -> Ordering {
    let source_id = |k: &Kept| sources[k.source_index].0.as_str();
    (a.resource_type != "Patient")
        .cmp(&(b.resource_type != "Patient"))
        .then_with(|| a.resource_type.cmp(&b.resource_type))
        // Dated first, newest first.
        .then_with(|| {
            (a.date_ms.is_none(), Reverse(a.date_ms))
                .cmp(&(b.date_ms.is_none(), Reverse(b.date_ms)))
        })
        .then_with(|| source_id(a).cmp(source_id(b)))
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.source_index.cmp(&b.source_index))
}
