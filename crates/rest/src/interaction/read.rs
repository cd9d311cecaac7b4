//! `GET [base]/[type]/[id]` (<https://hl7.org/fhir/R4/http.html#read>). The stored JSON is sent
//! as it is, without parsing. `GET [type]/$operation` shares the path and is passed on.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use concord_fhir::RequestContext;
use concord_hub::bundle::etag;

use crate::error::ApiResult;
use crate::negotiate::{fhir_response, http_date};
use crate::{Shared, inline};

pub(crate) async fn read(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    if id.starts_with('$') {
        // `GET [type]/$operation` shares its path shape with a read.
        return super::operation::type_operation(
            state,
            ctx,
            (resource_type, id),
            axum::http::Method::GET,
            headers,
            raw,
            axum::body::Body::empty(),
        )
        .await;
    }
    super::query_params(&headers, raw.as_deref())?;
    let version = inline(|| state.hub.read(&ctx, &resource_type, &id))?;
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
