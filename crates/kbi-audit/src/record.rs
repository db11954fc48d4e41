//! One audit record: one answered question, as one JSON line.
//!
//! The line format is fixed by the field order of [`AuditRecord`] (serde writes fields in
//! declaration order) and documented in `docs/security.md`. The chain hash of a record is the
//! SHA-256 of its exact line bytes **without** the terminating `\n`; the next record carries it,
//! as lowercase hex, in `prev`.

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use kbi_core::domain::magda::Sender;
use kbi_core::domain::{Advice, ErrorCode, Insz, ReasonCode, Verdict};

/// `prev` of the first record of a fresh log: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A SHA-256 chain hash.
pub type ChainHash = [u8; 32];

/// The chain hash of one line (`line` without its `\n`).
pub(crate) fn line_hash(line: &[u8]) -> ChainHash {
    Sha256::digest(line).into()
}

/// What the question got: an advice (`OK`/`NOK` with its reason) or a catalogue error.
///
/// JSON: `{"result":"OK"}`, `{"result":"NOK","reason":"GEEN_CONTRACT"}`,
/// `{"result":"ERROR","error":"30001"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Ok,
    Nok(ReasonCode),
    Error(ErrorCode),
}

impl AuditOutcome {
    /// The outcome of an advice or a refused question.
    pub fn of(outcome: &Result<Advice, ErrorCode>) -> Self {
        match outcome {
            Ok(advice) => match advice.reason {
                Some(reason) if !advice.is_ok() => AuditOutcome::Nok(reason),
                _ => AuditOutcome::Ok,
            },
            Err(code) => AuditOutcome::Error(*code),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeJson {
    result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The outcome as written: the same members as [`OutcomeJson`], borrowed from constants.
#[derive(Serialize)]
struct OutcomeOut {
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

impl Serialize for AuditOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = match self {
            AuditOutcome::Ok => OutcomeOut {
                result: "OK",
                reason: None,
                error: None,
            },
            AuditOutcome::Nok(reason) => OutcomeOut {
                result: "NOK",
                reason: Some(reason.code()),
                error: None,
            },
            AuditOutcome::Error(code) => OutcomeOut {
                result: "ERROR",
                reason: None,
                error: Some(code.as_str()),
            },
        };
        json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AuditOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let json = OutcomeJson::deserialize(deserializer)?;
        match (json.result.as_str(), json.reason, json.error) {
            ("OK", None, None) => Ok(AuditOutcome::Ok),
            ("NOK", Some(reason), None) => ReasonCode::parse(&reason)
                .map(AuditOutcome::Nok)
                .ok_or_else(|| D::Error::custom(format!("unknown reason code {reason:?}"))),
            ("ERROR", None, Some(error)) => ErrorCode::ALL
                .into_iter()
                .find(|code| code.as_str() == error)
                .map(AuditOutcome::Error)
                .ok_or_else(|| D::Error::custom(format!("unknown error code {error:?}"))),
            _ => Err(D::Error::custom(
                "outcome must be {result: OK}, {result: NOK, reason} or {result: ERROR, error}",
            )),
        }
    }
}

/// One answered question (`security-and-audit.md`, Audit log).
///
/// `seq` and `prev` belong to the log: [`super::AuditLog::append`] overwrites whatever the caller
/// put there (build records with [`AuditRecord::from_verdict`], which leaves them at 0 / empty).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// When the question was answered (RFC 3339, UTC, milliseconds). Its UTC date chooses the
    /// daily file (see [`super::AuditLog`] for the midnight rule).
    #[serde(with = "rfc3339_ms")]
    pub time: DateTime<Utc>,
    /// The reply's unique server reference.
    pub server_reference: String,
    /// The client id from the registry (certificate or, in development, the sender).
    pub client_id: String,
    /// The id of the protocol the client asked under (`protocols.md` §2); absent from records
    /// written before protocols existed (they still verify: the chain hashes the line as written).
    #[serde(default)]
    pub protocol: Option<String>,
    /// The SOAP `Afzender`; `null` for REST callers.
    pub sender: Option<Sender>,
    /// The question's `Referte` (SOAP); `null` for REST.
    pub question_referte: Option<String>,
    /// The INSZ asked about, 11 digits; `null` when the text sent was not a valid INSZ (30001),
    /// since an invalid text is nobody's number.
    #[serde(with = "insz_digits")]
    pub insz: Option<Insz>,
    /// The reference date used; `null` when it could not be read (30002, or the question was
    /// refused before).
    pub reference_date: Option<NaiveDate>,
    pub outcome: AuditOutcome,
    /// Whether the INSZ was in the snapshot (internal only: the answer never tells); `null` when
    /// the question never reached the snapshot.
    pub found: Option<bool>,
    /// The purpose of the protocol the question was answered (or refused, 30005) under; `null`
    /// when its form was never read (30001, 30002); absent from records written before protocols.
    #[serde(default)]
    pub purpose: Option<String>,
    /// The snapshot the answer rests on; `null` when none was loaded.
    pub snapshot_id: Option<String>,
    /// The rule set version the answer rests on.
    pub rule_set: Option<String>,
    /// Position in the log, 1 for the first record ever, +1 per record across files.
    pub seq: u64,
    /// Lowercase hex SHA-256 of the previous record's line ([`GENESIS_PREV`] for the first).
    pub prev: String,
}

/// Masked: a stray `{:?}` must not print the INSZ.
impl fmt::Debug for AuditRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditRecord")
            .field("time", &self.time)
            .field("server_reference", &self.server_reference)
            .field("client_id", &self.client_id)
            .field("insz", &self.insz)
            .field("outcome", &self.outcome)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// What the audit records of one request share: when, which reply, who asked (and as which
/// `Afzender`, for SOAP), and the snapshot the answers rest on.
#[derive(Debug, Clone, Copy)]
pub struct RequestCtx<'a> {
    /// When the questions were answered.
    pub time: DateTime<Utc>,
    /// The reply's unique server reference.
    pub server_reference: &'a str,
    /// The client id from the registry.
    pub client_id: &'a str,
    /// The protocol the client is bound to; `None` outside the service (tests, tools).
    pub protocol: Option<&'a str>,
    /// The SOAP `Afzender` as sent; `None` for REST.
    pub sender: Option<&'a Sender>,
    /// The snapshot the answers rest on; `None` when none was loaded.
    pub snapshot_id: Option<&'a str>,
    /// The rule set version the answers rest on.
    pub rule_set: Option<&'a str>,
}

impl AuditRecord {
    /// The record of one judged question of the request `ctx`; `seq`/`prev` are left for the log
    /// to fill in.
    pub fn from_verdict(ctx: &RequestCtx<'_>, verdict: &Verdict) -> Self {
        AuditRecord {
            time: ctx.time,
            server_reference: ctx.server_reference.to_owned(),
            client_id: ctx.client_id.to_owned(),
            protocol: ctx.protocol.map(str::to_owned),
            sender: ctx.sender.cloned(),
            question_referte: verdict.referte.clone(),
            insz: verdict.insz,
            reference_date: verdict.reference_date,
            outcome: AuditOutcome::of(&verdict.outcome),
            found: verdict.found,
            purpose: verdict.purpose.as_deref().map(str::to_owned),
            snapshot_id: ctx.snapshot_id.map(str::to_owned),
            rule_set: ctx.rule_set.map(str::to_owned),
            seq: 0,
            prev: String::new(),
        }
    }

