//! One snapshot person line: never panics, bounded time, and the error never quotes the line.
#![no_main]

use kbi_core::snapshot::person::parse_person;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(message) = kbi_advice_fuzz::timed("snapshot line", false, || parse_person(data)) {
        kbi_advice_fuzz::assert_no_insz(data, &message);
    }
});
