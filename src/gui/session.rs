//! A session: the analysis of all loaded inputs on one clock, and what the views precompute from it
//! (off the UI thread, by the loader). Its own module so `app` and `loader` both depend on it and not
//! on each other.

use std::sync::Arc;

use super::findings;
use super::timeline::TimelineModel;
use crate::analysis::Analysis;

/// One analysed session and what the views precompute from it.
pub struct Session {
    /// Shared so hand-off threads (HTML report) read it without a copy.
    pub analysis: Arc<Analysis>,
    pub model: TimelineModel,
    /// Finding indices in display order.
    pub order: Vec<usize>,
    pub kinds: Vec<crate::model::FindingKind>,
}

impl Session {
    pub fn new(analysis: Analysis) -> Session {
        let model = TimelineModel::build(&analysis);
        let order = findings::display_order(&analysis);
        let kinds = findings::kinds(&analysis);
        Session { analysis: Arc::new(analysis), model, order, kinds }
    }
}
