//! Streaming reader of GeefDossierKBI 01.00 replies: one reply at a time from any byte stream
//! (a bare reply, a SOAP 1.1 envelope, replies concatenated or wrapped in any root element).
//!
//! One pass with quick-xml's pull parser and a stack of the open elements, as the SOAP door's
//! parser (`api::soap::parse`) does: the reader keeps only the leaf values the mapping needs
//! (each capped at [`MAX_VALUE_BYTES`]) and counts the rest. Hostile input is refused as
//! `security-and-audit.md` asks: no DTD, no entities, depth at most [`MAX_DEPTH`], at most
//! [`MAX_ATTRIBUTES`] attributes (namespace declarations included) per element, no single
//! tag or text longer than [`MAX_EVENT_BYTES`] (enforced below quick-xml, so its buffer never
//! grows past it), at most [`MAX_ELEMENTS_PER_REPLY`] elements per reply.
//!
//! Error texts name our own element names and a byte offset, never input values.

use std::collections::BTreeMap;
use std::io::{self, BufRead};

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::dossier::*;

/// Namespace of `GeefDossierKBIResponse` (only the root of a reply is qualified).
pub(crate) const RESPONSE_NS: &str =
    "http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be";
/// The reply's root element.
pub(crate) const RESPONSE: &str = "GeefDossierKBIResponse";

/// Deepest nesting accepted, wrappers included (a dossier needs about 16).
pub(crate) const MAX_DEPTH: usize = 32;
/// Most attributes, namespace declarations included, on one element.
pub(crate) const MAX_ATTRIBUTES: usize = 32;
/// Longest single tag, text, comment or CDATA section.
pub(crate) const MAX_EVENT_BYTES: usize = 1 << 20;
/// Most elements in one reply.
pub(crate) const MAX_ELEMENTS_PER_REPLY: usize = 100_000;
/// The most bytes kept of one value; a longer value is kept as "too long" (never valid).
pub const MAX_VALUE_BYTES: usize = 1024;
/// Most values and records (contracts, documents, …) one reply may keep: a real dossier keeps
/// a few dozen. With [`MAX_KEPT_BYTES_PER_REPLY`] it bounds the memory of one reply, hence of
/// one worker, whatever the input (issue 24, item 5).
pub const MAX_KEPT_PER_REPLY: usize = 10_000;
/// Most bytes of values one reply may keep.
pub const MAX_KEPT_BYTES_PER_REPLY: usize = 1 << 20;

/// Why the XML of a file was refused; the reading of that file stops there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("DTDs are not accepted (no DOCTYPE, no entity declarations)")]
    Dtd,
    #[error("entity reference or invalid character reference (entities are not accepted)")]
    Entity,
    #[error("processing instructions are not accepted")]
    ProcessingInstruction,
    #[error("elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("more than {MAX_ATTRIBUTES} attributes or namespace declarations on one element")]
    TooManyAttributes,
    #[error("a tag, text or comment longer than {MAX_EVENT_BYTES} bytes")]
    EventTooLong,
    #[error("more than {MAX_ELEMENTS_PER_REPLY} elements in one reply")]
    TooManyElements,
    #[error("more than {MAX_KEPT_PER_REPLY} values and records kept in one reply")]
    TooManyKept,
    #[error("more than {MAX_KEPT_BYTES_PER_REPLY} bytes of values kept in one reply")]
    TooManyKeptBytes,
    #[error("the file is refused: {0}")]
    Refused(String),
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("only UTF-8 encoded XML is accepted")]
    NotUtf8Declared,
    #[error("XML is not well-formed: {0}")]
    NotWellFormed(String),
    #[error("the file ends inside an element (truncated?)")]
    Truncated,
    #[error("cannot read the file (corrupt compressed data?): {0}")]
    Read(String),
    #[error("a SOAP Fault instead of a reply: the dossier is unknown, ask again")]
    Fault,
    #[error("a reply of another service: Repliek outside GeefDossierKBIResponse")]
    OtherService,
    #[error("{child} occurs more than once inside {parent}")]
    Duplicated {
        child: &'static str,
        parent: &'static str,
    },
    #[error("unexpected element inside {0}")]
    UnexpectedElement(&'static str),
    #[error("unexpected text inside {0}")]
    UnexpectedText(&'static str),
}

/// An [`XmlError`] with where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub error: XmlError,
    /// Byte offset in the (decompressed) stream.
    pub offset: u64,
    /// Our path of the element being read (names of the elements we know).
    pub path: String,
}

/// Elements the mapping does not use, counted per group (M20), and elements not in the schema.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub ignored: BTreeMap<&'static str, u64>,
    pub unknown: BTreeMap<String, u64>,
}

/// Distinct unknown element paths remembered (the rest counted under one key), so that a hostile
/// file cannot grow the report.
const MAX_UNKNOWN_KEYS: usize = 100;

impl Tally {
    fn ignore(&mut self, group: &'static str) {
        *self.ignored.entry(group).or_insert(0) += 1;
    }

    fn unknown(&mut self, parent: &'static str, local: &[u8]) {
        // A name is shown only when it looks like a schema name: element names are input too,
        // and one with a long run of digits could carry an INSZ into the report.
        let longest_digit_run = local
            .split(|b| !b.is_ascii_digit())
            .map(<[u8]>::len)
            .max()
            .unwrap_or(0);
        let name: String = if local.len() <= 64
            && longest_digit_run <= 2
            && local
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-' || *b == b'.')
        {
            String::from_utf8_lossy(local).into_owned()
        } else {
            "(unprintable name)".into()
        };
        let key = format!("{parent}/{name}");
        let key = if self.unknown.len() >= MAX_UNKNOWN_KEYS && !self.unknown.contains_key(&key) {
            "(other)".to_string()
        } else {
            key
        };
        *self.unknown.entry(key).or_insert(0) += 1;
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        for (k, v) in other.ignored {
            *self.ignored.entry(k).or_insert(0) += v;
        }
        for (k, v) in other.unknown {
            *self.unknown.entry(k).or_insert(0) += v;
        }
    }
}

/// Marker of the event size limit inside an `io::Error`.
#[derive(Debug)]
struct EventTooLong;

impl std::fmt::Display for EventTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("event too long")
    }
}

impl std::error::Error for EventTooLong {}

/// Hands quick-xml at most `budget` bytes per event, so no event can grow its buffer further.
struct Limited<R> {
    inner: R,
    budget: usize,
}

impl<R: BufRead> io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Limited<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let budget = self.budget;
        let available = self.inner.fill_buf()?;
        if budget == 0 && !available.is_empty() {
            return Err(io::Error::other(EventTooLong));
        }
        Ok(&available[..available.len().min(budget)])
    }

    fn consume(&mut self, amount: usize) {
        self.budget = self.budget.saturating_sub(amount);
        self.inner.consume(amount);
    }
}

/// Where a `Periode` belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Doelgroep,
    UitstelA,
    UitstelO,
    /// `Traject/Beheerder/Periode` (profile mode).
    Beheerder,
    /// `NT2Cursus/Periode` (profile mode).
    Nt2Cursus,
}

impl Owner {
    /// A period read only in profile mode: inside a subtree an import skips.
    fn is_profile(self) -> bool {
        matches!(self, Owner::Beheerder | Owner::Nt2Cursus)
    }
}

