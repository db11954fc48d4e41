//! Streaming parse of a `GeefAdviesInburgeringsplicht` request: SOAP 1.1 envelope → raw values.
//!
//! One pass over the body with quick-xml's [`Reader`], no tree of the document: the parser
//! keeps a stack of the open elements (bounded by [`XmlLimits::max_depth`]) and copies only the
//! leaf values the service needs, each capped at [`MAX_VALUE_BYTES`]. Everything the XML layer can
//! get wrong — encoding, DTDs, entities, depth, element count, unknown or duplicated elements,
//! a missing structural element — ends the parse at once with a [`FaultReason`]; the values
//! themselves are judged later (request or question Uitzonderingen), never here.
//!
//! Cost is linear in the body. Namespaces are resolved here, not by quick-xml's `NsReader`: that
//! one reads every attribute of a start tag into its bindings before the parser sees the tag, and
//! resolves a prefix by scanning every binding in scope, so one element with 80,000 declarations
//! cost the square of that. Here a start tag's attributes are read once, counted and refused as
//! soon as they pass [`XmlLimits::max_attributes`], [`XmlLimits::max_namespace_declarations`] or
//! [`XmlLimits::max_namespaces_in_scope`]; a prefix is then looked up among at most that many
//! bindings, and only an attribute named `mustUnderstand` is resolved at all. A deadline
//! ([`parse_until`]) ends any parse that still takes too long with [`FaultReason::TimeBudget`].
//!
//! No fault message contains request data: they name only our own element names and, for
//! syntax errors, a byte offset.

use std::borrow::Cow;
use std::time::Instant;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use quick_xml::reader::Reader;

use super::XmlLimits;

/// The SOAP 1.1 envelope namespace, the only envelope accepted.
pub(crate) const SOAP11_ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The operation's target namespace (only the wrapper elements are qualified).
pub const TARGET_NS: &str = "urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00";
/// The request wrapper element.
pub(crate) const OPERATION: &str = "GeefAdviesInburgeringsplicht";

/// The most bytes kept of one value. Every legitimate value is far shorter (a Referte has at
/// most 36 characters); a longer one is kept cut and marked, so it can be refused without the
/// parser ever holding more than this per value.
pub const MAX_VALUE_BYTES: usize = 1024;

/// Why a body is refused with a SOAP Fault. The texts are the `faultstring`s: short, in English
/// (the SOAP layer's language), and never containing request data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FaultReason {
    #[error("request body is empty")]
    Empty,
    #[error("request body is not valid UTF-8")]
    InvalidUtf8,
    #[error("only UTF-8 encoded XML is accepted")]
    NotUtf8Declared,
    #[error("XML is not well-formed (near byte {0})")]
    NotWellFormed(u64),
    #[error("DTDs are not accepted (no DOCTYPE, no entity declarations)")]
    Dtd,
    #[error("processing instructions are not accepted in SOAP messages")]
    ProcessingInstruction,
    #[error("reference to an undeclared entity or an invalid character reference")]
    Entity,
    #[error("text contains a character that XML 1.0 does not allow")]
    InvalidCharacter,
    #[error("elements nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("more than {0} elements in one request")]
    TooManyElements(usize),
    #[error("more than {0} attributes on one element")]
    TooManyAttributes(usize),
    #[error("more than {0} namespace declarations on one element")]
    TooManyNamespaceDeclarations(usize),
    #[error("more than {0} namespace declarations in scope")]
    TooManyNamespacesInScope(usize),
    #[error(
        "the request could not be processed within its time budget (server.request_time_budget_ms)"
    )]
    TimeBudget,
    #[error("element or attribute uses an undeclared namespace prefix")]
    UnknownPrefix,
    #[error("not a SOAP message: the root element must be a SOAP 1.1 Envelope")]
    NotSoap,
    #[error("SOAP version mismatch: only SOAP 1.1 (http://schemas.xmlsoap.org/soap/envelope/) is supported")]
    VersionMismatch,
    #[error("a SOAP header marked mustUnderstand is not understood by this service")]
    MustUnderstand,
    #[error("content after the end of the SOAP Envelope")]
    TrailingContent,
    #[error("text outside the SOAP Envelope")]
    TextOutsideEnvelope,
    #[error("the request ends before the SOAP Envelope is closed")]
    Truncated,
    #[error("the SOAP Body must hold one GeefAdviesInburgeringsplicht element in namespace urn:kbi-advice:soap:geefadviesinburgeringsplicht:v01_00")]
    WrongOperation,
    #[error("elements inside GeefAdviesInburgeringsplicht must be unqualified (no namespace)")]
    QualifiedInner,
    #[error("unexpected element inside {0}")]
    UnexpectedElement(&'static str),
    #[error("unexpected text inside {0}")]
    UnexpectedText(&'static str),
    #[error("element {child} occurs more than once inside {parent}")]
    Duplicated {
        child: &'static str,
        parent: &'static str,
    },
    #[error("element {child} is missing inside {parent}")]
    Missing {
        child: &'static str,
        parent: &'static str,
    },
}

impl FaultReason {
    /// The SOAP 1.1 `faultcode` (section 4.4.1): the envelope namespace and mustUnderstand have
    /// their own codes; every other refusal is the caller's fault.
    pub fn faultcode(self) -> &'static str {
        match self {
            FaultReason::VersionMismatch => "soap:VersionMismatch",
            FaultReason::MustUnderstand => "soap:MustUnderstand",
            // The server's own budget ran out; the message itself may be fine (retry later).
            FaultReason::TimeBudget => "soap:Server",
            _ => "soap:Client",
        }
    }
}

