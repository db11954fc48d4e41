//! The fast reader: the one request shape MAGDA callers send, read with a byte scanner.
//!
//! Callers (MAGDA, zeep, node-soap, the load tests) send one canonical shape: an optional XML
//! declaration, the SOAP 1.1 `Envelope` declaring its own prefix and perhaps the operation's, an
//! optional empty `Header`, the `Body`, the qualified `GeefAdviesInburgeringsplicht` wrapper, and
//! inside it the unqualified `Verzoek/Context` and `Vragen/Vraag` elements in schema order,
//! without attributes, comments, CDATA sections or entity references. [`read`] recognises exactly
//! that shape, byte by byte (memchr to the end of each value, no allocation but the values'
//! own), and gives the [`RawRequest`] the hardened parser ([`super::parse::parse_until`]) would
//! give for the same body. On anything else — any byte it does not expect — it returns `None`
//! and the body goes to the hardened parser unchanged, so every hostile-input rule (encoding,
//! DTDs, entities, namespace, attribute, depth and element limits, Faults) is still the hardened
//! parser's: the fast reader only ever says yes to bodies the hardened parser accepts, with the
//! same result. That equality is what the differential fuzz target (`fuzz/fuzz_targets/
//! soap_fast.rs`) and the proptest (`tests/it/soap_fast.rs`) check.
//!
//! Deliberately deferred (hardened parser): a byte order mark, other XML declarations, a
//! default namespace declaration, an element in a namespace other than SOAP 1.1 and the target
//! namespace (other namespaces may only be declared, unused, as node-soap declares `xsi`), any
//! attribute on an inner element, a non-empty `Header`, self-closing or reordered or missing
//! elements, `&`, `>`, `\r` or a control character in a value, a value longer than
//! [`MAX_VALUE_BYTES`] (the hardened parser cuts and marks it), more questions than
//! [`XmlLimits::max_questions`], and limits set below what the shape needs.

use std::borrow::Cow;
use std::time::Instant;

use super::parse::{
    is_xml_char, is_xml_space, RawContext, RawQuestion, RawRequest, Value, MAX_VALUE_BYTES,
    OPERATION, SOAP11_ENVELOPE_NS, TARGET_NS,
};
use super::XmlLimits;

/// Nesting of the canonical shape: Envelope, Body, operation, Verzoek, Vragen, Vraag, Inhoud,
/// Criteria, INSZ.
const DEPTH: usize = 9;

/// The most namespace declarations taken on one element (callers declare two or three).
const DECLARATIONS_TAKEN: usize = 4;

/// The reserved namespace URIs (Namespaces in XML 1.0, section 3), which no prefix read here may
/// be bound to.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// The XML declarations accepted as they are (what the known clients send).
const DECLARATIONS: [&[u8]; 5] = [
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    b"<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    b"<?xml version='1.0' encoding='utf-8'?>",
    b"<?xml version='1.0' encoding='UTF-8'?>",
    b"<?xml version=\"1.0\"?>",
];

/// The request in `body` if it has the canonical shape, exactly as the hardened parser would
/// read it; `None` for anything else (then only the hardened parser can say what it is).
/// The values borrow from `body`: the only allocation is the list of questions. Never panics.
pub fn read<'b>(body: &'b [u8], limits: &XmlLimits) -> Option<RawRequest<'b>> {
    // The hardened parser checks this first too; the scanner slices text at ASCII delimiters,
    // which are always character boundaries in valid UTF-8.
    let body = std::str::from_utf8(body).ok()?;
    read_text_until(body, limits, None)
}

/// How many `Vraag` pass between two looks at the clock.
const QUESTIONS_PER_CLOCK_CHECK: usize = 16;

/// [`read`] of a body already checked to be UTF-8 (by the server's parse, which checks it once
/// for both readers), deferring once `deadline` has passed (looked at every few questions), so
/// that the hardened parser refuses the body with its time budget Fault as it would without
/// this reader.
pub(crate) fn read_text_until<'b>(
    body: &'b str,
    limits: &XmlLimits,
    deadline: Option<Instant>,
) -> Option<RawRequest<'b>> {
    if limits.max_depth < DEPTH {
        return None;
    }
    let mut scanner = Scanner {
        body,
        at: 0,
        elements: 0,
        deadline,
    };
    let request = scanner.request(limits)?;
    if scanner.elements > limits.max_elements {
        return None;
    }
    Some(request)
}

