//! `poll` mode: every `poll_interval`, read both state maps whole (`BPF_MAP_LOOKUP_BATCH`, or key
//! iteration where the kernel lacks it), diff against the previous snapshot by each entry's
//! `poll_seq`, and send the changed entries as row changes — the same `RowChange`s the
//! incremental modes produce, versioned by the poll sequence.
//!
//! What poll cannot see is counted, not guessed: `unobserved_changes` are poll sequence numbers
//! at or below the highest one seen that no snapshot ever showed (overwritten before a read);
//! `evictions` are entries that vanished from an LRU map — live ones, and finished ones that
//! vanished before the kernel reaper could have deleted them (it deletes only entries finished
//! more than `kernel_retention` ago); `kernel_drops` are inserts that failed because a state map
//! was full.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context, Result};
use crossbeam_channel::Sender;
use probe_common::{conn_flags, failure, proc_flags, table};

use crate::{
    loader::Probes,
    map_batch::MapDump,
    mode::{ModeBatch, ModeKind, ModeMessage, Resync},
    record::RowChange,
    row::{ConnectionRow, ProcessRow},
    session::{sleep_unless_stopped, SessionConfig},
    stats::{monotonic_ns, thread_cpu_ns, LagHistogram, ModeCounters},
};

/// What the previous snapshot held for one entry.
#[derive(Clone, Copy)]
struct Seen {
    poll_seq: u64,
    /// When the entity finished (CLOCK_MONOTONIC ns), `None` while live.
    finished_ns: Option<u64>,
}

/// Diff state of one table.
struct TableDiff<K> {
    previous: HashMap<K, Seen>,
    current: HashMap<K, Seen>,
    /// Distinct changes observed so far (entries whose poll_seq moved between snapshots).
    observed: u64,
    /// Highest poll_seq seen in any snapshot.
    highest_seq: u64,
    /// The poll counter when the mode started: changes before it are not ours to count.
    start_seq: u64,
}

impl<K: Copy + Eq + Hash> TableDiff<K> {
    fn new(start_seq: u64) -> Self {
        TableDiff {
            previous: HashMap::new(),
            current: HashMap::new(),
            observed: 0,
            highest_seq: start_seq,
            start_seq,
        }
    }

    /// Notes one entry of the new snapshot; true when it changed since the previous one.
    fn observe(&mut self, key: K, poll_seq: u64, finished_ns: Option<u64>) -> bool {
        self.current.insert(
            key,
            Seen {
                poll_seq,
                finished_ns,
            },
        );
        let changed = self
            .previous
            .get(&key)
            .is_none_or(|p| p.poll_seq != poll_seq);
        if changed && poll_seq > self.start_seq {
            self.observed += 1;
        }
        self.highest_seq = self.highest_seq.max(poll_seq);
        changed
    }

    /// Ends a snapshot taken at `now_ns`; returns how many entries of the previous one vanished
    /// without the kernel reaper having deleted them: live ones, and finished ones that finished
    /// less than `reaper_retention_ns` ago (the reaper keeps those).
    fn finish_snapshot(&mut self, now_ns: u64, reaper_retention_ns: u64) -> u64 {
        let evicted = self
            .previous
            .iter()
            .filter(|(k, s)| {
                !self.current.contains_key(k)
                    && s.finished_ns
                        .is_none_or(|t| now_ns.saturating_sub(t) <= reaper_retention_ns)
            })
            .count() as u64;
        std::mem::swap(&mut self.previous, &mut self.current);
        self.current.clear();
        evicted
    }

    /// Allocated bytes of both snapshots' maps: capacity × (key, Seen) plus a control byte.
    fn allocated_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(K, Seen)>() + 1;
        (self.previous.capacity() + self.current.capacity()) * slot
    }

    fn unobserved(&self) -> u64 {
        (self.highest_seq - self.start_seq).saturating_sub(self.observed)
    }
}

