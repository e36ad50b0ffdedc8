//! The counters a mode thread keeps and sends with every batch.

use serde::Serialize;

/// Counters kept by a mode's thread. Cumulative since the mode started.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
    pub read_path: Option<&'static str>,
    /// Poll only: duration of the last full map read, ns.
    pub last_read_ns: u64,
    /// Lag from the record's `ktime_ns` to the moment the mode thread took it out of the
    /// transport (poll: to the snapshot that first showed it), ns: (p50, p99, max). Compared
    /// with the apply lag, it tells how much of the lag is the transport and how much the
    /// channel and the store.
    pub consumer_lag_ns: (u64, u64, u64),
}