/// One leaf value as sent, trimmed of surrounding XML whitespace and capped at
/// [`MAX_VALUE_BYTES`]. Borrowed from the body when the fast reader read it (the common case:
/// no allocation per value), owned when the hardened parser did (it unescapes and joins text).
/// Equal values compare equal whichever they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Value<'b> {
    pub text: Cow<'b, str>,
    /// The value was longer than [`MAX_VALUE_BYTES`] and `text` holds only its start.
    pub truncated: bool,
}

impl<'b> Value<'b> {
    /// The value if it has 1 to `max_chars` characters.
    pub fn within(&self, max_chars: usize) -> Option<&str> {
        (!self.truncated && super::within_chars(&self.text, max_chars)).then_some(&*self.text)
    }

    /// The same value, owning its text (for a request that must outlive its body).
    pub fn into_owned(self) -> Value<'static> {
        Value {
            text: Cow::Owned(self.text.into_owned()),
            truncated: self.truncated,
        }
    }
}

/// `Verzoek/Context` as sent. The `bool`s say whether the grouping element was present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawContext<'b> {
    pub naam: Option<Value<'b>>,
    pub versie: Option<Value<'b>>,
    pub bericht: bool,
    pub bericht_type: Option<Value<'b>>,
    pub tijdstip: bool,
    pub datum: Option<Value<'b>>,
    pub tijd: Option<Value<'b>>,
    pub afzender: bool,
    pub identificatie: Option<Value<'b>>,
    pub referte: Option<Value<'b>>,
    pub hoedanigheid: Option<Value<'b>>,
    pub gebruiker: Option<Value<'b>>,
}

/// One `Vraag` as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawQuestion<'b> {
    pub referte: Option<Value<'b>>,
    pub insz: Option<Value<'b>>,
    pub referentiedatum: Option<Value<'b>>,
    pub premiejaar: Option<Value<'b>>,
}

impl<'b> RawQuestion<'b> {
    /// The same question, owning its values.
    pub fn into_owned(self) -> RawQuestion<'static> {
        RawQuestion {
            referte: self.referte.map(Value::into_owned),
            insz: self.insz.map(Value::into_owned),
            referentiedatum: self.referentiedatum.map(Value::into_owned),
            premiejaar: self.premiejaar.map(Value::into_owned),
        }
    }
}

/// A structurally valid request, values not yet judged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest<'b> {
    pub context: RawContext<'b>,
    /// The first [`XmlLimits::max_questions`] questions, in document order.
    pub questions: Vec<RawQuestion<'b>>,
    /// How many `Vraag` the request held (may exceed `questions.len()`).
    pub question_count: usize,
}

/// The elements the parser knows. Inner elements are unqualified, so a name alone would be
/// ambiguous (`Referte` of the sender or of a question): the node is the name in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Envelope,
    Header,
    /// A header entry or anything inside one: skipped (bounded by depth and element count).
    HeaderContent,
    Body,
    Operation,
    Verzoek,
    Context,
    Naam,
    Versie,
    Bericht,
    BerichtType,
    Tijdstip,
    Datum,
    Tijd,
    Afzender,
    Identificatie,
    AfzenderReferte,
    Hoedanigheid,
    Gebruiker,
    Vragen,
    Vraag,
    VraagReferte,
    Inhoud,
    Criteria,
    Insz,
    Referentiedatum,
    Premiejaar,
}

