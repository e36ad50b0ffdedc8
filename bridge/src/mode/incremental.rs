//! What `ring` and `perf` share: decoding, per-table loss detection, resync from the state maps
//! after loss, batching, and counters. Each transport only supplies the record bytes.

use std::time::Duration;

use crossbeam_channel::Sender;
use probe_common::{table, ConnState, ProcState};

use crate::{
    contract::{
        KernelState, ModeBatch, ModeCounters, ModeKind, ModeMessage, Resync, Row, RowChange,
    },
    map_batch::MapDump,
    mode::KernelShared,
    probe::handles::StateMapRead,
    record::{self, Record},
    seq_gap::SeqTracker,
    stats::{monotonic_ns, thread_cpu_ns, LagHistogram},
};

/// Records per batch before it is handed to the store even mid-drain.
pub const MAX_BATCH: usize = 4096;
/// A mode with nothing to send still sends its counters this often, so stats stay current.
const COUNTERS_EVERY: Duration = Duration::from_millis(500);
/// A sequence hole must survive this many drains and this long before it counts as lost.
const SETTLE_DRAINS: u64 = 2;
const SETTLE_NS: u64 = 20_000_000;
/// How often the kernel's per-CPU failure counter is read (one map lookup each time).
const KERNEL_COUNTER_EVERY: Duration = Duration::from_millis(100);
/// How often the consumer-lag percentiles sent with the counters are recomputed (and on every
/// forced flush, so the last counters are exact). Each quantile scans the histogram's buckets
/// up to the value (~20,000 for millisecond lags): at every batch, 100 a second per mode, that
/// was 9 % of a ring consumer's samples in an exec storm (BENCHMARKS.md 8g). Readers sample the
/// counters once a second.
const LAG_PERCENTILES_EVERY: Duration = Duration::from_millis(200);

/// Consumer state of one incremental mode.
pub struct IncrementalConsumer {
    mode: ModeKind,
    trackers: [SeqTracker; table::COUNT],
    counters: ModeCounters,
    changes: Vec<RowChange>,
    pending: Vec<Record>,
    last_sent_ns: u64,
    kernel_drops_seen: u64,
    kernel_drops_read_ns: u64,
    map_full_read_ns: u64,
    scratch: MapDump,
    /// Reassembly buffer for perf samples that wrap the buffer end.
    joined: Vec<u8>,
    /// Kernel change → taken out of the transport (end of the drain that read it).
    consumer_lag: LagHistogram,
    /// When `counters.consumer_lag_ns` was last computed from `consumer_lag` (0: never).
    lag_percentiles_ns: u64,
}

impl IncrementalConsumer {
    /// A consumer for `mode` whose maps/buffers take `kernel_bytes` of kernel memory.
    pub fn new(mode: ModeKind, kernel_bytes: u64) -> Self {
        let now = monotonic_ns();
        IncrementalConsumer {
            mode,
            trackers: [
                SeqTracker::new(SETTLE_DRAINS, SETTLE_NS),
                SeqTracker::new(SETTLE_DRAINS, SETTLE_NS),
            ],
            counters: ModeCounters {
                started_ns: now,
                kernel_bytes,
                ..Default::default()
            },
            changes: Vec::with_capacity(MAX_BATCH),
            pending: Vec::with_capacity(MAX_BATCH),
            last_sent_ns: now,
            kernel_drops_seen: 0,
            kernel_drops_read_ns: 0,
            map_full_read_ns: 0,
            scratch: MapDump::new(),
            joined: Vec::new(),
            consumer_lag: LagHistogram::default(),
            lag_percentiles_ns: 0,
        }
    }

    /// Decodes one record; malformed ones are counted and skipped. Decoded records wait in
    /// `pending` until [`IncrementalConsumer::end_drain`] (so perf can merge CPUs by seq).
    pub fn push_bytes(&mut self, bytes: &[u8], padded: bool) {
        let decoded = if padded {
            record::decode_padded(bytes)
        } else {
            record::decode(bytes)
        };
        match decoded {
            Ok(record) => self.pending.push(record),
            Err(error) => {
                self.counters.decode_errors += 1;
                if self.counters.decode_errors <= 3 {
                    log::warn!("{} mode: skipping a malformed record: {error}", self.mode);
                }
            }
        }
    }

