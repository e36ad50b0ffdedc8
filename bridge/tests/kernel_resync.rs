//! Provoked loss in ring mode (issue 3): with a one-page ring buffer, a burst of processes
//! overflows the ring; the loss must be counted (`drops`), trigger resyncs, and afterwards the
//! ring table must equal a direct read of the kernel state map, entry for entry.
//!
//! What "equal" can mean on a live machine: the map keeps changing (other processes run, fork
//! and exit while we compare), so the map is read at an instant `t_read`, the consumer is let
//! catch up past every record emitted before it, and then
//! - every map entry is a kernel row of the table;
//! - every kernel row that did not change after `t_read` is in the map (rows of entries the
//!   kernel reaper deleted are the only exception; none can be reaped within this test);
//! - a row unchanged since `t_read` whose entry had exited equals the entry in every field
//!   (an exited entry is frozen: the exit record carries its final state);
//! - a row unchanged since `t_read` whose entry is live agrees on every field but `cpu_ns`
//!   (the kernel adds on-CPU time to the map at each context switch but emits a record at
//!   most every `update_interval`, so the table's CPU time legitimately lags; a row keeps no
//!   `last_emit_ns`, which moves with those throttled records).
mod common;

use common::pump_until;

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use bridge::{
    contract::{KernelState, ModeKind, ProcessRow, RowOrigin},
    map_batch::MapDump,
    session::{Session, SessionConfig},
    stats::monotonic_ns,
    store::TableStore,
};
use probe_common::{failure, proc_flags, table, ProcKey, ProcState};

const KERNEL_RETENTION: Duration = Duration::from_secs(60);

fn pump_for(session: &Session, store: &mut TableStore, time: Duration) {
    pump_until(session, store, time, |_| false);
}

/// One child of the workload: pid, expected `comm` and exit status.
type Expected = (u32, &'static str, i32);

/// 500 short `/bin/true` runs from 2 threads (in waves of 25), then 300 `sleep 30` children
/// killed with one SIGKILL to their process group (300 exits within milliseconds: the densest
/// burst of records user space can cause). Runs on worker threads while the caller keeps
/// applying messages (the store has one owner: this thread).
fn burst_while_pumping(session: &Session, store: &mut TableStore) -> Vec<Expected> {
    let spawners: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let mut done = Vec::new();
                for _ in 0..10 {
                    let wave: Vec<_> = (0..25)
                        .map(|_| {
                            Command::new("/bin/true")
                                .stdin(Stdio::null())
                                .spawn()
                                .expect("spawn /bin/true")
                        })
                        .collect();
                    for mut child in wave {
                        assert!(child.wait().expect("wait").success());
                        done.push((child.id(), "true", 0));
                    }
                }
                done
            })
        })
        .collect();
    let killer = std::thread::spawn(|| {
        use std::os::unix::process::CommandExt;
        let mut children = Vec::new();
        let mut pgid = 0;
        for _ in 0..300 {
            let child = Command::new("/bin/sleep")
                .arg("30")
                .stdin(Stdio::null())
                .process_group(pgid)
                .spawn()
                .expect("spawn sleep");
            if pgid == 0 {
                pgid = child.id() as i32;
            }
            children.push(child);
        }
        // SAFETY: kill(2) on the process group we just created; no memory involved.
        let killed = unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let error = std::io::Error::last_os_error();
        let done: Vec<Expected> = children
            .iter_mut()
            .map(|c| {
                c.wait().expect("wait sleep");
                (c.id(), "sleep", 128 + libc::SIGKILL)
            })
            .collect();
        assert_eq!(killed, 0, "kill -{pgid}: {error}");
        done
    });
    pump_until(session, store, Duration::from_secs(20), |_| {
        spawners.iter().all(|h| h.is_finished()) && killer.is_finished()
    });
    let mut all: Vec<Expected> = spawners
        .into_iter()
        .flat_map(|h| h.join().expect("spawner thread"))
        .collect();
    all.extend(killer.join().expect("killer thread"));
    all
}

