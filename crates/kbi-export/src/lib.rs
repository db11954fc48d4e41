//! `kbi-advice export`: a delivery of register data under a protocol file
//! (`../shared/spec/protocols.md` sections 3–7).
//!
//! - [`fields`]: the closed field catalogue of section 3, one derivation per field, pure;
//! - [`regions`]: the reviewed office → region list (`config/kbi-regions.toml`).

pub mod fields;
pub mod regions;