impl Node {
    fn name(self) -> &'static str {
        match self {
            Node::Envelope => "Envelope",
            Node::Header => "Header",
            Node::HeaderContent => "a Header entry",
            Node::Body => "Body",
            Node::Operation => OPERATION,
            Node::Verzoek => "Verzoek",
            Node::Context => "Context",
            Node::Naam => "Naam",
            Node::Versie => "Versie",
            Node::Bericht => "Bericht",
            Node::BerichtType => "Type",
            Node::Tijdstip => "Tijdstip",
            Node::Datum => "Datum",
            Node::Tijd => "Tijd",
            Node::Afzender => "Afzender",
            Node::Identificatie => "Identificatie",
            Node::AfzenderReferte | Node::VraagReferte => "Referte",
            Node::Hoedanigheid => "Hoedanigheid",
            Node::Gebruiker => "Gebruiker",
            Node::Vragen => "Vragen",
            Node::Vraag => "Vraag",
            Node::Inhoud => "Inhoud",
            Node::Criteria => "Criteria",
            Node::Insz => "INSZ",
            Node::Referentiedatum => "Referentiedatum",
            Node::Premiejaar => "Premiejaar",
        }
    }

    fn is_leaf(self) -> bool {
        matches!(
            self,
            Node::Naam
                | Node::Versie
                | Node::BerichtType
                | Node::Datum
                | Node::Tijd
                | Node::Identificatie
                | Node::AfzenderReferte
                | Node::Hoedanigheid
                | Node::Gebruiker
                | Node::VraagReferte
                | Node::Insz
                | Node::Referentiedatum
                | Node::Premiejaar
        )
    }

    /// Elements that may occur more than once in their parent.
    fn repeatable(self) -> bool {
        matches!(self, Node::Vraag | Node::HeaderContent)
    }

    /// A bit per node, to notice duplicated and missing children (fewer than 32 nodes).
    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The unqualified child `local` of this node inside the operation, if the schema has one.
    fn inner_child(self, local: &[u8]) -> Option<Node> {
        let child = match (self, local) {
            (Node::Operation, b"Verzoek") => Node::Verzoek,
            (Node::Verzoek, b"Context") => Node::Context,
            (Node::Verzoek, b"Vragen") => Node::Vragen,
            (Node::Context, b"Naam") => Node::Naam,
            (Node::Context, b"Versie") => Node::Versie,
            (Node::Context, b"Bericht") => Node::Bericht,
            (Node::Bericht, b"Type") => Node::BerichtType,
            (Node::Bericht, b"Tijdstip") => Node::Tijdstip,
            (Node::Bericht, b"Afzender") => Node::Afzender,
            (Node::Tijdstip, b"Datum") => Node::Datum,
            (Node::Tijdstip, b"Tijd") => Node::Tijd,
            (Node::Afzender, b"Identificatie") => Node::Identificatie,
            (Node::Afzender, b"Referte") => Node::AfzenderReferte,
            (Node::Afzender, b"Hoedanigheid") => Node::Hoedanigheid,
            (Node::Afzender, b"Gebruiker") => Node::Gebruiker,
            (Node::Vragen, b"Vraag") => Node::Vraag,
            (Node::Vraag, b"Referte") => Node::VraagReferte,
            (Node::Vraag, b"Inhoud") => Node::Inhoud,
            (Node::Inhoud, b"Criteria") => Node::Criteria,
            (Node::Criteria, b"INSZ") => Node::Insz,
            (Node::Criteria, b"Referentiedatum") => Node::Referentiedatum,
            (Node::Criteria, b"Premiejaar") => Node::Premiejaar,
            _ => return None,
        };
        Some(child)
    }

    /// Children whose absence makes the message structurally broken (a Fault). Missing context
    /// parts (Bericht, Tijdstip, Afzender and the leaves) are judged later as 30012 instead, and
    /// missing criteria values as 30001/30002 of that question.
    fn required_children(self) -> &'static [Node] {
        match self {
            Node::Envelope => &[Node::Body],
            Node::Body => &[Node::Operation],
            Node::Operation => &[Node::Verzoek],
            Node::Verzoek => &[Node::Context, Node::Vragen],
            Node::Vragen => &[Node::Vraag],
            Node::Vraag => &[Node::Inhoud],
            Node::Inhoud => &[Node::Criteria],
            _ => &[],
        }
    }
}

/// The namespace of an element, as far as the parser cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    /// Unqualified (no default namespace in scope).
    None,
    Soap11,
    Target,
    Other,
    UnknownPrefix,
}

impl Ns {
    /// The namespace named `uri` (bound to a prefix or as the default namespace).
    fn named(uri: &[u8]) -> Ns {
        match uri {
            uri if uri == SOAP11_ENVELOPE_NS.as_bytes() => Ns::Soap11,
            uri if uri == TARGET_NS.as_bytes() => Ns::Target,
            // xmlns="" undeclares the default namespace: the name is unqualified again.
            b"" => Ns::None,
            _ => Ns::Other,
        }
    }
}

/// The namespace URI that the `xml` prefix is bound to by definition.
const XML_NS: &[u8] = b"http://www.w3.org/XML/1998/namespace";
/// The namespace URI of `xmlns` itself, which nothing may be bound to.
const XMLNS_NS: &[u8] = b"http://www.w3.org/2000/xmlns/";

/// The namespace bindings in scope, innermost last: `(prefix, uri)`, the default namespace with
/// an empty prefix. Never longer than [`XmlLimits::max_namespaces_in_scope`], so a lookup costs
/// at most that many comparisons.
#[derive(Default)]
struct Bindings {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Bindings {
    fn lookup(&self, prefix: &[u8]) -> Option<&[u8]> {
        self.entries
            .iter()
            .rev()
            .find(|(p, _)| p.as_slice() == prefix)
            .map(|(_, uri)| uri.as_slice())
    }

    /// The namespace of an element name.
    fn element(&self, name: QName<'_>) -> Ns {
        match name.prefix() {
            None => self.lookup(b"").map_or(Ns::None, Ns::named),
            Some(prefix) => match prefix.as_ref() {
                b"xml" => Ns::Other,
                // `xmlns` is not a prefix an element may have.
                b"xmlns" => Ns::UnknownPrefix,
                prefix => self.lookup(prefix).map_or(Ns::UnknownPrefix, Ns::named),
            },
        }
    }
}

/// An open element and the children seen in it so far.
struct Frame {
    node: Node,
    seen: u32,
    /// Namespace declarations made on this element (released when it closes).
    namespaces: usize,
}

/// Parses `body` into a [`RawRequest`], or says why it is refused. Bounded work: one pass, at
/// most `limits.max_depth` open elements and `limits.max_elements` elements.
pub fn parse<'b>(body: &'b [u8], limits: &XmlLimits) -> Result<RawRequest<'b>, FaultReason> {
    parse_until(body, limits, None).0
}

