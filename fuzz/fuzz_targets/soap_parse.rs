//! The SOAP body parser alone: any bytes up to the body limit give a request or a Fault reason,
//! in bounded time, never a panic.
#![no_main]

use kbi_wire::soap::{parse, XmlLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits::default();
    let _ = kbi_advice_fuzz::timed("soap parse", false, || parse::parse(data, &limits));
});
