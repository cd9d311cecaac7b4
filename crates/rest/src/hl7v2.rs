//! HL7 v2 over HTTP: `POST /hl7v2` with one message as the body (`x-application/hl7-v2+er7`),
//! answered with its acknowledgement, for source systems that prefer HTTP to MLLP.
//!
//! Owns reading the body under the size limit and returning the ACK the hub built. Every
//! outcome the hub can reach is an HL7 ACK with status 200 (the application answer is in MSA),
//! as HL7 over HTTP expects; only transport problems (no token, a caller that is not a source system, body too large) are
//! HTTP errors.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use concord_fhir::{Error, ErrorKind, RequestContext};

use crate::error::ApiResult;
use crate::{Shared, blocking};

/// The media type of HL7 v2 in its pipe-and-hat encoding.
pub const HL7_V2: &str = "x-application/hl7-v2+er7";

pub(crate) async fn receive(
    State(state): State<Shared>,
    Extension(ctx): Extension<RequestContext>,
    body: Body,
) -> ApiResult<Response> {
    let bytes = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::PayloadTooLarge,
                format!("the message is larger than {} bytes", state.max_body_bytes),
            )
        })?;
    state.hub.authorize_feed(&ctx)?;
    let hub = state.hub.clone();
    let received = blocking(move || Ok(hub.receive_v2(&ctx, &bytes))).await?;
    let mut response = (StatusCode::OK, received.ack).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(HL7_V2));
    Ok(response)
}
