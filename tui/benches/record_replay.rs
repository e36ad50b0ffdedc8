//! Record / replay figures (issue 13), on **synthetic** data: the bridge's synthetic source
//! (`bridge::synthetic`, nothing from a kernel) drives the product's own collector hub and
//! recorder (`serve --record`'s code path) and reader.
//!
//! 1. Storm: ~10,000 row changes/s for `STORM_SECONDS` of real time through the `Hub` with a
//!    recorder (batches every 100 ms, a reap each second, a keyframe every 10 s): the writer
//!    thread's CPU, bytes on disk per change, records dropped, this process's RSS.
//! 2. One hour: a recording of 3,600 synthetic seconds written as fast as it goes (stamped
//!    with synthetic wall-clock times, `Recorder::record_frame_at`), then seeks to random
//!    times in it (`Recording::state_at`), and replay frames (seek + a draw of the dashboard
//!    into a 160×50 `TestBackend`).
//!
//! Run: `cargo bench -p bpftop-ordered --bench record_replay -- [STORM_SECONDS [HOUR_RATE]]`
//! (defaults 20 s and 1,000 changes/s for the hour).

use std::time::{Duration, Instant};

use bpftop_ordered::{
    dashboard::{
        app::{App, AppSettings, HostInfo},
        draw_frame,
    },
    recording::{
        reader::Recording,
        realtime_ns,
        record::RunInfo,
        store::{RecordRetention, RecordStore},
        writer::Recorder,
    },
    remote::{
        collector::hub::{snapshot_frames, Hub, HubLimits},
        frame::encode,
        protocol::{CollectorMessage, Position},
        wire_rows::message_to_op,
    },
};
use bridge::{
    contract::{ModeKind, ModeMessage},
    stats::monotonic_ns,
    store::TableStore,
    synthetic::{SyntheticShape, SyntheticSource},
    table::Retention,
};
use ratatui::{backend::TestBackend, Terminal};

const SECOND: u64 = 1_000_000_000;

fn retention() -> RecordRetention {
    RecordRetention {
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(86_400),
    }
}

/// utime + stime of this process's threads other than the main one (the generator and the
/// hub run there): the recorder thread and fjall's flush/compaction workers, ns.
fn background_cpu_ns() -> u64 {
    let main = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
    let main_tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let _ = main;
    let tick_ns = 1_000_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if entry.file_name().to_string_lossy() == main_tid {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        total += ticks * tick_ns;
    }
    total
}

/// utime + stime of this process's thread named `name`, ns.
fn thread_cpu_ns(name: &str) -> u64 {
    let tick_ns = 1_000_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        total += ticks * tick_ns;
    }
    total
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn du(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            du(&entry.path())
        } else {
            // Allocated blocks: a preallocated journal counts what it holds.
            std::os::unix::fs::MetadataExt::blocks(&meta) * 512
        };
    }
    total
}

fn changes(message: &ModeMessage) -> u64 {
    match message {
        ModeMessage::Batch(batch) => batch.changes.len() as u64,
        _ => 0,
    }
}

fn storm(seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open_for_writing(dir.path(), retention()).unwrap();
    // 2,000 processes, half of them busy in each 100 ms step: ~1,000 changes a step.
    let shape = SyntheticShape {
        processes: 2000,
        connections: 500,
        busy_percent: 50,
        churn_per_step: 5,
    };
    let mut source = SyntheticSource::with_shape(7, monotonic_ns(), shape);
    let mut hub = Hub::new(
        1,
        TableStore::new(0, Retention::default()),
        vec![ModeKind::Ring],
        HubLimits {
            queue_frames: 16,
            recent_frames: 4096,
            recent_bytes: 64 << 20,
        },
    );
    hub.publish_message(ModeMessage::Batch(source.initial_batch(ModeKind::Ring)));
    hub.set_recorder(store.clone(), vec![]).unwrap();
    let rss_before = rss_bytes();
    let disk_before = du(dir.path());
    let cpu_before = thread_cpu_ns("recorder");
    let background_before = background_cpu_ns();
    let started = Instant::now();
    let mut total = 0u64;
    let mut publish_ns = 0u64;
    let mut step = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let message = ModeMessage::Batch(source.next_batch(ModeKind::Ring, SECOND / 10));
        total += changes(&message);
        let t = Instant::now();
        hub.publish_message(message);
        step += 1;
        if step.is_multiple_of(10) {
            hub.publish_reap(monotonic_ns());
        }
        if step.is_multiple_of(100) {
            hub.record_keyframe();
        }
        publish_ns += t.elapsed().as_nanos() as u64;
        let next = Duration::from_millis(100 * step);
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let wall = started.elapsed();
    let cpu = thread_cpu_ns("recorder") - cpu_before;
    let background = background_cpu_ns() - background_before;
    let counters = hub.recorder().unwrap().counters();
    let dropped = counters.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let value_bytes = counters
        .value_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    let rss = rss_bytes();
    hub.finish_recording();
    drop(hub);
    store.db.persist(fjall::PersistMode::SyncAll).unwrap();
    let _ = store.log.rotate_memtable_and_wait();
    std::thread::sleep(Duration::from_millis(500));
    let disk = du(dir.path()) - disk_before;
    let rate = total as f64 / wall.as_secs_f64();
    println!(
        "storm: {total} changes in {:.1} s ({rate:.0}/s), recorder thread CPU {:.1}% of a core (with fjall's workers {:.1}%), \
         {:.1} value bytes/change before compression, {:.1} bytes/change on disk (tables after flush), \
         dropped {dropped}, collector publish+record {:.1} µs/batch, RSS {:.1} MB (+{:.1} MB while recording)",
        wall.as_secs_f64(),
        cpu as f64 / wall.as_nanos() as f64 * 100.0,
        background as f64 / wall.as_nanos() as f64 * 100.0,
        value_bytes as f64 / total as f64,
        disk as f64 / total as f64,
        publish_ns as f64 / step as f64 / 1000.0,
        rss as f64 / 1e6,
        rss.saturating_sub(rss_before) as f64 / 1e6,
    );
}

