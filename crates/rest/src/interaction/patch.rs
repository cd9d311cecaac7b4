//! `PATCH [base]/[type]/[id]` with JSON Patch (<https://hl7.org/fhir/R4/http.html#patch>).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::RequestContext;

use crate::error::ApiResult;
use crate::negotiate::{BodyKind, if_match, parse_json, read_body};
use crate::{Shared, blocking};

pub(crate) async fn patch(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let expected = if_match(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes, BodyKind::JsonPatch).await?;
    let document = parse_json(&bytes)?;
    let hub = state.hub.clone();
    let outcome =
        blocking(move || hub.patch(&ctx, &resource_type, &id, &document, expected)).await?;
    super::write_response(&headers, &state.base(&headers), &outcome)
}
