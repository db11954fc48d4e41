//! The selection: every dossier read is judged against the file's population, and the rows of
//! those in it are derived field by field and kept (compactly, `table.rs`) until all are read;
//! then the joins are checked (`returned_from`), the rows ordered, and small cells suppressed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

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

/// A selection being made: what deriving a row reads ([`Rules`], shared by the reader's
/// workers) and the rows kept so far ([`Rows`], on the fold's thread).
pub struct Selection<'a> {
    rules: Rules<'a>,
    rows: Rows,
    /// The derivation state of [`Selection::push`] (one thread).
    local: Local,
}

/// What deriving a person's row reads: the spec, the columns, the returned joins' filters and
/// the delivery's values. Shared by the reader's workers ([`Rules::worker`]): nothing in it
/// changes but the values, behind a lock that each worker's own cache mostly spares.
pub struct Rules<'a> {
    spec: SelectionSpec<'a>,
    judge: Option<Judge>,
    columns: Vec<Column>,
    returned: Vec<Returned>,
    values: Mutex<Values>,
}

/// The rows kept and the counts, in the reader's order (the fold's thread): everything that
/// needs the whole run.
pub struct Rows {
    /// Per returned join: which of its rows were in the population of the file it answers.
    seen: Vec<Vec<bool>>,
    matched: Vec<Vec<bool>>,
    table: Table,
    /// Each row's pseudonym (identity `pseudonym`), in table order.
    pseudonyms: Vec<[u8; 16]>,
    counts: Counts,
    warnings: BTreeMap<&'static str, u64>,
}

/// One person judged and derived (on a reader worker): all the fold needs, no dossier.
#[derive(Debug)]
pub struct Row {
    insz: u64,
    answer: Option<Answer>,
    /// For each returned join whose filters hold for this person: (which, its row).
    returned: Vec<(u32, u32)>,
    /// `None`: not in the file's population.
    cells: Option<Box<[u32]>>,
    pseudonym: [u8; 16],
    warnings: Vec<&'static str>,
}

/// A deriving thread's own state: its judge (a scratch buffer) and its cache of value ids.
struct Local {
    judge: Option<Judge>,
    /// Texts this thread has interned, with their ids in [`Rules::values`].
    ids: HashMap<String, u32>,
}

/// One reader worker's deriver ([`Rules::worker`]).
pub struct Worker<'r, 'a> {
    rules: &'r Rules<'a>,
    local: Local,
}