    /// The UTC day of `time`.
    pub fn date(&self) -> NaiveDate {
        self.time.date_naive()
    }
}

/// The audit lines of one request, short of their place in the chain: for each verdict, the
/// JSON of `AuditRecord::from_verdict(ctx, verdict)` up to (without) its `,"seq":…,"prev":"…"}`
/// — the same bytes (a unit test compares) — with what every record of the request shares
/// serialised once instead of once per record: the time, server reference, client and sender
/// before the question's own members, the snapshot and rule set after them. In a batch of
/// 1,000 that is one time formatted instead of 1,000, and no copies of the shared strings.
pub(crate) struct RequestLines {
    /// `{"time":…,"server_reference":…,"client_id":…,"sender":…,`
    head: Vec<u8>,
    /// `,"snapshot_id":…,"rule_set":…`
    tail: Vec<u8>,
    /// The UTC day of the request's time, which chooses the records' segment.
    pub(crate) date: NaiveDate,
}

/// The members of [`AuditRecord`] a request's records share, before the question's own.
#[derive(Serialize)]
struct RequestHeadJson<'a> {
    #[serde(with = "rfc3339_ms")]
    time: DateTime<Utc>,
    server_reference: &'a str,
    client_id: &'a str,
    protocol: Option<&'a str>,
    sender: Option<&'a Sender>,
}

