//! Windowed figures the dashboard shows, computed from successive cumulative counters:
//! events/s and thread CPU% per mode, lag percentiles per second, per-process CPU% over the
//! refresh window, and the 60-point histories behind the sparklines.
//!
//! The store's own `events_per_s` is a lifetime average; a live dashboard wants "now", so every
//! rate here is a difference of two samples divided by the time between them.

use crate::model::{
    net::ModeNet,
    process_cpu::ProcessCpu,
    series::{cpu_percent, Series},
};
use bridge::{
    contract::ModeKind,
    stats::{rate_per_s, LagHistogram, ModeStats},
    store::TableStore,
};

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
    /// Per mode, per process CPU; only the sampled (visible) mode's is filled, the others are
    /// empty (see [`Metrics::sample_processes`]).
    pub process_cpu: [ProcessCpu; 3],
    /// This program's CPU.
    pub program_cpu: ProgramCpu,
    /// Per mode, per connection rates and per process traffic; only the sampled mode's is
    /// filled.
    pub net: [ModeNet; 3],
    /// The kernel's flush period, ns (what an emptied mode's trackers are made with).
    flush_period_ns: u64,
    /// The mode whose per-row figures were sampled last.
    sampled_mode: Option<ModeKind>,
}

impl Metrics {
    /// Empty figures for a session whose kernel flush runs every `flush_period_ns`.
    pub fn new(flush_period_ns: u64) -> Self {
        Metrics {
            process_cpu: std::array::from_fn(|_| ProcessCpu::new(flush_period_ns)),
            net: std::array::from_fn(|_| ModeNet::new(flush_period_ns)),
            flush_period_ns,
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

    /// Connection rates and per-process traffic of one mode.
    pub fn net(&self, mode: ModeKind) -> &ModeNet {
        &self.net[mode.index()]
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

    /// The once-per-refresh sample of one mode's (the visible one's) per-process CPU,
    /// connection rates and per-process traffic.
    ///
    /// Only that mode's figures are kept: with 100k processes and 100k connections in each of
    /// three modes, the per-row figures of all three were more memory than the rows
    /// (BENCHMARKS.md section 10). When the sampled mode changes, the other modes' trackers are
    /// emptied, and the new mode's figures start from this sample: its CPU% and rates are
    /// unknown (not 0) until the next refresh.
    pub fn sample_processes(&mut self, store: &TableStore, mode: ModeKind, now_ns: u64) {
        if self.sampled_mode != Some(mode) {
            for other in ModeKind::ALL.into_iter().filter(|m| *m != mode) {
                self.process_cpu[other.index()] = ProcessCpu::new(self.flush_period_ns);
                self.net[other.index()] = ModeNet::new(self.flush_period_ns);
            }
            self.sampled_mode = Some(mode);
        }
        self.process_cpu[mode.index()].sample(store.mode(mode).processes.rows().iter(), now_ns);
        self.net[mode.index()].sample(store.mode(mode), now_ns);
    }

    /// The mode whose per-row figures are kept (the last one sampled).
    pub fn sampled_mode(&self) -> Option<ModeKind> {
        self.sampled_mode
    }

    /// The figures a pause shows: the panel figures copied, the per-row trackers (CPU%
    /// baselines and histories, connection rates, per-process traffic) moved out, not copied
    /// — while paused nothing samples them here ([`Metrics::resume_rows`] puts them back), so a
    /// pause holds one set of per-row figures, not two.
    pub fn pause_rows(&mut self) -> Metrics {
        let empty_cpu = || ProcessCpu::new(self.flush_period_ns);
        let empty_net = || ModeNet::new(self.flush_period_ns);
        Metrics {
            modes: self.modes.clone(),
            process_cpu: std::mem::replace(
                &mut self.process_cpu,
                std::array::from_fn(|_| empty_cpu()),
            ),
            program_cpu: self.program_cpu.clone(),
            net: std::mem::replace(&mut self.net, std::array::from_fn(|_| empty_net())),
            flush_period_ns: self.flush_period_ns,
            sampled_mode: self.sampled_mode.take(),
        }
    }

    /// Takes back the per-row trackers [`Metrics::pause_rows`] moved into `paused`. The next
    /// sample's CPU% and rates cover the paused time (one longer window, still an average of
    /// what happened).
    pub fn resume_rows(&mut self, paused: Metrics) {
        self.process_cpu = paused.process_cpu;
        self.net = paused.net;
        self.sampled_mode = paused.sampled_mode;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

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

    #[test]
    fn program_cpu() {
        let mut p = ProgramCpu::default();
        p.sample(0, 0);
        p.sample(S / 100, S);
        assert_eq!(p.percent, 1.0);
    }
}
