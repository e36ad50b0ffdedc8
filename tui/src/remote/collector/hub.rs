//! The collector's shared state: the store (one owner at a time, behind the hub's lock), the
//! delta stream's position, the recent deltas kept for resume, and each viewer's bounded
//! queue. Publishing never waits for a viewer: a full queue drops that viewer's subscription
//! (the viewer's task then resyncs it by snapshot).

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use bridge::{contract::ModeKind, contract::ModeMessage, store::TableStore};
use bytes::Bytes;
use tokio::sync::mpsc;
use zerocopy::IntoBytes;

use super::metrics::retired::RetiredTotals;
use bridge::stats::monotonic_ns;

use crate::recording::{record::RunInfo, writer::Recorder};
use crate::remote::{
    frame::{encode, FrameError},
    protocol::{CollectorMessage, Position, StoreOp},
    wire_rows::{image_chunks, message_to_op},
};

/// Rows of each table per snapshot chunk (a chunk of 2048 rows is ~1 MiB, far below the frame
/// limit).
pub const SNAPSHOT_CHUNK_ROWS: usize = 2048;

/// Limits of the hub.
#[derive(Clone, Copy, Debug)]
pub struct HubLimits {
    /// Frames a viewer's queue holds before it overflows.
    pub queue_frames: usize,
    /// Deltas kept for resume.
    pub recent_frames: usize,
    /// Bytes of deltas kept for resume.
    pub recent_bytes: usize,
}

/// A viewer's live feed: frames to send, in order, then the queue's frames.
pub struct Subscription {
    /// Snapshot or resume frames, sent before anything from `queue`.
    pub first: Vec<Bytes>,
    /// Deltas published after `first`.
    pub queue: mpsc::Receiver<Bytes>,
    /// Set when the queue overflowed (the sender is gone: a resync is due).
    pub overflowed: Arc<AtomicBool>,
    /// The position `first` ends at.
    pub position: Position,
}

struct ViewerSlot {
    sender: mpsc::Sender<Bytes>,
    overflowed: Arc<AtomicBool>,
}

/// Counters of the hub (shown in `serve`'s log and heartbeats).
#[derive(Clone, Copy, Debug, Default)]
pub struct HubCounters {
    /// Deltas published.
    pub deltas: u64,
    /// Queue overflows (each one a resync of one viewer).
    pub overflows: u64,
    /// Deltas too large for one frame (every viewer resynced).
    pub oversized: u64,
}

/// The shared state (see the module doc).
pub struct Hub {
    epoch: u64,
    seq: u64,
    store: TableStore,
    modes: Vec<ModeKind>,
    recent: VecDeque<(u64, Bytes)>,
    recent_bytes: usize,
    viewers: Vec<ViewerSlot>,
    limits: HubLimits,
    counters: HubCounters,
    retired: Option<RetiredTotals>,
    recorder: Option<(Recorder, Vec<String>)>,
    recording: Option<crate::recording::store::RecordStore>,
}

impl Hub {
    /// A hub over `store` for a run identified by `epoch`.
    pub fn new(epoch: u64, store: TableStore, modes: Vec<ModeKind>, limits: HubLimits) -> Hub {
        Hub {
            epoch,
            seq: 0,
            store,
            modes,
            recent: VecDeque::new(),
            recent_bytes: 0,
            viewers: Vec::new(),
            limits,
            counters: HubCounters::default(),
            retired: None,
            recorder: None,
            recording: None,
        }
    }

    /// From now on, count the bytes of connection rows that reaps remove (what the exporter's
    /// byte counters need; costs a pass over the connections at every reap).
    pub fn count_retired_bytes(&mut self) {
        self.retired.get_or_insert_with(RetiredTotals::default);
    }

    /// Bytes of reaped connection rows, when counted ([`Hub::count_retired_bytes`]).
    pub fn retired(&self) -> Option<&RetiredTotals> {
        self.retired.as_ref()
    }

    /// This run's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The store (read-only).
    pub fn store(&self) -> &TableStore {
        &self.store
    }

    /// The counters so far.
    pub fn counters(&self) -> HubCounters {
        self.counters
    }

    /// The modes the collector runs, in display order.
    pub fn modes(&self) -> &[ModeKind] {
        &self.modes
    }

    /// Viewers subscribed now.
    pub fn viewers(&self) -> usize {
        self.viewers.len()
    }

    /// Records every delta from now on (`serve --record`), and a keyframe at once. `notes`
    /// go into each keyframe's run info.
    pub fn set_recorder(
        &mut self,
        store: crate::recording::store::RecordStore,
        notes: Vec<String>,
    ) -> std::io::Result<()> {
        self.recording = Some(store.clone());
        self.recorder = Some((Recorder::start(store)?, notes));
        self.record_keyframe();
        Ok(())
    }

