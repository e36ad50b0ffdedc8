//! The one table widget, generic over the row type: column titles with the sort marker, then
//! the rows in view (only those are formatted), the cursor row highlighted, finished rows
//! dimmed, rows seeded from /proc marked `·` in a one-cell gutter.
//!
//! Column placement ([`column_spans`]) is shared with mouse hit-testing ([`column_at`]), so a
//! click lands on the column that is drawn there.

use ratatui::{
    buffer::Buffer,
    layout::{Alignment, Rect},
    style::Style,
    widgets::{Paragraph, Widget},
};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::model::columns::{Align, ColumnSpec, DisplayRow, RowContext};
use crate::{dashboard::table_view::SortState, theme::Theme};

/// Cells before the first column: the /proc-seed marker.
const GUTTER: u16 = 1;
/// Cells between columns.
const SPACING: u16 = 1;
/// Marker of rows seeded from /proc.
pub const SEEDED_MARKER: &str = "·";
/// Sort markers.
pub const ASCENDING: &str = "▲";
/// Sort markers.
pub const DESCENDING: &str = "▼";

/// A placed column: its index in the full list, x offset from the table's left edge, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnSpan {
    /// Index into the table's full column list.
    pub column: usize,
    /// Offset from the table's left edge.
    pub x: u16,
    /// Width in cells.
    pub width: u16,
}

/// The width a column takes this frame before any shrinking: its fixed width, or for a column
/// sized to its content the widest cell in view (`content[column]`, 0 when unknown) bounded
/// by its width and its maximum.
fn natural_width<R>(spec: &ColumnSpec<R>, column: usize, content: &[u16]) -> u16 {
    match spec.fit {
        None => spec.width,
        Some(max) => content
            .get(column)
            .copied()
            .unwrap_or(0)
            .clamp(spec.width, max.max(spec.width)),
    }
}

/// Places the `visible` columns (indices into `all`) in `width` cells: each at its natural
/// width (see [`natural_width`]; `content` holds the widest cell in view per column of `all`),
/// in order, until one does not fit (a content-sized or first column may shrink to the space
/// left). Spare width stays at the right edge.
pub fn column_spans<R>(
    all: &[ColumnSpec<R>],
    visible: &[usize],
    width: u16,
    content: &[u16],
) -> Vec<ColumnSpan> {
    let mut spans: Vec<ColumnSpan> = Vec::new();
    let mut x = GUTTER;
    for &column in visible {
        let spec = &all[column];
        let start = if spans.is_empty() { x } else { x + SPACING };
        if start >= width {
            break;
        }
        let room = width - start;
        let natural = natural_width(spec, column, content);
        if natural <= room {
            spans.push(ColumnSpan {
                column,
                x: start,
                width: natural,
            });
            x = start + natural;
        } else {
            if (spec.fit.is_some() || spans.is_empty()) && room >= 3 {
                spans.push(ColumnSpan {
                    column,
                    x: start,
                    width: room,
                });
            }
            break;
        }
    }
    spans
}

/// The widest cell of each content-sized column (indexed like `all`; 0 for the others) over
/// `rows`, the rows in view.
pub fn content_widths<R>(all: &[ColumnSpec<R>], rows: &[&R], ctx: &RowContext) -> Vec<u16> {
    all.iter()
        .map(|spec| match spec.fit {
            None => 0,
            Some(_) => rows
                .iter()
                .map(|row| (spec.text)(row, ctx).width().min(u16::MAX as usize) as u16)
                .max()
                .unwrap_or(0),
        })
        .collect()
}

/// The column (index into `all`) drawn at screen column `x` of a table in `area`, placed with
/// the same `content` widths as the frame drawn.
pub fn column_at<R>(
    all: &[ColumnSpec<R>],
    visible: &[usize],
    content: &[u16],
    area: Rect,
    x: u16,
) -> Option<usize> {
    let offset = x.checked_sub(area.x)?;
    column_spans(all, visible, area.width, content)
        .into_iter()
        .find(|s| offset >= s.x && offset < s.x + s.width + SPACING)
        .map(|s| s.column)
}

/// `text` cut to `width` cells, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// The table widget for one frame.
pub struct TableWidget<'a, R> {
    /// The table's full column list.
    pub columns: &'a [ColumnSpec<R>],
    /// Visible columns, in order.
    pub visible: &'a [usize],
    /// Widest cell in view per column (see [`content_widths`]).
    pub content: &'a [u16],
    /// Sort in force (for the marker).
    pub sort: SortState,
    /// The rows in view, top to bottom.
    pub rows: Vec<&'a R>,
    /// Index in `rows` of the cursor, if it is in view.
    pub cursor: Option<usize>,
    /// Formatting context.
    pub ctx: &'a RowContext<'a>,
    /// Styles.
    pub theme: &'a Theme,
    /// Shown when there are no rows.
    pub empty_message: String,
    /// Tree view: per row in `rows`, the branch glyphs put before its `comm` cell (empty in
    /// the flat view).
    pub prefixes: Vec<&'a str>,
}

