//! Hostile requests and connections against the real service (issue 14, the request path;
//! `docs/security.md`, Hostile inputs): a namespace-declaration flood, the per-request time
//! budget, slow request bodies under a 1,024-descriptor limit, a saturated client port with the
//! ops port still answering, the batch's 415, reference dates wrapped in Unicode spaces, and the
//! WSDL address against forged forwarding headers.
//!
//! Times are bounds with wide margins for a debug build on a loaded machine, each far below what
//! the attack cost before it was stopped (seconds to minutes, or no answer at all).
//!
//! Why this is a test binary of its own and not a module of `tests/it/`: its heavy tests raise
//! this process's open-file limit (process-wide state) and hold 1,100 connections each; run beside
//! the other integration tests (which share one process and run in parallel) they would measure
//! the others' load instead of the service's shedding. Cargo runs test binaries one after another,
//! so here they only share the process with each other (and [`HEAVY`] serialises those).

#[path = "it/support/mod.rs"]
mod support;

// Issue 24, item 7 (silent and slow connections): raises the open-file limit and holds thousands
// of connections, so it lives in this binary for the reasons above (see its header).
#[path = "hostile_net/hostile_connections.rs"]
mod hostile_connections;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::server::{launch_limited, start, start_with, Server};
use crate::support::*;
use serde_json::Value;

const SOAP_PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";
const BATCH: &str = "/v1/integration-obligation:batch";
const QUESTION: &str = "/v1/integration-obligation/90011510383?date=2026-01-01";

/// The tests that open 1,100 connections run one at a time (two at once would measure each
/// other).
static HEAVY: Mutex<()> = Mutex::new(());

fn demo() -> PathBuf {
    manifest_dir().join("data/demo-snapshot.jsonl")
}

fn post_soap(server: &Server, body: impl Into<reqwest::blocking::Body>) -> (u16, Vec<u8>) {
    let response = reqwest::blocking::Client::new()
        .post(server.url(SOAP_PATH))
        .header("content-type", "text/xml; charset=utf-8")
        .body(body)
        .send()
        .expect("the SOAP door answers");
    let status = response.status().as_u16();
    (status, response.bytes().unwrap().to_vec())
}

/// A valid request whose operation element carries as many `xmlns:pN="u"` declarations as fit
/// under `limit` bytes: the request the issue measured at ≈ 10 s of CPU (80,000 declarations).
fn namespace_flood(limit: usize) -> (String, usize) {
    let valid = request(&[Q::date("v1", "90011510383", "2026-01-01")]);
    let (head, tail) = valid
        .split_once("<geef:GeefAdviesInburgeringsplicht")
        .unwrap();
    let mut declarations = String::new();
    let mut count = 0;
    let room = limit - valid.len() - 64;
    loop {
        let next = format!(" xmlns:p{count:x}=\"u\"");
        if declarations.len() + next.len() > room {
            break;
        }
        declarations.push_str(&next);
        count += 1;
    }
    (
        format!("{head}<geef:GeefAdviesInburgeringsplicht{declarations}{tail}"),
        count,
    )
}

