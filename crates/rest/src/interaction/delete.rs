//! `DELETE [base]/[type]/[id]` (<https://hl7.org/fhir/R4/http.html#delete>) and conditional
//! delete `DELETE [base]/[type]?[search]`.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::{Error, ErrorKind, RequestContext};

use crate::error::ApiResult;
use crate::negotiate::no_content;
use crate::{Shared, blocking};

pub(crate) async fn delete(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let expected = crate::negotiate::if_match(&headers)?;
    let hub = state.hub.clone();
    blocking(move || hub.delete(&ctx, &resource_type, &id, expected)).await?;
    Ok(no_content())
}

pub(crate) async fn conditional(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let condition = raw.unwrap_or_default();
    if condition.is_empty() {
        return Err(Error::new(
            ErrorKind::MethodNotAllowed,
            "DELETE on a type needs search parameters (conditional delete)",
        )
        .into());
    }
    let hub = state.hub.clone();
    blocking(move || hub.conditional_delete(&ctx, &resource_type, &condition)).await?;
    Ok(no_content())
}