struct Scanner<'b> {
    body: &'b str,
    at: usize,
    elements: usize,
    deadline: Option<Instant>,
}

impl<'b> Scanner<'b> {
    fn rest(&self) -> &'b [u8] {
        &self.body.as_bytes()[self.at..]
    }

    /// Consumes `literal` if the body continues with it.
    fn eat(&mut self, literal: &[u8]) -> bool {
        if self.rest().starts_with(literal) {
            self.at += literal.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, literal: &[u8]) -> Option<()> {
        self.eat(literal).then_some(())
    }

    /// XML whitespace between elements (the hardened parser accepts it anywhere but in values,
    /// and ignores it).
    fn space(&mut self) {
        let skipped = self
            .rest()
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .count();
        self.at += skipped;
    }

    /// Whether the body continues with `<name>` (`close`: `</name>`), consumed if so. One
    /// comparison per part, no whitespace: the tags of a value and of compact bodies.
    fn tag(&mut self, close: bool, name: &[u8]) -> bool {
        let rest = self.rest();
        let open = if close { &b"</"[..] } else { &b"<"[..] };
        let end = open.len() + name.len();
        let found = rest.len() > end
            && rest.starts_with(open)
            && &rest[open.len()..end] == name
            && rest[end] == b'>';
        if found {
            self.at += end + 1;
        }
        found
    }

    /// `<name>` after optional whitespace: an element without attributes.
    fn open(&mut self, name: &[u8]) -> Option<()> {
        self.space();
        if !self.tag(false, name) {
            return None;
        }
        self.elements += 1;
        Some(())
    }

    /// `<prefix:local>` after optional whitespace.
    fn open_qualified(&mut self, prefix: &[u8], local: &[u8]) -> Option<()> {
        self.space();
        self.expect(b"<")?;
        self.expect(prefix)?;
        self.expect(b":")?;
        self.open_rest(local)
    }

    fn open_rest(&mut self, local: &[u8]) -> Option<()> {
        self.expect(local)?;
        self.expect(b">")?;
        self.elements += 1;
        Some(())
    }

    /// `</name>` after optional whitespace.
    fn close(&mut self, name: &[u8]) -> Option<()> {
        self.space();
        self.tag(true, name).then_some(())
    }

    fn close_qualified(&mut self, prefix: &[u8], local: &[u8]) -> Option<()> {
        self.space();
        self.expect(b"</")?;
        self.expect(prefix)?;
        self.expect(b":")?;
        self.expect(local)?;
        self.expect(b">")
    }

    /// Whether the next element (after whitespace) is `<name>`, without consuming anything.
    fn next_is(&self, name: &[u8]) -> bool {
        let rest = self.rest();
        let start = rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(rest.len());
        let rest = &rest[start..];
        rest.len() > name.len() + 1
            && rest[0] == b'<'
            && rest[1..].starts_with(name)
            && rest[name.len() + 1] == b'>'
    }

    /// `<name>value</name>`: a leaf whose value is plain text. The value as the hardened parser
    /// keeps it: trimmed of XML whitespace, never cut (longer values are deferred).
    fn leaf(&mut self, name: &[u8]) -> Option<Value<'b>> {
        self.open(name)?;
        let start = self.at;
        let end = start + memchr::memchr(b'<', self.rest())?;
        let raw = &self.body[start..end];
        if !plain(raw) {
            return None;
        }
        self.at = end;
        if !self.tag(true, name) {
            return None;
        }
        // Values are rarely padded: trim only when they are.
        let bytes = raw.as_bytes();
        let padded = |b: Option<&u8>| b.is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n'));
        let text = if padded(bytes.first()) || padded(bytes.last()) {
            raw.trim_matches(is_xml_space)
        } else {
            raw
        };
        Some(Value {
            text: Cow::Borrowed(text),
            truncated: false,
        })
    }

    fn request(&mut self, limits: &XmlLimits) -> Option<RawRequest<'b>> {
        if !DECLARATIONS.iter().any(|declaration| self.eat(declaration)) {
            // Whitespace may precede the root, not a declaration.
            self.space();
        }
        self.space();
        // <P:Envelope xmlns:P="soap" [xmlns:G="target"]>
        self.expect(b"<")?;
        let soap = self.prefix()?;
        self.expect(b":Envelope")?;
        let declared = self.declarations()?;
        self.elements += 1;
        if declared.len() > limits.max_attributes
            || declared.len() > limits.max_namespace_declarations
        {
            return None;
        }
        let bound = |prefix: &str| {
            declared
                .iter()
                .find(|(p, _)| *p == prefix)
                .map(|(_, uri)| *uri)
        };
        if bound(soap) != Some(SOAP11_ENVELOPE_NS) {
            return None;
        }
        let soap_prefix = soap;
        let soap = soap.as_bytes();
        // An empty Header: `<P:Header/>` or `<P:Header></P:Header>`.
        self.space();
        if self.eat(b"<") {
            if self.rest().starts_with(soap) && self.rest()[soap.len()..].starts_with(b":Header") {
                self.at += soap.len();
                self.expect(b":Header")?;
                self.elements += 1;
                if !self.eat(b"/>") {
                    self.expect(b">")?;
                    self.close_qualified(soap, b"Header")?;
                }
            } else {
                // Not a Header: put the `<` back for the Body.
                self.at -= 1;
            }
        }
        self.open_qualified(soap, b"Body")?;
        // <G:GeefAdviesInburgeringsplicht [xmlns:G="target"]>
        self.space();
        self.expect(b"<")?;
        let operation_prefix = self.prefix()?;
        self.expect(b":")?;
        self.expect(OPERATION.as_bytes())?;
        let own = self.declarations()?;
        self.elements += 1;
        let in_scope = declared.len() + own.len();
        if own.len() > limits.max_attributes
            || own.len() > limits.max_namespace_declarations
            || in_scope > limits.max_namespaces_in_scope
        {
            return None;
        }
        let target = match own.as_slice() {
            [] => bound(operation_prefix),
            [(prefix, uri)] if *prefix == operation_prefix && operation_prefix != soap_prefix => {
                Some(*uri)
            }
            _ => None,
        };
        if target != Some(TARGET_NS) {
            return None;
        }
        let operation_prefix = operation_prefix.as_bytes();

        self.open(b"Verzoek")?;
        let context = self.context()?;
        self.open(b"Vragen")?;
        let mut questions = Vec::new();
        let mut question_count = 0usize;
        while self.next_is(b"Vraag") {
            question_count += 1;
            if question_count > limits.max_questions {
                return None;
            }
            if question_count % QUESTIONS_PER_CLOCK_CHECK == 0
                && self.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return None;
            }
            questions.push(self.question()?);
        }
        if question_count == 0 {
            return None;
        }
        self.close(b"Vragen")?;
        self.close(b"Verzoek")?;
        self.close_qualified(operation_prefix, OPERATION.as_bytes())?;
        self.close_qualified(soap, b"Body")?;
        self.close_qualified(soap, b"Envelope")?;
        self.space();
        if self.at != self.body.len() {
            return None;
        }
        Some(RawRequest {
            context,
            questions,
            question_count,
        })
    }

    /// A namespace prefix: an ASCII name that is not reserved (`xml…`).
    fn prefix(&mut self) -> Option<&'b str> {
        let length = self
            .rest()
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
        let prefix = &self.body[self.at..self.at + length];
        let first = prefix.as_bytes().first()?;
        if !(first.is_ascii_alphabetic() || *first == b'_')
            || prefix.as_bytes()[..prefix.len().min(3)].eq_ignore_ascii_case(b"xml")
        {
            return None;
        }
        self.at += length;
        Some(prefix)
    }

    /// The rest of a start tag: ` xmlns:p="uri"` declarations (each prefix once, at most
    /// [`DECLARATIONS_TAKEN`]), then `>`. Other namespaces than SOAP 1.1 and the target one may
    /// be declared (node-soap declares `xsi`) but never used: only the Envelope's and the
    /// operation's prefixes are, and those must be bound to those two. Anything else — another
    /// attribute, a default namespace, a reserved or empty URI, a reference — is deferred.
    fn declarations(&mut self) -> Option<Declared<'b>> {
        let mut declared = Declared::default();
        loop {
            let before = self.at;
            self.space();
            if self.eat(b">") {
                return Some(declared);
            }
            if self.at == before || !self.eat(b"xmlns:") {
                return None;
            }
            let prefix = self.prefix()?;
            self.expect(b"=")?;
            let quote = *self.rest().first()?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            self.at += 1;
            let length = memchr::memchr(quote, self.rest())?;
            let uri = &self.body[self.at..self.at + length];
            self.at += length + 1;
            // The two namespaces every request declares need no closer look.
            let known = uri == SOAP11_ENVELOPE_NS || uri == TARGET_NS;
            let plain_uri = known
                || !uri.is_empty()
                    && uri
                        .bytes()
                        .all(|b| b > b' ' && !matches!(b, b'<' | b'&' | b'>' | 0x7f))
                    && uri.is_ascii()
                    && uri != XML_NS
                    && uri != XMLNS_NS;
            if !plain_uri || declared.iter().any(|(p, _)| *p == prefix) {
                return None;
            }
            declared.push((prefix, uri))?;
        }
    }

    fn context(&mut self) -> Option<RawContext<'b>> {
        self.open(b"Context")?;
        let naam = self.leaf(b"Naam")?;
        let versie = self.leaf(b"Versie")?;
        self.open(b"Bericht")?;
        let bericht_type = self.leaf(b"Type")?;
        self.open(b"Tijdstip")?;
        let datum = self.leaf(b"Datum")?;
        let tijd = self.leaf(b"Tijd")?;
        self.close(b"Tijdstip")?;
        self.open(b"Afzender")?;
        let identificatie = self.leaf(b"Identificatie")?;
        let referte = self.leaf(b"Referte")?;
        let hoedanigheid = self.leaf(b"Hoedanigheid")?;
        let gebruiker = if self.next_is(b"Gebruiker") {
            Some(self.leaf(b"Gebruiker")?)
        } else {
            None
        };
        self.close(b"Afzender")?;
        self.close(b"Bericht")?;
        self.close(b"Context")?;
        Some(RawContext {
            naam: Some(naam),
            versie: Some(versie),
            bericht: true,
            bericht_type: Some(bericht_type),
            tijdstip: true,
            datum: Some(datum),
            tijd: Some(tijd),
            afzender: true,
            identificatie: Some(identificatie),
            referte: Some(referte),
            hoedanigheid: Some(hoedanigheid),
            gebruiker,
        })
    }

    fn question(&mut self) -> Option<RawQuestion<'b>> {
        self.open(b"Vraag")?;
        let referte = self.leaf(b"Referte")?;
        self.open(b"Inhoud")?;
        self.open(b"Criteria")?;
        let insz = self.leaf(b"INSZ")?;
        let referentiedatum = if self.next_is(b"Referentiedatum") {
            Some(self.leaf(b"Referentiedatum")?)
        } else {
            None
        };
        let premiejaar = if self.next_is(b"Premiejaar") {
            Some(self.leaf(b"Premiejaar")?)
        } else {
            None
        };
        self.close(b"Criteria")?;
        self.close(b"Inhoud")?;
        self.close(b"Vraag")?;
        Some(RawQuestion {
            referte: Some(referte),
            insz: Some(insz),
            referentiedatum,
            premiejaar,
        })
    }
}

