//! Protocol files (`config/protocols/*.toml`, `protocols.md` section 1): what the agency may hand
//! to whom, for which purpose, on which legal basis and for how long — read, validated, and asked
//! one question: [`Protocol::allows`].
//!
//! Under article 8 §1 of the Flemish e-government decree of 18 July 2008 personal data leave only
//! under a protocol. The program therefore refuses every flow no protocol file allows; the doors
//! (code 30005), the yearly list and the exports all ask this crate.
//!
//! Pure: no I/O. The binary reads the files and hands their text to [`ProtocolSet::from_sources`]
//! (or [`Protocol::from_toml`]), so `serve`, `premium-list`, `protocol check` and `export` load
//! them with the same code. The whole format of section 1 is read and validated here, the
//! `[[files]]` deliveries included, even where nothing delivers them yet: a file the export
//! engine will read tomorrow is refused today if it is wrong.

mod allows;
mod catalogue;
mod load;
mod model;
mod set;

pub use allows::{Binding, Refusal};
pub use catalogue::{CatalogueField, Field};
pub use load::LoadError;
pub use model::{
    Asks, DateWindow, Encryption, Ended, FileSpec, Identity, Join, Period, Population, Protocol,
    Purpose, PurposeWindow, YearWindow,
};
pub use set::{ProtocolSet, SetError, SHIPPED};

/// Longest protocol id, purpose, file id or join name (ids are audit members and metrics labels).
pub const MAX_ID: usize = 40;

/// `[a-z0-9-]{1,40}`: the form of every id in a protocol file.
pub fn is_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ID
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
