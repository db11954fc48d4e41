//! The SOAP fast reader (`kbi_wire::soap::fast`) against the hardened parser: on every body —
//! the golden requests, what zeep and node-soap really send, the hostile suite, random mutations
//! of all of them — whatever the fast reader returns is exactly what the hardened parser returns
//! (so it can only ever say yes where the hardened parser says the same yes); and every
//! canonical body, whatever its values, whitespace and prefixes, takes the fast path (a reader
//! that always defers fails here). The fuzz target `soap_fast` checks the same equality.

use proptest::prelude::*;

use crate::support::{hostile_cases, manifest_dir, request, valid, Q, SOAP_NS, TARGET_NS};
use kbi_wire::soap::{self, fast, parse, XmlLimits};

/// The request bodies of the golden SOAP exchanges.
fn golden_bodies() -> Vec<Vec<u8>> {
    let dir = manifest_dir().join("tests/fixtures/golden");
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("soap_") || !name.ends_with(".txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let request = text.split("\n== response").next().unwrap();
        if let Some((_, body)) = request.split_once("\n\n") {
            bodies.push(body.as_bytes().to_vec());
        }
    }
    assert!(
        bodies.len() >= 10,
        "golden SOAP bodies found: {}",
        bodies.len()
    );
    bodies
}

/// What zeep and node-soap send (tests/fixtures/soap-clients/README.md).
fn client_bodies() -> Vec<Vec<u8>> {
    ["zeep-4.3.3.xml", "node-soap-1.13.0.xml"]
        .iter()
        .map(|name| {
            std::fs::read(
                manifest_dir()
                    .join("tests/fixtures/soap-clients")
                    .join(name),
            )
            .unwrap()
        })
        .collect()
}

/// `body` without the whitespace between its tags: the shape the fast reader's compact road
/// reads (the load tests send it), and it takes only where nothing else differs.
fn compact(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for (i, part) in text.split('>').enumerate() {
        if i > 0 {
            out.push('>');
        }
        match part.find('<') {
            Some(start) if part[..start].trim().is_empty() => out.push_str(&part[start..]),
            _ => out.push_str(part),
        }
    }
    out.into_bytes()
}

/// Every body the mutations start from.
fn corpus() -> Vec<Vec<u8>> {
    let mut bodies = golden_bodies();
    bodies.extend(client_bodies());
    // Their compact forms too, so that mutations reach the compact road's every branch.
    let compacts: Vec<Vec<u8>> = bodies.iter().map(|body| compact(body)).collect();
    bodies.extend(compacts);
    bodies.extend(hostile_cases().into_iter().map(|(_, body, _, _)| body));
    bodies.push(valid().into_bytes());
    bodies
}

/// The fast reader never disagrees with the hardened parser on `body`: returns whether it took
/// the body.
fn agrees(body: &[u8], limits: &XmlLimits) -> Result<bool, TestCaseError> {
    let hardened = parse::parse_without_fast_reader(body, limits);
    // What the server's parse gives is the hardened parser's answer, whichever road it took.
    prop_assert_eq!(&parse::parse(body, limits), &hardened);
    match fast::read(body, limits) {
        Some(fast) => {
            prop_assert_eq!(
                Ok(fast),
                hardened,
                "fast reader differs on {:?}",
                String::from_utf8_lossy(body)
            );
            Ok(true)
        }
        None => Ok(false),
    }
}