    /// Decodes one perf sample, which arrives in two pieces when it wraps the buffer's end
    /// (`tail` empty otherwise); perf pads samples to 8 bytes.
    pub fn push_perf_sample(&mut self, head: &[u8], tail: &[u8]) {
        if tail.is_empty() {
            self.push_bytes(head, true);
        } else {
            let mut joined = std::mem::take(&mut self.joined);
            joined.clear();
            joined.extend_from_slice(head);
            joined.extend_from_slice(tail);
            self.push_bytes(&joined, true);
            self.joined = joined;
        }
    }

    /// Records waiting for the end of the drain.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Ends one drain of the transport: orders the pending records by (table, seq), checks the
    /// sequence numbers, and — when loss has settled or the kernel's drop counter moved —
    /// reads the state maps for a resync. Sends a batch when there is something to send.
    /// `read_kernel_drops` reads the transport's kernel failure counter (a map lookup, so it is
    /// called at most every `KERNEL_COUNTER_EVERY`); `perf_lost` adds lost samples reported by
    /// the transport since the last call.
    pub fn end_drain(
        &mut self,
        probes: &impl ResyncSource,
        sender: &Sender<ModeMessage>,
        read_kernel_drops: impl FnOnce() -> u64,
        perf_lost: u64,
    ) -> Result<(), SendClosed> {
        let now = monotonic_ns();
        self.pending
            .sort_unstable_by_key(|r| (r.table(), r.header().seq));
        for record in self.pending.drain(..) {
            let table = record.table() as usize;
            if self.trackers[table].observe(record.header().seq, now) {
                self.consumer_lag.record(record.header().ktime_ns, now);
                self.changes.push(RowChange::from(record));
            }
        }
        self.counters.received += self.changes.len() as u64;
        let mut newly_lost = 0;
        for tracker in &mut self.trackers {
            newly_lost += tracker.end_drain(now);
        }
        // The counter is a map lookup: read it on loss (so both loss figures agree) and
        // otherwise at most every KERNEL_COUNTER_EVERY.
        let kernel_drops = if newly_lost > 0
            || now.saturating_sub(self.kernel_drops_read_ns)
                >= KERNEL_COUNTER_EVERY.as_nanos() as u64
        {
            self.kernel_drops_read_ns = now;
            read_kernel_drops()
        } else {
            self.kernel_drops_seen
        };
        self.counters.seq_gaps += newly_lost;
        self.counters.perf_lost += perf_lost;
        if newly_lost > 0
            || now.saturating_sub(self.map_full_read_ns) >= KERNEL_COUNTER_EVERY.as_nanos() as u64
        {
            self.map_full_read_ns = now;
            self.counters.map_full = probes.map_full_count();
        }
        let kernel_drops_moved = kernel_drops > self.kernel_drops_seen;
        self.kernel_drops_seen = kernel_drops;
        if kernel_drops_moved || perf_lost > 0 {
            // The kernel lost records: those after the last one received show as a gap only
            // if something newer arrives, so ask the kernel how many were offered.
            for (tracker, table) in self
                .trackers
                .iter_mut()
                .zip([table::PROCESSES, table::CONNECTIONS])
            {
                tracker.expect_up_to(probes.sequence(self.mode, table), now);
            }
        }
        self.counters.kernel_drops = kernel_drops;
        let resync = if newly_lost > 0 || kernel_drops_moved || perf_lost > 0 {
            // A loss-driven reseed (the first listing is `initial_list`).
            self.counters.resyncs += 1;
            Some(self.read_resync(probes))
        } else {
            None
        };
        self.flush(sender, resync, now, false)
    }

