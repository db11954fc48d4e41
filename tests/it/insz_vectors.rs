//! The INSZ vectors of the spec (`scenarios/insz-vectors.csv`), plus generated properties.

use kbi_core::domain::Insz;
use kbi_core::snapshot::generate::make_insz;
use proptest::prelude::*;

#[test]
fn spec_vectors() {
    let text = std::fs::read_to_string("tests/fixtures/insz-vectors.csv").unwrap();
    let mut count = 0;
    for line in text.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        let mut fields = line.splitn(3, ',');
        let (input, valid) = (fields.next().unwrap(), fields.next().unwrap());
        let parsed = Insz::parse(input);
        assert_eq!(parsed.is_ok(), valid == "true", "{input}: {parsed:?}");
        if let Ok(insz) = parsed {
            let digits: String = input.chars().filter(char::is_ascii_digit).collect();
            assert_eq!(insz.to_string(), digits);
        }
        count += 1;
    }
    assert!(count >= 16);
}

#[test]
fn separators_and_other_characters() {
    assert!(Insz::parse("85-07-30 033.28").is_ok());
    for bad in [
        "85/07/30-033.28",
        "85073003328 x",
        "+85073003328",
        "８５073003328",
        "850730033280",
    ] {
        assert!(Insz::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn born_on_29_february_depends_on_the_century() {
    // 2000 is a leap year, 1900 is not: the check digits select the century.
    let born_2000 = make_insz(2000, 2, 29, 1);
    assert!(Insz::parse(&born_2000.to_string()).is_ok());
    let body = 229_001u64; // YYMMDDSSS = 00 02 29 001, check digits of the 1900 reading
    let check = 97 - body % 97;
    assert!(
        Insz::from_digits(body * 100 + check).is_err(),
        "1900-02-29 does not exist"
    );
}

proptest! {
    #[test]
    fn any_existing_birth_date_and_serial_is_valid(
        year in 1900i32..2025, month in 1u32..=12, day in 1u32..=28, serial in 1u32..998,
        bis in 0u32..3,
    ) {
        let insz = make_insz(year, month + bis * 20, day, serial);
        let text = insz.to_string();
        prop_assert_eq!(Insz::parse(&text), Ok(insz));
        // Any single changed check digit is refused.
        let mut digits: Vec<u8> = text.bytes().collect();
        digits[10] = if digits[10] == b'9' { b'0' } else { digits[10] + 1 };
        let altered = String::from_utf8(digits).unwrap();
        prop_assert!(Insz::parse(&altered).is_err());
    }

    #[test]
    fn parsing_never_panics(text in "\\PC{0,20}") {
        let _ = Insz::parse(&text);
    }
}
