//! The floor of kbi-advice: on date D, does the person with INSZ X fall under the Flemish
//! integration obligation (inburgeringsplicht), does he or she comply, and if not, why?
//!
//! - [`domain`]: pure types and rules, total functions, the decision and its compiled index;
//! - [`snapshot`]: the one place that turns snapshot bytes (JSON Lines, optionally gzip/zstd)
//!   into the index, and synthetic extracts for tests and load tests;
//! - [`io`]: opening only regular files, bounded reads of configuration files, and progress of
//!   long work, for every floor that reads what an operator names;
//! - [`redact`]: error texts that name what was wrong without echoing the data (no INSZ).
//!
//! No async runtime, no network, no other kbi-* crate: the crates above depend on this one,
//! never the other way round (`tests/it/layering.rs` in the root package checks it).

pub mod domain;
pub mod io;
pub mod redact;
pub mod snapshot;
