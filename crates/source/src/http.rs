//! The HTTP vocabulary shared by the connector and its token client: the ways a call can go
//! wrong ([`Problem`]), the safe description of a transport error, reading a body within a size
//! limit, and the outbound header names.
//!
//! Owns the rule that a reason never carries a URL (reqwest's own error text includes the full
//! URL, whose query holds patient ids): only the innermost cause — an OS, TLS or protocol error —
//! is quoted. Does not decide retries or statuses; `lib.rs` does.

use std::error::Error as _;

use crate::breaker::Health;

pub(crate) const X_REQUEST_ID: &str = "x-request-id";
pub(crate) const X_CONCORD_ORIGIN: &str = "x-concord-origin";
pub(crate) const X_CONCORD_HOPS: &str = "x-concord-hops";
pub(crate) const FHIR_JSON: &str = "application/fhir+json";

/// Why a call did not gather everything it asked for. Every text is safe to show and log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The source could not be reached or failed (connection error, HTTP 5xx): it counts against
    /// the breaker.
    Unavailable(String),
    /// The source answered and refused (HTTP 4xx, credentials): it is up, so the breaker is not
    /// told of a failure.
    Refused(String),
    /// The source answered with something that is not a usable FHIR Bundle.
    Invalid(String),
}

impl Problem {
    pub(crate) fn health(&self) -> Health {
        match self {
            Problem::Unavailable(_) | Problem::Invalid(_) => Health::Down,
            Problem::Refused(_) => Health::Up,
        }
    }
}

/// Whether a failed send is worth one more try: the connection could not be made or broke before
/// an answer (typically a pooled connection the server had closed).
pub(crate) fn is_retryable(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_request()
}

/// A description of a transport error for a reason text: what failed, with `who` ("the source",
/// "the token endpoint"), and the innermost cause.
pub(crate) fn describe(who: &str, error: &reqwest::Error) -> String {
    let what = if error.is_connect() {
        format!("could not connect to {who}")
    } else if error.is_timeout() {
        format!("the request to {who} timed out")
    } else if error.is_body() || error.is_decode() {
        format!("the answer from {who} was cut off")
    } else {
        format!("the request to {who} failed")
    };
    // Walk past reqwest's own error (its Display names the URL) to the root cause.
    let mut cause = error.source();
    let mut innermost = None;
    while let Some(inner) = cause {
        innermost = Some(inner);
        cause = inner.source();
    }
    match innermost {
        Some(inner) => {
            let text: String = inner.to_string().chars().take(160).collect();
            format!("{what}: {text}")
        }
        None => what,
    }
}

/// Reads a response body, refusing one larger than `limit` bytes before or while reading it so a
/// runaway source cannot exhaust memory.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    who: &str,
) -> Result<Vec<u8>, Problem> {
    let too_large = || {
        Problem::Invalid(format!(
            "the answer from {who} is larger than {limit} bytes"
        ))
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    // Sized from the declared length when there is one: grown chunk by chunk, a page of a few
    // hundred kilobytes was copied about ten times. A length beyond `limit` was refused above;
    // the cap keeps a false one from reserving more than a large page needs up front.
    let declared = response.content_length().unwrap_or(0);
    let mut body = Vec::with_capacity(
        usize::try_from(declared)
            .unwrap_or(0)
            .min(limit)
            .min(1 << 24),
    );
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Problem::Unavailable(describe(who, &e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
