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

    /// The `snapshot_id` of the REST answer to `question` (a path with its query): which
    /// snapshot the service answers from.
    pub fn snapshot_id_answered(&self, question: &str) -> String {
        let body: serde_json::Value = super::get(self.url(question)).unwrap().json().unwrap();
        body["source"]["snapshot_id"]
            .as_str()
            .expect("an answer names its snapshot")
            .to_string()
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

    /// The value of one series of `/metrics` (`name{labels}` as exposed), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let text = reqwest::blocking::get(self.ops_url("/metrics"))
            .and_then(|r| r.text())
            .expect("/metrics answers");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs (without `&mut`: only asks `/health/live`).
    pub fn live_once(&self) -> bool {
        reqwest::blocking::get(self.ops_url("/health/live"))
            .map(|r| r.status().is_success())
            .unwrap_or(false)
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
    /// Stops the service, then scrapes everything it wrote on stdout and stderr (at log level
    /// `debug`) for an INSZ: the audit log is the only place one may appear. Every black-box
    /// test that starts a service is thereby also a log-scraping test.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let log = self.log();
            if let Some(insz) = find_insz(&log) {
                panic!(
                    "an INSZ ({}…) appears in the service's own output:\n{log}",
                    &insz[..4]
                );
            }
        }
    }
}

/// The first valid INSZ written in `text` (11 digits, possibly with `.`, `-` or spaces between).
pub fn find_insz(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || b".- ".contains(&bytes[i])) {
            i += 1;
        }
        let digits: String = text[start..i]
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if digits.len() == 11 && kbi_core::domain::Insz::parse(&digits).is_ok() {
            return Some(digits);
        }
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs `kbi-advice serve` (both listeners on port 0, the audit log in `dir/audit`) with `args`
/// and `envs`, expecting it to refuse to start; panics if it still runs after `within` or exits
/// successfully. Returns its stderr followed by its stdout.
pub fn refused_start(dir: &Path, args: &[&str], envs: &[(&str, &str)], within: Duration) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbi-advice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("KBI_ADVICE__AUDIT__DIR", dir.join("audit"))
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve {args:?} {envs:?} did not refuse to start within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "serve {args:?} {envs:?} succeeded"
    );
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    text
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
    launch_limited(source, args, envs, wait_ready, None)
}

/// [`launch`] with the child's open-file limit (soft and hard, `RLIMIT_NOFILE`) set to
/// `open_files` before it starts, as `prlimit --nofile=N:N` would.
pub fn launch_limited(
    source: &std::ffi::OsStr,
    args: &[&str],
    envs: &[(&str, &str)],
    wait_ready: bool,
    open_files: Option<u64>,
) -> Server {
    let port = free_port();
    let ops_port = free_port();
    let log = tempfile::NamedTempFile::new().expect("a temporary log file");
    let audit = tempfile::tempdir().expect("a temporary audit directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kbi-advice"));
    if let Some(limit) = open_files {
        use std::os::unix::process::CommandExt;
        // SAFETY: only setrlimit(2), async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = command
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--ops-listen")
        .arg(format!("127.0.0.1:{ops_port}"))
        .arg("--snapshot")
        .arg(source)
        .args(args)
        .env("KBI_ADVICE__AUDIT__DIR", audit.path())
        // Preallocated segments as in production, smaller: less zero-filling per test server.
        .env("KBI_ADVICE__AUDIT__SEGMENT_BYTES", "1048576")
        // As much output as the service can give, for the INSZ scrape in `drop`.
        .env("KBI_ADVICE__LOG__LEVEL", "debug")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log file reopens"))
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

#[cfg(test)]
mod scrape_tests {
    use super::find_insz;

    #[test]
    fn the_scrape_finds_written_forms_and_ignores_other_numbers() {
        assert!(find_insz("asked about 90011510383 today").is_some());
        assert!(find_insz("\"insz\":\"90.01.15-103.83\"").is_some());
        assert!(find_insz("ref 5f0c2d9e-0000000000000042 at 2026-11-25T07:02:47Z").is_none());
        assert!(
            find_insz("90011510384").is_none(),
            "wrong check digits are not an INSZ"
        );
    }
}
