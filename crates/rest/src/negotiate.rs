//! Content negotiation for FHIR JSON (<https://hl7.org/fhir/R4/http.html#mime-type>).
//!
//! Owns: reading `Accept` and `_format` (406 for anything but JSON), checking request
//! `Content-Type` (415), reading bodies under the size limit (413) and parsing JSON (400), and
//! writing FHIR responses with `ETag`, `Last-Modified` and `Location`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use concord_fhir::{Error, ErrorKind};
use serde_json::Value;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Fails with 406 unless the client accepts JSON. `_format` overrides `Accept`, as the spec says.
pub fn check_accept(headers: &HeaderMap, format: Option<&str>) -> Result<(), Error> {
    if let Some(format) = format {
        return match format {
            "json" | "application/json" | "application/fhir+json" | "application/json+fhir" => {
                Ok(())
            }
            other => Err(Error::new(
                ErrorKind::NotAcceptable,
                format!("_format={other} is not supported; this server speaks JSON only"),
            )),
        };
    }
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|part| {
        let media = part
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        matches!(
            media.as_str(),
            "" | "*/*"
                | "application/*"
                | "application/json"
                | "application/fhir+json"
                | "application/json+fhir"
        )
    });
    if acceptable {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::NotAcceptable,
            format!("cannot produce '{accept}'; this server speaks application/fhir+json"),
        ))
    }
}

/// The media types a request body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A FHIR resource.
    Resource,
    /// A JSON Patch document.
    JsonPatch,
    /// Search parameters in a form.
    Form,
}

/// Reads a body of the given kind under the limit; 415 for a wrong media type, 413 over the limit.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    kind: BodyKind,
) -> Result<bytes::Bytes, Error> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let accepted = match kind {
        BodyKind::Resource => matches!(
            media.as_str(),
            "application/fhir+json" | "application/json" | "application/json+fhir"
        ),
        BodyKind::JsonPatch => media == "application/json-patch+json",
        BodyKind::Form => media == "application/x-www-form-urlencoded",
    };
    if !accepted {
        let wanted = match kind {
            BodyKind::Resource => "application/fhir+json",
            BodyKind::JsonPatch => "application/json-patch+json",
            BodyKind::Form => "application/x-www-form-urlencoded",
        };
        let shown = if content_type.is_empty() {
            "none"
        } else {
            content_type
        };
        return Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("Content-Type {shown} is not accepted here; send {wanted}"),
        ));
    }
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::new(
            ErrorKind::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        )),
        Err(_) => Err(Error::invalid("the request body could not be read")),
    }
}

/// Parses a JSON body; the message says where the JSON breaks.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Error> {
    if bytes.is_empty() {
        return Err(Error::invalid("the request body is empty"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("the body is not valid JSON: {e}")))
}

/// A FHIR JSON response with extra headers.
pub fn fhir_response(
    status: StatusCode,
    body: impl Into<Body>,
    headers: Vec<(header::HeaderName, String)>,
) -> Response {
    let mut response = (status, body.into()).into_response();
    let map = response.headers_mut();
    map.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            map.insert(name, value);
        }
    }
    response
}

/// Formats epoch milliseconds as an HTTP date for `Last-Modified`.
pub fn http_date(epoch_ms: i64) -> String {
    let secs = u64::try_from(epoch_ms.max(0) / 1000).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// `Prefer: return=...` (<https://hl7.org/fhir/R4/http.html#ops>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// Reads `Prefer` for `return=` and `handling=`.
pub fn prefer(headers: &HeaderMap) -> (Return, concord_hub::search::Handling) {
    let mut ret = Return::default();
    let mut handling = concord_hub::search::Handling::default();
    for value in headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for part in value.split([',', ';']).map(str::trim) {
            match part {
                "return=minimal" => ret = Return::Minimal,
                "return=representation" => ret = Return::Representation,
                "return=OperationOutcome" => ret = Return::OperationOutcome,
                "handling=strict" => handling = concord_hub::search::Handling::Strict,
                "handling=lenient" => handling = concord_hub::search::Handling::Lenient,
                _ => {}
            }
        }
    }
    (ret, handling)
}

/// Reads `If-Match` (`W/"3"`); a malformed one is a client error.
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().unwrap_or_default();
            concord_hub::transaction::parse_etag(text)
                .map(Some)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "If-Match '{text}' is not a version ETag such as W/\"1\""
                    ))
                })
        }
    }
}

/// Turns the status of an empty `204` into a response.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
