//! The channel contract: everything that crosses from a mode thread to the store owner (and,
//! later, over the collector's socket): which mode, the rows, the batches and the counters.
//!
//! This module imports nothing else from `bridge`; the modes, the store, the views and the
//! sinks all depend on it and on nothing of each other.

pub mod connection;
pub mod counters;
pub mod process;
pub mod row;
pub mod task_state;

pub use connection::{tcp_state_name, tcp_states_in_mask, ConnInfo, ConnectionRow};
pub use counters::ModeCounters;
pub use process::{cmdline_text, ProcInfo, ProcessRow};
pub use row::{comm_to_string, Entity, KernelState, Plain, Row, RowOrigin, RowState};

/// Which bridge mode.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModeKind {
    /// One BPF ring buffer, batched consumption.
    Ring,
    /// Per-CPU perf buffers, merged by seq.
    Perf,
    /// Periodic snapshots of the state maps, diffed.
    Poll,
}

impl ModeKind {
    /// All modes, in display order (ring | perf | poll).
    pub const ALL: [ModeKind; 3] = [ModeKind::Ring, ModeKind::Perf, ModeKind::Poll];

    /// Lower-case name as used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ModeKind::Ring => "ring",
            ModeKind::Perf => "perf",
            ModeKind::Poll => "poll",
        }
    }

    /// The kernel-side mode number (`probe_common::mode::*`): the one mapping between the two.
    pub const fn kernel_mode(self) -> u32 {
        match self {
            ModeKind::Ring => probe_common::mode::RING,
            ModeKind::Perf => probe_common::mode::PERF,
            ModeKind::Poll => probe_common::mode::POLL,
        }
    }

    /// Index 0..3, the kernel's mode number, which is also the order of [`ModeKind::ALL`]
    /// (checked by a test).
    pub const fn index(self) -> usize {
        self.kernel_mode() as usize
    }
}

impl std::str::FromStr for ModeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ring" => Ok(ModeKind::Ring),
            "perf" => Ok(ModeKind::Perf),
            "poll" => Ok(ModeKind::Poll),
            other => Err(format!("unknown mode `{other}` (valid: ring, perf, poll)")),
        }
    }
}

impl std::fmt::Display for ModeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A table change as the store applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowChange {
    /// A process row.
    Process(ProcessRow),
    /// A connection row.
    Connection(ConnectionRow),
}

impl From<ProcessRow> for RowChange {
    fn from(row: ProcessRow) -> Self {
        RowChange::Process(row)
    }
}

impl From<ConnectionRow> for RowChange {
    fn from(row: ConnectionRow) -> Self {
        RowChange::Connection(row)
    }
}

/// A full picture of the kernel state maps: a mode's first batch (the list of list + watch),
/// or a reseed of its tables after loss.
#[derive(Clone, Debug, Default)]
pub struct Resync {
    /// Every process entry of the state map. `seq` of each row is the highest seq the mode had
    /// seen when it read the map, so later records win and older in-flight ones are stale.
    pub processes: Vec<ProcessRow>,
    /// Every connection entry of the state map (same `seq` rule).
    pub connections: Vec<ConnectionRow>,
    /// True when no state-map insert ever failed: an entity absent from the maps is gone.
    /// False after a full map: absence proves nothing, and the store keeps live rows.
    pub complete: bool,
    /// The mode's first listing rather than a reseed after loss (not counted as a resync).
    pub initial: bool,
}

/// What a mode sends to the store owner.
// A batch is moved once per drain (at most a few thousand times a second); boxing it would add
// an allocation per batch to save copying ~250 bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ModeMessage {
    /// Changes to apply, in the order given, plus the mode's counters at the time.
    Batch(ModeBatch),
    /// The mode stopped with an error (the message says why); its table stays as it was.
    Failed {
        /// Which mode.
        mode: ModeKind,
        /// Human-readable reason.
        error: String,
    },
    /// Command lines the kernel's `PROC_CMDLINE` map holds that are new or changed since the
    /// last such message (from the session's housekeeping thread; not tied to a mode).
    CommandLines(Vec<(probe_common::ProcKey, probe_common::Cmdline)>),
}

/// One batch of changes from one mode.
#[derive(Debug)]
pub struct ModeBatch {
    /// Which mode produced it.
    pub mode: ModeKind,
    /// Row changes, to be applied in order ("highest seq wins" per row).
    pub changes: Vec<RowChange>,
    /// A resync to apply *before* `changes`, when loss was detected.
    pub resync: Option<Resync>,
    /// The mode's cumulative counters after producing this batch.
    pub counters: ModeCounters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_index_is_the_kernel_number_and_the_display_order() {
        for (i, mode) in ModeKind::ALL.into_iter().enumerate() {
            assert_eq!(mode.index(), i);
            assert_eq!(mode.kernel_mode() as usize, i);
            assert_eq!(mode.name().parse::<ModeKind>(), Ok(mode));
        }
        assert!("udp".parse::<ModeKind>().is_err());
    }
}
