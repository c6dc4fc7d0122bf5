//! ipcscope's input parsers, compiled by path (no dependency on the `ipcscope` crate, whose
//! polars/eframe dependencies would make every fuzz build huge), plus one entry point per fuzz
//! target. `tests/fuzz_regressions.rs` in the main crate mirrors these entry points through the
//! public API `ipcscope::ingest::…`; keep the two in step.
#![allow(dead_code, unused_imports)]

#[path = "../../src/model.rs"]
pub mod model;
#[path = "../../src/ingest/mod.rs"]
pub mod ingest;

pub mod entry;
