//! `kbi-advice export`: a delivery of register data under a protocol file
//! (`../shared/spec/protocols.md` sections 3–7).
//!
//! One engine, in the order of a delivery:
//! - [`deliver::allowed`]: the protocol in force, the file in it, the reference date in its
//!   window — refused before anything is read, whatever `--force` says;
//! - [`deliver::DeliveryRequest::prepare`]: sealing, output directory, the register's lock and
//!   its once-a-period rule;
//! - [`join`]: the partners' files, CSV or age-encrypted CSV decrypted in memory, bounded;
//! - [`select`]: every dossier the reader accepts is judged against the population
//!   ([`population`], `subject` and `answer-nok` by the doors' own rules code) and its row
//!   derived field by field ([`fields`], [`regions`]) into a compact table ([`table`]);
//!   [`identity`] keeps, removes or pseudonymises the INSZ, [`suppress`] empties small cells;
//! - [`deliver::PreparedDelivery::run`]: encrypt, sign ([`manifest`]), rename, register — the
//!   yearly list's own pieces (`kbi_premium::deliver`), all or nothing;
//! - [`verify`]: the recipient's check.

pub mod deliver;
pub mod fields;
pub mod identity;
pub mod join;
pub mod manifest;
pub mod population;
pub mod regions;
pub mod select;
pub mod suppress;
pub mod table;
pub mod verify;

pub use select::{Person, Selected, Selection, SelectionSpec};
