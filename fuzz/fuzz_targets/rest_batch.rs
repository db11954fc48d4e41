//! The REST batch body, decoded and judged against the demo snapshot: never panics, bounded
//! time, and a refusal's `detail` never quotes the body.
#![no_main]

use std::sync::OnceLock;

use kbi_advice::domain::{CompiledSnapshot, RuleSet};
use kbi_advice::service::rest::judge_batch_body;
use libfuzzer_sys::fuzz_target;

fn demo() -> &'static CompiledSnapshot {
    static DEMO: OnceLock<CompiledSnapshot> = OnceLock::new();
    DEMO.get_or_init(|| {
        kbi_advice::snapshot::load_bytes(
            kbi_advice::service::reload::DEMO_SNAPSHOT.to_vec(),
            std::sync::Arc::new(RuleSet::shipped()),
            &kbi_advice::snapshot::Silent,
        )
        .expect("the demo snapshot loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let outcome = kbi_advice_fuzz::timed("rest batch", false, || {
        judge_batch_body(demo(), data, 10_000)
    });
    if let Err(problem) = outcome {
        kbi_advice_fuzz::assert_no_insz(data, &problem.detail);
    }
});
