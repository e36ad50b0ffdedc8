//! Windowed figures the dashboard shows, computed from successive cumulative counters:
//! events/s and thread CPU% per mode, lag percentiles per second, per-process CPU% over the
//! refresh window, and the 60-point histories behind the sparklines.
//!
//! The store's own `events_per_s` is a lifetime average; a live dashboard wants "now", so every
//! rate here is a difference of two samples divided by the time between them.

use std::collections::{HashMap, VecDeque};

use bridge::{
    contract::{ModeKind, ProcessRow, RowOrigin},
    stats::{rate_per_s, LagHistogram, ModeStats},
    store::TableStore,
};
use probe_common::ProcKey;

/// Points kept in every history (one per second for mode histories, one per refresh for
/// process CPU): a minute at the default interval.
pub const HISTORY_POINTS: usize = 60;

/// A bounded series of samples, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series<T> {
    values: VecDeque<T>,
}

impl<T: Copy> Series<T> {
    /// Appends a sample, dropping the oldest beyond [`HISTORY_POINTS`].
    pub fn push(&mut self, value: T) {
        if self.values.len() == HISTORY_POINTS {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + ExactSizeIterator + '_ {
        self.values.iter().copied()
    }

    /// The newest sample.
    pub fn last(&self) -> Option<T> {
        self.values.back().copied()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no sample was taken yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// CPU time as a percentage of one core over a window; 0 for an empty window.
pub fn cpu_percent(cpu_delta_ns: u64, window_ns: u64) -> f64 {
    if window_ns == 0 {
        0.0
    } else {
        cpu_delta_ns as f64 * 100.0 / window_ns as f64
    }
}

/// Lag percentiles of one window: (p50, p99, max), ns.
pub type LagWindow = (u64, u64, u64);

/// What the mode panel shows for one mode.
#[derive(Clone, Debug, Default)]
pub struct ModeMetrics {
    /// The store's combined stats as of the last sample (drops, resyncs, memory, totals).
    pub stats: ModeStats,
    /// Changes applied per second over the last sample window.
    pub events_per_s: f64,
    /// Lag percentiles of the most recent window that had changes (`None` before any).
    pub lag: Option<LagWindow>,
    /// CPU of the mode's thread over the last window, % of one core.
    pub cpu_percent: f64,
    /// Events/s, one point per sample.
    pub events_history: Series<u64>,
    /// p99 lag (ns), one point per sample (0 when the window had no changes).
    pub lag_p99_history: Series<u64>,
    /// The mode has delivered at least one batch and has not failed.
    pub active: bool,
    /// Why the mode stopped, if it failed.
    pub failure: Option<String>,
    previous: Option<ModeSample>,
    /// The store's lag histogram as of the last sample; the next window is what came since.
    lag_seen: LagHistogram,
}

#[derive(Clone, Copy, Debug)]
struct ModeSample {
    at_ns: u64,
    events: u64,
    cpu_ns: u64,
}

impl ModeMetrics {
    /// Lag percentiles of the changes applied since the previous call: (p50, p99, max), ns.
    pub fn lag_window(&mut self, store_lag: &LagHistogram) -> LagWindow {
        let window = store_lag.since(&self.lag_seen).percentiles();
        self.lag_seen.clone_from(store_lag);
        window
    }

    /// Takes a sample at `now_ns`: `stats` from the store, `lag` the window just closed
    /// (see [`ModeMetrics::lag_window`]).
    pub fn sample(&mut self, stats: ModeStats, lag: LagWindow, now_ns: u64) {
        if let Some(previous) = self.previous {
            let window = now_ns.saturating_sub(previous.at_ns);
            self.events_per_s = rate_per_s(stats.events.saturating_sub(previous.events), window);
            self.cpu_percent = cpu_percent(stats.cpu_ns.saturating_sub(previous.cpu_ns), window);
            self.events_history.push(self.events_per_s.round() as u64);
            self.lag_p99_history.push(lag.1);
        }
        if lag != (0, 0, 0) {
            self.lag = Some(lag);
        }
        self.previous = Some(ModeSample {
            at_ns: now_ns,
            events: stats.events,
            cpu_ns: stats.cpu_ns,
        });
        self.stats = stats;
    }
}

/// Per-process CPU% over the refresh window, and each process's recent history.
///
/// Each figure is the growth of the kernel's lifetime `cpu_ns` between two of its own samples,
/// divided by the time between those samples, not by the refresh interval: the kernel reads a
/// process's CPU time whenever it changed (at most `flush_period` later), so a value is the
/// process's CPU time as of `max(sampled_ns, refresh − flush_period)`. A running thread's share
/// is as of its last scheduler tick, so one window's figure can be off by two ticks; it is
/// capped at 100% per thread (and `ncpus × 100%`).
#[derive(Clone, Debug)]
pub struct ProcessCpu {
    entries: HashMap<ProcKey, ProcessCpuEntry>,
    epoch: u64,
    /// The previous sample's horizon: rows known until then.
    previous_horizon_ns: Option<u64>,
    flush_period_ns: u64,
    cpus: u32,
}

impl Default for ProcessCpu {
    fn default() -> Self {
        ProcessCpu::new(100_000_000)
    }
}

#[derive(Clone, Debug)]
struct ProcessCpuEntry {
    cpu_ns: u64,
    /// Until when `cpu_ns` is known to be the process's CPU time (see [`ProcessCpu`]).
    valid_ns: u64,
    origin: RowOrigin,
    percent: Option<f64>,
    /// Percent × 10, one point per refresh.
    history: Series<u64>,
    epoch: u64,
}

impl ProcessCpu {
    /// A tracker for a session whose kernel flush runs every `flush_period_ns`.
    pub fn new(flush_period_ns: u64) -> Self {
        // SAFETY: sysconf has no memory-safety preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u32;
        ProcessCpu {
            entries: HashMap::new(),
            epoch: 0,
            previous_horizon_ns: None,
            flush_period_ns,
            cpus,
        }
    }

    /// Samples every row at `now_ns`. A process first seen in this sample has no figure yet,
    /// unless it started after the previous sample (then its whole `cpu_ns` counts, from its
    /// start). A row whose source changed (/proc seed → kernel) restarts its baseline. Entries
    /// of rows that are gone are dropped.
    pub fn sample<'a>(&mut self, rows: impl Iterator<Item = &'a ProcessRow>, now_ns: u64) {
        self.epoch += 1;
        let epoch = self.epoch;
        let horizon = now_ns.saturating_sub(self.flush_period_ns);
        for row in rows {
            let cpu_ns = row.state.cpu_ns;
            let sampled_ns = if row.is_exited() {
                // Final: the CPU time at exit is valid from then on.
                row.state.sampled_ns.max(row.state.exit_ns)
            } else {
                row.state.sampled_ns
            };
            let valid_ns = sampled_ns.max(horizon).min(now_ns.max(sampled_ns));
            let cap = 100.0 * f64::from(row.state.threads.clamp(1, self.cpus));
            let window_percent = |cpu0: u64, t0: u64| {
                (cpu_ns >= cpu0 && valid_ns > t0)
                    .then(|| cpu_percent(cpu_ns - cpu0, valid_ns - t0).min(cap))
            };
            match self.entries.get_mut(&row.key) {
                Some(entry) => {
                    let percent = if entry.origin != row.origin {
                        None
                    } else if cpu_ns == entry.cpu_ns {
                        Some(0.0)
                    } else {
                        window_percent(entry.cpu_ns, entry.valid_ns)
                    };
                    entry.percent = percent;
                    entry
                        .history
                        .push(percent.map_or(0, |p| (p * 10.0).round() as u64));
                    entry.cpu_ns = cpu_ns;
                    entry.valid_ns = valid_ns;
                    entry.origin = row.origin;
                    entry.epoch = epoch;
                }
                None => {
                    let started_in_window = row.origin == RowOrigin::Kernel
                        && self
                            .previous_horizon_ns
                            .is_some_and(|previous| row.key.start_ns >= previous);
                    let percent = started_in_window
                        .then(|| window_percent(0, row.key.start_ns))
                        .flatten();
                    let mut history = Series::default();
                    if let Some(p) = percent {
                        history.push((p * 10.0).round() as u64);
                    }
                    self.entries.insert(
                        row.key,
                        ProcessCpuEntry {
                            cpu_ns,
                            valid_ns,
                            origin: row.origin,
                            percent,
                            history,
                            epoch,
                        },
                    );
                }
            }
        }
        self.entries.retain(|_, entry| entry.epoch == epoch);
        self.previous_horizon_ns = Some(horizon);
    }

    /// CPU% of a process over the last window (`None` until it has been sampled twice).
    pub fn percent(&self, key: &ProcKey) -> Option<f64> {
        self.entries.get(key).and_then(|e| e.percent)
    }

    /// Recent CPU% history of a process, percent × 10, oldest first.
    pub fn history(&self, key: &ProcKey) -> Option<&Series<u64>> {
        self.entries.get(key).map(|e| &e.history)
    }
}

/// CPU of this whole program (all threads), % of one core between samples.
#[derive(Clone, Debug, Default)]
pub struct ProgramCpu {
    /// The last figure.
    pub percent: f64,
    previous: Option<(u64, u64)>,
}

impl ProgramCpu {
    /// Samples the process CPU clock `cpu_ns` at `now_ns`.
    pub fn sample(&mut self, cpu_ns: u64, now_ns: u64) {
        if let Some((cpu, at)) = self.previous {
            self.percent = cpu_percent(cpu_ns.saturating_sub(cpu), now_ns.saturating_sub(at));
        }
        self.previous = Some((cpu_ns, now_ns));
    }
}

/// Everything the screen shows besides the tables; cloned as a whole when the view pauses.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Per mode, in [`ModeKind::ALL`] order.
    pub modes: [ModeMetrics; 3],
    /// Per mode, per process CPU.
    pub process_cpu: [ProcessCpu; 3],
    /// This program's CPU.
    pub program_cpu: ProgramCpu,
}

impl Metrics {
    /// Empty figures for a session whose kernel flush runs every `flush_period_ns`.
    pub fn new(flush_period_ns: u64) -> Self {
        Metrics {
            process_cpu: std::array::from_fn(|_| ProcessCpu::new(flush_period_ns)),
            ..Metrics::default()
        }
    }

