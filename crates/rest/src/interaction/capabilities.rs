//! `GET [base]/metadata` (<https://hl7.org/fhir/R4/http.html#capabilities>): public, as the
//! specification requires.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::Shared;
use crate::error::ApiResult;
use crate::negotiate::fhir_response;

pub(crate) async fn metadata(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    super::query_params(&headers, raw.as_deref())?;
    let statement = state
        .hub
        .capability_statement(&state.base(&headers), env!("CARGO_PKG_VERSION"));
    Ok(fhir_response(
        StatusCode::OK,
        statement.to_string(),
        Vec::new(),
    ))
}