#[test]
fn real_clients_and_golden_requests_take_the_fast_path() {
    let limits = XmlLimits::default();
    for body in client_bodies() {
        assert!(
            agrees(&body, &limits).unwrap(),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let golden = golden_bodies();
    let taken = golden
        .iter()
        .filter(|body| agrees(body, &limits).unwrap())
        .count();
    // Every golden request the hardened parser accepts is canonical but the hostile ones.
    let accepted = golden
        .iter()
        .filter(|body| parse::parse_without_fast_reader(body, &limits).is_ok())
        .count();
    assert!(
        taken >= accepted - 1,
        "{taken} of {accepted} accepted golden bodies taken"
    );
}

#[test]
fn compact_bodies_take_the_fast_path_with_the_hardened_parsers_reading() {
    // The compact road's every branch (Gebruiker or not; Referentiedatum, Premiejaar, both or
    // neither), and bodies where it gives up half-way and the tag-by-tag road reads on.
    let limits = XmlLimits::default();
    let questions = [
        Q::date("q-1", "83040410690", "2023-01-01"),
        Q::year("q-2", "83040410690", "2024"),
        Q {
            year: Some("2024".into()),
            ..Q::date("q-3", "83040410690", "2023-01-01")
        },
        Q {
            date: None,
            ..Q::date("q-4", "83040410690", "2023-01-01")
        },
    ];
    let canonical = request(&questions);
    let without_gebruiker = canonical.replace("<Gebruiker>tester</Gebruiker>", "");
    let padded = canonical.replace(">req-0001<", "> req é 0001 <");
    for body in [canonical, without_gebruiker, padded] {
        let compact = compact(body.as_bytes());
        assert!(agrees(&compact, &limits).unwrap(), "{body}");
        let read = fast::read(&compact, &limits).expect("compact body taken");
        assert_eq!(read.question_count, questions.len());
        // Whitespace at any one place: the compact road gives up there, the other reads it.
        let text = String::from_utf8(compact).unwrap();
        for (at, _) in text.match_indices("><") {
            let spaced = format!("{}>\n  <{}", &text[..at], &text[at + 2..]);
            assert!(agrees(spaced.as_bytes(), &limits).unwrap(), "{spaced}");
        }
    }
}

#[test]
fn a_body_the_hardened_parser_accepts_but_the_fast_reader_must_defer() {
    let limits = XmlLimits::default();
    let body = valid().replace("<Vragen>", "<Vragen><!-- a comment -->");
    assert!(parse::parse_without_fast_reader(body.as_bytes(), &limits).is_ok());
    assert_eq!(fast::read(body.as_bytes(), &limits), None);
    // And the server's parse still reads it, through the hardened parser.
    let (parsed, road) = soap::parse_on_road(body.as_bytes(), &limits, None);
    assert!(parsed.is_ok());
    assert_eq!(road, soap::Road::Hardened);
    let canonical = valid();
    let (parsed, road) = soap::parse_on_road(canonical.as_bytes(), &limits, None);
    assert!(parsed.is_ok());
    assert_eq!(road, soap::Road::Fast);
}

#[test]
fn hostile_bodies_are_all_deferred() {
    let limits = XmlLimits::default();
    for (name, body, _, _) in hostile_cases() {
        assert_eq!(fast::read(&body, &limits), None, "{name}");
        assert!(parse::parse(&body, &limits).is_err(), "{name}");
    }
}

/// Snippets that make XML unusual, inserted by the mutations.
const TOKENS: &[&str] = &[
    "<!-- c -->",
    "<![CDATA[x]]>",
    "&amp;",
    "&#49;",
    "&lt;",
    "xmlns=\"\"",
    " xmlns:x=\"urn:x\"",
    " a=\"1\"",
    "<x/>",
    "</x>",
    "<",
    ">",
    "/",
    "/>",
    "\"",
    "'",
    ":",
    " ",
    "\n",
    "\r\n",
    "\t",
    "\u{1}",
    "\u{7f}",
    "é",
    "\u{FFFE}",
    "\u{10000}",
    "]]>",
    "<?pi?>",
    "<!DOCTYPE x>",
    "\u{FEFF}",
    "<Vraag>",
    "</Vraag>",
    "<Referte>r</Referte>",
    "<Premiejaar>2026</Premiejaar>",
    "<Gebruiker>g</Gebruiker>",
    "<soapenv:Header/>",
    "soapenv:",
    "geef:",
    "xml",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, usize),
    /// A token right after the `n`-th `>`: at the start of a value or between two elements.
    InsertAfterTag(usize, usize),
    Delete(usize, usize),
    Byte(usize, u8),
    Repeat(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert(at, token)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(n, token)| Mutation::InsertAfterTag(n, token)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Byte(at, byte)),
        (any::<usize>(), 1usize..200).prop_map(|(at, n)| Mutation::Repeat(at, n)),
    ]
}

