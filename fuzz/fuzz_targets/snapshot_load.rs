//! A whole snapshot text through the real loader (reader thread, chunks, parallel compile,
//! index): never panics, bounded time, and the error never quotes the text.
#![no_main]

use std::sync::{Arc, OnceLock};

use kbi_core::domain::RuleSet;
use libfuzzer_sys::fuzz_target;

fn rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES.get_or_init(|| Arc::new(RuleSet::shipped())).clone()
}

fuzz_target!(|data: &[u8]| {
    let outcome = kbi_advice_fuzz::timed("snapshot load", true, || {
        kbi_core::snapshot::load_bytes(data.to_vec(), rules(), &kbi_core::io::Silent)
    });
    if let Err(error) = outcome {
        kbi_advice_fuzz::assert_no_insz(data, &error.to_string());
    }
});
