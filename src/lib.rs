//! ipcscope: finds out why processes on a Windows network stop talking to each other.
//!
//! One pipeline: `ingest` (formats → typed events on one UTC clock) → `analysis` (TCP sessions,
//! detectors) → `report` (CSV/JSON) and `gui` (views of the same `Analysis`).

pub mod analysis;
pub mod gui;
pub mod ingest;
pub mod model;
pub mod pipeline;
pub mod report;
