//! `GET [base]/[type]/[id]/_history/[vid]` (<https://hl7.org/fhir/R4/http.html#vread>).

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use concord_fhir::RequestContext;
use concord_hub::bundle::etag;

use crate::error::ApiResult;
use crate::negotiate::{fhir_response, http_date};
use crate::{Shared, inline};

pub(crate) async fn vread(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id, version_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let version = inline(|| state.hub.vread(&ctx, &resource_type, &id, &version_id))?;
    let response_headers = vec![
        (header::ETAG, etag(&version)),
        (header::LAST_MODIFIED, http_date(version.last_updated)),
    ];
    Ok(fhir_response(
        StatusCode::OK,
        version.body.unwrap_or_default(),
        response_headers,
    ))
}
