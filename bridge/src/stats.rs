//! Per-mode statistics, all measured (`docs/contract.md` "Stats lines" names and defines every field).
//!
//! Two halves are combined into one [`ModeStats`]:
//! - [`ModeCounters`], kept by the mode's own thread (received records, loss, resyncs, CPU time of
//!   that thread, kernel memory of its maps) and sent along with each batch;
//! - [`ApplyStats`], kept by the store owner when it applies the batch (applied records, lag
//!   from the record's `ktime_ns` to the apply time, both CLOCK_MONOTONIC).

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::contract::{ModeCounters, ModeKind};

pub use crate::sys::clock::{monotonic_ns, process_cpu_ns, thread_cpu_ns};

/// Events per second over `elapsed_ns`; 0 when no time has passed.
pub fn rate_per_s(events: u64, elapsed_ns: u64) -> f64 {
    if elapsed_ns == 0 {
        0.0
    } else {
        events as f64 * 1e9 / elapsed_ns as f64
    }
}

/// Apply-side statistics of one mode, kept by the store owner.
#[derive(Debug, Default)]
pub struct ApplyStats {
    /// Records applied (including stale ones that did not change a row).
    pub applied: u64,
    /// Changes ignored because the row already had a newer one.
    pub stale: u64,
    lag_total: LagHistogram,
}

impl ApplyStats {
    /// Records one applied change whose kernel time was `changed_ns`, applied at `now_ns`.
    /// A change without a kernel time (0) or from the future (clock skew) records no lag.
    pub fn record_apply(&mut self, changed_ns: u64, now_ns: u64, stale: bool) {
        self.applied += 1;
        self.stale += stale as u64;
        self.lag_total.record(changed_ns, now_ns);
    }

    /// Lag percentiles over everything applied so far: (p50, p99, max), ns.
    pub fn lag_total(&self) -> (u64, u64, u64) {
        self.lag_total.percentiles()
    }

    /// Every lag recorded so far. A reader that wants a window keeps the histogram it saw last
    /// and takes [`LagHistogram::since`]; reading never changes the stats.
    pub fn lag_histogram(&self) -> &LagHistogram {
        &self.lag_total
    }
}

/// A lag histogram for one thread: 1 ns .. 1 h, 3 significant digits.
#[derive(Clone, Debug)]
pub struct LagHistogram(Histogram<u64>);

impl Default for LagHistogram {
    fn default() -> Self {
        // 1 ns .. 1 h with 3 significant digits; larger values are clamped by
        // `saturating_record`.
        LagHistogram(
            Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("static histogram bounds are valid"),
        )
    }
}

impl LagHistogram {
    /// Records the lag of a change made at `changed_ns` and observed at `now_ns` (nothing for a
    /// change without a kernel time or from the future).
    pub fn record(&mut self, changed_ns: u64, now_ns: u64) {
        if changed_ns != 0 && now_ns >= changed_ns {
            self.0.saturating_record((now_ns - changed_ns).max(1));
        }
    }

    /// (p50, p99, max) in ns; zeros when empty.
    pub fn percentiles(&self) -> (u64, u64, u64) {
        percentiles(&self.0)
    }

    /// The lags recorded after `earlier`, a copy of this histogram taken before: this minus
    /// `earlier`. When `earlier` is not a past state of this one (more counts somewhere), the
    /// whole of this histogram.
    pub fn since(&self, earlier: &LagHistogram) -> LagHistogram {
        let mut window = self.clone();
        if window.0.subtract(&earlier.0).is_err() {
            return self.clone();
        }
        window
    }
}

/// A lag histogram as cumulative buckets (the Prometheus histogram shape).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CumulativeLag {
    /// For each upper bound asked for, lags recorded at or below it (exact to the histogram's 3
    /// significant digits), non-decreasing.
    pub at_or_below: Vec<u64>,
    /// Lags recorded in all.
    pub count: u64,
    /// Their sum in ns, from the recorded values (3 significant digits).
    pub sum_ns: f64,
}

impl LagHistogram {
    /// The lags recorded so far, counted at or below each of `upper_bounds_ns` (ascending).
    pub fn cumulative(&self, upper_bounds_ns: &[u64]) -> CumulativeLag {
        let count = self.0.len();
        CumulativeLag {
            at_or_below: upper_bounds_ns
                .iter()
                .map(|&bound| {
                    if count == 0 {
                        0
                    } else {
                        self.0.count_between(0, bound)
                    }
                })
                .collect(),
            count,
            sum_ns: if count == 0 {
                0.0
            } else {
                self.0.mean() * count as f64
            },
        }
    }
}

fn percentiles(h: &Histogram<u64>) -> (u64, u64, u64) {
    if h.is_empty() {
        return (0, 0, 0);
    }
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
}

