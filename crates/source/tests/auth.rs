//! The connector's authentication against real servers on loopback: a bearer token, OAuth client
//! credentials, SMART Backend Services `private_key_jwt` (ES384 and RS384, the assertion's
//! signature and claims verified by the token endpoint with jsonwebtoken), the token cache, the
//! renewal of a cached token the source refuses, and mutual TLS with rcgen-made certificates
//! over HTTP/2 negotiated by ALPN.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{Hits, bundle, config, outbound, patient, serve};
use concord_source::{Auth, BreakerConfig, Source, SourceConfig, SourceStatus};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

/// One token request as the token endpoint saw it: its form and its Authorization header.
type TokenRequest = (HashMap<String, String>, Option<String>);
/// How the token endpoint checks a request; `Err` is answered with 401.
type Check =
    Arc<dyn Fn(&HashMap<String, String>, Option<&str>) -> Result<(), String> + Send + Sync>;

/// A FHIR endpoint that wants `Bearer {accepted}` and a token endpoint that issues tokens, with
/// what each saw.
#[derive(Clone)]
struct Server {
    /// The token the FHIR endpoint accepts now.
    accepted: Arc<Mutex<String>>,
    token_hits: Hits,
    fhir_hits: Hits,
    /// Each token request's form and Authorization header.
    token_requests: Arc<Mutex<Vec<TokenRequest>>>,
    /// How a token request is checked; `Err` is sent back as 401.
    check: Check,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            accepted: Arc::default(),
            token_hits: Hits::default(),
            fhir_hits: Hits::default(),
            token_requests: Arc::default(),
            check: accept_all(),
        }
    }
}

fn accept_all() -> Check {
    Arc::new(|_, _| Ok(()))
}

async fn fhir_endpoint(State(server): State<Server>, headers: HeaderMap) -> Response {
    server.fhir_hits.hit();
    let expected = format!("Bearer {}", server.accepted.lock().unwrap());
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(bundle(vec![patient("p1")], None)).into_response()
}

async fn token_endpoint(
    State(server): State<Server>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let n = server.token_hits.hit();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    server
        .token_requests
        .lock()
        .unwrap()
        .push((form.clone(), authorization.clone()));
    if let Err(why) = (server.check)(&form, authorization.as_deref()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": why})),
        )
            .into_response();
    }
    let token = format!("token-{n}");
    *server.accepted.lock().unwrap() = token.clone();
    axum::Json(json!({"access_token": token, "token_type": "bearer", "expires_in": 300, "scope": "system/*.rs"}))
        .into_response()
}

async fn start(server: Server) -> String {
    serve(move |_| {
        Router::new()
            .route("/fhir/Patient/{id}/$everything", get(fhir_endpoint))
            .route("/auth/token", post(token_endpoint))
            .with_state(server)
    })
    .await
}

fn token_url(base: &str) -> String {
    base.replace("/fhir", "/auth/token")
}

fn source_with(base: &str, auth: Auth) -> Source {
    Source::new(config(base, auth), BreakerConfig::default()).unwrap()
}

#[tokio::test]
async fn a_bearer_token_is_sent_and_its_absence_is_refused() {
    let server = Server {
        accepted: Arc::new(Mutex::new("s3cret-token".to_string())),
        check: accept_all(),
        ..Server::default()
    };
    let base = start(server).await;

    let with = source_with(
        &base,
        Auth::Bearer {
            token: "s3cret-token".to_string(),
        },
    );
    assert_eq!(
        with.patient_data(&outbound(), "p1", None, None)
            .await
            .status,
        SourceStatus::Ok
    );

    let without = source_with(&base, Auth::None);
    assert_eq!(
        without
            .patient_data(&outbound(), "p1", None, None)
            .await
            .status,
        SourceStatus::Failed {
            reason: "the source refused our credentials (HTTP 401)".to_string()
        }
    );
}

