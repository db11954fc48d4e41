//! Mutual TLS (`security-and-audit.md`, Transport and identity), over real sockets on loopback:
//! a client certificate from the configured CA completes the handshake and maps to its client;
//! a certificate from another CA, or none, is refused at the handshake.

use std::path::Path;
use std::sync::Arc;

use kbi_advice::trust::{peer_fingerprint, server_config, TlsError, TlsFiles};
use kbi_trust::{cert, ClientRegistry};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { cert, key }
}

struct Leaf {
    cert: Certificate,
    key: KeyPair,
}

fn leaf(ca: &Ca, cn: &str, org: &str, server: bool) -> Leaf {
    let names = if server {
        vec!["localhost".to_owned()]
    } else {
        Vec::new()
    };
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    Leaf { cert, key }
}

struct Pki {
    dir: tempfile::TempDir,
    files: TlsFiles,
    server_ca: Ca,
    good_client: Leaf,
    foreign_client: Leaf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("kbi test server CA");
    let client_ca = ca("kbi test client CA");
    let other_ca = ca("somebody else's CA");
    let server = leaf(&server_ca, "localhost", "kbi-advice", true);
    let good_client = leaf(&client_ca, "kbi.ovo000123", "Agentschap", false);
    // Same subject, other CA: must not get in by its name.
    let foreign_client = leaf(&other_ca, "kbi.ovo000123", "Agentschap", false);
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let files = TlsFiles {
        certificate: write("server.pem", server.cert.pem()),
        key: write("server.key", server.key.serialize_pem()),
        client_ca: write("client-ca.pem", client_ca.cert.pem()),
    };
    Pki {
        dir,
        files,
        server_ca,
        good_client,
        foreign_client,
    }
}

fn client_config(pki: &Pki, client: Option<&Leaf>, tls12_only: bool) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.server_ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    match client {
        Some(leaf) => {
            let chain: Vec<CertificateDer<'static>> = vec![leaf.cert.der().clone()];
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    }
}

/// What the server saw of one connection.
#[derive(Debug)]
enum Seen {
    Accepted {
        fingerprint: Option<[u8; 32]>,
        version: Option<rustls::ProtocolVersion>,
    },
    Refused(String),
}

/// One handshake over loopback; returns what the server saw and whether the client could
/// exchange a byte afterwards.
async fn handshake(config: rustls::ServerConfig, client: rustls::ClientConfig) -> (Seen, bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        match acceptor.accept(stream).await {
            Ok(mut tls) => {
                let (_, connection) = tls.get_ref();
                let seen = Seen::Accepted {
                    fingerprint: peer_fingerprint(connection),
                    version: connection.protocol_version(),
                };
                let mut byte = [0u8; 1];
                if tls.read_exact(&mut byte).await.is_ok() {
                    let _ = tls.write_all(&byte).await;
                    let _ = tls.flush().await;
                }
                seen
            }
            Err(error) => Seen::Refused(error.to_string()),
        }
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let stream = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let echoed = match connector.connect(name, stream).await {
        // In TLS 1.3 the client finishes its side before the server judges its certificate;
        // a refusal then shows on the first read.
        Ok(mut tls) => {
            let mut byte = [0u8; 1];
            tls.write_all(b"x").await.is_ok()
                && tls.flush().await.is_ok()
                && tls.read_exact(&mut byte).await.is_ok()
                && byte == *b"x"
        }
        Err(_) => false,
    };
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("server side finished")
        .unwrap();
    (seen, echoed)
}

#[tokio::test]
async fn a_client_certificate_from_the_ca_completes_the_handshake() {
    let pki = pki();
    let config = server_config(&pki.files).unwrap();
    let (seen, echoed) =
        handshake(config, client_config(&pki, Some(&pki.good_client), false)).await;
    let expected = cert::fingerprint(pki.good_client.cert.der());
    match seen {
        Seen::Accepted {
            fingerprint,
            version,
        } => {
            assert_eq!(fingerprint, Some(expected));
            assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3));
        }
        Seen::Refused(e) => panic!("refused: {e}"),
    }
    assert!(echoed);
}

