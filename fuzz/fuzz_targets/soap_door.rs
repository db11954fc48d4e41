//! The whole SOAP door: parse, judge and render against the demo snapshot in memory. Every
//! input gets a well-formed reply (200) or a Fault (500), in bounded time, and the reply never
//! carries an INSZ that was not a question's own (a Fault quotes nothing from the request).
#![no_main]

use kbi_wire::soap::{respond_at, SoapCall, XmlLimits};
use libfuzzer_sys::fuzz_target;

/// A fixed `Tijdstip`, so that a crash reproduces byte for byte.
fn fixed_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("a valid timestamp")
}

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits::default();
    let call = SoapCall {
        snapshot: Some(kbi_advice_fuzz::demo()),
        limits: &limits,
        server_referte: "fuzz-1",
        service_identificatie: "kbi-advice",
    };
    let response =
        kbi_advice_fuzz::timed("soap door", false, || respond_at(data, &call, fixed_now()));
    assert!(
        response.http_status == 200 || response.http_status == 500,
        "HTTP {}",
        response.http_status
    );
    if response.http_status == 500 {
        assert!(response.questions.is_empty());
        kbi_advice_fuzz::assert_no_insz(data, &String::from_utf8_lossy(&response.body));
    }
});
