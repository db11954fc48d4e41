//! Reading a request body with a size limit that is enforced while reading, so an oversized or
//! endless body costs at most the limit in memory, and a time limit with a minimum rate, so a
//! body trickled in a byte at a time cannot hold a connection (and its file descriptor) open.

use std::time::{Duration, Instant};

use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::HttpRequest;
use futures_util::{FutureExt, StreamExt};

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

/// A refusal is sent only after the body has been read and thrown away, up to this many times
/// the body limit: HTTP/2 clients that are still sending when the answer comes get it followed
/// by `RST_STREAM(NO_ERROR)` (RFC 9113, section 8.1), which some (curl before 8) report as a
/// stream error *instead of* the answer. A body that is larger still is not waited for: the
/// refusal goes out at once, followed by that reset (HTTP/2) or by closing the connection
/// (HTTP/1.1).
pub const DRAIN_FACTOR: usize = 4;

fn announced_length(request: &HttpRequest) -> Option<usize> {
    // The digits read straight from the header's bytes: what `to_str` then `parse::<usize>`
    // accept (an optional `+`, at least one ASCII digit, no overflow), without either pass.
    let value = request.headers().get(CONTENT_LENGTH)?.as_bytes();
    let digits = value.strip_prefix(b"+").unwrap_or(value);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(usize::from(b - b'0')))
            .flatten()
    })
}

/// Reads the whole body, refusing it once it exceeds the size limit (after draining it, see
/// [`DRAIN_FACTOR`]) or misses the deadline. A body that came in one chunk (a small one nearly
/// always does) is that chunk, neither copied nor reallocated.
pub async fn read_body(
    request: &HttpRequest,
    mut payload: web::Payload,
    limits: &BodyLimits,
) -> Result<Bytes, BodyError> {
    let limit = limits.bytes;
    let announced = announced_length(request);
    if announced.is_some_and(|n| n > limit) {
        if announced.is_some_and(|n| n <= limit.saturating_mul(DRAIN_FACTOR)) {
            drain(&mut payload, limits, Instant::now(), 0).await;
        }
        return Err(BodyError::TooLarge);
    }
    let started = Instant::now();
    // The first chunk is kept as it is; only a second one makes a buffer of them.
    let mut first: Option<Bytes> = None;
    let mut body = BytesMut::new();
    loop {
        let received = first.as_ref().map_or(0, Bytes::len) + body.len();
        // What has already arrived (a small body usually comes with its headers) is taken
        // without arming a timer; only a wait for more is bounded by the deadline.
        let next = match payload.next().now_or_never() {
            Some(next) => next,
            None => {
                let deadline = tokio::time::Instant::from_std(limits.deadline(started, received));
                match tokio::time::timeout_at(deadline, payload.next()).await {
                    Ok(next) => next,
                    Err(_) => return Err(BodyError::TimedOut),
                }
            }
        };
        let chunk = match next {
            Some(chunk) => chunk.map_err(|_| BodyError::Broken)?,
            None => break,
        };
        if received + chunk.len() > limit {
            let received = received + chunk.len();
            drop((first, body));
            drain(&mut payload, limits, started, received).await;
            return Err(BodyError::TooLarge);
        }
        if first.is_none() && body.is_empty() {
            first = Some(chunk);
            continue;
        }
        if let Some(first) = first.take() {
            let capacity = announced.unwrap_or(8 * 1024).min(limit);
            body.reserve(capacity.max(first.len() + chunk.len()));
            body.extend_from_slice(&first);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(first.unwrap_or_else(|| body.freeze()))
}

/// Reads and throws away the body of a request refused before its body was needed (401, 403,
/// 415, 429), so the refusal is a complete, clean response on HTTP/1.1 and HTTP/2 alike (see
/// [`DRAIN_FACTOR`]). Bounded like [`read_body`]: at most `DRAIN_FACTOR` times the limit, within
/// the body deadline; memory: one chunk at a time.
pub async fn discard_body(request: &HttpRequest, mut payload: web::Payload, limits: &BodyLimits) {
    let cap = limits.bytes.saturating_mul(DRAIN_FACTOR);
    if announced_length(request).is_some_and(|n| n > cap) {
        return;
    }
    drain(&mut payload, limits, Instant::now(), 0).await;
}

/// Discards the rest of `payload` until it ends, `DRAIN_FACTOR` times the limit has come, the
/// deadline passes or the connection breaks, whichever is first.
async fn drain(
    payload: &mut web::Payload,
    limits: &BodyLimits,
    started: Instant,
    mut received: usize,
) {
    let cap = limits.bytes.saturating_mul(DRAIN_FACTOR);
    while received <= cap {
        let deadline = tokio::time::Instant::from_std(limits.deadline(started, received));
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(Ok(chunk))) => received += chunk.len(),
            Ok(Some(Err(_)) | None) | Err(_) => return,
        }
    }
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

    #[test]
    fn the_announced_length_is_what_parse_reads() {
        for value in [
            "0",
            "801",
            "+12",
            "",
            "+",
            "-1",
            " 5",
            "5 ",
            "1e3",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "١٢",
        ] {
            let request = actix_web::test::TestRequest::default()
                .insert_header((CONTENT_LENGTH, value))
                .to_http_request();
            assert_eq!(
                announced_length(&request),
                value.parse::<usize>().ok(),
                "{value:?}"
            );
        }
    }
}
