//! The lengths MAGDA fixes for the values of a message context. The SOAP door checks requests
//! against them, and the client registry checks its `afzenders` and `hoedanigheden` against the
//! same, so that a configured sender is one a request can carry.

/// Longest `Referte` (sender's and question's), as MAGDA fixes it.
pub const MAX_REFERTE: usize = 36;
/// Longest `Afzender/Identificatie` accepted.
pub const MAX_IDENTIFICATIE: usize = 128;
/// Longest `Afzender/Hoedanigheid` accepted.
pub const MAX_HOEDANIGHEID: usize = 32;
/// Longest `Afzender/Gebruiker` accepted.
pub const MAX_GEBRUIKER: usize = 128;