#[test]
fn a_namespace_flood_is_refused_at_once_and_other_callers_are_not_held_up() {
    let server = start(&demo());
    let (flood, count) = namespace_flood(1 << 20);
    assert!(count > 60_000 && flood.len() < 1 << 20, "{count}");

    // A normal request first, as the yardstick of this machine and build.
    let started = Instant::now();
    let (status, _) = post_soap(
        &server,
        request(&[Q::date("v1", "90011510383", "2026-01-01")]),
    );
    let normal = started.elapsed();
    assert_eq!(status, 200);

    let started = Instant::now();
    let (status, body) = post_soap(&server, flood.clone());
    let flooded = started.elapsed();
    assert_eq!(status, 500);
    let (code, string) = fault(&body);
    assert_eq!(code, "soap:Client");
    assert!(string.contains("namespace declarations"), "{string}");
    // Refused at the 33rd declaration: the cost is sending and reading 1 MiB (≈ 0.1 s in a debug
    // build on a loaded machine), not resolving 65,000² bindings (minutes in a debug build).
    assert!(
        flooded < Duration::from_millis(1000) + normal * 5,
        "flood answered in {flooded:?} (a normal request: {normal:?})"
    );

    // Two callers flooding while a third asks REST questions: the questions are not held up.
    let server = Arc::new(server);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let (server, stop, flood) = (server.clone(), stop.clone(), flood.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = post_soap(&server, flood.clone());
                    assert_eq!(status, 500);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let client = http();
    let mut took = Vec::with_capacity(20);
    for _ in 0..20 {
        let started = Instant::now();
        let response = client.get(server.url(QUESTION)).send().unwrap();
        took.push(started.elapsed());
        assert_eq!(response.status().as_u16(), 200);
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let floods: usize = flooders.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(floods >= 2, "the floods ran alongside ({floods})");
    took.sort();
    let (median, slowest) = (took[took.len() / 2], took[took.len() - 1]);
    eprintln!(
        "normal request {normal:?}, flood ({count} declarations) {flooded:?}, REST questions \
         during {floods} floods: median {median:?}, slowest {slowest:?}"
    );
    // Floods that held the workers up (a quadratic resolve takes minutes in this build) would
    // slow most questions, so the median carries the claim; one question that met a pause of
    // the machine (the hypervisor has stolen 150 ms at once here) is not the service's doing,
    // and the slowest only has to stay far from such a stall.
    assert!(
        median < Duration::from_millis(250),
        "REST questions during the floods: median {median:?} (all: {took:?})"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "a REST question took {slowest:?} during the floods (all: {took:?})"
    );
}

#[test]
fn too_many_attributes_or_namespaces_in_scope_are_faults_naming_the_limit() {
    let server = start(&demo());
    let valid = request(&[Q::date("v1", "90011510383", "2026-01-01")]);
    // 65 plain attributes on one element.
    let attributes: String = (0..65).map(|i| format!(" a{i}=\"x\"")).collect();
    let body = valid.replace("<Verzoek>", &format!("<Verzoek{attributes}>"));
    let (status, body) = post_soap(&server, body);
    assert_eq!(status, 500);
    assert!(
        fault(&body).1.contains("more than 64 attributes"),
        "{body:?}"
    );
    // 30 declarations on each of three nested elements: each is allowed, together 90 > 64.
    let declare = |tag: &str, base: usize| -> String {
        let declarations: String = (base..base + 30)
            .map(|i| format!(" xmlns:q{i}=\"urn:q\""))
            .collect();
        format!("<{tag}{declarations}>")
    };
    let body = valid
        .replace("<Verzoek>", &declare("Verzoek", 0))
        .replace("<Context>", &declare("Context", 100))
        .replace("<Bericht>", &declare("Bericht", 200));
    let (status, body) = post_soap(&server, body);
    assert_eq!(status, 500);
    let (_, string) = fault(&body);
    assert!(
        string.contains("more than 64 namespace declarations in scope"),
        "{string}"
    );
}

#[test]
fn the_time_budget_ends_long_work_with_a_fault_not_a_stall() {
    // A budget of 1 ms: no request of 1,000 SOAP questions on the hardened parser, nor of
    // 10,000 REST questions, can be parsed and judged within it (this test build takes ≈ 15 ms
    // for the SOAP parse alone). The SOAP body carries a comment so that the fast reader, which
    // reads 1,000 canonical questions in under a millisecond even here, hands it on.
    let server = start_with(
        &demo(),
        &[],
        &[("KBI_ADVICE__SERVER__REQUEST_TIME_BUDGET_MS", "1")],
    );
    let questions: Vec<Q> = (0..1000)
        .map(|i| Q::date(&format!("v{i}"), "90011510383", "2026-01-01"))
        .collect();
    let started = Instant::now();
    let body = request(&questions).replacen("<Vraag>", "<!-- deferred --><Vraag>", 1);
    let (status, body) = post_soap(&server, body);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(status, 500);
    let (code, string) = fault(&body);
    assert_eq!(code, "soap:Server");
    assert!(string.contains("time budget"), "{string}");

    let batch: Vec<Value> = (0..10_000)
        .map(|_| serde_json::json!({"insz": "90011510383", "date": "2026-01-01"}))
        .collect();
    let response = http()
        .post(server.url(BATCH))
        .json(&serde_json::json!({ "questions": batch }))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let problem: Value = response.json().unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("time budget"),
        "{problem}"
    );
    // Nothing was answered, so nothing was audited.
    let audited: usize = std::fs::read_dir(server.audit_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
        .sum();
    assert_eq!(audited, 0);
}

/// What became of one slow client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    /// The server answered with this status.
    Answered(u16),
    /// The connection could not be made or broke without an answer.
    Failed,
    /// Still open and unanswered when the test gave up.
    Hanging,
}

/// Opens `per_peer` connections from each of `peers` (loopback source addresses) that send a
/// batch head announcing 1 MiB and then one byte a second, each until the server answers or
/// `give_up` passes. Runs in the background; `progress` counts connections made and answers.
fn slow_clients(
    server: SocketAddr,
    peers: Vec<IpAddr>,
    per_peer: usize,
    give_up: Duration,
    progress: Arc<Progress>,
) -> std::thread::JoinHandle<Vec<Slow>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut tasks = Vec::new();
            for peer in peers {
                for _ in 0..per_peer {
                    let progress = progress.clone();
                    tasks.push(tokio::spawn(async move {
                        let outcome = slow_client(server, peer, give_up, &progress).await;
                        if matches!(outcome, Slow::Answered(_)) {
                            progress.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        if outcome != Slow::Hanging {
                            progress.ended.fetch_add(1, Ordering::Relaxed);
                        }
                        outcome
                    }));
                }
            }
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.unwrap_or(Slow::Failed));
            }
            outcomes
        })
    })
}