    /// Sends the collected changes (and `resync`) to the store; with nothing to send, sends
    /// only counters, at most every `COUNTERS_EVERY` (or when `force`).
    pub fn flush(
        &mut self,
        sender: &Sender<ModeMessage>,
        resync: Option<Resync>,
        now: u64,
        force: bool,
    ) -> Result<(), SendClosed> {
        let idle = self.changes.is_empty() && resync.is_none();
        if idle
            && !force
            && now.saturating_sub(self.last_sent_ns) < COUNTERS_EVERY.as_nanos() as u64
        {
            return Ok(());
        }
        self.counters.batches += (!idle) as u64;
        self.counters.max_batch = self.counters.max_batch.max(self.changes.len() as u64);
        self.counters.cpu_ns = thread_cpu_ns();
        if force
            || now.saturating_sub(self.lag_percentiles_ns)
                >= LAG_PERCENTILES_EVERY.as_nanos() as u64
        {
            self.counters.consumer_lag_ns = self.consumer_lag.percentiles();
            self.lag_percentiles_ns = now;
        }
        self.counters.buffer_bytes = (self.changes.capacity() * std::mem::size_of::<RowChange>()
            + self.pending.capacity() * std::mem::size_of::<Record>()
            + self.scratch.allocated_bytes()) as u64;
        let changes = std::mem::replace(&mut self.changes, Vec::with_capacity(MAX_BATCH));
        self.last_sent_ns = now;
        sender
            .send(ModeMessage::Batch(ModeBatch {
                mode: self.mode,
                changes,
                resync,
                counters: self.counters.clone(),
            }))
            .map_err(|_| SendClosed)
    }

    /// The list half of list + watch: once the mode's transport is live, reads both state maps
    /// and sends them as the first batch, so whatever the maps held before the mode's records
    /// began (perf enables its emission only once its buffers are open) is in the table too.
    /// Rows carry the kernel's sequence counter as of just before the read: records numbered
    /// up to it are older than the read and lose; later ones win.
    pub fn initial_list(
        &mut self,
        probes: &impl ResyncSource,
        sender: &Sender<ModeMessage>,
    ) -> Result<(), SendClosed> {
        let proc_seq = probes.sequence(self.mode, table::PROCESSES);
        let conn_seq = probes.sequence(self.mode, table::CONNECTIONS);
        let mut list = self.read_state_maps(probes, proc_seq, conn_seq);
        list.initial = true;
        self.flush(sender, Some(list), monotonic_ns(), true)
    }

    /// Reads both state maps as a [`Resync`]; rows carry the highest seq seen per table.
    fn read_resync<P: ResyncSource>(&mut self, probes: &P) -> Resync {
        let proc_seq = self.trackers[table::PROCESSES as usize].highest_seen();
        let conn_seq = self.trackers[table::CONNECTIONS as usize].highest_seen();
        self.read_state_maps(probes, proc_seq, conn_seq)
    }

    fn read_state_maps<P: ResyncSource>(
        &mut self,
        probes: &P,
        proc_seq: u64,
        conn_seq: u64,
    ) -> Resync {
        let map_full_before = probes.map_full_count();
        let processes = self.read_table::<ProcState, P>(probes, proc_seq);
        let connections = self.read_table::<ConnState, P>(probes, conn_seq);
        // Entries the maps could not hold are absent without having exited: the store must
        // not read absence as an exit when any insert ever failed.
        let complete = map_full_before == 0 && probes.map_full_count() == 0;
        Resync {
            processes,
            connections,
            complete,
            initial: false,
        }
    }

    /// Every entry of `S`'s state map as rows versioned by `seq` (none, with a warning, when
    /// the map cannot be read).
    fn read_table<S, P>(&mut self, probes: &P, seq: u64) -> Vec<Row<S>>
    where
        S: KernelState,
        P: ResyncSource,
    {
        match probes.read::<S>(&mut self.scratch) {
            Ok((entries, _)) => entries
                .into_iter()
                .map(|(key, state)| Row::from_state_map(key, state, seq))
                .collect(),
            Err(e) => {
                log::warn!(
                    "{} mode: resync could not read {}: {e}",
                    self.mode,
                    S::TABLE_NAME
                );
                Vec::new()
            }
        }
    }
}

