//! Reading a request body with a size limit that is enforced while reading, so an oversized or
//! endless body costs at most the limit in memory, and a time limit with a minimum rate, so a
//! body trickled in a byte at a time cannot hold a connection (and its file descriptor) open.

use std::time::{Duration, Instant};

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{self, BytesMut};
use actix_web::HttpRequest;
use futures_util::StreamExt;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (announced by `Content-Length` or found while reading).
    TooLarge,
    /// The connection broke or the framing was invalid.
    Broken,
    /// The body did not arrive in time ([`BodyLimits::deadline`]).
    TimedOut,
}

/// How much body, and how fast.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body accepted, in bytes.
    pub bytes: usize,
    /// Time allowed on top of what the minimum rate gives.
    pub timeout: Duration,
    /// The slowest average rate accepted, in bytes per second.
    pub min_bytes_per_second: u64,
}

impl BodyLimits {
    /// When the body must be complete if `received` bytes have come since `started`: the
    /// timeout, plus one second per `min_bytes_per_second` bytes received. A client that stalls
    /// runs out of time after the timeout; one that trickles slower than the rate falls behind
    /// and is cut off as well; a slow but steady client on a poor line gets its time.
    pub fn deadline(&self, started: Instant, received: usize) -> Instant {
        let earned = received as f64 / self.min_bytes_per_second.max(1) as f64;
        started + self.timeout + Duration::from_secs_f64(earned.min(86_400.0))
    }
}

/// Reads the whole body, refusing it as soon as it exceeds the size limit or misses the
/// deadline.
pub async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limits: &BodyLimits,
) -> Result<BytesMut, BodyError> {
    let limit = limits.bytes;
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let started = Instant::now();
    let mut body = BytesMut::with_capacity(announced.unwrap_or(8 * 1024).min(limit));
    loop {
        let deadline = tokio::time::Instant::from_std(limits.deadline(started, body.len()));
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => chunk.map_err(|_| BodyError::Broken)?,
            Ok(None) => break,
            Err(_) => return Err(BodyError::TimedOut),
        };
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_bytes_received() {
        let limits = BodyLimits {
            bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            min_bytes_per_second: 1024,
        };
        let t0 = Instant::now();
        assert_eq!(limits.deadline(t0, 0), t0 + Duration::from_secs(10));
        assert_eq!(limits.deadline(t0, 2048), t0 + Duration::from_secs(12));
        // A byte a second earns a millisecond a second: it falls behind and is cut off.
        assert!(limits.deadline(t0, 20) < t0 + Duration::from_secs(11));
    }
}