/// The elements the reader knows, by place (inner elements are unqualified and names repeat:
/// `Type`, `Periode`, `Besluit` mean different things in different places).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// Anything outside a reply (envelope, batch root, SOAP header).
    Wrapper,
    Response,
    Repliek,
    Context,
    CtxNaam,
    CtxVersie,
    Antwoorden,
    Antwoord,
    Inhoud,
    /// `Uitzonderingen`; `true` at answer level.
    Uitzonderingen(bool),
    Uitzondering(bool),
    UitzIdent(bool),
    UitzType(bool),
    Dossier,
    Personalia,
    Insz,
    Doelgroep,
    DgCode,
    DgType,
    DgRedenVrijstelling,
    Periode(Owner),
    Begin(Owner),
    Einde(Owner),
    Aanmelding,
    AanType,
    AanDatum,
    Contracten,
    Contract,
    ContractDatum,
    Addenda,
    Opschortingen,
    UitstellenA,
    UitstelA,
    UitstellenO,
    UitstelO,
    Trajecten,
    Traject,
    TrajectType,
    TrajectBesluit,
    BesluitCode,
    BesluitDatum,
    TrajectOnderdelen,
    TrajectOnderdeel,
    BehaaldeAttesten,
    Document,
    DocSoort,
    DocType,
    DocAanmaak,
    DocOndertekening,
    Inbreuken,
    Inbreuk,
    InbType,
    InbVaststelling,
    InbIngebreke,
    Rechtzetting,
    RzAanmaak,
    RzOndertekening,
    Vorming,
    PloCursussen,
    PloCursus,
    Talenkennis,
    Nt2Niveau,
    // Profile mode only (an export, `protocols.md` section 3): each sits where an import skips
    // a subtree, so an import never meets them.
    Geboortedatum,
    Geslacht,
    GeslachtCode,
    Beheerder,
    BeheerderVestiging,
    KbiNummer,
    OnderdeelType,
    OnderdeelBesluit,
    OnderdeelBesluitCode,
    OnderdeelBesluitReden,
    OnderdeelBesluitDatum,
    Nt2Hoogst,
    Nt2Cursussen,
    Nt2Cursus,
    Toeleidingen,
    Toeleiding,
    ToeleidingStart,
    ToeleidingStatus,
    /// Inside a subtree the reader skips (ignored by design, unknown, or counted as a whole).
    Skip,
}

impl Node {
    fn name(self) -> &'static str {
        use Node::*;
        match self {
            Wrapper => "(outside a reply)",
            Response => RESPONSE,
            Repliek => "Repliek",
            Context => "Repliek/Context",
            CtxNaam => "Repliek/Context/Naam",
            CtxVersie => "Repliek/Context/Versie",
            Antwoorden => "Repliek/Antwoorden",
            Antwoord => "Repliek/Antwoorden/Antwoord",
            Inhoud => "Antwoord/Inhoud",
            Uitzonderingen(_) => "Uitzonderingen",
            Uitzondering(_) => "Uitzonderingen/Uitzondering",
            UitzIdent(_) => "Uitzondering/Identificatie",
            UitzType(_) => "Uitzondering/Type",
            Dossier => "KBIDossier",
            Personalia => "Personalia",
            Insz => "Personalia/INSZ",
            Doelgroep => "Doelgroep",
            DgCode => "Doelgroep/Code",
            DgType => "Doelgroep/Type",
            DgRedenVrijstelling => "Doelgroep/RedenVrijstellingVanDeVerplichting",
            Periode(_) => "Periode",
            Begin(_) => "Periode/Begin",
            Einde(_) => "Periode/Einde",
            Aanmelding => "Aanmelding",
            AanType => "Aanmelding/Type",
            AanDatum => "Aanmelding/DatumAanmelding",
            Contracten => "Contracten",
            Contract => "Contracten/Contract",
            ContractDatum => "Contract/DatumRegistratie",
            Addenda => "Contract/Addenda",
            Opschortingen => "Contract/Opschortingen",
            UitstellenA => "UitstellenVanAanmelding",
            UitstelA => "UitstellenVanAanmelding/UitstelVanAanmelding",
            UitstellenO => "UitstellenVanOndertekening",
            UitstelO => "UitstellenVanOndertekening/UitstelVanOndertekening",
            Trajecten => "Trajecten",
            Traject => "Trajecten/Traject",
            TrajectType => "Traject/Type",
            TrajectBesluit => "Traject/Besluit",
            BesluitCode => "Traject/Besluit/Code",
            BesluitDatum => "Traject/Besluit/DatumToekenning",
            TrajectOnderdelen => "Traject/TrajectOnderdelen",
            TrajectOnderdeel => "TrajectOnderdelen/TrajectOnderdeel",
            BehaaldeAttesten => "BehaaldeAttesten",
            Document => "BehaaldeAttesten/Document",
            DocSoort => "Document/Soort",
            DocType => "Document/Type",
            DocAanmaak => "Document/DatumAanmaak",
            DocOndertekening => "Document/DatumOndertekening",
            Inbreuken => "Inbreuken",
            Inbreuk => "Inbreuken/Inbreuk",
            InbType => "Inbreuk/Type",
            InbVaststelling => "Inbreuk/DatumVaststelling",
            InbIngebreke => "Inbreuk/DatumIngebrekestellingVerzonden",
            Rechtzetting => "Inbreuk/RechtzettingsFormulier",
            RzAanmaak => "RechtzettingsFormulier/DatumAanmaak",
            RzOndertekening => "RechtzettingsFormulier/DatumOndertekening",
            Vorming => "VormingsActiviteiten",
            PloCursussen => "VormingsActiviteiten/PLOCursussen",
            PloCursus => "PLOCursussen/PLOCursus",
            Talenkennis => "Talenkennis",
            Nt2Niveau => "Talenkennis/BehaaldNT2Niveau",
            Geboortedatum => "Personalia/Geboortedatum",
            Geslacht => "Personalia/Geslacht",
            GeslachtCode => "Personalia/Geslacht/Code",
            Beheerder => "Traject/Beheerder",
            BeheerderVestiging => "Beheerder/KBIVestiging",
            KbiNummer => "Beheerder/KBIVestiging/KbiNummer",
            OnderdeelType => "TrajectOnderdeel/Type",
            OnderdeelBesluit => "TrajectOnderdeel/Besluit",
            OnderdeelBesluitCode => "TrajectOnderdeel/Besluit/Code",
            OnderdeelBesluitReden => "TrajectOnderdeel/Besluit/Reden",
            OnderdeelBesluitDatum => "TrajectOnderdeel/Besluit/DatumToekenning",
            Nt2Hoogst => "BehaaldNT2Niveau/HoogstBehaald",
            Nt2Cursussen => "VormingsActiviteiten/NT2Cursussen",
            Nt2Cursus => "NT2Cursussen/NT2Cursus",
            Toeleidingen => "ToeleidingenDiplomaGelijkschakeling",
            Toeleiding => "ToeleidingenDiplomaGelijkschakeling/ToeleidingDiplomaGelijkschakeling",
            ToeleidingStart => "ToeleidingDiplomaGelijkschakeling/StartDatum",
            ToeleidingStatus => "ToeleidingDiplomaGelijkschakeling/Status",
            Skip => "(skipped element)",
        }
    }

    /// Leaves whose text the reader keeps.
    fn is_value(self) -> bool {
        use Node::*;
        matches!(
            self,
            CtxNaam
                | CtxVersie
                | UitzIdent(_)
                | UitzType(_)
                | Insz
                | DgCode
                | DgType
                | DgRedenVrijstelling
                | Begin(_)
                | Einde(_)
                | AanType
                | AanDatum
                | ContractDatum
                | TrajectType
                | BesluitCode
                | BesluitDatum
                | DocSoort
                | DocType
                | DocAanmaak
                | DocOndertekening
                | InbType
                | InbVaststelling
                | InbIngebreke
                | RzAanmaak
                | RzOndertekening
                | Geboortedatum
                | GeslachtCode
                | KbiNummer
                | OnderdeelType
                | OnderdeelBesluitCode
                | OnderdeelBesluitReden
                | OnderdeelBesluitDatum
                | Nt2Hoogst
                | ToeleidingStart
                | ToeleidingStatus
        )
    }

    /// Read only in profile mode, where an import skips the subtree. Such a node behaves as
    /// the skipped subtree did in everything an import can see: it is never checked as
    /// singular (a second one makes the value unusable instead, [`set_once`]), accepts stray
    /// text and, as a leaf, child elements (the value is then unusable), and is left out of
    /// error paths: the same file gives the same refusals and the same report in both modes.
    fn is_profile(self) -> bool {
        use Node::*;
        match self {
            Periode(o) | Begin(o) | Einde(o) => o.is_profile(),
            Geboortedatum
            | Geslacht
            | GeslachtCode
            | Beheerder
            | BeheerderVestiging
            | KbiNummer
            | OnderdeelType
            | OnderdeelBesluit
            | OnderdeelBesluitCode
            | OnderdeelBesluitReden
            | OnderdeelBesluitDatum
            | Nt2Hoogst
            | Nt2Cursussen
            | Nt2Cursus
            | Toeleidingen
            | Toeleiding
            | ToeleidingStart
            | ToeleidingStatus => true,
            _ => false,
        }
    }
}

