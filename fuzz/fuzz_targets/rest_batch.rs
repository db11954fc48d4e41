//! The REST batch body, decoded and judged against the demo snapshot: never panics, bounded
//! time, and a refusal's `detail` never quotes the body.
#![no_main]

use kbi_wire::rest::judge_batch_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = kbi_advice_fuzz::timed("rest batch", false, || {
        judge_batch_body(kbi_advice_fuzz::demo(), data, 10_000)
    });
    if let Err(problem) = outcome {
        kbi_advice_fuzz::assert_no_insz(data, &problem.detail);
    }
});