fn basic(user: &str, password: &str) -> String {
    // The test's own tiny base64 so the check does not reuse the code under test.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[tokio::test]
async fn client_credentials_fetch_a_token_once_and_reuse_it() {
    let server = Server {
        check: Arc::new(|form, authorization| {
            if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
                return Err("grant_type".to_string());
            }
            if form.get("scope").map(String::as_str) != Some("system/*.rs") {
                return Err("scope".to_string());
            }
            // The secret's "&" is form-encoded before Basic encoding (RFC 6749 2.3.1).
            if authorization != Some(basic("concord-hub", "pa%26ss").as_str()) {
                return Err("client authentication".to_string());
            }
            Ok(())
        }),
        ..Server::default()
    };
    let base = start(server.clone()).await;
    let source = source_with(
        &base,
        Auth::ClientCredentials {
            token_url: token_url(&base),
            client_id: "concord-hub".to_string(),
            client_secret: "pa&ss".to_string(),
            scope: Some("system/*.rs".to_string()),
        },
    );

    for _ in 0..2 {
        let result = source.patient_data(&outbound(), "p1", None, None).await;
        assert_eq!(result.status, SourceStatus::Ok);
    }
    assert_eq!(server.token_hits.count(), 1, "the token is cached");
    assert_eq!(server.fhir_hits.count(), 2);
}

#[tokio::test]
async fn a_refusing_token_endpoint_fails_the_call_without_quoting_it() {
    let server = Server {
        check: Arc::new(|_, _| Err("client concord-hub is unknown".to_string())),
        ..Server::default()
    };
    let base = start(server.clone()).await;
    let source = source_with(
        &base,
        Auth::ClientCredentials {
            token_url: token_url(&base),
            client_id: "concord-hub".to_string(),
            client_secret: "wrong".to_string(),
            scope: None,
        },
    );

    let result = source.patient_data(&outbound(), "p1", None, None).await;

    assert_eq!(
        result.status,
        SourceStatus::Failed {
            reason: "the token endpoint refused our credentials (HTTP 401)".to_string()
        }
    );
    assert_eq!(server.fhir_hits.count(), 0);
}

#[tokio::test]
async fn a_cached_token_the_source_refuses_is_renewed_once() {
    let server = Server {
        check: accept_all(),
        ..Server::default()
    };
    let base = start(server.clone()).await;
    let source = source_with(
        &base,
        Auth::ClientCredentials {
            token_url: token_url(&base),
            client_id: "concord-hub".to_string(),
            client_secret: "secret".to_string(),
            scope: None,
        },
    );
    assert_eq!(
        source
            .patient_data(&outbound(), "p1", None, None)
            .await
            .status,
        SourceStatus::Ok
    );

    // The source revokes token-1 before it expires.
    *server.accepted.lock().unwrap() = "revoked".to_string();
    let result = source.patient_data(&outbound(), "p1", None, None).await;

    assert_eq!(result.status, SourceStatus::Ok);
    assert_eq!(server.token_hits.count(), 2);
    assert_eq!(server.fhir_hits.count(), 3);
}

/// A token endpoint that checks a SMART Backend Services client assertion with `key` and `alg`.
fn verify_assertion(key: DecodingKey, alg: Algorithm, audience: String) -> Check {
    Arc::new(move |form, authorization| {
        if authorization.is_some() {
            return Err("no client secret with private_key_jwt".to_string());
        }
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return Err("grant_type".to_string());
        }
        if form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err("client_assertion_type".to_string());
        }
        let assertion = form.get("client_assertion").ok_or("client_assertion")?;
        let mut validation = Validation::new(alg);
        validation.set_audience(&[audience.as_str()]);
        validation.set_issuer(&["concord-hub"]);
        validation.sub = Some("concord-hub".to_string());
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let data = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
            .map_err(|e| format!("assertion: {e}"))?;
        if data.header.kid.as_deref() != Some("key-1") {
            return Err("kid".to_string());
        }
        let claims = data.claims;
        let jti = claims["jti"].as_str().ok_or("jti")?;
        uuid::Uuid::parse_str(jti).map_err(|_| "jti is not a uuid")?;
        let lifetime =
            claims["exp"].as_u64().ok_or("exp")? - claims["iat"].as_u64().ok_or("iat")?;
        if lifetime > 300 {
            return Err("exp is more than five minutes ahead".to_string());
        }
        Ok(())
    })
}

