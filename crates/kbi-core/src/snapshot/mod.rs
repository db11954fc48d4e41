//! Snapshots of the integration register: reading and validating JSON Lines, compiling the index,
//! generating synthetic extracts. Opening files safely and progress are [`crate::io`]'s. Where a snapshot comes from (a file, Redis) is the binary's
//! business (`kbi_advice::snapshot::source`); this module takes bytes or a path.

pub mod generate;
pub mod person;
pub mod reader;

pub use reader::{load_bytes, load_path, SnapshotError};
