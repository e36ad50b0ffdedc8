//! Screen layout: where the header, the tab bar, the table, the mode panel and the footer go
//! for a terminal size. Drawing and mouse hit-testing use the same [`ScreenLayout`].

use ratatui::layout::Rect;

/// Narrowest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 60;
/// Shortest terminal the dashboard draws in.
pub const MIN_HEIGHT: u16 = 15;

/// Tallest mode panel (borders included): 7 lines of figures and sparklines.
const PANEL_MAX_HEIGHT: u16 = 9;
/// Shortest mode panel: borders plus two lines (events/s and lag).
const PANEL_MIN_HEIGHT: u16 = 4;

/// The areas of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScreenLayout {
    /// The whole terminal.
    pub area: Rect,
    /// Below the minimum size: only a one-line message is drawn.
    pub too_small: bool,
    /// Header line.
    pub header: Rect,
    /// Tab bar (tabs, row counts, filter).
    pub tabs: Rect,
    /// The table: one line of column titles, then rows.
    pub table: Rect,
    /// The mode panel.
    pub panel: Rect,
    /// Footer line (keys, filter prompt, status).
    pub footer: Rect,
}

impl ScreenLayout {
    /// The layout for a terminal of `area`.
    pub fn compute(area: Rect) -> ScreenLayout {
        ScreenLayout::compute_with(area, false)
    }

    /// [`ScreenLayout::compute`] with the mode panel collapsed to one summary line when
    /// `panel_collapsed` (key `p`): the table gets the rows.
    pub fn compute_with(area: Rect, panel_collapsed: bool) -> ScreenLayout {
        let empty = Rect::new(area.x, area.y, 0, 0);
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            return ScreenLayout {
                area,
                too_small: true,
                header: empty,
                tabs: empty,
                table: empty,
                panel: empty,
                footer: empty,
            };
        }
        let panel_height = if panel_collapsed {
            1
        } else {
            (area.height / 3).clamp(PANEL_MIN_HEIGHT, PANEL_MAX_HEIGHT)
        };
        let line = |y: u16, height: u16| Rect::new(area.x, y, area.width, height);
        let header = line(area.y, 1);
        let tabs = line(area.y + 1, 1);
        let footer = line(area.bottom() - 1, 1);
        let panel = line(footer.y - panel_height, panel_height);
        let table = line(tabs.bottom(), panel.y - tabs.bottom());
        ScreenLayout {
            area,
            too_small: false,
            header,
            tabs,
            table,
            panel,
            footer,
        }
    }

    /// Table rows that fit under the column titles.
    pub fn table_rows(&self) -> usize {
        self.table.height.saturating_sub(1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_tile_the_screen() {
        for (w, h) in [(60, 15), (80, 24), (200, 60)] {
            let l = ScreenLayout::compute(Rect::new(0, 0, w, h));
            assert!(!l.too_small);
            let heights =
                l.header.height + l.tabs.height + l.table.height + l.panel.height + l.footer.height;
            assert_eq!(heights, h);
            assert_eq!(l.tabs.y, 1);
            assert_eq!(l.table.bottom(), l.panel.y);
            assert_eq!(l.panel.bottom(), l.footer.y);
            assert!(l.table_rows() >= 5, "{w}x{h}: {} rows", l.table_rows());
        }
        assert_eq!(
            ScreenLayout::compute(Rect::new(0, 0, 200, 60)).panel.height,
            9
        );
    }

    #[test]
    fn below_the_minimum_is_flagged() {
        assert!(ScreenLayout::compute(Rect::new(0, 0, 59, 40)).too_small);
        assert!(ScreenLayout::compute(Rect::new(0, 0, 120, 14)).too_small);
    }
}