fn mutate(mut body: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = body.len().max(1);
        match *mutation {
            Mutation::Insert(at, token) => {
                let at = at % len.min(body.len() + 1);
                body.splice(at..at, TOKENS[token].bytes());
            }
            Mutation::InsertAfterTag(n, token) => {
                let tags: Vec<usize> = memchr_all(b'>', &body);
                if !tags.is_empty() {
                    let at = tags[n % tags.len()] + 1;
                    body.splice(at..at, TOKENS[token].bytes());
                }
            }
            Mutation::Delete(at, n) if !body.is_empty() => {
                let at = at % body.len();
                body.drain(at..(at + n).min(body.len()));
            }
            Mutation::Byte(at, byte) if !body.is_empty() => {
                let at = at % body.len();
                body[at] = byte;
            }
            Mutation::Repeat(at, n) if !body.is_empty() => {
                let at = at % body.len();
                let slice = body[at..(at + n).min(body.len())].to_vec();
                body.splice(at..at, slice);
            }
            _ => {}
        }
    }
    body
}

fn memchr_all(byte: u8, body: &[u8]) -> Vec<usize> {
    body.iter()
        .enumerate()
        .filter(|(_, b)| **b == byte)
        .map(|(i, _)| i)
        .collect()
}

/// One `Vraag` with generated values.
#[derive(Debug, Clone)]
struct Vraag {
    referte: String,
    insz: String,
    date: Option<String>,
    year: Option<String>,
}

fn vraag() -> impl Strategy<Value = Vraag> {
    (
        "[A-Za-z0-9 ._é-]{0,40}",
        "[0-9. -]{0,15}",
        proptest::option::of("[0-9]{4}-[0-9]{2}-[0-9]{2}"),
        proptest::option::of("[0-9]{4}"),
    )
        .prop_map(|(referte, insz, date, year)| Vraag {
            referte,
            insz,
            date,
            year,
        })
}

/// A canonical body: the shape callers send, with generated values, prefixes, whitespace,
/// declaration and Header.
#[derive(Debug, Clone)]
struct Canonical {
    declaration: usize,
    soap_prefix: String,
    op_prefix: String,
    op_declared_on_operation: bool,
    xsi: bool,
    header: usize,
    space: Vec<usize>,
    referte: String,
    gebruiker: Option<String>,
    vragen: Vec<Vraag>,
}

const SPACES: [&str; 5] = ["", " ", "\n", "\n    ", "\t"];
const DECLARATIONS: [&str; 4] = [
    "",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<?xml version='1.0' encoding='utf-8'?>\n",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
];

impl Canonical {
    fn body(&self) -> String {
        let mut spaces = self.space.iter().cycle();
        let mut ws = || SPACES[*spaces.next().unwrap()];
        let s = &self.soap_prefix;
        let g = &self.op_prefix;
        let mut out = String::from(DECLARATIONS[self.declaration]);
        out += &format!("<{s}:Envelope xmlns:{s}=\"{SOAP_NS}\"");
        if self.xsi {
            out += " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
        }
        if !self.op_declared_on_operation {
            out += &format!(" xmlns:{g}=\"{TARGET_NS}\"");
        }
        out += ">";
        out += ws();
        match self.header {
            1 => out += &format!("<{s}:Header/>"),
            2 => out += &format!("<{s}:Header>{}</{s}:Header>", ws()),
            _ => {}
        }
        out += ws();
        out += &format!("<{s}:Body>{}<{g}:GeefAdviesInburgeringsplicht", ws());
        if self.op_declared_on_operation {
            out += &format!(" xmlns:{g}=\"{TARGET_NS}\"");
        }
        out += ">";
        let leaf = |name: &str, value: &str, ws: &str| format!("{ws}<{name}>{value}</{name}>");
        out += &format!("{}<Verzoek>{}<Context>", ws(), ws());
        out += &leaf("Naam", "GeefAdviesInburgeringsplicht", ws());
        out += &leaf("Versie", "01.00.0000", ws());
        out += &format!("{}<Bericht>", ws());
        out += &leaf("Type", "VRAAG", ws());
        out += &format!("<Tijdstip>{}", leaf("Datum", "2026-11-02", ws()));
        out += &leaf("Tijd", "09:15:00.000", ws());
        out += &format!("{}</Tijdstip><Afzender>", ws());
        out += &leaf("Identificatie", "demo.kbi-advice", ws());
        out += &leaf("Referte", &self.referte, ws());
        out += &leaf("Hoedanigheid", "9999", ws());
        if let Some(gebruiker) = &self.gebruiker {
            out += &leaf("Gebruiker", gebruiker, ws());
        }
        out += &format!(
            "{}</Afzender></Bericht>{}</Context>{}<Vragen>",
            ws(),
            ws(),
            ws()
        );
        for vraag in &self.vragen {
            out += &format!("{}<Vraag>", ws());
            out += &leaf("Referte", &vraag.referte, ws());
            out += &format!("<Inhoud>{}<Criteria>", ws());
            out += &leaf("INSZ", &vraag.insz, ws());
            if let Some(date) = &vraag.date {
                out += &leaf("Referentiedatum", date, ws());
            }
            if let Some(year) = &vraag.year {
                out += &leaf("Premiejaar", year, ws());
            }
            out += &format!("{}</Criteria></Inhoud>{}</Vraag>", ws(), ws());
        }
        out += &format!(
            "{}</Vragen></Verzoek>{}</{g}:GeefAdviesInburgeringsplicht>{}</{s}:Body>{}</{s}:Envelope>{}",
            ws(),
            ws(),
            ws(),
            ws(),
            ws()
        );
        out
    }
}

