//! History: `[base]/[type]/[id]/_history`, `[base]/[type]/_history`, `[base]/_history`
//! (<https://hl7.org/fhir/R4/http.html#history>).

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::RequestContext;

use crate::error::ApiResult;
use crate::{Shared, blocking};

async fn run(
    state: Shared,
    ctx: RequestContext,
    headers: HeaderMap,
    raw: Option<String>,
    resource_type: Option<String>,
    id: Option<String>,
) -> ApiResult<Response> {
    let params = super::query_params(&headers, raw.as_deref())?;
    let base = state.base(&headers);
    let path = match (&resource_type, &id) {
        (Some(t), Some(i)) => format!("{t}/{i}/_history"),
        (Some(t), None) => format!("{t}/_history"),
        _ => "_history".to_string(),
    };
    let hub = state.hub.clone();
    let bundle = blocking(move || {
        hub.history(
            &ctx,
            resource_type.as_deref(),
            id.as_deref(),
            &params,
            &base,
            &path,
        )
    })
    .await?;
    super::bundle_response(&bundle)
}

pub(crate) async fn instance(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    run(state, ctx, headers, raw, Some(resource_type), Some(id)).await
}

pub(crate) async fn by_type(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    run(state, ctx, headers, raw, Some(resource_type), None).await
}

pub(crate) async fn system(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    run(state, ctx, headers, raw, None, None).await
}
