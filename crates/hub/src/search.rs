//! Search: type and system level, by GET or POST `_search`
//! (<https://hl7.org/fhir/R4/search.html>, <https://hl7.org/fhir/R4/http.html#search>).
//!
//! Owns: turning parameters into a store query, strict/lenient handling of unknown parameters
//! (`Prefer: handling`), page sizes, `self`/`next`/`previous` links that carry the first page's
//! snapshot so they stay correct while others write, and `_summary` / `_elements` shaping.

use concord_access::Interaction;
use concord_fhir::outcome::operation_outcome;
use concord_fhir::{Error, ErrorKind, Issue, IssueType, RequestContext};
use concord_search::parse::parse_search;
use concord_search::query::{SearchQuery, Summary};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::Hub;
use crate::bundle::{Bundle, Entry, EntrySearch, Link, raw, search_entry};
use crate::write::ensure_type;

/// Parameters Concord uses for paging; they are rewritten, not copied, into page links.
const PAGING: &[&str] = &["_count", "_offset", "_snapshot"];

/// Characters left as they are in link query strings (RFC 3986 unreserved plus a few that FHIR
/// values commonly carry and that are safe in a query).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'/');

/// Splits an `application/x-www-form-urlencoded` query string into decoded pairs.
pub fn parse_query_string(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Parses `_since` (history and `$everything`): an instant, or any date-like value, whose start
/// is the bound.
pub(crate) fn parse_since(value: &str) -> Result<i64, Error> {
    concord_fhir::primitive::search_date_range(value)
        .map(|range| range.low)
        .ok_or_else(|| Error::invalid(format!("_since: '{value}' is not a valid instant")))
}

/// Page size and position from `_count`, `_offset` and `_snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageParams {
    pub count: u32,
    pub offset: u32,
    pub snapshot: Option<i64>,
}

