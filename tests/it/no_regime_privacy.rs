//! A person whose obligation period no regime covers (issue 14; decision in docs/service.md,
//! "30004 and the privacy rule"): error 30004 only on dates inside that period — dates on which
//! the person is subject, which any answer for a subject person shows — and on every other date
//! exactly the answer of an INSZ that is not in the snapshot. A 30004 that comes from the date
//! alone (before the earliest regime) is the same for everyone.

use crate::support::server::start;
use serde_json::Value;

/// Brussels period from 2021-01-01 (no regime: BXL-2022 covers starts from 2022-06-01) to
/// 2023-01-01.
const UNCOVERED: &str = "81020210201";
/// Not in the snapshot.
const UNKNOWN: &str = "85073003328";

fn snapshot() -> String {
    let header = r#"{"kbi_snapshot": {"format": 1, "snapshot_id": "no-regime", "extracted_at": "2026-11-01T02:00:00Z", "persons": 1}}"#;
    let person = format!(
        r#"{{"insz": "{UNCOVERED}", "events": [{{"date": "2021-01-01", "type": "OBLIGATION_START", "region": "BXL"}}, {{"date": "2023-01-01", "type": "OBLIGATION_END"}}]}}"#
    );
    format!("{header}\n{person}\n")
}

/// The REST answer for `insz` on `date` without the echoed INSZ: status and body.
fn answer(server: &crate::support::server::Server, insz: &str, date: &str) -> (u16, Value) {
    let response =
        crate::support::get(server.url(&format!("/v1/integration-obligation/{insz}?date={date}")))
            .unwrap();
    let status = response.status().as_u16();
    let mut body: Value = response.json().unwrap();
    if let Some(object) = body.as_object_mut() {
        object.remove("insz");
    }
    (status, body)
}

#[test]
fn only_dates_inside_the_uncovered_period_get_30004_others_look_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.jsonl");
    std::fs::write(&path, snapshot()).unwrap();
    let server = start(&path);

    // Inside the period: 30004 (the person is subject then; the service cannot judge them).
    for date in ["2021-01-01", "2022-01-01", "2022-12-31"] {
        let (status, body) = answer(&server, UNCOVERED, date);
        assert_eq!(status, 400, "{date}: {body}");
        assert_eq!(body["code"], "30004", "{date}: {body}");
        // An unknown INSZ on that date: not subject, OK.
        let (status, body) = answer(&server, UNKNOWN, date);
        assert_eq!(status, 200, "{date}: {body}");
        assert_eq!(body["subject"], false, "{date}: {body}");
    }
    // Before and after the period: exactly the unknown INSZ's answer.
    for date in ["2020-06-01", "2020-12-31", "2023-01-01", "2026-11-01"] {
        let person = answer(&server, UNCOVERED, date);
        let unknown = answer(&server, UNKNOWN, date);
        assert_eq!(person, unknown, "{date}: the answer tells a file exists");
        assert_eq!(person.0, 200);
        assert_eq!(person.1["subject"], false);
        assert_eq!(person.1["result"], "OK");
    }
    // Before the earliest regime (2014-01-01): 30004 from the date alone, for everyone alike.
    let person = answer(&server, UNCOVERED, "2013-12-31");
    let unknown = answer(&server, UNKNOWN, "2013-12-31");
    assert_eq!(person, unknown);
    assert_eq!(person.1["code"], "30004");
}
