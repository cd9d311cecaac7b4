//! `PUT [base]/[type]/[id]` (<https://hl7.org/fhir/R4/http.html#update>), also as create with the
//! client's id, and `PUT [base]/[type]?[search]` (conditional update, `#cond-update`).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::{Error, RequestContext};

use crate::error::ApiResult;
use crate::negotiate::{BodyKind, if_match, parse_json, read_body};
use crate::{Shared, blocking};

pub(crate) async fn update(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let expected = if_match(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes, BodyKind::Resource).await?;
    let resource = parse_json(&bytes)?;
    let hub = state.hub.clone();
    let outcome =
        blocking(move || hub.update(&ctx, &resource_type, &id, resource, expected)).await?;
    super::write_response(&headers, &state.base(&headers), &outcome)
}

pub(crate) async fn conditional(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let condition = raw.unwrap_or_default();
    if condition.is_empty() {
        return Err(Error::new(
            concord_fhir::ErrorKind::MethodNotAllowed,
            "PUT on a type needs search parameters (conditional update) or an id",
        )
        .into());
    }
    let expected = if_match(&headers)?;
    let bytes = read_body(&headers, body, state.max_body_bytes, BodyKind::Resource).await?;
    let resource = parse_json(&bytes)?;
    let hub = state.hub.clone();
    let outcome = blocking(move || {
        hub.conditional_update(&ctx, &resource_type, &condition, resource, expected)
    })
    .await?;
    super::write_response(&headers, &state.base(&headers), &outcome)
}
