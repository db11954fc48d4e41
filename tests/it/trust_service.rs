//! Trust, end to end against the real service (`security-and-audit.md`): mutual TLS with
//! certificates made at test time (allowed, unknown CA refused at the handshake, no certificate
//! refused, foreign `Afzender` refused, operation not granted refused, unregistered certificate
//! refused), the durable audit log (N questions → N records that verify, answers carry the
//! audited reference), a full audit disk (30021 / 503, then recovery), SIGKILL under load (every
//! answer received has its record), the rate limit, and no INSZ in the service's own output.
//!
//! TLS calls go through `curl` (Debian, on the machine), which presents client certificates.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::support::server::{launch, start_with, Server};
use crate::support::{manifest_dir, request, request_with, CONTEXT, Q};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use serde_json::Value;

const SOAP_PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";
const QUESTION: &str = "/v1/integration-obligation/90011510383?date=2026-01-01";

fn demo_snapshot() -> PathBuf {
    manifest_dir().join("data/demo-snapshot.jsonl")
}

struct Issued {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Issued {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Issued { cert, key }
}

fn leaf(ca: &Issued, cn: &str, server: bool) -> Issued {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    if server {
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().unwrap()),
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
        ];
    }
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    Issued { cert, key }
}

/// A PKI on disk: server certificate, client CA, and four client certificates.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki { dir };
        let server_ca = ca("kbi test server CA");
        let client_ca = ca("kbi test client CA");
        let other_ca = ca("somebody else's CA");
        let write = |name: &str, text: String| std::fs::write(pki.path(name), text).unwrap();
        write("server-ca.pem", server_ca.cert.pem());
        write("client-ca.pem", client_ca.cert.pem());
        let server = leaf(&server_ca, "localhost", true);
        write("server.pem", server.cert.pem());
        write("server-key.pem", server.key.serialize_pem());
        let mut fingerprints = std::collections::BTreeMap::new();
        for (name, issuer) in [
            ("full", &client_ca),
            ("single-only", &client_ca),
            ("limited", &client_ca),
            ("unregistered", &client_ca),
            ("foreign", &other_ca),
        ] {
            let client = leaf(issuer, &format!("kbi.{name}"), false);
            write(&format!("{name}.pem"), client.cert.pem());
            write(&format!("{name}-key.pem"), client.key.serialize_pem());
            fingerprints.insert(name, kbi_trust::cert::fingerprint_hex(client.cert.der()));
        }
        write(
            "clients.toml",
            format!(
                r#"
[[client]]
id = "ovo000123"
certificate_fingerprints = ["{full}"]
afzenders = ["kbi.ovo000123"]
hoedanigheden = ["1234"]
operations = ["single", "batch"]
protocol = "demo"

[[client]]
id = "ovo000456"
certificate_fingerprints = ["{single}"]
afzenders = ["kbi.ovo000456"]
hoedanigheden = ["1234"]
operations = ["single"]
protocol = "demo"

[[client]]
id = "ovo000789"
certificate_fingerprints = ["{limited}"]
afzenders = ["kbi.ovo000789"]
hoedanigheden = ["1234"]
operations = ["single", "batch"]
protocol = "demo"
rate_limit = {{ requests_per_second = 0.5, burst = 3 }}
"#,
                full = fingerprints["full"],
                single = fingerprints["single-only"],
                limited = fingerprints["limited"],
            ),
        );
        pki
    }

    fn serve(&self) -> Server {
        let path = |name: &str| self.path(name).to_string_lossy().into_owned();
        let (cert, key, ca, clients) = (
            path("server.pem"),
            path("server-key.pem"),
            path("client-ca.pem"),
            path("clients.toml"),
        );
        launch(
            demo_snapshot().as_os_str(),
            &[],
            &[
                ("KBI_ADVICE__SERVER__PLAIN_HTTP", "false"),
                ("KBI_ADVICE__TLS__CERTIFICATE", &cert),
                ("KBI_ADVICE__TLS__KEY", &key),
                ("KBI_ADVICE__TLS__CLIENT_CA", &ca),
                ("KBI_ADVICE__CLIENTS__REGISTRY", &clients),
            ],
            true,
        )
    }

    /// `curl` over TLS as `client` (None: no certificate): (curl exit code, HTTP status, body).
    fn curl(
        &self,
        server: &Server,
        client: Option<&str>,
        path: &str,
        extra: &[&str],
    ) -> (i32, u16, String) {
        let mut command = Command::new("curl");
        command
            .args([
                "-sS",
                "--max-time",
                "20",
                "-w",
                "\n%{http_code}",
                "--cacert",
            ])
            .arg(self.path("server-ca.pem"))
            .arg("--resolve")
            .arg(format!("localhost:{}:127.0.0.1", server.port));
        if let Some(client) = client {
            command
                .arg("--cert")
                .arg(self.path(&format!("{client}.pem")))
                .arg("--key")
                .arg(self.path(&format!("{client}-key.pem")));
        }
        command
            .args(extra)
            .arg(format!("https://localhost:{}{path}", server.port));
        let output = command.output().expect("curl runs (Debian package curl)");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (
            output.status.code().unwrap_or(-1),
            status.trim().parse().unwrap_or(0),
            body.to_string(),
        )
    }
}

