//! The column picker (`s`): every column of the visible table, whether it is shown, which one
//! sorts (▲/▼), and what each one means. Enter sorts by the highlighted column, Space shows or
//! hides it.

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use super::{
    popup::{centered, frame_popup},
    table::{ASCENDING, DESCENDING},
};
use crate::{
    dashboard::{
        app::{App, Tab},
        table_view::SortState,
    },
    model::columns::{ColumnSpec, CONNECTION_COLUMNS, PROCESS_COLUMNS},
};

/// Draws the picker with the highlighted column `cursor`.
pub fn render(frame: &mut Frame, app: &App, area: Rect, cursor: usize) {
    match app.tab() {
        Tab::Processes => {
            let view = app.process_view();
            draw(
                frame,
                app,
                area,
                PROCESS_COLUMNS,
                &view.columns,
                view.sort,
                cursor,
            )
        }
        Tab::Connections => {
            let view = app.connection_view();
            draw(
                frame,
                app,
                area,
                CONNECTION_COLUMNS,
                &view.columns,
                view.sort,
                cursor,
            )
        }
    }
}

fn draw<R>(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    columns: &[ColumnSpec<R>],
    visible: &[usize],
    sort: SortState,
    cursor: usize,
) {
    let theme = app.theme();
    let lines: Vec<Line> = columns
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let shown = if visible.contains(&i) { "[x]" } else { "[ ]" };
            let marker = match (sort.column == i, sort.descending) {
                (false, _) => " ",
                (true, false) => ASCENDING,
                (true, true) => DESCENDING,
            };
            let style = if i == cursor {
                theme.popup_text.patch(theme.row_selected)
            } else {
                theme.popup_text
            };
            Line::from(vec![
                Span::styled(format!(" {shown} {marker} {:<9} ", spec.title), style),
                Span::styled(spec.description, style.patch(theme.panel_label)),
            ])
        })
        .collect();
    let popup = centered(area, 70, lines.len() as u16 + 2);
    let title = format!("Columns — {}", app.tab().title());
    let inner = frame_popup(frame, popup, &title, theme);
    frame.render_widget(Paragraph::new(lines), inner);
}
