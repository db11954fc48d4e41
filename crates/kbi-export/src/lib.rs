//! `kbi-advice export`: a delivery of register data under a protocol file
//! (`../shared/spec/protocols.md` sections 3–7).
//!
//! One engine, in the order of a delivery:
//! - [`deliver::allowed`]: the protocol in force, the file in it, the reference date in its
//!   window — refused before anything is read, whatever `--force` says;
//! - [`deliver::DeliveryRequest::prepare`]: sealing, output directory, the register's lock and
//!   its once-a-period rule;
//! - [`join`]: the partners' files, CSV or age-encrypted CSV decrypted in memory, bounded;
//! - [`select`]: every dossier the reader accepts is judged against the population
//!   ([`population`], `subject` and `answer-nok` by the doors' own rules code) and its row
//!   derived field by field ([`fields`], [`regions`]) into a compact table ([`table`]);
//!   [`identity`] keeps, removes or pseudonymises the INSZ, [`suppress`] empties small cells;
//! - [`deliver::PreparedDelivery::run`]: encrypt, sign ([`manifest`]), rename, register — the
//!   yearly list's own pieces (`kbi_premium::deliver`), all or nothing;
//! - [`verify`]: the recipient's check.

pub mod deliver;
pub mod fields;
pub mod identity;
pub mod join;
pub mod manifest;
pub mod population;
pub mod regions;
pub mod select;
pub mod suppress;
pub mod table;
pub mod verify;

pub use select::{Person, Row, Rows, Rules, Selected, Selection, SelectionSpec, Worker};

use std::path::PathBuf;

use chrono::NaiveDate;
use kbi_core::domain::{Facts, RuleSet};
use kbi_core::io::Progress;
use kbi_import::codes::Codes;
use kbi_import::{DossierRead, ImportError, KeptPerson, Report, RunOptions};
use kbi_protocol::{FileSpec, Identity, Protocol};

use deliver::{Basis, DeliverError, Delivered, DeliveryRequest};
use identity::PseudonymKey;
use join::{JoinError, JoinTable};
use regions::Regions;
use select::SelectError;
use table::Values;

/// Why an export was refused or failed. Never carries an INSZ.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Deliver(#[from] DeliverError),
    #[error(transparent)]
    Join(#[from] JoinError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(
        "the dossiers hold {errors_total} ERROR(s) (listed above and in the report); nothing was \
         written"
    )]
    Dossiers {
        errors_total: u64,
        report: Box<Report>,
    },
    #[error(
        "reference date {reference} is before the earliest regime of the rules ({earliest}): \
         the doors answer 30004 for every person, so `subject` and `answer-nok` cannot be judged"
    )]
    BeforeRules {
        reference: NaiveDate,
        earliest: NaiveDate,
    },
}

/// The dossiers and the rules a selection reads.
pub struct Source {
    pub inputs: Vec<PathBuf>,
    pub codes: Codes,
    pub regions: Regions,
    /// The rules as loaded (`config/rules.toml` or `--rules`).
    pub rules: RuleSet,
    pub run: RunOptions,
}

/// What to select: a file of a protocol on a reference date, with its join files.
pub struct Request<'a> {
    pub protocol: &'a Protocol,
    pub file: &'a FileSpec,
    pub reference: NaiveDate,
    /// `--join NAME=FILE`, in the order given.
    pub joins: Vec<(String, PathBuf)>,
    /// The agency's age identities, for encrypted join files.
    pub identities: Option<&'a [Box<dyn age::Identity>]>,
    pub pseudonym_key: Option<PseudonymKey>,
}

/// A selection made: the rows and what reading the dossiers reported.
pub struct Collected {
    pub selected: Selected,
    pub report: Report,
    /// SHA-256 of each join file as given, in the order of `selected.joins`.
    pub join_sha256: Vec<String>,
}

/// The facts a dossier import records (its snapshot header's `facts`): the rules are judged
/// with them (`RuleSet::judged_with`), as the doors judge the imported snapshot.
pub fn dossier_facts() -> Facts {
    Facts::from_names(kbi_import::mapping::dossier_facts())
        .expect("the import's facts are event types")
}

