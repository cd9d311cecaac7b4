//! Federated `Patient/[id]/$everything` (<https://hl7.org/fhir/R4/patient-operation-everything.html>):
//! the whole record of the person the hub Patient belongs to, from every source that holds them.
//!
//! Owns: reading the operation's parameters, and shaping the merged result as a searchset whose
//! last entry is the per-source OperationOutcome (`search.mode = outcome`). Paging: the merged set
//! is ordered deterministically, and `_count`/`_offset` page over it; each page asks the sources
//! again (nothing is cached), so pages stay consistent while the sources do not change.
//! Does not: merge (`concord-federation`) or fetch (`super::gather`).

use concord_federation::Merged;
use concord_fhir::{Error, RequestContext};

use super::{Fetch, Hop, page};
use crate::Hub;
use crate::bundle::{Bundle, Entry, EntrySearch, Link, raw};

impl Hub {
    /// `GET [base]/Patient/[id]/$everything` on a hub: every source's data for the person.
    pub async fn federated_everything(
        &self,
        ctx: &RequestContext,
        hop: &Hop,
        patient_id: &str,
        params: &[(String, String)],
        base: &str,
    ) -> Result<Bundle, Error> {
        let mut fetch = Fetch::default();
        for (name, value) in params {
            match name.as_str() {
                "_since" => {
                    crate::search::parse_since(value)?;
                    fetch.since = Some(value.clone());
                }
                "_type" => {
                    let list: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect();
                    if let Some(bad) = list
                        .iter()
                        .find(|t| !concord_fhir::resource::is_resource_type(t))
                    {
                        return Err(Error::invalid(format!(
                            "_type: '{bad}' is not a FHIR R4 resource type"
                        ))
                        .at("_type"));
                    }
                    fetch.types.get_or_insert_with(Vec::new).extend(list);
                }
                "_count" | "_offset" | "_format" | "_pretty" => {}
                other => {
                    return Err(Error::invalid(format!(
                        "unknown $everything parameter '{other}'"
                    )));
                }
            }
        }
        let (offset, count) = page(params, self.config.default_count, self.config.max_count)?;
        let gathered = self.gather(ctx, hop, patient_id, fetch, base).await?;
        let merged = concord_federation::merge_prepared(gathered.sources, gathered.now_ms);
        searchset(
            gathered.now_ms,
            merged,
            base,
            &format!("Patient/{patient_id}/$everything"),
            params,
            offset,
            count,
        )
    }
}

/// A searchset page over a merged result, with the sources' OperationOutcome as the last entry of
/// every page (so a client reading any page learns which sources were missing).
pub(crate) fn searchset(
    now_ms: i64,
    merged: Merged,
    base: &str,
    path: &str,
    params: &[(String, String)],
    offset: usize,
    count: usize,
) -> Result<Bundle, Error> {
    let total = merged.entries.len();
    let mut bundle = Bundle::new("searchset", now_ms);
    bundle.total = Some(total as u64);
    bundle.link = links(base, path, params, offset, count, total);
    for entry in merged.entries.into_iter().skip(offset).take(count) {
        bundle.entry.push(Entry {
            full_url: Some(entry.full_url),
            resource: Some(entry.resource.to_raw().ok_or_else(Error::internal)?),
            search: Some(EntrySearch::mode("match")),
            ..Entry::default()
        });
    }
    bundle.entry.push(Entry {
        full_url: Some(format!("urn:uuid:{}", uuid::Uuid::new_v4())),
        resource: Some(to_raw(&merged.outcome)?),
        search: Some(EntrySearch::mode("outcome")),
        ..Entry::default()
    });
    Ok(bundle)
}

pub(crate) fn to_raw(
    value: &impl serde::Serialize,
) -> Result<Box<serde_json::value::RawValue>, Error> {
    raw(serde_json::to_string(value).map_err(|_| Error::internal())?)
}

fn links(
    base: &str,
    path: &str,
    params: &[(String, String)],
    offset: usize,
    count: usize,
    total: usize,
) -> Vec<Link> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let kept: Vec<String> = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "_count" | "_offset" | "_format" | "_pretty"))
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect();
    let url = |offset: usize| {
        let mut query = kept.clone();
        query.push(format!("_count={count}"));
        query.push(format!("_offset={offset}"));
        format!("{base}/{path}?{}", query.join("&"))
    };
    let mut links = vec![Link {
        relation: "self",
        url: url(offset),
    }];
    if count > 0 && offset + count < total {
        links.push(Link {
            relation: "next",
            url: url(offset + count),
        });
    }
    if count > 0 && offset > 0 {
        links.push(Link {
            relation: "previous",
            url: url(offset.saturating_sub(count)),
        });
    }
    links
}
