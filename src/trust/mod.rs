//! Who may call, how often, and over what (`security-and-audit.md`). The policy — client
//! registry, rate limits, certificate facts — is the floor [`kbi_trust`], re-exported here under
//! its old paths (`kbi_advice::trust::clients::ClientRegistry` and the like); this module adds
//! what needs the TLS stack: the mutual-TLS server configuration ([`tls`]).
//!
//! How the server uses it per request: see [`kbi_trust`].

pub use kbi_trust::{cert, clients, rate_limit};
pub mod tls;

pub use kbi_trust::{
    Client, ClientRegistry, ClientsError, Clock, ManualClock, MonotonicClock, Operation, RateLimit,
    RateLimiter,
};
pub use tls::{peer_fingerprint, server_config, TlsError, TlsFiles};
