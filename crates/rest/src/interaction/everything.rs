//! Instance-level operations: `Patient/[id]/$everything`
//! (<https://hl7.org/fhir/R4/patient-operation-everything.html>). Other operations are 501.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use concord_fhir::{Error, RequestContext};

use crate::error::ApiResult;
use crate::{AppState, blocking};

pub(crate) async fn instance_operation(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path((resource_type, id, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let params = super::query_params(&headers, raw.as_deref())?;
    match (resource_type.as_str(), operation.as_str()) {
        ("Patient", "$everything") => {
            let base = state.base(&headers);
            let hub = state.hub.clone();
            let bundle =
                blocking(move || hub.patient_everything(&ctx, &id, &params, &base)).await?;
            super::bundle_response(&bundle)
        }
        (_, op) if op.starts_with('$') => Err(Error::not_supported(format!(
            "the operation {op} is not supported on {resource_type}"
        ))
        .into()),
        _ => Err(Error::not_found(format!(
            "there is nothing at {resource_type}/{id}/{operation}"
        ))
        .into()),
    }
}