async fn private_key_jwt_round_trip(
    algorithm: &str,
    key_pem: String,
    decoding: DecodingKey,
    alg: Algorithm,
) {
    // The token endpoint's check needs the token URL, which needs the address: bind first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let server = Server {
        check: verify_assertion(decoding, alg, token_url(&base)),
        ..Server::default()
    };
    let app = Router::new()
        .route("/fhir/Patient/{id}/$everything", get(fhir_endpoint))
        .route("/auth/token", post(token_endpoint))
        .with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let source = source_with(
        &base,
        Auth::PrivateKeyJwt {
            token_url: token_url(&base),
            client_id: "concord-hub".to_string(),
            key_pem,
            algorithm: algorithm.to_string(),
            kid: Some("key-1".to_string()),
            scope: Some("system/*.rs".to_string()),
        },
    );

    for _ in 0..2 {
        let result = source.patient_data(&outbound(), "p1", None, None).await;
        assert_eq!(
            result.status,
            SourceStatus::Ok,
            "{:?}",
            server.token_requests.lock().unwrap()
        );
    }
    assert_eq!(server.token_hits.count(), 1, "the token is cached");
    let requests = server.token_requests.lock().unwrap();
    assert_eq!(
        requests[0].0.get("scope").map(String::as_str),
        Some("system/*.rs")
    );
}

#[tokio::test]
async fn private_key_jwt_with_es384() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let decoding = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();
    private_key_jwt_round_trip("ES384", key.serialize_pem(), decoding, Algorithm::ES384).await;
}

#[tokio::test]
async fn private_key_jwt_with_es256() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let decoding = DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap();
    private_key_jwt_round_trip("ES256", key.serialize_pem(), decoding, Algorithm::ES256).await;
}

#[tokio::test]
async fn private_key_jwt_with_rs384_from_pkcs8_and_pkcs1_pem() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let decoding = || DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
    let pkcs8 = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    private_key_jwt_round_trip("RS384", pkcs8, decoding(), Algorithm::RS384).await;
    let pkcs1 = private.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
    private_key_jwt_round_trip("RS384", pkcs1, decoding(), Algorithm::RS384).await;
}

#[test]
fn a_key_that_does_not_fit_its_algorithm_is_a_setup_error() {
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let auth = Auth::PrivateKeyJwt {
        token_url: "https://auth.example/token".to_string(),
        client_id: "concord-hub".to_string(),
        key_pem: p256.serialize_pem(),
        algorithm: "RS384".to_string(),
        kid: None,
        scope: None,
    };
    let error = Source::new(
        config("https://gp.example/fhir", auth),
        BreakerConfig::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("source gp-a: the private_key_jwt key"),
        "{error}"
    );
    assert!(!error.contains("PRIVATE KEY"), "{error}");
}

mod mutual_tls {
    //! Mutual TLS: a CA, a server certificate for 127.0.0.1 and a client certificate, all made by
    //! rcgen; a TLS server (tokio-rustls, ALPN h2 and http/1.1) that demands a client
    //! certificate from that CA and serves the axum app with hyper.

    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::TlsAcceptor;

    struct Pki {
        ca_pem: String,
        server: (String, String),
        client: (String, String),
    }

