//! INSZ parsing: never panics; whatever parses prints as 11 digits that parse back to the same
//! number, and the error never repeats the input.
#![no_main]

use kbi_core::domain::Insz;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match kbi_advice_fuzz::timed("insz", false, || Insz::parse(text)) {
        Ok(insz) => {
            let printed = insz.to_string();
            assert_eq!(printed.len(), 11);
            assert_eq!(Insz::parse(&printed).ok(), Some(insz));
        }
        Err(error) => kbi_advice_fuzz::assert_no_insz(data, &error.to_string()),
    }
});
