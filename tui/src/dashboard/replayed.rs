//! `bpftop-ordered replay DIR`: the same dashboard over a recording. The app's store is the
//! recording's tables as of the replay time (`Recording::state_at`: the keyframe before, then
//! the deltas), so sort, filter, tree, detail and mode switching are the live code; the app's
//! clock is the recorded run's CLOCK_MONOTONIC at that time, so ages are those of then.
//!
//! Keys (before the dashboard's own): ←/→ step one refresh interval, `[`/`]` one minute,
//! `g` goes to a typed time (RFC 3339, or `-5m` before now), Space plays at 1×, 10×, 60×
//! and pauses. The header shows the replay time, the speed, and the last seek's duration.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use bridge::stats::monotonic_ns;
use crossterm::event::{KeyCode, KeyEvent};

use super::{
    app::{App, Control},
    checked_settings, show, DashboardOptions,
};
use crate::recording::{
    key::format_time,
    realtime_ns,
    source::{Moment, ReplaySource},
    time_arg::parse_time,
};

/// Play speeds Space cycles through (then pause).
pub const SPEEDS: [u32; 3] = [1, 10, 60];

/// `[` / `]` jump this far.
pub const JUMP: Duration = Duration::from_secs(60);

/// The replay's state, owned by the app.
pub struct ReplayState {
    source: ReplaySource,
    /// The time shown, wall-clock ns.
    pub at_ns: u64,
    /// The recording's first and last record, wall-clock ns.
    pub span_ns: (u64, u64),
    /// CLOCK_REALTIME − CLOCK_MONOTONIC of the run shown, ns.
    offset_ns: u64,
    /// Playing at this speed (`None`: paused).
    pub speed: Option<u32>,
    /// The `g` prompt's text, while it is open.
    pub typing: Option<String>,
    /// ←/→ step, ns.
    step_ns: u64,
    /// The last seek's duration (store rebuilt from the keyframe), µs.
    pub seek_us: u64,
    /// Where the last play step was taken, this process's CLOCK_MONOTONIC ns.
    played_at_ns: u64,
}

impl ReplayState {
    /// The recorded run's CLOCK_MONOTONIC at the replay time.
    pub fn monotonic_ns(&self) -> u64 {
        self.at_ns.saturating_sub(self.offset_ns)
    }

    /// The header's text: time, speed, seek time, the prompt.
    pub fn badge(&self) -> String {
        let speed = match self.speed {
            Some(speed) => format!("▶ {speed}×"),
            None => "⏸".to_string(),
        };
        let mut text = format!(
            " REPLAY {} {speed} seek {:.1} ms ",
            format_time(self.at_ns),
            self.seek_us as f64 / 1000.0
        );
        if let Some(typed) = &self.typing {
            text = format!(" go to (RFC 3339 or -5m, Enter): {typed}▏ ");
        }
        text
    }
}

/// Runs the replay dashboard on `dir` from `at` (default: the recording's end). Exit codes as
/// for [`super::run`], with 1 when the recording does not open or has nothing at that time.
pub fn run(options: DashboardOptions, dir: &Path, at: Option<&str>) -> anyhow::Result<i32> {
    let mut settings = match checked_settings(&options) {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    let at_ns = match at.map(|t| parse_time(t, realtime_ns())).transpose() {
        Ok(at) => at,
        Err(e) => {
            eprintln!("bpftop-ordered: {e}");
            return Ok(2);
        }
    };
    let started = Instant::now();
    let opened = ReplaySource::open(dir).and_then(|source| {
        let moment = source.state_at(at_ns)?;
        Ok((source, moment))
    });
    let (source, replayed) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            eprintln!("bpftop-ordered: {}: {}", dir.display(), error.message);
            return Ok(error.code);
        }
    };
    let at_ns = at_ns.unwrap_or(replayed.span_ns.1);
    settings.app.running_modes = replayed.run.modes.clone();
    if !replayed.run.modes.contains(&settings.app.mode) {
        settings.app.mode = replayed
            .run
            .modes
            .first()
            .copied()
            .unwrap_or(settings.app.mode);
    }
    let interval = settings.app.interval;
    let state = ReplayState {
        source,
        at_ns,
        span_ns: replayed.span_ns,
        offset_ns: replayed.run.realtime_offset_ns,
        speed: None,
        typing: None,
        step_ns: interval.as_nanos() as u64,
        seek_us: started.elapsed().as_micros() as u64,
        played_at_ns: monotonic_ns(),
    };
    let notes = notes_of(&replayed);
    let now = state.monotonic_ns();
    let mut app = App::new(
        replayed.store,
        settings.app,
        super::app::HostInfo::detect(),
        now,
    );
    app.set_notes(notes);
    app.replay = Some(Box::new(state));
    app.set_now(monotonic_ns());
    show(
        &mut app,
        crossbeam_channel::never(),
        crossbeam_channel::never(),
    )
}

