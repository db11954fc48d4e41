//! Who may call, how often, and over what (`security-and-audit.md`). The policy — client
//! registry, rate limits, certificate facts — is the floor [`kbi_trust`], used under its own
//! name; this module adds what needs the TLS stack: the mutual-TLS server configuration
//! ([`tls`]).
//!
//! How the server uses it per request: see [`kbi_trust`].

pub mod tls;

pub use tls::{peer_fingerprint, server_config, TlsError, TlsFiles};
