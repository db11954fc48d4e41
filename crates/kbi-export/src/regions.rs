//! KBI office → region (`config/kbi-regions.toml`, reviewed configuration).
//! TEMPORARY STUB on branch `engine` (the API of branch `fields`; the merge replaces it).

#[derive(Debug, Clone, Default)]
pub struct Regions;

impl Regions {
    pub fn shipped() -> Regions {
        Regions
    }

    pub fn from_toml(_text: &str) -> Result<Regions, String> {
        Ok(Regions)
    }

    pub fn region(&self, _office: &str) -> Option<&str> {
        None
    }
}