/// Where a resync reads the kernel's current state from (the state maps, for the real probes).
pub trait ResyncSource {
    /// Records offered so far to `mode` for `table` (the kernel's sequence counter).
    fn sequence(&self, mode: ModeKind, table: u8) -> u64;
    /// Failed state-map inserts so far, both tables (0: the maps hold every entity).
    fn map_full_count(&self) -> u64;
    /// Every entry of `S`'s state map, in hash order.
    fn read<S>(&self, scratch: &mut MapDump) -> StateMapRead<S>
    where
        S: KernelState;
}

impl ResyncSource for KernelShared {
    fn sequence(&self, mode: ModeKind, table: u8) -> u64 {
        self.controls.sequence(mode, table).unwrap_or(0)
    }
    fn map_full_count(&self) -> u64 {
        self.controls.map_full_count()
    }
    fn read<S>(&self, scratch: &mut MapDump) -> StateMapRead<S>
    where
        S: KernelState,
    {
        self.state_maps.read::<S>(scratch)
    }
}

/// The store owner hung up: the mode should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the table store stopped receiving")]
pub struct SendClosed;

pub use crate::sys::poll::wait_readable;

#[cfg(test)]
mod tests {
    use probe_common::{kind, ProcKey, ProcRecord, ProcState, RecordHeader, RECORD_VERSION};
    use zerocopy::IntoBytes;

    use super::*;

    /// No state maps: nothing is ever lost in these tests, so no resync reads them.
    struct NoMaps;

    impl ResyncSource for NoMaps {
        fn sequence(&self, _: ModeKind, _: u8) -> u64 {
            0
        }
        fn map_full_count(&self) -> u64 {
            0
        }
        fn read<S: KernelState>(&self, _: &mut MapDump) -> StateMapRead<S> {
            Ok((Vec::new(), crate::map_batch::DumpPath::Batch))
        }
    }

    fn exec_record(seq: u64, ktime_ns: u64) -> Vec<u8> {
        ProcRecord {
            header: RecordHeader {
                kind: kind::PROC_EXEC,
                table: table::PROCESSES,
                version: RECORD_VERSION,
                len: std::mem::size_of::<ProcRecord>() as u32,
                seq,
                ktime_ns,
            },
            key: ProcKey {
                tgid: 40 + seq as u32,
                pad: 0,
                start_ns: 7,
            },
            state: ProcState::default(),
        }
        .as_bytes()
        .to_vec()
    }

    fn counters_of(message: ModeMessage) -> ModeCounters {
        match message {
            ModeMessage::Batch(batch) => batch.counters,
            _ => panic!("not a batch"),
        }
    }

    #[test]
    fn consumer_lag_percentiles_are_recomputed_at_most_every_interval_and_when_forced() {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let mut consumer = IncrementalConsumer::new(ModeKind::Ring, 0);
        let ms = 1_000_000;
        // A record 5 ms old: the first batch computes the percentiles.
        consumer.push_bytes(&exec_record(1, monotonic_ns() - 5 * ms), false);
        consumer.end_drain(&NoMaps, &sender, || 0, 0).unwrap();
        let first = counters_of(receiver.try_recv().unwrap()).consumer_lag_ns;
        assert!(first.2 >= 5 * ms, "{first:?}");
        // A record 500 ms old right after: its batch carries the earlier figures...
        consumer.push_bytes(&exec_record(2, monotonic_ns() - 500 * ms), false);
        consumer.end_drain(&NoMaps, &sender, || 0, 0).unwrap();
        let second = counters_of(receiver.try_recv().unwrap()).consumer_lag_ns;
        assert_eq!(second, first, "recomputed within {LAG_PERCENTILES_EVERY:?}");
        // ...and the forced (last) flush has it.
        consumer.flush(&sender, None, monotonic_ns(), true).unwrap();
        let last = counters_of(receiver.try_recv().unwrap()).consumer_lag_ns;
        assert!(last.2 >= 500 * ms, "{last:?}");
    }
}
