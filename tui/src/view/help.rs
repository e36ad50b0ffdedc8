//! The help overlay: every key (as bound, so config changes show), the mouse, the filter
//! language and the row legend. Scrolls when taller than the screen.

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use super::popup::{centered, frame_popup};
use crate::dashboard::{app::App, keymap::Action};

/// Width of the key column.
const KEY_WIDTH: usize = 16;

/// The help text.
pub fn help_lines(app: &App) -> Vec<Line<'static>> {
    let theme = app.theme();
    let heading = |text: &str| Line::from(Span::styled(text.to_string(), theme.popup_title));
    let entry = |key: String, what: &str| {
        Line::from(vec![
            Span::styled(format!("  {key:<KEY_WIDTH$}"), theme.key),
            Span::styled(what.to_string(), theme.popup_text),
        ])
    };
    let mut lines = vec![heading("Keys")];
    for action in Action::ALL {
        lines.push(entry(app.keymap().label(action), action.description()));
    }
    lines.push(entry("Ctrl-C".into(), "quit (always)"));
    lines.push(Line::default());
    lines.push(heading("Mouse"));
    lines.push(entry(
        "click title".into(),
        "sort by that column (again: invert)",
    ));
    lines.push(entry("click row".into(), "select it"));
    lines.push(entry("wheel".into(), "move the selection"));
    lines.push(entry(
        "click tab/panel".into(),
        "show that table / that mode",
    ));
    lines.push(Line::default());
    lines.push(heading("Filter (/)"));
    lines.push(entry(
        "text".into(),
        "any column contains it (case-insensitive)",
    ));
    lines.push(entry(
        "field:value".into(),
        "processes: comm pid ppid uid user state",
    ));
    lines.push(entry(
        String::new(),
        "connections: comm pid state port addr family",
    ));
    lines.push(entry(
        "a b".into(),
        "every term must match; \"quoted text\" is plain",
    ));
    lines.push(Line::default());
    lines.push(heading("Rows"));
    lines.push(entry(
        "·".into(),
        "seeded from /proc at start, not yet seen by the probes",
    ));
    lines.push(entry(
        "dimmed".into(),
        "exited / closed, kept until retention removes it",
    ));
    lines.push(entry("▲ ▼".into(), "sorted column and direction"));
    lines
}

/// Draws the help popup, scrolled by `scroll` lines.
pub fn render(frame: &mut Frame, app: &App, area: Rect, scroll: u16) {
    let lines = help_lines(app);
    let height = lines.len() as u16 + 2;
    let popup = centered(area, 76, height);
    let inner = frame_popup(frame, popup, "Help — bpftop-ordered", app.theme());
    let max_scroll = (lines.len() as u16).saturating_sub(inner.height);
    frame.render_widget(
        Paragraph::new(lines).scroll((scroll.min(max_scroll), 0)),
        inner,
    );
}
