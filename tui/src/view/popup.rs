//! Popup frames: a cleared, bordered box centered over the screen.

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Widget},
    Frame,
};

use crate::theme::Theme;

/// A `width` × `height` rectangle centered in `area` (shrunk to fit, leaving a margin).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width.saturating_sub(2)).max(1);
    let height = height.min(area.height.saturating_sub(2)).max(1);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

/// A popup for `lines` (plus `extra_rows` below them) on a screen of `area`: as wide as the
/// longest line or `min_width` (so nothing is cut where the screen allows it), and the rows the
/// text takes once wrapped to that width (render it with `Wrap`). Returns (popup, text rows).
pub fn text_popup(lines: &[Line], area: Rect, min_width: u16, extra_rows: u16) -> (Rect, u16) {
    let longest = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
    let width = longest.max(min_width).saturating_add(2);
    let popup = centered(area, width, u16::MAX);
    let inner_width = popup.width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner_width))
        .sum();
    let height = (rows as u16).saturating_add(extra_rows).saturating_add(2);
    (centered(area, popup.width, height), rows as u16)
}

/// Clears `area`, draws a titled border, and returns the inside.
pub fn frame_popup(frame: &mut Frame, area: Rect, title: &str, theme: &Theme) -> Rect {
    Clear.render(area, frame.buffer_mut());
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(theme.popup_border)
        .style(theme.popup_text)
        .title(Span::styled(format!(" {title} "), theme.popup_title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}
