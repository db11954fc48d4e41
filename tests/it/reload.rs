//! Hot reload of a file snapshot: swaps under traffic never fail a request, answers switch to the
//! new snapshot, a bad new snapshot is refused while the old one keeps serving, and SIGHUP
//! reloads too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::server::{start, Server};
use crate::support::{request, Q};
use serde_json::Value;

const QUESTION: &str = "/v1/integration-obligation/90011510383?date=2026-01-01";
const SOAP_PATH: &str = "/soap/GeefAdviesInburgeringsplicht-01.00";

fn snapshot_id_answered(server: &Server) -> String {
    server.snapshot_id_answered(QUESTION)
}

fn reload(server: &Server) -> (u16, Value) {
    let response = crate::support::http()
        .post(server.ops_url("/admin/snapshot/reload"))
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

#[test]
fn twenty_swaps_under_traffic_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "swap-0");
    let server = Arc::new(start(&path));
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));

    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (server, stop, answered, failures, seen) = (
                server.clone(),
                stop.clone(),
                answered.clone(),
                failures.clone(),
                seen.clone(),
            );
            std::thread::spawn(move || {
                let client = crate::support::http();
                let soap = request(&[Q::date("q", "90011510383", "2026-01-01")]);
                while !stop.load(Ordering::Relaxed) {
                    let outcome = if n % 2 == 0 {
                        client
                            .get(server.url(QUESTION))
                            .send()
                            .map_err(|e| e.to_string())
                            .and_then(|r| {
                                let status = r.status().as_u16();
                                let body: Value = r.json().map_err(|e| e.to_string())?;
                                let id = body["source"]["snapshot_id"].as_str().map(String::from);
                                match (status, body["result"].as_str(), id) {
                                    (200, Some("NOK"), Some(id)) => Ok(id),
                                    _ => Err(format!("{status} {body}")),
                                }
                            })
                    } else {
                        client
                            .post(server.url(SOAP_PATH))
                            .header("Content-Type", "text/xml; charset=utf-8")
                            .body(soap.clone())
                            .send()
                            .map_err(|e| e.to_string())
                            .and_then(|r| {
                                let status = r.status().as_u16();
                                let body = r.text().map_err(|e| e.to_string())?;
                                if status == 200 && body.contains("<Resultaat>NOK</Resultaat>") {
                                    Ok(String::new())
                                } else {
                                    Err(format!("SOAP {status}"))
                                }
                            })
                    };
                    match outcome {
                        Ok(id) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            if !id.is_empty() {
                                seen.lock().unwrap().insert(id);
                            }
                        }
                        Err(failure) => failures.lock().unwrap().push(failure),
                    }
                }
            })
        })
        .collect();

    for swap in 1..=20 {
        let id = format!("swap-{swap}");
        crate::support::write_demo_snapshot_as(&path, &id);
        let (status, body) = reload(&server);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["snapshot"]["snapshot_id"], id.as_str());
        // From the moment the reload answered, new requests see the new snapshot.
        assert_eq!(snapshot_id_answered(&server), id);
        std::thread::sleep(Duration::from_millis(25));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        answered.load(Ordering::Relaxed) > 100,
        "too little traffic to prove anything"
    );
    // Traffic saw several snapshots go by, not just the first or last.
    assert!(
        seen.lock().unwrap().len() >= 3,
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(
        server.metric(r#"kbi_snapshot_reloads_total{outcome="ok",source="file"}"#),
        21.0
    );
}

#[test]
fn a_bad_new_snapshot_is_refused_and_the_old_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "good");
    let server = start(&path);

    // Truncated: the declared count no longer matches.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let (status, body) = reload(&server);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["status"], "refused");
    assert!(body["error"].as_str().unwrap().contains("line"), "{body}");
    assert_eq!(snapshot_id_answered(&server), "good");

    // Gone: unavailable, the old one still serves.
    std::fs::remove_file(&path).unwrap();
    let (status, body) = reload(&server);
    assert_eq!(status, 503, "{body}");
    assert_eq!(snapshot_id_answered(&server), "good");
    assert_eq!(
        server.metric(r#"kbi_snapshot_reloads_total{outcome="refused",source="file"}"#),
        1.0
    );
    assert_eq!(
        server.metric(r#"kbi_snapshot_reloads_total{outcome="unavailable",source="file"}"#),
        1.0
    );
    let ready = crate::support::get(server.ops_url("/health/ready")).unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[test]
fn sighup_reloads_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "before-hup");
    let server = start(&path);
    crate::support::write_demo_snapshot_as(&path, "after-hup");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // A bound on waiting, not a speed assertion.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while snapshot_id_answered(&server) != "after-hup" {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_invalid_snapshot_at_start_stops_start_up_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.jsonl");
    std::fs::write(&path, "{\"format\":\"nope\"}\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
            "--snapshot",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 1"), "{stderr}");
}
