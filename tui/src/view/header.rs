//! The header line: program, host, kernel, monitor uptime, visible mode, its events/s, this
//! program's CPU; PAUSED / FOLLOW badges on the right. Parts are dropped, least important
//! first, when the line is too narrow.

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use crate::dashboard::app::App;
use crate::model::format;

/// Draws the header.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    let metrics = app.metrics();
    let visible = metrics.mode(app.mode());

    let mut badges: Vec<Span> = Vec::new();
    if let Some(replay) = app.replay() {
        badges.push(Span::styled(replay.badge(), theme.badge));
        badges.push(Span::raw(" "));
    }
    if app.paused() {
        badges.push(Span::styled(" PAUSED ", theme.badge));
    }
    if let Some(queued) = app.ingest_behind() {
        badges.push(Span::styled(
            format!(" BEHIND: {queued} queued "),
            theme.warning,
        ));
        badges.push(Span::raw(" "));
    }
    if app.following() {
        if !badges.is_empty() {
            badges.push(Span::raw(" "));
        }
        badges.push(Span::styled(" FOLLOW ", theme.badge));
    }
    let badges_width: usize = badges.iter().map(Span::width).sum();

    // (priority: lower is kept longer, label, value)
    let parts: [(u8, &str, String); 6] = [
        (3, "host", app.host().hostname.clone()),
        (4, "kernel", app.host().kernel.clone()),
        (2, "up", format::age(app.uptime_ns())),
        (0, "mode", app.mode().name().to_string()),
        (1, "ev/s", format::rate(visible.events_per_s)),
        (
            5,
            "cpu",
            format!("{}%", format::percent(metrics.program_cpu.percent)),
        ),
    ];
    let title = " bpftop-ordered ";
    let width_of = |keep: u8| -> usize {
        title.len()
            + parts
                .iter()
                .filter(|(p, _, _)| *p <= keep)
                .map(|(_, label, value)| label.len() + value.chars().count() + 3)
                .sum::<usize>()
    };
    let room = (area.width as usize).saturating_sub(badges_width + 1);
    let keep = (0..=5u8).rev().find(|k| width_of(*k) <= room).unwrap_or(0);

    let mut spans = vec![Span::styled(title, theme.header_title)];
    for (priority, label, value) in parts {
        if priority > keep {
            continue;
        }
        spans.push(Span::styled(format!(" {label} "), theme.header));
        spans.push(Span::styled(value, theme.header_value));
        spans.push(Span::styled(" ", theme.header));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.header), area);
    if badges_width > 0 && badges_width as u16 <= area.width {
        let at = Rect::new(
            area.right() - badges_width as u16,
            area.y,
            badges_width as u16,
            1,
        );
        frame.render_widget(Paragraph::new(Line::from(badges)), at);
    }
}
