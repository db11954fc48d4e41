//! The fast reader: the one request shape MAGDA callers send, read with a byte scanner.
//!
//! Callers (MAGDA, zeep, node-soap, the load tests) send one canonical shape: an optional XML
//! declaration, the SOAP 1.1 `Envelope` declaring its own prefix and perhaps the operation's, an
//! optional empty `Header`, the `Body`, the qualified `GeefAdviesInburgeringsplicht` wrapper, and
//! inside it the unqualified `Verzoek/Context` and `Vragen/Vraag` elements in schema order,
//! without attributes, comments, CDATA sections or entity references. [`read`] recognises exactly
//! that shape, byte by byte (one table-driven pass over each value, no allocation but the values'
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
    let body = simdutf8::basic::from_utf8(body).ok()?;
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

/// A little less than the bytes of a `Vraag` as MAGDA sends it (a short `Referte`, an `INSZ`
/// and a `Referentiedatum`, ≈ 140 bytes): the estimate that sizes the list of questions. A
/// body of shorter questions only makes the list grow, as it did before.
const VRAAG_BYTES: usize = 128;

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
        let rest = self.rest();
        let colon = 2 + prefix.len();
        let end = colon + 1 + local.len();
        let found = rest.len() > end
            && rest.starts_with(b"</")
            && &rest[2..colon] == prefix
            && rest[colon] == b':'
            && &rest[colon + 1..end] == local
            && rest[end] == b'>';
        if found {
            self.at += end + 1;
        }
        found.then_some(())
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

    /// `<name>value</name>`: a leaf whose value is plain text.
    fn leaf(&mut self, name: &[u8]) -> Option<Value<'b>> {
        self.open(name)?;
        let value = self.value()?;
        self.tag(true, name).then_some(value)
    }

    /// The text of a leaf up to its end tag (the `<` after it, not consumed), as the hardened
    /// parser keeps it: trimmed of XML whitespace, never cut (longer values are deferred). The
    /// one reading of a value, for both the tag-by-tag road and the compact one.
    fn value(&mut self) -> Option<Value<'b>> {
        let start = self.at;
        let bytes = self.body.as_bytes();
        // One pass to the end of the value, judging each byte by a table (values are short: a
        // search for `<` and then a check of the bytes cost more, in their set-up, than this).
        let mut length = None;
        let mut high = false;
        for (i, &b) in bytes[start..].iter().enumerate() {
            match VALUE_BYTE[usize::from(b)] {
                PLAIN => {}
                END => {
                    length = Some(i);
                    break;
                }
                HIGH => high = true,
                _ => return None,
            }
        }
        let end = start + length?;
        let raw = &self.body[start..end];
        if raw.len() > MAX_VALUE_BYTES || high && !raw.chars().all(is_xml_char) {
            return None;
        }
        self.at = end;
        // Values are rarely padded: trim only when they are.
        let padded = |b: Option<&u8>| b.is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n'));
        let text = if padded(raw.as_bytes().first()) || padded(raw.as_bytes().last()) {
            raw.trim_matches(is_xml_space)
        } else {
            raw
        };
        Some(Value {
            text: Cow::Borrowed(text),
            truncated: false,
        })
    }

    /// Consumes `run` if the body continues with it, counting its start tags.
    fn run(&mut self, run: &Run) -> bool {
        if self.rest().starts_with(run.text) {
            self.at += run.text.len();
            self.elements += run.opens;
            true
        } else {
            false
        }
    }

    fn expect_run(&mut self, run: &Run) -> Option<()> {
        self.run(run).then_some(())
    }

    /// `read` with the scanner put back where it was if it gives nothing: the compact road
    /// tried first, the tag-by-tag road from the same place if it does not fit.
    fn attempt<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let (at, elements) = (self.at, self.elements);
        let read = read(self);
        if read.is_none() {
            self.at = at;
            self.elements = elements;
        }
        read
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

        let context = match self.attempt(Self::compact_head) {
            Some(context) => context,
            None => {
                self.open(b"Verzoek")?;
                let context = self.context()?;
                self.open(b"Vragen")?;
                context
            }
        };
        // Sized once from what is left of the body: a canonical `Vraag` takes about 140 bytes,
        // so the list does not grow (and move) seven times on the way to 100 questions. Never
        // more than the questions allowed, never more than the body could hold.
        let mut questions =
            Vec::with_capacity((self.rest().len() / VRAAG_BYTES + 1).min(limits.max_questions));
        let mut question_count = 0usize;
        // `<Vraag>` right here is what `next_is` would find first, and the compact end of the
        // list is what it would not: both save the look past whitespace for compact bodies.
        while self.rest().starts_with(b"<Vraag>")
            || !self.rest().starts_with(ENDS_VRAGEN.text) && self.next_is(b"Vraag")
        {
            question_count += 1;
            if question_count > limits.max_questions {
                return None;
            }
            if question_count % QUESTIONS_PER_CLOCK_CHECK == 0
                && self.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return None;
            }
            let question = match self.attempt(Self::compact_question) {
                Some(question) => question,
                None => self.question()?,
            };
            questions.push(question);
        }
        if question_count == 0 {
            return None;
        }
        if !self.run(&ENDS_VRAGEN) {
            self.close(b"Vragen")?;
            self.close(b"Verzoek")?;
        }
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
        let rest = self.rest();
        let mut length = 0;
        while length < rest.len() && PREFIX_BYTE[usize::from(rest[length])] {
            length += 1;
        }
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
            // The two namespaces every request declares, taken without a search for the quote.
            let rest = self.rest();
            if let Some(uri) = [SOAP11_ENVELOPE_NS, TARGET_NS].into_iter().find(|uri| {
                rest.len() > uri.len()
                    && rest.starts_with(uri.as_bytes())
                    && rest[uri.len()] == quote
            }) {
                self.at += uri.len() + 1;
                if declared.iter().any(|(p, _)| *p == prefix) {
                    return None;
                }
                declared.push((prefix, uri))?;
                continue;
            }
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

