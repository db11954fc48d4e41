//! Snapshots of the integration register. Reading, validating and compiling live in
//! [`kbi_core::snapshot`] (re-exported here, so `kbi_advice::snapshot::reader` still names them);
//! this module adds the sources that need the network: Redis, and `--snapshot` parsing.

pub use kbi_core::snapshot::*;

pub mod redis;
pub mod source;

pub use source::{SnapshotSource, SourceError};
