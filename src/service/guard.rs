//! The client listener against hostile peers: bounded connections (in total and per peer
//! address, counted at accept), the heaviest peer shed first near the cap, open-file descriptors
//! kept in reserve, and CPU work run off the network threads within a time budget.
//! `docs/security.md` (Hostile inputs) lists what each stops.
//!
//! Connections are counted when accepted, before the TLS handshake and before any byte is read
//! ([`Connections::wrap`] sits in front of the TLS and HTTP services): a connection that never
//! sends a byte holds a slot that the guard can see and take back. Each gets a [`Conn`] in the
//! registry. Past `server.max_connections_per_peer` from one address a connection is marked: it
//! gets the short head timeout, and a request on it is answered by [`refuse_marked`] with a
//! complete 503 and the connection closed, as nginx's `limit_conn` does. Under pressure (open
//! connections past `server.shed_at_percent` of the cap), every accept sheds the newest
//! connection of the peer holding most (as nginx's `limit_conn` and Envoy's overload manager
//! do), so one address cannot take the slots another needs, and connections still without a
//! request are given `server.pressure_head_timeout_ms` instead of the full head timeout.
//! Shedding drops the connection's task (its handshake or its HTTP dispatcher), which closes the
//! socket; no descriptor number is kept or reused.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

use crate::telemetry::metrics::Metrics;

/// How the guard bounds the client listener's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections on the listener (the sum of the workers' caps).
    pub cap: usize,
    /// Most connections from one peer address before they are marked.
    pub max_per_peer: usize,
    /// Open connections from which on the guard sheds (pressure).
    pub shed_at: usize,
    /// Time for the first request head (and the TLS handshake) without pressure.
    pub head_timeout: Duration,
    /// The same under pressure, and for a connection over the per-peer limit.
    pub pressure_head_timeout: Duration,
}

impl ConnectionLimits {
    /// `shed_at_percent` of `cap`, at least one below it when the cap allows (so the guard
    /// acts before the workers stop accepting).
    pub fn shed_at(cap: usize, shed_at_percent: u64) -> usize {
        let at = cap.saturating_mul(shed_at_percent.min(100) as usize) / 100;
        at.min(cap.saturating_sub(1)).max(1)
    }
}

/// The client listener's open connections, by peer address.
#[derive(Debug)]
pub struct Connections {
    state: Mutex<State>,
    limits: ConnectionLimits,
    metrics: Option<Arc<Metrics>>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Connections not yet shed (the ones that count).
    live: usize,
    peers: HashMap<IpAddr, Peer>,
    by_addr: HashMap<SocketAddr, Arc<Conn>>,
    /// When the last sweep for silent connections under pressure ran.
    swept: Option<Instant>,
}

#[derive(Debug, Default)]
struct Peer {
    /// Oldest first.
    conns: Vec<Arc<Conn>>,
    live: usize,
}

/// One open connection of the client listener.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    addr: Option<SocketAddr>,
    opened: Instant,
    /// Over the per-peer limit when accepted: its requests are refused.
    pub over_peer_limit: bool,
    /// A request head arrived on it (set by [`refuse_marked`]).
    requested: AtomicBool,
    shed: AtomicBool,
    wake: Notify,
}

impl Conn {
    /// Marks that a request arrived: the head timeout no longer applies.
    pub fn requested(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }
}

/// Why the service closed a connection (`kbi_connections_shed_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// Near the connection cap: the newest connection of the peer holding most.
    HeaviestPeer = 0,
    /// No request within the head timeout (shortened under pressure, or over the per-peer
    /// limit).
    HeadTimeout = 1,
}

/// How long a sweep for silent connections under pressure is not repeated.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