/// What a child element becomes: a node we read, a group ignored by design (counted), or
/// unknown (counted apart).
enum Child {
    Read(Node),
    Ignore(&'static str),
    /// Profile mode: read, and counted under the group an import ignores it as (the report's
    /// M20 counts are the mapping's, the same in both modes).
    Counted(Node, &'static str),
    Unknown,
}

/// Profile mode only: the entries into subtrees an import skips, counted under the group the
/// import counts them as (see [`child`]). Apart, so that an import's match is the one it was.
fn profile_child(parent: Node, local: &[u8]) -> Option<Child> {
    use Child::*;
    use Node as N;
    Some(match (parent, local) {
        (N::Personalia, b"Geboortedatum") => Counted(N::Geboortedatum, "Personalia/Geboortedatum"),
        (N::Personalia, b"Geslacht") => Counted(N::Geslacht, "Personalia/Geslacht"),
        (N::Traject, b"Beheerder") => Counted(N::Beheerder, "Traject/Beheerder"),
        (N::TrajectOnderdeel, b"Type") => {
            Counted(N::OnderdeelType, "TrajectOnderdeel (type, period, status)")
        }
        (N::TrajectOnderdeel, b"Besluit") => Read(N::OnderdeelBesluit),
        (N::Nt2Niveau, b"HoogstBehaald") => Read(N::Nt2Hoogst),
        (N::Vorming, b"NT2Cursussen") => Counted(N::Nt2Cursussen, "VormingsActiviteiten"),
        (N::Dossier, b"ToeleidingenDiplomaGelijkschakeling") => {
            Counted(N::Toeleidingen, "ToeleidingenDiplomaGelijkschakeling")
        }
        _ => return None,
    })
}

fn child(parent: Node, local: &[u8], profile: bool) -> Child {
    use Child::*;
    use Node as N;
    if profile {
        if let Some(c) = profile_child(parent, local) {
            return c;
        }
    }
    match (parent, local) {
        (N::Response, b"Repliek") => Read(N::Repliek),
        (N::Repliek, b"Context") => Read(N::Context),
        (N::Repliek, b"Antwoorden") => Read(N::Antwoorden),
        (N::Repliek, b"Uitzonderingen") => Read(N::Uitzonderingen(false)),
        (N::Context, b"Naam") => Read(N::CtxNaam),
        (N::Context, b"Versie") => Read(N::CtxVersie),
        (N::Context, _) => Ignore("Repliek/Context (message data)"),
        (N::Antwoorden, b"Antwoord") => Read(N::Antwoord),
        (N::Antwoord, b"Inhoud") => Read(N::Inhoud),
        (N::Antwoord, b"Uitzonderingen") => Read(N::Uitzonderingen(true)),
        (N::Antwoord, b"Referte") => Ignore("Antwoord/Referte"),
        (N::Inhoud, b"KBIDossier") => Read(N::Dossier),
        (N::Uitzonderingen(a), b"Uitzondering") => Read(N::Uitzondering(a)),
        (N::Uitzondering(a), b"Identificatie") => Read(N::UitzIdent(a)),
        (N::Uitzondering(a), b"Type") => Read(N::UitzType(a)),
        (N::Uitzondering(_), _) => Ignore("Uitzondering (Oorsprong, Tijdstip, Diagnose, …)"),
        (N::Dossier, b"Personalia") => Read(N::Personalia),
        (N::Dossier, b"Doelgroep") => Read(N::Doelgroep),
        (N::Dossier, b"Aanmelding") => Read(N::Aanmelding),
        (N::Dossier, b"Contracten") => Read(N::Contracten),
        (N::Dossier, b"UitstellenVanAanmelding") => Read(N::UitstellenA),
        (N::Dossier, b"UitstellenVanOndertekening") => Read(N::UitstellenO),
        (N::Dossier, b"Trajecten") => Read(N::Trajecten),
        (N::Dossier, b"BehaaldeAttesten") => Read(N::BehaaldeAttesten),
        (N::Dossier, b"Inbreuken") => Read(N::Inbreuken),
        (N::Dossier, b"VormingsActiviteiten") => Read(N::Vorming),
        (N::Dossier, b"Talenkennis") => Read(N::Talenkennis),
        (N::Dossier, b"AfgelegdeTesten") => Ignore("AfgelegdeTesten"),
        (N::Dossier, b"Adviezen") => Ignore("Adviezen"),
        (N::Dossier, b"Perspectieven") => Ignore("Perspectieven"),
        (N::Dossier, b"ToeleidingenDiplomaGelijkschakeling") => {
            Ignore("ToeleidingenDiplomaGelijkschakeling")
        }
        (N::Dossier, b"ToeleidingenPartner") => Ignore("ToeleidingenPartner"),
        (N::Dossier, b"Wachtlijst") => Ignore("Wachtlijst"),
        (N::Dossier, b"VoorkeurenKlant") => Ignore("VoorkeurenKlant"),
        (N::Dossier, b"Gesprekken") => Ignore("Gesprekken"),
        (N::Dossier, b"Wooncode") => Ignore("Wooncode"),
        (N::Personalia, b"INSZ") => Read(N::Insz),
        (N::Personalia, b"Naam") => Ignore("Personalia/Naam"),
        (N::Personalia, b"Geboortedatum") => Ignore("Personalia/Geboortedatum"),
        (N::Personalia, b"Geslacht") => Ignore("Personalia/Geslacht"),
        (N::Personalia, b"AangemaaktDoor") => Ignore("Personalia/AangemaaktDoor"),
        (N::Doelgroep, b"Code") => Read(N::DgCode),
        (N::Doelgroep, b"Type") => Read(N::DgType),
        (N::Doelgroep, b"SubType") => Ignore("Doelgroep/SubType"),
        (N::Doelgroep, b"Periode") => Read(N::Periode(Owner::Doelgroep)),
        (N::Doelgroep, b"RedenGeenDoelgroep") => Ignore("Doelgroep/RedenGeenDoelgroep"),
        (N::Doelgroep, b"RedenVrijstellingVanDeVerplichting") => Read(N::DgRedenVrijstelling),
        (N::Periode(Owner::Beheerder), b"Einde") => Read(N::Skip),
        (N::Periode(o), b"Begin") => Read(N::Begin(o)),
        (N::Periode(o), b"Einde") => Read(N::Einde(o)),
        (N::Periode(Owner::Beheerder | Owner::Nt2Cursus), _) => Read(N::Skip),
        (N::Aanmelding, b"Type") => Read(N::AanType),
        (N::Aanmelding, b"DatumAanmelding") => Read(N::AanDatum),
        (N::Aanmelding, b"AanmeldingsPlaats") => Ignore("Aanmelding/AanmeldingsPlaats"),
        (N::Aanmelding, b"Reden") => Ignore("Aanmelding/Reden"),
        (N::Contracten, b"Contract") => Read(N::Contract),
        (N::Contract, b"DatumRegistratie") => Read(N::ContractDatum),
        (N::Contract, b"Type") => Ignore("Contract/Type"),
        (N::Contract, b"AangemaaktDoor") => Ignore("Contract/AangemaaktDoor"),
        (N::Contract, b"OnderdeelMO" | b"OnderdeelNT2" | b"OnderdeelLO") => {
            Ignore("Contract/OnderdeelMO|NT2|LO")
        }
        (N::Contract, b"Addenda") => Read(N::Addenda),
        (N::Contract, b"Opschortingen") => Read(N::Opschortingen),
        (N::Addenda, b"Addendum") => Read(N::Skip),
        (N::Opschortingen, b"Opschorting") => Read(N::Skip),
        (N::UitstellenA, b"UitstelVanAanmelding") => Read(N::UitstelA),
        (N::UitstellenO, b"UitstelVanOndertekening") => Read(N::UitstelO),
        (N::UitstelA, b"Periode") => Read(N::Periode(Owner::UitstelA)),
        (N::UitstelO, b"Periode") => Read(N::Periode(Owner::UitstelO)),
        (N::UitstelA | N::UitstelO, b"Reden") => Ignore("UitstelVan…/Reden"),
        (N::Trajecten, b"Traject") => Read(N::Traject),
        (N::Traject, b"Type") => Read(N::TrajectType),
        (N::Traject, b"Besluit") => Read(N::TrajectBesluit),
        (N::Traject, b"Periode") => Ignore("Traject/Periode"),
        (N::Traject, b"Beheerder") => Ignore("Traject/Beheerder"),
        (N::Traject, b"Status") => Ignore("Traject/Status"),
        (N::Traject, b"TrajectOnderdelen") => Read(N::TrajectOnderdelen),
        (N::TrajectBesluit, b"Code") => Read(N::BesluitCode),
        (N::TrajectBesluit, b"DatumToekenning") => Read(N::BesluitDatum),
        (N::TrajectBesluit, b"Reden") => Ignore("Traject/Besluit/Reden"),
        (N::TrajectOnderdelen, b"TrajectOnderdeel") => Read(N::TrajectOnderdeel),
        (N::TrajectOnderdeel, b"Besluit") => Read(N::Skip),
        (N::TrajectOnderdeel, _) => Ignore("TrajectOnderdeel (type, period, status)"),
        (N::BehaaldeAttesten, b"Document") => Read(N::Document),
        (N::Document, b"Soort") => Read(N::DocSoort),
        (N::Document, b"Type") => Read(N::DocType),
        (N::Document, b"DatumAanmaak") => Read(N::DocAanmaak),
        (N::Document, b"DatumOndertekening") => Read(N::DocOndertekening),
        (N::Document, b"Id") => Ignore("Document/Id"),
        (N::Document, b"AangemaaktDoor") => Ignore("Document/AangemaaktDoor"),
        (N::Inbreuken, b"Inbreuk") => Read(N::Inbreuk),
        (N::Inbreuk, b"Type") => Read(N::InbType),
        (N::Inbreuk, b"DatumVaststelling") => Read(N::InbVaststelling),
        (N::Inbreuk, b"DatumIngebrekestellingVerzonden") => Read(N::InbIngebreke),
        (N::Inbreuk, b"RechtzettingsFormulier") => Read(N::Rechtzetting),
        (N::Inbreuk, b"SanctionerendeOverheid") => Ignore("Inbreuk/SanctionerendeOverheid"),
        (N::Inbreuk, b"Motivering") => Ignore("Inbreuk/Motivering"),
        (N::Inbreuk, b"FeitenRelaas") => Ignore("Inbreuk/FeitenRelaas"),
        (N::Rechtzetting, b"DatumAanmaak") => Read(N::RzAanmaak),
        (N::Rechtzetting, b"DatumOndertekening") => Read(N::RzOndertekening),
        (N::Rechtzetting, b"DocumentID") => Ignore("RechtzettingsFormulier/DocumentID"),
        (N::Rechtzetting, b"AangemaaktDoor") => Ignore("RechtzettingsFormulier/AangemaaktDoor"),
        (N::Vorming, b"PLOCursussen") => Read(N::PloCursussen),
        (N::Vorming, _) => Ignore("VormingsActiviteiten"),
        (N::PloCursussen, b"PLOCursus") => Read(N::PloCursus),
        (N::PloCursus, b"Besluit") => Read(N::Skip),
        (N::PloCursus, _) => Ignore("VormingsActiviteiten"),
        (N::Talenkennis, b"BehaaldNT2Niveau") => Read(N::Nt2Niveau),
        (N::Talenkennis, _) => Ignore("Talenkennis"),
        (N::Nt2Niveau, _) => Read(N::Skip),
        (N::Skip, _) => Read(N::Skip),
        // Inside the profile's subtrees (never reached in an import): what an export reads;
        // the rest is skipped uncounted, as inside the subtree an import skips.
        (N::Geslacht, b"Code") => Read(N::GeslachtCode),
        (N::Beheerder, b"Periode") => Read(N::Periode(Owner::Beheerder)),
        (N::Beheerder, b"KBIVestiging") => Read(N::BeheerderVestiging),
        (N::BeheerderVestiging, b"KbiNummer") => Read(N::KbiNummer),
        (N::OnderdeelBesluit, b"Code") => Read(N::OnderdeelBesluitCode),
        (N::OnderdeelBesluit, b"Reden") => Read(N::OnderdeelBesluitReden),
        (N::OnderdeelBesluit, b"DatumToekenning") => Read(N::OnderdeelBesluitDatum),
        (N::Nt2Cursussen, b"NT2Cursus") => Read(N::Nt2Cursus),
        (N::Nt2Cursus, b"Periode") => Read(N::Periode(Owner::Nt2Cursus)),
        (N::Toeleidingen, b"ToeleidingDiplomaGelijkschakeling") => Read(N::Toeleiding),
        (N::Toeleiding, b"StartDatum") => Read(N::ToeleidingStart),
        (N::Toeleiding, b"Status") => Read(N::ToeleidingStatus),
        (
            N::Geslacht
            | N::Beheerder
            | N::BeheerderVestiging
            | N::OnderdeelBesluit
            | N::Nt2Cursussen
            | N::Nt2Cursus
            | N::Toeleidingen
            | N::Toeleiding,
            _,
        ) => Read(N::Skip),
        _ => Unknown,
    }
}

/// Singular elements (schema `[0..1]`/`[1..1]`): a second one is an error, as in the SOAP door.
/// Profile nodes never are ([`Node::is_profile`]), listed here as one set with the others.
fn singular(node: Node) -> bool {
    use Node::*;
    !matches!(
        node,
        Wrapper
            | Response
            | Antwoord
            | Uitzondering(_)
            | Contract
            | UitstelA
            | UitstelO
            | Traject
            | Document
            | Inbreuk
            | TrajectOnderdeel
            | PloCursus
            | Skip
            | Periode(Owner::Beheerder | Owner::Nt2Cursus)
            | Begin(Owner::Beheerder | Owner::Nt2Cursus)
            | Einde(Owner::Beheerder | Owner::Nt2Cursus)
            | Geboortedatum
            | Geslacht
            | GeslachtCode
            | Beheerder
            | BeheerderVestiging
            | KbiNummer
            | OnderdeelType
            | OnderdeelBesluit
            | OnderdeelBesluitCode
            | OnderdeelBesluitReden
            | OnderdeelBesluitDatum
            | Nt2Hoogst
            | Nt2Cursussen
            | Nt2Cursus
            | Toeleidingen
            | Toeleiding
            | ToeleidingStart
            | ToeleidingStatus
    )
}

enum Step {
    Continue,
    Reply(Reply),
    End,
}

/// Distinct singular children tracked per element (a dossier element has about a dozen).
const SEEN: usize = 24;

struct Frame {
    node: Node,
    /// Singular children seen so far, without allocating per element.
    seen: [Option<Node>; SEEN],
    seen_len: usize,
    /// Something (an element or text) inside: for "empty element" counts.
    content: bool,
}

/// Reads replies one by one from a byte stream.
pub struct ReplyReader<R: BufRead> {
    reader: Reader<Limited<R>>,
    /// Namespace declarations on the elements outside replies and on the reply element
    /// (depth, prefix, URI): only the reply element is qualified, so only it is resolved, and
    /// quick-xml's namespace resolver (work on every element) is not needed.
    scopes: Vec<(usize, Vec<u8>, Vec<u8>)>,
    buf: Vec<u8>,
    stack: Vec<Frame>,
    text: String,
    text_too_long: bool,
    reply: Option<Reply>,
    elements: usize,
    /// Nodes and values kept for the current reply, and the bytes of its values.
    kept: usize,
    kept_bytes: usize,
    /// Replies started in this stream (the reply number of errors).
    pub replies: u64,
    pub tally: Tally,
    failed: bool,
    /// Profile mode: also read what an export needs ([`Profile`], [`Traject::beheerder`],
    /// [`Traject::onderdelen`]); see [`ReplyReader::with_profile`].
    profile: bool,
}

impl<R: BufRead> ReplyReader<R> {
    /// The reader in profile mode (an export, `protocols.md` section 3): every dossier also
    /// gets its [`Profile`] (`Dossier::profile` is `Some`), each [`Traject`] its `Beheerder`
    /// and `TrajectOnderdeel`s. Everything else is as [`ReplyReader::new`]: the same bounds,
    /// the same refusals, the same [`Tally`] and the same [`Noted`] counts, so the mapping
    /// judges a dossier the same way in both modes.
    pub fn with_profile(inner: R) -> Self {
        let mut reader = Self::new(inner);
        reader.profile = true;
        reader
    }

    /// An import's reader: the profile elements are counted as ignored and never kept.
    pub fn new(inner: R) -> Self {
        let mut reader = Reader::from_reader(Limited {
            inner,
            budget: MAX_EVENT_BYTES,
        });
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.check_comments = true;
        config.trim_text(false);
        ReplyReader {
            reader,
            scopes: Vec::new(),
            buf: Vec::with_capacity(4096),
            stack: Vec::with_capacity(MAX_DEPTH),
            text: String::new(),
            text_too_long: false,
            reply: None,
            elements: 0,
            kept: 0,
            kept_bytes: 0,
            replies: 0,
            tally: Tally::default(),
            failed: false,
            profile: false,
        }
    }

    /// Bytes read so far (decompressed).
    pub fn offset(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn path(&self) -> String {
        let mut parts: Vec<&'static str> = Vec::new();
        for f in &self.stack {
            // Profile nodes are left out: the path is the one an import gives.
            if f.node != Node::Wrapper && f.node != Node::Skip && !f.node.is_profile() {
                parts.push(f.node.name());
            }
        }
        parts
            .last()
            .copied()
            .unwrap_or("(outside a reply)")
            .to_string()
    }

    fn fail(&mut self, error: XmlError) -> Located {
        self.failed = true;
        Located {
            error,
            offset: self.reader.buffer_position(),
            path: self.path(),
        }
    }

    /// The next reply, `None` at the end of the stream. After an error the stream is abandoned.
    pub(crate) fn next_reply(&mut self) -> Result<Option<Reply>, Located> {
        if self.failed {
            return Ok(None);
        }
        loop {
            // The event borrows the buffer, not the reader state: take it out for the step.
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            self.reader.get_mut().budget = MAX_EVENT_BYTES;
            let step = self.step(&mut buf);
            self.buf = buf;
            match step? {
                Step::Continue => {}
                Step::Reply(reply) => return Ok(Some(reply)),
                Step::End => return Ok(None),
            }
        }
    }

    /// Reads and handles one event.
    fn step(&mut self, buf: &mut Vec<u8>) -> Result<Step, Located> {
        let event = match self.reader.read_event_into(buf) {
            Ok(event) => event,
            Err(error) => {
                let error = match &error {
                    quick_xml::Error::Io(io) => {
                        if io.get_ref().is_some_and(|e| e.is::<EventTooLong>()) {
                            XmlError::EventTooLong
                        } else if let Some(refused) = io
                            .get_ref()
                            .and_then(|e| e.downcast_ref::<crate::input::Refused>())
                        {
                            XmlError::Refused(refused.0.clone())
                        } else {
                            XmlError::Read(io.kind().to_string())
                        }
                    }
                    quick_xml::Error::Encoding(_) => XmlError::InvalidUtf8,
                    other => XmlError::NotWellFormed(syntax_kind(other)),
                };
                return Err(self.fail(error));
            }
        };
        match event {
            Event::Decl(decl) => {
                if !self.stack.is_empty() {
                    return Err(self.fail(XmlError::NotWellFormed(
                        "XML declaration inside an element".into(),
                    )));
                }
                if let Some(Ok(encoding)) = decl.encoding() {
                    if !encoding.eq_ignore_ascii_case(b"utf-8")
                        && !encoding.eq_ignore_ascii_case(b"utf8")
                    {
                        return Err(self.fail(XmlError::NotUtf8Declared));
                    }
                }
            }
            Event::DocType(_) => return Err(self.fail(XmlError::Dtd)),
            Event::PI(_) => return Err(self.fail(XmlError::ProcessingInstruction)),
            Event::Comment(c) => {
                if std::str::from_utf8(&c).is_err() {
                    return Err(self.fail(XmlError::InvalidUtf8));
                }
            }
            Event::Start(start) => self.start(&start)?,
            Event::End(_) => {
                if let Some(reply) = self.end()? {
                    return Ok(Step::Reply(reply));
                }
            }
            Event::Empty(_) => {
                return Err(self.fail(XmlError::NotWellFormed("unexpanded empty element".into())))
            }
            Event::Text(t) => {
                let raw: &[u8] = &t;
                let Ok(text) = std::str::from_utf8(raw) else {
                    return Err(self.fail(XmlError::InvalidUtf8));
                };
                if raw.contains(&b'&') {
                    let unescaped = t.unescape().map_err(|_| self.fail(XmlError::Entity))?;
                    self.text(&unescaped)?;
                } else {
                    self.text(text)?;
                }
            }
            Event::CData(c) => {
                let raw = c.into_inner();
                let Ok(text) = std::str::from_utf8(&raw) else {
                    return Err(self.fail(XmlError::InvalidUtf8));
                };
                self.text(text)?;
            }
            Event::Eof => {
                if !self.stack.is_empty() {
                    return Err(self.fail(XmlError::Truncated));
                }
                return Ok(Step::End);
            }
        }
        Ok(Step::Continue)
    }

    fn start(&mut self, start: &BytesStart<'_>) -> Result<(), Located> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.fail(XmlError::TooDeep));
        }
        let outside = matches!(
            self.stack.last().map(|f| f.node),
            None | Some(Node::Wrapper)
        );
        let depth = self.stack.len();
        // Names and attribute values are input as much as texts are: not UTF-8 is refused the
        // same way (issue 24, item 3). The end tag must equal the start tag (check_end_names).
        if std::str::from_utf8(start.name().as_ref()).is_err() {
            return Err(self.fail(XmlError::InvalidUtf8));
        }
        let mut attributes = 0usize;
        for attribute in start.attributes().with_checks(false) {
            let attribute =
                attribute.map_err(|e| self.fail(XmlError::NotWellFormed(e.to_string())))?;
            attributes += 1;
            if attributes > MAX_ATTRIBUTES {
                return Err(self.fail(XmlError::TooManyAttributes));
            }
            if std::str::from_utf8(attribute.key.as_ref()).is_err()
                || std::str::from_utf8(&attribute.value).is_err()
            {
                return Err(self.fail(XmlError::InvalidUtf8));
            }
            if outside {
                let key = attribute.key.as_ref();
                let prefix = if key == b"xmlns" {
                    Some(&b""[..])
                } else {
                    key.strip_prefix(b"xmlns:")
                };
                if let Some(prefix) = prefix {
                    self.scopes
                        .push((depth, prefix.to_vec(), attribute.value.into_owned()));
                }
            }
        }
        let local_name = start.local_name();
        let local = local_name.as_ref();
        if let Some(parent) = self.stack.last_mut() {
            parent.content = true;
        }
        let parent = self.stack.last().map(|f| f.node);
        let node = match parent {
            None | Some(Node::Wrapper) => {
                if local == RESPONSE.as_bytes() {
                    let name = start.name();
                    let prefix = name.prefix().map(|p| p.into_inner()).unwrap_or(b"");
                    let namespace_ok = self
                        .scopes
                        .iter()
                        .rev()
                        .find(|(_, p, _)| p.as_slice() == prefix)
                        .is_some_and(|(_, _, uri)| uri.as_slice() == RESPONSE_NS.as_bytes());
                    self.replies += 1;
                    self.elements = 0;
                    self.kept = 0;
                    self.kept_bytes = 0;
                    self.reply = Some(Reply {
                        namespace_ok,
                        ..Reply::default()
                    });
                    Node::Response
                } else if local == b"Fault" {
                    return Err(self.fail(XmlError::Fault));
                } else if local == b"Repliek" {
                    return Err(self.fail(XmlError::OtherService));
                } else {
                    Node::Wrapper
                }
            }
            Some(p) if p.is_value() => {
                if p.is_profile() {
                    // An import skips this subtree whole: the element is skipped, the value
                    // unusable (never a code or a date).
                    self.text_too_long = true;
                    Node::Skip
                } else {
                    return Err(self.fail(XmlError::UnexpectedElement(p.name())));
                }
            }
            Some(p) => match child(p, local, self.profile) {
                Child::Read(n) => n,
                Child::Ignore(group) => {
                    self.tally.ignore(group);
                    Node::Skip
                }
                Child::Counted(n, group) => {
                    self.tally.ignore(group);
                    n
                }
                Child::Unknown => {
                    self.tally.unknown(p.name(), local);
                    Node::Skip
                }
            },
        };
        if node != Node::Wrapper {
            self.elements += 1;
            if self.elements > MAX_ELEMENTS_PER_REPLY {
                return Err(self.fail(XmlError::TooManyElements));
            }
        }
        if singular(node) {
            if let Some(parent) = self.stack.last_mut() {
                if parent.seen[..parent.seen_len].contains(&Some(node)) {
                    let parent_name = parent.node.name();
                    return Err(self.fail(XmlError::Duplicated {
                        child: node.name(),
                        parent: parent_name,
                    }));
                }
                if parent.seen_len < SEEN {
                    parent.seen[parent.seen_len] = Some(node);
                    parent.seen_len += 1;
                }
            }
        }
        if !matches!(node, Node::Wrapper | Node::Skip) {
            self.kept += 1;
            if self.kept > MAX_KEPT_PER_REPLY {
                return Err(self.fail(XmlError::TooManyKept));
            }
        }
        self.open(node);
        self.stack.push(Frame {
            node,
            seen: [None; SEEN],
            seen_len: 0,
            content: false,
        });
        if node.is_value() {
            self.text.clear();
            self.text_too_long = false;
        }
        Ok(())
    }

    /// Creates the structure an opening element stands for.
    fn open(&mut self, node: Node) {
        let profile = self.profile;
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        match node {
            Node::Antwoord => reply.antwoorden.push(Antwoord::default()),
            Node::Uitzondering(false) => reply.uitzonderingen.push(Uitzondering::default()),
            Node::Uitzondering(true) => {
                if let Some(a) = reply.antwoorden.last_mut() {
                    a.uitzonderingen.push(Uitzondering::default());
                }
            }
            Node::Dossier => {
                if let Some(a) = reply.antwoorden.last_mut() {
                    a.dossier = Some(Dossier {
                        profile: profile.then(Box::default),
                        ..Dossier::default()
                    });
                }
            }
            _ => {
                let Some(d) = reply.antwoorden.last_mut().and_then(|a| a.dossier.as_mut()) else {
                    return;
                };
                match node {
                    Node::Personalia => d.personalia = true,
                    Node::Doelgroep => d.doelgroep = Some(Doelgroep::default()),
                    Node::Periode(Owner::Doelgroep) => {
                        if let Some(g) = d.doelgroep.as_mut() {
                            g.periode = Some(Periode::default());
                        }
                    }
                    Node::Periode(Owner::UitstelA) => {
                        if let Some(u) = d.uitstellen_van_aanmelding.last_mut() {
                            u.periode = Some(Periode::default());
                        }
                    }
                    Node::Periode(Owner::UitstelO) => {
                        if let Some(u) = d.uitstellen_van_ondertekening.last_mut() {
                            u.periode = Some(Periode::default());
                        }
                    }
                    Node::Aanmelding => d.aanmelding = Some(Aanmelding::default()),
                    Node::Contract => d.contracten.push(Contract::default()),
                    Node::UitstelA => d.uitstellen_van_aanmelding.push(Uitstel::default()),
                    Node::UitstelO => d.uitstellen_van_ondertekening.push(Uitstel::default()),
                    Node::Traject => d.trajecten.push(Traject::default()),
                    Node::TrajectBesluit => {
                        if let Some(t) = d.trajecten.last_mut() {
                            t.besluit = Some(Besluit::default());
                        }
                    }
                    Node::Beheerder => {
                        if let Some(t) = d.trajecten.last_mut() {
                            // A second one (not 01.00) is merged: its values conflict.
                            t.beheerder.get_or_insert_with(Beheerder::default);
                        }
                    }
                    Node::TrajectOnderdeel if profile => {
                        if let Some(t) = d.trajecten.last_mut() {
                            t.onderdelen.push(Onderdeel::default());
                        }
                    }
                    Node::OnderdeelType => {
                        // Counted as an import counts it: every child of a `TrajectOnderdeel`
                        // an import skips adds to this M19 count, not only `Besluit` (a known
                        // over-count, `docs/kbi-import.md` section 9; both modes must agree).
                        d.noted.onderdeel_besluiten += 1;
                    }
                    Node::OnderdeelBesluit => {
                        // Counted as an import counts the skipped `Besluit` (M19).
                        d.noted.onderdeel_besluiten += 1;
                        if let Some(o) =
                            d.trajecten.last_mut().and_then(|t| t.onderdelen.last_mut())
                        {
                            o.besluit.get_or_insert_with(OnderdeelBesluit::default);
                        }
                    }
                    Node::Nt2Cursus => {
                        if let Some(p) = d.profile.as_mut() {
                            p.nt2_cursussen.push(Periode::default());
                        }
                    }
                    Node::Toeleiding => {
                        if let Some(p) = d.profile.as_mut() {
                            p.diploma_toeleidingen.push(Toeleiding::default());
                        }
                    }
                    Node::Document => d.documenten.push(Document::default()),
                    Node::Inbreuk => d.inbreuken.push(Inbreuk::default()),
                    Node::Rechtzetting => {
                        if let Some(i) = d.inbreuken.last_mut() {
                            i.rechtzetting = Some(Rechtzetting::default());
                        }
                    }
                    Node::Skip => {
                        // Counted wholes inside groups: the parent says which.
                        let parent = self.stack.last().map(|f| f.node);
                        match parent {
                            Some(Node::Addenda) => {
                                if let Some(c) = d.contracten.last_mut() {
                                    c.addenda += 1;
                                }
                            }
                            Some(Node::Opschortingen) => {
                                if let Some(c) = d.contracten.last_mut() {
                                    c.opschortingen += 1;
                                }
                            }
                            Some(Node::TrajectOnderdeel) => d.noted.onderdeel_besluiten += 1,
                            Some(Node::PloCursus) => d.noted.plo_besluiten += 1,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn text(&mut self, text: &str) -> Result<(), Located> {
        let Some(frame) = self.stack.last_mut() else {
            return Ok(()); // between documents
        };
        let node = frame.node;
        if node.is_value() {
            frame.content = true;
            let room = MAX_VALUE_BYTES.saturating_sub(self.text.len());
            if text.len() > room {
                self.text_too_long = true;
            } else {
                self.text.push_str(text);
            }
            return Ok(());
        }
        let blank = text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        if !blank {
            frame.content = true;
        }
        match node {
            Node::Wrapper | Node::Skip | Node::Nt2Niveau => Ok(()),
            _ if blank => Ok(()),
            // Inside what an import skips: text is as harmless as there.
            n if n.is_profile() => Ok(()),
            other => Err(self.fail(XmlError::UnexpectedText(other.name()))),
        }
    }

    fn end(&mut self) -> Result<Option<Reply>, Located> {
        let Some(frame) = self.stack.pop() else {
            return Err(self.fail(XmlError::NotWellFormed("end tag without start".into())));
        };
        let node = frame.node;
        let depth = self.stack.len();
        while self.scopes.last().is_some_and(|(d, _, _)| *d >= depth) {
            self.scopes.pop();
        }
        if node.is_value() {
            let value: Text = if self.text_too_long {
                None
            } else {
                Some(
                    self.text
                        .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
                        .to_string(),
                )
            };
            if let Some(v) = &value {
                self.kept_bytes += v.len();
                if self.kept_bytes > MAX_KEPT_BYTES_PER_REPLY {
                    return Err(self.fail(XmlError::TooManyKeptBytes));
                }
            }
            self.store(node, value);
            return Ok(None);
        }
        match node {
            Node::Response => return Ok(self.reply.take()),
            Node::Nt2Niveau => {
                if frame.content {
                    if let Some(d) = self.dossier_mut() {
                        d.noted.nt2_niveau += 1;
                    }
                } else {
                    self.tally.ignore("(empty elements)");
                }
            }
            Node::Rechtzetting if !frame.content => self.tally.ignore("(empty elements)"),
            _ => {}
        }
        Ok(None)
    }

    fn dossier_mut(&mut self) -> Option<&mut Dossier> {
        self.reply.as_mut()?.antwoorden.last_mut()?.dossier.as_mut()
    }

    fn store(&mut self, node: Node, value: Text) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        let v = Some(value);
        match node {
            Node::CtxNaam => reply.naam = v,
            Node::CtxVersie => reply.versie = v,
            Node::UitzIdent(answer) | Node::UitzType(answer) => {
                let list = if answer {
                    match reply.antwoorden.last_mut() {
                        Some(a) => &mut a.uitzonderingen,
                        None => return,
                    }
                } else {
                    &mut reply.uitzonderingen
                };
                if let Some(u) = list.last_mut() {
                    if matches!(node, Node::UitzIdent(_)) {
                        u.identificatie = v;
                    } else {
                        u.type_ = v;
                    }
                }
            }
            _ => {
                let Some(d) = reply.antwoorden.last_mut().and_then(|a| a.dossier.as_mut()) else {
                    return;
                };
                match node {
                    Node::Insz => d.insz = v,
                    Node::DgCode => set(d.doelgroep.as_mut().map(|g| &mut g.code), v),
                    Node::DgType => set(d.doelgroep.as_mut().map(|g| &mut g.type_), v),
                    Node::DgRedenVrijstelling => {
                        set(d.doelgroep.as_mut().map(|g| &mut g.reden_vrijstelling), v)
                    }
                    Node::Begin(Owner::Beheerder) => set_once(
                        d.trajecten
                            .last_mut()
                            .and_then(|t| t.beheerder.as_mut())
                            .map(|b| &mut b.begin),
                        v,
                    ),
                    Node::Begin(Owner::Nt2Cursus) | Node::Einde(Owner::Nt2Cursus) => {
                        let Some(c) = d.profile.as_mut().and_then(|p| p.nt2_cursussen.last_mut())
                        else {
                            return;
                        };
                        if matches!(node, Node::Begin(_)) {
                            set_once(Some(&mut c.begin), v);
                        } else {
                            set_once(Some(&mut c.einde), v);
                        }
                    }
                    Node::KbiNummer => set_once(
                        d.trajecten
                            .last_mut()
                            .and_then(|t| t.beheerder.as_mut())
                            .map(|b| &mut b.kbi_nummer),
                        v,
                    ),
                    Node::OnderdeelType => set_once(
                        d.trajecten
                            .last_mut()
                            .and_then(|t| t.onderdelen.last_mut())
                            .map(|o| &mut o.type_),
                        v,
                    ),
                    Node::OnderdeelBesluitCode
                    | Node::OnderdeelBesluitReden
                    | Node::OnderdeelBesluitDatum => {
                        let Some(b) = d
                            .trajecten
                            .last_mut()
                            .and_then(|t| t.onderdelen.last_mut())
                            .and_then(|o| o.besluit.as_mut())
                        else {
                            return;
                        };
                        let slot = match node {
                            Node::OnderdeelBesluitCode => &mut b.code,
                            Node::OnderdeelBesluitReden => &mut b.reden,
                            _ => &mut b.datum_toekenning,
                        };
                        set_once(Some(slot), v);
                    }
                    Node::Geboortedatum
                    | Node::GeslachtCode
                    | Node::Nt2Hoogst
                    | Node::ToeleidingStart
                    | Node::ToeleidingStatus => {
                        let Some(p) = d.profile.as_mut() else {
                            return;
                        };
                        let slot = match node {
                            Node::Geboortedatum => &mut p.geboortedatum,
                            Node::GeslachtCode => &mut p.geslacht,
                            Node::Nt2Hoogst => &mut p.hoogst_behaald_nt2,
                            Node::ToeleidingStart => match p.diploma_toeleidingen.last_mut() {
                                Some(t) => &mut t.start_datum,
                                None => return,
                            },
                            _ => match p.diploma_toeleidingen.last_mut() {
                                Some(t) => &mut t.status,
                                None => return,
                            },
                        };
                        set_once(Some(slot), v);
                    }
                    Node::Begin(o) | Node::Einde(o) => {
                        let periode = match o {
                            Owner::Doelgroep => {
                                d.doelgroep.as_mut().and_then(|g| g.periode.as_mut())
                            }
                            Owner::UitstelA => d
                                .uitstellen_van_aanmelding
                                .last_mut()
                                .and_then(|u| u.periode.as_mut()),
                            Owner::UitstelO => d
                                .uitstellen_van_ondertekening
                                .last_mut()
                                .and_then(|u| u.periode.as_mut()),
                            Owner::Beheerder | Owner::Nt2Cursus => None,
                        };
                        if let Some(p) = periode {
                            if matches!(node, Node::Begin(_)) {
                                p.begin = v;
                            } else {
                                p.einde = v;
                            }
                        }
                    }
                    Node::AanType => set(d.aanmelding.as_mut().map(|a| &mut a.type_), v),
                    Node::AanDatum => set(d.aanmelding.as_mut().map(|a| &mut a.datum), v),
                    Node::ContractDatum => {
                        set(d.contracten.last_mut().map(|c| &mut c.datum_registratie), v)
                    }
                    Node::TrajectType => set(d.trajecten.last_mut().map(|t| &mut t.type_), v),
                    Node::BesluitCode => set(
                        d.trajecten
                            .last_mut()
                            .and_then(|t| t.besluit.as_mut())
                            .map(|b| &mut b.code),
                        v,
                    ),
                    Node::BesluitDatum => set(
                        d.trajecten
                            .last_mut()
                            .and_then(|t| t.besluit.as_mut())
                            .map(|b| &mut b.datum_toekenning),
                        v,
                    ),
                    Node::DocSoort => set(d.documenten.last_mut().map(|x| &mut x.soort), v),
                    Node::DocType => set(d.documenten.last_mut().map(|x| &mut x.type_), v),
                    Node::DocAanmaak => {
                        set(d.documenten.last_mut().map(|x| &mut x.datum_aanmaak), v)
                    }
                    Node::DocOndertekening => set(
                        d.documenten.last_mut().map(|x| &mut x.datum_ondertekening),
                        v,
                    ),
                    Node::InbType => set(d.inbreuken.last_mut().map(|x| &mut x.type_), v),
                    Node::InbVaststelling => {
                        set(d.inbreuken.last_mut().map(|x| &mut x.datum_vaststelling), v)
                    }
                    Node::InbIngebreke => set(
                        d.inbreuken
                            .last_mut()
                            .map(|x| &mut x.datum_ingebrekestelling),
                        v,
                    ),
                    Node::RzAanmaak => set(
                        d.inbreuken
                            .last_mut()
                            .and_then(|x| x.rechtzetting.as_mut())
                            .map(|r| &mut r.datum_aanmaak),
                        v,
                    ),
                    Node::RzOndertekening => set(
                        d.inbreuken
                            .last_mut()
                            .and_then(|x| x.rechtzetting.as_mut())
                            .map(|r| &mut r.datum_ondertekening),
                        v,
                    ),
                    _ => {}
                }
            }
        }
    }
}

fn set(slot: Option<&mut Option<Text>>, value: Option<Text>) {
    if let Some(slot) = slot {
        *slot = value;
    }
}

/// A profile value: the schema allows one, and an import (which skips the subtree) accepts a
/// file with two, so the export must too. Two values are not guessed between: the value
/// becomes unusable (`Some(None)`, as a value too long), and the field it feeds is empty.
fn set_once(slot: Option<&mut Option<Text>>, value: Option<Text>) {
    if let Some(slot) = slot {
        *slot = if slot.is_some() { Some(None) } else { value };
    }
}

/// A syntax error's kind without input bytes (quick-xml's messages can quote names).
fn syntax_kind(error: &quick_xml::Error) -> String {
    match error {
        quick_xml::Error::Syntax(s) => s.to_string(),
        quick_xml::Error::IllFormed(_) => "mismatched or unexpected tags".into(),
        quick_xml::Error::InvalidAttr(_) => "invalid attribute".into(),
        quick_xml::Error::Escape(_) => "invalid escape".into(),
        quick_xml::Error::Namespace(_) => "invalid namespace declaration".into(),
        _ => "syntax error".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    const OWNERS: [Owner; 5] = [
        Owner::Doelgroep,
        Owner::UitstelA,
        Owner::UitstelO,
        Owner::Beheerder,
        Owner::Nt2Cursus,
    ];

    /// Every profile node (by [`Node::is_profile`]) is left out of [`singular`].
    pub(crate) fn all_profile_nodes_are_not_singular() -> bool {
        use Node::*;
        let mut nodes = vec![
            Geboortedatum,
            Geslacht,
            GeslachtCode,
            Beheerder,
            BeheerderVestiging,
            KbiNummer,
            OnderdeelType,
            OnderdeelBesluit,
            OnderdeelBesluitCode,
            OnderdeelBesluitReden,
            OnderdeelBesluitDatum,
            Nt2Hoogst,
            Nt2Cursussen,
            Nt2Cursus,
            Toeleidingen,
            Toeleiding,
            ToeleidingStart,
            ToeleidingStatus,
        ];
        for o in OWNERS {
            nodes.extend([Periode(o), Begin(o), Einde(o)]);
        }
        nodes.into_iter().all(|n| !n.is_profile() || !singular(n))
    }

    /// The import's own periods are not profile nodes (they stay singular).
    pub(crate) fn any_import_node_is_profile() -> bool {
        use Node::*;
        OWNERS[..3]
            .iter()
            .any(|&o| Periode(o).is_profile() || !singular(Periode(o)))
            || [Dossier, Personalia, Insz, Doelgroep, Trajecten, Nt2Niveau]
                .iter()
                .any(|n| n.is_profile() || !singular(*n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_element_names_with_digit_runs_are_not_shown() {
        let mut tally = Tally::default();
        tally.unknown("Doelgroep", b"x85073003328");
        tally.unknown("Talenkennis", b"BehaaldNT2Niveau2");
        let keys: Vec<&String> = tally.unknown.keys().collect();
        assert_eq!(
            keys,
            [
                "Doelgroep/(unprintable name)",
                "Talenkennis/BehaaldNT2Niveau2"
            ]
        );
    }

    fn read_all(xml: &str) -> Result<Vec<Reply>, Located> {
        let mut r = ReplyReader::new(xml.as_bytes());
        let mut out = Vec::new();
        while let Some(reply) = r.next_reply()? {
            out.push(reply);
        }
        Ok(out)
    }

    const REPLY: &str = r#"<web:GeefDossierKBIResponse xmlns:web="http://webservice.GeefDossierKBI-01.00.kbi-01.00.vip.vlaanderen.be"><Repliek><Context><Naam>GeefDossierKBI</Naam><Versie>01.00.0000</Versie></Context><Antwoorden><Antwoord><Inhoud><KBIDossier><Personalia><INSZ>
      88021412358 </INSZ><Naam>x</Naam></Personalia></KBIDossier></Inhoud></Antwoord></Antwoorden></Repliek></web:GeefDossierKBIResponse>"#;

    #[test]
    fn reads_concatenated_replies_and_trims() {
        let replies = read_all(&format!("{REPLY}\n{REPLY}")).unwrap();
        assert_eq!(replies.len(), 2);
        let d = replies[0].antwoorden[0].dossier.as_ref().unwrap();
        assert_eq!(d.insz, Some(Some("88021412358".into())));
        assert!(replies[0].namespace_ok);
    }

    #[test]
    fn wrong_namespace_is_noted() {
        let other = REPLY.replace("01.00.kbi", "02.00.kbi");
        let replies = read_all(&other).unwrap();
        assert!(!replies[0].namespace_ok);
    }

    #[test]
    fn limits() {
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert_eq!(read_all(&deep).unwrap_err().error, XmlError::TooDeep);
        let dtd = format!("<!DOCTYPE x [<!ENTITY e \"y\">]>{REPLY}");
        assert_eq!(read_all(&dtd).unwrap_err().error, XmlError::Dtd);
        let entity = REPLY.replace("<Naam>x</Naam>", "<Naam>&e;</Naam>");
        assert_eq!(read_all(&entity).unwrap_err().error, XmlError::Entity);
        let long = REPLY.replace(
            "<Naam>x</Naam>",
            &format!("<Naam>{}</Naam>", "x".repeat(MAX_EVENT_BYTES + 10)),
        );
        assert_eq!(read_all(&long).unwrap_err().error, XmlError::EventTooLong);
        let attrs: String = (0..40).map(|i| format!(" a{i}=\"1\"")).collect();
        let many = REPLY.replace("<Repliek>", &format!("<Repliek{attrs}>"));
        assert_eq!(
            read_all(&many).unwrap_err().error,
            XmlError::TooManyAttributes
        );
        let twice = REPLY.replace("<Personalia>", "<Personalia><INSZ>1</INSZ>");
        assert!(matches!(
            read_all(&twice).unwrap_err().error,
            XmlError::Duplicated { .. }
        ));
        let cut = &REPLY[..REPLY.len() - 30];
        assert!(read_all(cut).is_err());
    }
}
