//! The REST door's wire format: the single question's path and query, the batch body
//! (`{"questions": [...]}`, read loosely so that a member of the wrong type fails only its own
//! question), and the JSON answers. The HTTP side is `service::rest`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::json::{Problem, ReasonJson, SourceJson};
use kbi_core::domain::day::iso_date_bytes;
use kbi_core::domain::{
    Admission, Advice, CompiledSnapshot, ErrorCode, Insz, Question, ReasonCode, Unbound, Verdict,
};

/// One question as sent: its members read loosely (see [`Loose`]).
#[derive(Debug, Default, Deserialize)]
pub struct RestQuestion<'a> {
    #[serde(borrow, default)]
    insz: Loose<'a>,
    #[serde(borrow, default)]
    date: Loose<'a>,
    #[serde(borrow, default)]
    premium_year: Loose<'a>,
}

/// `?date=` or `?premium_year=` of the single-question door.
#[derive(Debug, Default, Deserialize)]
struct SingleQuery {
    date: Option<String>,
    premium_year: Option<String>,
}

/// The question of `GET /v1/integration-obligation/{insz}?{query}`. A repeated or undecodable
/// parameter is a malformed reference (30002), checked after the INSZ as in every door.
pub fn single_question<'a>(insz: &'a str, query: &str) -> RestQuestion<'a> {
    let text = |value: Option<String>| value.map_or(Loose::Absent, |v| Loose::Text(Cow::Owned(v)));
    match serde_urlencoded::from_str::<SingleQuery>(query) {
        Ok(query) => RestQuestion {
            insz: Loose::Text(Cow::Borrowed(insz)),
            date: text(query.date),
            premium_year: text(query.premium_year),
        },
        Err(_) => RestQuestion {
            insz: Loose::Text(Cow::Borrowed(insz)),
            date: Loose::Other,
            premium_year: Loose::Absent,
        },
    }
}

/// The batch body: `{"questions": [...]}`. Other members are ignored.
#[derive(Deserialize)]
struct BatchRequest<'a> {
    #[serde(borrow)]
    questions: Option<Vec<ObjectOnly<RestQuestion<'a>>>>,
}

/// A value that must be a JSON object: serde's derived structs would also take an array
/// (members by position), which the documented shape does not allow.
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = ObjectOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ObjectOnly)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// A JSON value as a question member: text, a whole number, absent/null, or anything else.
#[derive(Debug, Default)]
enum Loose<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Integer(i64),
    Other,
}

impl Loose<'_> {
    /// The member as text for the core's parser; `Err` when its type can never be valid.
    #[inline]
    fn text(&self, integer_allowed: bool) -> Result<Option<Cow<'_, str>>, ()> {
        match self {
            Loose::Absent => Ok(None),
            Loose::Text(text) => Ok(Some(Cow::Borrowed(text))),
            Loose::Integer(n) if integer_allowed => Ok(Some(Cow::Owned(n.to_string()))),
            Loose::Integer(_) | Loose::Other => Err(()),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor;
        impl<'de> Visitor<'de> for LooseVisitor {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Loose::Integer(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Loose::Other, Loose::Integer))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Absent)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Absent)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        deserializer.deserialize_any(LooseVisitor)
    }
}

/// Decodes a batch body into its questions, checking the count against `max`.
pub fn parse_batch(body: &[u8], max: usize) -> Result<Vec<RestQuestion<'_>>, Problem> {
    let parsed: BatchRequest = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        // The parser's own message may quote the body (an INSZ): only its position is given.
        Err(error) => {
            let what = if error.is_syntax() || error.is_eof() {
                "the body is not valid JSON"
            } else {
                "the body is not a JSON object of the form {\"questions\": [...]}"
            };
            return Err(Problem::new(
                ErrorCode::InvalidContext,
                format!("{what} (line {}, column {})", error.line(), error.column()),
            ));
        }
    };
    let Some(questions) = parsed.questions else {
        return Err(Problem::new(
            ErrorCode::InvalidContext,
            "the body has no `questions` array",
        ));
    };
    if questions.is_empty() {
        return Err(Problem::new(
            ErrorCode::InvalidContext,
            format!("`questions` must hold 1 to {max} questions"),
        ));
    }
    if questions.len() > max {
        return Err(Problem::new(
            ErrorCode::TooManyQuestions,
            format!("{} questions in one batch; at most {max}", questions.len()),
        ));
    }
    Ok(questions.into_iter().map(|ObjectOnly(q)| q).collect())
}

