//! `POST [base]/[type]` (<https://hl7.org/fhir/R4/http.html#create>), with `If-None-Exist` for
//! conditional create (`#ccreate`).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::RequestContext;

use crate::error::ApiResult;
use crate::negotiate::{BodyKind, parse_json, read_body};
use crate::{Shared, blocking};

pub(crate) async fn create(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let bytes = read_body(&headers, body, state.max_body_bytes, BodyKind::Resource).await?;
    let resource = parse_json(&bytes)?;
    let if_none_exist = headers
        .get("if-none-exist")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let hub = state.hub.clone();
    let outcome =
        blocking(move || hub.create(&ctx, &resource_type, resource, if_none_exist.as_deref()))
            .await?;
    super::write_response(&headers, &state.base(&headers), &outcome)
}
