//! Popup frames: a cleared, bordered box centered over the screen.

use ratatui::{
    layout::Rect,
    text::Span,
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
