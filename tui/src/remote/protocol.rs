//! The messages of the collector's socket, version [`PROTOCOL_VERSION`] (`docs/protocol.md`).
//!
//! Each message is one length-delimited frame ([`super::frame`]) holding one postcard-encoded
//! [`ViewerMessage`] (viewer → collector) or [`CollectorMessage`] (collector → viewer).
//! Rows travel as their kernel layouts' bytes ([`WireRow`]), so a row decoded by a viewer is
//! bit for bit the row the collector holds.

use bridge::contract::{ModeCounters, ModeKind};
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. A collector refuses a viewer with another one.
pub const PROTOCOL_VERSION: u32 = 2;

/// The tables every mode streams, in the order of [`CollectorMessage::HelloAck::tables`].
pub const TABLES: [&str; 2] = ["processes", "connections"];

/// A point in a collector's delta stream: every delta up to and including `seq` of the run
/// identified by `epoch`. Seqs start at 1 and grow by one per delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Identifies one run of `serve` (changes at every start).
    pub epoch: u64,
    /// The last delta included (0: none yet).
    pub seq: u64,
}

/// Viewer → collector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewerMessage {
    /// First message: the viewer's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the viewer.
        proto: u32,
    },
    /// Start streaming: the deltas after `since` when the collector still holds them (same
    /// epoch), otherwise a full snapshot. `None`: a snapshot.
    Watch {
        /// The last position the viewer applied.
        since: Option<Position>,
    },
    /// "Still here": a viewer sends one at least every second; a collector disconnects a
    /// viewer silent for longer than its read timeout.
    Ping,
    /// Instead of `Watch` (a collector that records, `serve --record`): the recorded tables as
    /// of `at_ns`, or every row of `from_ns..to_ns` (wall-clock ns; `None`: the last record).
    /// Answered by a snapshot of those tables, then [`CollectorMessage::ReplayDone`] (or
    /// [`CollectorMessage::ReplayFailed`]); then the connection closes.
    Replay {
        /// The moment (ignored with `from_ns`).
        at_ns: Option<u64>,
        /// The range's start.
        from_ns: Option<u64>,
        /// The range's end.
        to_ns: Option<u64>,
    },
    /// Send `signal` to the process (tgid, start time), as the viewer's own uid would be
    /// allowed to (kill(2)'s rule: uid 0, or the viewer's uid is the target's real or
    /// effective uid). Answered by [`CollectorMessage::SignalResult`] with the same `request`.
    Signal {
        /// Chosen by the viewer, echoed in the answer.
        request: u64,
        /// Target tgid.
        tgid: u32,
        /// Target start time, CLOCK_MONOTONIC ns (the row's key).
        start_ns: u64,
        /// Signal number.
        signal: i32,
        /// The target's name as the viewer showed it (for the status text).
        comm: String,
    },
}

