//! Memory of the dashboard with big tables (issue 11): 100k process rows + 100k connection
//! rows in each of the three modes, fed by the bridge's synthetic source into the real `App`
//! and drawn into a `TestBackend`; then, when asked, a churn soak with the product's
//! retention (60 s, 10,000 finished rows per table). Prints the process's resident set
//! (`VmRSS`, peak `VmHWM`) and the tables' own accounting.
//!
//! Run: `cargo bench -p bpftop-ordered --bench dashboard_memory -- [SOAK_SECONDS [CHURN]]`.
//! The generator's own copy of the world (a `Vec` of every live entity) is part of the RSS
//! until the last line, which drops the generator and returns free heap pages
//! (`malloc_trim`) before reading the RSS of the dashboard alone.

use std::time::{Duration, Instant};

use bpftop_ordered::dashboard::{
    app::{App, AppSettings, HostInfo},
    draw_frame,
};
use bridge::{
    contract::{ModeKind, ModeMessage},
    stats::monotonic_ns,
    store::TableStore,
    synthetic::{SyntheticShape, SyntheticSource},
    table::Retention,
};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use probe_common::{ConnKey, ConnState, ProcKey, ProcState};
use ratatui::{backend::TestBackend, Terminal};

const SECOND: u64 = 1_000_000_000;
const ROWS: usize = 100_000;

/// (`VmRSS`, `VmHWM`) of this process, bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn rows(app: &App) -> String {
    ModeKind::ALL
        .iter()
        .map(|m| {
            let t = app.store().mode(*m);
            format!("{m} {}p+{}c", t.processes.rows().len(), t.connections.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A dashboard over a synthetic world of `shape`, every mode fed the same batches.
fn dashboard(shape: SyntheticShape) -> (App, SyntheticSource) {
    let start = monotonic_ns().saturating_sub(5 * SECOND);
    let mut source = SyntheticSource::with_shape(42, start, shape);
    let mut store = TableStore::new(0, Retention::default());
    for mode in ModeKind::ALL {
        store.apply(source.initial_batch(mode));
    }
    let host = HostInfo {
        hostname: "bench".into(),
        kernel: "bench".into(),
        mem_total_bytes: None,
    };
    (App::new(store, AppSettings::default(), host, start), source)
}

/// One synthetic second: a batch to every mode, then the per-second and refresh ticks.
fn step(app: &mut App, source: &mut SyntheticSource) {
    let changes = source.step(SECOND);
    for mode in ModeKind::ALL {
        let batch = source.batch(mode, &changes);
        app.apply(ModeMessage::Batch(batch));
    }
    let now = source.now_ns();
    app.on_second(now);
    app.on_refresh(now);
}

fn press(app: &mut App, code: KeyCode) {
    app.handle_key(&KeyEvent::new(code, KeyModifiers::NONE));
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let soak_secs: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
    let churn: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    println!("baseline RSS {}", mb(rss().0));
    {
        let (mut app, mut source) = dashboard(SyntheticShape {
            processes: ROWS,
            connections: ROWS,
            busy_percent: 30,
            churn_per_step: 3,
        });
        for _ in 0..3 {
            step(&mut app, &mut source);
        }
        // Every mode and both tabs drawn, so each view's caches exist.
        for key in ['1', '2', '3'] {
            press(&mut app, KeyCode::Char(key));
            for _ in 0..2 {
                terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
                press(&mut app, KeyCode::Tab);
            }
        }
        let generator =
            ROWS * (size_of::<(ProcKey, ProcState)>() + size_of::<(ConnKey, ConnState)>());
        let (now_rss, peak) = rss();
        let tables: u64 = ModeKind::ALL
            .iter()
            .map(|m| app.store().mode(*m).table_bytes())
            .sum();
        println!(
            "full tables: {}; RSS {} (peak {}); tables' allocated bytes {}; generator's copy of the world ~{}",
            rows(&app),
            mb(now_rss),
            mb(peak),
            mb(tables),
            mb(generator as u64)
        );
        // A minute of refreshes: every CPU% history is full.
        for _ in 0..60 {
            step(&mut app, &mut source);
        }
        terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
        let (now_rss, peak) = rss();
        println!(
            "after 60 refreshes (histories full): {}; RSS {} (peak {})",
            rows(&app),
            mb(now_rss),
            mb(peak)
        );
        // The dashboard alone: the generator's world and its last batches freed, and the
        // allocator's free memory handed back, so the RSS is what the App holds.
        drop(source);
        // SAFETY: malloc_trim has no preconditions; it only returns free heap pages.
        unsafe { libc::malloc_trim(0) };
        terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
        let (now_rss, _) = rss();
        println!(
            "the dashboard alone (generator dropped, malloc_trim): {}; RSS {}",
            rows(&app),
            mb(now_rss)
        );
        // The other tab (connections): its order is built, the process view's is freed.
        press(&mut app, KeyCode::Tab);
        terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
        // SAFETY: as above.
        unsafe { libc::malloc_trim(0) };
        let (now_rss, _) = rss();
        println!("the same on the connections tab: RSS {}", mb(now_rss));
        // Paused (Space): the visible mode's tables copied whole, the other modes' rows that
        // differ from them; then another mode shown while paused (its tables rebuilt).
        press(&mut app, KeyCode::Char(' '));
        terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
        // SAFETY: as above.
        unsafe { libc::malloc_trim(0) };
        let (paused_rss, _) = rss();
        let copied = app.paused_copied_rows().unwrap_or(0);
        press(&mut app, KeyCode::Char('2'));
        terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
        // SAFETY: as above.
        unsafe { libc::malloc_trim(0) };
        let (switched_rss, _) = rss();
        println!(
            "paused: RSS {} (+{}, {copied} rows copied); another mode shown while paused: RSS {} ({} rows copied)",
            mb(paused_rss),
            mb(paused_rss.saturating_sub(now_rss)),
            mb(switched_rss),
            app.paused_copied_rows().unwrap_or(0)
        );
        press(&mut app, KeyCode::Char(' '));
    }
    // The 100k-row world is gone: its free heap is handed back, so the soak's RSS is its own.
    // SAFETY: as above.
    unsafe { libc::malloc_trim(0) };
    if soak_secs == 0 {
        return;
    }
    // Churn soak: `churn` processes forked and as many exited per synthetic second, on a world
    // of 10k processes and 10k connections; each step is one synthetic second, run every
    // 100 ms of wall time, with a frame per step.
    let (mut app, mut source) = dashboard(SyntheticShape {
        processes: 10_000,
        connections: 10_000,
        busy_percent: 30,
        churn_per_step: churn,
    });
    let started = Instant::now();
    let mut next_sample = Duration::ZERO;
    let mut steps = 0u64;
    while started.elapsed() < Duration::from_secs(soak_secs) {
        step(&mut app, &mut source);
        terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
        steps += 1;
        if started.elapsed() >= next_sample {
            let (r, p) = rss();
            println!(
                "soak t={:>5}s steps={steps:>6} rows: {} RSS {} peak {}",
                started.elapsed().as_secs(),
                rows(&app),
                mb(r),
                mb(p)
            );
            next_sample += Duration::from_secs(60);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (r, p) = rss();
    println!("soak end: steps={steps} RSS {} peak {}", mb(r), mb(p));
}
