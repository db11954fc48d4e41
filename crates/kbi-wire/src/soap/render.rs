//! Writing replies and Faults straight into one preallocated buffer: no tree, no serializer.
//!
//! Every value that did not come from this program's own constants goes through
//! [`XmlOut::text`], which escapes markup and replaces characters XML cannot carry, so a reply is
//! well-formed whatever was echoed.

use std::io::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use super::parse::{is_xml_char, SOAP11_ENVELOPE_NS};
use super::time::brussels;
use kbi_core::domain::day::iso_date_bytes;
use kbi_core::domain::{Advice, ErrorCode, ReasonCode};

/// `Naam` of the operation in both directions.
pub(crate) const NAAM: &str = "GeefAdviesInburgeringsplicht";
/// `Versie` of the operation in both directions.
pub(crate) const VERSIE: &str = "01.00.0000";
/// `Oorsprong` of our Uitzonderingen, setting our codes apart from MAGDA's own.
pub(crate) const OORSPRONG: &str = "KBI-ADVICE";

/// Rough size of one rendered `Antwoord`, to allocate once.
const ANSWER_BYTES: usize = 720;
const HEAD_BYTES: usize = 1024;

/// `<name>value</name>`, the value escaped, the tags written as two literals (a copy each
/// instead of a push and a copy per part: what the reply's head and every answer are made of).
macro_rules! element {
    ($out:expr, $name:literal, $value:expr) => {
        $out.enclosed(concat!("<", $name, ">"), $value, concat!("</", $name, ">"))
    };
}

/// An XML byte buffer with escaping writers.
pub struct XmlOut {
    buf: Vec<u8>,
}

impl XmlOut {
    pub(crate) fn for_answers(answers: usize) -> Self {
        XmlOut {
            buf: Vec::with_capacity(HEAD_BYTES + answers.saturating_mul(ANSWER_BYTES)),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Markup from this program's constants, written as is.
    fn raw(&mut self, markup: &str) {
        self.buf.extend_from_slice(markup.as_bytes());
    }

    fn open(&mut self, name: &str) {
        self.buf.push(b'<');
        self.raw(name);
        self.buf.push(b'>');
    }

    fn close(&mut self, name: &str) {
        self.raw("</");
        self.raw(name);
        self.buf.push(b'>');
    }

    /// Escaped character data. Characters XML 1.0 cannot carry become U+FFFD (the parser refuses
    /// them in requests, so only server-side values could hold one).
    pub fn text(&mut self, value: &str) {
        let bytes = value.as_bytes();
        // Nearly every value is printable ASCII without markup: one pass over the bytes (without
        // early exits, so that the loop is vectorised), then one copy. Anything else is read
        // character by character below.
        let mut special = false;
        for &b in bytes {
            special |=
                !(0x20..0x80).contains(&b) | (b == b'&') | (b == b'<') | (b == b'>') | (b == b'"');
        }
        if !special {
            self.buf.extend_from_slice(bytes);
            return;
        }
        let mut from = 0;
        for (at, c) in value.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                // Kept as a reference so it survives end-of-line normalisation on the way back.
                '\r' => "&#13;",
                c if !is_xml_char(c) => "\u{FFFD}",
                _ => continue,
            };
            self.buf.extend_from_slice(&bytes[from..at]);
            self.raw(replacement);
            from = at + c.len_utf8();
        }
        self.buf.extend_from_slice(&bytes[from..]);
    }

    fn element(&mut self, name: &str, value: &str) {
        self.open(name);
        self.text(value);
        self.close(name);
    }

    /// `open`, `value` escaped, `close`: see [`element!`].
    fn enclosed(&mut self, open: &str, value: &str, close: &str) {
        self.raw(open);
        self.text(value);
        self.raw(close);
    }

    /// A date as YYYY-MM-DD (the element's tags are the caller's).
    fn date(&mut self, date: NaiveDate) {
        // Digit by digit for the years there are; chrono's fields through `write!` otherwise.
        if let Some(bytes) = iso_date_bytes(date) {
            self.buf.extend_from_slice(&bytes);
            return;
        }
        let _ = write!(
            self.buf,
            "{:04}-{:02}-{:02}",
            date.year(),
            date.month(),
            date.day()
        );
    }
}

/// The caller's context values that are echoed in `Ontvanger` (each only if it was valid).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ontvanger<'a> {
    pub identificatie: Option<&'a str>,
    pub referte: Option<&'a str>,
    pub hoedanigheid: Option<&'a str>,
}

