//! kbi-advice: on date D, does the person with INSZ X fall under the Flemish integration
//! obligation (inburgeringsplicht), does he or she comply, and if not, why?
//!
//! See ARCHITECTURE.md for the map. The [`domain`] core is pure; [`snapshot`] reads register
//! extracts into it; [`api`] and [`cli`] are the doors.

pub mod cli;
pub mod service;
pub mod snapshot;
pub mod telemetry;
pub mod trust;

// The floors (crates/), under the paths they had before the split, so that `crate::domain`,
// `kbi_advice::premium` and the like keep naming the same items.
pub use kbi_audit as audit;
pub use kbi_core::{domain, redact};
pub use kbi_import as import;
pub use kbi_premium as premium;
pub use kbi_signing as signing;
pub use kbi_wire as api;
