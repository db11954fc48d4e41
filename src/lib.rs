//! kbi-advice: on date D, does the person with INSZ X fall under the Flemish integration
//! obligation (inburgeringsplicht), does he or she comply, and if not, why?
//!
//! See ARCHITECTURE.md for the map. The [`domain`] core is pure; [`snapshot`] reads register
//! extracts into it; [`api`] and [`cli`] are the doors.

pub mod api;
pub mod audit;
pub mod cli;
pub mod domain;
pub mod import;
pub mod premium;
pub mod redact;
pub mod service;
pub mod snapshot;
pub mod telemetry;
pub mod trust;