fn canonical() -> impl Strategy<Value = Canonical> {
    let prefix = "[a-wyz][a-z0-9-]{0,7}";
    (
        (
            0..DECLARATIONS.len(),
            prefix,
            prefix,
            any::<bool>(),
            any::<bool>(),
            0usize..3,
        ),
        // Often no whitespace between tags at all (the compact road), else a mix.
        prop_oneof![
            Just(vec![0]),
            proptest::collection::vec(0..SPACES.len(), 1..8)
        ],
        "[A-Za-z0-9 ._-]{0,40}",
        proptest::option::of("[A-Za-z0-9 .é_-]{0,20}"),
        proptest::collection::vec(vraag(), 1..20),
    )
        .prop_filter("distinct prefixes", |((_, s, g, _, _, _), ..)| s != g)
        .prop_map(
            |(
                (declaration, soap_prefix, op_prefix, on_op, xsi, header),
                space,
                referte,
                gebruiker,
                vragen,
            )| {
                Canonical {
                    declaration,
                    soap_prefix,
                    op_prefix,
                    op_declared_on_operation: on_op,
                    xsi,
                    header,
                    space,
                    referte,
                    gebruiker,
                    vragen,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Mutations of every known body: the fast reader says the hardened parser's yes or nothing.
    #[test]
    fn mutated_bodies_never_read_differently(
        seed in any::<prop::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let corpus = corpus();
        let body = mutate(corpus[seed.index(corpus.len())].clone(), &mutations);
        agrees(&body, &XmlLimits::default())?;
    }

    /// Every canonical body takes the fast path and reads as the hardened parser reads it.
    #[test]
    fn canonical_bodies_take_the_fast_path(body in canonical()) {
        let body = body.body();
        prop_assert!(agrees(body.as_bytes(), &XmlLimits::default())?, "deferred: {body}");
    }

    /// Limits lower than a canonical body needs: the fast reader defers and the hardened parser
    /// refuses, or both read the same.
    #[test]
    fn tight_limits_are_the_hardened_parsers(
        body in canonical(),
        max_depth in 6usize..12,
        max_elements in 20usize..200,
        max_questions in 1usize..25,
        max_attributes in 0usize..4,
        max_namespaces_in_scope in 0usize..4,
    ) {
        let limits = XmlLimits {
            max_depth,
            max_elements,
            max_questions,
            max_attributes,
            max_namespace_declarations: max_attributes,
            max_namespaces_in_scope,
        };
        agrees(body.body().as_bytes(), &limits)?;
    }
}

/// The request builder of the other SOAP tests gives a canonical body too.
#[test]
fn the_test_harness_request_is_canonical() {
    let body = request(&[
        Q::date("q-1", "83040410690", "2023-01-01"),
        Q::year("q-2", "83040410690", "2024"),
    ]);
    assert!(agrees(body.as_bytes(), &XmlLimits::default()).unwrap());
}
