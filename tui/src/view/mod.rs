//! Rendering. Reads the app state, writes the frame; changes nothing.
//!
//! [`table`] is the one table widget (columns are data, in [`columns`]); [`header`], [`tabs`],
//! [`mode_panel`] and [`footer`] are the fixed parts; [`help`], [`picker`] and [`detail`] are
//! popups; [`mod@format`] holds the human units.

pub mod detail;
pub mod footer;
pub mod header;
pub mod help;
pub mod mode_panel;
pub mod picker;
pub mod popup;
pub mod probe_cost;
pub mod signal_dialog;
pub mod table;
pub mod tabs;

use bridge::contract::Entity;
use ratatui::{
    layout::{Alignment, Rect},
    widgets::{Block, Paragraph},
    Frame,
};

use self::table::TableWidget;
use crate::{
    dashboard::{
        app::{App, Overlay, Tab},
        layout::{ScreenLayout, MIN_HEIGHT, MIN_WIDTH},
        table_view::TableView,
    },
    model::columns::{ColumnSpec, DisplayRow, RowContext, CONNECTION_COLUMNS, PROCESS_COLUMNS},
    theme::Theme,
};

/// Draws the whole screen for `layout` (computed from the frame's size).
pub fn render(frame: &mut Frame, app: &App, layout: &ScreenLayout) {
    let theme = app.theme();
    frame.render_widget(Block::new().style(theme.row), layout.area);
    if layout.too_small {
        render_too_small(frame, layout.area, theme);
        return;
    }
    header::render(frame, app, layout.header);
    tabs::render(frame, app, layout.tabs);
    let ctx = app.row_context();
    match app.tab() {
        Tab::Processes => render_table(
            frame,
            layout.table,
            app.processes_table(),
            PROCESS_COLUMNS,
            app.process_view(),
            &ctx,
            theme,
            "processes",
        ),
        Tab::Connections => render_table(
            frame,
            layout.table,
            app.connections_table(),
            CONNECTION_COLUMNS,
            app.connection_view(),
            &ctx,
            theme,
            "connections",
        ),
    }
    mode_panel::render(frame, app, layout.panel);
    footer::render(frame, app, layout.footer);
    match app.overlay() {
        Overlay::None => {}
        Overlay::Help { scroll } => help::render(frame, app, layout.area, scroll),
        Overlay::ColumnPicker { cursor } => picker::render(frame, app, layout.area, cursor),
        Overlay::Detail => detail::render(frame, app, layout.area),
        Overlay::Signal(stage) => signal_dialog::render(frame, app, layout.area, stage),
        Overlay::ProbeCost => probe_cost::render(frame, app, layout.area),
    }
}

/// The one-line message shown instead of the dashboard when the terminal is too small.
pub fn too_small_message(area: Rect) -> String {
    format!(
        "Terminal too small: {}x{} (needs {MIN_WIDTH}x{MIN_HEIGHT})",
        area.width, area.height
    )
}

fn render_too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let line = Rect::new(
        area.x,
        area.y + area.height / 2,
        area.width,
        1.min(area.height),
    );
    frame.render_widget(
        Paragraph::new(too_small_message(area))
            .alignment(Alignment::Center)
            .style(theme.warning),
        line,
    );
}

#[allow(clippy::too_many_arguments)]
fn render_table<R: Entity + DisplayRow>(
    frame: &mut Frame,
    area: Rect,
    table: &bridge::table::OrderedTable<R>,
    columns: &[ColumnSpec<R>],
    view: &TableView<R::Key>,
    ctx: &RowContext,
    theme: &Theme,
    noun: &str,
) {
    let range = view.visible_range();
    let rows: Vec<&R> = view.order()[range.clone()]
        .iter()
        .filter_map(|key| table.get(key))
        .collect();
    let prefixes: Vec<&str> = if view.tree_prefix.is_empty() {
        Vec::new()
    } else {
        rows.iter()
            .map(|row| view.tree_prefix.get(&row.key()).map_or("", String::as_str))
            .collect()
    };
    let cursor = view
        .cursor_index()
        .filter(|i| range.contains(i))
        .map(|i| i - range.start);
    let empty_message = if table.is_empty() {
        format!("no {noun} yet")
    } else {
        format!("no {noun} match `{}`", view.filter.applied_text)
    };
    frame.render_widget(
        TableWidget {
            columns,
            visible: &view.columns,
            content: &view.content_widths,
            sort: view.sort,
            rows,
            cursor,
            ctx,
            theme,
            empty_message,
            prefixes,
        },
        area,
    );
}