fn soap_as(identificatie: &str, questions: &[Q]) -> String {
    let context = CONTEXT
        .replace("demo.kbi-advice", identificatie)
        .replace("<Hoedanigheid>9999<", "<Hoedanigheid>1234<");
    request_with(&context, questions)
}

fn post_xml(body: &str) -> Vec<String> {
    vec![
        "-H".into(),
        "Content-Type: text/xml; charset=utf-8".into(),
        "--data-binary".into(),
        body.into(),
    ]
}

fn one_question() -> Vec<Q> {
    vec![Q::date("v1", "90011510383", "2026-01-01")]
}

#[test]
fn mutual_tls_admits_registered_clients_and_refuses_the_rest() {
    let pki = Pki::new();
    let server = pki.serve();

    // A registered client: REST and SOAP answer (no X-Client-Id needed: the certificate says).
    let (code, status, body) = pki.curl(&server, Some("full"), QUESTION, &[]);
    assert_eq!((code, status), (0, 200), "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"],
        "NOK"
    );
    let soap = soap_as("kbi.ovo000123", &one_question());
    let args = post_xml(&soap);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, status, body) = pki.curl(&server, Some("full"), SOAP_PATH, &args);
    assert_eq!((code, status), (0, 200), "{body}");
    assert!(body.contains("<Resultaat>NOK</Resultaat>"), "{body}");

    // Another CA, or no certificate: refused during the handshake (curl fails, no HTTP status).
    let before = server.metric("kbi_tls_handshake_failures_total");
    let (code, status, _) = pki.curl(&server, Some("foreign"), QUESTION, &[]);
    assert!(
        code != 0 && status == 0,
        "foreign CA got through: {code} {status}"
    );
    assert!(server.metric("kbi_tls_handshake_failures_total") > before);
    let (code, status, _) = pki.curl(&server, None, QUESTION, &[]);
    assert!(
        code != 0 && status == 0,
        "no certificate got through: {code} {status}"
    );

    // A valid certificate of the right CA that is not in the registry: 401 / 30010.
    let (code, status, body) = pki.curl(&server, Some("unregistered"), QUESTION, &[]);
    assert_eq!((code, status), (0, 401), "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "30010"
    );

    // X-Client-Id is not an identity in production: the certificate's client stays the caller.
    let (_, status, _) = pki.curl(
        &server,
        Some("unregistered"),
        QUESTION,
        &["-H", "X-Client-Id: ovo000123"],
    );
    assert_eq!(status, 401);
    assert!(server.live_once());
}

#[test]
fn a_foreign_afzender_or_an_operation_not_granted_is_refused() {
    let pki = Pki::new();
    let server = pki.serve();

    // The certificate is ovo000123's, the Afzender another client's: 30010, nothing answered.
    let soap = soap_as("kbi.ovo000456", &one_question());
    let args = post_xml(&soap);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, status, body) = pki.curl(&server, Some("full"), SOAP_PATH, &args);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<Identificatie>30010</Identificatie>"),
        "{body}"
    );
    assert!(!body.contains("<Antwoorden>"), "{body}");

    // ovo000456 may ask single questions only.
    let (_, status, _) = pki.curl(&server, Some("single-only"), QUESTION, &[]);
    assert_eq!(status, 200);
    let (_, status, body) = pki.curl(
        &server,
        Some("single-only"),
        "/v1/integration-obligation:batch",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"questions":[{"insz":"90011510383","date":"2026-01-01"}]}"#,
        ],
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "30010"
    );
    let two = vec![
        Q::date("v1", "90011510383", "2026-01-01"),
        Q::date("v2", "90011510185", "2026-01-01"),
    ];
    let soap = soap_as("kbi.ovo000456", &two);
    let args = post_xml(&soap);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, status, body) = pki.curl(&server, Some("single-only"), SOAP_PATH, &args);
    assert_eq!(status, 200);
    assert!(
        body.contains("<Identificatie>30010</Identificatie>"),
        "{body}"
    );
    assert!(!body.contains("<Antwoorden>"), "{body}");
}

