//! The counters a mode thread keeps and sends with every batch.

use serde::{Deserialize, Serialize};

/// Counters kept by a mode's thread. Cumulative since the mode started. They cross the
/// collector's socket as they are (`serve`, `--attach`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModeCounters {
    /// Records (or, for poll, changed entries) taken from the transport.
    pub received: u64,
    /// Records rejected by the decoder (malformed, unknown kind): counted and skipped.
    pub decode_errors: u64,
    /// Records lost: sequence numbers that never arrived (settled gaps).
    pub seq_gaps: u64,
    /// Kernel-side transport failures for this mode (ring reserve / perf output failed).
    pub kernel_drops: u64,
    /// `PERF_RECORD_LOST` counts (perf mode only).
    pub perf_lost: u64,
    /// Failed state-map inserts since the session started (shared by every mode): entities the
    /// kernel could not track. Poll never sees them; ring and perf keep their rows from
    /// records, but their resyncs cannot confirm them.
    pub map_full: u64,
    /// Resyncs from the state maps after detected loss.
    pub resyncs: u64,
    /// Batches handed to the store.
    pub batches: u64,
    /// Largest batch handed to the store.
    pub max_batch: u64,
    /// Kernel memory of this mode's maps and buffers, bytes (`memlock` from fdinfo, plus perf
    /// buffer pages).
    pub kernel_bytes: u64,
    /// Memory of this mode's own user-space buffers, bytes (allocated capacity).
    pub buffer_bytes: u64,
    /// CPU time of the mode's thread, ns.
    pub cpu_ns: u64,
    /// When the mode started, CLOCK_MONOTONIC ns.
    pub started_ns: u64,
    /// Poll only: changes (poll sequence numbers) that happened but were overwritten before a
    /// snapshot saw them.
    pub unobserved_changes: u64,
    /// Poll only: live entries that vanished from an LRU state map (evicted).
    pub evictions: u64,
    /// Poll only: which map read path is in use ("batch" or "key_iteration").
    #[serde(deserialize_with = "read_path_name")]
    pub read_path: Option<ReadPathName>,
    /// Poll only: duration of the last full map read, ns.
    pub last_read_ns: u64,
    /// Lag from the record's `ktime_ns` to the moment the mode thread took it out of the
    /// transport (poll: to the snapshot that first showed it), ns: (p50, p99, max). Compared
    /// with the apply lag, it tells how much of the lag is the transport and how much the
    /// channel and the store.
    pub consumer_lag_ns: (u64, u64, u64),
}

/// The name of poll's map read path. (An alias, so that serde does not take the `'static`
/// reference for a borrow from the input: it is deserialized to one of [`READ_PATHS`].)
pub type ReadPathName = &'static str;

/// Poll's map read paths, the only values `read_path` takes.
// (`map_batch::DumpPath::as_str`; the contract imports nothing else from `bridge`.)
const READ_PATHS: [&str; 2] = ["batch", "key-iteration"];

/// `read_path` from the wire: one of [`READ_PATHS`], anything else as unknown (`None`).
fn read_path_name<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ReadPathName>, D::Error> {
    let name: Option<String> = Option::deserialize(deserializer)?;
    Ok(name.and_then(|name| READ_PATHS.into_iter().find(|known| *known == name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_cross_a_wire_with_their_read_path() {
        let counters = ModeCounters {
            received: 5,
            read_path: Some("key-iteration"),
            consumer_lag_ns: (1, 2, 3),
            ..Default::default()
        };
        let text = serde_json::to_string(&counters).unwrap();
        let back: ModeCounters = serde_json::from_str(&text).unwrap();
        assert_eq!(back, counters);
        let unknown = text.replace("key-iteration", "carrier-pigeon");
        let back: ModeCounters = serde_json::from_str(&unknown).unwrap();
        assert_eq!(back.read_path, None);
    }
}
