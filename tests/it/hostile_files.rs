//! Hostile snapshot files against the real service (issue 14, failures 4 and 5): a FIFO, a
//! directory or a device where the snapshot should be, a 2 GB sparse file, a valid header followed
//! by 2 GB of zeros, and a zstd bomb are each refused by `POST /admin/snapshot/reload` in bounded
//! time and memory, the old snapshot still serving; a reload running too long is abandoned and a
//! reload asked for meanwhile is answered 409 at once instead of queueing.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::server::{start, start_with, Server};
use serde_json::Value;

const QUESTION: &str = "/v1/integration-obligation/90011510383?date=2026-01-01";
const TWO_GB: u64 = 2 << 30;
/// Peak resident memory allowed to the whole service process while it refuses a 2 GB input.
/// Before the line cap it reached about 2.1 GB; a debug build serving the demo snapshot peaks
/// at a few tens of MB.
const MAX_PEAK_RSS_KB: u64 = 300 * 1024;
/// A bound on waiting for an answer, not a speed target: before the fix the FIFO reload never
/// answered at all, and the 2 GB ones took tens of seconds.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

fn snapshot_id_answered(server: &Server) -> String {
    server.snapshot_id_answered(QUESTION)
}

/// `POST /admin/snapshot/reload` with a client timeout (a reload that hangs fails the test
/// instead of hanging it); the status, the body and how long the answer took.
fn reload(server: &Server) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
        .post(server.ops_url("/admin/snapshot/reload"))
        .send()
        .expect("the reload is answered");
    let status = response.status().as_u16();
    (status, response.json().unwrap(), started.elapsed())
}

/// The process's peak resident set (`VmHWM`), in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

fn mkfifo(path: &Path) {
    let name = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `name` is a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo failed");
}

fn demo_header(snapshot_id: &str) -> String {
    let demo =
        std::fs::read_to_string(crate::support::manifest_dir().join("data/demo-snapshot.jsonl"))
            .unwrap();
    let mut header: Value = serde_json::from_str(demo.lines().next().unwrap()).unwrap();
    header["kbi_snapshot"]["snapshot_id"] = Value::String(snapshot_id.into());
    format!("{header}\n")
}

/// Asserts a refused reload: `expected` status, answered in bounded time, the old snapshot
/// still answering, and the error containing `why`.
fn assert_refused(server: &Server, expected: u16, why: &str, what: &str) {
    let (status, body, took) = reload(server);
    assert_eq!(status, expected, "{what}: {body}");
    assert!(took < ANSWER_WITHIN, "{what}: answered after {took:?}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(why), "{what}: {body}");
    assert_eq!(snapshot_id_answered(server), "old", "{what}");
}

#[test]
fn fifos_directories_and_devices_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "old");
    let server = start(&path);

    std::fs::remove_file(&path).unwrap();
    mkfifo(&path);
    assert_refused(&server, 422, "FIFO", "a FIFO");
    // Again, and by SIGHUP: nothing queues behind the first.
    assert_refused(&server, 422, "FIFO", "a FIFO, second time");
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    std::thread::sleep(Duration::from_millis(300));
    assert_refused(&server, 422, "FIFO", "a FIFO after SIGHUP");

    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert_refused(&server, 422, "directory", "a directory");

    std::fs::remove_dir(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    assert_refused(&server, 422, "character device", "/dev/zero");

    // A regular file again: reloads work as before.
    std::fs::remove_file(&path).unwrap();
    crate::support::write_demo_snapshot_as(&path, "new");
    let (status, body, _) = reload(&server);
    assert_eq!(status, 200, "{body}");
    assert_eq!(snapshot_id_answered(&server), "new");
}

#[test]
fn a_fifo_at_start_up_and_for_snapshot_validate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo.jsonl");
    mkfifo(&path);
    for args in [
        vec!["snapshot", "validate"],
        vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
            "--snapshot",
        ],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
            .args(&args)
            .arg(&path)
            .env("KBI_ADVICE__AUDIT__DIR", dir.path().join("audit"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + ANSWER_WITHIN;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{args:?} on a FIFO did not return");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!status.success(), "{args:?}");
        assert!(stderr.contains("FIFO"), "{args:?}: {stderr}");
    }
}