/// What every reply's `Context` holds.
#[derive(Debug, Clone, Copy)]
pub struct ReplyHead<'a> {
    pub now: DateTime<Utc>,
    pub service_identificatie: &'a str,
    pub server_referte: &'a str,
    pub ontvanger: Ontvanger<'a>,
}

/// The XML declaration, `soap:Envelope` and `soap:Body` opened: the start of every reply and
/// Fault.
fn open_envelope(out: &mut XmlOut) {
    out.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"");
    out.raw(SOAP11_ENVELOPE_NS);
    out.raw("\"><soap:Body>");
}

/// The envelope up to and including the reply's `Context`.
/// The start of every reply, up to its `Tijdstip`.
const FIXED_HEAD: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>",
    "<geef:GeefAdviesInburgeringsplichtResponse ",
    "xmlns:geef=\"urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00\">",
    "<Repliek><Context><Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie>",
    "<Bericht><Type>ANTWOORD</Type>",
);

pub(crate) fn begin_reply(out: &mut XmlOut, head: &ReplyHead<'_>) {
    // Everything up to the reply's own `Tijdstip` is the same in every reply: one literal
    // (checked against its parts by `the_fixed_head_is_its_parts`).
    out.raw(FIXED_HEAD);
    tijdstip(out, head.now);
    out.raw("<Afzender>");
    element!(out, "Identificatie", head.service_identificatie);
    element!(out, "Referte", head.server_referte);
    out.raw("</Afzender><Ontvanger>");
    let ontvanger = head.ontvanger;
    if let Some(value) = ontvanger.identificatie {
        element!(out, "Identificatie", value);
    }
    if let Some(value) = ontvanger.referte {
        element!(out, "Referte", value);
    }
    if let Some(value) = ontvanger.hoedanigheid {
        element!(out, "Hoedanigheid", value);
    }
    out.raw("</Ontvanger></Bericht></Context>");
}

/// `Tijdstip` in Brussels time: `Datum` YYYY-MM-DD, `Tijd` HH:mm:ss.SSS.
fn tijdstip(out: &mut XmlOut, now: DateTime<Utc>) {
    let local = brussels(now);
    out.raw("<Tijdstip><Datum>");
    out.date(local.date());
    out.raw("</Datum><Tijd>");
    let millis = (local.nanosecond() / 1_000_000).min(999);
    // Digit by digit: `write!` through `fmt` cost more than the rest of the reply's head.
    let two = |n: u32| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    out.buf.extend_from_slice(&two(local.hour()));
    out.buf.push(b':');
    out.buf.extend_from_slice(&two(local.minute()));
    out.buf.push(b':');
    out.buf.extend_from_slice(&two(local.second().min(59)));
    out.buf.push(b'.');
    out.buf.extend_from_slice(&[
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
    ]);
    out.raw("</Tijd></Tijdstip>");
}

/// An `Uitzonderingen` block with one `FOUT`.
pub fn uitzonderingen(out: &mut XmlOut, code: ErrorCode, diagnose: &str) {
    out.open("Uitzonderingen");
    out.open("Uitzondering");
    out.element("Identificatie", code.as_str());
    out.element("Oorsprong", OORSPRONG);
    out.element("Type", "FOUT");
    out.element("Diagnose", diagnose);
    out.close("Uitzondering");
    out.close("Uitzonderingen");
}

pub(crate) fn begin_answers(out: &mut XmlOut) {
    out.open("Antwoorden");
}

pub(crate) fn end_answers(out: &mut XmlOut) {
    out.close("Antwoorden");
}

/// `Bron`, copied into every `Advies`.
/// `extracted_at` is the snapshot's `extracted_at_text`, the same text as the JSON door's
/// `source.extracted_at`.
pub(crate) fn bron(snapshot_id: &str, extracted_at: &str, regelset: &str) -> Vec<u8> {
    let mut out = XmlOut {
        buf: Vec::with_capacity(160),
    };
    out.open("Bron");
    out.element("SnapshotId", snapshot_id);
    out.element("Extractiedatum", extracted_at);
    out.element("Regelset", regelset);
    out.close("Bron");
    out.buf
}

fn begin_answer(out: &mut XmlOut, referte: Option<&str>) {
    out.raw("<Antwoord>");
    if let Some(referte) = referte {
        element!(out, "Referte", referte);
    }
}

