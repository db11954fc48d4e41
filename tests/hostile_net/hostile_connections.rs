//! Issue 24, item 7: silent and slow connections from one address must not starve another.
//! The service counts connections at accept (before any byte, before a TLS handshake), sheds
//! the newest connections of the heaviest peer near the cap, and shortens the head timeout under
//! pressure. Three attacks from 127.0.0.1 — connections that send nothing, request heads sent a
//! line a second, request bodies sent a byte a second — each while a second address (127.0.0.2)
//! asks questions on fresh connections; the test asserts every one of its questions is answered
//! (liveness, generous bounds). The head and body timeouts are set to a minute, so without the
//! guard the attack holds every slot for a minute and the second address is not answered.
//!
//! The same attacks, larger, measured (the second address's p99): the ignored test
//! `measure_the_second_address_under_the_three_attacks`, run by `benches/hostile_connections.sh`
//! (figures in BENCHMARKS.md).
//!
//! A module of `tests/hostile_net.rs`'s binary, not of `tests/it/`: it raises the process's
//! open-file limit (process-wide state) and holds up to 10,500 connections per test; beside the
//! integration tests running in parallel in one process it would measure their load, and they
//! would feel its descriptors. It shares `hostile_net`'s [`HEAVY`](crate::HEAVY) lock, so
//! its attacks never run at the same time as that binary's 1,100-connection tests.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::server::{launch_limited, Server};
use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const QUESTION: &str = "/v1/integration-obligation/90011510383?date=2026-01-01";
const BATCH: &str = "/v1/integration-obligation:batch";

/// One server and one attack at a time (also with `hostile_net`'s heavy tests): two would
/// measure each other.
use crate::HEAVY as SERIAL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// Connect and send nothing.
    Silent,
    /// A request head, one header line a second.
    SlowHead,
    /// A whole head announcing 1 MiB, then one byte of body a second.
    SlowBody,
}

fn demo() -> PathBuf {
    manifest_dir().join("data/demo-snapshot.jsonl")
}

fn loopback(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// How the service under attack is set up.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// A server whose own timeouts would let the attack hold its slots for a minute, with this
    /// connection cap: only the guard can keep room for the second address.
    Cap(usize),
    /// The shipped defaults, under this open-file limit (`None`: the test's own).
    Defaults(Option<u64>),
}

fn server(setup: Setup) -> Server {
    match setup {
        Setup::Cap(max_connections) => {
            let max = max_connections.to_string();
            launch_limited(
                demo().as_os_str(),
                &[],
                &[
                    ("KBI_ADVICE__SERVER__MAX_CONNECTIONS", max.as_str()),
                    // Above the attack's size: the shedding alone keeps the room, not the
                    // per-peer mark.
                    ("KBI_ADVICE__SERVER__MAX_CONNECTIONS_PER_PEER", "100000"),
                    ("KBI_ADVICE__SERVER__REQUEST_HEAD_TIMEOUT_MS", "60000"),
                    ("KBI_ADVICE__SERVER__BODY_TIMEOUT_MS", "60000"),
                    ("KBI_ADVICE__SERVER__BODY_MIN_BYTES_PER_SECOND", "1"),
                    ("KBI_ADVICE__SERVER__WORKERS", "2"),
                ],
                true,
                None,
            )
        }
        Setup::Defaults(open_files) => {
            launch_limited(demo().as_os_str(), &[], &[], true, open_files)
        }
    }
}

/// Raises this process's open-file soft limit to its hard limit (the attack's connections).
fn raise_own_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// `connections` attackers from 127.0.0.1, each reconnecting (after `reopen`) whenever the
/// server closes its connection, until `stop`. Counts connections made.
fn attack(
    server: SocketAddr,
    kind: Attack,
    connections: usize,
    reopen: Duration,
    stop: Arc<AtomicBool>,
    made: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..connections {
                let (stop, made) = (stop.clone(), made.clone());
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        attacker(server, kind, &stop, &made).await;
                        tokio::time::sleep(reopen).await;
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        })
    })
}

async fn attacker(server: SocketAddr, kind: Attack, stop: &AtomicBool, made: &AtomicUsize) {
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return;
    };
    if socket.bind(SocketAddr::new(loopback(1), 0)).is_err() {
        return;
    }
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(2), socket.connect(server)).await
    else {
        return;
    };
    made.fetch_add(1, Ordering::Relaxed);
    let opening = match kind {
        Attack::Silent => String::new(),
        Attack::SlowHead => format!("GET {QUESTION} HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        Attack::SlowBody => format!(
            "POST {BATCH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Client-Id: demo\r\n\
             Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{{"
        ),
    };
    if stream.write_all(opening.as_bytes()).await.is_err() {
        return;
    }
    let mut buffer = [0u8; 512];
    let mut line = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                // Closed (shed, or answered and closed): reconnect.
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let more = match kind {
                    Attack::Silent => continue,
                    Attack::SlowHead => format!("X-Slow-{line}: x\r\n"),
                    Attack::SlowBody => " ".to_owned(),
                };
                line += 1;
                if stream.write_all(more.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// One question from 127.0.0.2 on a fresh connection: the status and the time from connect to
/// the whole answer (`None`: no answer within `limit`).
async fn question(server: SocketAddr, limit: Duration) -> Option<(u16, Duration)> {
    let started = Instant::now();
    let exchange = async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::new(loopback(2), 0)).ok()?;
        let mut stream = socket.connect(server).await.ok()?;
        let request = format!(
            "GET {QUESTION} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Client-Id: {CLIENT_ID}\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = std::str::from_utf8(answer.get(..12)?).ok()?;
        text.strip_prefix("HTTP/1.1 ")?.parse::<u16>().ok()
    };
    let status = tokio::time::timeout(limit, exchange).await.ok()??;
    Some((status, started.elapsed()))
}

