//! The client listener against hostile peers: bounded connections (in total and per peer
//! address), open-file descriptors kept in reserve, and CPU work run off the network threads
//! within a time budget. `docs/security.md` (Hostile inputs) lists what each stops.
//!
//! Connections are counted in actix-web's `on_connect` hook: each gets a [`ConnectionSlot`] in
//! its connection data, released when the connection is dropped. A slot over the per-peer limit
//! (or a TLS connection without a client certificate) is marked; [`refuse_marked`] then answers
//! every request on it with a complete response and closes the connection, as nginx's
//! `limit_conn` does (503).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use serde_json::json;
use tokio::sync::Semaphore;

/// Open connections per peer address on the client listener.
#[derive(Debug)]
pub struct PeerConnections {
    open: Mutex<HashMap<IpAddr, usize>>,
    max_per_peer: usize,
}

impl PeerConnections {
    pub fn new(max_per_peer: usize) -> Arc<Self> {
        Arc::new(PeerConnections {
            open: Mutex::new(HashMap::new()),
            max_per_peer,
        })
    }

    /// Counts a new connection from `peer`; the slot is marked when the peer is over its limit.
    pub fn open(self: &Arc<Self>, peer: Option<IpAddr>) -> ConnectionSlot {
        let mut refusal = None;
        if let Some(ip) = peer {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let count = open.entry(ip).or_insert(0);
            *count += 1;
            if *count > self.max_per_peer {
                refusal = Some(Refusal::PeerLimit);
            }
        }
        ConnectionSlot {
            peer,
            refusal,
            owner: self.clone(),
        }
    }

    /// Open connections from `peer` (tests, metrics).
    pub fn count(&self, peer: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&peer).copied().unwrap_or(0)
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

/// Why every request on a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More open connections from this peer address than `server.max_connections_per_peer`.
    PeerLimit,
    /// A TLS connection without a client certificate (closed in `on_connect`; this only answers
    /// a request that still arrives).
    NoCertificate,
}

/// One open connection of the client listener; dropping it releases the count.
#[derive(Debug)]
pub struct ConnectionSlot {
    peer: Option<IpAddr>,
    pub refusal: Option<Refusal>,
    owner: Arc<PeerConnections>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(ip) = self.peer {
            let mut open = self.owner.open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = open.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&ip);
                }
            }
        }
    }
}

/// Middleware of the client listener: a request on a marked connection gets its refusal as a
/// complete response (problem document) and the connection is closed after it.
pub async fn refuse_marked(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refusal = request
        .conn_data::<ConnectionSlot>()
        .and_then(|slot| slot.refusal);
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
            work(deadline)
        });
        match tokio::time::timeout_at(until, task).await {
            Ok(Ok(value)) => Ok(value),
            // A panic in the work, or the deadline: nothing was answered.
            Ok(Err(_)) | Err(_) => Err(OverBudget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_keeps_the_reserve() {
        assert_eq!(connection_cap(10_000, 1024, 256), 768);
        assert_eq!(connection_cap(500, 1024, 256), 500);
        assert_eq!(connection_cap(10_000, 1 << 20, 256), 10_000);
        // A limit smaller than the reserve still leaves room on both sides.
        let cap = connection_cap(10_000, 200, 256);
        assert!(cap > 0 && cap < 200, "{cap}");
    }

    #[test]
    fn slots_count_per_peer_and_release_on_drop() {
        let peers = PeerConnections::new(2);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let a = peers.open(Some(ip));
        let b = peers.open(Some(ip));
        let c = peers.open(Some(ip));
        assert_eq!(
            (a.refusal, b.refusal, c.refusal),
            (None, None, Some(Refusal::PeerLimit))
        );
        assert_eq!(peers.count(ip), 3);
        drop(c);
        drop(a);
        assert_eq!(peers.count(ip), 1);
        assert_eq!(peers.open(Some(ip)).refusal, None);
        drop(b);
        assert_eq!(peers.count(ip), 0);
    }
}
