//! Routes of the FHIR REST API, one module per interaction or operation.
//!
//! Owns: the URL table and the helpers the handlers share (query parsing, write responses).

mod capabilities;
mod create;
mod delete;
mod history;
mod operation;
mod patch;
mod read;
mod search;
mod transaction;
mod update;
mod vread;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use concord_fhir::outcome::all_ok;
use concord_hub::bundle::{Bundle, etag};
use concord_hub::write::WriteOutcome;

use crate::Shared;
use crate::error::{ApiError, ApiResult};
use crate::negotiate::{Return, check_accept, fhir_response, http_date, prefer};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(search::system).post(transaction::process))
        .route("/metadata", get(capabilities::metadata))
        .route("/_search", post(search::system_post))
        .route("/_history", get(history::system))
        .route(
            "/{resource_type}",
            get(search::by_type)
                .post(create::create)
                .put(update::conditional)
                .delete(delete::conditional),
        )
        .route("/{resource_type}/_search", post(search::by_type_post))
        .route("/{resource_type}/_history", get(history::by_type))
        .route(
            "/{resource_type}/{id}",
            get(read::read)
                .post(operation::type_operation_post)
                .put(update::update)
                .patch(patch::patch)
                .delete(delete::delete),
        )
        .route("/{resource_type}/{id}/_history", get(history::instance))
        .route(
            "/{resource_type}/{id}/_history/{version_id}",
            get(vread::vread),
        )
        .route(
            "/{resource_type}/{id}/{operation}",
            get(operation::instance_operation).post(operation::instance_operation),
        )
}

/// Where a request came from, when another hub asks (`X-Concord-Origin`, `X-Concord-Hops`), so
/// hubs that list each other as sources never loop. A missing or unreadable hop count is 0.
pub(crate) fn hop(headers: &HeaderMap) -> concord_hub::federate::Hop {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    concord_hub::federate::Hop {
        origin: text("x-concord-origin")
            .filter(|o| !o.is_empty())
            .map(str::to_string),
        hops: text("x-concord-hops")
            .and_then(|h| h.trim().parse().ok())
            .unwrap_or(0),
    }
}

/// Decoded query parameters, after checking `Accept` / `_format`.
pub(crate) fn query_params(
    headers: &HeaderMap,
    raw: Option<&str>,
) -> ApiResult<Vec<(String, String)>> {
    let params = concord_hub::search::parse_query_string(raw.unwrap_or(""));
    let format = params
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.as_str());
    check_accept(headers, format)?;
    Ok(params)
}

/// A Bundle response.
pub(crate) fn bundle_response(bundle: &Bundle) -> ApiResult<Response> {
    Ok(fhir_response(StatusCode::OK, bundle.to_json()?, Vec::new()))
}

/// The response to a create, update or patch, honouring `Prefer: return=`.
pub(crate) fn write_response(
    headers: &HeaderMap,
    base: &str,
    outcome: &WriteOutcome,
) -> ApiResult<Response> {
    let (ret, _) = prefer(headers);
    let version = &outcome.version;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!(
        "{base}/{}/{}/_history/{}",
        version.resource_type, version.id, version.version_id
    );
    let response_headers = vec![
        (header::LOCATION, location),
        (header::ETAG, etag(version)),
        (header::LAST_MODIFIED, http_date(version.last_updated)),
    ];
    let body = match ret {
        Return::Minimal => String::new(),
        Return::Representation => version
            .body
            .clone()
            .ok_or_else(|| ApiError(concord_fhir::Error::internal()))?,
        Return::OperationOutcome => {
            let what = if outcome.existing {
                "matched an existing resource; nothing was written"
            } else {
                "succeeded"
            };
            all_ok(&format!(
                "The {} of {}/{} {what}.",
                if outcome.created { "create" } else { "update" },
                version.resource_type,
                version.id
            ))
            .to_string()
        }
    };
    let mut response = fhir_response(status, body, response_headers);
    if ret == Return::Minimal {
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    Ok(response)
}
