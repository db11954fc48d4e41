//! What every fuzz target shares: the time budget per input and the "no INSZ in an error" oracle.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kbi_core::domain::{CompiledSnapshot, RuleSet};
use kbi_core::snapshot::generate::DEMO_SNAPSHOT;

/// The demo snapshot under the shipped rules, loaded once per process: what the door targets
/// judge against.
pub fn demo() -> &'static CompiledSnapshot {
    static DEMO: OnceLock<CompiledSnapshot> = OnceLock::new();
    DEMO.get_or_init(|| {
        kbi_core::snapshot::load_bytes(
            DEMO_SNAPSHOT.to_vec(),
            Arc::new(RuleSet::shipped()),
            &kbi_core::io::Silent,
        )
        .expect("the demo snapshot loads")
    })
}

/// The most CPU time one input may cost (`KBI_FUZZ_SLOW_MS`, default 100 ms): every input path
/// must have bounded cost, and an input up to the request body limit that takes longer is a
/// finding (a superlinear case), reported as a crash with the input saved.
pub fn budget() -> Duration {
    static BUDGET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        let ms = std::env::var("KBI_FUZZ_SLOW_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        Duration::from_millis(ms)
    })
}

/// CPU time of `clock` (thread or process), not wall time: a fuzzer sharing the machine with
/// other work must not report slowness that is not the input's.
fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to.
    unsafe { libc::clock_gettime(clock, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Runs `work` and panics (a fuzzer finding) when it used more CPU than [`budget`]. `threads`:
/// count the whole process's CPU (for work spread over threads), else this thread's.
pub fn timed<T>(what: &str, threads: bool, work: impl FnOnce() -> T) -> T {
    let clock = if threads {
        libc::CLOCK_PROCESS_CPUTIME_ID
    } else {
        libc::CLOCK_THREAD_CPUTIME_ID
    };
    let started = cpu_time(clock);
    let out = work();
    let used = cpu_time(clock).saturating_sub(started);
    assert!(
        used <= budget(),
        "{what}: one input cost {used:?} of CPU, more than the budget of {:?}",
        budget()
    );
    out
}

/// Every valid INSZ written in `input` (11 digits in a row). An error message must contain none
/// of them: the oracle for "an error never quotes a value from the input".
pub fn inszs_in(input: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for window in input.windows(11) {
        if window.iter().all(u8::is_ascii_digit) {
            let text = std::str::from_utf8(window).expect("digits are UTF-8");
            if kbi_core::domain::Insz::parse(text).is_ok() {
                found.push(text.to_string());
            }
        }
    }
    found
}

/// Panics when `message` (an error built from `input`) contains an INSZ found in `input`.
pub fn assert_no_insz(input: &[u8], message: &str) {
    for insz in inszs_in(input) {
        assert!(
            !message.contains(&insz),
            "an INSZ from the input appears in the error message: {message}"
        );
    }
}
