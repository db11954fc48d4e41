//! `clients.toml`: any text gives a registry or an error that names the place without quoting
//! the file, in bounded time.
#![no_main]

use kbi_trust::clients::ClientRegistry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let outcome = kbi_advice_fuzz::timed("clients.toml", false, || ClientRegistry::from_toml(text));
    if let Err(error) = outcome {
        kbi_advice_fuzz::assert_no_insz(data, &error.to_string());
    }
});