    fn pki() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let params = CertificateParams::new(vec![name.to_string()]).unwrap();
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        Pki {
            ca_pem: ca.as_ref().pem(),
            server: leaf("127.0.0.1"),
            client: leaf("concord-hub"),
        }
    }

    /// Serves `app` over TLS requiring a client certificate issued by `ca_pem`.
    async fn serve_tls(pki: &Pki, app: Router) -> String {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let chain = CertificateDer::pem_slice_iter(pki.server.0.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}/fhir", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    // A client without a certificate fails here; that is the point.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        base
    }

    fn app(versions: Arc<Mutex<Vec<Version>>>) -> Router {
        Router::new().route(
            "/fhir/Patient/{id}/$everything",
            get(move |request: axum::extract::Request| async move {
                versions.lock().unwrap().push(request.version());
                axum::Json(bundle(vec![patient("p1")], None))
            }),
        )
    }

    #[tokio::test]
    async fn a_client_certificate_is_presented_and_http2_is_negotiated() {
        let pki = pki();
        let versions: Arc<Mutex<Vec<Version>>> = Arc::default();
        let base = serve_tls(&pki, app(versions.clone())).await;
        let config = SourceConfig {
            ca_pem: Some(pki.ca_pem.clone()),
            ..config(
                &base,
                Auth::MutualTls {
                    cert_pem: pki.client.0.clone(),
                    key_pem: pki.client.1.clone(),
                },
            )
        };
        let source = Source::new(config, BreakerConfig::default()).unwrap();

        let result = source.patient_data(&outbound(), "p1", None, None).await;

        assert_eq!(result.status, SourceStatus::Ok);
        assert_eq!(versions.lock().unwrap().as_slice(), [Version::HTTP_2]);
    }

    #[tokio::test]
    async fn without_a_client_certificate_the_handshake_is_refused() {
        let pki = pki();
        let versions: Arc<Mutex<Vec<Version>>> = Arc::default();
        let base = serve_tls(&pki, app(versions.clone())).await;
        let config = SourceConfig {
            ca_pem: Some(pki.ca_pem.clone()),
            ..config(&base, Auth::None)
        };
        let source = Source::new(config, BreakerConfig::default()).unwrap();

        let result = source.patient_data(&outbound(), "p1", None, None).await;

        let SourceStatus::Failed { reason } = &result.status else {
            panic!("expected Failed, got {:?}", result.status);
        };
        assert!(reason.contains("CertificateRequired"), "{reason}");
        assert!(versions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_server_outside_the_configured_ca_is_not_trusted() {
        let pki = pki();
        let other = super::mutual_tls::pki();
        let versions: Arc<Mutex<Vec<Version>>> = Arc::default();
        let base = serve_tls(&pki, app(versions.clone())).await;
        let config = SourceConfig {
            ca_pem: Some(other.ca_pem.clone()),
            ..config(
                &base,
                Auth::MutualTls {
                    cert_pem: other.client.0.clone(),
                    key_pem: other.client.1.clone(),
                },
            )
        };
        let source = Source::new(config, BreakerConfig::default()).unwrap();

        let result = source.patient_data(&outbound(), "p1", None, None).await;

        let SourceStatus::Failed { reason } = &result.status else {
            panic!("expected Failed, got {:?}", result.status);
        };
        assert!(
            reason.starts_with("could not connect to the source"),
            "{reason}"
        );
        assert!(versions.lock().unwrap().is_empty());
    }

    #[test]
    fn a_broken_client_identity_is_a_setup_error() {
        let pki = pki();
        let auth = Auth::MutualTls {
            cert_pem: pki.client.0.clone(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_string(),
        };
        let error = Source::new(
            config("https://gp.example/fhir", auth),
            BreakerConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("source gp-a: TLS set-up failed"),
            "{error}"
        );

        let auth = Auth::MutualTls {
            cert_pem: pki.client.0.clone(),
            key_pem: pki.client.1.clone(),
        };
        let error = Source::new(
            config("http://gp.example/fhir", auth),
            BreakerConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(error, "source gp-a: mutual TLS needs an https base URL");
    }
}
