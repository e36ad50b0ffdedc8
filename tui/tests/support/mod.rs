//! Shared helpers of the dashboard tests: an [`App`] fed by the bridge's *synthetic* source
//! (invented rows, no kernel), drawn into a ratatui `TestBackend`.
#![allow(dead_code)]

use bpftop_ordered::{
    dashboard::{
        app::{App, AppSettings, Control, HostInfo},
        draw_frame,
    },
    model::user_names::UserNames,
};
use bridge::{
    contract::{ModeKind, ModeMessage},
    stats::monotonic_ns,
    store::TableStore,
    synthetic::{SyntheticShape, SyntheticSource},
    table::Retention,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::{backend::TestBackend, buffer::Buffer, Terminal};

/// One second in ns.
pub const SECOND: u64 = 1_000_000_000;

/// An app plus the synthetic world that feeds it.
pub struct Harness {
    /// The dashboard state.
    pub app: App,
    /// The synthetic source (invented data).
    pub source: SyntheticSource,
    /// The terminal the app is drawn into.
    pub terminal: Terminal<TestBackend>,
}

impl Harness {
    /// A harness of the default synthetic shape, drawn at 120x40.
    pub fn new() -> Harness {
        Harness::with_shape(SyntheticShape::default(), 120, 40)
    }

    /// A harness with a given world size and terminal size. Every mode gets the same
    /// batches; the synthetic clock ends close to the real monotonic clock so ages and lags
    /// look plausible.
    pub fn with_shape(shape: SyntheticShape, width: u16, height: u16) -> Harness {
        Harness::with_settings(shape, width, height, AppSettings::default())
    }

    /// [`Harness::with_shape`] with start-up settings (as the command line and the config file
    /// resolve them).
    pub fn with_settings(
        shape: SyntheticShape,
        width: u16,
        height: u16,
        settings: AppSettings,
    ) -> Harness {
        let start = monotonic_ns().saturating_sub(5 * SECOND);
        let mut source = SyntheticSource::with_shape(42, start, shape);
        let mut store = TableStore::new(0, Retention::default());
        for mode in ModeKind::ALL {
            store.apply(source.initial_batch(mode));
        }
        let mut app = App::new(
            store,
            settings,
            HostInfo {
                hostname: "testhost".into(),
                kernel: "6.18.0-test".into(),
                mem_total_bytes: Some(8 << 30),
            },
            start,
        );
        app.set_user_names(UserNames::fixed(&[
            (0, "root"),
            (33, "www-data"),
            (105, "postgres"),
            (1000, "alice"),
        ]));
        let mut harness = Harness {
            app,
            source,
            terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
        };
        for _ in 0..4 {
            harness.step();
        }
        // The event loop draws before it reads the first key; so do the tests.
        harness.draw();
        harness
    }

    /// One synthetic second: a batch to every mode, then the app's per-second and refresh
    /// ticks at the synthetic time.
    pub fn step(&mut self) {
        let changes = self.source.step(SECOND);
        for mode in ModeKind::ALL {
            let batch = self.source.batch(mode, &changes);
            self.app.apply(ModeMessage::Batch(batch));
        }
        let now = self.source.now_ns();
        self.app.on_second(now);
        self.app.on_refresh(now);
    }

    /// Draws a frame and returns the buffer.
    pub fn draw(&mut self) -> Buffer {
        let app = &mut self.app;
        self.terminal.draw(|frame| draw_frame(frame, app)).unwrap();
        self.terminal.backend().buffer().clone()
    }

    /// Draws and returns the screen as text, one line per row.
    pub fn screen(&mut self) -> String {
        screen_text(&self.draw())
    }

    /// Presses a key (no modifiers).
    pub fn press(&mut self, code: KeyCode) -> Control {
        let control = self
            .app
            .handle_key(&KeyEvent::new(code, KeyModifiers::NONE));
        self.draw();
        control
    }

    /// Types text, one key per character.
    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.press(KeyCode::Char(c));
        }
    }
}

/// The buffer as text, rows joined by newlines, trailing spaces kept.
pub fn screen_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    (area.y..area.bottom())
        .map(|y| {
            (area.x..area.right())
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `screen` contains every one of `texts` (the message names the first missing
/// one and shows the screen).
#[track_caller]
pub fn assert_shows(screen: &str, texts: &[&str]) {
    for text in texts {
        assert!(screen.contains(text), "missing {text:?} in\n{screen}");
    }
}

/// Position (x, y) of the first occurrence of `needle` on screen.
pub fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    find_below(buffer, needle, 0)
}

/// Position (x, y) of the first occurrence of `needle` on screen lines `min_y` and below.
pub fn find_below(buffer: &Buffer, needle: &str, min_y: u16) -> Option<(u16, u16)> {
    let area = buffer.area;
    for y in area.y.max(min_y)..area.bottom() {
        let cells: Vec<&str> = (area.x..area.right())
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        let line: String = cells.concat();
        if let Some(byte) = line.find(needle) {
            // Convert the byte offset into a cell index (symbols may be multi-byte).
            let mut offset = 0;
            for (i, symbol) in cells.iter().enumerate() {
                if offset == byte {
                    return Some((area.x + i as u16, y));
                }
                offset += symbol.len();
            }
        }
    }
    None
}
