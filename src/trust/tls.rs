//! The TLS server configuration (`security-and-audit.md`, Transport and identity): rustls,
//! TLS 1.2 and 1.3 only, a server certificate and key from PEM files, and **mandatory** client
//! certificates verified against a CA bundle.
//!
//! The crypto provider is rustls' `ring` provider, chosen explicitly (not the process default):
//! `ring` is already in the dependency tree through rustls-webpki, and naming it keeps the
//! configuration independent of which provider features other crates switch on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The three PEM files of the TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Server certificate chain (leaf first).
    pub certificate: PathBuf,
    /// The server certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CAs that issue client certificates.
    pub client_ca: PathBuf,
}

/// Why the TLS configuration could not be built. Always names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS {role} {}: cannot read: {cause}", path.display())]
    Read {
        role: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("TLS {role} {}: {detail}", path.display())]
    Invalid {
        role: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider of every configuration built here.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration: TLS 1.3 and 1.2, client certificate required and verified
/// against `files.client_ca`. The server's ALPN list is left empty for the HTTP server to set.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    server_config_observed(files, Arc::new(|| {}))
}

/// Called once for every client certificate that fails verification (unknown CA, expired, not
/// a client certificate): the service counts `kbi_tls_handshake_failures_total` with it.
pub type OnRefusal = Arc<dyn Fn() + Send + Sync>;

/// [`server_config`], calling `on_refusal` for every refused client certificate. A handshake
/// without any certificate is refused by rustls before verification and is not seen here (see
/// [`server_config_for_service`]).
pub fn server_config_observed(
    files: &TlsFiles,
    on_refusal: OnRefusal,
) -> Result<ServerConfig, TlsError> {
    build(files, on_refusal, true)
}

/// The service's configuration: as [`server_config_observed`], except that a client without any
/// certificate completes the handshake. rustls refuses such a handshake without calling any hook,
/// so it could be neither counted nor told apart; the service instead counts it and shuts the
/// connection in its `on_connect` hook, before any HTTP is read (and every request path still
/// requires a registered certificate). A certificate that is sent is verified during the
/// handshake exactly as before.
pub fn server_config_for_service(
    files: &TlsFiles,
    on_refusal: OnRefusal,
) -> Result<ServerConfig, TlsError> {
    build(files, on_refusal, false)
}

fn build(
    files: &TlsFiles,
    on_refusal: OnRefusal,
    certificate_mandatory: bool,
) -> Result<ServerConfig, TlsError> {
    let chain = load_certificates(&files.certificate, "server certificate")?;
    let key = load_key(&files.key)?;
    let roots = load_roots(&files.client_ca)?;
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Invalid {
            role: "client CA bundle",
            path: files.client_ca.clone(),
            detail: e.to_string(),
        })?;
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(ObservedVerifier {
            inner: verifier,
            on_refusal,
            certificate_mandatory,
        }))
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            role: "server key",
            path: files.key.clone(),
            detail: format!(
                "does not fit the certificate {} or is unusable: {e}",
                files.certificate.display()
            ),
        })
}

fn read(path: &Path, role: &'static str) -> Result<Vec<u8>, TlsError> {
    kbi_core::io::read_regular_file(path, kbi_core::io::MAX_CONFIG_FILE_BYTES).map_err(|cause| {
        TlsError::Read {
            role,
            path: path.to_path_buf(),
            cause,
        }
    })
}

/// Every `CERTIFICATE` block of a PEM file (at least one).
pub fn load_certificates(
    path: &Path,
    role: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, role)?;
    let invalid = |detail: String| TlsError::Invalid {
        role,
        path: path.to_path_buf(),
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("contains no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let role = "server key";
    let pem = read(path, role)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Invalid {
        role,
        path: path.to_path_buf(),
        detail: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let role = "client CA bundle";
    let mut roots = RootCertStore::empty();
    for (i, cert) in load_certificates(path, role)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::Invalid {
            role,
            path: path.to_path_buf(),
            detail: format!("certificate {} is not a usable CA: {e}", i + 1),
        })?;
    }
    Ok(roots)
}

/// The verified client certificate (leaf, DER) of a finished handshake.
pub fn peer_certificate(connection: &ServerConnection) -> Option<&CertificateDer<'static>> {
    connection.peer_certificates()?.first()
}

/// SHA-256 fingerprint of the verified client certificate of a finished handshake: what
/// [`super::ClientRegistry::identify_by_certificate`] looks up.
pub fn peer_fingerprint(connection: &ServerConnection) -> Option<[u8; 32]> {
    peer_certificate(connection).map(|cert| kbi_trust::cert::fingerprint(cert.as_ref()))
}

/// The WebPKI verifier, reporting refusals.
struct ObservedVerifier {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    on_refusal: OnRefusal,
    /// false: a handshake without a certificate completes (the service refuses it after).
    certificate_mandatory: bool,
}

impl std::fmt::Debug for ObservedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedVerifier")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl rustls::server::danger::ClientCertVerifier for ObservedVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.certificate_mandatory && self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if verdict.is_err() {
            (self.on_refusal)();
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
