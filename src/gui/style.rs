//! Colours and categories shared by the panels, so the legend, bars and lists agree.

use eframe::egui::{self, Color32};

use crate::model::{Connection, Severity};

/// How a connection ended, derived from Zeek's `conn_state` and the RST counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndKind {
    /// Reset by the server side (RSTR/RSTRH or a server RST).
    ServerReset,
    /// Abortive close by the client (RSTO/RSTOS0 or a client RST).
    ClientAbort,
    /// Connection refused: SYN answered by RST (REJ).
    Refused,
    /// SYN never answered (S0).
    NoReply,
    /// One side closed, the other never did (S2/S3/SH/SHR).
    HalfClosed,
    /// Established and still open at the end of the capture (S1).
    Open,
    /// Graceful close with FIN both ways (SF).
    Graceful,
    /// Anything else (OTH, mid-stream pick-ups).
    Other,
}

impl EndKind {
    pub const ALL: [EndKind; 8] = [
        EndKind::ServerReset,
        EndKind::ClientAbort,
        EndKind::Refused,
        EndKind::NoReply,
        EndKind::HalfClosed,
        EndKind::Open,
        EndKind::Graceful,
        EndKind::Other,
    ];

    pub fn of(c: &Connection) -> EndKind {
        let (client_rst, server_rst) = super::fields::conn_rst(c);
        match super::fields::conn_state(c) {
            "REJ" => EndKind::Refused,
            "RSTR" | "RSTRH" => EndKind::ServerReset,
            "RSTO" | "RSTOS0" => EndKind::ClientAbort,
            "SF" => EndKind::Graceful,
            "S0" => EndKind::NoReply,
            "S1" => EndKind::Open,
            "S2" | "S3" | "SH" | "SHR" => EndKind::HalfClosed,
            _ if server_rst > 0 => EndKind::ServerReset,
            _ if client_rst > 0 => EndKind::ClientAbort,
            _ => EndKind::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EndKind::ServerReset => "reset by server",
            EndKind::ClientAbort => "aborted by client",
            EndKind::Refused => "refused",
            EndKind::NoReply => "no reply",
            EndKind::HalfClosed => "half closed",
            EndKind::Open => "still open",
            EndKind::Graceful => "graceful close",
            EndKind::Other => "other",
        }
    }

    pub fn states(self) -> &'static str {
        match self {
            EndKind::ServerReset => "RSTR RSTRH",
            EndKind::ClientAbort => "RSTO RSTOS0",
            EndKind::Refused => "REJ",
            EndKind::NoReply => "S0",
            EndKind::HalfClosed => "S2 S3 SH SHR",
            EndKind::Open => "S1",
            EndKind::Graceful => "SF",
            EndKind::Other => "OTH",
        }
    }

    /// Colours readable on both dark and light backgrounds.
    pub fn color(self) -> Color32 {
        match self {
            EndKind::ServerReset => Color32::from_rgb(220, 50, 47),
            EndKind::ClientAbort => Color32::from_rgb(236, 138, 30),
            EndKind::Refused => Color32::from_rgb(190, 70, 200),
            EndKind::NoReply => Color32::from_rgb(150, 130, 80),
            EndKind::HalfClosed => Color32::from_rgb(40, 170, 170),
            EndKind::Open => Color32::from_rgb(70, 130, 230),
            EndKind::Graceful => Color32::from_rgb(90, 170, 90),
            EndKind::Other => Color32::from_rgb(140, 140, 140),
        }
    }
}

pub fn severity_color(s: Severity) -> Color32 {
    match s {
        Severity::Error => Color32::from_rgb(220, 50, 47),
        Severity::Warning => Color32::from_rgb(230, 160, 20),
        Severity::Info => Color32::from_rgb(70, 140, 220),
        Severity::Debug | Severity::Unknown => Color32::from_rgb(140, 140, 140),
    }
}

/// A small coloured dot for a severity (drawn, so it needs no glyph in the font).
pub fn severity_dot(ui: &mut egui::Ui, s: Severity) {
    let (rect, _) = ui.allocate_exact_size(egui::Vec2::new(12.0, 12.0), egui::Sense::hover());
    ui.painter().circle_filled(rect.center(), 5.0, severity_color(s));
}

/// Packet mark colours on the timeline.
pub const MARK_SYN: Color32 = Color32::from_rgb(120, 220, 120);
pub const MARK_FIN: Color32 = Color32::from_rgb(120, 170, 255);
pub const MARK_RST: Color32 = Color32::from_rgb(255, 60, 60);
pub const MARK_KEEPALIVE: Color32 = Color32::from_rgb(250, 220, 60);
pub const HIGHLIGHT: Color32 = Color32::from_rgb(255, 215, 0);

/// Highlight colour for the current theme (gold is unreadable on a light background).
pub fn highlight(visuals: &egui::Visuals) -> Color32 {
    if visuals.dark_mode {
        HIGHLIGHT
    } else {
        Color32::from_rgb(205, 120, 0)
    }
}

/// Slightly larger text than egui's defaults: the app is read for long stretches.
pub fn apply_fonts(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| {
        use egui::{FontFamily, FontId, TextStyle};
        style.text_styles.insert(TextStyle::Body, FontId::new(14.0, FontFamily::Proportional));
        style.text_styles.insert(TextStyle::Button, FontId::new(14.0, FontFamily::Proportional));
        style.text_styles.insert(TextStyle::Monospace, FontId::new(13.0, FontFamily::Monospace));
        style.text_styles.insert(TextStyle::Small, FontId::new(11.0, FontFamily::Proportional));
        style.text_styles.insert(TextStyle::Heading, FontId::new(18.0, FontFamily::Proportional));
    });
}

/// Adds a system font with wide symbol coverage (arrows, math, box drawing) as a fallback:
/// findings and log lines may contain characters the bundled fonts lack. Missing fonts are fine.
pub fn install_fallback_fonts(ctx: &egui::Context) {
    use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
    const CANDIDATES: &[&str] = &[
        "C:\\Windows\\Fonts\\seguisym.ttf",
        "C:\\Windows\\Fonts\\segoeui.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    ];
    for (i, path) in CANDIDATES.iter().enumerate() {
        let Ok(bytes) = std::fs::read(path) else { continue };
        ctx.add_font(FontInsert {
            name: format!("system-fallback-{i}"),
            data: egui::FontData::from_owned(bytes),
            families: [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
                .into_iter()
                .map(|family| InsertFontFamily { family, priority: FontPriority::Lowest })
                .collect(),
        });
    }
}