/// The members of [`AuditRecord`] that belong to one question, in the record's order.
#[derive(Serialize)]
struct QuestionJson<'a> {
    question_referte: Option<&'a str>,
    #[serde(with = "insz_digits")]
    insz: Option<Insz>,
    #[serde(serialize_with = "iso_date")]
    reference_date: Option<NaiveDate>,
    outcome: AuditOutcome,
    found: Option<bool>,
    purpose: Option<&'a str>,
}

/// The members of [`AuditRecord`] a request's records share, after the question's own.
#[derive(Serialize)]
struct RequestTailJson<'a> {
    snapshot_id: Option<&'a str>,
    rule_set: Option<&'a str>,
}

/// `YYYY-MM-DD` as chrono's `Serialize` writes it (its `Display`), ten bytes written directly
/// for the years 0–9999 and chrono's own text for any other.
fn iso_date<S: Serializer>(date: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => match kbi_core::domain::day::iso_date_bytes(*date) {
            Some(bytes) => s.serialize_str(std::str::from_utf8(&bytes).unwrap_or_default()),
            None => s.collect_str(date),
        },
        None => s.serialize_none(),
    }
}

impl RequestLines {
    pub(crate) fn new(ctx: &RequestCtx<'_>) -> serde_json::Result<Self> {
        // Sized for a SOAP sender's four values, so that neither buffer grows while written.
        let mut head = Vec::with_capacity(384);
        serde_json::to_writer(
            &mut head,
            &RequestHeadJson {
                time: ctx.time,
                server_reference: ctx.server_reference,
                client_id: ctx.client_id,
                protocol: ctx.protocol,
                sender: ctx.sender,
            },
        )?;
        // `{…}` → `{…,`: the question's members follow.
        head.pop();
        head.push(b',');
        let mut tail = Vec::with_capacity(128);
        serde_json::to_writer(
            &mut tail,
            &RequestTailJson {
                snapshot_id: ctx.snapshot_id,
                rule_set: ctx.rule_set,
            },
        )?;
        // `{…}` → `,…`: the members follow the question's, and the log adds `seq` and `prev`.
        tail.pop();
        tail[0] = b',';
        Ok(RequestLines {
            head,
            tail,
            date: ctx.time.date_naive(),
        })
    }

    /// The line of `verdict`'s record, up to its chain members.
    pub(crate) fn line(&self, verdict: &Verdict) -> serde_json::Result<Vec<u8>> {
        let mut line = Vec::with_capacity(self.head.len() + 160 + self.tail.len());
        line.extend_from_slice(&self.head);
        let start = line.len();
        serde_json::to_writer(
            &mut line,
            &QuestionJson {
                question_referte: verdict.referte.as_deref(),
                insz: verdict.insz,
                reference_date: verdict.reference_date,
                outcome: AuditOutcome::of(&verdict.outcome),
                found: verdict.found,
                purpose: verdict.purpose.as_deref(),
            },
        )?;
        // Drop the question object's own braces: its members continue the record.
        line.remove(start);
        line.pop();
        line.extend_from_slice(&self.tail);
        Ok(line)
    }
}

/// The name of the first segment of UTC day `date`: `audit-YYYY-MM-DD.jsonl`.
pub fn file_name(date: NaiveDate) -> String {
    segment_name(date, 0)
}

