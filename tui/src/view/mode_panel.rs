//! The mode panel: ring | perf | poll side by side, each with events/s, lag p50/p99/max,
//! drops and resyncs, kernel and user memory, thread CPU, and sparklines of events/s and p99
//! lag over the last minute. The visible mode's column is highlighted; a failed mode shows its
//! error instead of figures. Lines are dropped from the bottom when the panel is short.

use bridge::contract::ModeKind;
use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::Style,
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph, Sparkline, Widget, Wrap},
    Frame,
};
use unicode_width::UnicodeWidthStr;

use super::table::fit;
use crate::model::format;
use crate::{
    dashboard::{app::App, metrics::ModeMetrics},
    theme::Theme,
};

/// Width of the sparkline labels (`ev/s `, `p99  `).
const SPARK_LABEL: u16 = 5;

/// Draws the panel.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    if area.height == 1 {
        render_summary(frame.buffer_mut(), app, area);
        return;
    }
    let columns = Layout::horizontal([Constraint::Ratio(1, 3); 3]).split(area);
    for (mode, column) in ModeKind::ALL.into_iter().zip(columns.iter()) {
        render_mode(frame.buffer_mut(), app, mode, *column);
    }
}

/// The collapsed panel (`p`): one line, per mode its events/s, p99 lag and drops, the shown
/// mode marked.
fn render_summary(buf: &mut Buffer, app: &App, area: Rect) {
    let theme = app.theme();
    let mut spans = Vec::new();
    for mode in ModeKind::ALL {
        let metrics = app.metrics().mode(mode);
        let visible = mode == app.mode();
        let style = if visible {
            theme.panel_title_active
        } else {
            theme.panel_title
        };
        let marker = if visible { "◆" } else { " " };
        spans.push(Span::styled(
            format!(" {} {}{marker} ", mode.index() + 1, mode.name()),
            style,
        ));
        let figures = if let Some(error) = &metrics.failure {
            format!("FAILED: {error}")
        } else if !app.is_running(mode) {
            "not running".to_string()
        } else {
            format!(
                "{} ev/s  p99 {}  drops {} ",
                format::rate(metrics.events_per_s),
                metrics
                    .lag
                    .map_or("–".to_string(), |(_, p99, _)| format::latency(p99)),
                format::count(metrics.stats.drops)
            )
        };
        spans.push(Span::styled(format!(" {figures} "), theme.panel_value));
    }
    spans.push(Span::styled(" (p: panel)", theme.panel_label));
    Paragraph::new(Line::from(spans)).render(area, buf);
}

fn render_mode(buf: &mut Buffer, app: &App, mode: ModeKind, area: Rect) {
    let theme = app.theme();
    let visible = mode == app.mode();
    let (border, title_style) = if visible {
        (theme.panel_border_active, theme.panel_title_active)
    } else {
        (theme.panel_border, theme.panel_title)
    };
    let hotkey = mode.index() + 1;
    let title = if visible {
        format!(" {hotkey} {} ◆ shown ", mode.name())
    } else {
        format!(" {hotkey} {} ", mode.name())
    };
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Span::styled(title, title_style));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 || inner.width < 4 {
        return;
    }

    let metrics = app.metrics().mode(mode);
    if !app.is_running(mode) {
        Paragraph::new("not running")
            .style(theme.panel_label)
            .render(inner, buf);
        return;
    }
    if let Some(error) = &metrics.failure {
        Paragraph::new(vec![
            Line::from(Span::styled("FAILED", theme.error)),
            Line::from(Span::styled(error.as_str(), theme.error)),
        ])
        .wrap(Wrap { trim: true })
        .render(inner, buf);
        return;
    }
    let lines = figure_lines(metrics);
    let mut y = inner.y;
    for (label, value, warn) in lines {
        if y >= inner.bottom() {
            return;
        }
        let style = if warn {
            theme.warning
        } else {
            theme.panel_value
        };
        label_value(
            buf,
            Rect::new(inner.x, y, inner.width, 1),
            label,
            &value,
            theme,
            style,
        );
        y += 1;
    }
    for (label, series, style) in [
        ("ev/s", &metrics.events_history, theme.sparkline_events),
        ("p99", &metrics.lag_p99_history, theme.sparkline_lag),
    ] {
        if y >= inner.bottom() {
            return;
        }
        let row = Rect::new(inner.x, y, inner.width, 1);
        buf.set_stringn(row.x, row.y, label, SPARK_LABEL as usize, theme.panel_label);
        let spark_area = Rect::new(
            row.x + SPARK_LABEL,
            row.y,
            row.width.saturating_sub(SPARK_LABEL),
            1,
        );
        let points: Vec<u64> = series.iter().collect();
        let shown = &points[points.len().saturating_sub(spark_area.width as usize)..];
        Sparkline::default()
            .data(shown)
            .style(style)
            .render(spark_area, buf);
        y += 1;
    }
}

/// The figure lines: (label, value, is-a-warning).
fn figure_lines(m: &ModeMetrics) -> Vec<(&'static str, String, bool)> {
    let lag = match m.lag {
        Some((p50, p99, max)) => format!(
            "{}·{}·{}",
            format::latency(p50),
            format::latency(p99),
            format::latency(max)
        ),
        None => "–".into(),
    };
    let waiting = !m.active && m.stats.events == 0;
    vec![
        (
            "events/s",
            if waiting {
                "waiting".into()
            } else {
                format::rate(m.events_per_s)
            },
            false,
        ),
        ("lag p50·p99·max", lag, false),
        (
            "drops·resyncs",
            if m.stats.map_full > 0 {
                // Failed state-map inserts are part of the drops; say so, they need a bigger
                // --state-map-entries rather than a faster consumer.
                format!(
                    "{} ({} map full)·{}",
                    format::count(m.stats.drops),
                    format::count(m.stats.map_full),
                    format::count(m.stats.resyncs)
                )
            } else {
                format!(
                    "{}·{}",
                    format::count(m.stats.drops),
                    format::count(m.stats.resyncs)
                )
            },
            m.stats.drops > 0,
        ),
        (
            "mem kernel·user",
            format!(
                "{}·{}",
                format::bytes(m.stats.kernel_bytes),
                format::bytes(m.stats.user_bytes)
            ),
            false,
        ),
        ("cpu", format!("{}%", format::percent(m.cpu_percent)), false),
    ]
}

/// `label ........ value` in one line: the value right-aligned; the label gives way first.
fn label_value(buf: &mut Buffer, row: Rect, label: &str, value: &str, theme: &Theme, style: Style) {
    let value = fit(value, row.width as usize);
    let value_width = value.width() as u16;
    let label_room = row.width.saturating_sub(value_width + 1) as usize;
    if label_room > 0 {
        buf.set_stringn(
            row.x,
            row.y,
            fit(label, label_room),
            label_room,
            theme.panel_label,
        );
    }
    buf.set_stringn(
        row.right() - value_width,
        row.y,
        &value,
        value_width as usize,
        style,
    );
}