    /// The panel figures of one mode.
    pub fn mode(&self, mode: ModeKind) -> &ModeMetrics {
        &self.modes[mode.index()]
    }

    /// Per-process CPU of one mode's table.
    pub fn process_cpu(&self, mode: ModeKind) -> &ProcessCpu {
        &self.process_cpu[mode.index()]
    }

    /// The once-a-second sample of every mode's panel figures (reads the store, writes
    /// nothing there).
    pub fn sample_modes(&mut self, store: &TableStore, now_ns: u64) {
        for mode in ModeKind::ALL {
            let tables = store.mode(mode);
            let metrics = &mut self.modes[mode.index()];
            let lag = metrics.lag_window(tables.apply.lag_histogram());
            metrics.active = tables.active;
            metrics.failure = tables.failure.clone();
            metrics.sample(store.stats(mode), lag, now_ns);
        }
    }

    /// The once-per-refresh sample of every mode's per-process CPU.
    pub fn sample_processes(&mut self, store: &TableStore, now_ns: u64) {
        for mode in ModeKind::ALL {
            self.process_cpu[mode.index()].sample(store.mode(mode).processes.rows().iter(), now_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge::contract::RowOrigin;
    use probe_common::ProcState;

    const S: u64 = 1_000_000_000;

    fn row(tgid: u32, start_ns: u64, cpu_ns: u64) -> ProcessRow {
        ProcessRow {
            key: ProcKey {
                tgid,
                pad: 0,
                start_ns,
            },
            state: ProcState {
                cpu_ns,
                start_ns,
                ..Default::default()
            },
            seq: 1,
            changed_ns: 1,
            origin: RowOrigin::Kernel,
        }
    }

    #[test]
    fn series_is_bounded() {
        let mut s = Series::default();
        for i in 0..100u64 {
            s.push(i);
        }
        assert_eq!(s.len(), HISTORY_POINTS);
        assert_eq!(s.iter().next(), Some(40));
        assert_eq!(s.last(), Some(99));
    }

    #[test]
    fn cpu_percent_of_one_core() {
        assert_eq!(cpu_percent(500_000_000, S), 50.0);
        assert_eq!(cpu_percent(2 * S, S), 200.0);
        assert_eq!(cpu_percent(5, 0), 0.0);
    }

    #[test]
    fn mode_rates_are_windowed() {
        let mut m = ModeMetrics::default();
        let stats = |events, cpu_ns| ModeStats {
            events,
            cpu_ns,
            ..Default::default()
        };
        m.sample(stats(1_000, 0), (0, 0, 0), 10 * S);
        assert_eq!(m.events_per_s, 0.0, "no window yet");
        assert!(m.events_history.is_empty());
        m.sample(stats(1_500, S / 10), (1_000, 9_000, 20_000), 12 * S);
        assert_eq!(m.events_per_s, 250.0);
        assert_eq!(m.cpu_percent, 5.0);
        assert_eq!(m.lag, Some((1_000, 9_000, 20_000)));
        // A quiet second keeps the last lag figures and records a zero point.
        m.sample(stats(1_500, S / 10), (0, 0, 0), 13 * S);
        assert_eq!(m.events_per_s, 0.0);
        assert_eq!(m.lag, Some((1_000, 9_000, 20_000)));
        assert_eq!(m.lag_p99_history.iter().collect::<Vec<_>>(), vec![9_000, 0]);
        assert_eq!(m.events_history.iter().collect::<Vec<_>>(), vec![250, 0]);
    }

    fn sampled(mut r: ProcessRow, sampled_ns: u64, threads: u32) -> ProcessRow {
        r.state.sampled_ns = sampled_ns;
        r.state.threads = threads;
        r
    }

    #[test]
    fn process_cpu_over_the_kernel_sample_window() {
        let mut cpu = ProcessCpu::new(S / 10);
        cpu.cpus = 4;
        let a = sampled(row(1, 0, S), 9 * S + S / 2, 1);
        cpu.sample([&a].into_iter(), 10 * S);
        assert_eq!(cpu.percent(&a.key), None, "first sight has no window");
        // a's value was known valid until 10 s − flush period; its next sample, 0.25 s of CPU
        // later, was taken at 10.9 s: 0.25 / 1.0 s.
        let a2 = sampled(row(1, 0, S + S / 4), 10 * S + 9 * S / 10, 1);
        // Process 2 started within the window: all its CPU since its start counts.
        let b = sampled(row(2, 10 * S + S / 2, S / 10), 10 * S + 9 * S / 10, 1);
        cpu.sample([&a2, &b].into_iter(), 11 * S);
        assert!((cpu.percent(&a.key).unwrap() - 25.0).abs() < 1e-9);
        assert!(
            (cpu.percent(&b.key).unwrap() - 25.0).abs() < 1e-9,
            "0.1 s over 0.4 s"
        );
        assert_eq!(
            cpu.history(&a.key).unwrap().iter().collect::<Vec<_>>(),
            vec![250]
        );
        // Gone rows are forgotten; unchanged CPU reads 0.
        cpu.sample([&b].into_iter(), 12 * S);
        assert_eq!(cpu.percent(&a.key), None);
        assert!(cpu.history(&a.key).is_none());
        assert_eq!(cpu.percent(&b.key), Some(0.0));
    }

    #[test]
    fn one_thread_never_exceeds_one_core() {
        let mut cpu = ProcessCpu::new(S / 10);
        cpu.cpus = 2;
        // A spinner sampled a tick late at one end and early at the other: 1.008 s of CPU
        // in 1 s of samples is capped at 100%.
        let a = sampled(row(1, 0, 10 * S), 10 * S, 1);
        cpu.sample([&a].into_iter(), 10 * S);
        let a2 = sampled(row(1, 0, 11 * S + 8_000_000), 11 * S, 1);
        cpu.sample([&a2].into_iter(), 11 * S);
        assert_eq!(cpu.percent(&a.key), Some(100.0));
        // Four busy threads on two CPUs: at most 200%.
        let t = sampled(row(3, 0, 0), 10 * S, 4);
        cpu.sample([&t].into_iter(), 10 * S);
        let t2 = sampled(row(3, 0, 3 * S), 11 * S, 4);
        cpu.sample([&t2].into_iter(), 11 * S);
        assert_eq!(cpu.percent(&t.key), Some(200.0));
    }

    #[test]
    fn a_seed_replaced_by_kernel_data_restarts_the_baseline() {
        let mut cpu = ProcessCpu::new(S / 10);
        let mut seed = sampled(row(1, 0, 5 * S), 10 * S, 1);
        seed.origin = RowOrigin::Procfs;
        cpu.sample([&seed].into_iter(), 10 * S);
        // The kernel's exact lifetime figure differs from the tick-based /proc one.
        let kernel = sampled(row(1, 0, 5 * S + 30_000_000), 10 * S + S / 2, 1);
        cpu.sample([&kernel].into_iter(), 11 * S);
        assert_eq!(cpu.percent(&kernel.key), None);
        let later = sampled(row(1, 0, 5 * S + 130_000_000), 11 * S + S / 2, 1);
        cpu.sample([&later].into_iter(), 12 * S);
        assert!((cpu.percent(&kernel.key).unwrap() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn program_cpu() {
        let mut p = ProgramCpu::default();
        p.sample(0, 0);
        p.sample(S / 100, S);
        assert_eq!(p.percent, 1.0);
    }
}