impl Connections {
    pub fn new(limits: ConnectionLimits, metrics: Option<Arc<Metrics>>) -> Arc<Self> {
        Arc::new(Connections {
            state: Mutex::new(State::default()),
            limits,
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a connection accepted from `addr`, and sheds under pressure. Returns the
    /// connection and when it must have sent its first request head.
    pub fn open(self: &Arc<Self>, addr: Option<SocketAddr>) -> Registered {
        let now = Instant::now();
        let mut state = self.lock();
        state.next_id += 1;
        let peer_count = addr.map_or(0, |a| state.peers.get(&a.ip()).map_or(0, |p| p.live) + 1);
        let conn = Arc::new(Conn {
            id: state.next_id,
            addr,
            opened: now,
            over_peer_limit: peer_count > self.limits.max_per_peer,
            requested: AtomicBool::new(false),
            shed: AtomicBool::new(false),
            wake: Notify::new(),
        });
        state.live += 1;
        if let Some(addr) = addr {
            let peer = state.peers.entry(addr.ip()).or_default();
            peer.conns.push(conn.clone());
            peer.live += 1;
            state.by_addr.insert(addr, conn.clone());
        }
        let pressure = state.live > self.limits.shed_at;
        let mut shed = Vec::new();
        if pressure {
            while state.live > self.limits.shed_at {
                match shed_heaviest(&mut state) {
                    Some(victim) => shed.push((victim, ShedReason::HeaviestPeer)),
                    None => break,
                }
            }
            if state
                .swept
                .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
            {
                state.swept = Some(now);
                let silent = self.limits.pressure_head_timeout;
                let old: Vec<Arc<Conn>> = state
                    .peers
                    .values()
                    .flat_map(|p| p.conns.iter())
                    .filter(|c| {
                        !c.shed.load(Ordering::Relaxed)
                            && !c.requested.load(Ordering::Relaxed)
                            && now.duration_since(c.opened) >= silent
                    })
                    .cloned()
                    .collect();
                for victim in old {
                    mark_shed(&mut state, &victim);
                    shed.push((victim, ShedReason::HeadTimeout));
                }
            }
        }
        drop(state);
        for (victim, reason) in &shed {
            self.record_shed(*reason);
            victim.wake.notify_one();
        }
        let timeout = if pressure || conn.over_peer_limit {
            self.limits.pressure_head_timeout
        } else {
            self.limits.head_timeout
        };
        Registered {
            head_deadline: now + timeout,
            slot: Slot {
                conn,
                owner: self.clone(),
            },
        }
    }

    /// The connection accepted from `addr` (for the HTTP layer's `on_connect`).
    pub fn find(&self, addr: SocketAddr) -> Option<Arc<Conn>> {
        self.lock().by_addr.get(&addr).cloned()
    }

    /// Open connections from `peer`, not counting those being shed (tests, metrics).
    pub fn count(&self, peer: IpAddr) -> usize {
        self.lock().peers.get(&peer).map_or(0, |p| p.live)
    }

    /// Open connections in all, not counting those being shed.
    pub fn total(&self) -> usize {
        self.lock().live
    }

    fn record_shed(&self, reason: ShedReason) {
        if let Some(metrics) = &self.metrics {
            metrics.connection_shed(reason);
        }
    }

    /// Sheds `conn` for a missed head deadline (unless a request arrived meanwhile).
    fn shed_silent(&self, conn: &Arc<Conn>) -> bool {
        let mut state = self.lock();
        if conn.requested.load(Ordering::Relaxed) || conn.shed.load(Ordering::Relaxed) {
            return conn.shed.load(Ordering::Relaxed);
        }
        mark_shed(&mut state, conn);
        drop(state);
        self.record_shed(ShedReason::HeadTimeout);
        true
    }

    /// The accepted-connection service in front of `inner` (TLS then HTTP, or HTTP): counts the
    /// connection before `inner` sees it, and ends it when shed or silent past its head
    /// deadline.
    pub fn wrap<S>(
        self: &Arc<Self>,
        inner: S,
    ) -> impl actix_service::ServiceFactory<
        actix_web::rt::net::TcpStream,
        Config = (),
        Response = (),
        Error = S::Error,
        InitError = S::InitError,
    >
    where
        S: actix_service::ServiceFactory<actix_web::rt::net::TcpStream, Config = (), Response = ()>,
        S::Future: 'static,
        S::Service: 'static,
        <S::Service as actix_service::Service<actix_web::rt::net::TcpStream>>::Future: 'static,
    {
        let connections = self.clone();
        actix_service::apply_fn_factory(
            inner,
            move |tcp: actix_web::rt::net::TcpStream, service: &S::Service| {
                let registered = connections.open(tcp.peer_addr().ok());
                let call = actix_service::Service::call(service, tcp);
                registered.run(call)
            },
        )
    }
}

/// A connection just counted: its slot and its head deadline.
#[derive(Debug)]
pub struct Registered {
    head_deadline: Instant,
    slot: Slot,
}

impl Registered {
    /// Runs the connection's task until it ends, the connection is shed, or the head deadline
    /// passes without a request; the slot is released after the task is dropped.
    pub async fn run<T, E>(self, task: impl Future<Output = Result<T, E>>) -> Result<(), E> {
        let Registered {
            head_deadline,
            slot,
        } = self;
        let conn = slot.conn.clone();
        if conn.shed.load(Ordering::Relaxed) {
            // Shed as it came in (its peer holds most): never handshaken, never read.
            return Ok(());
        }
        let mut task = std::pin::pin!(task);
        let mut deadline = Some(tokio::time::Instant::from_std(head_deadline));
        loop {
            tokio::select! {
                result = &mut task => return result.map(|_| ()),
                () = conn.wake.notified() => {
                    if conn.shed.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() => {
                    if slot.owner.shed_silent(&conn) {
                        return Ok(());
                    }
                    deadline = None;
                }
            }
        }
    }
}

/// Marks `conn` shed and takes it out of the counts (it leaves the registry when dropped).
fn mark_shed(state: &mut State, conn: &Arc<Conn>) {
    if conn.shed.swap(true, Ordering::Relaxed) {
        return;
    }
    state.live -= 1;
    if let Some(peer) = conn.addr.and_then(|a| state.peers.get_mut(&a.ip())) {
        peer.live -= 1;
    }
}

/// Sheds the newest live connection of the peer holding most live connections.
fn shed_heaviest(state: &mut State) -> Option<Arc<Conn>> {
    let victim = state
        .peers
        .values()
        .filter(|p| p.live > 0)
        .max_by_key(|p| p.live)?
        .conns
        .iter()
        .rev()
        .find(|c| !c.shed.load(Ordering::Relaxed))?
        .clone();
    mark_shed(state, &victim);
    Some(victim)
}

/// A counted connection; dropping it takes it out of the registry.
#[derive(Debug)]
struct Slot {
    conn: Arc<Conn>,
    owner: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.owner.lock();
        if !self.conn.shed.load(Ordering::Relaxed) {
            state.live -= 1;
        }
        let Some(addr) = self.conn.addr else {
            return;
        };
        if state
            .by_addr
            .get(&addr)
            .is_some_and(|c| Arc::ptr_eq(c, &self.conn))
        {
            state.by_addr.remove(&addr);
        }
        let ip = addr.ip();
        if let Some(peer) = state.peers.get_mut(&ip) {
            if let Some(at) = peer.conns.iter().position(|c| c.id == self.conn.id) {
                peer.conns.remove(at);
            }
            if !self.conn.shed.load(Ordering::Relaxed) {
                peer.live -= 1;
            }
            if peer.conns.is_empty() {
                state.peers.remove(&ip);
            }
        }
    }
}

/// Why every request on a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More open connections from this peer address than `server.max_connections_per_peer`.
    PeerLimit,
    /// A TLS connection without a client certificate (closed in `on_connect`; this only answers
    /// a request that still arrives).
    NoCertificate,
}

/// The connection data the HTTP layer sees: the registry's connection and any refusal.
#[derive(Debug)]
pub struct ConnectionSlot {
    pub conn: Option<Arc<Conn>>,
    pub refusal: Option<Refusal>,
}

impl ConnectionSlot {
    /// The slot of the connection accepted from `addr`.
    pub fn of(connections: &Connections, addr: Option<SocketAddr>) -> ConnectionSlot {
        let conn = addr.and_then(|addr| connections.find(addr));
        let refusal = conn
            .as_ref()
            .filter(|c| c.over_peer_limit)
            .map(|_| Refusal::PeerLimit);
        ConnectionSlot { conn, refusal }
    }
}

/// Middleware of the client listener: a request on a marked connection gets its refusal as a
/// complete response (problem document) and the connection is closed after it.
pub async fn refuse_marked(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let slot = request.conn_data::<ConnectionSlot>();
    if let Some(conn) = slot.and_then(|slot| slot.conn.as_ref()) {
        conn.requested();
    }
    let refusal = slot.and_then(|slot| slot.refusal);
    let Some(refusal) = refusal else {
        return next.call(request).await.map(|r| r.map_into_left_body());
    };
    let (status, detail) = match refusal {
        Refusal::PeerLimit => (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open connections from this address; retry later",
        ),
        Refusal::NoCertificate => (
            StatusCode::UNAUTHORIZED,
            "no client certificate was presented",
        ),
    };
    let response = HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "application/problem+json"))
        .insert_header(("retry-after", "5"))
        .insert_header(("cache-control", "no-store"))
        .force_close()
        .body(
            json!({
                "type": "about:blank",
                "title": status.canonical_reason().unwrap_or("Refused"),
                "status": status.as_u16(),
                "detail": detail,
            })
            .to_string(),
        );
    Ok(request.into_response(response).map_into_right_body())
}

