//! Redraw cost of a 10,000-row table (synthetic data), printed with `eprintln!` — no timing
//! assertions (machines differ). Run `cargo test --release -p bpftop-ordered --test
//! dashboard_redraw -- --nocapture` for representative figures.
//!
//! Three cases: a frame after new data (the order is re-sorted and re-filtered: O(n log n)),
//! a frame after a key press (the cached order is reused: only the rows in view are
//! formatted), and a frame after new data with a plain-text filter (every row's columns are
//! formatted to match the text). A second test times the tree view and regex filters with
//! 10,000 processes and 30,000 connections (BENCHMARKS.md §7).

mod support;

use std::time::{Duration, Instant};

use bridge::synthetic::SyntheticShape;
use crossterm::event::{Event, KeyCode};
use support::Harness;

const ROWS: usize = 10_000;
const FRAMES: u32 = 20;

/// 10,000 processes (30 % busy, churn 3 per step) and `connections`, drawn at 200x60.
fn harness_200x60(connections: usize) -> Harness {
    let shape = SyntheticShape {
        processes: ROWS,
        connections,
        busy_percent: 30,
        churn_per_step: 3,
    };
    Harness::with_shape(shape, 200, 60)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn redraw_time_of_a_10k_row_table() {
    let mut h = harness_200x60(200);
    assert!(h.app.processes_table().len() >= ROWS);

    let mut after_data = Vec::new();
    let mut after_key = Vec::new();
    let mut after_data_text_filter = Vec::new();
    let mut refresh_sampling = Vec::new();
    for _ in 0..FRAMES {
        h.step();
        // The per-refresh work (CPU% of every process of all three modes), on its own.
        let now = h.source.now_ns() + 1;
        let start = Instant::now();
        h.app.on_refresh(now);
        refresh_sampling.push(start.elapsed());
        let start = Instant::now();
        h.draw();
        after_data.push(start.elapsed());

        h.app
            .handle_key(&crossterm::event::KeyEvent::from(KeyCode::Down));
        let start = Instant::now();
        h.draw();
        after_key.push(start.elapsed());
    }
    h.press(KeyCode::Char('/'));
    h.app.handle_event(&Event::Paste("ssh".into()));
    h.press(KeyCode::Enter);
    for _ in 0..FRAMES {
        h.step();
        let start = Instant::now();
        h.draw();
        after_data_text_filter.push(start.elapsed());
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "redraw of a {}-row process table at 200x60 ({profile} build, median of {FRAMES}): \
         after new data (sort by CPU%) {:?}; after a key (cached order) {:?}; \
         after new data with a plain-text filter {:?}; per-refresh CPU% sampling of all \
         three modes' tables {:?}",
        h.app.processes_table().len(),
        median(after_data),
        median(after_key),
        median(after_data_text_filter),
        median(refresh_sampling),
    );
}

/// Issue 10's figures: 10,000 processes and 30,000 connections, a frame after new data in
/// the tree view and with a regex filter (processes), and with a regex filter on the
/// connections table.
#[test]
fn redraw_time_of_the_tree_and_regex_filters_at_10k_processes_30k_connections() {
    let mut h = harness_200x60(30_000);
    assert!(h.app.connections_table().len() >= 30_000);
    let timed = |h: &mut Harness| {
        let mut samples = Vec::new();
        for _ in 0..FRAMES {
            h.step();
            let start = Instant::now();
            h.draw();
            samples.push(start.elapsed());
        }
        median(samples)
    };
    h.press(KeyCode::F(5));
    assert!(h.app.tree());
    let tree = timed(&mut h);
    h.press(KeyCode::Char('/'));
    h.app.handle_event(&Event::Paste("comm~^(ss|ba)".into()));
    h.press(KeyCode::Enter);
    let tree_regex = timed(&mut h);
    h.press(KeyCode::F(5));
    let flat_regex = timed(&mut h);
    h.press(KeyCode::Tab);
    h.press(KeyCode::Char('/'));
    h.app
        .handle_event(&Event::Paste("addr~^10\\. port>1000".into()));
    h.press(KeyCode::Enter);
    let connections_regex = timed(&mut h);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "redraw at 200x60 with {} processes and {} connections ({profile} build, median of \
         {FRAMES} frames after new data): tree view {tree:?}; tree + regex filter \
         {tree_regex:?}; flat + regex filter {flat_regex:?}; connections with a regex and a \
         numeric filter {connections_regex:?}",
        h.app.processes_table().len(),
        h.app.connections_table().len(),
    );
}
