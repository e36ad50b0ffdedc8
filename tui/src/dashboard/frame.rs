//! One frame of the dashboard: the layout for the frame's size, the app's views brought up to
//! date for it, and the view drawn. The event loop and the view tests draw through this.

use ratatui::Frame;

use super::{app::App, layout::ScreenLayout};

/// Draws one frame: lays out the screen for the frame's size, brings the app's views up to
/// date for it (sort/filter only when something changed), and renders.
pub fn draw_frame(frame: &mut Frame, app: &mut App) {
    let layout = ScreenLayout::compute_with(frame.area(), app.panel_collapsed());
    app.prepare(layout);
    crate::view::render(frame, app, &layout);
}
