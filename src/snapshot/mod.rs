//! Snapshots of the integration register: reading and validating JSON Lines, compiling the index,
//! generating synthetic extracts.

pub mod generate;
pub mod person;
pub mod progress;
pub mod reader;
pub mod redis;
pub mod source;

pub use progress::{Console, Progress, Silent};
pub use reader::{load_bytes, load_path, SnapshotError};
pub use source::{SnapshotSource, SourceError};
