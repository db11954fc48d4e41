//! Synthetic snapshots with a realistic mix of histories, deterministic per seed.
//!
//! Most persons were never obligated; of the obligated most comply; every event type and both
//! regions occur. Persons come out in ascending INSZ order, as register extracts do. With
//! `with_examples`, the showcase persons of the README (one OK and one NOK example per reason)
//! are included; the demo snapshot `data/demo-snapshot.jsonl` is made that way.

use std::io::{self, Write};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::Insz;

/// The synthetic demonstration snapshot, `data/demo-snapshot.jsonl` (made by this generator with
/// the README's examples; `tests/it/demo_snapshot.rs` checks that it still is): what the service
/// serves when no source is configured, and what the fuzz targets judge against.
pub const DEMO_SNAPSHOT: &[u8] = include_bytes!("../../../../data/demo-snapshot.jsonl");

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub persons: u64,
    pub seed: u64,
    pub extracted_at: DateTime<Utc>,
    pub snapshot_id: Option<String>,
    pub with_examples: bool,
}

/// The default extraction moment of generated snapshots (the public scenarios use the same).
pub fn default_extracted_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T02:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// One showcase person of the README: the INSZ, what the example shows, and the expected answer
/// on [`SHOWCASE_DATE`] (`None` = OK, `Some(code)` = NOK for that reason).
pub struct Showcase {
    pub insz: &'static str,
    pub shows: &'static str,
    pub reason: Option<&'static str>,
    pub subject: bool,
    pub events: &'static str,
}

/// The reference date the README's examples are answered on.
pub const SHOWCASE_DATE: &str = "2026-01-01";