#[test]
fn two_gigabyte_inputs_are_refused_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "old");
    let server = start(&path);

    // 1. A 2 GB sparse file: zeros, no line end anywhere.
    let sparse = dir.path().join("sparse");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(TWO_GB)
        .unwrap();
    std::fs::rename(&sparse, &path).unwrap();
    assert_refused(&server, 422, "line 1: longer than", "a 2 GB sparse file");

    // 2. A valid header followed by 2 GB of zeros.
    let zeros = dir.path().join("zeros");
    let mut file = std::fs::File::create(&zeros).unwrap();
    file.write_all(demo_header("zeros").as_bytes()).unwrap();
    file.set_len(TWO_GB).unwrap();
    drop(file);
    std::fs::rename(&zeros, &path).unwrap();
    assert_refused(
        &server,
        422,
        "line 2: longer than",
        "header + 2 GB of zeros",
    );

    let peak = peak_rss_kb(server.pid());
    assert!(
        peak < MAX_PEAK_RSS_KB,
        "peak resident {peak} kB while refusing 2 GB files"
    );
    drop(server);

    // 3. A zstd bomb: a header, then 2 GB of zeros, as 32 frames of 64 MiB each (a few kB).
    let bomb_path = dir.path().join("snapshot.jsonl.zst");
    crate::support::write_demo_snapshot_as(&path, "old");
    let good = zstd::bulk::compress(&std::fs::read(&path).unwrap(), 3).unwrap();
    std::fs::write(&bomb_path, good).unwrap();
    let server = start(&bomb_path);
    assert_eq!(snapshot_id_answered(&server), "old");
    let zeros = vec![0u8; 64 << 20];
    let mut first = demo_header("bomb").into_bytes();
    first.extend_from_slice(&zeros);
    let mut bomb = zstd::bulk::compress(&first, 3).unwrap();
    let frame = zstd::bulk::compress(&zeros, 3).unwrap();
    for _ in 1..32 {
        bomb.extend_from_slice(&frame);
    }
    assert!(bomb.len() < 200 << 10, "the bomb is {} bytes", bomb.len());
    std::fs::write(&bomb_path, &bomb).unwrap();
    assert_refused(&server, 422, "line 2: longer than", "a zstd bomb");
    let peak = peak_rss_kb(server.pid());
    assert!(
        peak < MAX_PEAK_RSS_KB,
        "peak resident {peak} kB while refusing the bomb"
    );
    assert!(server.live_once());
}

#[test]
fn the_decompressed_cap_is_a_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "old");
    // The demo snapshot has about 40 kB of text: a 20 kB cap refuses it at start-up.
    let stderr = crate::support::server::refused_start(
        dir.path(),
        &["--snapshot", path.to_str().unwrap()],
        &[("KBI_ADVICE__SNAPSHOT__MAX_DECOMPRESSED_BYTES", "20000")],
        ANSWER_WITHIN,
    );
    assert!(
        stderr.contains("snapshot.max_decompressed_bytes"),
        "{stderr}"
    );
    // With 60 kB it starts.
    let server = start_with(
        &path,
        &[],
        &[("KBI_ADVICE__SNAPSHOT__MAX_DECOMPRESSED_BYTES", "60000")],
    );
    assert_eq!(snapshot_id_answered(&server), "old");
}

#[test]
fn a_reload_running_too_long_is_abandoned_and_others_are_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    crate::support::write_demo_snapshot_as(&path, "old");
    let server = start_with(
        &path,
        &[],
        &[("KBI_ADVICE__SNAPSHOT__RELOAD_TIMEOUT_SECONDS", "1")],
    );
    // A snapshot that takes far longer than the one-second limit to load. 300,000 persons were
    // once enough; on a quiet, fast machine (2026-12-01) they loaded in 997 ms in a debug
    // build and the test failed. A million took 3.8 s there (`snapshot validate`, debug build,
    // 115 MB).
    let big = dir.path().join("big.jsonl");
    let generated = Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .args([
            "snapshot",
            "generate",
            "--persons",
            "1000000",
            "--seed",
            "7",
            "--out",
        ])
        .arg(&big)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{generated:?}");
    std::fs::rename(&big, &path).unwrap();

    let first = {
        let url = server.ops_url("/admin/snapshot/reload");
        std::thread::spawn(move || {
            let started = Instant::now();
            let response = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap()
                .post(url)
                .send()
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().unwrap(), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    // While the first runs: answered at once, not queued.
    let (status, body, took) = reload(&server);
    assert_eq!(status, 409, "{body}");
    assert!(took < Duration::from_secs(5), "409 after {took:?}");
    let (status, body, took) = first.join().unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "abandoned", "{body}");
    assert!(took < ANSWER_WITHIN, "abandoned after {took:?}");
    assert_eq!(snapshot_id_answered(&server), "old");

    // The lock is free again: a small snapshot loads.
    crate::support::write_demo_snapshot_as(&path, "new");
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let (status, body, _) = reload(&server);
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(snapshot_id_answered(&server), "new");
}

#[test]
fn fifos_as_rules_clients_or_configuration_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    mkfifo(&fifo);
    let fifo_text = fifo.to_str().unwrap();
    for (args, envs) in [
        (vec![], vec![("KBI_ADVICE__SNAPSHOT__RULES", fifo_text)]),
        (vec![], vec![("KBI_ADVICE__CLIENTS__REGISTRY", fifo_text)]),
        (vec!["--config", fifo_text], vec![]),
    ] {
        let stderr = crate::support::server::refused_start(dir.path(), &args, &envs, ANSWER_WITHIN);
        assert!(
            stderr.contains("FIFO") || stderr.contains("not a regular file"),
            "{args:?} {envs:?}: {stderr}"
        );
    }
}