#[tokio::test]
async fn tls_1_2_is_accepted_too() {
    let pki = pki();
    let config = server_config(&pki.files).unwrap();
    let (seen, echoed) = handshake(config, client_config(&pki, Some(&pki.good_client), true)).await;
    assert!(
        matches!(
            seen,
            Seen::Accepted {
                version: Some(rustls::ProtocolVersion::TLSv1_2),
                ..
            }
        ),
        "{seen:?}"
    );
    assert!(echoed);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let pki = pki();
    let config = server_config(&pki.files).unwrap();
    let (seen, echoed) = handshake(
        config,
        client_config(&pki, Some(&pki.foreign_client), false),
    )
    .await;
    match seen {
        Seen::Refused(error) => assert!(error.contains("certificate"), "{error}"),
        Seen::Accepted { .. } => panic!("a foreign certificate was accepted"),
    }
    assert!(!echoed);
}

#[tokio::test]
async fn no_client_certificate_is_refused_at_the_handshake() {
    let pki = pki();
    let config = server_config(&pki.files).unwrap();
    let (seen, echoed) = handshake(config, client_config(&pki, None, false)).await;
    match seen {
        Seen::Refused(error) => assert!(error.to_lowercase().contains("certificate"), "{error}"),
        Seen::Accepted { .. } => panic!("a client without certificate was accepted"),
    }
    assert!(!echoed);
}

#[test]
fn the_peer_certificate_maps_to_its_client_by_fingerprint_or_subject() {
    let pki = pki();
    let der = pki.good_client.cert.der();
    let fingerprint = cert::fingerprint_hex(der);
    let registry = ClientRegistry::from_toml(&format!(
        r#"
[[client]]
id = "by-fingerprint"
certificate_fingerprints = ["{fingerprint}"]
afzenders = ["a"]
hoedanigheden = ["1"]
operations = ["single"]
protocol = "demo"

[[client]]
id = "by-subject"
certificate_subjects = ["O=Agentschap, CN=kbi.ovo000123"]
afzenders = ["b"]
hoedanigheden = ["1"]
operations = ["single"]
protocol = "demo"
"#
    ))
    .unwrap();
    assert_eq!(
        registry.identify_by_certificate(der).unwrap().id,
        "by-fingerprint",
        "a fingerprint is the stronger tie"
    );
    let renewed = leaf(
        &ca("kbi test client CA 2"),
        "kbi.ovo000123",
        "Agentschap",
        false,
    );
    assert_eq!(
        registry
            .identify_by_certificate(renewed.cert.der())
            .unwrap()
            .id,
        "by-subject"
    );
    let other = leaf(&ca("x"), "kbi.other", "Agentschap", false);
    assert!(registry.identify_by_certificate(other.cert.der()).is_none());
    let subject = cert::subject(der).unwrap();
    assert_eq!(subject[0].name, "CN");
    assert_eq!(subject[0].value, "kbi.ovo000123");
}

fn error_of(files: &TlsFiles) -> String {
    match server_config(files) {
        Ok(_) => panic!("configuration accepted"),
        Err(error) => error.to_string(),
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn configuration_errors_name_the_file() {
    let pki = pki();
    let missing = pki.dir.path().join("missing.key");
    let e = error_of(&TlsFiles {
        key: missing.clone(),
        ..pki.files.clone()
    });
    assert!(
        e.contains(&path_str(&missing)) && e.contains("server key"),
        "{e}"
    );

    let garbage = pki.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a pem file").unwrap();
    let e = error_of(&TlsFiles {
        client_ca: garbage.clone(),
        ..pki.files.clone()
    });
    assert!(
        e.contains(&path_str(&garbage)) && e.contains("client CA bundle"),
        "{e}"
    );
    let e = error_of(&TlsFiles {
        certificate: garbage.clone(),
        ..pki.files.clone()
    });
    assert!(e.contains("server certificate"), "{e}");
    let e = error_of(&TlsFiles {
        key: garbage.clone(),
        ..pki.files.clone()
    });
    assert!(e.contains(&path_str(&garbage)), "{e}");

    // A key that does not belong to the certificate.
    let other_key = pki.dir.path().join("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let error = server_config(&TlsFiles {
        key: other_key.clone(),
        ..pki.files.clone()
    })
    .err()
    .unwrap();
    assert!(matches!(error, TlsError::Invalid { .. }), "{error}");
    assert!(error.to_string().contains(&path_str(&other_key)), "{error}");
}
