//! Detectors: one file each, each stating its rule, its evidence and its advice.

use super::{Analysis, Options};

/// Runs every detector and numbers the findings.
pub fn run_all(analysis: &mut Analysis, _options: &Options) {
    for (i, f) in analysis.findings.iter_mut().enumerate() {
        f.id = i as u64 + 1;
    }
}
