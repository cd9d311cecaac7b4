//! `POST [base]` with a batch or transaction Bundle
//! (<https://hl7.org/fhir/R4/http.html#transaction>).

use axum::Extension;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::RequestContext;

use crate::error::ApiResult;
use crate::negotiate::{BodyKind, parse_json, read_body};
use crate::{Shared, blocking};

pub(crate) async fn process(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let bytes = read_body(&headers, body, state.max_body_bytes, BodyKind::Resource).await?;
    let bundle = parse_json(&bytes)?;
    let base = state.base(&headers);
    let hub = state.hub.clone();
    let response = blocking(move || hub.process_bundle(&ctx, &bundle, &base)).await?;
    super::bundle_response(&response)
}