impl PageParams {
    pub fn from_params(
        params: &[(String, String)],
        default_count: u32,
        max_count: u32,
    ) -> Result<PageParams, Error> {
        let mut page = PageParams {
            count: default_count,
            offset: 0,
            snapshot: None,
        };
        for (name, value) in params {
            match name.as_str() {
                "_count" => {
                    let n: u32 = value.parse().map_err(|_| {
                        Error::invalid(format!("_count: '{value}' is not a non-negative integer"))
                    })?;
                    page.count = n.min(max_count);
                }
                "_offset" => {
                    page.offset = value.parse().map_err(|_| {
                        Error::invalid(format!("_offset: '{value}' is not a non-negative integer"))
                    })?;
                }
                "_snapshot" => {
                    page.snapshot = Some(value.parse().map_err(|_| {
                        Error::invalid(format!(
                            "_snapshot: '{value}' is not a snapshot this server issued"
                        ))
                    })?);
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

/// `self`, `next` and `previous` links for a page. `path` is relative to `base`.
pub fn page_links(
    base: &str,
    path: &str,
    params: &[(String, String)],
    page: &PageParams,
    snapshot: i64,
    total: Option<u64>,
    returned: usize,
) -> Vec<Link> {
    let kept: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| !PAGING.contains(&k.as_str()) && k != "_format" && k != "_pretty")
        .collect();
    let url = |offset: u32| {
        let mut query: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        query.push(format!("_count={}", page.count));
        query.push(format!("_offset={offset}"));
        query.push(format!("_snapshot={snapshot}"));
        format!("{base}/{path}?{}", query.join("&"))
    };
    let mut links = vec![Link {
        relation: "self",
        url: url(page.offset),
    }];
    let has_more = match total {
        Some(total) => u64::from(page.offset) + u64::from(page.count) < total,
        None => returned >= page.count as usize,
    };
    // With `_count=0` the next page would be this one again: a client following it would loop.
    if has_more && page.count > 0 {
        links.push(Link {
            relation: "next",
            url: url(page.offset + page.count),
        });
    }
    if page.offset > 0 && page.count > 0 {
        links.push(Link {
            relation: "previous",
            url: url(page.offset.saturating_sub(page.count)),
        });
    }
    links
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// How Concord treats parameters it does not know (`Prefer: handling=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    /// Ignore them and say so in the searchset's OperationOutcome.
    #[default]
    Lenient,
    /// Reject the search.
    Strict,
}

impl Hub {
    /// Type (`resource_type` given) or system search. `path` is the request path relative to the
    /// base, for links (`Patient` or empty).
    pub fn search(
        &self,
        ctx: &RequestContext,
        resource_type: Option<&str>,
        params: &[(String, String)],
        handling: Handling,
        base: &str,
    ) -> Result<Bundle, Error> {
        if let Some(t) = resource_type {
            ensure_type(t)?;
        }
        if resource_type == Some("AuditEvent") && self.audit.is_some() {
            // The audit trail is kept apart from the record, append-only; it answers itself.
            return self.audit_search(ctx, params, base);
        }
        let parsed = parse_search(resource_type, params)?;
        if handling == Handling::Strict && !parsed.unknown.is_empty() {
            // The lenient warnings say "ignored"; under strict handling they are errors.
            let issues = parsed
                .unknown
                .iter()
                .map(|name| {
                    Issue::error(
                        IssueType::NotSupported,
                        format!(
                            "the search parameter '{name}' is not known or not supported here (Prefer: handling=strict)"
                        ),
                    )
                })
                .collect();
            return Err(Error::with_issues(ErrorKind::Invalid, issues));
        }
        let page =
            PageParams::from_params(params, self.config.default_count, self.config.max_count)?;
        let query = SearchQuery {
            count: Some(page.count),
            offset: page.offset,
            snapshot: page.snapshot,
            ..parsed.query
        };
        let trusted = crate::access::is_trusted_system(ctx);
        if !trusted && let Some(patient) = named_patient(params) {
            // A search about one person is decided up front, so a refusal says why (and how to
            // break glass) instead of looking like an empty record.
            if resource_type == Some("Patient") || resource_type == Some("Person") {
                // Looking a person up is decided per match below.
            } else {
                self.authorize(
                    ctx,
                    resource_type.unwrap_or("Patient"),
                    Interaction::Search,
                    Some(&patient),
                )?;
            }
        }
        if !trusted
            && resource_type == Some("Task")
            && params.iter().any(|(name, value)| {
                name == "code"
                    && value.contains(crate::identity::MPI_SYSTEM)
                    && value.ends_with(crate::identity::POSSIBLE_MATCH)
            })
        {
            // A search for the index's worklist is decided up front too: anyone but a data
            // steward is told they may not, rather than shown an empty worklist.
            self.authorize_worklist(ctx)?;
        }
        let mut result = self.store.search(ctx, &query)?;
        let snapshot = Some(result.snapshot);
        let withheld =
            self.filter_versions(ctx, Interaction::Search, &mut result.matches, snapshot)
                + self.filter_versions(ctx, Interaction::Read, &mut result.included, snapshot);
        let mut bundle = Bundle::new("searchset", self.clock.now_ms());
        // A caller who may see only some people's records does not learn how many others match.
        bundle.total = if trusted { result.total } else { None };
        let path = resource_type.unwrap_or("");
        bundle.link = page_links(
            base,
            path,
            params,
            &page,
            result.snapshot,
            result.total,
            result.matches.len(),
        );
        if query.summary == Some(Summary::Count) {
            // `_summary=count` returns no entries, so there are no pages to follow.
            bundle.link.retain(|l| l.relation == "self");
        }
        let shape = Shape::of(&query);
        for version in &result.matches {
            bundle
                .entry
                .push(search_entry(base, version, "match", shape.as_ref())?);
        }
        for version in &result.included {
            bundle
                .entry
                .push(search_entry(base, version, "include", None)?);
        }
        push_outcome(&mut bundle, &parsed.issues)?;
        if withheld > 0 {
            push_withheld(&mut bundle)?;
        }
        Ok(bundle)
    }
}

/// The one Patient a search is about, when its `patient` or `subject` parameter names exactly
/// one (`Patient/123` or `123`).
fn named_patient(params: &[(String, String)]) -> Option<String> {
    let mut found = None;
    for (name, value) in params {
        let base = name.split(':').next().unwrap_or_default();
        if !matches!(base, "patient" | "subject") || name.contains('.') {
            continue;
        }
        if value.contains(',') || found.is_some() {
            return None;
        }
        let id = value.strip_prefix("Patient/").unwrap_or(value);
        if id.contains('/') {
            return None;
        }
        found = Some(id.to_string());
    }
    found
}

/// Adds the notice that some information was withheld (not what, nor how much).
pub(crate) fn push_withheld(bundle: &mut Bundle) -> Result<(), Error> {
    let outcome = serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [concord_access::withheld_issue()],
    });
    bundle.entry.push(Entry {
        resource: Some(raw(outcome.to_string())?),
        search: Some(EntrySearch::mode("outcome")),
        ..Entry::default()
    });
    Ok(())
}

/// Adds the warnings about ignored parameters as an `outcome` entry.
pub(crate) fn push_outcome(bundle: &mut Bundle, issues: &[Issue]) -> Result<(), Error> {
    if issues.is_empty() {
        return Ok(());
    }
    let outcome = operation_outcome(issues);
    bundle.entry.push(Entry {
        resource: Some(raw(outcome.to_string())?),
        search: Some(EntrySearch::mode("outcome")),
        ..Entry::default()
    });
    Ok(())
}

/// `_summary` and `_elements` applied to one resource
/// (<https://hl7.org/fhir/R4/search.html#summary>, `#elements`).
#[derive(Debug, Clone)]
pub struct Shape {
    summary: Option<Summary>,
    elements: Vec<String>,
}

impl Shape {
    pub fn of(query: &SearchQuery) -> Option<Shape> {
        let summary = query
            .summary
            .filter(|s| matches!(s, Summary::True | Summary::Text | Summary::Data));
        if summary.is_none() && query.elements.is_empty() {
            return None;
        }
        Some(Shape {
            summary,
            elements: query.elements.clone(),
        })
    }

    pub fn apply(&self, body: &str) -> Result<String, Error> {
        let mut resource: Value = serde_json::from_str(body).map_err(|_| Error::internal())?;
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Value::Object(map) = &mut resource {
            let keep = |name: &str| -> bool {
                if matches!(name, "resourceType" | "id" | "meta") {
                    return true;
                }
                match self.summary {
                    Some(Summary::True) => {
                        concord_fhir::structure::is_summary(&resource_type, name)
                    }
                    Some(Summary::Text) => {
                        name == "text"
                            || concord_fhir::structure::is_mandatory(&resource_type, name)
                    }
                    Some(Summary::Data) => name != "text",
                    _ => self.elements.iter().any(|e| {
                        e == name
                            || (name.starts_with(e.as_str())
                                && concord_fhir::structure::is_choice_of(&resource_type, e, name))
                    }),
                }
            };
            map.retain(|name, _| keep(name.trim_start_matches('_')));
            mark_subsetted(map);
        }
        serde_json::to_string(&resource).map_err(|_| Error::internal())
    }
}

/// Tags a shaped resource SUBSETTED so no client mistakes it for the whole resource.
fn mark_subsetted(map: &mut serde_json::Map<String, Value>) {
    let meta = map
        .entry("meta")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Value::Object(meta) = meta {
        let tags = meta
            .entry("tag")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(tags) = tags {
            tags.push(serde_json::json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED"
            }));
        }
    }
}