fn notes_of(replayed: &Moment) -> Vec<String> {
    let mut notes = replayed.run.notes.clone();
    notes.extend(replayed.damage.iter().cloned());
    if let Some(socket) = &replayed.via {
        notes.push(format!(
            "replaying through the recorder's socket {}",
            socket.display()
        ));
    }
    notes
}

impl App {
    /// The replay, when this dashboard shows a recording.
    pub fn replay(&self) -> Option<&ReplayState> {
        self.replay.as_deref()
    }

    /// The clock the app runs on: the replay's when replaying, else `now_ns`.
    pub(super) fn clock(&self, now_ns: u64) -> u64 {
        self.replay.as_ref().map_or(now_ns, |r| r.monotonic_ns())
    }

    /// Shows the recording as of `at_ns` (clamped to the recording).
    pub fn seek(&mut self, at_ns: u64) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        let at_ns = at_ns.clamp(replay.span_ns.0, replay.span_ns.1);
        let started = Instant::now();
        match replay.source.state_at(Some(at_ns)) {
            Ok(replayed) => {
                replay.at_ns = at_ns;
                // A recording still being written grows.
                replay.span_ns = replayed.span_ns;
                replay.offset_ns = replayed.run.realtime_offset_ns;
                replay.seek_us = started.elapsed().as_micros() as u64;
                let notes = notes_of(&replayed);
                self.store = replayed.store;
                self.set_notes(notes);
                self.data_changed();
            }
            Err(error) => self.set_status(error.message),
        }
        self.set_now(monotonic_ns());
    }

    /// Advances a playing replay by the real time since the last step × its speed (called
    /// on every refresh); at the end it pauses.
    pub(super) fn play_step(&mut self) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        let real = monotonic_ns();
        let elapsed = real.saturating_sub(replay.played_at_ns);
        replay.played_at_ns = real;
        let Some(speed) = replay.speed else { return };
        let to = replay
            .at_ns
            .saturating_add(elapsed.saturating_mul(speed as u64));
        if to >= replay.span_ns.1 {
            replay.speed = None;
        }
        self.seek(to);
    }

    /// The replay's keys; `None` for a key it leaves to the dashboard.
    pub(super) fn replay_key(&mut self, key: &KeyEvent) -> Option<Control> {
        let replay = self.replay.as_mut()?;
        if let Some(typed) = replay.typing.as_mut() {
            match key.code {
                KeyCode::Char(c) => typed.push(c),
                KeyCode::Backspace => {
                    typed.pop();
                }
                KeyCode::Esc => replay.typing = None,
                KeyCode::Enter => {
                    let text = replay.typing.take().unwrap_or_default();
                    match parse_time(&text, realtime_ns()) {
                        Ok(at) => self.seek(at),
                        Err(e) => self.set_status(e),
                    }
                }
                _ => {}
            }
            return Some(Control::Redraw);
        }
        let at = replay.at_ns;
        let step = replay.step_ns;
        let jump = JUMP.as_nanos() as u64;
        match key.code {
            KeyCode::Left => self.seek(at.saturating_sub(step)),
            KeyCode::Right => self.seek(at.saturating_add(step)),
            KeyCode::Char('[') => self.seek(at.saturating_sub(jump)),
            KeyCode::Char(']') => self.seek(at.saturating_add(jump)),
            KeyCode::Char('g') => replay.typing = Some(String::new()),
            KeyCode::Char(' ') => {
                replay.speed = match replay.speed {
                    None => Some(SPEEDS[0]),
                    Some(speed) => SPEEDS
                        .iter()
                        .position(|s| *s == speed)
                        .and_then(|i| SPEEDS.get(i + 1))
                        .copied(),
                };
                replay.played_at_ns = monotonic_ns();
            }
            _ => return None,
        }
        Some(Control::Redraw)
    }
}