/// One question under the caller's protocol, in the order of every door (`protocols.md` §2):
/// 30001, 30002 ([`Question::parse`], as SOAP and `check` parse theirs), the protocol (30005,
/// `admission`; [`Unbound`] without one), then the snapshot's own (30003, 30004).
pub fn judge(
    snapshot: &CompiledSnapshot,
    question: &RestQuestion<'_>,
    admission: &impl Admission,
) -> Verdict {
    // A member of a type that can never be valid stands in as a text no parser accepts, so the
    // usual code follows (SOAP does the same for a value cut at its length limit).
    const UNPARSABLE: &str = "\u{0}";
    fn text(member: Result<Option<Cow<'_, str>>, ()>) -> Option<Cow<'_, str>> {
        member.unwrap_or(Some(Cow::Borrowed(UNPARSABLE)))
    }
    let insz = text(question.insz.text(false)).unwrap_or_default();
    let date = text(question.date.text(false));
    let premium_year = text(question.premium_year.text(true));
    let parsed = Question::parse(&insz, date.as_deref(), premium_year.as_deref());
    let question = match parsed {
        Ok(question) => question,
        Err(code) => return Verdict::refused(None, Insz::parse(&insz).ok(), code),
    };
    let purpose = match admission.admit(question.reference) {
        Ok(purpose) => purpose,
        Err(refusal) => {
            return Verdict::outside_protocol(None, question.insz, question.reference, refusal)
        }
    };
    match snapshot.advise(&question) {
        Ok(advice) => Verdict::advised(None, advice).under(purpose),
        // The REST audit record keeps the reference date of a question the snapshot refused.
        Err(refusal) => Verdict {
            reference_date: Some(question.reference.date()),
            found: refusal.found,
            purpose,
            ..Verdict::refused(None, Some(question.insz), refusal.code)
        },
    }
}

/// The REST batch door short of HTTP, the audit log and metrics: decodes `body` and judges its
/// questions against `snapshot`. For the fuzzer (`fuzz/fuzz_targets/rest_batch.rs`).
pub fn judge_batch_body(
    snapshot: &CompiledSnapshot,
    body: &[u8],
    max_questions: usize,
) -> Result<Vec<Result<Advice, ErrorCode>>, Problem> {
    let questions = parse_batch(body, max_questions)?;
    Ok(questions
        .iter()
        .map(|q| judge(snapshot, q, &Unbound).outcome)
        .collect())
}

/// The answer to a single question: the JSON answer, or the question's problem document.
pub fn render_single(verdict: &Verdict, snapshot: &CompiledSnapshot) -> Result<Vec<u8>, Problem> {
    match &verdict.outcome {
        Ok(advice) => {
            let mut body = Vec::with_capacity(ANSWER_BYTES);
            AnswerWriter::new(&SourceJson::of(snapshot)).write(&mut body, advice);
            Ok(body)
        }
        Err(code) => Err(problem_of(verdict, *code)),
    }
}

/// The problem document of a refused question: the catalogue's, or for 30005 the protocol's
/// own reason (protocol, purpose, limit; never the person).
pub fn problem_of(verdict: &Verdict, code: ErrorCode) -> Problem {
    match &verdict.protocol_refusal {
        Some(text) => Problem::new(code, text.en.as_str()),
        None => Problem::from_code(code),
    }
}

/// The answers to a batch: `{"answers": [...]}`, one item per question, in order: the answer,
/// or `{"error": problem}` for a question refused on its own.
pub fn render_batch(verdicts: &[Verdict], snapshot: &CompiledSnapshot) -> Vec<u8> {
    let capacity = verdicts
        .len()
        .saturating_mul(ANSWER_BYTES)
        .saturating_add(16);
    let mut body = Vec::with_capacity(capacity);
    let writer = AnswerWriter::new(&SourceJson::of(snapshot));
    body.extend_from_slice(br#"{"answers":["#);
    for (n, verdict) in verdicts.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        match &verdict.outcome {
            Ok(advice) => writer.write(&mut body, advice),
            Err(code) => {
                body.extend_from_slice(br#"{"error":"#);
                write_json(&mut body, &problem_of(verdict, *code));
                body.push(b'}');
            }
        }
    }
    body.extend_from_slice(b"]}");
    body
}

/// Writes [`AnswerJson`] straight into the response buffer, byte for byte what `serde_json`
/// writes for it (a unit test compares them; `tests/it/golden_doors.rs` pins the bytes), without
/// building it: no `String` for the INSZ or the date, and the parts every answer of a request
/// shares — the `source` object and the reasons' texts — escaped once per request instead of
/// once per answer (in a batch of 1,000 they were a quarter of the work).
struct AnswerWriter {
    /// `"source":{…}}`: the end of every answer of this snapshot.
    source_tail: Vec<u8>,
    /// `"reason":{…},` per [`ReasonCode::ALL`] entry, escaped on first use.
    reasons: [std::cell::OnceCell<Vec<u8>>; ReasonCode::ALL.len()],
}

impl AnswerWriter {
    fn new(source: &SourceJson<'_>) -> Self {
        // One allocation: the source's three texts are short (ids and a timestamp).
        let mut source_tail = Vec::with_capacity(128);
        source_tail.extend_from_slice(br#""source":"#);
        write_json(&mut source_tail, source);
        source_tail.push(b'}');
        AnswerWriter {
            source_tail,
            reasons: Default::default(),
        }
    }

    fn write(&self, out: &mut Vec<u8>, advice: &Advice) {
        out.extend_from_slice(br#"{"insz":""#);
        out.extend_from_slice(&advice.insz.digits());
        out.extend_from_slice(br#"","reference_date":"#);
        match iso_date_bytes(advice.reference_date) {
            Some(date) => {
                out.push(b'"');
                out.extend_from_slice(&date);
                out.push(b'"');
            }
            None => write_json(out, &advice.reference_date.to_string()),
        }
        out.extend_from_slice(br#","subject":"#);
        out.extend_from_slice(json_bool(advice.subject));
        out.extend_from_slice(br#","compliant":"#);
        out.extend_from_slice(json_bool(advice.compliant));
        out.extend_from_slice(br#","result":""#);
        out.extend_from_slice(advice.result().as_bytes());
        out.extend_from_slice(b"\",");
        // Only a NOK carries a reason (data minimisation), as in `AnswerJson::with_source`.
        if let Some(reason) = advice.reason.filter(|_| !advice.is_ok()) {
            self.write_reason(out, reason);
        }
        out.extend_from_slice(&self.source_tail);
    }

    /// `"reason":{…},`, escaped once per request for each reason that occurs.
    fn write_reason(&self, out: &mut Vec<u8>, reason: ReasonCode) {
        match ReasonCode::ALL.iter().position(|r| *r == reason) {
            Some(slot) => {
                out.extend_from_slice(self.reasons[slot].get_or_init(|| reason_member(reason)))
            }
            // A code missing from `ALL` still gets its own text, only not cached.
            None => out.extend_from_slice(&reason_member(reason)),
        }
    }
}

/// `"reason":{"code":…,"nl":…,"en":…},` of `reason`.
fn reason_member(reason: ReasonCode) -> Vec<u8> {
    let mut bytes = br#""reason":"#.to_vec();
    write_json(
        &mut bytes,
        &ReasonJson {
            code: reason.code(),
            nl: reason.nl(),
            en: reason.en(),
        },
    );
    bytes.push(b',');
    bytes
}

fn json_bool(value: bool) -> &'static [u8] {
    if value {
        b"true"
    } else {
        b"false"
    }
}

/// `value` as JSON at the end of `out`. Serializing these shapes into a `Vec` cannot fail (no
/// maps with non-string keys, no I/O); were it ever to, the answer would be cut, and the
/// response not valid JSON, rather than wrong.
fn write_json(out: &mut Vec<u8>, value: &impl Serialize) {
    let _ = serde_json::to_writer(out, value);
}

/// Rough size of one answer's JSON (a NOK with its reason is the longest): the buffer is
/// allocated once at about its final size instead of growing by doubling.
const ANSWER_BYTES: usize = 320;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::AnswerJson;
    use chrono::NaiveDate;

    /// The direct writer writes exactly what `serde_json` writes for `AnswerJson`, for every
    /// combination of subject, compliance and reason, and for dates the digit-by-digit writer
    /// does not handle (before year 0, after 9999), with a source that needs escaping.
    #[test]
    fn the_answer_writer_writes_the_bytes_of_answer_json() {
        let source = || SourceJson {
            snapshot_id: "snap-\"quoted\"\\é\u{1}",
            extracted_at: "2026-01-31T23:00:00Z".into(),
            rule_set: "2026.1",
        };
        let writer = AnswerWriter::new(&source());
        let insz = Insz::parse("85073003328").unwrap();
        let dates = [
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(1, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(-3, 2, 1).unwrap(),
            NaiveDate::from_ymd_opt(12345, 6, 7).unwrap(),
        ];
        let reasons = std::iter::once(None).chain(ReasonCode::ALL.into_iter().map(Some));
        let mut checked = 0;
        for reason in reasons {
            for (subject, compliant) in [(true, true), (true, false), (false, true), (false, false)]
            {
                for date in dates {
                    let advice = Advice {
                        insz,
                        reference_date: date,
                        subject,
                        compliant,
                        reason,
                        found: true,
                    };
                    let mut direct = Vec::new();
                    writer.write(&mut direct, &advice);
                    let expected =
                        serde_json::to_vec(&AnswerJson::with_source(&advice, source())).unwrap();
                    assert_eq!(
                        String::from_utf8(direct).unwrap(),
                        String::from_utf8(expected).unwrap()
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 7 * 4 * 4);
    }
}