impl<R: DisplayRow> Widget for TableWidget<'_, R> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width == 0 {
            return;
        }
        let spans = column_spans(self.columns, self.visible, area.width, self.content);
        let theme = self.theme;

        let header = Rect::new(area.x, area.y, area.width, 1);
        buf.set_style(header, theme.table_header);
        for span in &spans {
            let spec = &self.columns[span.column];
            let sorted = span.column == self.sort.column;
            let marker = match (sorted, self.sort.descending) {
                (false, _) => "",
                (true, false) => ASCENDING,
                (true, true) => DESCENDING,
            };
            let title = match spec.align {
                Align::Left => format!("{}{marker}", spec.title),
                Align::Right => format!("{marker}{}", spec.title),
            };
            let style = if sorted {
                theme.table_header_sorted
            } else {
                theme.table_header
            };
            put(
                buf,
                area.x + span.x,
                area.y,
                span.width,
                spec.align,
                &title,
                style,
            );
        }

        let body = Rect::new(area.x, area.y + 1, area.width, area.height - 1);
        if self.rows.is_empty() {
            if body.height > 0 {
                let middle = Rect::new(body.x, body.y + body.height / 2, body.width, 1);
                Paragraph::new(self.empty_message.as_str())
                    .alignment(Alignment::Center)
                    .style(theme.row_finished)
                    .render(middle, buf);
            }
            return;
        }
        for (i, row) in self.rows.iter().enumerate().take(body.height as usize) {
            let y = body.y + i as u16;
            let mut style = theme.row;
            if row.is_finished() {
                style = style.patch(theme.row_finished);
            }
            if self.cursor == Some(i) {
                style = style.patch(theme.row_selected);
            }
            buf.set_style(Rect::new(area.x, y, area.width, 1), style);
            if row.is_seeded() {
                buf.set_string(area.x, y, SEEDED_MARKER, style.patch(theme.row_seeded));
            }
            for span in &spans {
                let spec = &self.columns[span.column];
                let mut text = (spec.text)(row, self.ctx);
                if spec.name == "comm" {
                    if let Some(prefix) = self.prefixes.get(i) {
                        text.insert_str(0, prefix);
                    }
                }
                put(
                    buf,
                    area.x + span.x,
                    y,
                    span.width,
                    spec.align,
                    &text,
                    style,
                );
            }
        }
    }
}

/// Writes `text` into `width` cells at (x, y), aligned, cut with `…` when too long.
fn put(buf: &mut Buffer, x: u16, y: u16, width: u16, align: Align, text: &str, style: Style) {
    let text = fit(text, width as usize);
    let used = text.width() as u16;
    let x = match align {
        Align::Left => x,
        Align::Right => x + width.saturating_sub(used),
    };
    buf.set_stringn(x, y, &text, width as usize, style);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::columns::{CONNECTION_COLUMNS, PROCESS_COLUMNS};

    #[test]
    fn columns_are_placed_in_order_with_spacing() {
        let all: Vec<usize> = (0..PROCESS_COLUMNS.len()).collect();
        let spans = column_spans(PROCESS_COLUMNS, &all, 200, &[]);
        assert_eq!(spans.len(), PROCESS_COLUMNS.len());
        assert_eq!(spans[0].x, GUTTER);
        for pair in spans.windows(2) {
            assert_eq!(pair[1].x, pair[0].x + pair[0].width + SPACING);
        }
        // No content-sized process column: the spare width stays at the right edge.
        let last = spans.last().unwrap();
        assert!(last.x + last.width < 200);
    }

    #[test]
    fn content_sized_columns_take_their_widest_cell_within_bounds() {
        let all: Vec<usize> = (0..CONNECTION_COLUMNS.len()).collect();
        let mut content = vec![0u16; CONNECTION_COLUMNS.len()];
        let (local, remote) = (1, 2);
        content[local] = 14; // 10.0.0.5:40001
        content[remote] = 4; // *:* is shorter than the title: the minimum width
        let spans = column_spans(CONNECTION_COLUMNS, &all, 400, &content);
        assert_eq!(spans[local].width, 14);
        assert_eq!(spans[remote].width, CONNECTION_COLUMNS[remote].width);
        content[local] = 500;
        let spans = column_spans(CONNECTION_COLUMNS, &all, 400, &content);
        assert_eq!(
            spans[local].width, 47,
            "bounded by the longest IPv6 endpoint"
        );
        for pair in spans.windows(2) {
            assert_eq!(pair[1].x, pair[0].x + pair[0].width + SPACING);
        }
        // The spare width stays at the right edge.
        let last = spans.last().unwrap();
        assert!(last.x + last.width < 200);
    }

    #[test]
    fn columns_that_do_not_fit_are_dropped() {
        let all: Vec<usize> = (0..CONNECTION_COLUMNS.len()).collect();
        let spans = column_spans(CONNECTION_COLUMNS, &all, 60, &[]);
        let last = spans.last().unwrap();
        assert!(last.x + last.width <= 60);
        assert!(spans.len() < CONNECTION_COLUMNS.len());
    }

    #[test]
    fn hit_testing_matches_placement() {
        let visible = [0usize, 3, 5];
        let area = Rect::new(10, 5, 80, 10);
        let spans = column_spans(PROCESS_COLUMNS, &visible, 80, &[]);
        for span in spans {
            assert_eq!(
                column_at(PROCESS_COLUMNS, &visible, &[], area, area.x + span.x),
                Some(span.column)
            );
        }
        assert_eq!(column_at(PROCESS_COLUMNS, &visible, &[], area, 5), None);
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("nginx", 10), "nginx");
        assert_eq!(fit("postgres-writer", 8), "postgre…");
        assert_eq!(fit("日本語テキスト", 5), "日本…");
        assert_eq!(fit("x", 0), "");
    }
}
