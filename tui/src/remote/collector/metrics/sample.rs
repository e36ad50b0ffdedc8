//! What one scrape exports, read from the collector's tables in one pass under the hub's lock:
//! host aggregates only (counts by state, byte sums, per-mode stats), never a pid or a
//! 4-tuple. Built fresh at every scrape, so a process that exited and was reaped leaves no
//! series behind.

use std::collections::HashMap;

use bridge::{
    contract::{ModeKind, ProcessRow},
    probe::KernelEventCounts,
    stats::{CumulativeLag, ModeStats},
    store::{ModeTables, TableStore},
};

use super::retired::RetiredTotals;

/// Task states as `ps` letters, in the order they are exported, with the label value of each
/// (the words of `/proc/PID/status`, in snake case).
pub const TASK_STATES: [(char, &str); 9] = [
    ('R', "running"),
    ('S', "sleeping"),
    ('D', "disk_sleep"),
    ('T', "stopped"),
    ('t', "tracing_stop"),
    ('Z', "zombie"),
    ('X', "dead"),
    ('P', "parked"),
    ('I', "idle"),
];

/// TCP states in kernel numbering (1..=12), with the label value of each (`ss` names, lower
/// case, `_` for `-`).
pub const TCP_STATES: [(u32, &str); 12] = [
    (1, "established"),
    (2, "syn_sent"),
    (3, "syn_recv"),
    (4, "fin_wait_1"),
    (5, "fin_wait_2"),
    (6, "time_wait"),
    (7, "close"),
    (8, "close_wait"),
    (9, "last_ack"),
    (10, "listen"),
    (11, "closing"),
    (12, "new_syn_recv"),
];

/// Upper bounds of the lag histogram's buckets, ns (100 µs .. 10 s; `+Inf` is implicit).
pub const LAG_BOUNDS_NS: [u64; 14] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// The label value of the bucket that holds every name beyond the top K.
pub const OTHER_COMM: &str = "other";

/// One mode's aggregates.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeSample {
    /// Which mode.
    pub mode: ModeKind,
    /// The mode is running (it sent a batch and has not failed).
    pub up: bool,
    /// Its stats, as `dump`'s stats line shows them.
    pub stats: ModeStats,
    /// Processes that exist (running, or zombies not yet reaped by their parent), by task
    /// state, in [`TASK_STATES`] order. Exited processes the table still shows are not counted.
    pub processes_by_state: [u64; TASK_STATES.len()],
    /// Processes in a state outside [`TASK_STATES`] (should stay 0).
    pub processes_other_state: u64,
    /// Open connections (not yet closed) by TCP state, in [`TCP_STATES`] order.
    pub connections_by_state: [u64; TCP_STATES.len()],
    /// Rows in the processes table, finished ones included.
    pub process_rows: u64,
    /// Rows in the connections table, closed ones included.
    pub connection_rows: u64,
    /// Payload bytes sent by every connection seen, ever: the rows in the table plus the rows
    /// reaped before (see [`RetiredTotals`]).
    pub sent_bytes: u64,
    /// Payload bytes received, likewise.
    pub received_bytes: u64,
    /// Connections whose byte counts are unknown (not in the sums).
    pub connections_bytes_unknown: u64,
    /// The `top_k` names with the most live processes (most first, then by name), and the
    /// number of live processes under every other name.
    pub top_comms: Vec<(String, u64)>,
    /// Live processes whose name is not in `top_comms`.
    pub other_comms: u64,
    /// The apply lag so far, in [`LAG_BOUNDS_NS`] buckets.
    pub lag: CumulativeLag,
}

/// The recorder's figures (`serve --record`, `record`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingSample {
    /// Still recording (false once it stopped on an error, such as a full disk).
    pub up: bool,
    /// Records written.
    pub records: u64,
    /// Keyframes written.
    pub keyframes: u64,
    /// Value bytes written, before compression.
    pub value_bytes: u64,
    /// Records dropped (queue full, or after the recording stopped).
    pub dropped: u64,
    /// The store's size on disk (tables and journals); `None` when it could not be read.
    pub disk_bytes: Option<u64>,
}

/// Everything one scrape exports.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSample {
    /// One entry per running mode, in display order.
    pub modes: Vec<ModeSample>,
    /// The kernel's process event counters; `None` when they could not be read.
    pub kernel_events: Option<KernelEventCounts>,
    /// Viewers attached now.
    pub viewers: u64,
    /// Viewers resynced because their queue overflowed, so far.
    pub viewer_resyncs: u64,
    /// Deltas published to viewers so far.
    pub deltas: u64,
    /// The recorder's figures, when recording.
    pub recording: Option<RecordingSample>,
}