    /// The recording's store (to answer replays through the socket), if recording.
    pub fn recording(&self) -> Option<crate::recording::store::RecordStore> {
        self.recording.clone()
    }

    /// The recorder, if recording.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref().map(|(recorder, _)| recorder)
    }

    /// Stops recording: what was sent is written and synced.
    pub fn finish_recording(&mut self) {
        if let Some((mut recorder, _)) = self.recorder.take() {
            recorder.finish();
        }
    }

    /// Records a keyframe (the tables as of the last delta), when recording.
    pub fn record_keyframe(&mut self) {
        let Some((recorder, notes)) = &self.recorder else {
            return;
        };
        if recorder.stopped() {
            // Nothing is written any more: do not encode the tables for nothing.
            return;
        }
        let retention = self.store.retention();
        let run = RunInfo {
            epoch: self.epoch,
            pid: std::process::id(),
            modes: self.modes.clone(),
            realtime_offset_ns: crate::recording::realtime_ns().saturating_sub(monotonic_ns()),
            start_tolerance_ns: self
                .store
                .mode(ModeKind::Ring)
                .processes
                .start_tolerance_ns(),
            retention_age_ns: retention.max_age_ns,
            retention_rows: retention.max_finished as u64,
            notes: notes.clone(),
        };
        match self.snapshot_frames("keyframe") {
            Ok(frames) => recorder.record_keyframe(run, frames),
            Err(error) => eprintln!("bpftop-ordered serve: keyframe not recorded: {error}"),
        }
    }

    /// The last delta's position.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch,
            seq: self.seq,
        }
    }

    /// Applies a mode message to the store and sends it to every viewer.
    pub fn publish_message(&mut self, message: ModeMessage) {
        let op = message_to_op(&message);
        self.store.handle(message);
        self.publish(op);
    }

    /// Reaps the store at `now_ns` and sends the reap to every viewer (only when it removed
    /// rows: a reap that removes nothing changes nothing).
    pub fn publish_reap(&mut self, now_ns: u64) {
        let reaped = match &mut self.retired {
            Some(retired) => retired.reap_counting(&mut self.store, |store| store.reap(now_ns)),
            None => self.store.reap(now_ns),
        };
        if reaped > 0 {
            self.publish(StoreOp::Reap { now_ns });
        }
    }

    fn publish(&mut self, op: StoreOp) {
        self.seq += 1;
        self.counters.deltas += 1;
        let frame = match encode(&CollectorMessage::Delta { seq: self.seq, op }) {
            Ok(frame) => frame,
            Err(error) => {
                // Nobody can follow the stream across this delta: resume is impossible and
                // every viewer gets a snapshot.
                eprintln!("bpftop-ordered serve: delta {} not sent: {error}", self.seq);
                self.counters.oversized += 1;
                // The recording cannot follow either: the next keyframe starts it again.
                self.record_keyframe();
                self.recent.clear();
                self.recent_bytes = 0;
                for slot in self.viewers.drain(..) {
                    slot.overflowed.store(true, Ordering::Release);
                }
                return;
            }
        };
        if let Some((recorder, _)) = &self.recorder {
            recorder.record_frame(frame.clone());
        }
        self.remember(frame.clone());
        let mut overflows = 0;
        self.viewers
            .retain(|slot| match slot.sender.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slot.overflowed.store(true, Ordering::Release);
                    overflows += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        self.counters.overflows += overflows;
    }

    fn remember(&mut self, frame: Bytes) {
        self.recent_bytes += frame.len();
        self.recent.push_back((self.seq, frame));
        while self.recent.len() > self.limits.recent_frames
            || self.recent_bytes > self.limits.recent_bytes
        {
            match self.recent.pop_front() {
                Some((_, old)) => self.recent_bytes -= old.len(),
                None => break,
            }
        }
    }

    /// Subscribes a viewer: the deltas after `since` when they are all still held (same
    /// epoch), otherwise a snapshot (with `reason`), then the live queue.
    pub fn subscribe(
        &mut self,
        since: Option<Position>,
        reason: &str,
    ) -> Result<Subscription, FrameError> {
        let first = match since.and_then(|since| self.resume_frames(since)) {
            Some(frames) => frames,
            None => self.snapshot_frames(reason)?,
        };
        let (sender, queue) = mpsc::channel(self.limits.queue_frames.max(1));
        let overflowed = Arc::new(AtomicBool::new(false));
        self.viewers.push(ViewerSlot {
            sender,
            overflowed: Arc::clone(&overflowed),
        });
        Ok(Subscription {
            first,
            queue,
            overflowed,
            position: self.position(),
        })
    }

    /// The held deltas after `since`, or `None` when some are no longer held.
    fn resume_frames(&self, since: Position) -> Option<Vec<Bytes>> {
        if since.epoch != self.epoch || since.seq > self.seq {
            return None;
        }
        if since.seq == self.seq {
            return Some(Vec::new());
        }
        let oldest = self.recent.front()?.0;
        if oldest > since.seq + 1 {
            return None;
        }
        Some(
            self.recent
                .iter()
                .filter(|(seq, _)| *seq > since.seq)
                .map(|(_, frame)| frame.clone())
                .collect(),
        )
    }

    /// The snapshot frames of every mode's tables as of now.
    fn snapshot_frames(&self, reason: &str) -> Result<Vec<Bytes>, FrameError> {
        snapshot_frames(&self.store, &self.modes, self.position(), reason)
    }
}