/// Collector → viewer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CollectorMessage {
    /// Answer to `Hello`: the collector's version and run, and what the viewer needs to build
    /// the same tables.
    HelloAck {
        /// [`PROTOCOL_VERSION`] of the collector.
        proto: u32,
        /// This run's epoch.
        epoch: u64,
        /// [`TABLES`].
        tables: Vec<String>,
        /// The modes the collector runs, display order.
        modes: Vec<ModeKind>,
        /// The collector's pid.
        pid: u32,
        /// /proc start-time tolerance of the process tables, ns.
        start_tolerance_ns: u64,
        /// Retention of finished rows: age, ns.
        retention_age_ns: u64,
        /// Retention of finished rows: count per table.
        retention_rows: u64,
        /// Notes about optional probes that could not attach.
        notes: Vec<String>,
    },
    /// The collector cannot serve this viewer (wrong version, …): the connection closes.
    Refused {
        /// Why.
        message: String,
    },
    /// A snapshot follows: [`CollectorMessage::SnapshotRows`] chunks then one
    /// [`CollectorMessage::SnapshotMode`] per mode, the command lines, then
    /// [`CollectorMessage::SnapshotEnd`].
    /// The tables it carries include every delta up to `position`.
    SnapshotBegin {
        /// Where the deltas after the snapshot continue.
        position: Position,
        /// Why the snapshot is sent (`watch`, `resume not possible`, `queue overflow`).
        reason: String,
    },
    /// Rows of one mode's tables, appended in order (first-seen order of the collector).
    SnapshotRows {
        /// Which mode.
        mode: ModeKind,
        /// The rows.
        rows: WireTables,
    },
    /// The end of one mode's rows, with its counters and status.
    SnapshotMode {
        /// Which mode.
        mode: ModeKind,
        /// Counters as of the last batch.
        counters: ModeCounters,
        /// The mode runs.
        active: bool,
        /// Why it stopped, if it failed.
        failure: Option<String>,
        /// Changes applied so far.
        applied: u64,
        /// Changes found stale so far.
        stale: u64,
    },
    /// Command lines the store holds (any number of these, after the modes).
    SnapshotCmdlines {
        /// (process key bytes, text, truncated).
        entries: Vec<(Vec<u8>, String, bool)>,
    },
    /// The snapshot is complete: the viewer now has the tables as of `SnapshotBegin`.
    SnapshotEnd,
    /// One store operation, applied by the collector in this order.
    Delta {
        /// This delta's position (seq one more than the previous one's).
        seq: u64,
        /// What the collector's store did.
        op: StoreOp,
    },
    /// Once a second: where the stream is, and this viewer's resync count.
    Heartbeat {
        /// The collector's last delta (a viewer this far ahead of its own position is behind
        /// by the difference).
        seq: u64,
        /// Times this viewer's queue overflowed and it was resynced.
        resyncs: u64,
        /// Viewers connected now.
        viewers: u32,
    },
    /// After a replay's snapshot: what it is.
    ReplayDone(ReplaySummary),
    /// A replay that could not be answered (no recording, nothing at that time).
    ReplayFailed {
        /// Why.
        message: String,
    },
    /// Answer to [`ViewerMessage::Signal`].
    SignalResult {
        /// The request's id.
        request: u64,
        /// The status text (sent / refused / failed, and why).
        text: String,
    },
}

/// What a replay through the socket found (see `crate::recording::reader::Replayed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplaySummary {
    /// The run that recorded the tables.
    pub run: crate::recording::record::RunInfo,
    /// The keyframe the replay started from: (wall-clock ns, seq).
    pub keyframe: (u64, u64),
    /// The last record applied: (wall-clock ns, seq).
    pub last: (u64, u64),
    /// The recording's first and last record, wall-clock ns.
    pub span_ns: (u64, u64),
    /// Records read.
    pub records: u64,
    /// Damaged ranges met, as text.
    pub damage: Vec<String>,
}

/// What the collector's store did, in order: the viewer's replica does the same.
// Moved once per delta, as `ModeMessage` is (see there): boxing would add an allocation
// per delta to save copying a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StoreOp {
    /// `TableStore::apply` of one batch.
    Batch {
        /// Which mode.
        mode: ModeKind,
        /// The changes, in order.
        changes: Vec<WireChange>,
        /// A resync applied before the changes.
        resync: Option<WireResync>,
        /// The mode's counters.
        counters: ModeCounters,
    },
    /// `TableStore::mark_failed`.
    Failed {
        /// Which mode.
        mode: ModeKind,
        /// Why.
        error: String,
    },
    /// `TableStore::handle` of new or changed command lines: (process key bytes,
    /// `probe_common::Cmdline` bytes).
    CommandLines {
        /// The entries.
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// `TableStore::reap` at this CLOCK_MONOTONIC time (ns).
    Reap {
        /// The collector's clock at the reap.
        now_ns: u64,
    },
}

/// One row change on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireChange {
    /// A process row.
    Process(WireRow),
    /// A connection row.
    Connection(WireRow),
}

/// Rows of both tables, each in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTables {
    /// Process rows.
    pub processes: Vec<WireRow>,
    /// Connection rows.
    pub connections: Vec<WireRow>,
}

/// `bridge::contract::Resync` on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireResync {
    /// Every entry of the state maps.
    pub entries: WireTables,
    /// See `Resync::complete`.
    pub complete: bool,
    /// See `Resync::initial`.
    pub initial: bool,
}

/// A row on the wire: its key and state as the kernel layouts' bytes (`probe_common`, little
/// endian, no padding), its version and origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRow {
    /// The key's bytes.
    pub key: Vec<u8>,
    /// The state's bytes.
    pub state: Vec<u8>,
    /// Row seq.
    pub seq: u64,
    /// Row change time, CLOCK_MONOTONIC ns.
    pub changed_ns: u64,
    /// Seeded from /proc rather than from the kernel.
    pub procfs: bool,
}
