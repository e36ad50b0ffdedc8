//! The footer line: the filter prompt while it is open (the invalid term in red, with the
//! reason), else a transient status message, else the keys that matter in the current state.

use ratatui::{
    layout::{Position, Rect},
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};
use unicode_width::UnicodeWidthStr;

use crate::dashboard::{
    app::{App, Overlay, Tab},
    keymap::Action,
};

/// Draws the footer.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    if let Some(prompt) = app.prompt() {
        render_prompt(frame, app, area, prompt.cursor);
        return;
    }
    if app.search().open {
        render_search(frame, app, area);
        return;
    }
    let mut spans: Vec<Span> = Vec::new();
    for note in app.notes() {
        spans.push(Span::styled(format!(" ⚠ {note} "), theme.warning));
        spans.push(Span::raw(" "));
    }
    if let Some(status) = app.status() {
        spans.push(Span::styled(format!(" {status} "), theme.prompt));
        spans.push(Span::raw(" "));
    }
    let keys = app.keymap();
    let hints: Vec<(String, &str)> = match app.overlay() {
        Overlay::Help { .. } => vec![("↑↓".into(), "scroll"), ("any key".into(), "close help")],
        Overlay::ProbeCost => vec![("any key".into(), "close")],
        Overlay::ColumnPicker { .. } => vec![
            ("↑↓".into(), "choose"),
            ("Enter".into(), "sort by (again: invert)"),
            ("Space".into(), "show/hide"),
            ("Esc".into(), "close"),
        ],
        Overlay::Signal(_) => vec![
            ("↑↓".into(), "choose"),
            ("Enter".into(), "choose"),
            ("y".into(), "confirm"),
            ("Esc".into(), "cancel"),
        ],
        Overlay::Detail => vec![
            (keys.label(Action::Up), "previous row"),
            (keys.label(Action::Down), "next row"),
            ("Esc".into(), "close"),
        ],
        Overlay::None => {
            let modes = format!(
                "{}/{}/{}",
                keys.label(Action::ModeRing),
                keys.label(Action::ModePerf),
                keys.label(Action::ModePoll)
            );
            let sort = format!(
                "{}{}",
                keys.label(Action::SortPrev),
                keys.label(Action::SortNext)
            );
            let filtered = match app.tab() {
                Tab::Processes => !app.process_view().filter.applied_text.is_empty(),
                Tab::Connections => !app.connection_view().filter.applied_text.is_empty(),
            };
            let mut hints = vec![
                (keys.label(Action::Help), "help"),
                (keys.label(Action::Quit), "quit"),
                (keys.label(Action::NextTable), "table"),
                (modes, "mode"),
                (
                    keys.label(Action::Filter),
                    if filtered { "edit filter" } else { "filter" },
                ),
                (keys.label(Action::Search), "search"),
                (sort, "sort"),
                (keys.label(Action::SortInvert), "invert"),
                (keys.label(Action::ColumnPicker), "columns"),
                (
                    keys.label(Action::Pause),
                    if app.paused() { "resume" } else { "pause" },
                ),
                (
                    keys.label(Action::Follow),
                    if app.following() {
                        "unfollow"
                    } else {
                        "follow"
                    },
                ),
                (keys.label(Action::Detail), "details"),
                (keys.label(Action::NextTheme), "theme"),
                (
                    keys.label(Action::HideExited),
                    match (app.tab(), app.hide().exited) {
                        (Tab::Processes, false) => "hide exited",
                        (Tab::Processes, true) => "show exited",
                        (Tab::Connections, false) => "hide closed",
                        (Tab::Connections, true) => "show closed",
                    },
                ),
            ];
            if app.tab() == Tab::Processes {
                hints.push((
                    keys.label(Action::HideKernelThreads),
                    if app.hide().kernel_threads {
                        "show kthreads"
                    } else {
                        "hide kthreads"
                    },
                ));
            }
            if !app.search().text.is_empty() {
                let next = format!(
                    "{}{}",
                    keys.label(Action::SearchNext),
                    keys.label(Action::SearchPrev)
                );
                hints.insert(6, (next, "next/prev match"));
            }
            if filtered {
                hints.insert(5, ("Esc".into(), "clear filter"));
            }
            hints
        }
    };
    let mut used: usize = spans.iter().map(Span::width).sum();
    for (key, what) in hints {
        let width = key.width() + what.width() + 3;
        if used + width > area.width as usize {
            break;
        }
        spans.push(Span::styled(format!(" {key}"), theme.key));
        spans.push(Span::styled(format!(" {what} "), theme.footer));
        used += width;
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.footer), area);
}

/// `/ text▏  ✗ reason` — the bad term underlined in the error style.
fn render_prompt(frame: &mut Frame, app: &App, area: Rect, cursor: usize) {
    let theme = app.theme();
    let filter = match app.tab() {
        Tab::Processes => &app.process_view().filter,
        Tab::Connections => &app.connection_view().filter,
    };
    let text = filter.text.as_str();
    let mut spans = vec![Span::styled("/ ", theme.prompt)];
    match &filter.error {
        Some(error) if error.span.end <= text.len() => {
            spans.push(Span::styled(&text[..error.span.start], theme.footer));
            spans.push(Span::styled(&text[error.span.clone()], theme.error));
            spans.push(Span::styled(&text[error.span.end..], theme.footer));
        }
        _ => spans.push(Span::styled(text, theme.footer)),
    }
    let cursor_x = area.x + 2 + text[..cursor.min(text.len())].width() as u16;
    match &filter.error {
        Some(error) => spans.push(Span::styled(format!("   ✗ {}", error.reason), theme.error)),
        None if text.is_empty() => spans.push(Span::styled(
            "   text matches any column; comm:x pid>100 cpu>5 sent>=1M comm~^py -term a | b; Enter keeps, Esc clears",
            theme.panel_label,
        )),
        None => spans.push(Span::styled("   Enter keeps · Esc clears", theme.panel_label)),
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.footer), area);
    if cursor_x < area.right() {
        frame.set_cursor_position(Position::new(cursor_x, area.y));
    }
}

/// `search: text▏  not found` — the search prompt (F3): where the selection went, or that no
/// row shows the text.
fn render_search(frame: &mut Frame, app: &App, area: Rect) {
    let theme = app.theme();
    let search = app.search();
    let text = search.text.as_str();
    let label = "search: ";
    let mut spans = vec![
        Span::styled(label, theme.prompt),
        Span::styled(text, theme.footer),
    ];
    let cursor_x = area.x + (label.width() + text.width()) as u16;
    if search.not_found {
        spans.push(Span::styled("   ✗ not found", theme.error));
    } else if text.is_empty() {
        spans.push(Span::styled(
            "   selects the next row showing the text (hides nothing); F3/↓ next, ↑ previous; Enter or Esc closes",
            theme.panel_label,
        ));
    } else {
        let wrapped = if search.wrapped {
            "wrapped around · "
        } else {
            ""
        };
        spans.push(Span::styled(
            format!("   {wrapped}F3/↓ next · ↑ previous · Enter or Esc closes"),
            theme.panel_label,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.footer), area);
    if cursor_x < area.right() {
        frame.set_cursor_position(Position::new(cursor_x, area.y));
    }
}
