//! The field catalogue (`protocols.md` section 3): one pure derivation per field.
//!
//! Each function reads one parsed dossier ([`Dossier`], the profile filled by the export's
//! reader) on a reference date and returns the cell: `""` when the dossier does not hold the
//! value (never a guess). The general rules, applied by every function (`docs/exports.md`,
//! "Fields: how each is derived"):
//!
//! - dates are read with the import's own reading ([`date_of`], row M21): a date with `99` or
//!   `00` parts, an impossible date or a text that is no date is *unusable*, and an unusable date
//!   is treated as an absent one; dates are written `YYYY-MM-DD`;
//! - a dated fact after the reference date is not counted: the file describes the register as
//!   it stood on that day;
//! - "latest" is the latest not after the reference date; candidates tied on the latest date
//!   give their value when they agree and an empty cell (and a WARN) when they do not, since
//!   document order says nothing about which is current;
//! - codes are written as the dossier holds them, trimmed; a text that does not look like a
//!   code (letters, digits, `_ - . /`, at most 32 bytes, no run of 11 digits) is not written
//!   (WARN), so that free text or an INSZ typed into a code element never leaves.
//!
//! WARN texts are fixed (`&'static str`): they name the field and what was wrong, never a value
//! of the person.

use chrono::NaiveDate;

use kbi_core::domain::day::iso_date_bytes;
use kbi_import::codes::Codes;
use kbi_import::dossier::{Dossier, OnderdeelBesluit, Profile, Text, Toeleiding, Traject};
use kbi_import::mapping::{certificate_document_dates, date_of};
use kbi_protocol::{CatalogueField, Field};

use crate::regions::Regions;

/// What every derivation may look at besides the dossier.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The reference date of the delivery.
    pub reference: NaiveDate,
    /// The file entry's `age_bands` (strictly increasing, as the protocol loader checks).
    pub age_bands: &'a [u32],
    /// The reviewed code lists (`config/kbi-codes.toml`), the import's.
    pub codes: &'a Codes,
    /// The reviewed office → region list (`config/kbi-regions.toml`).
    pub regions: &'a Regions,
}

/// The `TrajectOnderdeel/Type` of the professional orientation (PLO) part (section 3).
pub const PLO_PART_TYPE: &str = "TO_OB_PLO";

/// Oldest age written in `age_category`: a birth date further back is held impossible (the
/// schema's `DatumType` admits years 0000–2999 and 9xxx placeholders).
pub const MAX_AGE: u32 = 130;

/// Longest text written as a code.
const MAX_CODE: usize = 32;

/// WARN: `kbi_region` of an office the reviewed list does not hold.
pub const WARN_OFFICE_NOT_LISTED: &str = "kbi_office not in config/kbi-regions.toml";

/// The cell of one catalogue field (`""` = the dossier does not hold it). `insz` and
/// `pseudonym` are the engine's (identity, section 5): this returns `""` for them.
pub fn value(
    field: CatalogueField,
    dossier: &Dossier,
    ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    let derive = match field {
        CatalogueField::Insz | CatalogueField::Pseudonym => return String::new(),
        CatalogueField::AgeCategory => age_category,
        CatalogueField::Sex => sex,
        CatalogueField::TargetGroup => target_group,
        CatalogueField::TargetGroupSince => target_group_since,
        CatalogueField::RegistrationDate => registration_date,
        CatalogueField::ContractDate => contract_date,
        CatalogueField::ContractSigned => contract_signed,
        CatalogueField::CertificateObtained => certificate_obtained,
        CatalogueField::TrajectoryType => trajectory_type,
        CatalogueField::KbiOffice => kbi_office,
        CatalogueField::KbiRegion => kbi_region,
        CatalogueField::PloDecision => plo_decision,
        CatalogueField::PloDecisionReason => plo_decision_reason,
        CatalogueField::HighestNt2Level => highest_nt2_level,
        CatalogueField::LastNt2ActivityDate => last_nt2_activity_date,
        CatalogueField::DiplomaEquivalenceReferral => diploma_equivalence_referral,
        CatalogueField::DiplomaEquivalenceResult => diploma_equivalence_result,
    };
    derive(dossier, ctx, warn)
}

