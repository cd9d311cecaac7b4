//! Response Bundles (<https://hl7.org/fhir/R4/bundle.html>): searchset, history, batch-response
//! and transaction-response.
//!
//! Owns: the Bundle shape and the conversion of stored versions into entries. Stored resources are
//! spliced in as raw JSON, so a search page is not parsed and re-serialised; only `_summary` and
//! `_elements` parse a body. Does not: decide what goes into a Bundle.

use concord_fhir::Error;
use concord_fhir::primitive::format_instant;
use concord_store::{Method, StoredVersion};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub resource_type: &'static str,
    pub id: String,
    pub meta: BundleMeta,
    #[serde(rename = "type")]
    pub bundle_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleMeta {
    pub last_updated: String,
}

#[derive(Debug, Serialize)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<EntrySearch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<EntryRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<EntryResponse>,
}

#[derive(Debug, Default, Serialize)]
pub struct EntrySearch {
    /// Extensions on the search result, e.g. the `$match` grade.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<serde_json::Value>,
    pub mode: &'static str,
    /// Relevance from 0 to 1 (`$match` scores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<serde_json::Number>,
}

impl EntrySearch {
    pub fn mode(mode: &'static str) -> EntrySearch {
        EntrySearch {
            mode,
            ..EntrySearch::default()
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EntryRequest {
    pub method: &'static str,
    pub url: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryResponse {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Box<RawValue>>,
}

impl Bundle {
    pub fn new(bundle_type: &'static str, now_ms: i64) -> Bundle {
        Bundle {
            resource_type: "Bundle",
            id: uuid::Uuid::new_v4().to_string(),
            meta: BundleMeta {
                last_updated: format_instant(now_ms),
            },
            bundle_type,
            total: None,
            link: Vec::new(),
            entry: Vec::new(),
        }
    }

    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string(self).map_err(|_| Error::internal())
    }
}

/// `W/"3"`.
pub fn etag(version: &StoredVersion) -> String {
    format!("W/\"{}\"", version.version_id)
}

/// `Type/id/_history/v`.
pub fn location(version: &StoredVersion) -> String {
    format!(
        "{}/{}/_history/{}",
        version.resource_type, version.id, version.version_id
    )
}

pub fn full_url(base: &str, version: &StoredVersion) -> String {
    format!("{base}/{}/{}", version.resource_type, version.id)
}

/// Wraps JSON text that is known to be valid (it came from the store or from serde).
pub fn raw(text: String) -> Result<Box<RawValue>, Error> {
    RawValue::from_string(text).map_err(|_| Error::internal())
}

/// A searchset entry for a stored version, its body transformed by `shape` when given.
pub fn search_entry(
    base: &str,
    version: &StoredVersion,
    mode: &'static str,
    shape: Option<&crate::search::Shape>,
) -> Result<Entry, Error> {
    let body = version.body.clone().ok_or_else(Error::internal)?;
    let body = match shape {
        Some(shape) => shape.apply(&body)?,
        None => body,
    };
    Ok(Entry {
        full_url: Some(full_url(base, version)),
        resource: Some(raw(body)?),
        search: Some(EntrySearch::mode(mode)),
        ..Entry::default()
    })
}

/// A history entry: the version (absent for a deletion), the request that made it and its result.
pub fn history_entry(base: &str, version: &StoredVersion) -> Result<Entry, Error> {
    let (url, status) = match version.method {
        Method::Post => (version.resource_type.clone(), "201 Created"),
        Method::Put | Method::Patch if version.version_id == 1 => (
            format!("{}/{}", version.resource_type, version.id),
            "201 Created",
        ),
        Method::Put | Method::Patch => (
            format!("{}/{}", version.resource_type, version.id),
            "200 OK",
        ),
        Method::Delete => (
            format!("{}/{}", version.resource_type, version.id),
            "204 No Content",
        ),
    };
    let method = match version.method {
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    };
    Ok(Entry {
        full_url: Some(full_url(base, version)),
        resource: version.body.clone().map(raw).transpose()?,
        request: Some(EntryRequest { method, url }),
        response: Some(EntryResponse {
            status: status.to_string(),
            etag: Some(etag(version)),
            last_modified: Some(format_instant(version.last_updated)),
            ..EntryResponse::default()
        }),
        ..Entry::default()
    })
}
