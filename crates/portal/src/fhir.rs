//! The portal's FHIR client: requests to the node's own FHIR API, in process.
//!
//! Owns: sending a request through the node's whole application router (its authentication,
//! access, consent and audit layers included) with the signed-in person's token, and reading the
//! answer as JSON. Going through the router rather than calling the hub directly is deliberate:
//! the portal then has no way around the rules any other SMART app is held to. Does not: retry,
//! cache, or decide anything from the answer (the pages do).

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::error::PortalError;

/// The largest answer the portal reads (a federated `$everything` of a long record is a few MB).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// The node's FHIR application, called in process.
#[derive(Clone)]
pub struct Fhir {
    app: Router,
}

/// Who is calling and on which host the browser reached the node (so links in answers use it).
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    /// The bearer token; `None` for the token endpoint, which authenticates the portal itself.
    pub token: Option<&'a str>,
    pub host: &'a str,
    /// The browser request's id, so the audit trail and logs of the FHIR call correlate.
    pub request_id: Option<&'a str>,
}

/// A FHIR answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// The JSON body (`Value::Null` when there was none or it was not JSON).
    pub body: Value,
    pub elapsed: Duration,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The answer when it is a success; otherwise the error its status and OperationOutcome
    /// make (a refusal, not found, or the API's failure).
    pub fn success(self) -> Result<Answer, PortalError> {
        if self.ok() {
            Ok(self)
        } else {
            Err(PortalError::from_answer(&self))
        }
    }
}

impl Fhir {
    pub fn new(app: Router) -> Fhir {
        Fhir { app }
    }

    /// `GET {path}`, where `path` starts at the server root (`/fhir/Patient/1/$summary`).
    pub async fn get(&self, caller: &Caller<'_>, path: &str) -> Result<Answer, PortalError> {
        self.send(caller, Method::GET, path, None).await
    }

    /// `POST {path}` with a FHIR JSON body.
    pub async fn post(
        &self,
        caller: &Caller<'_>,
        path: &str,
        body: &Value,
    ) -> Result<Answer, PortalError> {
        self.send_json(caller, Method::POST, path, body).await
    }

    /// `PUT {path}` with a FHIR JSON body.
    pub async fn put(
        &self,
        caller: &Caller<'_>,
        path: &str,
        body: &Value,
    ) -> Result<Answer, PortalError> {
        self.send_json(caller, Method::PUT, path, body).await
    }

    async fn send_json(
        &self,
        caller: &Caller<'_>,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Answer, PortalError> {
        let bytes = serde_json::to_vec(body).map_err(|_| PortalError::Internal)?;
        self.send(caller, method, path, Some(("application/fhir+json", bytes)))
            .await
    }

    /// `POST {path}` with a form body and extra headers (the token endpoint).
    pub async fn post_form(
        &self,
        caller: &Caller<'_>,
        path: &str,
        form: &[(&str, &str)],
        headers: HeaderMap,
    ) -> Result<Answer, PortalError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.request(
            caller,
            Method::POST,
            path,
            Some(("application/x-www-form-urlencoded", body.into_bytes())),
            headers,
        )
        .await
    }

    async fn send(
        &self,
        caller: &Caller<'_>,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, PortalError> {
        self.request(caller, method, path, body, HeaderMap::new())
            .await
    }

    async fn request(
        &self,
        caller: &Caller<'_>,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        extra: HeaderMap,
    ) -> Result<Answer, PortalError> {
        let started = Instant::now();
        let mut request = Request::builder().method(method).uri(path);
        let headers = request.headers_mut().ok_or(PortalError::Internal)?;
        headers.extend(extra);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/fhir+json"),
        );
        if let Ok(host) = HeaderValue::from_str(caller.host) {
            headers.insert(header::HOST, host);
        }
        if let Some(token) = caller.token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert(header::AUTHORIZATION, value);
        }
        if let Some(id) = caller.request_id
            && let Ok(value) = HeaderValue::from_str(id)
        {
            headers.insert("x-request-id", value);
        }
        let request = match body {
            Some((content_type, bytes)) => {
                if let Ok(value) = HeaderValue::from_str(content_type) {
                    headers.insert(header::CONTENT_TYPE, value);
                }
                request.body(Body::from(bytes))
            }
            None => request.body(Body::empty()),
        }
        .map_err(|_| PortalError::Internal)?;
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .map_err(|_| PortalError::Internal)?;
        let status = response.status();
        let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|_| PortalError::Internal)?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            elapsed: started.elapsed(),
        })
    }
}
