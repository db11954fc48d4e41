//! Who may call, how often, and over what (`security-and-audit.md`): the client registry
//! ([`clients`]), per-client rate limits ([`rate_limit`]), the mutual-TLS server configuration
//! ([`tls`]) and the certificate facts they share ([`cert`]).
//!
//! How the server uses it, per request: identify the client (certificate via
//! [`ClientRegistry::identify_by_certificate`], or in the development profile
//! [`ClientRegistry::identify_by_afzender`] / [`ClientRegistry::identify_by_id`]); unknown →
//! 30010 / 401; [`RateLimiter::try_acquire`] false → 30013 / 429; then
//! [`Client::authorise`] with the SOAP `Afzender` values and the [`Operation`] → 30010 / 403.

pub mod cert;
pub mod clients;
pub mod rate_limit;
pub mod tls;

pub use clients::{Client, ClientRegistry, ClientsError, Operation, RateLimit};
pub use rate_limit::{Clock, ManualClock, MonotonicClock, RateLimiter};
pub use tls::{peer_fingerprint, server_config, TlsError, TlsFiles};