/// [`parse`], refused with [`FaultReason::TimeBudget`] once `deadline` has passed (checked every
/// few XML events, so a parse overruns it by microseconds at most).
/// Also says which reader read the body ([`Road`]).
pub(crate) fn parse_until<'b>(
    body: &'b [u8],
    limits: &XmlLimits,
    deadline: Option<Instant>,
) -> (Result<RawRequest<'b>, FaultReason>, Road) {
    let text = match check_bytes(body) {
        Ok(text) => text,
        Err(reason) => return (Err(reason), Road::Hardened),
    };
    // The shape callers send is read by the fast reader, which gives what the hardened parser
    // would; anything else, and everything hostile, goes to the hardened parser unchanged.
    if let Some(request) = super::fast::read_text_until(text, limits, deadline) {
        return (Ok(request), Road::Fast);
    }
    (parse_hardened(body, limits, deadline), Road::Hardened)
}

/// Which reader read a body: the fast reader took it, or it went to the hardened parser
/// (`kbi_soap_fast_path_total{outcome="taken"|"deferred"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Road {
    Fast,
    Hardened,
}

/// The hardened parser alone, without the fast reader in front (the reference the fast reader
/// is compared with, and the road of every body it defers). Expects a body that is not empty
/// and valid UTF-8, as [`parse_until`] checks first.
fn parse_hardened(
    body: &[u8],
    limits: &XmlLimits,
    deadline: Option<Instant>,
) -> Result<RawRequest<'static>, FaultReason> {
    let mut parser = Parser::new(limits);
    parser.deadline = deadline;
    parser.run(body)
}

/// [`parse`] without the fast reader: what the hardened parser alone says of `body`. For the
/// differential tests of [`super::fast::read`]; the server always goes through [`parse`].
pub fn parse_without_fast_reader(
    body: &[u8],
    limits: &XmlLimits,
) -> Result<RawRequest<'static>, FaultReason> {
    check_bytes(body)?;
    parse_hardened(body, limits, None)
}

/// What both readers need first: a body that is not empty, and valid UTF-8 — checked once up
/// front, so every text slice after it is valid UTF-8 and no later decoding step can fail or
/// substitute characters. Gives the body as text (checked once, for both readers).
fn check_bytes(body: &[u8]) -> Result<&str, FaultReason> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(FaultReason::Empty);
    }
    // The same check as `std::str::from_utf8`, a vector at a time (a third of its instructions
    // on a request body, which is all ASCII).
    simdutf8::basic::from_utf8(body).map_err(|_| FaultReason::InvalidUtf8)
}

/// How many XML events pass between two looks at the clock.
const EVENTS_PER_CLOCK_CHECK: u32 = 64;

struct Parser<'l> {
    limits: &'l XmlLimits,
    stack: Vec<Frame>,
    elements: usize,
    root_seen: bool,
    root_closed: bool,
    /// The text of the leaf being read.
    text: String,
    truncated: bool,
    request: RawRequest<'static>,
    /// The question being read, `None` past the question limit.
    question: Option<RawQuestion<'static>>,
    /// Namespace declarations of all open elements.
    bindings: Bindings,
    deadline: Option<Instant>,
}

impl<'l> Parser<'l> {
    fn new(limits: &'l XmlLimits) -> Self {
        Parser {
            limits,
            stack: Vec::with_capacity(16),
            elements: 0,
            root_seen: false,
            root_closed: false,
            text: String::new(),
            truncated: false,
            request: RawRequest::default(),
            question: None,
            bindings: Bindings::default(),
            deadline: None,
        }
    }

