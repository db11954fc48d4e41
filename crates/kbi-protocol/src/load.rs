//! Reading a protocol file: TOML (unknown keys refused) into [`Protocol`], every rule of
//! `protocols.md` section 1 checked, each refusal naming the key's path.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::Deserialize;
use toml::value::Datetime;

use crate::catalogue::{CatalogueField, Field};
use crate::model::*;
use crate::{is_id, MAX_ID};

/// Why a protocol file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Not TOML, an unknown or missing key, a wrong type (the text names line and key).
    #[error("{0}")]
    Syntax(String),
    /// A key whose value breaks a rule of the format.
    #[error("`{key}`: {detail}")]
    Invalid { key: String, detail: String },
}

impl LoadError {
    /// The key path of an [`LoadError::Invalid`] refusal.
    pub fn key(&self) -> Option<&str> {
        match self {
            LoadError::Invalid { key, .. } => Some(key),
            LoadError::Syntax(_) => None,
        }
    }
}

fn invalid(key: impl Into<String>, detail: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        key: key.into(),
        detail: detail.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    id: String,
    title: String,
    #[serde(default)]
    signed_on: Option<Datetime>,
    sender: String,
    recipient: String,
    legal_basis: Vec<String>,
    term: WindowToml,
    #[serde(default)]
    retention_years: Option<u32>,
    #[serde(default)]
    ended: Option<EndedToml>,
    #[serde(default)]
    questions: Vec<QuestionToml>,
    #[serde(default)]
    files: Vec<DeliveryToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowToml {
    from: Datetime,
    #[serde(default)]
    until: Option<Datetime>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearsToml {
    from: i32,
    #[serde(default)]
    until: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndedToml {
    on: Datetime,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionToml {
    purpose: String,
    asks: Asks,
    #[serde(default)]
    reference_dates: Option<WindowToml>,
    #[serde(default)]
    premium_years: Option<YearsToml>,
    #[serde(default)]
    ended: Option<EndedToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryToml {
    id: String,
    period: Period,
    population: Vec<String>,
    fields: Vec<String>,
    identity: Identity,
    encryption: Encryption,
    #[serde(default)]
    age_bands: Option<Vec<u32>>,
    #[serde(default)]
    special_categories: Vec<String>,
    #[serde(default)]
    min_group: Option<u32>,
    #[serde(default)]
    quasi_identifiers: Vec<String>,
    #[serde(default)]
    recipients_file: Option<String>,
    #[serde(default)]
    joins: Vec<JoinToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinToml {
    name: String,
    key: String,
    columns: Vec<String>,
    #[serde(default)]
    returned_from: Option<String>,
}

/// A TOML local date (`2021-10-01`, no time, no offset).
fn date(key: &str, value: &Datetime) -> Result<NaiveDate, LoadError> {
    let day = match (value.date, value.time, value.offset) {
        (Some(d), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        _ => None,
    };
    day.ok_or_else(|| invalid(key, "must be a date (YYYY-MM-DD), without time or offset"))
}

fn date_window(key: &str, raw: &WindowToml) -> Result<DateWindow, LoadError> {
    let from = date(&format!("{key}.from"), &raw.from)?;
    let until = match &raw.until {
        Some(until) => Some(date(&format!("{key}.until"), until)?),
        None => None,
    };
    if until.is_some_and(|until| until < from) {
        return Err(invalid(format!("{key}.until"), "is before `from`"));
    }
    Ok(DateWindow { from, until })
}

fn ended(key: &str, raw: &Option<EndedToml>) -> Result<Option<Ended>, LoadError> {
    let Some(raw) = raw else { return Ok(None) };
    let on = date(&format!("{key}.on"), &raw.on)?;
    let reason = raw.reason.trim();
    if reason.is_empty() {
        return Err(invalid(
            format!("{key}.reason"),
            "say why it ended (the judgment, the law, the decision)",
        ));
    }
    Ok(Some(Ended {
        on,
        reason: reason.to_owned(),
    }))
}

fn text(key: &str, value: &str) -> Result<String, LoadError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(value.to_owned())
}

fn id(key: &str, value: &str) -> Result<String, LoadError> {
    if is_id(value) {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            key,
            format!("must be 1–{MAX_ID} characters of a–z, 0–9 and `-`"),
        ))
    }
}

impl Protocol {
    /// Parses and validates one protocol file.
    pub fn from_toml(text_in: &str) -> Result<Protocol, LoadError> {
        let raw: FileToml = kbi_core::redact::toml(text_in).map_err(LoadError::Syntax)?;
        let protocol_id = id("id", &raw.id)?;
        let title = text("title", &raw.title)?;
        let signed_on = match &raw.signed_on {
            Some(value) => Some(date("signed_on", value)?),
            None => None,
        };
        let sender = text("sender", &raw.sender)?;
        let recipient = text("recipient", &raw.recipient)?;
        if raw.legal_basis.is_empty() {
            return Err(invalid("legal_basis", "name at least one legal basis"));
        }
        let mut legal_basis = Vec::with_capacity(raw.legal_basis.len());
        for (i, basis) in raw.legal_basis.iter().enumerate() {
            legal_basis.push(text(&format!("legal_basis[{i}]"), basis)?);
        }
        let term = date_window("term", &raw.term)?;
        let protocol_ended = ended("ended", &raw.ended)?;

        let mut questions: Vec<Purpose> = Vec::with_capacity(raw.questions.len());
        for (i, q) in raw.questions.iter().enumerate() {
            let key = |name: &str| format!("questions[{i}].{name}");
            let name = id(&key("purpose"), &q.purpose)?;
            if questions.iter().any(|p| *p.name == *name) {
                return Err(invalid(key("purpose"), "this purpose is already defined"));
            }
            if questions.iter().any(|p| p.asks == q.asks) {
                return Err(invalid(
                    key("asks"),
                    format!(
                        "another purpose already asks `{}`: a question's form must name one purpose",
                        q.asks.as_str()
                    ),
                ));
            }
            let window = match (q.asks, &q.reference_dates, &q.premium_years) {
                (_, Some(_), Some(_)) => {
                    return Err(invalid(
                        key("premium_years"),
                        "give `reference_dates` or `premium_years`, not both",
                    ))
                }
                (Asks::Date, None, Some(_)) => {
                    return Err(invalid(
                        key("premium_years"),
                        "a purpose that asks `date` has `reference_dates`",
                    ))
                }
                (Asks::PremiumYear, Some(_), None) => {
                    return Err(invalid(
                        key("reference_dates"),
                        "a purpose that asks `premium_year` has `premium_years`",
                    ))
                }
                (Asks::Date, Some(w), None) => {
                    PurposeWindow::Dates(date_window(&key("reference_dates"), w)?)
                }
                (Asks::PremiumYear, None, Some(y)) => {
                    if !(1001..=9999).contains(&y.from) {
                        return Err(invalid(
                            key("premium_years.from"),
                            "must be a four-digit year",
                        ));
                    }
                    if let Some(until) = y.until {
                        if !(1001..=9999).contains(&until) {
                            return Err(invalid(
                                key("premium_years.until"),
                                "must be a four-digit year",
                            ));
                        }
                        if until < y.from {
                            return Err(invalid(key("premium_years.until"), "is before `from`"));
                        }
                    }
                    PurposeWindow::PremiumYears(YearWindow {
                        from: y.from,
                        until: y.until,
                    })
                }
                (_, None, None) => PurposeWindow::Any,
            };
            questions.push(Purpose {
                name: Arc::from(name),
                asks: q.asks,
                window,
                ended: ended(&key("ended"), &q.ended)?,
            });
        }

        let mut files: Vec<FileSpec> = Vec::with_capacity(raw.files.len());
        for (i, f) in raw.files.iter().enumerate() {
            let spec = delivery(i, f)?;
            if files.iter().any(|other| other.id == spec.id) {
                return Err(invalid(
                    format!("files[{i}].id"),
                    "this file id is already defined",
                ));
            }
            files.push(spec);
        }
        // A join may only be returned from a delivery of this protocol.
        for (i, f) in files.iter().enumerate() {
            for (j, join) in f.joins.iter().enumerate() {
                if let Some(from) = &join.returned_from {
                    if !files.iter().any(|other| &other.id == from) {
                        return Err(invalid(
                            format!("files[{i}].joins[{j}].returned_from"),
                            "names no [[files]] entry of this protocol",
                        ));
                    }
                }
            }
        }
        Ok(Protocol {
            id: Arc::from(protocol_id),
            title,
            signed_on,
            sender,
            recipient,
            legal_basis,
            term,
            retention_years: raw.retention_years,
            ended: protocol_ended,
            questions,
            files,
        })
    }
}

fn delivery(i: usize, raw: &DeliveryToml) -> Result<FileSpec, LoadError> {
    let key = |name: &str| format!("files[{i}].{name}");
    let file_id = id(&key("id"), &raw.id)?;

    let mut joins: Vec<Join> = Vec::with_capacity(raw.joins.len());
    for (j, join) in raw.joins.iter().enumerate() {
        let jkey = |name: &str| format!("files[{i}].joins[{j}].{name}");
        let name = id(&jkey("name"), &join.name)?;
        if joins.iter().any(|other| other.name == name) {
            return Err(invalid(jkey("name"), "this join is already declared"));
        }
        if join.key != "insz" {
            return Err(invalid(jkey("key"), "a join is on `insz`"));
        }
        // An empty `columns` is checked below, once the population is read: a join of the key
        // alone (a municipality's residents) serves an `in-join:` filter and nothing else.
        let mut columns: Vec<String> = Vec::with_capacity(join.columns.len());
        for (k, column) in join.columns.iter().enumerate() {
            let ckey = jkey(&format!("columns[{k}]"));
            let ok = !column.is_empty()
                && column.len() <= 64
                && column
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(invalid(ckey, "must be 1–64 characters of a–z, 0–9 and `_`"));
            }
            if column == "insz" || columns.contains(column) {
                return Err(invalid(ckey, "column listed twice (or the key `insz`)"));
            }
            columns.push(column.clone());
        }
        let returned_from = match &join.returned_from {
            Some(from) => Some(id(&jkey("returned_from"), from)?),
            None => None,
        };
        joins.push(Join {
            name,
            columns,
            returned_from,
        });
    }

    let field = |k: &str, text: &str| -> Result<Field, LoadError> {
        let field = Field::parse(text).ok_or_else(|| {
            invalid(
                k,
                "not a field of the catalogue (protocols.md section 3) nor `join:NAME.COLUMN`",
            )
        })?;
        if let Field::Join { name, column } = &field {
            let declared = joins
                .iter()
                .find(|join| &join.name == name)
                .ok_or_else(|| invalid(k, "names a join that [[files.joins]] does not declare"))?;
            if !declared.columns.contains(column) {
                return Err(invalid(k, "names a column its join does not declare"));
            }
        }
        Ok(field)
    };

    if raw.fields.is_empty() {
        return Err(invalid(key("fields"), "list at least one field"));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(raw.fields.len());
    for (k, text) in raw.fields.iter().enumerate() {
        let fkey = key(&format!("fields[{k}]"));
        let f = field(&fkey, text)?;
        if fields.contains(&f) {
            return Err(invalid(fkey, "field listed twice"));
        }
        fields.push(f);
    }
    let has = |f: CatalogueField| fields.contains(&Field::Catalogue(f));
    match raw.identity {
        Identity::Insz if has(CatalogueField::Pseudonym) => {
            return Err(invalid(
                key("fields"),
                "`pseudonym` needs identity = \"pseudonym\"",
            ))
        }
        Identity::Pseudonym if has(CatalogueField::Insz) => {
            return Err(invalid(key("fields"), "`insz` needs identity = \"insz\""))
        }
        Identity::Removed if has(CatalogueField::Insz) || has(CatalogueField::Pseudonym) => {
            return Err(invalid(
                key("fields"),
                "identity = \"removed\" allows neither `insz` nor `pseudonym`",
            ))
        }
        _ => {}
    }

    if raw.population.is_empty() {
        return Err(invalid(
            key("population"),
            "list at least one filter (or \"all\")",
        ));
    }
    let mut population: Vec<Population> = Vec::with_capacity(raw.population.len());
    for (k, text) in raw.population.iter().enumerate() {
        let pkey = key(&format!("population[{k}]"));
        let filter = match text.as_str() {
            "all" => Population::All,
            "subject" => Population::Subject,
            "answer-nok" => Population::AnswerNok,
            other => {
                if let Some(day) = other.strip_prefix("contract-since:") {
                    let day = kbi_core::domain::day::parse_date(day)
                        .map_err(|_| invalid(&pkey, "contract-since: needs a date YYYY-MM-DD"))?;
                    Population::ContractSince(day)
                } else if let Some(name) = other.strip_prefix("in-join:") {
                    if !joins.iter().any(|join| join.name == name) {
                        return Err(invalid(
                            pkey,
                            "names a join that [[files.joins]] does not declare",
                        ));
                    }
                    Population::InJoin(name.to_owned())
                } else {
                    return Err(invalid(
                        pkey,
                        "not a population filter (all, subject, answer-nok, \
                         contract-since:YYYY-MM-DD, in-join:NAME)",
                    ));
                }
            }
        };
        if population.contains(&filter) {
            return Err(invalid(pkey, "filter listed twice"));
        }
        population.push(filter);
    }

    // A join with no columns adds nothing to a row; it is only meaningful as the list an
    // `in-join:NAME` filter selects on (its file then holds the single column `insz`).
    for (j, join) in joins.iter().enumerate() {
        if join.columns.is_empty() && !population.contains(&Population::InJoin(join.name.clone())) {
            return Err(invalid(
                format!("files[{i}].joins[{j}].columns"),
                "declare at least one column (a join of the key alone only serves an \
                 `in-join:` population filter)",
            ));
        }
    }

    let age_bands = match &raw.age_bands {
        Some(bands) => {
            if bands.is_empty() || bands.windows(2).any(|w| w[0] >= w[1]) {
                return Err(invalid(
                    key("age_bands"),
                    "must be ages in strictly increasing order",
                ));
            }
            bands.clone()
        }
        None if has(CatalogueField::AgeCategory) => {
            return Err(invalid(
                key("age_bands"),
                "required when `age_category` is a field",
            ))
        }
        None => Vec::new(),
    };

    let listed = |name: &str, texts: &[String]| -> Result<Vec<Field>, LoadError> {
        let mut out: Vec<Field> = Vec::with_capacity(texts.len());
        for (k, text) in texts.iter().enumerate() {
            let lkey = key(&format!("{name}[{k}]"));
            let f = field(&lkey, text)?;
            if !fields.contains(&f) {
                return Err(invalid(lkey, "is not one of this file's `fields`"));
            }
            if out.contains(&f) {
                return Err(invalid(lkey, "field listed twice"));
            }
            out.push(f);
        }
        Ok(out)
    };
    let special_categories = listed("special_categories", &raw.special_categories)?;
    for (k, f) in fields.iter().enumerate() {
        if f.is_special_category() && !special_categories.contains(f) {
            return Err(invalid(
                key(&format!("fields[{k}]")),
                "a special category of personal data (GDPR art. 9): declare it in \
                 `special_categories`",
            ));
        }
    }
    let quasi_identifiers = listed("quasi_identifiers", &raw.quasi_identifiers)?;
    if raw.min_group.is_some() || !quasi_identifiers.is_empty() {
        if raw.identity == Identity::Insz {
            return Err(invalid(
                key("min_group"),
                "small-cell suppression is for identity \"removed\" or \"pseudonym\"",
            ));
        }
        match raw.min_group {
            Some(k) if k >= 2 && !quasi_identifiers.is_empty() => {}
            Some(_) if quasi_identifiers.is_empty() => {
                return Err(invalid(
                    key("quasi_identifiers"),
                    "required with `min_group`",
                ))
            }
            Some(_) => return Err(invalid(key("min_group"), "must be at least 2")),
            None => {
                return Err(invalid(
                    key("min_group"),
                    "required with `quasi_identifiers`",
                ))
            }
        }
    }
    let recipients_file = match &raw.recipients_file {
        Some(path) => Some(text(&key("recipients_file"), path)?),
        None => None,
    };
    if recipients_file.is_some() && raw.encryption != Encryption::Recipients {
        return Err(invalid(
            key("recipients_file"),
            "only with encryption = \"recipients\"",
        ));
    }
    Ok(FileSpec {
        id: file_id,
        period: raw.period,
        population,
        fields,
        identity: raw.identity,
        encryption: raw.encryption,
        age_bands,
        special_categories,
        min_group: raw.min_group,
        quasi_identifiers,
        recipients_file,
        joins,
    })
}