/// The snapshot frames of `modes`' tables in `store`, as of `position`.
pub fn snapshot_frames(
    store: &TableStore,
    modes: &[ModeKind],
    position: Position,
    reason: &str,
) -> Result<Vec<Bytes>, FrameError> {
    let mut frames = vec![encode(&CollectorMessage::SnapshotBegin {
        position,
        reason: reason.to_string(),
    })?];
    for mode in modes {
        let image = store.image(*mode);
        for rows in image_chunks(&image, SNAPSHOT_CHUNK_ROWS) {
            frames.push(encode(&CollectorMessage::SnapshotRows {
                mode: *mode,
                rows,
            })?);
        }
        frames.push(encode(&CollectorMessage::SnapshotMode {
            mode: *mode,
            counters: image.counters,
            active: image.active,
            failure: image.failure,
            applied: image.applied,
            stale: image.stale,
        })?);
    }
    let lines: Vec<(Vec<u8>, String, bool)> = store
        .cmdlines()
        .iter()
        .map(|(key, line)| {
            (
                key.as_bytes().to_vec(),
                line.text.to_string(),
                line.truncated,
            )
        })
        .collect();
    for entries in lines.chunks(SNAPSHOT_CHUNK_ROWS) {
        frames.push(encode(&CollectorMessage::SnapshotCmdlines {
            entries: entries.to_vec(),
        })?);
    }
    frames.push(encode(&CollectorMessage::SnapshotEnd)?);
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge::{
        contract::{ModeBatch, ModeCounters, ProcessRow, RowChange},
        table::Retention,
    };
    use probe_common::{ProcKey, ProcState};

    fn hub(queue_frames: usize, recent_frames: usize) -> Hub {
        Hub::new(
            7,
            TableStore::new(0, Retention::default()),
            vec![ModeKind::Ring],
            HubLimits {
                queue_frames,
                recent_frames,
                recent_bytes: usize::MAX,
            },
        )
    }

    fn batch(tgid: u32) -> ModeMessage {
        ModeMessage::Batch(ModeBatch {
            mode: ModeKind::Ring,
            changes: vec![RowChange::Process(ProcessRow::from_record(
                ProcKey::new(tgid, 1),
                ProcState::default(),
                tgid as u64,
                1,
            ))],
            resync: None,
            counters: ModeCounters::default(),
        })
    }

    #[test]
    fn a_full_queue_drops_only_that_viewer() {
        let mut hub = hub(2, 100);
        let slow = hub.subscribe(None, "watch").unwrap();
        let mut fast = hub.subscribe(None, "watch").unwrap();
        for tgid in 1..=3 {
            hub.publish_message(batch(tgid));
            while fast.queue.try_recv().is_ok() {}
        }
        assert!(slow.overflowed.load(Ordering::Acquire));
        assert!(!fast.overflowed.load(Ordering::Acquire));
        assert_eq!(hub.viewers(), 1);
        assert_eq!(hub.counters().overflows, 1);
        assert_eq!(hub.store().mode(ModeKind::Ring).processes.rows().len(), 3);
    }

    #[test]
    fn resume_needs_every_missed_delta() {
        let mut hub = hub(100, 2);
        for tgid in 1..=4 {
            hub.publish_message(batch(tgid));
        }
        let at = |seq| Position { epoch: 7, seq };
        assert_eq!(hub.resume_frames(at(2)).map(|f| f.len()), Some(2));
        assert_eq!(hub.resume_frames(at(4)).map(|f| f.len()), Some(0));
        assert!(hub.resume_frames(at(1)).is_none(), "delta 2 is gone");
        assert!(hub.resume_frames(Position { epoch: 8, seq: 2 }).is_none());
        assert!(hub.resume_frames(at(9)).is_none());
        // A snapshot: begin, one chunk, the mode, end.
        let subscription = hub.subscribe(Some(at(1)), "resume not possible").unwrap();
        assert_eq!(subscription.first.len(), 4);
        assert_eq!(subscription.position, at(4));
    }
}
