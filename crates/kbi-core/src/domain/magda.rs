//! The lengths MAGDA fixes for the values of a message context. The SOAP door checks requests
//! against them, and the client registry checks its `afzenders` and `hoedanigheden` against the
//! same, so that a configured sender is one a request can carry. [`Sender`] is the caller's
//! context itself, one type from the SOAP parse to the audit record.

use serde::{Deserialize, Serialize};

/// Longest `Referte` (sender's and question's), as MAGDA fixes it.
pub const MAX_REFERTE: usize = 36;
/// Longest `Afzender/Identificatie` accepted.
pub const MAX_IDENTIFICATIE: usize = 128;
/// Longest `Afzender/Hoedanigheid` accepted.
pub const MAX_HOEDANIGHEID: usize = 32;
/// Longest `Afzender/Gebruiker` accepted.
pub const MAX_GEBRUIKER: usize = 128;

/// A SOAP caller's `Afzender` as sent: parsed by the SOAP door (`kbi_wire::soap`, which echoes
/// its valid values in `Ontvanger`), and written as it is into the audit record (`sender`; absent
/// for REST callers). One type, so the context is never copied field by field between them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    /// `Afzender/Identificatie` (empty when absent; the SOAP parser keeps at most 1,024 bytes).
    pub identificatie: String,
    /// `Afzender/Referte` (empty when absent).
    pub referte: String,
    /// `Afzender/Hoedanigheid` (empty when absent).
    pub hoedanigheid: String,
    /// `Afzender/Gebruiker`, when sent.
    #[serde(default)]
    pub gebruiker: Option<String>,
}
