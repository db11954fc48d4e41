//! KBI office → region (`config/kbi-regions.toml`, reviewed configuration).
