//! The TLS set-up of one source's HTTP client: which servers it trusts, the client certificate it
//! presents for mutual TLS, and ALPN offering HTTP/2 before HTTP/1.1.
//!
//! Owns building the rustls `ClientConfig` handed to reqwest. It uses the ring provider
//! explicitly rather than installing a process-wide default, so no other crate's TLS is affected.
//! Does not open connections, and never puts key or certificate bytes into an error.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::SourceSetupError;

/// Builds the TLS configuration of one source.
///
/// With `ca_pem`, the source is trusted only through those certificates: a source on a private
/// PKI (an HSCN or trust-internal CA) gains nothing from the public roots, and trusting them too
/// would let any public certificate for its name stand in for it. Without `ca_pem`, the
/// platform's verifier and roots decide.
pub(crate) fn client_config(
    source_id: &str,
    ca_pem: Option<&str>,
    identity: Option<(&str, &str)>,
) -> Result<ClientConfig, SourceSetupError> {
    let fail = |what: &str| SourceSetupError::Tls {
        source_id: source_id.to_string(),
        what: what.to_string(),
    };
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|_| fail("no TLS protocol version is available"))?;
    let builder = match ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|_| fail("ca_pem is not valid PEM"))?;
                roots.add(cert).map_err(|_| {
                    fail("ca_pem holds a certificate that cannot be a trust anchor")
                })?;
            }
            if roots.is_empty() {
                return Err(fail("ca_pem holds no certificate"));
            }
            builder.with_root_certificates(roots)
        }
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|_| fail("the platform's certificate verifier is not available"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    let mut config = match identity {
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| fail("the client certificate is not valid PEM"))?;
            if chain.is_empty() {
                return Err(fail("the client certificate PEM holds no certificate"));
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|_| fail("the client key is not a PEM private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| fail("the client certificate and key do not make a usable identity"))?
        }
        None => builder.with_no_client_auth(),
    };
    // reqwest leaves ALPN to a preconfigured config; offering h2 first lets a server that speaks
    // HTTP/2 multiplex this source's parallel searches over one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