    fn run(mut self, body: &[u8]) -> Result<RawRequest<'static>, FaultReason> {
        let mut reader = Reader::from_reader(body);
        {
            let config = reader.config_mut();
            config.expand_empty_elements = true;
            config.check_end_names = true;
            config.check_comments = true;
            config.trim_text(false);
        }
        let mut first = true;
        let mut events = 0u32;
        loop {
            events = events.wrapping_add(1);
            if events % EVENTS_PER_CLOCK_CHECK == 0
                && self.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Err(FaultReason::TimeBudget);
            }
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(_) => return Err(FaultReason::NotWellFormed(reader.error_position())),
            };
            match event {
                Event::Decl(decl) => {
                    if !first {
                        return Err(FaultReason::NotWellFormed(reader.buffer_position()));
                    }
                    if let Some(encoding) = decl.encoding() {
                        let encoding = encoding
                            .map_err(|_| FaultReason::NotWellFormed(reader.buffer_position()))?;
                        if !encoding.eq_ignore_ascii_case(b"utf-8")
                            && !encoding.eq_ignore_ascii_case(b"utf8")
                        {
                            return Err(FaultReason::NotUtf8Declared);
                        }
                    }
                }
                Event::DocType(_) => return Err(FaultReason::Dtd),
                Event::PI(_) => return Err(FaultReason::ProcessingInstruction),
                Event::Comment(_) => {}
                Event::Start(start) => self.start(&reader, &start)?,
                Event::End(_) => self.end()?,
                Event::Empty(_) => {
                    // expand_empty_elements turns these into Start + End.
                    return Err(FaultReason::NotWellFormed(reader.buffer_position()));
                }
                Event::Text(text) => {
                    let text = text.unescape().map_err(|_| FaultReason::Entity)?;
                    self.text(&text)?;
                }
                Event::CData(cdata) => {
                    let raw = cdata.into_inner();
                    let text = std::str::from_utf8(&raw).map_err(|_| FaultReason::InvalidUtf8)?;
                    self.text(text)?;
                }
                Event::Eof => break,
            }
            first = false;
        }
        if !self.root_seen {
            return Err(FaultReason::NotSoap);
        }
        if !self.root_closed {
            return Err(FaultReason::Truncated);
        }
        Ok(self.request)
    }

    fn start(&mut self, reader: &Reader<&[u8]>, start: &BytesStart<'_>) -> Result<(), FaultReason> {
        if self.root_closed {
            return Err(FaultReason::TrailingContent);
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(FaultReason::TooDeep(self.limits.max_depth));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(FaultReason::TooManyElements(self.limits.max_elements));
        }
        let (declared, must_understand) = self.attributes(reader, start)?;
        let namespace = self.bindings.element(start.name());
        if namespace == Ns::UnknownPrefix {
            return Err(FaultReason::UnknownPrefix);
        }
        let local_name = start.local_name();
        let local = local_name.as_ref();
        let is_soap = namespace == Ns::Soap11;

        let node = match self.stack.last() {
            None => {
                self.root_seen = true;
                if is_soap && local == b"Envelope" {
                    Node::Envelope
                } else if local == b"Envelope" {
                    return Err(FaultReason::VersionMismatch);
                } else {
                    return Err(FaultReason::NotSoap);
                }
            }
            Some(parent) => match parent.node {
                Node::Envelope => match (is_soap, local) {
                    // SOAP 1.1 section 4.1: an optional Header first, then the Body.
                    (true, b"Header") if parent.seen & Node::Body.bit() == 0 => Node::Header,
                    (true, b"Body") => Node::Body,
                    _ => return Err(FaultReason::UnexpectedElement("Envelope")),
                },
                Node::Header => {
                    if must_understand {
                        return Err(FaultReason::MustUnderstand);
                    }
                    Node::HeaderContent
                }
                Node::HeaderContent => Node::HeaderContent,
                Node::Body => {
                    if namespace == Ns::Target && local == OPERATION.as_bytes() {
                        Node::Operation
                    } else {
                        return Err(FaultReason::WrongOperation);
                    }
                }
                parent_node => {
                    if parent_node.is_leaf() {
                        return Err(FaultReason::UnexpectedElement(parent_node.name()));
                    }
                    if namespace != Ns::None {
                        return Err(FaultReason::QualifiedInner);
                    }
                    parent_node
                        .inner_child(local)
                        .ok_or(FaultReason::UnexpectedElement(parent_node.name()))?
                }
            },
        };

        if let Some(parent) = self.stack.last_mut() {
            if !node.repeatable() && parent.seen & node.bit() != 0 {
                return Err(match parent.node {
                    Node::Body => FaultReason::WrongOperation,
                    _ => FaultReason::Duplicated {
                        child: node.name(),
                        parent: parent.node.name(),
                    },
                });
            }
            parent.seen |= node.bit();
        }

        match node {
            Node::Bericht => self.request.context.bericht = true,
            Node::Tijdstip => self.request.context.tijdstip = true,
            Node::Afzender => self.request.context.afzender = true,
            Node::Vraag => {
                self.request.question_count += 1;
                // Past the limit the rest is still read (it must be well-formed), not kept.
                self.question = (self.request.question_count <= self.limits.max_questions)
                    .then(RawQuestion::default);
            }
            leaf if leaf.is_leaf() => {
                self.text.clear();
                self.truncated = false;
            }
            _ => {}
        }
        self.stack.push(Frame {
            node,
            seen: 0,
            namespaces: declared,
        });
        Ok(())
    }

    /// Reads the attributes of `start` once: counts them, puts its namespace declarations in
    /// scope (refusing an element over the limits as soon as it passes one), and tells whether it
    /// carries `soap:mustUnderstand="1"` (SOAP 1.1 section 4.2.3). Returns the number of
    /// declarations. Duplicated attributes are not looked for (that check is quadratic, and a
    /// duplicate changes nothing the service reads).
    fn attributes(
        &mut self,
        reader: &Reader<&[u8]>,
        start: &BytesStart<'_>,
    ) -> Result<(usize, bool), FaultReason> {
        let limits = self.limits;
        let malformed = || FaultReason::NotWellFormed(reader.buffer_position());
        let (mut attributes, mut declared) = (0usize, 0usize);
        // The prefixes of `mustUnderstand` attributes whose value is true: resolved once all the
        // element's own declarations are in scope (attribute order does not matter in XML).
        let mut must_understand: Vec<Vec<u8>> = Vec::new();
        for attribute in start.attributes().with_checks(false) {
            let attribute = attribute.map_err(|_| malformed())?;
            attributes += 1;
            if attributes > limits.max_attributes {
                return Err(FaultReason::TooManyAttributes(limits.max_attributes));
            }
            let key = attribute.key;
            let binding = match (key.prefix().map(|p| p.into_inner()), key.as_ref()) {
                (None, b"xmlns") => Some(Vec::new()),
                (Some(b"xmlns"), _) if !key.local_name().as_ref().is_empty() => {
                    Some(key.local_name().as_ref().to_vec())
                }
                (Some(b"xmlns"), _) => return Err(malformed()),
                _ => None,
            };
            if let Some(prefix) = binding {
                declared += 1;
                if declared > limits.max_namespace_declarations {
                    return Err(FaultReason::TooManyNamespaceDeclarations(
                        limits.max_namespace_declarations,
                    ));
                }
                if self.bindings.entries.len() >= limits.max_namespaces_in_scope {
                    return Err(FaultReason::TooManyNamespacesInScope(
                        limits.max_namespaces_in_scope,
                    ));
                }
                let uri = attribute.value.as_ref();
                // Namespaces in XML 1.0, section 3: `xml` keeps its own URI, `xmlns` and the two
                // reserved URIs are bound to nothing else.
                // A prefix cannot be undeclared (`xmlns:p=""`), only the default namespace.
                let reserved = match prefix.as_slice() {
                    b"" => uri == XML_NS || uri == XMLNS_NS,
                    b"xml" => uri != XML_NS,
                    b"xmlns" => true,
                    _ => uri.is_empty() || uri == XML_NS || uri == XMLNS_NS,
                };
                if reserved {
                    return Err(malformed());
                }
                self.bindings.entries.push((prefix, uri.to_vec()));
            } else if key.local_name().as_ref() == b"mustUnderstand" {
                let value = attribute.value.as_ref();
                if let (Some(prefix), b"1" | b"true") = (key.prefix(), value) {
                    must_understand.push(prefix.as_ref().to_vec());
                }
            }
        }
        let must_understand = must_understand
            .iter()
            .any(|prefix| self.bindings.lookup(prefix) == Some(SOAP11_ENVELOPE_NS.as_bytes()));
        Ok((declared, must_understand))
    }

    fn end(&mut self) -> Result<(), FaultReason> {
        // check_end_names guarantees the end tag matches the open element.
        let Some(frame) = self.stack.pop() else {
            return Err(FaultReason::TrailingContent);
        };
        let in_scope = self.bindings.entries.len() - frame.namespaces;
        self.bindings.entries.truncate(in_scope);
        for &child in frame.node.required_children() {
            if frame.seen & child.bit() == 0 {
                return Err(FaultReason::Missing {
                    child: child.name(),
                    parent: frame.node.name(),
                });
            }
        }
        let node = frame.node;
        if node.is_leaf() {
            let value = Value {
                text: Cow::Owned(self.text.trim_matches(is_xml_space).to_string()),
                truncated: self.truncated,
            };
            self.store(node, value);
        }
        match node {
            Node::Envelope => self.root_closed = true,
            Node::Vraag => {
                if let Some(question) = self.question.take() {
                    self.request.questions.push(question);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn store(&mut self, node: Node, value: Value<'static>) {
        let context = &mut self.request.context;
        let slot = match node {
            Node::Naam => &mut context.naam,
            Node::Versie => &mut context.versie,
            Node::BerichtType => &mut context.bericht_type,
            Node::Datum => &mut context.datum,
            Node::Tijd => &mut context.tijd,
            Node::Identificatie => &mut context.identificatie,
            Node::AfzenderReferte => &mut context.referte,
            Node::Hoedanigheid => &mut context.hoedanigheid,
            Node::Gebruiker => &mut context.gebruiker,
            question_leaf => {
                let Some(question) = self.question.as_mut() else {
                    return;
                };
                match question_leaf {
                    Node::VraagReferte => &mut question.referte,
                    Node::Insz => &mut question.insz,
                    Node::Referentiedatum => &mut question.referentiedatum,
                    Node::Premiejaar => &mut question.premiejaar,
                    _ => return,
                }
            }
        };
        *slot = Some(value);
    }

    fn text(&mut self, text: &str) -> Result<(), FaultReason> {
        if !text.chars().all(is_xml_char) {
            return Err(FaultReason::InvalidCharacter);
        }
        match self.stack.last() {
            None if self.root_closed => {
                if text.chars().all(is_xml_space) {
                    Ok(())
                } else {
                    Err(FaultReason::TrailingContent)
                }
            }
            None => {
                if text.chars().all(is_xml_space) {
                    Ok(())
                } else {
                    Err(FaultReason::TextOutsideEnvelope)
                }
            }
            Some(frame) if frame.node.is_leaf() => {
                self.append(text);
                Ok(())
            }
            Some(frame) if frame.node == Node::HeaderContent => Ok(()),
            Some(frame) => {
                if text.chars().all(is_xml_space) {
                    Ok(())
                } else {
                    Err(FaultReason::UnexpectedText(frame.node.name()))
                }
            }
        }
    }

    /// Appends to the current leaf, keeping at most [`MAX_VALUE_BYTES`] (on a char boundary).
    fn append(&mut self, text: &str) {
        if self.truncated {
            return;
        }
        let room = MAX_VALUE_BYTES.saturating_sub(self.text.len());
        if text.len() <= room {
            self.text.push_str(text);
            return;
        }
        // Leading whitespace is trimmed later; do not let it alone use up the room.
        if self.text.trim_matches(is_xml_space).is_empty() {
            self.text.clear();
            let text = text.trim_start_matches(is_xml_space);
            if text.len() <= MAX_VALUE_BYTES {
                self.text.push_str(text);
                return;
            }
            self.push_cut(text, MAX_VALUE_BYTES);
        } else {
            self.push_cut(text, room);
        }
    }

    fn push_cut(&mut self, text: &str, room: usize) {
        let mut cut = room.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&text[..cut]);
        self.truncated = true;
    }
}

/// XML 1.0 `S`.
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// XML 1.0 `Char`: what may appear in a document at all (so whatever is echoed stays well-formed).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(inner: &str) -> String {
        format!(
            "<s:Envelope xmlns:s=\"{SOAP11_ENVELOPE_NS}\"><s:Body><g:GeefAdviesInburgeringsplicht xmlns:g=\"{TARGET_NS}\">{inner}</g:GeefAdviesInburgeringsplicht></s:Body></s:Envelope>"
        )
    }

    const VERZOEK: &str = "<Verzoek><Context><Naam>GeefAdviesInburgeringsplicht</Naam><Versie>01.00.0000</Versie><Bericht><Type>VRAAG</Type><Tijdstip><Datum>2026-01-02</Datum><Tijd>10:11:12.123</Tijd></Tijdstip><Afzender><Identificatie>demo.kbi-advice</Identificatie><Referte>r-1</Referte><Hoedanigheid>9999</Hoedanigheid></Afzender></Bericht></Context><Vragen><Vraag><Referte>q1</Referte><Inhoud><Criteria><INSZ> 90011510185 </INSZ><Referentiedatum>2026-01-01</Referentiedatum></Criteria></Inhoud></Vraag></Vragen></Verzoek>";

    #[test]
    fn reads_context_and_questions() {
        let body = envelope(VERZOEK);
        let request = parse(body.as_bytes(), &XmlLimits::default()).unwrap();
        assert_eq!(
            request.context.naam.unwrap().text,
            "GeefAdviesInburgeringsplicht"
        );
        assert_eq!(request.context.referte.unwrap().text, "r-1");
        assert!(request.context.gebruiker.is_none());
        assert_eq!(request.question_count, 1);
        let question = &request.questions[0];
        assert_eq!(question.insz.as_ref().unwrap().text, "90011510185");
        assert_eq!(question.referte.as_ref().unwrap().text, "q1");
        assert!(question.premiejaar.is_none());
    }

    #[test]
    fn long_values_are_cut_and_marked() {
        let long = "7".repeat(5000);
        let body = envelope(&VERZOEK.replace("q1", &long));
        let request = parse(body.as_bytes(), &XmlLimits::default()).unwrap();
        let referte = request.questions[0].referte.as_ref().unwrap();
        assert!(referte.truncated);
        assert_eq!(referte.text.len(), MAX_VALUE_BYTES);
        assert_eq!(referte.within(36), None);
    }

    #[test]
    fn questions_past_the_limit_are_counted_not_kept() {
        let limits = XmlLimits {
            max_questions: 2,
            ..XmlLimits::default()
        };
        let vraag = "<Vraag><Referte>q</Referte><Inhoud><Criteria><INSZ>1</INSZ></Criteria></Inhoud></Vraag>";
        let body = envelope(&VERZOEK.replace("<Vragen>", &format!("<Vragen>{}", vraag.repeat(4))));
        let request = parse(body.as_bytes(), &limits).unwrap();
        assert_eq!(request.question_count, 5);
        assert_eq!(request.questions.len(), 2);
    }

    #[test]
    fn a_duplicated_singular_element_is_named() {
        let body = envelope(&VERZOEK.replace("<Versie>", "<Naam>x</Naam><Versie>"));
        assert_eq!(
            parse(body.as_bytes(), &XmlLimits::default()),
            Err(FaultReason::Duplicated {
                child: "Naam",
                parent: "Context"
            })
        );
    }

    #[test]
    fn namespace_declarations_are_refused_before_they_are_resolved() {
        let limits = XmlLimits::default();
        let flood: String = (0..80_000)
            .map(|i| format!(" xmlns:p{i:x}=\"u\""))
            .collect();
        let body = envelope(VERZOEK).replace(
            "<g:GeefAdviesInburgeringsplicht ",
            &format!("<g:GeefAdviesInburgeringsplicht{flood} "),
        );
        assert_eq!(
            parse(body.as_bytes(), &limits),
            Err(FaultReason::TooManyNamespaceDeclarations(32))
        );
        // Within the per-element limit but over the limit in scope.
        let tight = XmlLimits {
            max_namespaces_in_scope: 2,
            ..XmlLimits::default()
        };
        let body = envelope(&VERZOEK.replace("<Verzoek>", "<Verzoek xmlns:x=\"urn:x\">"));
        assert_eq!(parse(body.as_bytes(), &limits).map(|_| ()), Ok(()));
        assert_eq!(
            parse(body.as_bytes(), &tight),
            Err(FaultReason::TooManyNamespacesInScope(2))
        );
        // Declarations are released when their element closes: Naam's is gone when Versie
        // declares its own (4 in scope at most, 5 if Naam's stayed).
        let body = envelope(
            &VERZOEK
                .replace(
                    "<Context>",
                    "<Context xmlns:x=\"urn:x\"><Naam xmlns:y=\"urn:y\">a</Naam>",
                )
                .replace("<Naam>GeefAdviesInburgeringsplicht</Naam>", "")
                .replace("<Versie>", "<Versie xmlns:z=\"urn:z\">"),
        );
        let scoped = XmlLimits {
            max_namespaces_in_scope: 4,
            ..XmlLimits::default()
        };
        assert!(parse(body.as_bytes(), &scoped).is_ok());
    }

    #[test]
    fn namespaces_resolve_as_xml_says() {
        let limits = XmlLimits::default();
        // The operation in a default namespace, the inner elements taken out of it again.
        let body = envelope(VERZOEK)
            .replace(
                "<g:GeefAdviesInburgeringsplicht xmlns:g=",
                "<GeefAdviesInburgeringsplicht xmlns=",
            )
            .replace(
                "</g:GeefAdviesInburgeringsplicht>",
                "</GeefAdviesInburgeringsplicht>",
            )
            .replace("<Verzoek>", "<Verzoek xmlns=\"\">");
        assert!(parse(body.as_bytes(), &limits).is_ok());
        // Without `xmlns=""` the inner elements are in the operation's namespace.
        let qualified = body.replace("<Verzoek xmlns=\"\">", "<Verzoek>");
        assert_eq!(
            parse(qualified.as_bytes(), &limits),
            Err(FaultReason::QualifiedInner)
        );
        let unknown = envelope(&VERZOEK.replace("<Vragen>", "<x:Vragen>"));
        assert_eq!(
            parse(unknown.as_bytes(), &limits),
            Err(FaultReason::UnknownPrefix)
        );
        // A prefix cannot be undeclared, nor bound to the reserved URIs.
        for declaration in [
            "xmlns:p=\"\"",
            "xmlns:xml=\"urn:x\"",
            "xmlns:p=\"http://www.w3.org/2000/xmlns/\"",
        ] {
            let body = envelope(&VERZOEK.replace("<Vragen>", &format!("<Vragen {declaration}>")));
            assert!(
                matches!(
                    parse(body.as_bytes(), &limits),
                    Err(FaultReason::NotWellFormed(_))
                ),
                "{declaration}"
            );
        }
        // mustUnderstand counts whatever the attribute order on the header entry.
        let header = |entry: &str| {
            envelope(VERZOEK).replace("<s:Body>", &format!("<s:Header>{entry}</s:Header><s:Body>"))
        };
        let body = header("<h:T e:mustUnderstand=\"1\" xmlns:h=\"urn:h\" xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"/>");
        assert_eq!(
            parse(body.as_bytes(), &limits),
            Err(FaultReason::MustUnderstand)
        );
        let body = header("<h:T e:mustUnderstand=\"1\" xmlns:h=\"urn:h\" xmlns:e=\"urn:other\"/>");
        assert!(parse(body.as_bytes(), &limits).is_ok());
    }

    #[test]
    fn attributes_are_capped_per_element() {
        let limits = XmlLimits {
            max_attributes: 4,
            ..XmlLimits::default()
        };
        let attributes: String = (0..5).map(|i| format!(" a{i}=\"x\"")).collect();
        let body = envelope(&VERZOEK.replace("<Vragen>", &format!("<Vragen{attributes}>")));
        assert_eq!(
            parse(body.as_bytes(), &limits),
            Err(FaultReason::TooManyAttributes(4))
        );
        let body = envelope(&VERZOEK.replace("<Vragen>", "<Vragen a=\"1\" b=\"2\">"));
        assert!(parse(body.as_bytes(), &limits).is_ok());
    }

    #[test]
    fn a_passed_deadline_ends_the_parse() {
        let vraag = "<Vraag><Referte>q</Referte><Inhoud><Criteria><INSZ>1</INSZ></Criteria></Inhoud></Vraag>";
        let body = envelope(&VERZOEK.replace("<Vragen>", &format!("<Vragen>{}", vraag.repeat(50))));
        let past = Instant::now();
        assert_eq!(
            parse_until(body.as_bytes(), &XmlLimits::default(), Some(past)).0,
            Err(FaultReason::TimeBudget)
        );
        assert_eq!(FaultReason::TimeBudget.faultcode(), "soap:Server");
        let later = Instant::now() + std::time::Duration::from_secs(3600);
        assert!(
            parse_until(body.as_bytes(), &XmlLimits::default(), Some(later))
                .0
                .is_ok()
        );
    }

    #[test]
    fn xml_char_excludes_controls_and_surrogate_range_ends() {
        assert!(!is_xml_char('\u{0}'));
        assert!(!is_xml_char('\u{1B}'));
        assert!(!is_xml_char('\u{FFFE}'));
        assert!(is_xml_char('é'));
        assert!(is_xml_char('\u{1F600}'));
    }
}