/// How far the slow clients got.
#[derive(Default)]
struct Progress {
    connected: AtomicUsize,
    answered: AtomicUsize,
    /// Answered, or closed by the service without an answer (shed near the cap).
    ended: AtomicUsize,
}

async fn slow_client(
    server: SocketAddr,
    peer: IpAddr,
    give_up: Duration,
    progress: &Progress,
) -> Slow {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let until = tokio::time::Instant::now() + give_up;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if socket.bind(SocketAddr::new(peer, 0)).is_err() {
        return Slow::Failed;
    }
    let Ok(Ok(mut stream)) = tokio::time::timeout_at(until, socket.connect(server)).await else {
        return Slow::Failed;
    };
    progress.connected.fetch_add(1, Ordering::Relaxed);
    let head = format!(
        "POST {BATCH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Client-Id: demo\r\n\
         Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return Slow::Failed;
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        let tick = tokio::time::Instant::now() + Duration::from_secs(1);
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return status_of(&answer).map_or(Slow::Failed, Slow::Answered),
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if let Some(status) = status_of(&answer) {
                        return Slow::Answered(status);
                    }
                }
            },
            _ = tokio::time::sleep_until(tick.min(until)) => {
                if tokio::time::Instant::now() >= until {
                    return Slow::Hanging;
                }
                // One byte of JSON whitespace a second.
                if stream.write_all(b" ").await.is_err() {
                    return Slow::Failed;
                }
            }
        }
    }
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(answer.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

fn loopback(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// Waits until `connected` reaches `target` or `limit` passes.
fn wait_for(connected: &AtomicUsize, target: usize, limit: Duration) -> usize {
    let started = Instant::now();
    while connected.load(Ordering::Relaxed) < target && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    connected.load(Ordering::Relaxed)
}

/// The service limited to 1,024 open files (the usual login default), and this test process
/// allowed enough for its own 1,100 connections (raised to its hard limit, as the service does).
fn limited_server(envs: &[(&str, &str)]) -> Server {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max.min(1 << 20),
                rlim_max: limit.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= 2048,
        "this test needs an open-file limit of at least 2,048 (hard limit {})",
        limit.rlim_max
    );
    launch_limited(demo().as_os_str(), &[], envs, true, Some(1024))
}

#[test]
fn slow_bodies_from_one_address_under_1024_files_do_not_lock_out_other_callers() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let server = limited_server(&[("KBI_ADVICE__SERVER__BODY_TIMEOUT_MS", "3000")]);
    let address: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let progress = Arc::new(Progress::default());
    let attack = slow_clients(
        address,
        vec![loopback(2)],
        1100,
        Duration::from_secs(15),
        progress.clone(),
    );
    let reached = wait_for(&progress.connected, 1100, Duration::from_secs(5));
    assert!(reached > 1000, "only {reached} slow connections were made");
    // Measured once the burst of 1,100 connections has been taken in (the 844 over the
    // per-address limit refused with a 503, or shed near the cap: closed unanswered): the
    // steady state of the attack, 256 bodies trickling in.
    let refused = wait_for(&progress.ended, 800, Duration::from_secs(5));
    assert!(
        refused >= 800,
        "only {refused} connections were refused or shed"
    );

    // Meanwhile a normal client (another address) gets every answer within a second.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut took = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let answered = client
            .get(server.url(QUESTION))
            .header("x-client-id", CLIENT_ID)
            .send()
            .is_ok_and(|response| response.status().as_u16() == 200);
        // Not answered (or not 200) counts as taking forever.
        took.push(if answered {
            started.elapsed()
        } else {
            Duration::MAX
        });
        let live = client.get(server.ops_url("/health/live")).send().unwrap();
        assert!(live.status().is_success());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every slow connection got an answer: 503 beyond the 256 per address, 408 for those
    // held once their body fell behind the minimum rate (3 s here); none was left hanging.
    let outcomes = attack.join().unwrap();
    let count = |wanted: Slow| outcomes.iter().filter(|o| **o == wanted).count();
    let (refused, timed_out) = (count(Slow::Answered(503)), count(Slow::Answered(408)));
    let summary = format!(
        "questions took {took:?}; slow bodies: 503 {refused}, 408 {timed_out}, failed {}, \
         hanging {}",
        count(Slow::Failed),
        count(Slow::Hanging)
    );
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(1)),
        "{summary}"
    );
    assert_eq!(count(Slow::Hanging), 0, "{summary}");
    // Shed connections (issue 24, item 7) are closed without an answer.
    assert!(
        refused + count(Slow::Failed) >= 1100 - 256 - 20,
        "{summary}"
    );
    assert!(timed_out >= 200, "{summary}");
    assert!(!server.log().contains("Too many open files"));
}