impl Worker<'_, '_> {
    /// Judges and derives one person's row.
    pub fn row(&mut self, insz: Insz, events: &[Event], dossier: &Dossier) -> Row {
        self.rules.derive(&mut self.local, insz, events, dossier)
    }
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
            });
        }
        let needs_answer = population::needs_answer(&file.population)
            || returned
                .iter()
                .any(|r| population::needs_answer(&r.filters));
        let judge = needs_answer.then(|| Judge::new(spec.rules, spec.facts, spec.reference));
        let rows = Rows {
            seen: returned
                .iter()
                .map(|r| vec![false; spec.joins[r.join].len()])
                .collect(),
            matched: spec.joins.iter().map(|j| vec![false; j.len()]).collect(),
            table: Table::new(columns.len()),
            pseudonyms: Vec::new(),
            counts: Counts::default(),
            warnings: BTreeMap::new(),
        };
        let rules = Rules {
            judge,
            columns,
            returned,
            values: Mutex::new(values),
            spec,
        };
        let local = rules.local();
        Ok(Selection { rules, rows, local })
    }

    /// Judges one person and keeps their row when they are in the population.
    pub fn push(&mut self, person: Person) {
        let row = self.rules.derive(
            &mut self.local,
            person.insz,
            &person.events,
            &person.dossier,
        );
        self.rows.add(&self.rules, row);
    }

    /// The shared rules (for the reader's workers) and the rows (for the fold's thread).
    pub fn split(&mut self) -> (&Rules<'a>, &mut Rows) {
        (&self.rules, &mut self.rows)
    }

    /// Checks the returned joins, orders the rows and suppresses small cells.
    pub fn finish(self) -> Result<Selected, SelectError> {
        let Selection {
            rules:
                Rules {
                    spec,
                    columns,
                    returned,
                    values,
                    ..
                },
            rows:
                Rows {
                    seen,
                    matched,
                    mut table,
                    pseudonyms: row_pseudonyms,
                    counts,
                    warnings,
                },
            ..
        } = self;
        let values = values.into_inner().unwrap_or_else(|e| e.into_inner());
        // A partner may only return whom it was sent (protocols.md section 4).
        for (check, seen) in returned.iter().zip(&seen) {
            let join = &spec.joins[check.join];
            let mut never_sent: Vec<u64> = (0..join.len())
                .filter(|&row| !seen[row])
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
        let key = spec.pseudonym_key.as_ref();
        debug_assert!(
            key.is_none()
                || file.identity != Identity::Pseudonym
                || row_pseudonyms.len() == table.len()
        );
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
        let mut pseudonyms: Vec<[u8; 16]> = Vec::new();
        // After suppression, so that the order cannot betray an emptied cell. The order of the
        // rows says nothing the columns do not: INSZ ascending when the INSZ
        // is a column (as the yearly list), pseudonym ascending for pseudonyms, and by the cells'
        // texts when the identity is removed (an INSZ order would leak birth dates).
        match (file.identity, &key) {
            (Identity::Pseudonym, Some(_)) => {
                // Computed once per row on the reader's workers (suppression moves no row):
                // kept, in the new order, for writing.
                pseudonyms = table.sort_with_keys(row_pseudonyms);
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
        Ok(Selected {
            header: file.fields.iter().map(fields::header_name).collect(),
            fields: file.fields.clone(),
            table,
            values,
            pseudonyms,
            counts,
            joins,
            suppressed,
            warnings,
        })
    }
}

impl<'a> Rules<'a> {
    fn local(&self) -> Local {
        Local {
            judge: self.judge.clone(),
            ids: HashMap::new(),
        }
    }

    /// A deriver for one reader worker.
    pub fn worker(&self) -> Worker<'_, 'a> {
        Worker {
            rules: self,
            local: self.local(),
        }
    }

    /// The id of `text` in the delivery's values: this thread's cache first, the shared table
    /// (added if new) on a miss. Ids follow the first thread to meet a text, so they are not
    /// the same from run to run; nothing written depends on them (cells are written as their
    /// texts, rows ordered by texts or identity, suppression groups by equality).
    fn intern(&self, ids: &mut HashMap<String, u32>, text: String) -> u32 {
        if let Some(&id) = ids.get(&text) {
            return id;
        }
        let id = self
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .intern(&text);
        ids.insert(text, id);
        id
    }

    /// Judges one person and derives their row: what needs no other person.
    fn derive(&self, local: &mut Local, person: Insz, events: &[Event], dossier: &Dossier) -> Row {
        let spec = &self.spec;
        let insz = person.value();
        let answer = local
            .judge
            .as_mut()
            .map(|judge| judge.answer(events.to_vec()));
        let joins = &spec.joins;
        let in_join = |name: &str| {
            joins
                .iter()
                .find(|j| j.name == name)
                .is_some_and(|j| j.row_of(insz).is_some())
        };
        let reference = spec.reference;
        let mut returned = Vec::new();
        for (at, check) in self.returned.iter().enumerate() {
            if let Some(row) = joins[check.join].row_of(insz) {
                if population::all_hold(&check.filters, answer, events, reference, &in_join) {
                    returned.push((at as u32, row as u32));
                }
            }
        }
        let mut row = Row {
            insz,
            answer,
            returned,
            cells: None,
            pseudonym: [0; 16],
            warnings: Vec::new(),
        };
        if !population::all_hold(&spec.file.population, answer, events, reference, &in_join) {
            return row;
        }
        let ctx = Context {
            reference,
            age_bands: &spec.file.age_bands,
            codes: spec.codes,
            regions: spec.regions,
        };
        let warnings = &mut row.warnings;
        let mut warn = |text: &'static str| warnings.push(text);
        let cells = self
            .columns
            .iter()
            .map(|column| match column {
                Column::Catalogue(field) => {
                    let text = fields::value(*field, dossier, &ctx, &mut warn);
                    self.intern(&mut local.ids, text)
                }
                Column::Join { join, column } => match joins[*join].row_of(insz) {
                    Some(row) => joins[*join].cell(row, *column),
                    None => EMPTY,
                },
            })
            .collect();
        row.cells = Some(cells);
        if let (Identity::Pseudonym, Some(key)) = (spec.file.identity, &spec.pseudonym_key) {
            row.pseudonym = key.pseudonym_bytes(person);
        }
        row
    }
}

impl Rows {
    /// Keeps a derived row, in the reader's order.
    pub fn add(&mut self, rules: &Rules<'_>, row: Row) {
        let spec = &rules.spec;
        self.counts.dossiers += 1;
        if row.answer == Some(Answer::NoRegime) {
            self.counts.no_regime += 1;
        }
        for &(at, join_row) in &row.returned {
            self.seen[at as usize][join_row as usize] = true;
        }
        let Some(cells) = row.cells else {
            return;
        };
        self.counts.in_population += 1;
        for text in row.warnings {
            *self.warnings.entry(text).or_insert(0) += 1;
        }
        for (join, matched) in spec.joins.iter().zip(self.matched.iter_mut()) {
            if let Some(at) = join.row_of(row.insz) {
                matched[at] = true;
            }
        }
        self.table.push(row.insz, &cells);
        if let (Identity::Pseudonym, Some(_)) = (spec.file.identity, &spec.pseudonym_key) {
            self.pseudonyms.push(row.pseudonym);
        }
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
    /// Each row's pseudonym (identity `pseudonym`), in row order.
    pseudonyms: Vec<[u8; 16]>,
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
                    Field::Catalogue(CatalogueField::Pseudonym) => match self.pseudonyms.get(r) {
                        Some(bytes) => {
                            let mut hex = [0u8; 32];
                            // 16 bytes → 32 hex digits: the buffer fits exactly.
                            hex::encode_to_slice(bytes, &mut hex).expect("32 hex digits");
                            writer.write_field(hex)?;
                        }
                        None => writer.write_field(b"")?,
                    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use kbi_core::domain::event::{EventKind, Region};
    use kbi_import::dossier::Profile;
    use kbi_protocol::Join;

    const PROTOCOL: &str = r#"
id = "p"
title = "t"
sender = "s"
recipient = "r"
legal_basis = ["b"]
term = { from = 2020-01-01 }

[[files]]
id = "sent"
period = "on-demand"
population = ["contract-since:2022-03-01"]
fields = ["insz"]
identity = "insz"
encryption = "recipients"

[[files]]
id = "kept"
period = "on-demand"
population = ["contract-since:2022-03-01"]
fields = ["insz", "sex", "join:partner.x"]
identity = "insz"
encryption = "recipients"
[[files.joins]]
name = "partner"
key = "insz"
columns = ["x"]

[[files]]
id = "removed"
period = "on-demand"
population = ["all"]
fields = ["sex", "join:partner.x"]
identity = "removed"
encryption = "recipients"
min_group = 2
quasi_identifiers = ["sex"]
[[files.joins]]
name = "partner"
key = "insz"
columns = ["x"]
returned_from = "sent"

[[files]]
id = "pseudo"
period = "on-demand"
population = ["all"]
fields = ["pseudonym", "sex"]
identity = "pseudonym"
encryption = "recipients"
"#;

    const A: &str = "85073003328";
    const B: &str = "93051822361";
    const C: &str = "00010100105";

    fn d(text: &str) -> NaiveDate {
        kbi_core::domain::day::parse_date(text).unwrap()
    }

    fn person(insz: &str, sex: &str, contract: Option<&str>) -> Person {
        let mut events = vec![Event {
            date: d("2021-01-01"),
            kind: EventKind::ObligationStart {
                region: Region::Flanders,
            },
        }];
        if let Some(day) = contract {
            events.push(Event {
                date: d(day),
                kind: EventKind::ContractSigned,
            });
        }
        let dossier = Dossier {
            profile: Some(Box::new(Profile {
                geslacht: Some(Some(sex.to_owned())),
                ..Profile::default()
            })),
            ..Dossier::default()
        };
        Person {
            insz: Insz::parse(insz).unwrap(),
            events,
            dossier: Box::new(dossier),
        }
    }

    fn partner(spec: &FileSpec, text: &str, values: &mut Values) -> JoinTable {
        let join: &Join = &spec.joins[0];
        crate::join::load(
            join,
            std::path::Path::new("partner.csv"),
            text.as_bytes(),
            values,
        )
        .unwrap()
    }

    fn select(
        file: &str,
        partner_csv: Option<&str>,
        key: Option<PseudonymKey>,
        persons: Vec<Person>,
    ) -> Result<(Selected, String), SelectError> {
        let protocol = Protocol::from_toml(PROTOCOL).unwrap();
        let spec = protocol.file(file).unwrap();
        let mut values = Values::default();
        let joins = partner_csv
            .map(|text| vec![partner(spec, text, &mut values)])
            .unwrap_or_default();
        let rules = RuleSet::shipped();
        let codes = Codes::shipped();
        let regions = Regions::shipped();
        let mut selection = Selection::new(
            SelectionSpec {
                protocol: &protocol,
                file: spec,
                reference: d("2024-06-30"),
                rules: &rules,
                facts: crate::dossier_facts(),
                codes: &codes,
                regions: &regions,
                pseudonym_key: key,
                joins,
            },
            values,
        )?;
        for p in persons {
            selection.push(p);
        }
        let selected = selection.finish()?;
        let csv = String::from_utf8(selected.write_csv(Vec::new()).unwrap()).unwrap();
        Ok((selected, csv))
    }

    #[test]
    fn rows_hold_exactly_the_fields_in_protocol_order_insz_ascending() {
        let partner_csv = format!("insz,x\n{A},a1\n{C},c1\n");
        let (selected, csv) = select(
            "kept",
            Some(&partner_csv),
            None,
            vec![
                person(B, "2", Some("2023-01-01")),
                person(A, "1", Some("2022-03-01")),
                person(C, "1", Some("2022-02-28")),
            ],
        )
        .unwrap();
        assert_eq!(csv, format!("insz,sex,partner.x\n{A},M,a1\n{B},V,\n"));
        assert_eq!(selected.counts.dossiers, 3);
        assert_eq!(selected.counts.in_population, 2);
        assert_eq!(
            selected.joins[0],
            JoinUse {
                name: "partner".into(),
                rows: 2,
                matched: 1,
                unmatched: 1
            }
        );
    }

    #[test]
    fn a_returned_row_for_someone_never_sent_is_refused_by_its_line() {
        // C has no contract since 2022-03-01: not in `sent`'s population.
        let partner_csv = format!("insz,x\n{A},a1\n{C},c1\n");
        let error = select(
            "removed",
            Some(&partner_csv),
            None,
            vec![person(A, "1", Some("2022-03-01")), person(C, "1", None)],
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            error.contains("line 3: an INSZ that is not in the population of file sent"),
            "{error}"
        );
        assert!(!error.contains(C), "{error}");
    }

    #[test]
    fn removed_identity_has_no_insz_column_and_small_groups_are_suppressed() {
        let partner_csv = format!("insz,x\n{A},a1\n{B},b1\n");
        let (selected, csv) = select(
            "removed",
            Some(&partner_csv),
            None,
            vec![
                person(A, "1", Some("2022-03-01")),
                person(B, "1", Some("2022-03-01")),
                person(C, "2", Some("2022-03-01")),
            ],
        )
        .unwrap();
        // C is alone with sex V (a group of 1 < min_group 2): emptied; the rows are ordered by
        // their cells, never by INSZ.
        assert_eq!(csv, "sex,partner.x\n,\nM,a1\nM,b1\n");
        assert_eq!(selected.suppressed, Suppressed { rows: 1, cells: 1 });
        for insz in [A, B, C] {
            assert!(!csv.contains(insz));
        }
    }

    #[test]
    fn pseudonyms_replace_the_insz_and_order_the_rows() {
        let key = PseudonymKey::from_bytes([9; 32]);
        let (_, csv) = select(
            "pseudo",
            None,
            Some(key.clone()),
            vec![person(A, "1", None), person(B, "2", None)],
        )
        .unwrap();
        let mut expected = [
            format!("{},M", key.pseudonym(Insz::parse(A).unwrap())),
            format!("{},V", key.pseudonym(Insz::parse(B).unwrap())),
        ];
        expected.sort();
        assert_eq!(csv, format!("pseudonym,sex\n{}\n", expected.join("\n")));
        assert!(matches!(
            select("pseudo", None, None, vec![]).err().unwrap(),
            SelectError::NeedsPseudonymKey { .. }
        ));
        assert!(matches!(
            select("sent", None, Some(key), vec![]).err().unwrap(),
            SelectError::PseudonymKeyNotUsed { .. }
        ));
    }

    #[test]
    fn a_declared_join_must_be_given() {
        let error = select("kept", None, None, vec![])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("no --join partner=FILE"), "{error}");
    }

    /// Rows derived by workers on other threads (as the reader's workers do) and kept by
    /// [`Rows::add`] give the same file as [`Selection::push`] on one thread; the workers' ids
    /// for one text are the same id.
    #[test]
    fn rows_derived_on_worker_threads_give_the_same_file() {
        let key = PseudonymKey::from_bytes([7; 32]);
        let persons = || {
            vec![
                person(A, "1", Some("2022-03-01")),
                person(B, "2", Some("2022-03-01")),
                person(C, "1", None),
            ]
        };
        for (file, partner_csv, key) in [
            ("kept", Some(format!("insz,x\n{A},a1\n{C},c1\n")), None),
            ("pseudo", None, Some(key.clone())),
        ] {
            let (_, one_thread) =
                select(file, partner_csv.as_deref(), key.clone(), persons()).unwrap();
            let protocol = Protocol::from_toml(PROTOCOL).unwrap();
            let spec = protocol.file(file).unwrap();
            let mut values = Values::default();
            let joins = partner_csv
                .as_deref()
                .map(|text| vec![partner(spec, text, &mut values)])
                .unwrap_or_default();
            let (rules_set, codes, regions) =
                (RuleSet::shipped(), Codes::shipped(), Regions::shipped());
            let mut selection = Selection::new(
                SelectionSpec {
                    protocol: &protocol,
                    file: spec,
                    reference: d("2024-06-30"),
                    rules: &rules_set,
                    facts: crate::dossier_facts(),
                    codes: &codes,
                    regions: &regions,
                    pseudonym_key: key,
                    joins,
                },
                values,
            )
            .unwrap();
            let (rules, rows) = selection.split();
            // Two workers, each its own share, derived on their threads; kept in order here.
            let derived: Vec<Row> = std::thread::scope(|scope| {
                let all = persons();
                let (first, second) = all.split_at(2);
                let spawn = |ps: Vec<Person>| {
                    scope.spawn(move || {
                        let mut worker = rules.worker();
                        ps.iter()
                            .map(|p| worker.row(p.insz, &p.events, &p.dossier))
                            .collect::<Vec<_>>()
                    })
                };
                let a = spawn(first.iter().map(clone_person).collect());
                let b = spawn(second.iter().map(clone_person).collect());
                let mut rows = a.join().unwrap();
                rows.extend(b.join().unwrap());
                rows
            });
            for row in derived {
                rows.add(rules, row);
            }
            let selected = selection.finish().unwrap();
            let csv = String::from_utf8(selected.write_csv(Vec::new()).unwrap()).unwrap();
            assert_eq!(csv, one_thread, "{file}");
        }
    }

    fn clone_person(p: &Person) -> Person {
        Person {
            insz: p.insz,
            events: p.events.clone(),
            dossier: p.dossier.clone(),
        }
    }
}