#[test]
fn the_rate_limit_refuses_with_429_and_30013() {
    let pki = Pki::new();
    let server = pki.serve();
    // Burst 3, refilled at one token per two seconds: of six quick requests, at most four pass.
    let statuses: Vec<u16> = (0..6)
        .map(|_| pki.curl(&server, Some("limited"), QUESTION, &[]).1)
        .collect();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 2, "{statuses:?}");
    assert!(statuses[..3].iter().all(|s| *s == 200), "{statuses:?}");
    let (_, _, body) = pki.curl(&server, Some("limited"), QUESTION, &[]);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "30013"
    );
    assert!(server.metric(r#"kbi_rate_limited_total{client="ovo000789"}"#) >= 2.0);
}

/// Every record of the audit files in `dir`.
fn audit_records(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("jsonl")))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // A segment's records end where its preallocated zeros begin.
            text[..text.find('\0').unwrap_or(text.len())]
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn verify(dir: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .args(["audit", "verify", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn concurrent_questions_leave_exactly_one_verified_record_each() {
    let server = start_with(&demo_snapshot(), &[], &[]);
    let references = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (url, soap_url, references) = (
                server.url(QUESTION),
                server.url(SOAP_PATH),
                references.clone(),
            );
            std::thread::spawn(move || {
                let client = crate::support::http();
                for i in 0..10 {
                    let response = if (t + i) % 2 == 0 {
                        client.get(&url).send().unwrap()
                    } else {
                        client
                            .post(&soap_url)
                            .header("Content-Type", "text/xml; charset=utf-8")
                            .body(request(&[Q::date("v", "90011510383", "2026-01-01")]))
                            .send()
                            .unwrap()
                    };
                    assert_eq!(response.status().as_u16(), 200);
                    let referte = response.headers()["x-referte"]
                        .to_str()
                        .unwrap()
                        .to_string();
                    references.lock().unwrap().push(referte);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let records = audit_records(server.audit_dir());
    assert_eq!(records.len(), 80, "one record per question");
    let mut logged: Vec<String> = records
        .iter()
        .map(|r| r["server_reference"].as_str().unwrap().to_string())
        .collect();
    logged.sort();
    let mut answered = references.lock().unwrap().clone();
    answered.sort();
    assert_eq!(
        logged, answered,
        "every answer's reference is audited, once"
    );
    for record in &records {
        assert_eq!(record["client_id"], "demo");
        assert_eq!(record["insz"], "90011510383");
        assert_eq!(record["snapshot_id"], "demo-2026-11-01");
    }
    let (ok, report) = verify(server.audit_dir());
    assert!(ok, "{report}");
}

#[test]
fn a_full_audit_disk_refuses_answers_and_they_resume_when_space_returns() {
    let mount = crate::support::SmallDisk::mount();
    let audit = mount.path().join("audit");
    let audit_text = audit.to_string_lossy().into_owned();
    let server = start_with(
        &demo_snapshot(),
        &[],
        &[("KBI_ADVICE__AUDIT__DIR", audit_text.as_str())],
    );
    let client = crate::support::http();
    assert_eq!(
        client.get(server.url(QUESTION)).send().unwrap().status(),
        200
    );

    // Fill the disk to the last byte.
    let filler = mount.path().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![b'x'; 1024];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    while std::io::Write::write_all(&mut file, b"x").is_ok() {}
    drop(file);

    // The audit file's last page may still have room for a few records (tmpfs allocates whole
    // pages): answers go on until a record no longer fits, then every one is refused.
    let mut answered = 1;
    let refusal = loop {
        let response = client.get(server.url(QUESTION)).send().unwrap();
        if response.status().as_u16() != 200 {
            break response;
        }
        answered += 1;
        assert!(answered < 100, "the full disk never refused an answer");
    };
    assert_eq!(refusal.status().as_u16(), 503);
    let problem: Value = refusal.json().unwrap();
    assert_eq!(problem["code"], "30021");
    let soap = client
        .post(server.url(SOAP_PATH))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(request(&one_question()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        soap.contains("<Identificatie>30021</Identificatie>"),
        "{soap}"
    );
    assert!(
        !soap.contains("<Antwoorden>"),
        "an unaudited answer left: {soap}"
    );
    assert!(server.metric("kbi_audit_failures_total") >= 2.0);

    // Space again: answers resume, and the chain is whole.
    std::fs::remove_file(&filler).unwrap();
    let response = client.get(server.url(QUESTION)).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (ok, report) = verify(&audit);
    assert!(ok, "{report}");
    // Exactly the answers given are recorded: none of the refused ones.
    assert_eq!(audit_records(&audit).len(), answered + 1);
}

#[test]
fn after_sigkill_every_answer_received_has_its_record() {
    let mut server = start_with(&demo_snapshot(), &[], &[]);
    let received = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, received) = (server.url(QUESTION), received.clone());
            std::thread::spawn(move || {
                let client = crate::support::http();
                // Until the server dies under us.
                while let Ok(response) = client.get(&url).send() {
                    if response.status().as_u16() != 200 {
                        continue;
                    }
                    let referte = response.headers()["x-referte"]
                        .to_str()
                        .unwrap()
                        .to_string();
                    if response.bytes().is_ok() {
                        received.lock().unwrap().push(referte);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(700));
    server.kill();
    for thread in threads {
        thread.join().unwrap();
    }
    let received = received.lock().unwrap().clone();
    assert!(received.len() > 20, "too little traffic before the kill");
    let logged: std::collections::HashSet<String> = audit_records(server.audit_dir())
        .iter()
        .map(|r| r["server_reference"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<&String> = received.iter().filter(|r| !logged.contains(*r)).collect();
    assert!(missing.is_empty(), "answers without a record: {missing:?}");
    // A record may exist for an answer that was lost with the process; never the reverse.
    assert!(logged.len() >= received.len());
}

/// Refusals decided before the body is read (401, 403, 413, 415, 429) over HTTP/1.1 and HTTP/2
/// (ALPN picks HTTP/2 when curl offers it): each is a complete response with its status, never a
/// stream error or a reset instead of it (issue 14, numbered failure 3).
#[test]
fn refusals_are_complete_responses_over_http1_and_http2() {
    let pki = Pki::new();
    let server = pki.serve();
    let dir = tempfile::tempdir().unwrap();
    // A batch body larger than the initial HTTP/2 flow-control window (64 KiB), so the client is
    // still sending when the refusal comes, and one over the 1 MiB limit.
    let question = r#"{"insz":"90011510383","date":"2026-01-01"},"#;
    let batch = format!(
        "{{\"questions\":[{}{}]}}",
        question.repeat(4000),
        question.trim_end_matches(',')
    );
    let large = dir.path().join("batch.json");
    std::fs::write(&large, &batch).unwrap();
    let too_large = dir.path().join("too-large.json");
    std::fs::write(&too_large, " ".repeat(1_200_000)).unwrap();
    let at = |path: &Path| format!("@{}", path.display());
    let (large, too_large) = (at(&large), at(&too_large));
    let cases: [(&str, &str, &str, u16); 4] = [
        ("single-only", "application/json", &large, 403),
        ("unregistered", "application/json", &large, 401),
        ("full", "application/json", &too_large, 413),
        ("full", "text/plain", &large, 415),
    ];
    let batch_as = |client: &str, content_type: &str, body: &str, protocol: &str| {
        pki.curl(
            &server,
            Some(client),
            "/v1/integration-obligation:batch",
            &[
                protocol,
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data-binary",
                body,
            ],
        )
    };
    let mut seen = Vec::new();
    for i in 0..20 {
        let (client, content_type, body, expected) = cases[i % cases.len()];
        let protocol = if i % 2 == 0 { "--http1.1" } else { "--http2" };
        let (code, status, text) = batch_as(client, content_type, body, protocol);
        seen.push((protocol, expected, code, status));
        assert_eq!(
            (code, status),
            (0, expected),
            "request {i} over {protocol}: {text}\nso far: {seen:?}"
        );
    }
    // 429: the rate-limited client's burst (3) used up, then one refusal over each protocol
    // (its next token comes after two seconds).
    for _ in 0..3 {
        pki.curl(&server, Some("limited"), QUESTION, &[]);
    }
    for protocol in ["--http1.1", "--http2"] {
        let (code, status, text) = batch_as("limited", "application/json", &large, protocol);
        assert_eq!((code, status), (0, 429), "over {protocol}: {text}");
    }
    assert!(server.live_once());
}

/// A TLS client that sends no certificate at all is refused before any HTTP is read and counted
/// in `kbi_tls_handshake_failures_total` (rustls refuses such a handshake without any hook).
#[test]
fn a_handshake_without_a_certificate_is_counted() {
    let pki = Pki::new();
    let server = pki.serve();
    let before = server.metric("kbi_tls_handshake_failures_total");
    for protocol in ["--http1.1", "--http2"] {
        let (code, status, _) = pki.curl(&server, None, QUESTION, &[protocol]);
        assert!(
            code != 0 && status == 0,
            "no certificate got an HTTP answer over {protocol}: {code} {status}"
        );
    }
    let after = server.metric("kbi_tls_handshake_failures_total");
    assert_eq!(after - before, 2.0, "before {before}, after {after}");
    // A registered client still gets in.
    let (code, status, _) = pki.curl(&server, Some("full"), QUESTION, &[]);
    assert_eq!((code, status), (0, 200));
}
