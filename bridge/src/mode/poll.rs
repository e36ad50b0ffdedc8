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
use probe_common::{table, ConnKey, ConnState, ProcKey, ProcState};

use crate::{
    contract::{
        KernelState, ModeBatch, ModeCounters, ModeKind, ModeMessage, Resync, Row, RowChange,
    },
    map_batch::MapDump,
    mode::{KernelShared, Mode},
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

/// How poll runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollConfig {
    /// Time between two snapshots.
    pub interval: Duration,
    /// How long the kernel reaper keeps finished entries (an entry that vanishes sooner was
    /// evicted, not reaped).
    pub kernel_retention: Duration,
}

/// The poll mode: snapshots of the shared state maps.
pub struct PollMode {
    kernel: KernelShared,
    config: PollConfig,
}

impl PollMode {
    /// A poll mode reading `kernel`'s state maps.
    pub fn new(kernel: KernelShared, config: PollConfig) -> Self {
        PollMode { kernel, config }
    }
}

impl Mode for PollMode {
    fn kind(&self) -> ModeKind {
        ModeKind::Poll
    }

    /// The last snapshot is taken after the stop, so it shows the final kernel flush.
    fn run(self: Box<Self>, sender: &Sender<ModeMessage>, stop: &StopToken) -> Result<()> {
        let mut poll = Snapshots::new(&self.kernel, &self.config)?;
        loop {
            let started = monotonic_ns();
            let final_snapshot = stop.is_stopped();
            let batch = poll.take()?;
            if sender.send(ModeMessage::Batch(batch)).is_err() || final_snapshot {
                return Ok(());
            }
            let spent = Duration::from_nanos(monotonic_ns() - started);
            stop.sleep(self.config.interval.saturating_sub(spent));
        }
    }
}

/// Poll's state between snapshots.
struct Snapshots<'a> {
    kernel: &'a KernelShared,
    reaper_retention_ns: u64,
    counters: ModeCounters,
    scratch: MapDump,
    snapshot_lag: LagHistogram,
    procs: TableDiff<ProcKey>,
    conns: TableDiff<ConnKey>,
}

impl<'a> Snapshots<'a> {
    fn new(kernel: &'a KernelShared, config: &PollConfig) -> Result<Self> {
        let start_seq = |table| {
            kernel
                .controls
                .sequence(ModeKind::Poll, table)
                .context("reading the poll sequence counter")
        };
        Ok(Snapshots {
            kernel,
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
    fn take(&mut self) -> Result<ModeBatch> {
        let started = monotonic_ns();
        let map_full_before = self.kernel.controls.map_full_count();
        let state_maps = &self.kernel.state_maps;
        let (proc_entries, path) = state_maps
            .read::<ProcState>(&mut self.scratch)
            .context("reading the processes state map")?;
        let (conn_entries, _) = state_maps
            .read::<ConnState>(&mut self.scratch)
            .context("reading the connections state map")?;
        let read_done = monotonic_ns();
        self.counters.last_read_ns = read_done - started;
        self.counters.read_path = Some(path.as_str());
        // Poll is the session's reaper while it runs: its snapshot already holds every
        // finished entry, so the housekeeping thread need not read the maps again.
        let retention = self.reaper_retention_ns;
        let reaped = state_maps
            .reap_due(&proc_entries, retention, started)
            .and_then(|n| Ok(n + state_maps.reap_due(&conn_entries, retention, started)?));
        match reaped {
            Ok(_) => state_maps.note_reaped(started),
            Err(e) => log::warn!("kernel state reaper (poll): {e:#}"),
        }

        let mut changes = Vec::new();
        let lag = &mut self.snapshot_lag;
        diff_table(&mut self.procs, &proc_entries, read_done, lag, &mut changes);
        diff_table(&mut self.conns, &conn_entries, read_done, lag, &mut changes);
        let evicted = self
            .procs
            .finish_snapshot(read_done, self.reaper_retention_ns)
            + self
                .conns
                .finish_snapshot(read_done, self.reaper_retention_ns);
        let map_full = self.kernel.controls.map_full_count();
        // Only an LRU map evicts: rebuild from this snapshot so the table drops live entries the
        // kernel no longer tracks (finished rows stay until retention, as in every mode).
        let resync = (evicted > 0).then(|| {
            self.counters.evictions += evicted;
            self.counters.resyncs += 1;
            Resync {
                processes: all_rows(proc_entries),
                connections: all_rows(conn_entries),
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
        c.kernel_bytes = state_maps.kernel_bytes();
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

/// One table of a snapshot: the entries that changed since the previous snapshot are pushed
/// to `changes` as rows versioned by their poll sequence number, and their age recorded in
/// `lag`.
fn diff_table<S: KernelState>(
    diff: &mut TableDiff<S::Key>,
    entries: &[(S::Key, S)],
    read_done_ns: u64,
    lag: &mut LagHistogram,
    changes: &mut Vec<RowChange>,
) where
    Row<S>: Into<RowChange>,
{
    for (key, state) in entries {
        if diff.observe(*key, state.poll_seq(), state.finished_ns()) {
            lag.record(state.last_emit_ns(), read_done_ns);
            changes.push(Row::from_state_map(*key, *state, state.poll_seq()).into());
        }
    }
}

/// Every entry of a snapshot as a row (for a rebuild after evictions; built only then, not at
/// every snapshot).
fn all_rows<S: KernelState>(entries: Vec<(S::Key, S)>) -> Vec<Row<S>> {
    entries
        .into_iter()
        .map(|(key, state)| Row::from_state_map(key, state, state.poll_seq()))
        .collect()
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
