//! The integration tests: one test binary (as zero2prod does), one module per area, the harness in
//! [`support`]. Each separate file under `tests/` is a binary of its own that links the whole
//! service, and linking was most of CI's cold time; so a new test goes into a module here.
//!
//! The only binary kept apart is `tests/hostile_net.rs` (with its module
//! `tests/hostile_net/hostile_connections.rs`): it raises this process's open-file limit and opens
//! 1,100 to 10,500 connections per test, which must not share the process (nor its two cores)
//! with the tests here running in parallel (see its header).
//!
//! Tests that run this binary again as a child (`--exact NAME`) name the test with its module
//! path (`audit_log::…`), as libtest lists it. Proptest's regression files are where its default
//! (`SourceParallel("proptest-regressions")`) looks once this `main.rs` exists: beside the crate
//! root's directory, `tests/proptest-regressions/NAME.txt` for `tests/it/NAME.rs` (checked: an
//! unparsable line added there is reported by the run).

mod support;

mod audit_checkpoint_forgery;
mod audit_log;
mod audit_modes;
mod audit_segments;
mod corrupt_snapshots;
mod debian_postinst;
mod demo_snapshot;
mod export_cli;
mod exports;
mod golden_doors;
mod hostile_files;
mod in_process;
mod index_vs_replay;
mod insz_vectors;
mod kbi_import;
mod kbi_import_round2;
mod kbi_roundtrip;
mod layering;
mod metrics;
mod no_insz_in_errors;
mod no_regime_privacy;
mod observability_config;
mod openapi_schemathesis;
mod premium_list;
mod protocol_audit;
mod protocol_cli;
mod protocol_doors;
mod protocol_premium;
mod public_cases;
mod redis_distribution;
mod redis_replicas;
mod reload;
mod rest_blackbox;
mod rules;
mod soap_blackbox;
mod soap_codec;
mod soap_fast;
mod soap_node;
mod soap_zeep;
mod systemd;
mod tls_handshake;
mod trust_service;
