//! `rules.toml`: any text gives a rule set or an error that names the place without quoting the
//! file, in bounded time.
#![no_main]

use kbi_core::domain::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = kbi_advice_fuzz::timed("rules.toml", false, || RuleSet::from_toml(text)) {
        kbi_advice_fuzz::assert_no_insz(data, &error.to_string());
    }
});