#[test]
fn the_ops_port_answers_while_the_client_port_is_full() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let server = limited_server(&[("KBI_ADVICE__SERVER__BODY_TIMEOUT_MS", "4000")]);
    let address: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let progress = Arc::new(Progress::default());
    // 1,100 slow connections from five addresses, under the per-address limit: the listener's
    // own cap (1,024 descriptors less the reserve of 256) is what holds.
    let attack = slow_clients(
        address,
        (2..7).map(loopback).collect(),
        220,
        Duration::from_secs(15),
        progress.clone(),
    );
    let reached = wait_for(&progress.connected, 1100, Duration::from_secs(3));
    assert!(reached > 1000, "only {reached} slow connections were made");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        for path in ["/health/live", "/metrics"] {
            let response = client
                .get(server.ops_url(path))
                .send()
                .expect("the ops port answers while the client port is full");
            assert!(response.status().is_success());
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "the ops port took {took:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Once the slow bodies are cut off (4 s after they began), the client port answers again.
    let outcomes = attack.join().unwrap();
    assert!(
        !outcomes.contains(&Slow::Hanging),
        "a slow connection was never answered nor closed"
    );
    let response = client
        .get(server.url(QUESTION))
        .header("x-client-id", CLIENT_ID)
        .send()
        .expect("the client port answers after the attack");
    assert_eq!(response.status().as_u16(), 200);
    assert!(!server.log().contains("Too many open files"));
}