/// The name of segment `part` of UTC day `date`: `audit-YYYY-MM-DD.jsonl` for the first
/// (`part` 0, the name daily files always had), `audit-YYYY-MM-DD.N.jsonl` for the next ones
/// (a day's log is cut into segments of at most `audit.segment_bytes`).
pub(crate) fn segment_name(date: NaiveDate, part: u32) -> String {
    if part == 0 {
        format!("audit-{}.jsonl", date.format("%Y-%m-%d"))
    } else {
        format!("audit-{}.{part}.jsonl", date.format("%Y-%m-%d"))
    }
}

/// The day and part of a segment name (see [`segment_name`]), if `name` is one.
pub(crate) fn segment_of(name: &str) -> Option<(NaiveDate, u32)> {
    let rest = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (day, part) = match rest.split_once('.') {
        None => (rest, 0),
        Some((day, part)) => {
            // One spelling per part: digits only, no leading zero, not 0.
            if part.is_empty() || part.starts_with('0') || !part.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (day, part.parse().ok()?)
        }
    };
    if day.len() != 10 {
        return None;
    }
    let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some((date, part))
}

mod rfc3339_ms {
    use super::*;

    pub(super) fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

mod insz_digits {
    use super::*;

    pub(super) fn serialize<S: Serializer>(insz: &Option<Insz>, s: S) -> Result<S::Ok, S::Error> {
        match insz {
            // Eleven ASCII digits, always valid UTF-8.
            Some(insz) => s.serialize_str(std::str::from_utf8(&insz.digits()).unwrap_or_default()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Insz>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        match text {
            None => Ok(None),
            // The error names the rule, never the text (which may be somebody's number).
            Some(text) if text.len() == 11 => Insz::parse(&text)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("insz: {e}"))),
            Some(_) => Err(serde::de::Error::custom("insz must be 11 digits")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> AuditRecord {
        AuditRecord {
            time: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            server_reference: "srv-1".into(),
            client_id: "demo".into(),
            protocol: Some("demo".into()),
            sender: Some(Sender {
                identificatie: "demo.kbi-advice".into(),
                referte: "r-1".into(),
                hoedanigheid: "9999".into(),
                gebruiker: None,
            }),
            question_referte: Some("q-1".into()),
            insz: Some(Insz::parse("85073003328").unwrap()),
            reference_date: NaiveDate::from_ymd_opt(2026, 1, 1),
            outcome: AuditOutcome::Nok(ReasonCode::GeenContract),
            found: Some(true),
            purpose: Some("care-budget".into()),
            snapshot_id: Some("snap-1".into()),
            rule_set: Some("2026.1".into()),
            seq: 0,
            prev: String::new(),
        }
    }

    #[test]
    fn line_format_is_stable_and_round_trips() {
        let line = serde_json::to_string(&sample()).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2026-03-01T12:00:00.000Z","server_reference":"srv-1","client_id":"demo","protocol":"demo","sender":{"identificatie":"demo.kbi-advice","referte":"r-1","hoedanigheid":"9999","gebruiker":null},"question_referte":"q-1","insz":"85073003328","reference_date":"2026-01-01","outcome":{"result":"NOK","reason":"GEEN_CONTRACT"},"found":true,"purpose":"care-budget","snapshot_id":"snap-1","rule_set":"2026.1","seq":0,"prev":""}"#
        );
        let back: AuditRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, sample());
    }

    /// A line written before protocols existed (no `protocol`, no `purpose`) is still a record.
    #[test]
    fn a_line_from_before_protocols_still_reads() {
        let old = r#"{"time":"2026-03-01T12:00:00.000Z","server_reference":"srv-1","client_id":"demo","sender":{"identificatie":"demo.kbi-advice","referte":"r-1","hoedanigheid":"9999","gebruiker":null},"question_referte":"q-1","insz":"85073003328","reference_date":"2026-01-01","outcome":{"result":"NOK","reason":"GEEN_CONTRACT"},"found":true,"snapshot_id":"snap-1","rule_set":"2026.1","seq":0,"prev":""}"#;
        let back: AuditRecord = serde_json::from_str(old).unwrap();
        assert_eq!((back.protocol, back.purpose), (None, None));
    }

    #[test]
    fn outcomes_serialise_as_documented() {
        let ok = serde_json::to_string(&AuditOutcome::Ok).unwrap();
        assert_eq!(ok, r#"{"result":"OK"}"#);
        let err = serde_json::to_string(&AuditOutcome::Error(ErrorCode::InvalidInsz)).unwrap();
        assert_eq!(err, r#"{"result":"ERROR","error":"30001"}"#);
        for bad in [
            r#"{"result":"OK","reason":"GEEN_CONTRACT"}"#,
            r#"{"result":"NOK"}"#,
            r#"{"result":"ERROR","error":"99999"}"#,
        ] {
            assert!(serde_json::from_str::<AuditOutcome>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_masks_the_insz() {
        assert!(!format!("{:?}", sample()).contains("85073003328"));
    }

    #[test]
    fn bad_insz_error_does_not_echo_it() {
        let line = serde_json::to_string(&sample())
            .unwrap()
            .replace("85073003328", "85073003329");
        let error = serde_json::from_str::<AuditRecord>(&line)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("85073003329"), "{error}");
    }

    #[test]
    fn verdicts_map_to_audit_records() {
        let insz = Insz::parse("85073003328").unwrap();
        let sender = Sender {
            identificatie: "demo.kbi-advice".into(),
            referte: "r-1".into(),
            hoedanigheid: "9999".into(),
            gebruiker: Some("agent".into()),
        };
        let advice = Advice {
            insz,
            reference_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            subject: true,
            compliant: false,
            reason: Some(ReasonCode::GeenContract),
            found: true,
        };
        let time = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let soap = RequestCtx {
            time,
            server_reference: "srv-1",
            client_id: "demo",
            protocol: Some("demo"),
            sender: Some(&sender),
            snapshot_id: Some("snap-1"),
            rule_set: Some("2026.1"),
        };
        let answered = Verdict::advised(Some("q-1".into()), advice);
        let record = AuditRecord::from_verdict(&soap, &answered);
        assert_eq!(record.outcome, AuditOutcome::Nok(ReasonCode::GeenContract));
        assert_eq!(record.reference_date, Some(advice.reference_date));
        assert_eq!(record.found, Some(true));
        assert_eq!(
            record.sender.as_ref().unwrap().gebruiker.as_deref(),
            Some("agent")
        );
        assert_eq!(record.question_referte.as_deref(), Some("q-1"));
        assert_eq!(record.snapshot_id.as_deref(), Some("snap-1"));

        let rest = RequestCtx {
            sender: None,
            snapshot_id: None,
            rule_set: None,
            ..soap
        };
        let refused = Verdict::refused(None, None, ErrorCode::InvalidInsz);
        let record = AuditRecord::from_verdict(&rest, &refused);
        assert_eq!(record.outcome, AuditOutcome::Error(ErrorCode::InvalidInsz));
        assert_eq!(
            (
                record.insz,
                record.question_referte,
                record.found,
                record.sender
            ),
            (None, None, None, None)
        );
        let compliant = Advice {
            compliant: true,
            reason: None,
            ..advice
        };
        assert_eq!(AuditOutcome::of(&Ok(compliant)), AuditOutcome::Ok);
    }

    #[test]
    fn file_names() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(file_name(day), "audit-2026-03-01.jsonl");
        assert_eq!(segment_of("audit-2026-03-01.jsonl"), Some((day, 0)));
        assert_eq!(segment_of("audit-2026-3-1.jsonl"), None);
        assert_eq!(segment_of("audit-2026-03-01.jsonl.torn-1"), None);
        assert_eq!(segment_name(day, 12), "audit-2026-03-01.12.jsonl");
        assert_eq!(segment_of("audit-2026-03-01.12.jsonl"), Some((day, 12)));
        assert_eq!(segment_of("audit-2026-03-01.jsonl"), Some((day, 0)));
        for bad in [
            "audit-2026-03-01.0.jsonl",
            "audit-2026-03-01.01.jsonl",
            "audit-2026-03-01..jsonl",
            "audit-2026-03-01.x.jsonl",
        ] {
            assert_eq!(segment_of(bad), None, "{bad}");
        }
    }
}
