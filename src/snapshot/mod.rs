//! The snapshot sources that need the network: Redis, and `--snapshot` parsing (a file or a
//! `redis://` target). Reading, validating and compiling a snapshot is the floor's
//! ([`kbi_core::snapshot`]), shared by every source.

pub mod redis;
pub mod source;

pub use source::{SnapshotSource, SourceError};