/// Closes a connection's socket in both directions at once (a TLS connection without a client
/// certificate): the dispatcher reads end-of-file and drops it before any HTTP is read.
pub fn shut_down(stream: &impl std::os::fd::AsRawFd) {
    // SAFETY: shutdown(2) on a descriptor the stream owns and keeps open; it neither closes nor
    // frees the descriptor, so the stream's own close later stays valid.
    unsafe {
        libc::shutdown(stream.as_raw_fd(), libc::SHUT_RDWR);
    }
}

/// The process's open-file limit after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the open-file soft limit to the hard limit (a service holding thousands of connections
/// must not stop at the login default of 1,024), and returns the limit in force.
pub fn raise_open_file_limit() -> std::io::Result<OpenFiles> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read only the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // An unlimited hard limit cannot be the soft one for open files (the kernel caps it at
    // fs.nr_open); 1 Mi is that cap's default.
    let target = if limit.rlim_max == libc::RLIM_INFINITY {
        1 << 20
    } else {
        limit.rlim_max
    };
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = target;
        }
    }
    Ok(OpenFiles {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// The client listener's connection cap: the configured maximum, but never more than the
/// open-file limit leaves after the reserve (a quarter of the limit is reserved instead when
/// the configured reserve would take more than half of it).
pub fn connection_cap(configured: usize, open_files: u64, reserve: u64) -> usize {
    let reserve = if reserve.saturating_mul(2) > open_files {
        open_files / 4
    } else {
        reserve
    };
    let by_files = usize::try_from(open_files.saturating_sub(reserve)).unwrap_or(usize::MAX);
    configured.min(by_files).max(1)
}

/// Work that needs the CPU (parsing and judging a body) runs here: on blocking threads, at
/// most `threads` at once, within a budget counted from the moment the body is complete (the
/// time a client takes to send it is bounded separately, by the body deadline).
#[derive(Debug, Clone)]
pub struct Compute {
    permits: Arc<Semaphore>,
    pub budget: Duration,
}

/// The budget ran out before the work was done (or before it could start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

impl Compute {
    pub fn new(threads: usize, budget: Duration) -> Self {
        Compute {
            permits: Arc::new(Semaphore::new(threads.max(1))),
            budget,
        }
    }

    /// Runs `work(deadline)` on a blocking thread and waits for it until the deadline. The work
    /// is given the deadline to stop itself (the SOAP parser does); a thread that still runs past
    /// it keeps its permit until it ends, so runaway work cannot multiply.
    ///
    /// Work that ends after the deadline is over budget even when its result reaches this
    /// network thread before the timer does (a busy or descheduled network thread polls the
    /// work first): the clock read where the work ends decides, not the order in which the
    /// network thread notices the two.
    pub async fn run<T, F>(&self, from: Instant, work: F) -> Result<T, OverBudget>
    where
        T: Send + 'static,
        F: FnOnce(Instant) -> T + Send + 'static,
    {
        let deadline = from + self.budget;
        let until = tokio::time::Instant::from_std(deadline);
        let permit = tokio::time::timeout_at(until, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| OverBudget)?
            .map_err(|_| OverBudget)?;
        let task = actix_web::rt::task::spawn_blocking(move || {
            let _permit = permit;
            let value = work(deadline);
            (Instant::now() <= deadline).then_some(value)
        });
        match tokio::time::timeout_at(until, task).await {
            Ok(Ok(Some(value))) => Ok(value),
            // Done too late, a panic in the work, or the deadline: nothing was answered.
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => Err(OverBudget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `future` on a runtime of one thread, as an actix network thread is.
    fn on_one_thread<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn work_done_in_time_is_answered() {
        let compute = Compute::new(1, Duration::from_secs(5));
        let answer = on_one_thread(compute.run(Instant::now(), |_| 42));
        assert_eq!(answer, Ok(42));
    }

    #[test]
    fn work_that_ends_past_the_deadline_is_over_budget_even_if_seen_before_the_timer() {
        let compute = Compute::new(1, Duration::from_millis(20));
        let answer = on_one_thread(async {
            let work = compute.run(Instant::now(), |_| {
                std::thread::sleep(Duration::from_millis(60));
                42
            });
            // The network thread is busy (blocked) past the moment the work ends, so when it
            // looks again the work's result is ready before the timer has fired.
            let busy = async { std::thread::sleep(Duration::from_millis(200)) };
            tokio::join!(work, busy).0
        });
        assert_eq!(answer, Err(OverBudget));
    }

    #[test]
    fn the_connection_cap_keeps_the_reserve() {
        assert_eq!(connection_cap(10_000, 1024, 256), 768);
        assert_eq!(connection_cap(500, 1024, 256), 500);
        assert_eq!(connection_cap(10_000, 1 << 20, 256), 10_000);
        // A limit smaller than the reserve still leaves room on both sides.
        let cap = connection_cap(10_000, 200, 256);
        assert!(cap > 0 && cap < 200, "{cap}");
    }

    fn limits(cap: usize, max_per_peer: usize) -> ConnectionLimits {
        ConnectionLimits {
            cap,
            max_per_peer,
            shed_at: ConnectionLimits::shed_at(cap, 90),
            head_timeout: Duration::from_secs(5),
            pressure_head_timeout: Duration::from_secs(1),
        }
    }

    fn addr(ip: &str, port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), port))
    }

    #[test]
    fn connections_count_per_peer_at_accept_and_release_on_drop() {
        let connections = Connections::new(limits(100, 2), None);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let a = connections.open(addr("127.0.0.2", 1));
        let b = connections.open(addr("127.0.0.2", 2));
        let c = connections.open(addr("127.0.0.2", 3));
        assert_eq!(
            (
                a.slot.conn.over_peer_limit,
                b.slot.conn.over_peer_limit,
                c.slot.conn.over_peer_limit
            ),
            (false, false, true)
        );
        // Over the limit: the short head timeout.
        assert!(c.head_deadline - c.slot.conn.opened == Duration::from_secs(1));
        assert!(a.head_deadline - a.slot.conn.opened == Duration::from_secs(5));
        let slot = ConnectionSlot::of(&connections, addr("127.0.0.2", 3));
        assert_eq!(slot.refusal, Some(Refusal::PeerLimit));
        assert_eq!(
            ConnectionSlot::of(&connections, addr("127.0.0.2", 1)).refusal,
            None
        );
        assert_eq!(connections.count(ip), 3);
        drop(c);
        drop(a);
        assert_eq!(connections.count(ip), 1);
        assert!(
            !connections
                .open(addr("127.0.0.2", 4))
                .slot
                .conn
                .over_peer_limit
        );
        drop(b);
        assert_eq!((connections.count(ip), connections.total()), (0, 0));
    }

    #[test]
    fn near_the_cap_the_newest_connections_of_the_heaviest_peer_are_shed() {
        // Cap 20, shedding from 18 open connections on.
        let connections = Connections::new(limits(20, 100), None);
        let mut heavy = Vec::new();
        for port in 0..18 {
            heavy.push(connections.open(addr("127.0.0.1", port)));
        }
        assert!(heavy
            .iter()
            .all(|r| !r.slot.conn.shed.load(Ordering::Relaxed)));
        // A newcomer from the heavy peer is the newest of the heaviest: shed itself.
        let more = connections.open(addr("127.0.0.1", 100));
        assert!(more.slot.conn.shed.load(Ordering::Relaxed));
        // Another address gets in; the heavy peer's newest gives way.
        let light = connections.open(addr("127.0.0.2", 1));
        assert!(!light.slot.conn.shed.load(Ordering::Relaxed));
        assert!(heavy[17].slot.conn.shed.load(Ordering::Relaxed));
        assert!(!heavy[16].slot.conn.shed.load(Ordering::Relaxed));
        // Under pressure, a new connection gets the short head timeout.
        assert_eq!(
            light.head_deadline - light.slot.conn.opened,
            Duration::from_secs(1)
        );
        assert_eq!(connections.total(), 18);
        assert_eq!(connections.count("127.0.0.2".parse().unwrap()), 1);
        drop(heavy);
        drop(more);
        assert_eq!(connections.total(), 1);
    }
}
