//! Turning the error vocabulary into HTTP responses.
//!
//! Owns: [`ApiError`], the one conversion from [`concord_fhir::Error`] to a response: the status
//! comes from [`concord_fhir::ErrorKind::http_status`] and the body is an OperationOutcome.
//! Handlers never choose a status for an error themselves.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use concord_fhir::Error;
use concord_fhir::outcome::from_error;

use crate::negotiate::FHIR_JSON;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = from_error(&self.0).to_string();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
