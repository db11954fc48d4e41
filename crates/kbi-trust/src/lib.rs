//! Who may call and how often (`security-and-audit.md`), as pure policy: the client registry
//! ([`clients`]), per-client rate limits ([`rate_limit`]) and the certificate facts the registry
//! identifies a caller by ([`cert`]). The TLS side (the rustls server configuration that demands
//! the certificate) is the binary's `kbi_advice::trust::tls`; this crate only ever sees the
//! certificate's DER bytes, so it needs no TLS stack and no runtime.
//!
//! How the server uses it, per request: identify the client (certificate via
//! [`ClientRegistry::identify_by_certificate`], or in the development profile
//! [`ClientRegistry::identify_by_afzender`] / [`ClientRegistry::identify_by_id`]); unknown →
//! 30010 / 401; [`RateLimiter::try_acquire`] false → 30013 / 429; then
//! [`Client::authorise`] with the SOAP `Afzender` values and the [`Operation`] → 30010 / 403.

pub mod cert;
pub mod clients;
pub mod rate_limit;

pub use clients::{Client, ClientRegistry, ClientsError, Operation, RateLimit};
pub use rate_limit::{Clock, ManualClock, MonotonicClock, RateLimiter};
