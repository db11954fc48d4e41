//! Starting the real `kbi-advice serve` on free loopback ports for black-box tests.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running service; stopped when dropped.
pub struct Server {
    child: Child,
    /// The service's stderr, shown when it fails to start.
    log: tempfile::NamedTempFile,
    /// The audit log's directory (a fresh temporary one unless the test named one).
    audit: tempfile::TempDir,
    pub port: u16,
    pub ops_port: u16,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ops_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ops_port)
    }

    /// The audit directory the service writes to (unless the test set `KBI_ADVICE__AUDIT__DIR`).
    pub fn audit_dir(&self) -> &Path {
        self.audit.path()
    }

    /// The process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the service wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Whether the process still runs and `/health/live` says so.
    pub fn live(&mut self) -> bool {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        reqwest::blocking::get(self.ops_url("/health/live"))
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts `kbi-advice serve` on `snapshot` and waits until it answers `/health/ready`.
pub fn start(snapshot: &Path) -> Server {
    start_with(snapshot, &[], &[])
}

/// [`start`] with extra arguments and environment variables.
pub fn start_with(snapshot: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    launch(snapshot.as_os_str(), args, envs, true)
}

/// Starts `kbi-advice serve --snapshot SOURCE` (a file or `redis://…`) and waits until it answers
/// `/health/live` and, when `wait_ready`, `/health/ready`.
pub fn launch(
    source: &std::ffi::OsStr,
    args: &[&str],
    envs: &[(&str, &str)],
    wait_ready: bool,
) -> Server {
    let port = free_port();
    let ops_port = free_port();
    let log = tempfile::NamedTempFile::new().expect("a temporary log file");
    let audit = tempfile::tempdir().expect("a temporary audit directory");
    let child = Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--ops-listen")
        .arg(format!("127.0.0.1:{ops_port}"))
        .arg("--snapshot")
        .arg(source)
        .args(args)
        .env("KBI_ADVICE__AUDIT__DIR", audit.path())
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("log file reopens"))
        .spawn()
        .expect("kbi-advice serve starts");
    let mut server = Server {
        child,
        log,
        audit,
        port,
        ops_port,
    };
    let path = if wait_ready {
        "/health/ready"
    } else {
        "/health/live"
    };
    // A bound on start-up, not a speed assertion: a service that never comes up fails here.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = std::fs::read_to_string(server.log.path()).unwrap_or_default();
            panic!("kbi-advice serve exited during start-up ({status}):\n{log}");
        }
        let up = reqwest::blocking::get(server.ops_url(path))
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if up {
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "kbi-advice serve did not answer {path}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