/// Whether a process row stands for a process that exists now (what `ps -e` lists): not
/// exited, or exited and still a zombie.
pub fn process_exists(row: &ProcessRow) -> bool {
    !row.is_exited() || row.task_state() == 'Z'
}

impl ModeSample {
    /// Aggregates one mode's tables. `retired` holds the bytes of rows reaped before;
    /// `top_k` bounds the per-name series.
    pub fn take(
        mode: ModeKind,
        store: &TableStore,
        retired: &RetiredTotals,
        top_k: usize,
    ) -> ModeSample {
        let tables: &ModeTables = store.mode(mode);
        let mut processes_by_state = [0u64; TASK_STATES.len()];
        let mut processes_other_state = 0;
        let mut by_comm: HashMap<[u8; probe_common::COMM_LEN], u64> = HashMap::new();
        for row in tables.processes.rows().iter() {
            if !process_exists(row) {
                continue;
            }
            let letter = row.task_state();
            match TASK_STATES.iter().position(|(l, _)| *l == letter) {
                Some(i) => processes_by_state[i] += 1,
                None => processes_other_state += 1,
            }
            *by_comm.entry(row.state.comm).or_default() += 1;
        }
        let mut connections_by_state = [0u64; TCP_STATES.len()];
        let (mut sent_bytes, mut received_bytes) = retired.bytes(mode);
        let mut connections_bytes_unknown = 0;
        for row in tables.connections.iter() {
            if !row.is_closed() {
                if let Some(i) = TCP_STATES
                    .iter()
                    .position(|(s, _)| *s == row.state.tcp_state)
                {
                    connections_by_state[i] += 1;
                }
            }
            match row.bytes() {
                Some((sent, received)) => {
                    sent_bytes += sent;
                    received_bytes += received;
                }
                None => connections_bytes_unknown += 1,
            }
        }
        let (top_comms, other_comms) = top_names(by_comm, top_k);
        ModeSample {
            mode,
            up: tables.active && tables.failure.is_none(),
            stats: store.stats(mode),
            processes_by_state,
            processes_other_state,
            connections_by_state,
            process_rows: tables.processes.rows().len() as u64,
            connection_rows: tables.connections.len() as u64,
            sent_bytes,
            received_bytes,
            connections_bytes_unknown,
            top_comms,
            other_comms,
            lag: tables.apply.lag_histogram().cumulative(&LAG_BOUNDS_NS),
        }
    }
}

/// The `k` names with the most processes (ties by name, so the choice is stable), and the
/// processes under every other name.
fn top_names(
    counts: HashMap<[u8; probe_common::COMM_LEN], u64>,
    k: usize,
) -> (Vec<(String, u64)>, u64) {
    let mut named: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(comm, n)| (bridge::contract::comm_to_string(&comm), n))
        .collect();
    named.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let other = named.iter().skip(k).map(|(_, n)| n).sum();
    named.truncate(k);
    (named, other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comm(name: &str) -> [u8; probe_common::COMM_LEN] {
        let mut c = [0u8; probe_common::COMM_LEN];
        c[..name.len()].copy_from_slice(name.as_bytes());
        c
    }

    #[test]
    fn top_names_keep_the_largest_and_bucket_the_rest() {
        let counts: HashMap<_, _> = [("sh", 3), ("python3", 5), ("bash", 3), ("sleep", 1)]
            .into_iter()
            .map(|(n, c)| (comm(n), c))
            .collect();
        let (top, other) = top_names(counts.clone(), 2);
        assert_eq!(top, vec![("python3".into(), 5), ("bash".into(), 3)]);
        assert_eq!(other, 4, "sh 3 + sleep 1");
        let (top, other) = top_names(counts, 0);
        assert!(top.is_empty());
        assert_eq!(other, 12);
    }

    #[test]
    fn the_state_labels_cover_every_letter_ps_shows() {
        for letter in "RSDTtZXPI".chars() {
            assert!(TASK_STATES.iter().any(|(l, _)| *l == letter), "{letter}");
        }
        for state in 1..=12u32 {
            assert!(TCP_STATES.iter().any(|(s, _)| *s == state), "{state}");
        }
        assert!(LAG_BOUNDS_NS.windows(2).all(|w| w[0] < w[1]));
    }
}