/// Loads the join files of `request`, each checked against the file's declaration.
pub fn load_joins(
    file: &FileSpec,
    joins: &[(String, PathBuf)],
    identities: Option<&[Box<dyn age::Identity>]>,
    values: &mut Values,
) -> Result<(Vec<JoinTable>, Vec<String>), JoinError> {
    let mut tables: Vec<JoinTable> = Vec::with_capacity(joins.len());
    let mut hashes = Vec::with_capacity(joins.len());
    for (name, path) in joins {
        let Some(declared) = file.joins.iter().find(|j| &j.name == name) else {
            return Err(JoinError::Undeclared {
                name: name.clone(),
                declared: if file.joins.is_empty() {
                    "none".to_owned()
                } else {
                    file.joins
                        .iter()
                        .map(|j| j.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        };
        if tables.iter().any(|t| &t.name == name) {
            return Err(JoinError::Undeclared {
                name: name.clone(),
                declared: format!("{name} given twice"),
            });
        }
        hashes.push(join::file_sha256(declared, path)?);
        let input = join::open(declared, path, identities)?;
        tables.push(join::load(declared, path, input, values)?);
    }
    Ok((tables, hashes))
}

/// Reads the dossiers and selects the rows of `request`: nothing is written. A run with an
/// ERROR in the dossiers is refused whole ([`ExportError::Dossiers`]).
pub fn collect(
    source: &Source,
    request: Request<'_>,
    progress: &dyn Progress,
) -> Result<Collected, ExportError> {
    let file = request.file;
    let needs_rules = population::needs_answer(&file.population)
        || file.joins.iter().any(|j| {
            j.returned_from
                .as_ref()
                .and_then(|from| request.protocol.file(from))
                .is_some_and(|f| population::needs_answer(&f.population))
        });
    if needs_rules {
        let earliest = source.rules.earliest_valid_from();
        if request.reference < earliest {
            return Err(ExportError::BeforeRules {
                reference: request.reference,
                earliest,
            });
        }
    }
    let mut values = Values::default();
    let (joins, join_sha256) = load_joins(file, &request.joins, request.identities, &mut values)?;
    let spec = SelectionSpec {
        protocol: request.protocol,
        file,
        reference: request.reference,
        rules: &source.rules,
        facts: dossier_facts(),
        codes: &source.codes,
        regions: &source.regions,
        pseudonym_key: request.pseudonym_key,
        joins,
    };
    let mut selection = Selection::new(spec, values)?;
    let read = DossierRead {
        inputs: source.inputs.clone(),
        codes: source.codes.clone(),
    };
    // Each person is judged and their row derived on the reader's worker that read the
    // dossier (in parallel, and the dossier is dropped on the thread that built it); the fold
    // keeps the accepted rows in order on this thread (duplicates, joins, counts need the
    // whole run).
    let (rules, rows) = selection.split();
    let report = kbi_import::read_dossiers_mapped(
        &read,
        &source.run,
        progress,
        &|| {
            let mut worker = rules.worker();
            move |kept: KeptPerson| worker.row(kept.insz, &kept.events, &kept.dossier)
        },
        &mut |row| rows.add(rules, row),
    );
    let report = report?;
    if report.errors_total > 0 {
        return Err(ExportError::Dossiers {
            errors_total: report.errors_total,
            report: Box::new(report),
        });
    }
    let selected = selection.finish()?;
    Ok(Collected {
        selected,
        report,
        join_sha256,
    })
}

/// A whole export: everything refusable first (protocol, sealing, register), then the
/// selection, then the delivery. On any error nothing is written and the register is
/// unchanged.
pub fn export(
    source: &Source,
    request: Request<'_>,
    today: NaiveDate,
    delivery: DeliveryRequest,
    progress: &dyn Progress,
) -> Result<(Collected, Delivered), ExportError> {
    let protocol = request.protocol;
    let forced = matches!(delivery.force, kbi_premium::Force::Yes { .. });
    let file = deliver::allowed(protocol, &request.file.id, today, request.reference, forced)?;
    let prepared = delivery.prepare(file.encryption)?;
    let population: Vec<String> = file.population.iter().map(|p| p.to_string()).collect();
    let fingerprint = request
        .pseudonym_key
        .as_ref()
        .map(PseudonymKey::fingerprint);
    let collected = collect(source, request, progress)?;
    let selected = &collected.selected;
    let basis = Basis {
        population,
        fields: file.fields.iter().map(|f| f.to_string()).collect(),
        identity: file.identity.as_str().to_owned(),
        pseudonym_key_fingerprint: match file.identity {
            Identity::Pseudonym => fingerprint,
            _ => None,
        },
        suppression: file.min_group.map(|k| manifest::Suppression {
            min_group: k,
            quasi_identifiers: file
                .quasi_identifiers
                .iter()
                .map(|f| f.to_string())
                .collect(),
            rows: selected.suppressed.rows,
            cells: selected.suppressed.cells,
        }),
        source: manifest::Source {
            format: kbi_import::FORMAT_NAME.to_owned(),
            files: collected.report.files,
            bytes: collected.report.bytes,
            dossiers: collected.report.dossiers,
        },
        joins: selected
            .joins
            .iter()
            .zip(&collected.join_sha256)
            .map(|(j, sha)| manifest::JoinSource {
                name: j.name.clone(),
                rows: j.rows,
                matched: j.matched,
                file_sha256: sha.clone(),
            })
            .collect(),
        rule_set: population::needs_answer(&file.population).then(|| source.rules.version.clone()),
    };
    let delivered = prepared.run(selected, basis)?;
    Ok((collected, delivered))
}
