//! The SOAP fast reader against the hardened parser (differential): on any bytes, whatever the
//! fast reader returns is exactly what the hardened parser returns for them, and the server's
//! parse (fast reader in front) always says what the hardened parser alone says. The seeds
//! (fuzz/corpus/soap_fast) are canonical requests as the known clients send them, so the
//! mutations start on the fast road.
#![no_main]

use kbi_wire::soap::{fast, parse, XmlLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = XmlLimits::default();
    let (fast, hardened, served) = kbi_advice_fuzz::timed("soap fast reader", false, || {
        (
            fast::read(data, &limits),
            parse::parse_without_fast_reader(data, &limits),
            parse::parse(data, &limits),
        )
    });
    if let Some(fast) = fast {
        assert_eq!(Ok(fast), hardened, "the fast reader read differently");
    }
    assert_eq!(served, hardened, "the server's parse differs from the hardened parser");
});