/// The ring table's process rows that came from the probes (not from the /proc seed).
fn kernel_process_rows(store: &TableStore) -> impl Iterator<Item = &ProcessRow> {
    store
        .mode(ModeKind::Ring)
        .processes
        .rows()
        .iter()
        .filter(|r| r.origin == RowOrigin::Kernel)
}

/// Highest seq among the ring table's kernel process rows: every record up to it has been
/// applied or found missing.
fn highest_row_seq(store: &TableStore) -> u64 {
    kernel_process_rows(store).map(|r| r.seq).max().unwrap_or(0)
}

/// Compares the ring table with a map read at `t_read`; returns the differences.
fn differences(store: &TableStore, map: &HashMap<ProcKey, ProcState>, t_read: u64) -> Vec<String> {
    let mut diffs = Vec::new();
    let rows: HashMap<ProcKey, &ProcessRow> =
        kernel_process_rows(store).map(|r| (r.key, r)).collect();
    for (key, entry) in map {
        if !rows.contains_key(key) {
            diffs.push(format!(
                "map entry missing from the table: {key:?} {entry:?}"
            ));
        }
    }
    let reap_horizon = t_read.saturating_sub(KERNEL_RETENTION.as_nanos() as u64);
    for (key, row) in &rows {
        if row.changed_ns > t_read {
            continue; // moved on after the read
        }
        let Some(entry) = map.get(key) else {
            let maybe_reaped = row.is_exited() && row.state.exit_ns <= reap_horizon;
            if !maybe_reaped {
                diffs.push(format!(
                    "table row not in the map: {key:?} {:?} seq {} changed {}",
                    row.state, row.seq, row.changed_ns
                ));
            }
            continue;
        };
        // Kernel-internal fields never reach a row; fields the flush refreshes while a process
        // lives (CPU time, task state, sample time) race the read.
        let mut expected = entry.info();
        if entry.flags & proc_flags::EXITED == 0 {
            expected.cpu_ns = row.state.cpu_ns;
            expected.sampled_ns = row.state.sampled_ns;
            expected.task_state = row.state.task_state;
            expected.exit_state = row.state.exit_state;
            expected.flags = row.state.flags;
        }
        if row.state != expected {
            diffs.push(format!(
                "row differs from the map: {key:?}\n  table {:?} (seq {}, changed {})\n  map   \
                 {entry:?}",
                row.state, row.seq, row.changed_ns
            ));
        }
    }
    diffs
}

fn kernel_rows(store: &TableStore) -> usize {
    kernel_process_rows(store).count()
}

