//! The field catalogue (protocols.md section 3): one pure derivation per field.
//! TEMPORARY STUB on branch `engine` (the API of branch `fields`, so the engine compiles until
//! that branch is merged; the merge replaces this file whole).

use chrono::NaiveDate;
use kbi_import::codes::Codes;
use kbi_import::dossier::Dossier;
use kbi_protocol::{CatalogueField, Field};

use crate::regions::Regions;

#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub reference: NaiveDate,
    pub age_bands: &'a [u32],
    pub codes: &'a Codes,
    pub regions: &'a Regions,
}

pub fn value(
    field: CatalogueField,
    dossier: &Dossier,
    _ctx: &Context,
    _warn: &mut dyn FnMut(&'static str),
) -> String {
    match field {
        CatalogueField::Sex => dossier
            .profile
            .as_ref()
            .and_then(|p| p.geslacht.clone().flatten())
            .map(|c| match c.as_str() {
                "1" => "M".to_owned(),
                "2" => "V".to_owned(),
                _ => String::new(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

pub fn header_name(field: &Field) -> String {
    match field {
        Field::Catalogue(field) => field.name().to_owned(),
        Field::Join { name, column } => format!("{name}.{column}"),
    }
}
