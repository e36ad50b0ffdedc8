//! Per-process CPU% over the kernel's own sample window, as the process table shows it.

// foldhash, as the ordered tables use (bridge/src/table.rs: SipHash was a fifth of the
// apply time at 100k rows); these maps are rebuilt or probed for every row each refresh.
use foldhash::{HashMap, HashMapExt};

use bridge::contract::{ProcessRow, RowOrigin};
use probe_common::ProcKey;

use super::series::{cpu_percent, HISTORY_POINTS};

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
    epoch: u32,
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

/// One process's baseline: 48 bytes (it was 64 with an `Option<f64>` and a `u64` epoch), an
/// entry per process row of the visible mode.
#[derive(Clone, Debug)]
struct ProcessCpuEntry {
    cpu_ns: u64,
    /// Until when `cpu_ns` is known to be the process's CPU time (see [`ProcessCpu`]).
    valid_ns: u64,
    /// CPU% over the last window; NaN while unknown (see [`ProcessCpuEntry::percent`]).
    percent_or_nan: f64,
    /// Percent × 10, one point per refresh.
    history: CpuHistory,
    /// The sample that last saw the row (equality only: wrapping is harmless).
    epoch: u32,
    origin: RowOrigin,
}

impl ProcessCpuEntry {
    fn percent(&self) -> Option<f64> {
        (!self.percent_or_nan.is_nan()).then_some(self.percent_or_nan)
    }
}

/// The stored form of an optional percent (a computed percent is never NaN: both operands
/// of its division are positive).
fn percent_or_nan(percent: Option<f64>) -> f64 {
    percent.unwrap_or(f64::NAN)
}

/// One process's CPU% history: percent × 10 per refresh, oldest first, at most
/// [`HISTORY_POINTS`]. An idle process (only zeros so far) costs no allocation: its points
/// are counted, and stored only from its first non-zero one (with 100k processes in each of
/// three modes, a deque per process was most of the dashboard's memory). Points are `u16`
/// in a fixed ring on the heap (120 bytes, a 128-byte malloc chunk; a `VecDeque<u32>` took
/// 272), its position and length kept here: a point above [`CpuHistory::MAX_POINT`]
/// (6553.5 %, a process on more than 65 CPUs) is stored as that maximum, and the detail pane
/// shows such a peak as "≥".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuHistory {
    /// The ring, once a non-zero point came.
    points: Option<Box<[u16; HISTORY_POINTS]>>,
    /// Zeros seen before the first non-zero point (at most [`HISTORY_POINTS`]).
    zeros: u8,
    /// Index of the oldest point in `points`.
    start: u8,
    /// Points stored in `points`.
    len: u8,
}

impl CpuHistory {
    /// The largest point a history stores (percent × 10); larger ones are stored as this.
    pub const MAX_POINT: u64 = u16::MAX as u64;

    /// Appends a point (percent × 10; saturates at [`CpuHistory::MAX_POINT`]).
    pub fn push(&mut self, value: u64) {
        let value = u16::try_from(value).unwrap_or(u16::MAX);
        if self.points.is_none() {
            if value == 0 {
                self.zeros = (self.zeros + 1).min(HISTORY_POINTS as u8);
                return;
            }
            self.points = Some(Box::new([0; HISTORY_POINTS]));
            // The zeros so far, as points (all but the oldest when the ring is full).
            self.start = 0;
            self.len = self.zeros.min(HISTORY_POINTS as u8 - 1);
        }
        let capacity = HISTORY_POINTS as u8;
        let Some(points) = self.points.as_mut() else {
            return;
        };
        if self.len < capacity {
            points[((self.start + self.len) % capacity) as usize] = value;
            self.len += 1;
        } else {
            points[self.start as usize] = value;
            self.start = (self.start + 1) % capacity;
        }
    }

    /// The points, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let zeros = if self.points.is_some() {
            0
        } else {
            self.zeros as usize
        };
        let stored = self.points.as_deref().map_or(0, |_| self.len);
        std::iter::repeat_n(0, zeros).chain((0..stored).filter_map(move |i| {
            let index = ((self.start + i) % HISTORY_POINTS as u8) as usize;
            self.points.as_deref().map(|p| u64::from(p[index]))
        }))
    }
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
        self.epoch = self.epoch.wrapping_add(1);
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
                    entry.percent_or_nan = percent_or_nan(percent);
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
                    let mut history = CpuHistory::default();
                    if let Some(p) = percent {
                        history.push((p * 10.0).round() as u64);
                    }
                    self.entries.insert(
                        row.key,
                        ProcessCpuEntry {
                            cpu_ns,
                            valid_ns,
                            origin: row.origin,
                            percent_or_nan: percent_or_nan(percent),
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

    /// Processes with a baseline (rows seen by the last sample).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// CPU% of a process over the last window (`None` until it has been sampled twice).
    pub fn percent(&self, key: &ProcKey) -> Option<f64> {
        self.entries.get(key).and_then(ProcessCpuEntry::percent)
    }

    /// Recent CPU% history of a process, percent × 10, oldest first.
    pub fn history(&self, key: &ProcKey) -> Option<&CpuHistory> {
        self.entries.get(key).map(|e| &e.history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_history_is_counted_then_stored_from_its_first_busy_point() {
        let mut h = CpuHistory::default();
        for _ in 0..3 {
            h.push(0);
        }
        assert!(h.points.is_none(), "zeros only: nothing allocated");
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![0, 0, 0]);
        h.push(125);
        h.push(0);
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![0, 0, 0, 125, 0]);
        for _ in 0..100 {
            h.push(7);
        }
        assert_eq!(h.iter().count(), HISTORY_POINTS);
        let mut idle = CpuHistory::default();
        for _ in 0..100 {
            idle.push(0);
        }
        assert_eq!(idle.iter().count(), HISTORY_POINTS);
    }

    const S: u64 = 1_000_000_000;

    fn row(tgid: u32, start_ns: u64, cpu_ns: u64) -> ProcessRow {
        ProcessRow {
            key: ProcKey::new(tgid, start_ns),
            state: bridge::contract::ProcInfo {
                cpu_ns,
                start_ns,
                ..Default::default()
            },
            seq: 1,
            changed_ns: 1,
            origin: RowOrigin::Kernel,
        }
    }

    fn sampled(mut r: ProcessRow, sampled_ns: u64, threads: u32) -> ProcessRow {
        r.state.sampled_ns = sampled_ns;
        r.state.threads = threads;
        r
    }

    #[test]
    fn a_history_keeps_the_last_points_in_order_and_saturates_big_ones() {
        let mut h = CpuHistory::default();
        for v in 1..=(HISTORY_POINTS as u64 + 7) {
            h.push(v);
        }
        let points: Vec<u64> = h.iter().collect();
        assert_eq!(points.len(), HISTORY_POINTS);
        assert_eq!(points.first(), Some(&8), "the 7 oldest points dropped");
        assert_eq!(points.last(), Some(&(HISTORY_POINTS as u64 + 7)));
        assert!(points.windows(2).all(|w| w[0] + 1 == w[1]), "{points:?}");
        h.push(1_000_000);
        assert_eq!(h.iter().last(), Some(CpuHistory::MAX_POINT));
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
}