/// The README's example persons (tested against the demo snapshot).
pub const SHOWCASE: &[Showcase] = &[
    Showcase {
        insz: "90011510185",
        shows: "registered, contract and VDAB in time",
        reason: None,
        subject: true,
        events: r#"[{"date": "2025-01-06", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2025-02-03", "type": "REGISTRATION"}, {"date": "2025-03-03", "type": "CONTRACT_SIGNED"}, {"date": "2025-03-20", "type": "EMPLOYMENT_SERVICE_REGISTRATION"}]"#,
    },
    Showcase {
        insz: "90011510383",
        shows: "no registration within 3 months",
        reason: Some("NIET_AANGEMELD"),
        subject: true,
        events: r#"[{"date": "2025-01-06", "type": "OBLIGATION_START", "region": "VL"}]"#,
    },
    Showcase {
        insz: "91022010556",
        shows: "contract infringement remedied by signing",
        reason: None,
        subject: true,
        events: r#"[{"date": "2024-02-01", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2024-03-01", "type": "REGISTRATION"}, {"date": "2024-09-02", "type": "INFRINGEMENT", "obligation": "CONTRACT"}, {"date": "2024-10-01", "type": "CONTRACT_SIGNED"}, {"date": "2024-10-15", "type": "EMPLOYMENT_SERVICE_REGISTRATION"}]"#,
    },
    Showcase {
        insz: "91022010754",
        shows: "contract infringement still open",
        reason: Some("GEEN_CONTRACT"),
        subject: true,
        events: r#"[{"date": "2024-02-01", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2024-03-01", "type": "REGISTRATION"}, {"date": "2024-09-02", "type": "INFRINGEMENT", "obligation": "CONTRACT"}]"#,
    },
    Showcase {
        insz: "92032510927",
        shows: "attendance infringement, then certificate",
        reason: None,
        subject: true,
        events: r#"[{"date": "2023-05-02", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2023-06-01", "type": "REGISTRATION"}, {"date": "2023-06-20", "type": "CONTRACT_SIGNED"}, {"date": "2023-07-10", "type": "EMPLOYMENT_SERVICE_REGISTRATION"}, {"date": "2025-03-03", "type": "INFRINGEMENT", "obligation": "ATTENDANCE"}, {"date": "2025-09-01", "type": "CERTIFICATE"}]"#,
    },
    Showcase {
        insz: "92032511125",
        shows: "attendance infringement and fine",
        reason: Some("ONVOLDOENDE_AANWEZIG"),
        subject: true,
        events: r#"[{"date": "2023-05-02", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2023-06-01", "type": "REGISTRATION"}, {"date": "2023-06-20", "type": "CONTRACT_SIGNED"}, {"date": "2023-07-10", "type": "EMPLOYMENT_SERVICE_REGISTRATION"}, {"date": "2025-03-03", "type": "INFRINGEMENT", "obligation": "ATTENDANCE"}, {"date": "2025-04-01", "type": "FINE", "amount_eur": 150}]"#,
    },
    Showcase {
        insz: "93041011316",
        shows: "registered with VDAB within 60 days of the contract",
        reason: None,
        subject: true,
        events: r#"[{"date": "2025-03-03", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2025-04-01", "type": "REGISTRATION"}, {"date": "2025-05-02", "type": "CONTRACT_SIGNED"}, {"date": "2025-06-10", "type": "EMPLOYMENT_SERVICE_REGISTRATION"}]"#,
    },
    Showcase {
        insz: "93041011514",
        shows: "not registered with VDAB within 60 days of the contract",
        reason: Some("NIET_INGESCHREVEN_ARBEIDSBEMIDDELING"),
        subject: true,
        events: r#"[{"date": "2025-03-03", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2025-04-01", "type": "REGISTRATION"}, {"date": "2025-05-02", "type": "CONTRACT_SIGNED"}]"#,
    },
    Showcase {
        insz: "94050511793",
        shows: "objectives infringement closed by the agency",
        reason: None,
        subject: true,
        events: r#"[{"date": "2022-09-05", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2022-10-03", "type": "REGISTRATION"}, {"date": "2022-10-20", "type": "CONTRACT_SIGNED"}, {"date": "2022-11-10", "type": "EMPLOYMENT_SERVICE_REGISTRATION"}, {"date": "2025-06-02", "type": "INFRINGEMENT", "obligation": "CERTIFICATE"}, {"date": "2025-08-01", "type": "INFRINGEMENT_CLOSED", "obligation": "CERTIFICATE"}]"#,
    },
    Showcase {
        insz: "94050511991",
        shows: "objectives not reached in time",
        reason: Some("DOELSTELLINGEN_NIET_BEHAALD"),
        subject: true,
        events: r#"[{"date": "2022-09-05", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2022-10-03", "type": "REGISTRATION"}, {"date": "2022-10-20", "type": "CONTRACT_SIGNED"}, {"date": "2022-11-10", "type": "EMPLOYMENT_SERVICE_REGISTRATION"}, {"date": "2025-06-02", "type": "INFRINGEMENT", "obligation": "CERTIFICATE"}]"#,
    },
    Showcase {
        insz: "95063012146",
        shows: "Brussels: attestation handed in",
        reason: None,
        subject: true,
        events: r#"[{"date": "2023-01-09", "type": "OBLIGATION_START", "region": "BXL"}, {"date": "2023-02-01", "type": "REGISTRATION"}, {"date": "2024-06-03", "type": "BRUSSELS_ATTESTATION"}]"#,
    },
    Showcase {
        insz: "95063012344",
        shows: "Brussels: attestation missing (infringement)",
        reason: Some("BRUSSELS_ATTEST_ONTBREEKT"),
        subject: true,
        events: r#"[{"date": "2023-01-09", "type": "OBLIGATION_START", "region": "BXL"}, {"date": "2023-02-01", "type": "REGISTRATION"}, {"date": "2025-02-03", "type": "INFRINGEMENT", "obligation": "BRUSSELS_ATTESTATION"}]"#,
    },
    Showcase {
        insz: "96071412565",
        shows: "exempted (medical): no longer subject",
        reason: None,
        subject: false,
        events: r#"[{"date": "2023-03-01", "type": "OBLIGATION_START", "region": "VL"}, {"date": "2023-09-01", "type": "INFRINGEMENT", "obligation": "REGISTRATION"}, {"date": "2024-01-15", "type": "EXEMPTION", "cause": "MEDICAL"}]"#,
    },
];

/// An INSZ that is valid but not in the demo snapshot (answers as "not subject").
pub const SHOWCASE_ABSENT: &str = "97081812768";

/// Builds a valid INSZ from birth date parts and a serial (check digits computed).
pub fn make_insz(year: i32, month_code: u32, day: u32, serial: u32) -> Insz {
    let body = u64::from((year % 100) as u32) * 10_000_000
        + u64::from(month_code) * 100_000
        + u64::from(day) * 1_000
        + u64::from(serial);
    let modulo_base = if year >= 2000 {
        2_000_000_000 + body
    } else {
        body
    };
    let check = 97 - modulo_base % 97;
    Insz::from_digits(body * 100 + check).expect("generated INSZ is valid by construction")
}

