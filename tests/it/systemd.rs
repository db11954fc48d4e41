//! What `kbi-advice.service` relies on, checked against the real binary without systemd:
//! `--version` (package version, git commit, embedded rules version) and the sd_notify protocol
//! (`Type=notify` readiness, `WatchdogSec=` keep-alive, stopping), received on a datagram socket
//! standing in for systemd's `NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::server::launch;

#[test]
fn version_names_the_package_the_commit_and_the_embedded_rules() {
    let output = Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .arg("--version")
        .output()
        .expect("kbi-advice --version runs");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8");

    // The rules version as the shipped file states it (the binary must not hard-code it).
    let rules: toml::Value = toml::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rules.toml"))
            .expect("config/rules.toml"),
    )
    .expect("config/rules.toml is TOML");
    let rules_version = rules["version"]
        .as_str()
        .expect("version is a string")
        .trim();

    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());

    let expected = format!(
        "kbi-advice {} (commit {commit}, rules {rules_version})\n",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(text, expected);
}

/// A stand-in for systemd's notification socket.
struct NotifySocket {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        NotifySocket {
            socket,
            _dir: dir,
            path,
        }
    }

    /// Every message received until `until` returns true or `within` passes.
    fn collect(&self, within: Duration, until: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut messages = Vec::new();
        let mut buffer = [0u8; 4096];
        while Instant::now() < deadline && !until(&messages) {
            if let Ok(n) = self.socket.recv(&mut buffer) {
                messages.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
            }
        }
        messages
    }
}

fn count(messages: &[String], line: &str) -> usize {
    messages
        .iter()
        .filter(|m| m.lines().any(|l| l == line))
        .count()
}

#[test]
fn ready_once_the_snapshot_is_in_use_then_keep_alive_then_stopping() {
    let notify = NotifySocket::new();
    let socket = notify.path.to_str().expect("UTF-8 path");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-snapshot.jsonl");
    // A 600 ms watchdog: a keep-alive every 300 ms.
    let server = launch(
        demo.as_os_str(),
        &[],
        &[("NOTIFY_SOCKET", socket), ("WATCHDOG_USEC", "600000")],
        true,
    );
    // Bounds for a loaded machine, not speed assertions.
    let messages = notify.collect(Duration::from_secs(20), |m| {
        count(m, "READY=1") >= 1 && count(m, "WATCHDOG=1") >= 3
    });
    let ready: Vec<&String> = messages
        .iter()
        .filter(|m| m.lines().any(|l| l == "READY=1"))
        .collect();
    assert_eq!(ready.len(), 1, "exactly one READY=1: {messages:?}");
    assert!(
        ready[0]
            .lines()
            .any(|l| l == "STATUS=serving snapshot demo-2026-11-01"),
        "{messages:?}"
    );
    assert!(count(&messages, "WATCHDOG=1") >= 3, "{messages:?}");

    // SIGTERM: actix stops both listeners, then the service says it is stopping.
    let pid = server.pid() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let messages = notify.collect(Duration::from_secs(20), |m| count(m, "STOPPING=1") >= 1);
    assert_eq!(
        count(&messages, "STOPPING=1"),
        1,
        "{messages:?}\n{}",
        server.log()
    );
    drop(server);
}

#[test]
fn not_ready_without_a_snapshot_but_alive() {
    let notify = NotifySocket::new();
    let socket = notify.path.to_str().expect("UTF-8 path");
    // Redis on a port where nothing listens: the service serves (not ready, 30020) and retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let redis = format!("redis://127.0.0.1:{port}");
    let server = launch(
        std::ffi::OsStr::new(&redis),
        &[],
        &[("NOTIFY_SOCKET", socket), ("WATCHDOG_USEC", "600000")],
        false,
    );
    let messages = notify.collect(Duration::from_secs(20), |m| count(m, "WATCHDOG=1") >= 4);
    assert!(
        count(&messages, "WATCHDOG=1") >= 4,
        "{messages:?}\n{}",
        server.log()
    );
    assert_eq!(
        count(&messages, "READY=1"),
        0,
        "READY=1 without a snapshot: {messages:?}"
    );
}

#[test]
fn no_watchdog_messages_without_watchdog_usec() {
    let notify = NotifySocket::new();
    let socket = notify.path.to_str().expect("UTF-8 path");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-snapshot.jsonl");
    let server = launch(demo.as_os_str(), &[], &[("NOTIFY_SOCKET", socket)], true);
    let messages = notify.collect(Duration::from_secs(3), |_| false);
    assert_eq!(count(&messages, "READY=1"), 1, "{messages:?}");
    assert_eq!(count(&messages, "WATCHDOG=1"), 0, "{messages:?}");
    drop(server);
}
