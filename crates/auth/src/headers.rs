//! Security headers on every response: a tower layer the application wraps around everything.
//!
//! Owns: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy:
//! no-referrer`, `Content-Security-Policy: default-src 'self'` (the sign-in form needs nothing
//! else), `Cache-Control: no-store` on `/fhir` and `/oauth` responses (patient data and tokens
//! must not sit in caches), and HSTS when the public base is https. Does not: decide anything
//! about the request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{HeaderValue, Request, Response, header};

/// The layer: `router.layer(SecurityHeaders::new(https))`.
#[derive(Debug, Clone, Copy)]
pub struct SecurityHeaders {
    hsts: bool,
}

impl SecurityHeaders {
    /// `https`: whether the node is served over https (then browsers are told to stay there).
    pub fn new(https: bool) -> SecurityHeaders {
        SecurityHeaders { hsts: https }
    }
}

impl<S> tower::Layer<S> for SecurityHeaders {
    type Service = SecurityHeadersService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeadersService {
            inner,
            hsts: self.hsts,
        }
    }
}

/// The service [`SecurityHeaders`] wraps around the application.
#[derive(Debug, Clone)]
pub struct SecurityHeadersService<S> {
    inner: S,
    hsts: bool,
}

impl<S, In, Out> tower::Service<Request<In>> for SecurityHeadersService<S>
where
    S: tower::Service<Request<In>, Response = Response<Out>>,
    S::Future: Send + 'static,
{
    type Response = Response<Out>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Out>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<In>) -> Self::Future {
        let path = request.uri().path();
        let sensitive =
            path == "/fhir" || path.starts_with("/fhir/") || path.starts_with("/oauth/");
        let hsts = self.hsts;
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            let headers = response.headers_mut();
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'self'"),
            );
            if sensitive {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            if hsts {
                headers.insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static("max-age=31536000; includeSubDomains"),
                );
            }
            Ok(response)
        })
    }
}