#[test]
fn the_batch_takes_json_only() {
    let server = start(&demo());
    let body = r#"{"questions":[{"insz":"90011510383","date":"2026-01-01"}]}"#;
    for content_type in [Some("text/plain"), None, Some("application/xml")] {
        let mut request = http().post(server.url(BATCH)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status().as_u16(), 415, "{content_type:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().unwrap();
        assert_eq!(problem["status"], 415);
    }
    for content_type in ["application/json", "application/json; charset=utf-8"] {
        let response = http()
            .post(server.url(BATCH))
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{content_type}");
    }
}

#[test]
fn a_reference_date_in_unicode_spaces_is_refused_like_such_an_insz() {
    let server = start(&demo());
    for space in ["\u{a0}", "\u{3000}"] {
        // REST: the date wrapped (30002), the INSZ wrapped (30001).
        let date = format!("{space}2026-01-01{space}");
        let response = http()
            .get(server.url("/v1/integration-obligation/90011510383"))
            .query(&[("date", date.as_str())])
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.json::<Value>().unwrap()["code"], "30002");
        let response = http()
            .get(server.url(&format!(
                "/v1/integration-obligation/{}?date=2026-01-01",
                urlencode(&format!("{space}90011510383"))
            )))
            .send()
            .unwrap();
        assert_eq!(response.json::<Value>().unwrap()["code"], "30001");
        let response = http()
            .post(server.url(BATCH))
            .json(&serde_json::json!({"questions": [
                {"insz": "90011510383", "date": date},
                {"insz": "90011510383", "premium_year": format!("{space}2027")},
                {"insz": "90011510383", "date": " 2026-01-01\t"},
            ]}))
            .send()
            .unwrap();
        let answers: Value = response.json().unwrap();
        assert_eq!(answers["answers"][0]["error"]["code"], "30002");
        assert_eq!(answers["answers"][1]["error"]["code"], "30002");
        // ASCII whitespace around a value stays what it was: padding.
        assert_eq!(answers["answers"][2]["result"], "NOK", "{answers}");

        // SOAP: the question's Uitzondering is 30002.
        let (status, body) = post_soap(
            &server,
            request(&[
                Q::date("v1", "90011510383", &date),
                Q::date("v2", "90011510383", "2026-01-01"),
            ]),
        );
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        let first = text.split("<Antwoord>").nth(1).unwrap();
        assert!(first.contains("30002"), "{first}");
        let second = text.split("<Antwoord>").nth(2).unwrap();
        assert!(second.contains("<Resultaat>NOK</Resultaat>"), "{second}");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// The `soap:address` of the WSDL served to a GET with `headers`.
fn wsdl_address(server: &Server, headers: &[(&str, &str)]) -> String {
    let mut request =
        reqwest::blocking::Client::new().get(server.url(&format!("{SOAP_PATH}?wsdl")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let wsdl = request.send().unwrap().text().unwrap();
    let start = wsdl.find("soap:address location=\"").expect("soap:address") + 23;
    wsdl[start..start + wsdl[start..].find('"').unwrap()].to_string()
}

#[test]
fn the_wsdl_address_follows_forwarding_headers_only_from_trusted_proxies() {
    let forged = [
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-proto", "https"),
    ];
    let rfc7239 = [("forwarded", "host=evil.example;proto=https")];
    let own = |server: &Server| format!("http://127.0.0.1:{}{SOAP_PATH}", server.port);

    // Nobody trusted (the default): the address is the one the caller used.
    let server = start(&demo());
    assert_eq!(wsdl_address(&server, &[]), own(&server));
    assert_eq!(wsdl_address(&server, &forged), own(&server));
    assert_eq!(wsdl_address(&server, &rfc7239), own(&server));
    drop(server);

    // The test's own address as the trusted proxy: its headers are believed.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n").unwrap();
    let server = start_with(&demo(), &["--config", config.to_str().unwrap()], &[]);
    let proxied = format!("https://evil.example{SOAP_PATH}");
    assert_eq!(wsdl_address(&server, &forged), proxied);
    assert_eq!(wsdl_address(&server, &rfc7239), proxied);
    assert_eq!(wsdl_address(&server, &[]), own(&server));
    drop(server);

    // A configured public address beats everything.
    let server = start_with(
        &demo(),
        &[],
        &[(
            "KBI_ADVICE__SERVER__PUBLIC_URL",
            "https://kbi-advice.example.vlaanderen.be/",
        )],
    );
    let public = format!("https://kbi-advice.example.vlaanderen.be{SOAP_PATH}");
    assert_eq!(wsdl_address(&server, &[]), public);
    assert_eq!(wsdl_address(&server, &forged), public);
}