/// Runs the poll loop until `stop` is set or the store hangs up.
pub fn run(
    probes: &Probes,
    config: &SessionConfig,
    sender: &Sender<ModeMessage>,
    stop: &AtomicBool,
) -> Result<()> {
    let mut counters = ModeCounters {
        started_ns: monotonic_ns(),
        ..Default::default()
    };
    let mut scratch = MapDump::new();
    let mut snapshot_lag = LagHistogram::default();
    let mut procs = TableDiff::new(
        probes
            .sequence(ModeKind::Poll, table::PROCESSES)
            .context("reading the poll sequence counter")?,
    );
    let mut conns = TableDiff::new(
        probes
            .sequence(ModeKind::Poll, table::CONNECTIONS)
            .context("reading the poll sequence counter")?,
    );
    while !stop.load(Ordering::Relaxed) {
        let started = monotonic_ns();
        let (proc_entries, path) = probes
            .read_processes(&mut scratch)
            .context("reading the processes state map")?;
        let (conn_entries, _) = probes
            .read_connections(&mut scratch)
            .context("reading the connections state map")?;
        let read_done = monotonic_ns();
        counters.last_read_ns = read_done - started;
        counters.read_path = Some(path.as_str());

        let mut changes = Vec::new();
        let mut all_procs = Vec::with_capacity(proc_entries.len());
        for (key, state) in proc_entries {
            let row = ProcessRow::from_state_map(key, state, state.poll_seq);
            let finished = (state.flags & proc_flags::EXITED != 0).then_some(state.exit_ns);
            if procs.observe(key, state.poll_seq, finished) {
                snapshot_lag.record(state.last_emit_ns, read_done);
                changes.push(RowChange::Process(row.clone()));
            }
            all_procs.push(row);
        }
        let mut all_conns = Vec::with_capacity(conn_entries.len());
        for (key, state) in conn_entries {
            let row = ConnectionRow::from_state_map(key, state, state.poll_seq);
            let finished = (state.flags & conn_flags::CLOSED != 0).then_some(state.end_ns);
            if conns.observe(key, state.poll_seq, finished) {
                snapshot_lag.record(state.last_emit_ns, read_done);
                changes.push(RowChange::Connection(row.clone()));
            }
            all_conns.push(row);
        }
        let reaper_retention_ns = config.kernel_retention.as_nanos() as u64;
        let evicted = procs.finish_snapshot(read_done, reaper_retention_ns)
            + conns.finish_snapshot(read_done, reaper_retention_ns);
        // Only an LRU map evicts: rebuild from this snapshot so the table drops live entries the
        // kernel no longer tracks (finished rows stay until retention, as in every mode).
        let resync = (evicted > 0).then(|| {
            counters.evictions += evicted;
            counters.resyncs += 1;
            Resync {
                processes: all_procs,
                connections: all_conns,
            }
        });

        counters.received += changes.len() as u64;
        counters.batches += 1;
        counters.max_batch = counters.max_batch.max(changes.len() as u64);
        counters.unobserved_changes = procs.unobserved() + conns.unobserved();
        counters.kernel_drops = probes.failure_count(failure::PROC_MAP_FULL).unwrap_or(0)
            + probes.failure_count(failure::CONN_MAP_FULL).unwrap_or(0);
        counters.kernel_bytes = probes.state_maps_kernel_bytes();
        counters.buffer_bytes =
            (scratch.allocated_bytes() + procs.allocated_bytes() + conns.allocated_bytes()) as u64;
        counters.cpu_ns = thread_cpu_ns();
        counters.consumer_lag_ns = snapshot_lag.percentiles();
        let batch = ModeBatch {
            mode: ModeKind::Poll,
            changes,
            resync,
            counters: counters.clone(),
        };
        if sender.send(ModeMessage::Batch(batch)).is_err() {
            return Ok(());
        }
        let spent = Duration::from_nanos(monotonic_ns() - started);
        sleep_unless_stopped(stop, config.poll_interval.saturating_sub(spent));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_changes_unobserved_and_evictions() {
        let mut d = TableDiff::new(10);
        assert!(d.observe(1u32, 11, None));
        assert!(d.observe(2, 13, None));
        assert_eq!(d.finish_snapshot(1_000, 100), 0);
        // 11..=13: 12 was never seen (overwritten before the read).
        assert_eq!(d.unobserved(), 1);
        assert!(!d.observe(1, 11, None)); // unchanged
        assert!(d.observe(3, 15, Some(990))); // 14 unseen
                                              // 2 vanished while live: evicted.
        assert_eq!(d.finish_snapshot(1_000, 100), 1);
        assert_eq!(d.unobserved(), 2);
        // 3 finished at 990 and vanished at 1,050: too early for the reaper, so evicted.
        d.observe(1, 11, None);
        assert_eq!(d.finish_snapshot(1_050, 100), 1);
        // A finished entry that vanishes after the reaper's retention was reaped, not evicted.
        d.observe(1, 11, None);
        d.observe(4, 16, Some(1_060));
        assert_eq!(d.finish_snapshot(1_070, 100), 0);
        d.observe(1, 11, None);
        assert_eq!(d.finish_snapshot(1_200, 100), 0);
    }
}