/// The compact road: the same elements as the tag-by-tag road ([`Scanner::context`],
/// [`Scanner::question`]) when no whitespace stands between their tags, as the load tests and
/// most generated requests send them. Each run of tags between two values is one comparison with
/// a literal instead of one per tag; the values are read by the same [`Scanner::value`]. It
/// accepts a subset of what the tag-by-tag road accepts, with the same result (the same values
/// and element count); anything else (whitespace, another order, a missing or unknown element)
/// puts the scanner back and the tag-by-tag road reads it.
impl<'b> Scanner<'b> {
    /// `<Verzoek><Context>…</Context><Vragen>`.
    fn compact_head(&mut self) -> Option<RawContext<'b>> {
        self.expect_run(&HEAD)?;
        let naam = self.value()?;
        self.expect_run(&AFTER_NAAM)?;
        let versie = self.value()?;
        self.expect_run(&AFTER_VERSIE)?;
        let bericht_type = self.value()?;
        self.expect_run(&AFTER_TYPE)?;
        let datum = self.value()?;
        self.expect_run(&AFTER_DATUM)?;
        let tijd = self.value()?;
        self.expect_run(&AFTER_TIJD)?;
        let identificatie = self.value()?;
        self.expect_run(&AFTER_IDENTIFICATIE)?;
        let referte = self.value()?;
        self.expect_run(&AFTER_REFERTE)?;
        let hoedanigheid = self.value()?;
        let gebruiker = if self.run(&AFTER_HOEDANIGHEID_GEBRUIKER) {
            let gebruiker = self.value()?;
            self.expect_run(&AFTER_GEBRUIKER)?;
            Some(gebruiker)
        } else {
            self.expect_run(&AFTER_HOEDANIGHEID)?;
            None
        };
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

    /// `<Vraag>…</Vraag>`.
    fn compact_question(&mut self) -> Option<RawQuestion<'b>> {
        self.expect_run(&VRAAG)?;
        let referte = self.value()?;
        self.expect_run(&AFTER_VRAAG_REFERTE)?;
        let insz = self.value()?;
        let mut referentiedatum = None;
        let mut premiejaar = None;
        if self.run(&AFTER_INSZ_REFERENTIEDATUM) {
            referentiedatum = Some(self.value()?);
            if self.run(&AFTER_REFERENTIEDATUM_PREMIEJAAR) {
                premiejaar = Some(self.value()?);
                self.expect_run(&AFTER_PREMIEJAAR)?;
            } else {
                self.expect_run(&AFTER_REFERENTIEDATUM)?;
            }
        } else if self.run(&AFTER_INSZ_PREMIEJAAR) {
            premiejaar = Some(self.value()?);
            self.expect_run(&AFTER_PREMIEJAAR)?;
        } else {
            self.expect_run(&AFTER_INSZ)?;
        }
        Some(RawQuestion {
            referte: Some(referte),
            insz: Some(insz),
            referentiedatum,
            premiejaar,
        })
    }
}

