//! The selection: every dossier read is judged against the file's population, and the rows of
//! those in it are derived field by field and kept (compactly, `table.rs`) until all are read;
//! then the joins are checked (`returned_from`), the rows ordered, and small cells suppressed.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use kbi_core::domain::event::Event;
use kbi_core::domain::{Facts, Insz, RuleSet};
use kbi_import::codes::Codes;
use kbi_import::dossier::Dossier;
use kbi_protocol::{CatalogueField, Field, FileSpec, Identity, Population, Protocol};

use crate::fields::{self, Context};
use crate::identity::PseudonymKey;
use crate::join::{JoinError, JoinTable};
use crate::population::{self, Answer, Judge};
use crate::regions::Regions;
use crate::suppress::{self, Suppressed};
use crate::table::{Table, Values, EMPTY};

/// One accepted dossier, as the reader hands it over (`kbi_import::KeptPerson`): the INSZ, the
/// events the import maps it to, and the dossier with its profile.
#[derive(Debug)]
pub struct Person {
    pub insz: Insz,
    pub events: Vec<Event>,
    pub dossier: Box<Dossier>,
}

/// What a selection needs besides the dossiers.
pub struct SelectionSpec<'a> {
    pub protocol: &'a Protocol,
    pub file: &'a FileSpec,
    pub reference: NaiveDate,
    /// The rules as loaded; judged with `facts` (what the source records).
    pub rules: &'a RuleSet,
    pub facts: Facts,
    pub codes: &'a Codes,
    pub regions: &'a Regions,
    /// Required for identity `pseudonym`.
    pub pseudonym_key: Option<PseudonymKey>,
    /// The join files given (`--join NAME=FILE`), loaded.
    pub joins: Vec<JoinTable>,
}

/// Why a selection cannot be made or finished. Never carries an INSZ.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(
        "file {file} has identity \"pseudonym\": give the agency's key with --pseudonym-key FILE"
    )]
    NeedsPseudonymKey { file: String },
    #[error("--pseudonym-key is only for a file with identity \"pseudonym\" (file {file} has identity \"{identity}\")")]
    PseudonymKeyNotUsed { file: String, identity: String },
    #[error(transparent)]
    Join(#[from] JoinError),
    #[error(
        "quasi-identifier {field} of file {file} is an identity column; it cannot be suppressed"
    )]
    IdentityAsQuasiIdentifier { field: String, file: String },
    #[error(
        "join {join} answers file {from}, whose population needs join {needed}: give --join \
         {needed}=FILE as well, or the returned rows cannot be checked"
    )]
    ReturnedFromNeedsJoin {
        join: String,
        from: String,
        needed: String,
    },
}

/// One column of the table: a derived field or a join column (identity columns are written
/// from the INSZ and take no cell).
#[derive(Debug, Clone)]
enum Column {
    Catalogue(CatalogueField),
    Join { join: usize, column: usize },
}

/// A join declared `returned_from`: which of its rows are in the population of the file it
/// answers.
struct Returned {
    join: usize,
    from: String,
    filters: Vec<Population>,
    seen: Vec<bool>,
}

/// Counts of a selection, for the report and the manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Dossiers handed to the selection (accepted by the reader).
    pub dossiers: u64,
    /// Of those, in the file's population: the rows.
    pub in_population: u64,
    /// Persons the doors would refuse with 30004 (no regime covers their period), only
    /// counted when the population asks the rules.
    pub no_regime: u64,
}

/// One join's use, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JoinUse {
    pub name: String,
    /// Rows in the join file.
    pub rows: u64,
    /// Rows whose INSZ is a row of the delivery.
    pub matched: u64,
    /// Rows whose INSZ is not (not in the population, or no dossier).
    pub unmatched: u64,
}