/// An `Antwoord` carrying the advice.
pub(crate) fn answer_advice(out: &mut XmlOut, referte: Option<&str>, advice: &Advice, bron: &[u8]) {
    begin_answer(out, referte);
    out.raw("<Inhoud><Advies><INSZ>");
    out.buf.extend_from_slice(&advice.insz.digits());
    out.raw("</INSZ><Referentiedatum>");
    out.date(advice.reference_date);
    out.raw("</Referentiedatum>");
    out.raw(if advice.subject {
        "<ValtOnderInburgeringsplicht>true</ValtOnderInburgeringsplicht>"
    } else {
        "<ValtOnderInburgeringsplicht>false</ValtOnderInburgeringsplicht>"
    });
    out.raw(if advice.compliant {
        "<VoldoetAanInburgeringsplicht>true</VoldoetAanInburgeringsplicht>"
    } else {
        "<VoldoetAanInburgeringsplicht>false</VoldoetAanInburgeringsplicht>"
    });
    element!(out, "Resultaat", advice.result());
    // Only a NOK carries a reason (data minimisation), exactly as the JSON door.
    if let Some(reason) = advice.reason.filter(|_| !advice.is_ok()) {
        reden(out, reason);
    }
    out.buf.extend_from_slice(bron);
    out.raw("</Advies></Inhoud></Antwoord>");
}

/// An `Antwoord` carrying the question's Uitzondering.
/// `Reden` of `reason`: its code and Dutch text are fixed texts with nothing to escape
/// (`reason_texts_need_no_escaping`), so they are copied as they are instead of escaped
/// character by character in every answer.
fn reden(out: &mut XmlOut, reason: ReasonCode) {
    out.raw("<Reden><Code>");
    out.raw(reason.code());
    out.raw("</Code><Omschrijving>");
    out.raw(reason.nl());
    out.raw("</Omschrijving></Reden>");
}

pub(crate) fn answer_error(
    out: &mut XmlOut,
    referte: Option<&str>,
    code: ErrorCode,
    diagnose: &str,
) {
    begin_answer(out, referte);
    uitzonderingen(out, code, diagnose);
    out.close("Antwoord");
}

pub(crate) fn end_reply(out: &mut XmlOut) {
    out.raw("</Repliek></geef:GeefAdviesInburgeringsplichtResponse></soap:Body></soap:Envelope>");
}

/// A SOAP 1.1 Fault body.
pub fn fault(faultcode: &str, faultstring: &str) -> Vec<u8> {
    let mut out = XmlOut {
        buf: Vec::with_capacity(400),
    };
    open_envelope(&mut out);
    out.raw("<soap:Fault>");
    out.element("faultcode", faultcode);
    out.element("faultstring", faultstring);
    out.raw("</soap:Fault></soap:Body></soap:Envelope>");
    out.buf
}

#[cfg(test)]
mod tests {
    use super::super::parse::TARGET_NS;
    use super::*;

    #[test]
    fn the_fixed_head_is_its_parts() {
        let mut out = XmlOut::for_answers(0);
        open_envelope(&mut out);
        out.raw("<geef:GeefAdviesInburgeringsplichtResponse xmlns:geef=\"");
        out.raw(TARGET_NS);
        out.raw("\"><Repliek><Context>");
        out.element("Naam", NAAM);
        out.element("Versie", VERSIE);
        out.open("Bericht");
        out.element("Type", "ANTWOORD");
        assert_eq!(String::from_utf8(out.into_bytes()).unwrap(), FIXED_HEAD);
    }

    #[test]
    fn reason_texts_need_no_escaping() {
        for reason in ReasonCode::ALL {
            for fixed in [reason.code(), reason.nl()] {
                assert_eq!(text(fixed), fixed, "{reason:?}");
            }
        }
    }

    fn text(value: &str) -> String {
        let mut out = XmlOut::for_answers(0);
        out.text(value);
        String::from_utf8(out.into_bytes()).unwrap()
    }

    #[test]
    fn text_escapes_markup_and_replaces_what_xml_cannot_carry() {
        assert_eq!(text("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
        assert_eq!(text("x\u{1}y\u{FFFE}"), "x\u{FFFD}y\u{FFFD}");
        assert_eq!(text("r\r\n"), "r&#13;\n");
        assert_eq!(text("ééé"), "ééé");
    }

    #[test]
    fn fault_escapes_its_text() {
        let body = String::from_utf8(fault("soap:Client", "a < b")).unwrap();
        assert!(body.contains("<faultstring>a &lt; b</faultstring>"));
        assert!(body.contains("<faultcode>soap:Client</faultcode>"));
    }
}