/// The namespace declarations of one start tag, at most [`DECLARATIONS_TAKEN`], kept on the
/// stack (no allocation per tag).
#[derive(Default)]
struct Declared<'b> {
    entries: [(&'b str, &'b str); DECLARATIONS_TAKEN],
    len: usize,
}

impl<'b> Declared<'b> {
    fn as_slice(&self) -> &[(&'b str, &'b str)] {
        &self.entries[..self.len]
    }

    fn iter(&self) -> std::slice::Iter<'_, (&'b str, &'b str)> {
        self.as_slice().iter()
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Adds a declaration; `None` (defer) past [`DECLARATIONS_TAKEN`].
    fn push(&mut self, declaration: (&'b str, &'b str)) -> Option<()> {
        *self.entries.get_mut(self.len)? = declaration;
        self.len += 1;
        Some(())
    }
}

/// A value the hardened parser would keep as it is: no markup or reference (`&`, `>`, which
/// could start `]]>`), no carriage return (line ends are left to the XML layer), only XML
/// characters, and short enough not to be cut. One pass over the bytes; only a value with
/// non-ASCII text is then read as characters.
fn plain(text: &str) -> bool {
    if text.len() > MAX_VALUE_BYTES {
        return false;
    }
    // Without early exits, so that the loop is vectorised (values are short; checking a few
    // bytes more costs less than a branch per byte).
    let (mut refused, mut high) = (false, false);
    for &b in text.as_bytes() {
        refused |= (b < 0x20 && b != b'\t' && b != b'\n') | (b == b'&') | (b == b'>') | (b == 0x7f);
        high |= b >= 0x80;
    }
    !refused && (!high || text.chars().all(is_xml_char))
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    const BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:geef=\"urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00\">\n  <soapenv:Header/>\n  <soapenv:Body>\n    <geef:GeefAdviesInburgeringsplicht>\n      <Verzoek><Context><Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie><Bericht><Type>VRAAG</Type><Tijdstip><Datum>2026-11-02</Datum><Tijd>09:15:00.000</Tijd></Tijdstip><Afzender><Identificatie>demo.kbi-advice</Identificatie><Referte>req-0001</Referte><Hoedanigheid>9999</Hoedanigheid><Gebruiker>tester</Gebruiker></Afzender></Bericht></Context><Vragen><Vraag><Referte>v1</Referte><Inhoud><Criteria><INSZ> 90011510383 </INSZ><Referentiedatum>2026-01-01</Referentiedatum></Criteria></Inhoud></Vraag><Vraag><Referte>v2</Referte><Inhoud><Criteria><INSZ>90011510185</INSZ><Premiejaar>2026</Premiejaar></Criteria></Inhoud></Vraag></Vragen></Verzoek>\n    </geef:GeefAdviesInburgeringsplicht>\n  </soapenv:Body>\n</soapenv:Envelope>\n";

    #[test]
    fn the_canonical_shape_is_read_as_the_hardened_parser_reads_it() {
        let limits = XmlLimits::default();
        let fast = read(BODY.as_bytes(), &limits).expect("canonical body taken");
        assert_eq!(Ok(fast.clone()), parse(BODY.as_bytes(), &limits));
        assert_eq!(fast.question_count, 2);
        assert_eq!(fast.questions[0].insz.as_ref().unwrap().text, "90011510383");
    }

    #[test]
    fn the_values_borrow_from_the_body() {
        // No allocation per value on the fast road: every value is a slice of the body (the
        // padded INSZ trimmed in place).
        let fast = read(BODY.as_bytes(), &XmlLimits::default()).expect("canonical body taken");
        let context = &fast.context;
        let question = &fast.questions[0];
        for value in [
            &context.naam,
            &context.versie,
            &context.bericht_type,
            &context.datum,
            &context.tijd,
            &context.identificatie,
            &context.referte,
            &context.hoedanigheid,
            &context.gebruiker,
            &question.referte,
            &question.insz,
            &question.referentiedatum,
        ] {
            let value = value.as_ref().expect("present");
            assert!(matches!(value.text, Cow::Borrowed(_)), "{value:?}");
        }
    }

    #[test]
    fn anything_unusual_is_deferred() {
        let limits = XmlLimits::default();
        for (what, from, to) in [
            ("comment", "<Vragen>", "<Vragen><!-- c -->"),
            ("CDATA", "v1<", "<![CDATA[v1]]><"),
            ("entity", ">v1<", ">v&amp;1<"),
            ("attribute", "<Verzoek>", "<Verzoek a=\"1\">"),
            (
                "other namespace",
                "<Verzoek>",
                "<Verzoek xmlns:x=\"urn:x\">",
            ),
            ("default namespace", "<Verzoek>", "<Verzoek xmlns=\"\">"),
            (
                "reordered",
                "<Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie>",
                "<Versie>01.00.0000</Versie><Naam>GeefAdviesInburgeringsplicht</Naam>",
            ),
            ("unknown element", "<Inhoud>", "<Extra/><Inhoud>"),
            (
                "self-closing",
                "<Gebruiker>tester</Gebruiker>",
                "<Gebruiker/>",
            ),
            (
                "header entry",
                "<soapenv:Header/>",
                "<soapenv:Header><h:x xmlns:h=\"urn:h\"/></soapenv:Header>",
            ),
            ("trailing", "</soapenv:Envelope>\n", "</soapenv:Envelope>x"),
            ("carriage return", ">v1<", ">v\r1<"),
        ] {
            let body = BODY.replacen(from, to, 1);
            assert_ne!(body, BODY, "{what}");
            assert_eq!(read(body.as_bytes(), &limits), None, "{what}");
        }
        let long = BODY.replace("v1", &"7".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(read(long.as_bytes(), &limits), None);
        let few = XmlLimits {
            max_questions: 1,
            ..XmlLimits::default()
        };
        assert_eq!(read(BODY.as_bytes(), &few), None);
        let shallow = XmlLimits {
            max_depth: 8,
            ..XmlLimits::default()
        };
        assert_eq!(read(BODY.as_bytes(), &shallow), None);
    }
}
