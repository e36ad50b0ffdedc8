//! The tab bar: Processes | Connections with their row counts, and on the right what the table
//! shows (rows shown of the table's rows, the filter in force, how many rows the hide toggles
//! leave out and which, the mode).

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};
use unicode_width::UnicodeWidthStr;

use crate::dashboard::app::{App, Tab};

/// The two tab labels as drawn, left to right.
fn labels(app: &App) -> [(Tab, String); 2] {
    [
        (
            Tab::Processes,
            format!(
                " {} {} ",
                Tab::Processes.title(),
                app.processes_table().len()
            ),
        ),
        (
            Tab::Connections,
            format!(
                " {} {} ",
                Tab::Connections.title(),
                app.connections_table().len()
            ),
        ),
    ]
}

/// The tab drawn at screen column `x` of the tab bar in `area`.
pub fn tab_at(app: &App, area: Rect, x: u16) -> Option<Tab> {
    let mut left = area.x;
    for (tab, label) in labels(app) {
        let right = left + label.width() as u16;
        if (left..right).contains(&x) {
            return Some(tab);
        }
        left = right + 1;
    }
    None
}

/// Draws the tab bar.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    let mut spans = Vec::new();
    for (tab, label) in labels(app) {
        let style = if tab == app.tab() {
            theme.tab_active
        } else {
            theme.tab_inactive
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    let left_width: usize = spans.iter().map(|s| s.width()).sum();
    frame.render_widget(Paragraph::new(Line::from(spans)), area);

    let (shown, total, hidden, filter) = match app.tab() {
        Tab::Processes => (
            app.process_view().order().len(),
            app.processes_table().len(),
            app.process_view().hidden,
            &app.process_view().filter,
        ),
        Tab::Connections => (
            app.connection_view().order().len(),
            app.connections_table().len(),
            app.connection_view().hidden,
            &app.connection_view().filter,
        ),
    };
    // What the toggles leave out, counted: `27 exited hidden`.
    let hidden_text = app
        .hidden_label()
        .map(|label| format!("{hidden} {label} hidden"));
    let mut right = match (filter.applied_text.is_empty(), &hidden_text) {
        // The tab label already has the count: said once.
        (true, None) => format!("all shown · {} ", app.mode()),
        (true, Some(hidden)) => format!("{shown} of {total} · {hidden} · {} ", app.mode()),
        (false, None) => format!(
            "{shown} of {total} match `{}` · {} ",
            filter.applied_text,
            app.mode()
        ),
        (false, Some(hidden)) => format!(
            "{shown} of {total} match `{}` · {hidden} · {} ",
            filter.applied_text,
            app.mode()
        ),
    };
    let room = (area.width as usize).saturating_sub(left_width + 1);
    if right.width() > room {
        right = match &hidden_text {
            Some(hidden) => format!("{shown}/{total} · {hidden} "),
            None => format!("{shown}/{total} "),
        };
    }
    if right.width() > room {
        right = format!("{shown}/{total} ");
    }
    if right.width() <= room {
        let width = right.width() as u16;
        let at = Rect::new(area.right() - width, area.y, width, 1);
        frame.render_widget(Paragraph::new(right).style(theme.footer), at);
    }
}
