//! Several real `kbi-advice serve` replicas following one Redis (`operations.md`): they converge
//! on each published snapshot, never fail a request while 10 versions are published under load,
//! keep serving when Redis dies and pick up what is published after it returns, refuse a corrupt
//! version and count it, and start not ready while Redis is unreachable. Each test starts its own
//! `redis-server` (`scripts/setup/redis.sh`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::redis::RedisServer;
use crate::support::server::{launch, Server};
use serde_json::Value;

const QUESTION: &str = "/v1/integration-obligation/90011510383?date=2026-01-01";
/// Replicas poll `current` every second here, so a lost notification costs at most that.
const FAST_POLL: (&str, &str) = ("KBI_ADVICE__SNAPSHOT__REDIS_POLL_SECONDS", "1");
/// Upper bound for convergence: a failure bound, not a speed claim.
const CONVERGE_BOUND: Duration = Duration::from_secs(30);

/// The demo snapshot under another id, written to `dir`.
fn snapshot(dir: &Path, id: &str) -> PathBuf {
    let path = dir.join(format!("{id}.jsonl"));
    crate::support::write_demo_snapshot_as(&path, id);
    path
}

fn publish(redis: &RedisServer, path: &Path) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .args(["snapshot", "publish", "--redis", &redis.url()])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn replica(redis: &RedisServer, wait_ready: bool) -> Server {
    launch(OsStr::new(&redis.url()), &[], &[FAST_POLL], wait_ready)
}

/// The snapshot id a replica answers from, or the HTTP status when it cannot answer.
fn answered_id(server: &Server) -> Result<String, u16> {
    let response = crate::support::get(server.url(QUESTION)).map_err(|_| 0_u16)?;
    let status = response.status().as_u16();
    let body: Value = response.json().map_err(|_| status)?;
    match (status, body["source"]["snapshot_id"].as_str()) {
        (200, Some(id)) => Ok(id.to_string()),
        _ => Err(status),
    }
}

fn wait_for_id(servers: &[&Server], id: &str) {
    let deadline = Instant::now() + CONVERGE_BOUND;
    for server in servers {
        while answered_id(server).as_deref() != Ok(id) {
            assert!(
                Instant::now() < deadline,
                "replica did not converge on {id}: answers {:?}\n{}",
                answered_id(server),
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn two_replicas_converge_on_each_publish() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&redis, &snapshot(dir.path(), "first"));
    let (a, b) = (replica(&redis, true), replica(&redis, true));
    assert_eq!(answered_id(&a), Ok("first".into()));
    assert_eq!(answered_id(&b), Ok("first".into()));
    publish(&redis, &snapshot(dir.path(), "second"));
    wait_for_id(&[&a, &b], "second");
    assert_eq!(
        a.metric(r#"kbi_snapshot_info{rule_set="kbi-rules-2022.2",snapshot_id="second"}"#),
        1.0
    );
}

#[test]
fn ten_publishes_under_load_on_two_replicas_fail_no_request() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&redis, &snapshot(dir.path(), "v0"));
    let replicas = Arc::new([replica(&redis, true), replica(&redis, true)]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (replicas, stop, answered, failures) = (
                replicas.clone(),
                stop.clone(),
                answered.clone(),
                failures.clone(),
            );
            std::thread::spawn(move || {
                let server = &replicas[n % 2];
                while !stop.load(Ordering::Relaxed) {
                    match answered_id(server) {
                        Ok(_) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(status) => failures.lock().unwrap().push(status),
                    }
                }
            })
        })
        .collect();
    for n in 1..=10 {
        publish(&redis, &snapshot(dir.path(), &format!("v{n}")));
    }
    wait_for_id(&[&replicas[0], &replicas[1]], "v10");
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "failed requests (statuses): {failures:?}"
    );
    assert!(answered.load(Ordering::Relaxed) > 50, "too little traffic");
}

#[test]
fn replicas_keep_serving_without_redis_and_pick_up_after_it_returns() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&redis, &snapshot(dir.path(), "before-outage"));
    let (a, b) = (replica(&redis, true), replica(&redis, true));
    redis.stop();
    // Answers continue from the last snapshot, for longer than a few polls.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(answered_id(&a), Ok("before-outage".into()));
        assert_eq!(answered_id(&b), Ok("before-outage".into()));
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = crate::support::get(a.ops_url("/health/ready")).unwrap();
    assert_eq!(ready.status().as_u16(), 200, "still ready without Redis");
    assert!(a.metric(r#"kbi_snapshot_reloads_total{outcome="unavailable",source="redis"}"#) >= 1.0);
    // Redis comes back empty; the next publish reaches both replicas.
    redis.restart();
    publish(&redis, &snapshot(dir.path(), "after-outage"));
    wait_for_id(&[&a, &b], "after-outage");
    let log = a.log();
    for insz in ["90011510383", "90.01.15-103.83"] {
        assert!(!log.contains(insz), "an INSZ in the log");
    }
}

#[test]
fn a_corrupt_version_is_refused_and_the_old_one_keeps_serving() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    publish(&redis, &snapshot(dir.path(), "old"));
    publish(&redis, &snapshot(dir.path(), "good"));
    let server = replica(&redis, true);
    assert_eq!(answered_id(&server), Ok("good".into()));

    // Version 1 ("old") is still kept: corrupt one of its chunks and point `current` at it.
    let mut con = redis.connection();
    let chunks: Vec<String> = redis::cmd("KEYS")
        .arg("kbi:snapshot:1:chunk:*")
        .query(&mut con)
        .unwrap();
    let chunk = chunks.first().expect("version 1 has chunks");
    let mut bytes: Vec<u8> = redis::cmd("GET").arg(chunk).query(&mut con).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    redis::cmd("SET")
        .arg(chunk)
        .arg(bytes)
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("SET")
        .arg("kbi:snapshot:current")
        .arg("1")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("PUBLISH")
        .arg("kbi:snapshot:events")
        .arg("1")
        .query::<()>(&mut con)
        .unwrap();

    let series = r#"kbi_snapshot_reloads_total{outcome="refused",source="redis"}"#;
    let deadline = Instant::now() + CONVERGE_BOUND;
    while server.metric(series) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the corrupt version was not refused\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(answered_id(&server), Ok("good".into()));
    assert!(server.log().contains("refused"), "{}", server.log());
}

#[test]
fn a_replica_started_while_redis_is_down_is_not_ready_until_it_loads() {
    let mut redis = RedisServer::start();
    redis.stop();
    let server = replica(&redis, false);
    let ready = crate::support::get(server.ops_url("/health/ready")).unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let response = crate::support::http()
        .get(server.url(QUESTION))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let problem: Value = response.json().unwrap();
    assert_eq!(problem["code"], "30020");

    redis.restart();
    let dir = tempfile::tempdir().unwrap();
    publish(&redis, &snapshot(dir.path(), "late"));
    // The watcher retries with backoff (at most 30 s between tries).
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered_id(&server).as_deref() != Ok("late") {
        assert!(Instant::now() < deadline, "never loaded\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = crate::support::get(server.ops_url("/health/ready")).unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}