/// A selection being made.
pub struct Selection<'a> {
    spec: SelectionSpec<'a>,
    judge: Option<Judge>,
    columns: Vec<Column>,
    returned: Vec<Returned>,
    matched: Vec<Vec<bool>>,
    values: Values,
    table: Table,
    scratch: Vec<u32>,
    counts: Counts,
    warnings: BTreeMap<&'static str, u64>,
}

impl<'a> Selection<'a> {
    /// Checks the spec (identity key, joins, quasi-identifiers) before any dossier is read.
    /// `values` must be the one the joins were loaded with.
    pub fn new(spec: SelectionSpec<'a>, values: Values) -> Result<Selection<'a>, SelectError> {
        let file = spec.file;
        match (file.identity, &spec.pseudonym_key) {
            (Identity::Pseudonym, None) => {
                return Err(SelectError::NeedsPseudonymKey {
                    file: file.id.clone(),
                })
            }
            (Identity::Insz | Identity::Removed, Some(_)) => {
                return Err(SelectError::PseudonymKeyNotUsed {
                    file: file.id.clone(),
                    identity: file.identity.as_str().to_owned(),
                })
            }
            _ => {}
        }
        let join_index = |name: &str| spec.joins.iter().position(|j| j.name == name);
        // Every join the file declares must be given: its columns or its `in-join` are what the
        // file is about.
        for declared in &file.joins {
            if join_index(&declared.name).is_none() {
                return Err(JoinError::Missing {
                    name: declared.name.clone(),
                }
                .into());
            }
        }
        let mut columns = Vec::new();
        for field in &file.fields {
            match field {
                Field::Catalogue(CatalogueField::Insz | CatalogueField::Pseudonym) => {}
                Field::Catalogue(f) => columns.push(Column::Catalogue(*f)),
                Field::Join { name, column } => {
                    let join = join_index(name)
                        .ok_or_else(|| JoinError::Missing { name: name.clone() })?;
                    let column =
                        spec.joins[join]
                            .column(column)
                            .ok_or_else(|| JoinError::Missing {
                                name: format!("{name} (column {column})"),
                            })?;
                    columns.push(Column::Join { join, column });
                }
            }
        }
        for qi in &file.quasi_identifiers {
            if matches!(
                qi,
                Field::Catalogue(CatalogueField::Insz | CatalogueField::Pseudonym)
            ) {
                return Err(SelectError::IdentityAsQuasiIdentifier {
                    field: qi.to_string(),
                    file: file.id.clone(),
                });
            }
        }
        let mut returned = Vec::new();
        for declared in &file.joins {
            let Some(from) = &declared.returned_from else {
                continue;
            };
            let join = join_index(&declared.name).expect("checked above");
            // The loader checked that `returned_from` names a file of this protocol.
            let filters = spec
                .protocol
                .file(from)
                .map(|f| f.population.clone())
                .unwrap_or_default();
            for filter in &filters {
                if let Population::InJoin(needed) = filter {
                    if join_index(needed).is_none() {
                        return Err(SelectError::ReturnedFromNeedsJoin {
                            join: declared.name.clone(),
                            from: from.clone(),
                            needed: needed.clone(),
                        });
                    }
                }
            }
            returned.push(Returned {
                join,
                from: from.clone(),
                filters,
                seen: vec![false; spec.joins[join].len()],
            });
        }
        let needs_answer = population::needs_answer(&file.population)
            || returned
                .iter()
                .any(|r| population::needs_answer(&r.filters));
        let judge = needs_answer.then(|| Judge::new(spec.rules, spec.facts, spec.reference));
        let matched = spec.joins.iter().map(|j| vec![false; j.len()]).collect();
        let width = columns.len();
        Ok(Selection {
            judge,
            columns,
            returned,
            matched,
            values,
            table: Table::new(width),
            scratch: vec![EMPTY; width],
            counts: Counts::default(),
            warnings: BTreeMap::new(),
            spec,
        })
    }

    /// Judges one person and keeps their row when they are in the population.
    pub fn push(&mut self, person: Person) {
        let spec = &self.spec;
        self.counts.dossiers += 1;
        let insz = person.insz.value();
        let answer = self
            .judge
            .as_mut()
            .map(|judge| judge.answer(person.events.clone()));
        if answer == Some(Answer::NoRegime) {
            self.counts.no_regime += 1;
        }
        let joins = &spec.joins;
        let in_join = |name: &str| {
            joins
                .iter()
                .find(|j| j.name == name)
                .is_some_and(|j| j.row_of(insz).is_some())
        };
        let reference = spec.reference;
        for returned in &mut self.returned {
            if let Some(row) = joins[returned.join].row_of(insz) {
                if population::all_hold(
                    &returned.filters,
                    answer,
                    &person.events,
                    reference,
                    &in_join,
                ) {
                    returned.seen[row] = true;
                }
            }
        }
        if !population::all_hold(
            &spec.file.population,
            answer,
            &person.events,
            reference,
            &in_join,
        ) {
            return;
        }
        self.counts.in_population += 1;
        let ctx = Context {
            reference,
            age_bands: &spec.file.age_bands,
            codes: spec.codes,
            regions: spec.regions,
        };
        let warnings = &mut self.warnings;
        let mut warn = |text: &'static str| *warnings.entry(text).or_insert(0) += 1;
        for (cell, column) in self.scratch.iter_mut().zip(&self.columns) {
            *cell = match column {
                Column::Catalogue(field) => {
                    let text = fields::value(*field, &person.dossier, &ctx, &mut warn);
                    self.values.intern(&text)
                }
                Column::Join { join, column } => match joins[*join].row_of(insz) {
                    Some(row) => joins[*join].cell(row, *column),
                    None => EMPTY,
                },
            };
        }
        for (join, matched) in joins.iter().zip(self.matched.iter_mut()) {
            if let Some(row) = join.row_of(insz) {
                matched[row] = true;
            }
        }
        self.table.push(insz, &self.scratch);
    }

    /// Checks the returned joins, orders the rows and suppresses small cells.
    pub fn finish(self) -> Result<Selected, SelectError> {
        let Selection {
            spec,
            columns,
            returned,
            matched,
            values,
            mut table,
            counts,
            warnings,
            ..
        } = self;
        // A partner may only return whom it was sent (protocols.md section 4).
        for check in &returned {
            let join = &spec.joins[check.join];
            let mut never_sent: Vec<u64> = (0..join.len())
                .filter(|&row| !check.seen[row])
                .map(|row| join.line(row))
                .collect();
            if !never_sent.is_empty() {
                never_sent.sort_unstable();
                let total = never_sent.len() as u64;
                let why = format!(
                    "an INSZ that is not in the population of file {} (never sent)",
                    check.from
                );
                return Err(JoinError::Lines {
                    name: join.name.clone(),
                    path: join.path.clone(),
                    listed: never_sent
                        .into_iter()
                        .take(crate::join::MAX_LISTED)
                        .map(|line| (line, why.clone()))
                        .collect(),
                    total,
                }
                .into());
            }
        }
        let joins: Vec<JoinUse> = spec
            .joins
            .iter()
            .zip(&matched)
            .map(|(join, matched)| {
                let hit = matched.iter().filter(|m| **m).count() as u64;
                JoinUse {
                    name: join.name.clone(),
                    rows: join.len() as u64,
                    matched: hit,
                    unmatched: join.len() as u64 - hit,
                }
            })
            .collect();

        let file = spec.file;
        let key = spec.pseudonym_key.clone();
        // The order of the rows says nothing the columns do not: INSZ ascending when the INSZ
        // is a column (as the yearly list), pseudonym ascending for pseudonyms, and by the cells'
        // texts when the identity is removed (an INSZ order would leak birth dates).
        match (file.identity, &key) {
            (Identity::Pseudonym, Some(key)) => {
                table.sort_by_key(|t, row| {
                    Insz::from_digits(t.insz(row))
                        .map(|insz| key.pseudonym_bytes(insz))
                        .ok()
                });
            }
            (Identity::Removed, _) => {
                table.sort_by(|t, a, b| {
                    let (ra, rb) = (t.row(a), t.row(b));
                    ra.iter()
                        .zip(rb)
                        .map(|(x, y)| values.text(*x).cmp(values.text(*y)))
                        .find(|o| o.is_ne())
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            }
            _ => table.sort_by_key(|t, row| t.insz(row)),
        }
        let suppressed = match file.min_group {
            Some(k) if file.identity != Identity::Insz => {
                let qi: Vec<usize> = file
                    .quasi_identifiers
                    .iter()
                    .filter_map(|qi| column_of(&columns, file, qi))
                    .collect();
                suppress::suppress(&mut table, &qi, k)
            }
            _ => Suppressed::default(),
        };
        Ok(Selected {
            header: file.fields.iter().map(fields::header_name).collect(),
            fields: file.fields.clone(),
            table,
            values,
            key,
            counts,
            joins,
            suppressed,
            warnings,
        })
    }
}

/// The table column of field `qi` (identity fields have none).
fn column_of(columns: &[Column], file: &FileSpec, qi: &Field) -> Option<usize> {
    let mut at = 0;
    for field in &file.fields {
        if matches!(
            field,
            Field::Catalogue(CatalogueField::Insz | CatalogueField::Pseudonym)
        ) {
            continue;
        }
        if field == qi {
            return Some(at).filter(|&a| a < columns.len());
        }
        at += 1;
    }
    None
}

/// A finished selection: the rows to write.
pub struct Selected {
    /// The header, in protocol order (`join:vdab.x` → `vdab.x`).
    pub header: Vec<String>,
    pub fields: Vec<Field>,
    table: Table,
    values: Values,
    key: Option<PseudonymKey>,
    pub counts: Counts,
    pub joins: Vec<JoinUse>,
    pub suppressed: Suppressed,
    /// WARN texts of the field derivations, with their counts (never a value).
    pub warnings: BTreeMap<&'static str, u64>,
}

impl Selected {
    /// Rows.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The INSZ of every row, in file order (for tests and the yearly list's equality).
    pub fn insz(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.table.len()).map(|r| self.table.insz(r))
    }

    /// Writes the CSV (RFC 4180 quoting, `\n` line ends, UTF-8) into `out`.
    pub fn write_csv<W: std::io::Write>(&self, out: W) -> std::io::Result<W> {
        let mut writer = csv::WriterBuilder::new()
            .buffer_capacity(64 * 1024)
            .from_writer(out);
        writer.write_record(&self.header)?;
        for r in 0..self.table.len() {
            let insz = self.table.insz(r);
            let mut cells = self.table.row(r).iter();
            for field in &self.fields {
                match field {
                    Field::Catalogue(CatalogueField::Insz) => {
                        let digits = Insz::from_digits(insz)
                            .map(|i| i.digits())
                            .unwrap_or([b'0'; 11]);
                        writer.write_field(digits)?;
                    }
                    Field::Catalogue(CatalogueField::Pseudonym) => {
                        match (&self.key, Insz::from_digits(insz)) {
                            (Some(key), Ok(valid)) => {
                                let mut hex = [0u8; 32];
                                // 16 bytes → 32 hex digits: the buffer fits exactly.
                                hex::encode_to_slice(key.pseudonym_bytes(valid), &mut hex)
                                    .expect("32 hex digits");
                                writer.write_field(hex)?;
                            }
                            _ => writer.write_field(b"")?,
                        }
                    }
                    _ => {
                        let id = cells.next().copied().unwrap_or(EMPTY);
                        writer.write_field(self.values.text(id))?;
                    }
                }
            }
            writer.write_record(None::<&[u8]>)?;
        }
        writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.error().to_string()))
    }
}
