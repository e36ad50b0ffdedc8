//! The signal dialog (F9): which process, the signals to choose from, then the question that
//! must be answered with `y` (twice, with a warning, for pid 1 and kernel threads).

use ratatui::{
    layout::Rect,
    text::{Line, Span},
    widgets::{Paragraph, Wrap},
    Frame,
};

use super::popup::{centered, frame_popup};
use crate::dashboard::{
    app::App,
    signal::{SignalStage, SIGNALS},
};

/// Draws the dialog at `stage`.
pub fn render(frame: &mut Frame, app: &App, area: Rect, stage: SignalStage) {
    let Some(target) = app.signal_target() else {
        return;
    };
    let theme = app.theme();
    let who = format!("{} (pid {})", target.comm, target.key.tgid);
    let mut lines: Vec<Line> = Vec::new();
    match stage {
        SignalStage::Choose { cursor } => {
            for (i, signal) in SIGNALS.iter().enumerate() {
                let style = if i == cursor {
                    theme.popup_text.patch(theme.row_selected)
                } else {
                    theme.popup_text
                };
                lines.push(Line::from(vec![
                    Span::styled(
                        format!(" {:>2} SIG{:<5} ", signal.number, signal.name),
                        style,
                    ),
                    Span::styled(signal.what, style.patch(theme.panel_label)),
                ]));
            }
        }
        SignalStage::Confirm { signal } => {
            let signal = &SIGNALS[signal];
            lines.push(Line::from(Span::styled(
                format!("Send SIG{} to {who}?", signal.name),
                theme.popup_text,
            )));
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                "y: send   any other key: cancel",
                theme.key,
            )));
        }
        SignalStage::ConfirmAgain { signal } => {
            let signal = &SIGNALS[signal];
            let why = target.guarded.unwrap_or("");
            lines.push(Line::from(Span::styled(
                format!("{who} is {why}."),
                theme.warning,
            )));
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                format!(
                    "Really send SIG{}? y again: send   any other key: cancel",
                    signal.name
                ),
                theme.key,
            )));
        }
    }
    let popup = centered(area, 60, lines.len() as u16 + 4);
    let inner = frame_popup(frame, popup, &format!("Signal — {who}"), theme);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