/// The column header of a field in a delivered file: the catalogue name (`age_category`), or
/// `NAME.COLUMN` for `join:NAME.COLUMN` (no catalogue name holds a dot, so the two never
/// collide).
pub fn header_name(field: &Field) -> String {
    match field {
        Field::Catalogue(field) => field.name().to_owned(),
        Field::Join { name, column } => format!("{name}.{column}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Personalia

/// `age_category`: `Personalia/Geboortedatum`, age in whole years on the reference date, banded
/// by `age_bands` (`[18, 25, …, 65]` → `<18`, `18-24`, …, `65+`). Unknown, unusable, later than
/// the reference date or more than [`MAX_AGE`] years back → `""`. Someone born on 29 February
/// turns a year older on 1 March in a common year.
pub fn age_category(
    dossier: &Dossier,
    ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    let Some(birth) = profile(dossier).and_then(|p| date(&p.geboortedatum)) else {
        return String::new();
    };
    let Some(age) = ctx.reference.years_since(birth) else {
        return String::new(); // born after the reference date
    };
    if age > MAX_AGE {
        return String::new();
    }
    if ctx.age_bands.is_empty() {
        warn("age_category: the file entry has no age_bands");
        return String::new();
    }
    band(age, ctx.age_bands)
}

/// The label of the band `age` falls in.
fn band(age: u32, bands: &[u32]) -> String {
    let Some(&first) = bands.first() else {
        return String::new();
    };
    if age < first {
        return format!("<{first}");
    }
    // bands[i - 1] <= age < bands[i]
    let i = bands.partition_point(|&b| b <= age);
    match bands.get(i) {
        Some(&next) => format!("{}-{}", bands[i - 1], next - 1),
        None => format!("{}+", bands[i - 1]),
    }
}

/// `sex`: `Personalia/Geslacht/Code` `1` → `M`, `2` → `V`, anything else or absent → `""`.
pub fn sex(dossier: &Dossier, _ctx: &Context, _warn: &mut dyn FnMut(&'static str)) -> String {
    match profile(dossier).and_then(|p| text(&p.geslacht)) {
        Some("1") => "M".to_owned(),
        Some("2") => "V".to_owned(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Doelgroep, Aanmelding, Contracten, BehaaldeAttesten

/// `target_group`: `Doelgroep/Type` when `Doelgroep/Code` is `JA` (the code lists'
/// `obligated_code`), else `""`. A type not in `[doelgroep] types` of the code lists → `""`
/// and a WARN. When `Doelgroep/Periode/Begin` is after the reference date → `""`: on that day
/// the dossier did not yet place the person in the group (a missing or unusable `Begin` does
/// not hide the type).
pub fn target_group(
    dossier: &Dossier,
    ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    let Some(g) = &dossier.doelgroep else {
        return String::new();
    };
    if text(&g.code) != Some(ctx.codes.obligated_code.as_str()) {
        return String::new();
    }
    let begin = g.periode.as_ref().and_then(|p| date(&p.begin));
    if begin.is_some_and(|b| b > ctx.reference) {
        return String::new();
    }
    match text(&g.type_) {
        None | Some("") => String::new(),
        Some(t) if ctx.codes.doelgroep_types.iter().any(|c| c == t) => t.to_owned(),
        Some(_) => {
            warn("target_group: Doelgroep/Type not in config/kbi-codes.toml, not written");
            String::new()
        }
    }
}

/// `target_group_since`: `Doelgroep/Periode/Begin` (whatever the `Code`, as section 3 says);
/// unusable (`99` parts) or after the reference date → `""`.
pub fn target_group_since(
    dossier: &Dossier,
    ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    let begin = dossier
        .doelgroep
        .as_ref()
        .and_then(|g| g.periode.as_ref())
        .and_then(|p| date(&p.begin));
    written(counted(begin, ctx))
}

/// `registration_date`: `Aanmelding/DatumAanmelding`; unusable or after the reference date → `""`.
pub fn registration_date(
    dossier: &Dossier,
    ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    let datum = dossier.aanmelding.as_ref().and_then(|a| date(&a.datum));
    written(counted(datum, ctx))
}

/// The usable `Contract/DatumRegistratie` dates not after the reference date.
fn contract_dates<'d>(
    dossier: &'d Dossier,
    ctx: &'d Context,
) -> impl Iterator<Item = NaiveDate> + 'd {
    dossier
        .contracten
        .iter()
        .filter_map(|c| date(&c.datum_registratie))
        .filter(|d| *d <= ctx.reference)
}

/// `contract_date`: the earliest `Contracten/Contract/DatumRegistratie` not after the reference
/// date (so that it is filled exactly when `contract_signed` is `ja`).
pub fn contract_date(
    dossier: &Dossier,
    ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    written(contract_dates(dossier, ctx).min())
}

/// `contract_signed`: `ja` when a contract is dated on or before the reference date, else `nee`.
pub fn contract_signed(
    dossier: &Dossier,
    ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    yes_no(contract_dates(dossier, ctx).next().is_some())
}

/// `certificate_obtained`: `ja` when `BehaaldeAttesten/Document` holds a certificate, read by
/// the import's own row M13 ([`certificate_document_dates`]: same code lists, `DatumOndertekening`
/// else `DatumAanmaak`), dated on or before the reference date; else `nee`. A certificate
/// decision on a trajectory (M11) does not count: section 3 names the documents only.
pub fn certificate_obtained(
    dossier: &Dossier,
    ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    yes_no(
        certificate_document_dates(dossier, ctx.codes)
            .into_iter()
            .any(|d| d <= ctx.reference),
    )
}

// ---------------------------------------------------------------------------------------------
// Trajecten

/// The latest integration trajectories (`Type` starting with the code lists'
/// `integration_type_prefix`, `TT_IB`) by `Beheerder/Periode/Begin` not after the reference
/// date; one without a usable `Begin` is not a candidate. All of them when tied.
fn latest_integration_trajectories<'d>(dossier: &'d Dossier, ctx: &Context) -> Vec<&'d Traject> {
    let prefix = ctx.codes.integration_type_prefix.as_str();
    latest(
        dossier
            .trajecten
            .iter()
            .filter(|t| text(&t.type_).is_some_and(|ty| ty.starts_with(prefix)))
            .filter_map(|t| {
                let begin = date(&t.beheerder.as_ref()?.begin)?;
                (begin <= ctx.reference).then_some((Some(begin), t))
            }),
    )
}

/// `trajectory_type`: `Trajecten/Traject/Type` of the latest integration trajectory.
pub fn trajectory_type(
    dossier: &Dossier,
    ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    let values = latest_integration_trajectories(dossier, ctx)
        .into_iter()
        .map(|t| {
            code(
                &t.type_,
                warn,
                "trajectory_type: Traject/Type is not a code, not written",
            )
        })
        .collect();
    agreed(
        values,
        warn,
        "trajectory_type: integration trajectories on the same latest date disagree",
    )
}

/// `kbi_office`: `Beheerder/KBIVestiging/KbiNummer` of the latest integration trajectory.
pub fn kbi_office(dossier: &Dossier, ctx: &Context, warn: &mut dyn FnMut(&'static str)) -> String {
    let values = latest_integration_trajectories(dossier, ctx)
        .into_iter()
        .map(|t| match &t.beheerder {
            Some(b) => code(
                &b.kbi_nummer,
                warn,
                "kbi_office: KbiNummer is not a code, not written",
            ),
            None => String::new(),
        })
        .collect();
    agreed(
        values,
        warn,
        "kbi_office: integration trajectories on the same latest date disagree",
    )
}

/// `kbi_region`: [`kbi_office`] through the reviewed list; an office not listed → `""` and the
/// WARN [`WARN_OFFICE_NOT_LISTED`]. (The office's own WARNs are `kbi_office`'s, not repeated.)
pub fn kbi_region(dossier: &Dossier, ctx: &Context, warn: &mut dyn FnMut(&'static str)) -> String {
    let office = kbi_office(dossier, ctx, &mut |_| {});
    if office.is_empty() {
        return String::new();
    }
    match ctx.regions.region(&office) {
        Some(region) => region.to_owned(),
        None => {
            warn(WARN_OFFICE_NOT_LISTED);
            String::new()
        }
    }
}

/// The latest `TrajectOnderdeel` of type `TO_OB_PLO` with a `Besluit` (of any trajectory), by
/// `Besluit/DatumToekenning`: dated ones after the reference date are not candidates; one
/// without a usable date counts as older than every dated one. All of them when tied.
fn latest_plo_decisions<'d>(dossier: &'d Dossier, ctx: &Context) -> Vec<&'d OnderdeelBesluit> {
    latest(
        dossier
            .trajecten
            .iter()
            .flat_map(|t| &t.onderdelen)
            .filter(|o| text(&o.type_) == Some(PLO_PART_TYPE))
            .filter_map(|o| o.besluit.as_ref())
            .filter_map(|b| match date(&b.datum_toekenning) {
                Some(d) if d > ctx.reference => None,
                d => Some((d, b)),
            }),
    )
}

/// `plo_decision`: `Besluit/Code` (`VO`, `NVO`, `NVT`) of the latest PLO decision.
pub fn plo_decision(
    dossier: &Dossier,
    ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    let values = latest_plo_decisions(dossier, ctx)
        .into_iter()
        .map(|b| {
            code(
                &b.code,
                warn,
                "plo_decision: Besluit/Code is not a code, not written",
            )
        })
        .collect();
    agreed(
        values,
        warn,
        "plo_decision: PLO decisions on the same latest date disagree",
    )
}

/// `plo_decision_reason`: the `Besluit/Reden` code of the latest PLO decision.
pub fn plo_decision_reason(
    dossier: &Dossier,
    ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    let values = latest_plo_decisions(dossier, ctx)
        .into_iter()
        .map(|b| {
            code(
                &b.reden,
                warn,
                "plo_decision_reason: Besluit/Reden is not a code, not written",
            )
        })
        .collect();
    agreed(
        values,
        warn,
        "plo_decision_reason: PLO decisions on the same latest date disagree",
    )
}

// ---------------------------------------------------------------------------------------------
// Talenkennis, VormingsActiviteiten, ToeleidingenDiplomaGelijkschakeling

/// `highest_nt2_level`: `Talenkennis/BehaaldNT2Niveau/HoogstBehaald`, the code (`A1` … `C2`).
/// The element has no date: written as the dossier holds it, whatever the reference date.
pub fn highest_nt2_level(
    dossier: &Dossier,
    _ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    match profile(dossier) {
        Some(p) => code(
            &p.hoogst_behaald_nt2,
            warn,
            "highest_nt2_level: HoogstBehaald is not a code, not written",
        ),
        None => String::new(),
    }
}

/// `last_nt2_activity_date`: of each `NT2Cursus/Periode`, its `Einde`, or its `Begin` when it
/// has no `Einde`; the latest of those not after the reference date. A course whose `Einde` is
/// present but unusable (`99` parts) gives no date: its `Begin` would understate it.
pub fn last_nt2_activity_date(
    dossier: &Dossier,
    ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    let Some(p) = profile(dossier) else {
        return String::new();
    };
    let last = p
        .nt2_cursussen
        .iter()
        .filter_map(|periode| match &periode.einde {
            Some(einde) => date_of(einde).ok(),
            None => date(&periode.begin),
        })
        .filter(|d| *d <= ctx.reference)
        .max();
    written(last)
}

/// The latest `ToeleidingDiplomaGelijkschakeling` by `StartDatum` not after the reference date;
/// one without a usable `StartDatum` is not a candidate (there is no date to write for it). All
/// of them when tied.
fn latest_referrals<'d>(dossier: &'d Dossier, ctx: &Context) -> Vec<(NaiveDate, &'d Toeleiding)> {
    let Some(p) = profile(dossier) else {
        return Vec::new();
    };
    latest(p.diploma_toeleidingen.iter().filter_map(|t| {
        let start = date(&t.start_datum)?;
        (start <= ctx.reference).then_some((Some(start), (start, t)))
    }))
}

/// `diploma_equivalence_referral`: the `StartDatum` of the latest referral to diploma
/// equivalence.
pub fn diploma_equivalence_referral(
    dossier: &Dossier,
    ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    written(latest_referrals(dossier, ctx).first().map(|(d, _)| *d))
}

/// `diploma_equivalence_result`: the `Status` (`BZ`, `GD`, `AN`) of the latest referral, as the
/// dossier holds it on extraction (the register keeps no history of the status).
pub fn diploma_equivalence_result(
    dossier: &Dossier,
    ctx: &Context,
    warn: &mut dyn FnMut(&'static str),
) -> String {
    let values = latest_referrals(dossier, ctx)
        .into_iter()
        .map(|(_, t)| {
            code(
                &t.status,
                warn,
                "diploma_equivalence_result: Status is not a code, not written",
            )
        })
        .collect();
    agreed(
        values,
        warn,
        "diploma_equivalence_result: referrals on the same latest date disagree",
    )
}

// ---------------------------------------------------------------------------------------------
// Shared readings

fn profile(dossier: &Dossier) -> Option<&Profile> {
    dossier.profile.as_deref()
}

/// The text of an element that is present and not over-long.
fn text(value: &Option<Text>) -> Option<&str> {
    match value {
        Some(Some(t)) => Some(t.trim()),
        _ => None,
    }
}

/// A usable date (the import's reading, M21), or `None` for an absent or unusable one.
fn date(value: &Option<Text>) -> Option<NaiveDate> {
    value.as_ref().and_then(|t| date_of(t).ok())
}

/// A date that counts on the reference date.
fn counted(date: Option<NaiveDate>, ctx: &Context) -> Option<NaiveDate> {
    date.filter(|d| *d <= ctx.reference)
}

/// `YYYY-MM-DD`, or `""`.
fn written(date: Option<NaiveDate>) -> String {
    date.and_then(iso_date_bytes)
        .map(|b| b.iter().map(|&c| char::from(c)).collect())
        .unwrap_or_default()
}

fn yes_no(yes: bool) -> String {
    if yes { "ja" } else { "nee" }.to_owned()
}

/// Whether a text may be written as a code: code-shaped, and without a run of 11 digits, which
/// is an INSZ (or another personal number) typed into a code element, never a code of the
/// register; an INSZ must not leave in a file whose identity is `removed` or `pseudonym`.
fn is_code(text: &str) -> bool {
    text.len() <= MAX_CODE
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
        && !text
            .as_bytes()
            .split(|b| !b.is_ascii_digit())
            .any(|digits| digits.len() >= 11)
}

/// A code element's cell: the trimmed text, `""` when absent or empty, `""` and `warning` when it
/// does not look like a code.
fn code(value: &Option<Text>, warn: &mut dyn FnMut(&'static str), warning: &'static str) -> String {
    match value {
        None => String::new(),
        Some(Some(t)) if is_code(t.trim()) => t.trim().to_owned(),
        Some(_) => {
            warn(warning);
            String::new()
        }
    }
}

/// The latest candidates by date (`None` = undated, older than every dated one), every one of
/// them when several share that date, in document order.
fn latest<T>(candidates: impl IntoIterator<Item = (Option<NaiveDate>, T)>) -> Vec<T> {
    let mut best: Option<Option<NaiveDate>> = None;
    let mut out = Vec::new();
    for (day, item) in candidates {
        match best {
            Some(b) if day < b => {}
            Some(b) if day == b => out.push(item),
            _ => {
                best = Some(day);
                out.clear();
                out.push(item);
            }
        }
    }
    out
}

/// The value the tied candidates agree on; `""` and `warning` when they disagree.
fn agreed(
    values: Vec<String>,
    warn: &mut dyn FnMut(&'static str),
    warning: &'static str,
) -> String {
    let mut values = values.into_iter();
    let Some(first) = values.next() else {
        return String::new();
    };
    for other in values {
        if other != first {
            warn(warning);
            return String::new();
        }
    }
    first
}

#[cfg(test)]
mod tests;