fn random_insz(rng: &mut ChaCha8Rng) -> Insz {
    let birth = date(1940, 1, 1) + Days::new(rng.gen_range(0..25_200));
    let mut month_code = birth.month();
    let roll = rng.gen_range(0..100);
    if roll < 2 {
        month_code += 20;
    } else if roll < 4 {
        month_code += 40;
    }
    make_insz(birth.year(), month_code, birth.day(), rng.gen_range(1..998))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// `count` distinct numbers drawn with `draw`, none of them `reserved`, in ascending order.
/// Draws in rounds of what is missing plus 2 % (collisions are rare), then sorts, deduplicates
/// and drops the reserved ones, so the result depends only on the sequence `draw` yields: the
/// generators stay deterministic per seed.
pub fn distinct_numbers(count: usize, reserved: &[u64], mut draw: impl FnMut() -> u64) -> Vec<u64> {
    let mut numbers: Vec<u64> = Vec::with_capacity(count + count / 50 + 16);
    while numbers.len() < count {
        let missing = count - numbers.len();
        for _ in 0..missing + missing / 50 + 1 {
            numbers.push(draw());
        }
        numbers.sort_unstable();
        numbers.dedup();
        numbers.retain(|n| !reserved.contains(n));
        numbers.truncate(count);
    }
    numbers
}

/// Writes a snapshot.
pub fn generate(options: &GenerateOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let examples: Vec<(u64, &Showcase)> = if options.with_examples {
        SHOWCASE
            .iter()
            .map(|s| (Insz::parse(s.insz).map(Insz::value).unwrap_or(0), s))
            .collect()
    } else {
        Vec::new()
    };
    let reserved: Vec<u64> = examples
        .iter()
        .map(|(v, _)| *v)
        .chain(Insz::parse(SHOWCASE_ABSENT).map(Insz::value))
        .collect();
    let wanted = options.persons as usize;
    let random_count = wanted.saturating_sub(examples.len());
    let numbers = distinct_numbers(random_count, &reserved, || random_insz(&mut rng).value());
    let extracted = options.extracted_at.date_naive();
    let snapshot_id = options
        .snapshot_id
        .clone()
        .unwrap_or_else(|| format!("generated-seed{}-{}", options.seed, options.persons));
    writeln!(
        out,
        r#"{{"kbi_snapshot": {{"format": 1, "snapshot_id": {}, "extracted_at": "{}", "persons": {}}}}}"#,
        serde_json::to_string(&snapshot_id).unwrap_or_default(),
        options.extracted_at.format("%Y-%m-%dT%H:%M:%SZ"),
        numbers.len() + examples.len()
    )?;
    let mut examples = examples.into_iter().peekable();
    let mut line = String::with_capacity(1024);
    for value in numbers {
        while let Some((_, example)) = examples.next_if(|(v, _)| *v < value) {
            writeln!(
                out,
                r#"{{"insz": "{}", "events": {}}}"#,
                example.insz, example.events
            )?;
        }
        line.clear();
        write_person(&mut line, value, &mut rng, extracted);
        out.write_all(line.as_bytes())?;
    }
    for (_, example) in examples {
        writeln!(
            out,
            r#"{{"insz": "{}", "events": {}}}"#,
            example.insz, example.events
        )?;
    }
    out.flush()
}

struct Ev {
    date: NaiveDate,
    json: String,
}

fn write_person(line: &mut String, insz: u64, rng: &mut ChaCha8Rng, extracted: NaiveDate) {
    use std::fmt::Write as _;
    let mut events: Vec<Ev> = Vec::new();
    let roll = rng.gen_range(0..100);
    if roll < 8 {
        // Voluntary: registered without ever being obligated.
        let d = date(2015, 1, 1) + Days::new(rng.gen_range(0..3900));
        events.push(ev(d, "REGISTRATION", ""));
        if rng.gen_bool(0.4) {
            events.push(ev(
                d + Days::new(rng.gen_range(5..60)),
                "CONTRACT_SIGNED",
                "",
            ));
        }
    } else if roll < 38 {
        obligated_history(&mut events, rng, extracted);
    }
    events.retain(|e| e.date <= extracted);
    // Events may come in any order in a snapshot; some extracts do not sort them.
    if rng.gen_bool(0.1) {
        events.reverse();
    }
    let _ = write!(line, r#"{{"insz": "{insz:011}", "events": ["#);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            line.push_str(", ");
        }
        line.push_str(&e.json);
    }
    line.push_str("]}\n");
}

