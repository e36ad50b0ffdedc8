//! `poll` mode: every `poll_interval`, read both state maps whole (`BPF_MAP_LOOKUP_BATCH`, or key
//! iteration where the kernel lacks it), diff against the previous snapshot by each entry's
//! `poll_seq`, and send the changed entries as row changes — the same `RowChange`s the
//! incremental modes produce, versioned by the poll sequence.
//!
//! What poll cannot see is counted, not guessed: `unobserved_changes` are poll sequence numbers
//! at or below the highest one seen that no snapshot ever showed (overwritten before a read);
//! `evictions` are entries that vanished from an LRU map — live ones, and finished ones that
//! vanished before the kernel reaper could have deleted them (it deletes only entries finished
//! more than `kernel_retention` ago); `map_full` counts inserts that failed because a state map
//! was full (entities poll can never see).

use std::{collections::HashMap, hash::Hash, time::Duration};

use anyhow::{Context, Result};
use crossbeam_channel::Sender;
use probe_common::{conn_flags, proc_flags, table};

use crate::{
    contract::{
        ConnectionRow, ModeBatch, ModeCounters, ModeKind, ModeMessage, ProcessRow, Resync,
        RowChange,
    },
    loader::Probes,
    map_batch::MapDump,
    session::SessionConfig,
    stats::{monotonic_ns, thread_cpu_ns, LagHistogram},
    stop::StopToken,
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

/// The poll mode's own state between snapshots.
struct PollMode<'a> {
    probes: &'a Probes,
    reaper_retention_ns: u64,
    counters: ModeCounters,
    scratch: MapDump,
    snapshot_lag: LagHistogram,
    procs: TableDiff<probe_common::ProcKey>,
    conns: TableDiff<probe_common::ConnKey>,
}

impl<'a> PollMode<'a> {
    fn new(probes: &'a Probes, config: &SessionConfig) -> Result<Self> {
        let start_seq = |table| {
            probes
                .sequence(ModeKind::Poll, table)
                .context("reading the poll sequence counter")
        };
        Ok(PollMode {
            probes,
            reaper_retention_ns: config.kernel_retention.as_nanos() as u64,
            counters: ModeCounters {
                started_ns: monotonic_ns(),
                ..Default::default()
            },
            scratch: MapDump::new(),
            snapshot_lag: LagHistogram::default(),
            procs: TableDiff::new(start_seq(table::PROCESSES)?),
            conns: TableDiff::new(start_seq(table::CONNECTIONS)?),
        })
    }

    /// Reads both maps, diffs them against the previous snapshot, and returns the batch.
    fn snapshot(&mut self) -> Result<ModeBatch> {
        let started = monotonic_ns();
        let map_full_before = self.probes.map_full_count();
        let (proc_entries, path) = self
            .probes
            .read_processes(&mut self.scratch)
            .context("reading the processes state map")?;
        let (conn_entries, _) = self
            .probes
            .read_connections(&mut self.scratch)
            .context("reading the connections state map")?;
        let read_done = monotonic_ns();
        self.counters.last_read_ns = read_done - started;
        self.counters.read_path = Some(path.as_str());

        let mut changes = Vec::new();
        let mut all_procs = Vec::with_capacity(proc_entries.len());
        for (key, state) in proc_entries {
            let row = ProcessRow::from_state_map(key, state, state.poll_seq);
            let finished = (state.flags & proc_flags::EXITED != 0).then_some(state.exit_ns);
            if self.procs.observe(key, state.poll_seq, finished) {
                self.snapshot_lag.record(state.last_emit_ns, read_done);
                changes.push(RowChange::Process(row.clone()));
            }
            all_procs.push(row);
        }
        let mut all_conns = Vec::with_capacity(conn_entries.len());
        for (key, state) in conn_entries {
            let row = ConnectionRow::from_state_map(key, state, state.poll_seq);
            let finished = (state.flags & conn_flags::CLOSED != 0).then_some(state.end_ns);
            if self.conns.observe(key, state.poll_seq, finished) {
                self.snapshot_lag.record(state.last_emit_ns, read_done);
                changes.push(RowChange::Connection(row.clone()));
            }
            all_conns.push(row);
        }
        let evicted = self
            .procs
            .finish_snapshot(read_done, self.reaper_retention_ns)
            + self
                .conns
                .finish_snapshot(read_done, self.reaper_retention_ns);
        let map_full = self.probes.map_full_count();
        // Only an LRU map evicts: rebuild from this snapshot so the table drops live entries the
        // kernel no longer tracks (finished rows stay until retention, as in every mode).
        let resync = (evicted > 0).then(|| {
            self.counters.evictions += evicted;
            self.counters.resyncs += 1;
            Resync {
                processes: all_procs,
                connections: all_conns,
                complete: map_full_before == 0 && map_full == 0,
                initial: false,
            }
        });
        let c = &mut self.counters;
        c.received += changes.len() as u64;
        c.batches += 1;
        c.max_batch = c.max_batch.max(changes.len() as u64);
        c.unobserved_changes = self.procs.unobserved() + self.conns.unobserved();
        c.map_full = map_full;
        c.kernel_bytes = self.probes.state_maps_kernel_bytes();
        c.buffer_bytes = (self.scratch.allocated_bytes()
            + self.procs.allocated_bytes()
            + self.conns.allocated_bytes()) as u64;
        c.cpu_ns = thread_cpu_ns();
        c.consumer_lag_ns = self.snapshot_lag.percentiles();
        Ok(ModeBatch {
            mode: ModeKind::Poll,
            changes,
            resync,
            counters: c.clone(),
        })
    }
}

/// Runs the poll loop until `stop` is signalled or the store hangs up. The last snapshot is
/// taken after the stop, so it shows the final kernel flush.
pub fn run(
    probes: &Probes,
    config: &SessionConfig,
    sender: &Sender<ModeMessage>,
    stop: &StopToken,
) -> Result<()> {
    let mut mode = PollMode::new(probes, config)?;
    loop {
        let started = monotonic_ns();
        let final_snapshot = stop.is_stopped();
        let batch = mode.snapshot()?;
        if sender.send(ModeMessage::Batch(batch)).is_err() || final_snapshot {
            return Ok(());
        }
        let spent = Duration::from_nanos(monotonic_ns() - started);
        stop.sleep(config.poll_interval.saturating_sub(spent));
    }
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