fn hour(rate: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open_for_writing(dir.path(), retention()).unwrap();
    let steps_per_s = 5u64;
    // Changes per step ≈ processes × busy% + churn.
    let per_step = rate / steps_per_s;
    let shape = SyntheticShape {
        processes: (per_step * 2).max(50) as usize,
        connections: 200,
        busy_percent: 50,
        churn_per_step: 2,
    };
    let mono_start = 10_000 * SECOND;
    let wall_start = realtime_ns() - 3700 * SECOND;
    let offset = wall_start - mono_start;
    let mut source = SyntheticSource::with_shape(11, mono_start, shape);
    let mut tables = TableStore::new(0, Retention::default());
    tables.apply(source.initial_batch(ModeKind::Ring));
    let recorder = Recorder::start(store.clone()).unwrap();
    let run = RunInfo {
        epoch: 2,
        pid: std::process::id(),
        modes: vec![ModeKind::Ring],
        realtime_offset_ns: offset,
        start_tolerance_ns: 0,
        retention_age_ns: Retention::default().max_age_ns,
        retention_rows: Retention::default().max_finished as u64,
        notes: vec![],
    };
    let started = Instant::now();
    let mut seq = 0u64;
    let mut total = 0u64;
    let steps = 3600 * steps_per_s;
    for step in 0..steps {
        let mono = mono_start + step * SECOND / steps_per_s;
        if step.is_multiple_of(10 * steps_per_s) {
            let frames = snapshot_frames(
                &tables,
                &[ModeKind::Ring],
                Position { epoch: 2, seq },
                "keyframe",
            )
            .unwrap();
            recorder.record_keyframe_at(mono + offset, run.clone(), frames);
        }
        let message = ModeMessage::Batch(source.next_batch(ModeKind::Ring, SECOND / steps_per_s));
        total += changes(&message);
        seq += 1;
        let frame = encode(&CollectorMessage::Delta {
            seq,
            op: message_to_op(&message),
        })
        .unwrap();
        recorder.record_frame_at(mono + offset, frame);
        tables.handle(message);
        if step.is_multiple_of(steps_per_s) {
            tables.reap(mono);
            seq += 1;
            let frame = encode(&CollectorMessage::Delta {
                seq,
                op: bpftop_ordered::remote::protocol::StoreOp::Reap { now_ns: mono },
            })
            .unwrap();
            recorder.record_frame_at(mono + offset, frame);
        }
    }
    drop(recorder);
    let written = started.elapsed();
    let _ = store.log.rotate_memtable_and_wait();
    std::thread::sleep(Duration::from_millis(500));
    let disk = du(dir.path());
    println!(
        "hour: {total} changes over 3600 synthetic s ({:.0}/s), {} rows live at the end, written in {:.1} s, {:.1} MB on disk ({:.1} bytes/change)",
        total as f64 / 3600.0,
        tables.mode(ModeKind::Ring).processes.rows().len(),
        written.as_secs_f64(),
        disk as f64 / 1e6,
        disk as f64 / total as f64
    );
    drop(store);
    let recording = Recording::open(dir.path()).unwrap();
    let mut seeks = Vec::new();
    let mut x = 12345u64;
    for _ in 0..30 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = wall_start + (x >> 11) % (3600 * SECOND);
        let t = Instant::now();
        let replayed = recording.state_at(at).unwrap();
        seeks.push(t.elapsed());
        assert!(replayed.damage.is_empty());
    }
    seeks.sort();
    println!(
        "seek (state at a random time, keyframe ≤ T + deltas): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} seeks",
        seeks[seeks.len() / 2].as_secs_f64() * 1e3,
        seeks[seeks.len() * 9 / 10].as_secs_f64() * 1e3,
        seeks[seeks.len() - 1].as_secs_f64() * 1e3,
        seeks.len()
    );
    // Replay frames: seek to the next interval, then draw.
    let host = HostInfo {
        hostname: "bench".into(),
        kernel: "bench".into(),
        mem_total_bytes: None,
    };
    let at0 = wall_start + 1800 * SECOND;
    let first = recording.state_at(at0).unwrap();
    let mut app = App::new(first.store, AppSettings::default(), host, at0 - offset);
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).unwrap();
    let mut frames = Vec::new();
    for i in 1..=20u64 {
        let t = Instant::now();
        let replayed = recording.state_at(at0 + i * SECOND).unwrap();
        *app.store_mut() = replayed.store;
        app.set_now(at0 + i * SECOND - offset);
        terminal.draw(|f| draw_frame(f, &mut app)).unwrap();
        frames.push(t.elapsed());
    }
    frames.sort();
    println!(
        "replay frame (seek one interval on + draw 160x50): p50 {:.1} ms, max {:.1} ms over {} frames",
        frames[frames.len() / 2].as_secs_f64() * 1e3,
        frames[frames.len() - 1].as_secs_f64() * 1e3,
        frames.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let storm_seconds = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let hour_rate = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    println!("SYNTHETIC data (bridge::synthetic), the product's hub, recorder and reader");
    storm(storm_seconds);
    hour(hour_rate);
}