fn ev(date: NaiveDate, kind: &str, extra: &str) -> Ev {
    Ev {
        date,
        json: format!(r#"{{"date": "{date}", "type": "{kind}"{extra}}}"#),
    }
}

fn days(rng: &mut ChaCha8Rng, from: u64, to: u64) -> Days {
    Days::new(rng.gen_range(from..to))
}

const OBLIGATIONS: [&str; 6] = [
    "REGISTRATION",
    "CONTRACT",
    "ATTENDANCE",
    "EMPLOYMENT_SERVICE",
    "CERTIFICATE",
    "BRUSSELS_ATTESTATION",
];

fn obligated_history(events: &mut Vec<Ev>, rng: &mut ChaCha8Rng, extracted: NaiveDate) {
    let brussels = rng.gen_bool(0.15);
    let (region, earliest) = if brussels {
        ("BXL", date(2022, 6, 1))
    } else {
        ("VL", date(2014, 1, 1))
    };
    let span = (extracted - earliest).num_days().max(31) as u64;
    let start = earliest + days(rng, 0, span - 30);
    episode(events, rng, start, region);
    // Moved out and came back: a second period.
    if rng.gen_bool(0.04) {
        let end = start + days(rng, 60, 400);
        events.push(ev(end, "OBLIGATION_END", r#", "cause": "MOVED""#));
        let again = end + days(rng, 30, 900);
        episode(events, rng, again, region);
    }
}

fn episode(events: &mut Vec<Ev>, rng: &mut ChaCha8Rng, start: NaiveDate, region: &str) {
    events.push(ev(
        start,
        "OBLIGATION_START",
        &format!(r#", "region": "{region}""#),
    ));
    let registered = if rng.gen_bool(0.05) {
        Some(start - days(rng, 1, 60))
    } else if rng.gen_bool(0.85) {
        Some(start + days(rng, 0, 130))
    } else {
        None
    };
    let mut contract = None;
    if let Some(r) = registered {
        events.push(ev(r, "REGISTRATION", ""));
        if rng.gen_bool(0.85) {
            let c = r.max(start) + days(rng, 0, 60);
            contract = Some(c);
            events.push(ev(c, "CONTRACT_SIGNED", ""));
            if rng.gen_bool(0.8) {
                events.push(ev(
                    c + days(rng, 0, 90),
                    "EMPLOYMENT_SERVICE_REGISTRATION",
                    "",
                ));
            }
        }
    }
    if rng.gen_bool(0.05) {
        let obligation = if contract.is_some() && rng.gen_bool(0.5) {
            "EMPLOYMENT_SERVICE"
        } else {
            "REGISTRATION"
        };
        let until = start + days(rng, 100, 300);
        events.push(ev(
            start + days(rng, 10, 80),
            "DEADLINE_EXTENSION",
            &format!(r#", "obligation": "{obligation}", "until": "{until}""#),
        ));
    }
    if rng.gen_bool(0.12) {
        let obligation = if region == "BXL" && rng.gen_bool(0.6) {
            "BRUSSELS_ATTESTATION"
        } else {
            OBLIGATIONS[rng.gen_range(0..5)]
        };
        let at = start + days(rng, 90, 900);
        events.push(ev(
            at,
            "INFRINGEMENT",
            &format!(r#", "obligation": "{obligation}""#),
        ));
        if rng.gen_bool(0.5) {
            let amount = rng.gen_range(1..=50) * 10;
            events.push(ev(
                at + days(rng, 10, 60),
                "FINE",
                &format!(r#", "amount_eur": {amount}"#),
            ));
        }
        if rng.gen_bool(0.4) {
            events.push(ev(
                at + days(rng, 0, 200),
                "INFRINGEMENT_CLOSED",
                &format!(r#", "obligation": "{obligation}""#),
            ));
        }
    }
    let fulfil = rng.gen_range(0..100);
    let when = start + days(rng, 270, 1000);
    if fulfil < 5 {
        events.push(ev(when, "EFFORT_DECLARATION", ""));
    } else if fulfil < 55 {
        let kind = if region == "BXL" {
            "BRUSSELS_ATTESTATION"
        } else {
            "CERTIFICATE"
        };
        events.push(ev(when, kind, ""));
    }
    let ending = rng.gen_range(0..100);
    let at = start + days(rng, 30, 1200);
    if ending < 4 {
        let cause = ["MEDICAL", "AGE", "DIPLOMA", "OTHER"][rng.gen_range(0..4)];
        events.push(ev(at, "EXEMPTION", &format!(r#", "cause": "{cause}""#)));
    } else if ending < 8 {
        let cause = ["NATURALISED", "DECEASED", "OTHER", "MOVED"][rng.gen_range(0..4)];
        events.push(ev(
            at,
            "OBLIGATION_END",
            &format!(r#", "cause": "{cause}""#),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showcase_numbers_are_valid_and_sorted() {
        let values: Vec<u64> = SHOWCASE
            .iter()
            .map(|s| Insz::parse(s.insz).unwrap().value())
            .collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        assert!(Insz::parse(SHOWCASE_ABSENT).is_ok());
        assert_eq!(make_insz(1985, 7, 30, 33).to_string(), "85073003328");
        assert_eq!(make_insz(2017, 7, 30, 33).to_string(), "17073003384");
    }

    #[test]
    fn same_seed_same_bytes() {
        let options = GenerateOptions {
            persons: 300,
            seed: 42,
            extracted_at: default_extracted_at(),
            snapshot_id: None,
            with_examples: true,
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate(&options, &mut a).unwrap();
        generate(&options, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.iter().filter(|&&c| c == b'\n').count(), 301);
    }
}
