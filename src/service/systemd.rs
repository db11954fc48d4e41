//! The systemd service protocol of `kbi-advice.service` (`Type=notify`, `WatchdogSec=`), spoken
//! through the `sd-notify` crate. Outside systemd (`NOTIFY_SOCKET` unset: a terminal, a
//! container, the tests) every message is a no-op, and without `WATCHDOG_USEC` no keep-alive
//! task runs.
//!
//! - **Readiness** (`READY=1`) is sent once both listeners are bound *and* a snapshot is in use:
//!   before that the service can only refuse (30020), so `systemctl start` and units ordered
//!   `After=kbi-advice.service` wait for it. With a file source the snapshot is loaded before
//!   binding; with Redis it may come later (Redis down at start): readiness waits for it.
//! - **Keep-alive** (`WATCHDOG=1`) is sent at half the watchdog interval, and only after the
//!   operations listener answered `GET /health/live` over TCP within a quarter of the interval:
//!   a process whose runtime or HTTP workers hang stops sending and systemd restarts it
//!   (`Restart=on-failure`), instead of a timer thread that would keep a wedged service "alive".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::state::AppState;

/// How often readiness checks whether the first snapshot is in use.
const READY_POLL: Duration = Duration::from_millis(100);

/// Starts the readiness and keep-alive tasks; call once both listeners are bound. `ops` is the
/// operations listener's bound address (what the keep-alive probes).
pub fn spawn(state: Arc<AppState>, ops: SocketAddr) {
    tokio::spawn(async move {
        loop {
            if let Some(snapshot) = state.store.current() {
                let status = format!("serving snapshot {}", snapshot.meta.snapshot_id);
                send(&[NotifyState::Ready, NotifyState::Status(&status)]);
                break;
            }
            tokio::time::sleep(READY_POLL).await;
        }
    });
    if let Some(interval) = sd_notify::watchdog_enabled() {
        let probe = probe_address(ops);
        tracing::info!(
            watchdog_ms = interval.as_millis() as u64,
            "systemd watchdog on: keep-alive after each /health/live probe"
        );
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval / 2);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match tokio::time::timeout(interval / 4, live(probe)).await {
                    Ok(Ok(())) => send(&[NotifyState::Watchdog]),
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "health probe failed: no watchdog keep-alive")
                    }
                    Err(_) => tracing::warn!("health probe timed out: no watchdog keep-alive"),
                }
            }
        });
    }
}

/// Tells systemd the service is stopping (after both listeners have stopped).
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(state: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(state) {
        tracing::warn!(%error, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

/// A listener bound to 0.0.0.0 or [::] is probed on the loopback address of its family.
fn probe_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// `GET /health/live` on the operations listener; Ok when it answers 200.
async fn live(address: SocketAddr) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    // The status line is all that is needed; read a bounded amount.
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).await?;
        if n == 0 {
            break;
        }
        read += n;
    }
    if head[..read].starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "unexpected answer from {address}: {:?}",
            String::from_utf8_lossy(&head[..read.min(12)])
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert_eq!(probe_address(v4), "127.0.0.1:9090".parse().unwrap());
        let v6: SocketAddr = "[::]:9090".parse().unwrap();
        assert_eq!(probe_address(v6), "[::1]:9090".parse().unwrap());
        let given: SocketAddr = "10.0.0.5:9090".parse().unwrap();
        assert_eq!(probe_address(given), given);
    }
}