/// Runs `kind` with `connections` attackers and asks `questions` questions from the second
/// address (one every 50 ms) once the attack is under way; returns the answer times, sorted
/// (`Duration::MAX` for a question not answered 200 within `limit`), and the connections the
/// attack made.
fn under_attack(
    kind: Attack,
    setup: Setup,
    connections: usize,
    questions: usize,
    limit: Duration,
) -> (Vec<Duration>, usize, String) {
    let server = server(setup);
    let max_connections = match setup {
        Setup::Cap(cap) => cap,
        Setup::Defaults(_) => connections / 2,
    };
    let address: SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let (stop, made) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    // Each closed connection reopened after a second: the attack holds its connections and
    // comes back (a faster loop is a connection flood, a different attack: the listen backlog
    // and the per-second limits of the network stop it, not the connection slots).
    let reopen = Duration::from_secs(1);
    let attackers = attack(
        address,
        kind,
        connections,
        reopen,
        stop.clone(),
        made.clone(),
    );
    // Under way: more connections made than the service holds.
    let until = Instant::now() + Duration::from_secs(10);
    while made.load(Ordering::Relaxed) < max_connections.min(connections) && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut took: Vec<Duration> = runtime.block_on(async {
        let mut took = Vec::new();
        for _ in 0..questions {
            took.push(match question(address, limit).await {
                Some((200, time)) => time,
                _ => Duration::MAX,
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        took
    });
    stop.store(true, Ordering::Relaxed);
    attackers.join().unwrap();
    let metrics = http()
        .get(server.ops_url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    took.sort();
    (took, made.load(Ordering::Relaxed), metrics)
}

fn shed(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("kbi_connections_shed_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn assert_answered(kind: Attack) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 300 attackers against a cap of 200: without the guard every slot is held for a minute.
    let (took, made, metrics) =
        under_attack(kind, Setup::Cap(200), 300, 20, Duration::from_secs(10));
    assert!(
        made >= 200,
        "{kind:?}: the attack made only {made} connections"
    );
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(10)),
        "{kind:?}: the second address was not answered every time: {took:?}"
    );
    assert!(shed(&metrics) > 0.0, "{kind:?}: nothing was shed");
    eprintln!(
        "{kind:?}: {made} attack connections; second address median {:?}, slowest {:?}",
        took[took.len() / 2],
        took[took.len() - 1]
    );
}

#[test]
fn silent_connections_from_one_address_leave_room_for_another() {
    assert_answered(Attack::Silent);
}

#[test]
fn slow_heads_from_one_address_leave_room_for_another() {
    assert_answered(Attack::SlowHead);
}

#[test]
fn slow_bodies_from_one_address_leave_room_for_another() {
    assert_answered(Attack::SlowBody);
}

/// The benchmark (`benches/hostile_connections.sh`; target: the second address's p99 < 100 ms):
/// the three attacks and the slow heads between them. Under a 1,024-descriptor limit
/// and the shipped defaults: 2,000 silent connections, 2,000 slow heads, 2,000 slow bodies;
/// then with the defaults and the open-file limit of the test: 10,500 silent connections. 200
/// questions from 127.0.0.2 each, and the same without any attack first (x0); prints p50, p99,
/// maximum and the unanswered.
#[test]
#[ignore = "a benchmark: benches/hostile_connections.sh"]
fn measure_the_second_address_under_the_three_attacks() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    raise_own_open_files();
    let runs = [
        // The peer in the same run: no attack (x0), the second address alone.
        (Attack::Silent, 0, Setup::Defaults(Some(1024))),
        (Attack::Silent, 2000, Setup::Defaults(Some(1024))),
        (Attack::SlowHead, 2000, Setup::Defaults(Some(1024))),
        (Attack::SlowBody, 2000, Setup::Defaults(Some(1024))),
        (Attack::Silent, 10_500, Setup::Defaults(None)),
    ];
    for (kind, attackers, setup) in runs {
        let (took, made, metrics) =
            under_attack(kind, setup, attackers, 200, Duration::from_secs(10));
        let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).saturating_sub(1)];
        let ms = |d: Duration| {
            if d == Duration::MAX {
                "unanswered".to_owned()
            } else {
                format!("{:.1} ms", d.as_secs_f64() * 1e3)
            }
        };
        println!(
            "attack {kind:?} x{attackers} ({setup:?}): {made} connections made, {} shed; \
             127.0.0.2, {} questions: p50 {}, p99 {}, max {}, unanswered {}",
            shed(&metrics),
            took.len(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(took[took.len() - 1]),
            took.iter().filter(|t| **t == Duration::MAX).count()
        );
    }
}