#[test]
fn provoked_ring_loss_resyncs_to_the_state_map_entry_for_entry() {
    let test = "provoked_ring_loss_resyncs_to_the_state_map_entry_for_entry";
    if !common::privileged_or_skip(test) {
        return;
    }
    // The default maps are sized from the machine: room for everything that can happen during
    // the test (a full map would make it differ from the records; checked below).
    let mut config = SessionConfig::with_modes(&[ModeKind::Ring]);
    config.probes.ring_bytes = 4096;
    config.kernel_retention = KERNEL_RETENTION;
    let session = Session::start(config).expect("session starts");
    let probes = session.controls();
    let state_maps = session.state_maps();
    let mut store = session.new_store();
    pump_for(&session, &mut store, Duration::from_millis(200));

    // Bursts until the one-page ring has overflowed (the first one does in practice).
    let mut children = Vec::new();
    for _ in 0..3 {
        children.extend(burst_while_pumping(&session, &mut store));
        if probes.ring_reserve_failures() > 0 {
            break;
        }
    }
    let reserve_failures = probes.ring_reserve_failures();
    assert!(
        reserve_failures > 0,
        "no ring overflow after {} processes",
        children.len()
    );

    // Live: let the loss settle into resyncs, then compare until the table matches a map read
    // (a mismatch can be a change racing the read; a real divergence persists).
    pump_for(&session, &mut store, Duration::from_millis(500));
    let mut scratch = MapDump::new();
    let mut live_diffs = Vec::new();
    let mut compared = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let t_read = monotonic_ns();
        let (entries, path) = state_maps
            .read_processes(&mut scratch)
            .expect("read PROC_STATE");
        let seq_at_read = probes
            .sequence(ModeKind::Ring, table::PROCESSES)
            .expect("read SEQ");
        let map: HashMap<ProcKey, ProcState> = entries.into_iter().collect();
        // Catch up past every record emitted before the read, then give holes time to
        // settle (2 drains, 20 ms) and their resync to arrive.
        let caught_up = pump_until(&session, &mut store, Duration::from_secs(5), |s| {
            highest_row_seq(s) >= seq_at_read
        });
        pump_for(&session, &mut store, Duration::from_millis(400));
        compared += 1;
        live_diffs = differences(&store, &map, t_read);
        println!(
            "{test}: live comparison {compared}: {} map entries ({path:?}), {} kernel rows, \
             caught up {caught_up}, {} differences",
            map.len(),
            kernel_rows(&store),
            live_diffs.len()
        );
        if caught_up && live_diffs.is_empty() {
            break;
        }
    }
    assert!(
        live_diffs.is_empty(),
        "the ring table did not converge to the state map after {compared} comparisons; {} \
         differences, first ones:\n{}",
        live_diffs.len(),
        live_diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Frozen: switch the kernel emission off (with no mode enabled the probes also stop writing
    // the maps), drain what is in flight and let the last holes settle. Now the accounting
    // must be exact and the table must equal the map without any timing allowance.
    session
        .set_mode_emission(ModeKind::Ring, false)
        .expect("disable ring emission");
    pump_for(&session, &mut store, Duration::from_millis(800));
    let offered = probes.sequence(ModeKind::Ring, table::PROCESSES).unwrap()
        + probes.sequence(ModeKind::Ring, table::CONNECTIONS).unwrap();
    let failures = probes.ring_reserve_failures();
    let counters = store.mode(ModeKind::Ring).counters.clone();
    let stats = store.stats(ModeKind::Ring);
    println!(
        "{test}: {} children, ring 4096 B: records offered {offered}, received {}, drops \
         (seq gaps) {}, ring reserve failures {failures}, resyncs {}, events applied {}, stale \
         {}, process rows {}",
        children.len(),
        counters.received,
        stats.drops,
        stats.resyncs,
        stats.events,
        stats.stale,
        stats.process_rows
    );
    assert!(stats.drops > 0, "loss not counted: {stats:?}");
    assert!(stats.resyncs > 0, "no resync after loss: {stats:?}");
    assert_eq!(
        counters.received + stats.drops,
        offered,
        "every record offered to ring is either received or counted as dropped"
    );
    assert_eq!(
        stats.drops, failures,
        "the drop count equals the kernel's ring reserve failures exactly"
    );
    assert_eq!(counters.decode_errors, 0);
    assert_eq!(
        probes.failure_count(failure::PROC_MAP_FULL).unwrap(),
        0,
        "the processes state map overflowed: it is no longer the truth"
    );
    let t_read = monotonic_ns();
    let (entries, _) = state_maps
        .read_processes(&mut scratch)
        .expect("read PROC_STATE");
    let map: HashMap<ProcKey, ProcState> = entries.into_iter().collect();
    let frozen_diffs = differences(&store, &map, t_read);
    println!(
        "{test}: frozen comparison: {} map entries, {} kernel rows, {} differences",
        map.len(),
        kernel_rows(&store),
        frozen_diffs.len()
    );
    assert!(
        frozen_diffs.is_empty(),
        "with the kernel frozen, the ring table differs from the state map; {} differences, \
         first ones:\n{}",
        frozen_diffs.len(),
        frozen_diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(kernel_rows(&store), map.len(), "same number of entries");

    // The workload itself: every child is in the table, exited, with its exit status.
    let rows = store.mode(ModeKind::Ring).processes.rows();
    let missing: Vec<&Expected> = children
        .iter()
        .filter(|(pid, comm, status)| {
            !rows.iter().any(|r| {
                r.pid() == *pid
                    && r.comm() == *comm
                    && r.exit_status() == Some(*status)
                    && r.state.ppid == std::process::id()
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} children missing or wrong after the resyncs: {:?}",
        missing.len(),
        children.len(),
        &missing[..missing.len().min(20)]
    );
}
