//! kbi-advice: on date D, does the person with INSZ X fall under the Flemish integration
//! obligation (inburgeringsplicht), does he or she comply, and if not, why?
//!
//! See ARCHITECTURE.md for the map. This library is the binary's own modules only: [`cli`] (the
//! subcommands), [`service`] (the HTTP doors around the floors), [`snapshot`] (the sources that
//! need the network), [`telemetry`] and [`trust`] (the TLS stack). The floors (crates/) are used,
//! by tests too, under their own names: `kbi_core`, `kbi_wire`, `kbi_audit`, `kbi_import`,
//! `kbi_premium`, `kbi_signing`, `kbi_trust` (`tests/it/layering.rs` refuses an alias here).

pub mod cli;
pub mod service;
pub mod snapshot;
pub mod telemetry;
pub mod trust;
