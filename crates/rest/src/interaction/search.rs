//! Search by GET and by POST `_search` (<https://hl7.org/fhir/R4/http.html#search>), type and
//! system level. On a hub, a search scoped to one patient federates across the sources that hold
//! the person (`concord_hub::federate::search`).

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::RequestContext;

use crate::error::ApiResult;
use crate::negotiate::{BodyKind, prefer, read_body};
use crate::{Shared, blocking};

async fn run(
    state: Shared,
    ctx: RequestContext,
    headers: HeaderMap,
    resource_type: Option<String>,
    params: Vec<(String, String)>,
) -> ApiResult<Response> {
    let (_, handling) = prefer(&headers);
    let base = state.base(&headers);
    let hub = state.hub.clone();
    if let Some(t) = resource_type.as_deref()
        && let Some(patient) = hub.federated_search_patient(t, &params)
    {
        let hop = super::hop(&headers);
        let bundle = hub
            .federated_search(&ctx, &hop, t, &patient, &params, &base)
            .await?;
        return super::bundle_response(&bundle);
    }
    let bundle =
        blocking(move || hub.search(&ctx, resource_type.as_deref(), &params, handling, &base))
            .await?;
    super::bundle_response(&bundle)
}

pub(crate) async fn by_type(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = super::query_params(&headers, raw.as_deref())?;
    run(state, ctx, headers, Some(resource_type), params).await
}

pub(crate) async fn system(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = super::query_params(&headers, raw.as_deref())?;
    run(state, ctx, headers, None, params).await
}

/// POST `_search`: parameters in the form body and the URL together.
async fn form_params(
    state: &crate::AppState,
    headers: &HeaderMap,
    raw: Option<&str>,
    body: Body,
) -> ApiResult<Vec<(String, String)>> {
    let mut params = super::query_params(headers, raw)?;
    let bytes = read_body(headers, body, state.max_body_bytes, BodyKind::Form).await?;
    params.extend(concord_hub::search::parse_query_string(
        &String::from_utf8_lossy(&bytes),
    ));
    Ok(params)
}

pub(crate) async fn by_type_post(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let params = form_params(&state, &headers, raw.as_deref(), body).await?;
    run(state, ctx, headers, Some(resource_type), params).await
}

pub(crate) async fn system_post(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let params = form_params(&state, &headers, raw.as_deref(), body).await?;
    run(state, ctx, headers, None, params).await
}
