//! The findings list: severity first, then time; filterable by kind.

use eframe::egui::{self, RichText};

use super::style;
use super::timefmt::{self, TimeZoneMode};
use crate::analysis::Analysis;
use crate::model::{Finding, FindingKind};

/// Indices of `a.findings` in display order: error, warning, info, then by first time.
pub fn display_order(a: &Analysis) -> Vec<usize> {
    let mut order: Vec<usize> = (0..a.findings.len()).collect();
    order.sort_by_key(|&i| {
        let f = &a.findings[i];
        (f.severity, f.first_ts, f.id)
    });
    order
}

/// Distinct kinds, sorted, for the filter.
pub fn kinds(a: &Analysis) -> Vec<FindingKind> {
    let mut k: Vec<FindingKind> = a.findings.iter().map(|f| f.kind).collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// The text (and accessible label) of a finding's row in the list.
pub fn row_label(f: &Finding) -> String {
    format!("{} {}: {}", f.severity.name(), f.kind, f.summary)
}

/// Shows the list; returns the index (in `a.findings`) the user clicked.
pub fn show(
    ui: &mut egui::Ui,
    a: &Analysis,
    order: &[usize],
    kinds: &[FindingKind],
    kind_filter: &mut Option<FindingKind>,
    selected: Option<usize>,
    tz: TimeZoneMode,
) -> Option<usize> {
    let mut clicked = None;
    ui.horizontal(|ui| {
        ui.heading("Findings");
        ui.label(RichText::new(format!("{}", a.findings.len())).weak());
    });
    let current = kind_filter.map_or("all kinds", |k| k.name());
    egui::ComboBox::from_label("Kind filter").selected_text(current).show_ui(ui, |ui| {
        if ui.selectable_label(kind_filter.is_none(), "all kinds").clicked() {
            *kind_filter = None;
        }
        for k in kinds {
            let n = a.findings.iter().filter(|f| f.kind == *k).count();
            let on = *kind_filter == Some(*k);
            if ui.selectable_label(on, format!("{k} ({n})")).clicked() {
                *kind_filter = Some(*k);
            }
        }
    });
    ui.separator();
    if a.findings.is_empty() {
        ui.label(RichText::new("No findings: nothing in these inputs matched a known failure pattern.").weak());
        return None;
    }
    let shown: Vec<usize> =
        order.iter().copied().filter(|&i| kind_filter.is_none_or(|k| a.findings[i].kind == k)).collect();
    // Only the visible rows are laid out, so thousands of findings stay cheap.
    let row_height = ui.spacing().interact_size.y.max(ui.text_style_height(&egui::TextStyle::Button) + 4.0);
    egui::ScrollArea::vertical().id_salt("findings_list").auto_shrink([false, false]).show_rows(
        ui,
        row_height,
        shown.len(),
        |ui, range| {
            for &i in &shown[range] {
                let f = &a.findings[i];
                let is_sel = selected == Some(i);
                ui.horizontal(|ui| {
                    ui.set_height(row_height);
                    style::severity_dot(ui, f.severity);
                    let resp =
                        ui.add(egui::Button::selectable(is_sel, row_label(f)).wrap_mode(egui::TextWrapMode::Truncate));
                    let resp = resp.on_hover_text(format!(
                        "{}\n{} .. {}\nclient {}  server {}",
                        f.summary,
                        timefmt::format_full(f.first_ts, tz),
                        timefmt::format_full(f.last_ts, tz),
                        f.client,
                        f.server
                    ));
                    if resp.clicked() {
                        clicked = Some(i);
                    }
                });
            }
        },
    );
    clicked
}