/// The combined, serialisable statistics of one mode: the `{"stats": {...}}` line of the JSON
/// contract (field names fixed by `docs/contract.md`; extra fields are additions).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModeStats {
    /// "ring", "perf" or "poll".
    pub mode: &'static str,
    /// Changes applied to this mode's tables.
    pub events: u64,
    /// `events` divided by the time the mode has run.
    pub events_per_s: f64,
    /// Median lag from kernel change to user-space apply, ns.
    pub lag_p50_ns: u64,
    /// 99th percentile lag, ns.
    pub lag_p99_ns: u64,
    /// Largest lag, ns.
    pub lag_max_ns: u64,
    /// Loss events: settled sequence gaps (these include the kernel transport failures and
    /// perf-lost records, which are also shown on their own below) plus failed state-map
    /// inserts (`map_full`).
    pub drops: u64,
    /// Resyncs from the state maps.
    pub resyncs: u64,
    /// Kernel memory of this mode's maps and buffers, bytes.
    pub kernel_bytes: u64,
    /// User-space memory of this mode: its tables plus its buffers, bytes (allocated capacity).
    pub user_bytes: u64,
    /// CPU time of this mode's thread, ns.
    pub cpu_ns: u64,
    /// Kernel-side transport failures (ring reserve / perf output).
    pub kernel_drops: u64,
    /// `PERF_RECORD_LOST` counts.
    pub perf_lost: u64,
    /// Failed state-map inserts (map full), shared by every mode.
    pub map_full: u64,
    /// Records rejected by the decoder.
    pub decode_errors: u64,
    /// Changes ignored as older than the row.
    pub stale: u64,
    /// Batches applied.
    pub batches: u64,
    /// Poll: changes never observed individually.
    pub unobserved_changes: u64,
    /// Poll: LRU evictions seen.
    pub evictions: u64,
    /// Poll: "batch" or "key_iteration".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_path: Option<&'static str>,
    /// Median lag from kernel change to the mode thread taking the record, ns.
    pub consumer_lag_p50_ns: u64,
    /// 99th percentile of that lag, ns.
    pub consumer_lag_p99_ns: u64,
    /// Largest such lag, ns.
    pub consumer_lag_max_ns: u64,
    /// Rows in this mode's processes table.
    pub process_rows: usize,
    /// Rows in this mode's connections table.
    pub connection_rows: usize,
    /// How long the mode has run, ns.
    pub elapsed_ns: u64,
}

impl ModeStats {
    /// Combines the two halves. `table_bytes` is the store's measure of the mode's tables.
    pub fn combine(
        mode: ModeKind,
        counters: &ModeCounters,
        apply: &ApplyStats,
        table_bytes: u64,
        rows: (usize, usize),
        now_ns: u64,
    ) -> Self {
        let (lag_p50_ns, lag_p99_ns, lag_max_ns) = apply.lag_total();
        let elapsed_ns = now_ns.saturating_sub(counters.started_ns);
        ModeStats {
            mode: mode.name(),
            events: apply.applied,
            events_per_s: rate_per_s(apply.applied, elapsed_ns),
            lag_p50_ns,
            lag_p99_ns,
            lag_max_ns,
            drops: counters.seq_gaps + counters.map_full,
            resyncs: counters.resyncs,
            kernel_bytes: counters.kernel_bytes,
            user_bytes: table_bytes + counters.buffer_bytes,
            cpu_ns: counters.cpu_ns,
            kernel_drops: counters.kernel_drops,
            perf_lost: counters.perf_lost,
            map_full: counters.map_full,
            decode_errors: counters.decode_errors,
            stale: apply.stale,
            batches: counters.batches,
            unobserved_changes: counters.unobserved_changes,
            evictions: counters.evictions,
            read_path: counters.read_path,
            consumer_lag_p50_ns: counters.consumer_lag_ns.0,
            consumer_lag_p99_ns: counters.consumer_lag_ns.1,
            consumer_lag_max_ns: counters.consumer_lag_ns.2,
            process_rows: rows.0,
            connection_rows: rows.1,
            elapsed_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_handles_zero_time() {
        assert_eq!(rate_per_s(10, 0), 0.0);
        assert_eq!(rate_per_s(10, 2_000_000_000), 5.0);
    }

    #[test]
    fn lag_percentiles_come_from_the_histogram() {
        let mut s = ApplyStats::default();
        for lag in 1..=100u64 {
            s.record_apply(1_000, 1_000 + lag * 1_000, false);
        }
        s.record_apply(0, 5, true); // no kernel time: counted, no lag
        let (p50, p99, max) = s.lag_total();
        assert!((49_000..=51_000).contains(&p50), "p50 {p50}");
        assert!((98_000..=100_100).contains(&p99), "p99 {p99}");
        assert!((100_000..=100_100).contains(&max), "max {max}");
        assert_eq!(s.applied, 101);
        assert_eq!(s.stale, 1);
        let seen = s.lag_histogram().clone();
        assert_eq!(
            s.lag_histogram()
                .since(&LagHistogram::default())
                .percentiles(),
            (p50, p99, max)
        );
        assert_eq!(s.lag_histogram().since(&seen).percentiles(), (0, 0, 0));
        s.record_apply(1_000, 3_000, false);
        assert_eq!(
            s.lag_histogram().since(&seen).percentiles(),
            (2_000, 2_000, 2_000)
        );
        assert_eq!(
            s.lag_total().2,
            max,
            "reading a window leaves the totals alone"
        );
    }

    #[test]
    fn cumulative_buckets_count_lags_at_or_below_each_bound() {
        let mut h = LagHistogram::default();
        assert_eq!(
            h.cumulative(&[1_000]),
            CumulativeLag {
                at_or_below: vec![0],
                count: 0,
                sum_ns: 0.0
            }
        );
        for lag_ns in [500u64, 1_000, 2_000, 50_000, 3_000_000] {
            h.record(1, 1 + lag_ns);
        }
        let c = h.cumulative(&[999, 1_000, 10_000, 1_000_000, 10_000_000]);
        assert_eq!(c.at_or_below, vec![1, 2, 3, 4, 5]);
        assert_eq!(c.count, 5);
        let exact_ns = 3_053_500.0;
        assert!(
            (c.sum_ns - exact_ns).abs() / exact_ns < 0.002,
            "{}",
            c.sum_ns
        );
    }

    #[test]
    fn clocks_move_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a && a > 0);
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(thread_cpu_ns() > 0);
    }
}
