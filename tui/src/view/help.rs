//! The help overlay: every key (as bound, so config changes show), the mouse, the filter
//! language and the row legend. Scrolls when taller than the screen.

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Wrap},
    Frame,
};

use super::popup::{frame_popup, text_popup};
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
        "processes: comm user state pid ppid uid exit",
    ));
    lines.push(entry(
        String::new(),
        "  cpu (%), cpu_time and age (durations)",
    ));
    lines.push(entry(
        String::new(),
        "connections: comm state addr family pid port sport",
    ));
    lines.push(entry(
        String::new(),
        "  dport, sent and recv (bytes), age (duration)",
    ));
    lines.push(entry(
        ": = != ~".into(),
        "text: contains, is, is not, regex (comm~^py)",
    ));
    lines.push(entry(
        "= != < <= > >=".into(),
        "numbers: pid<100 port<1024 cpu>5 age>10s",
    ));
    lines.push(entry(
        "sent>=1M".into(),
        "bytes: K M G T are 1024-based; time: ms s m h d",
    ));
    lines.push(entry("-term".into(), "not: -comm:sleep, -\"two words\""));
    lines.push(entry(
        "a b | c".into(),
        "(a AND b) OR c: AND binds tighter; spaces around |",
    ));
    lines.push(entry("\"quoted\"".into(), "plain text, spaces and all"));
    lines.push(entry("?".into(), "an unknown value matches no comparison"));
    lines.push(Line::default());
    lines.push(heading("Search"));
    lines.push(entry(
        app.keymap().label(Action::Search),
        "select the next row whose shown text has it",
    ));
    lines.push(entry(
        format!(
            "{} / {}",
            app.keymap().label(Action::SearchNext),
            app.keymap().label(Action::SearchPrev)
        ),
        "next / previous match, wraps; says \"not found\"",
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
    let (popup, text_rows) = help_area(&lines, area);
    let inner = frame_popup(frame, popup, "Help — bpftop-ordered", app.theme());
    let max_scroll = text_rows.saturating_sub(inner.height);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(max_scroll), 0)),
        inner,
    );
}

/// The help popup on a screen of `area` and the rows its text takes (see
/// [`text_popup`]).
pub fn help_area(lines: &[Line], area: Rect) -> (Rect, u16) {
    text_popup(lines, area, 0, 0)
}

/// The last useful scroll position of the help on a screen of `area`.
pub fn scroll_limit(app: &App, area: Rect) -> u16 {
    let lines = help_lines(app);
    let (popup, rows) = help_area(&lines, area);
    rows.saturating_sub(popup.height.saturating_sub(2))
}
