//! A GeefDossierKBI 01.00 dossier as read: only the elements the mapping looks at, as the texts
//! found (trimmed), not yet judged. The streaming reader ([`super::xml`]) fills it; the mapping
//! ([`super::mapping`]) turns it into events. Keeping the two apart lets the mapping be tested
//! row by row without XML, and moved into its own crate later.
//!
//! Names, free texts and identifiers are never stored here: the reader counts them as ignored
//! and drops them. Birth date, sex and the other profile elements of [`Profile`] are read only
//! when an export asks for them (`protocols.md` section 3); an import never keeps them.

/// A leaf value: the trimmed text, or `None` when the text was longer than the reader keeps
/// (such a value is never a valid code or date).
pub type Text = Option<String>;

/// `Periode` (`Begin` / `Einde`, `Datum2_0Type`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Periode {
    pub begin: Option<Text>,
    pub einde: Option<Text>,
}

/// `KBIDossier/Doelgroep`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doelgroep {
    pub code: Option<Text>,
    pub type_: Option<Text>,
    pub periode: Option<Periode>,
    /// `RedenGeenDoelgroep` present (informative, WARN M19).
    pub reden_geen_doelgroep: bool,
    /// `RedenVrijstellingVanDeVerplichting`: the code text.
    pub reden_vrijstelling: Option<Text>,
}

/// `KBIDossier/Aanmelding`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aanmelding {
    pub type_: Option<Text>,
    pub datum: Option<Text>,
}

/// `Contracten/Contract[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contract {
    pub datum_registratie: Option<Text>,
    /// Number of `Addenda/Addendum`.
    pub addenda: u32,
    /// Number of `Opschortingen/Opschorting`.
    pub opschortingen: u32,
}

/// `UitstelVanAanmelding[i]` or `UitstelVanOndertekening[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uitstel {
    pub periode: Option<Periode>,
}

/// `Traject[i]/Besluit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Besluit {
    pub code: Option<Text>,
    pub datum_toekenning: Option<Text>,
}

/// `Trajecten/Traject[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traject {
    pub type_: Option<Text>,
    pub besluit: Option<Besluit>,
    /// `Beheerder` (profile only: `None` in an import).
    pub beheerder: Option<Beheerder>,
    /// `TrajectOnderdelen/TrajectOnderdeel[i]` (profile only: empty in an import, which only
    /// counts their decisions in [`Noted`]).
    pub onderdelen: Vec<Onderdeel>,
}

/// `Traject/Beheerder` (profile): since when and by which KBI office the trajectory is managed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beheerder {
    /// `Beheerder/Periode/Begin`.
    pub begin: Option<Text>,
    /// `Beheerder/KBIVestiging/KbiNummer`.
    pub kbi_nummer: Option<Text>,
}

/// `TrajectOnderdelen/TrajectOnderdeel[i]` (profile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Onderdeel {
    /// `Type` (`TO_OB_PLO`, …).
    pub type_: Option<Text>,
    pub besluit: Option<OnderdeelBesluit>,
}

/// `TrajectOnderdeel/Besluit` (profile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnderdeelBesluit {
    /// `Code` (`VO`, `NVO`, `NVT`).
    pub code: Option<Text>,
    /// `Reden`: the code text (its `KorteNaam`/`Naam` attributes are not kept).
    pub reden: Option<Text>,
    pub datum_toekenning: Option<Text>,
}

/// `ToeleidingenDiplomaGelijkschakeling/ToeleidingDiplomaGelijkschakeling[i]` (profile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Toeleiding {
    pub start_datum: Option<Text>,
    /// `Status` (`BZ`, `GD`, `AN`).
    pub status: Option<Text>,
}

/// What only an export reads (`protocols.md` section 3), besides the extra parts of
/// [`Traject`]. An import never fills it (`None`): it keeps no birth date and no sex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// `Personalia/Geboortedatum`.
    pub geboortedatum: Option<Text>,
    /// `Personalia/Geslacht/Code`.
    pub geslacht: Option<Text>,
    /// `Talenkennis/BehaaldNT2Niveau/HoogstBehaald`: the code text.
    pub hoogst_behaald_nt2: Option<Text>,
    /// `VormingsActiviteiten/NT2Cursussen/NT2Cursus[i]/Periode` (a course without `Periode`
    /// gives `Periode::default()`).
    pub nt2_cursussen: Vec<Periode>,
    pub diploma_toeleidingen: Vec<Toeleiding>,
}

/// `BehaaldeAttesten/Document[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub soort: Option<Text>,
    pub type_: Option<Text>,
    pub datum_aanmaak: Option<Text>,
    pub datum_ondertekening: Option<Text>,
}

/// `Inbreuk[i]/RechtzettingsFormulier`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rechtzetting {
    pub datum_aanmaak: Option<Text>,
    pub datum_ondertekening: Option<Text>,
}

/// `Inbreuken/Inbreuk[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbreuk {
    pub type_: Option<Text>,
    pub datum_vaststelling: Option<Text>,
    pub datum_ingebrekestelling: Option<Text>,
    pub rechtzetting: Option<Rechtzetting>,
}

/// Elements relevant to the obligation but not modelled (section 4.1), counted by the reader
/// where they sit inside groups that are otherwise ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Noted {
    /// `TrajectOnderdelen/TrajectOnderdeel/Besluit`.
    pub onderdeel_besluiten: u32,
    /// `VormingsActiviteiten/PLOCursussen/PLOCursus/Besluit`.
    pub plo_besluiten: u32,
    /// `Talenkennis/BehaaldNT2Niveau` with content.
    pub nt2_niveau: u32,
}

/// `KBIDossier`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dossier {
    /// `Personalia` present.
    pub personalia: bool,
    pub insz: Option<Text>,
    pub doelgroep: Option<Doelgroep>,
    pub aanmelding: Option<Aanmelding>,
    pub contracten: Vec<Contract>,
    pub uitstellen_van_aanmelding: Vec<Uitstel>,
    pub uitstellen_van_ondertekening: Vec<Uitstel>,
    pub trajecten: Vec<Traject>,
    pub documenten: Vec<Document>,
    pub inbreuken: Vec<Inbreuk>,
    pub noted: Noted,
    /// Filled only when the reader is asked for the profile (an export).
    pub profile: Option<Box<Profile>>,
}

/// `Uitzondering` (reply or answer level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uitzondering {
    pub identificatie: Option<Text>,
    pub type_: Option<Text>,
}

/// `Repliek/Antwoorden/Antwoord`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Antwoord {
    pub dossier: Option<Dossier>,
    pub uitzonderingen: Vec<Uitzondering>,
}

/// One `GeefDossierKBIResponse`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The root element is in the GeefDossierKBI 01.00 namespace.
    pub namespace_ok: bool,
    pub naam: Option<Text>,
    pub versie: Option<Text>,
    pub antwoorden: Vec<Antwoord>,
    pub uitzonderingen: Vec<Uitzondering>,
}
