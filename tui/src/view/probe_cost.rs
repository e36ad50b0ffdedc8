//! The probe-cost overlay (key `o`, own cost): this tool's own observer effect. Per probe program its
//! runs per second, average ns per run and share of one CPU, from the kernel's run-time
//! statistics (on only while the overlay is open), and beside them each mode's user-space
//! thread CPU and the whole program's CPU. Unknown figures are `–`.

use bridge::contract::ModeKind;
use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Wrap},
    Frame,
};

use super::popup::{frame_popup, text_popup};
use crate::{dashboard::app::App, model::format};

/// Width of the program-name column.
const NAME_WIDTH: usize = 22;
/// Shown for an unknown figure.
const UNKNOWN: &str = "–";

/// The overlay's text.
pub fn probe_cost_lines(app: &App) -> Vec<Line<'static>> {
    let theme = app.theme();
    let view = app.probe_cost();
    let report = &view.report;
    let heading = |text: String| Line::from(Span::styled(text, theme.popup_title));
    let text = |text: String| Line::from(Span::styled(text, theme.popup_text));
    let mut lines = vec![heading(
        "Probes: kernel run-time statistics (bpf_stats, on while this is open)".into(),
    )];
    lines.push(Line::from(Span::styled(
        format!(
            "{:<NAME_WIDTH$} {:>9} {:>9} {:>7}",
            "PROGRAM", "RUNS/S", "AVG NS", "CPU%"
        ),
        theme.panel_label,
    )));
    let optional = |v: Option<f64>, show: fn(f64) -> String| v.map_or(UNKNOWN.to_string(), show);
    if let Some(error) = &report.error {
        lines.push(text(format!("statistics unavailable: {error}")));
    } else if report.programs.is_empty() {
        lines.push(text(if view.is_live() {
            "measuring (the first window closes after 1 s)…".into()
        } else {
            "no probes in this view".into()
        }));
    }
    let mut total_runs = Some(0.0);
    let mut total_cpu = Some(0.0);
    for program in &report.programs {
        total_runs = total_runs.zip(program.runs_per_s).map(|(a, b)| a + b);
        total_cpu = total_cpu.zip(program.cpu_percent).map(|(a, b)| a + b);
        lines.push(text(format!(
            "{:<NAME_WIDTH$} {:>9} {:>9} {:>7}",
            program.name,
            optional(program.runs_per_s, format::rate),
            optional(program.avg_ns_per_run, |ns| format!("{ns:.0}")),
            optional(program.cpu_percent, |p| format!("{p:.2}")),
        )));
    }
    if !report.programs.is_empty() {
        lines.push(Line::from(Span::styled(
            format!(
                "{:<NAME_WIDTH$} {:>9} {:>9} {:>7}",
                "all probes",
                optional(total_runs, format::rate),
                "",
                optional(total_cpu, |p| format!("{p:.2}")),
            ),
            theme.panel_value,
        )));
    }
    lines.push(Line::default());
    lines.push(heading("User space: thread CPU, % of one CPU".into()));
    let mut modes = Vec::new();
    for mode in ModeKind::ALL {
        let figure = if app.is_running(mode) {
            format::percent(app.metrics().mode(mode).cpu_percent)
        } else {
            "not running".into()
        };
        modes.push(format!("{} {figure}", mode.name()));
    }
    lines.push(text(format!(
        "{}   whole program {}",
        modes.join("   "),
        format::percent(app.metrics().program_cpu.percent)
    )));
    lines.push(Line::from(Span::styled(
        "CPU% of a probe = its run time / wall time; any key closes".to_string(),
        theme.panel_label,
    )));
    lines
}

/// Draws the overlay.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let lines = probe_cost_lines(app);
    let (popup, _) = text_popup(&lines, area, 0, 0);
    let inner = frame_popup(frame, popup, "Own cost — bpftop-ordered", app.theme());
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
