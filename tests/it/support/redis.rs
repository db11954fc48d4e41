//! A throw-away `redis-server` for tests.
//!
//! Every test that needs Redis starts its own: `RedisServer::start()` picks a free loopback port,
//! runs `redis-server` there with no persistence and a temporary working directory, waits until
//! it answers `PING`, and kills it when dropped. Tests never touch a Redis that runs on the
//! machine anyway (6379). `redis-server` comes from `scripts/setup/redis.sh`; without it a test
//! fails with a message naming that script.
//!
//! ```ignore
//! let redis = crate::support::redis::RedisServer::start();
//! let url = redis.url(); // "redis://127.0.0.1:PORT"
//! ```
#![allow(dead_code)] // each test module uses a different part of the helper

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh redis-server may take to answer PING before the test fails (a failure bound,
/// not a speed claim: it normally answers within milliseconds).
const START_BOUND: Duration = Duration::from_secs(20);

/// A running `redis-server` on 127.0.0.1; killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> RedisServer {
        // A port found free can be taken before redis-server binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().expect("temporary directory for redis-server"),
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("cannot start redis-server: {last_error}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A blocking client connection.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("connect to the test redis-server")
    }

    /// Kills the server (as a crash would); the port stays reserved for [`RedisServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh, empty server on the same port (after [`RedisServer::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_BOUND;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(error) if Instant::now() > deadline => {
                    panic!("cannot restart redis-server on port {}: {error}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Every key with its `DUMP` (type and value), to compare the whole content before and after.
    pub fn dump_all(&self) -> BTreeMap<String, Vec<u8>> {
        let mut con = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).expect("KEYS");
        keys.into_iter()
            .map(|key| {
                let value: Vec<u8> = redis::cmd("DUMP").arg(&key).query(&mut con).expect("DUMP");
                (key, value)
            })
            .collect()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    panic!(
                        "redis-server is not installed: run `bash scripts/setup/redis.sh` \
                         (CI runs every scripts/setup/*.sh before the tests)"
                    );
                }
                format!("cannot run redis-server: {e}")
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + START_BOUND;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("redis-server exited at start ({status})"));
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "redis-server on port {} did not answer PING within {START_BOUND:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