/// A run of tags without whitespace, and how many of them are start tags (the element count).
struct Run {
    text: &'static [u8],
    opens: usize,
}

impl Run {
    const fn new(text: &'static [u8]) -> Run {
        let mut opens = 0;
        let mut i = 0;
        while i + 1 < text.len() {
            if text[i] == b'<' && text[i + 1] != b'/' {
                opens += 1;
            }
            i += 1;
        }
        Run { text, opens }
    }
}

const HEAD: Run = Run::new(b"<Verzoek><Context><Naam>");
const AFTER_NAAM: Run = Run::new(b"</Naam><Versie>");
const AFTER_VERSIE: Run = Run::new(b"</Versie><Bericht><Type>");
const AFTER_TYPE: Run = Run::new(b"</Type><Tijdstip><Datum>");
const AFTER_DATUM: Run = Run::new(b"</Datum><Tijd>");
const AFTER_TIJD: Run = Run::new(b"</Tijd></Tijdstip><Afzender><Identificatie>");
const AFTER_IDENTIFICATIE: Run = Run::new(b"</Identificatie><Referte>");
const AFTER_REFERTE: Run = Run::new(b"</Referte><Hoedanigheid>");
const AFTER_HOEDANIGHEID_GEBRUIKER: Run = Run::new(b"</Hoedanigheid><Gebruiker>");
const AFTER_GEBRUIKER: Run = Run::new(b"</Gebruiker></Afzender></Bericht></Context><Vragen>");
const AFTER_HOEDANIGHEID: Run = Run::new(b"</Hoedanigheid></Afzender></Bericht></Context><Vragen>");
const VRAAG: Run = Run::new(b"<Vraag><Referte>");
const AFTER_VRAAG_REFERTE: Run = Run::new(b"</Referte><Inhoud><Criteria><INSZ>");
const AFTER_INSZ_REFERENTIEDATUM: Run = Run::new(b"</INSZ><Referentiedatum>");
const AFTER_INSZ_PREMIEJAAR: Run = Run::new(b"</INSZ><Premiejaar>");
const AFTER_INSZ: Run = Run::new(b"</INSZ></Criteria></Inhoud></Vraag>");
const AFTER_REFERENTIEDATUM_PREMIEJAAR: Run = Run::new(b"</Referentiedatum><Premiejaar>");
const AFTER_REFERENTIEDATUM: Run = Run::new(b"</Referentiedatum></Criteria></Inhoud></Vraag>");
const AFTER_PREMIEJAAR: Run = Run::new(b"</Premiejaar></Criteria></Inhoud></Vraag>");
const ENDS_VRAGEN: Run = Run::new(b"</Vragen></Verzoek>");

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

/// What a byte of a value is to [`Scanner::value`]: kept as it is, the value's end (`<`), the
/// start of a non-ASCII character (then the value's characters are checked), or a reason to
/// defer. A value the hardened parser keeps as it is has no markup or reference (`&`, `>`, which
/// could start `]]>`), no carriage return (line ends are left to the XML layer), only XML
/// characters, and is short enough not to be cut.
const PLAIN: u8 = 0;
const END: u8 = 1;
const HIGH: u8 = 2;
const DEFER: u8 = 3;
const VALUE_BYTE: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'<' => END,
            b'\t' | b'\n' => PLAIN,
            0..=0x1f | b'&' | b'>' | 0x7f => DEFER,
            0x80..=0xff => HIGH,
            _ => PLAIN,
        };
        b += 1;
    }
    table
};

/// Whether `b` may be part of a namespace prefix read here (ASCII letters, digits, `_-.`).
const PREFIX_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric() || matches!(b as u8, b'_' | b'-' | b'.');
        b += 1;
    }
    table
};

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
