//! Every protocol the program knows: the `*.toml` files of `[protocols] dir`, by id.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::load::LoadError;
use crate::model::Protocol;

/// A refused protocol directory: which file, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("protocol file {file}: {error}")]
    File { file: String, error: LoadError },
    #[error("protocol files {first} and {second} both have id `{id}`")]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },
    #[error("no protocol file (*.toml) in the protocols directory")]
    Empty,
}

/// The protocols in use, by id. Swapped as a whole on reload.
#[derive(Debug, Clone, Default)]
pub struct ProtocolSet {
    by_id: BTreeMap<Arc<str>, (Arc<Protocol>, String)>,
}

/// The shipped files (`config/protocols/`), used when `[protocols] dir` is empty.
/// Every file of the directory, in name order (a test in tests/loader.rs keeps the two equal).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "agii-abb-3de-pijler.toml",
        include_str!("../../../config/protocols/agii-abb-3de-pijler.toml"),
    ),
    (
        "agii-gemeente.toml",
        include_str!("../../../config/protocols/agii-gemeente.toml"),
    ),
    (
        "agii-vdab-3de-pijler.toml",
        include_str!("../../../config/protocols/agii-vdab-3de-pijler.toml"),
    ),
    (
        "agii-vsb.toml",
        include_str!("../../../config/protocols/agii-vsb.toml"),
    ),
    (
        "demo.toml",
        include_str!("../../../config/protocols/demo.toml"),
    ),
];

impl ProtocolSet {
    /// The shipped protocols (`config/protocols/`, compiled in).
    pub fn shipped() -> Result<ProtocolSet, SetError> {
        ProtocolSet::from_sources(
            SHIPPED
                .iter()
                .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
        )
    }

    /// Validates every `(file name, text)`; any invalid file, or two files with the same id,
    /// refuses the whole set (the caller keeps the set it had).
    pub fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ProtocolSet, SetError> {
        let mut set = ProtocolSet::default();
        for (file, text) in sources {
            let protocol = Protocol::from_toml(&text).map_err(|error| SetError::File {
                file: file.clone(),
                error,
            })?;
            if let Some((_, first)) = set.by_id.get(&protocol.id) {
                return Err(SetError::DuplicateId {
                    id: protocol.id.to_string(),
                    first: first.clone(),
                    second: file,
                });
            }
            set.by_id
                .insert(protocol.id.clone(), (Arc::new(protocol), file));
        }
        if set.by_id.is_empty() {
            return Err(SetError::Empty);
        }
        Ok(set)
    }

    /// The protocol with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Protocol>> {
        self.by_id.get(id).map(|(protocol, _)| protocol)
    }

    /// Every protocol, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Protocol>> {
        self.by_id.values().map(|(protocol, _)| protocol)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.by_id.keys().map(|id| &**id).collect()
    }
}
