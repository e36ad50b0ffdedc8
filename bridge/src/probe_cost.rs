//! What this tool's own probes cost the kernel, as bpftop shows it for other programs: per
//! program the runs per second, the average time per run and the share of one CPU, from the
//! kernel's run-time statistics (`BPF_ENABLE_STATS(BPF_STATS_RUN_TIME)`, then
//! `BPF_OBJ_GET_INFO_BY_FD`'s `run_time_ns` / `run_cnt`).
//!
//! The statistics cost every BPF program on the machine two clock reads per run, so they are
//! on only while someone looks: [`ProbeCostMonitor::set_shown`] turns them on (the monitor's
//! thread holds the fd `BPF_ENABLE_STATS` returns) and off (the fd is closed). The thread owns
//! its duplicates of the program fds; the dashboard only reads [`CostReport`]s.

use std::{
    os::fd::{AsFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

use crate::{
    stats::monotonic_ns,
    sys::bpf::{prog_run_stats, ProgRunStats},
};

/// How often the monitor samples while shown.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One program's counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSample {
    /// The program's name in the object (e.g. `sched_switch`).
    pub name: String,
    /// Cumulative counters; `None` when the kernel refused the info call.
    pub stats: Option<ProgRunStats>,
}

/// Every program's counters at `at_ns` (CLOCK_MONOTONIC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostSample {
    /// When the counters were read, CLOCK_MONOTONIC ns.
    pub at_ns: u64,
    /// One entry per program, in name order.
    pub programs: Vec<ProgramSample>,
}

/// One program's cost over a window between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramCost {
    /// The program's name.
    pub name: String,
    /// Runs per second over the window; `None` when unknown (a read failed).
    pub runs_per_s: Option<f64>,
    /// Average ns per run over the window; `None` when unknown or it did not run.
    pub avg_ns_per_run: Option<f64>,
    /// Share of one CPU spent in the program over the window, percent; `None` when unknown.
    pub cpu_percent: Option<f64>,
}

/// The costs of every program between `earlier` and `later` (programs matched by name; a
/// counter that went backwards — statistics turned off and on — counts as unknown).
pub fn window(earlier: &CostSample, later: &CostSample) -> Vec<ProgramCost> {
    let wall_ns = later.at_ns.saturating_sub(earlier.at_ns);
    later
        .programs
        .iter()
        .map(|program| {
            let before = earlier
                .programs
                .iter()
                .find(|p| p.name == program.name)
                .and_then(|p| p.stats);
            let delta = match (before, program.stats) {
                (Some(b), Some(a))
                    if wall_ns > 0
                        && a.run_count >= b.run_count
                        && a.run_time_ns >= b.run_time_ns =>
                {
                    Some((a.run_count - b.run_count, a.run_time_ns - b.run_time_ns))
                }
                _ => None,
            };
            let seconds = wall_ns as f64 / 1e9;
            ProgramCost {
                name: program.name.clone(),
                runs_per_s: delta.map(|(runs, _)| runs as f64 / seconds),
                avg_ns_per_run: delta
                    .and_then(|(runs, ns)| (runs > 0).then(|| ns as f64 / runs as f64)),
                cpu_percent: delta.map(|(_, ns)| ns as f64 / wall_ns as f64 * 100.0),
            }
        })
        .collect()
}

/// What the monitor last measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostReport {
    /// Per program, over the last window; empty until two samples were taken while shown.
    pub programs: Vec<ProgramCost>,
    /// Window length, ns (0 until the first window).
    pub window_ns: u64,
    /// Why the statistics could not be turned on (e.g. `EPERM`), when they could not.
    pub error: Option<String>,
    /// True while the kernel's run-time statistics are held on by this monitor.
    pub stats_on: bool,
}

/// A thread sampling the probes' run-time statistics while they are shown.
pub struct ProbeCostMonitor {
    shown: Arc<AtomicBool>,
    report: Arc<Mutex<CostReport>>,
    wake: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl ProbeCostMonitor {
    /// Starts the monitor over `programs` (name, fd; the monitor owns the fds). Statistics stay
    /// off until [`ProbeCostMonitor::set_shown`]`(true)`.
    pub fn start(mut programs: Vec<(String, OwnedFd)>) -> std::io::Result<Self> {
        programs.sort_by(|a, b| a.0.cmp(&b.0));
        let shown = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(CostReport::default()));
        let (wake, woken) = bounded::<()>(1);
        let thread = {
            let shown = Arc::clone(&shown);
            let report = Arc::clone(&report);
            std::thread::Builder::new()
                .name("probe-cost".into())
                .spawn(move || {
                    let mut stats_fd: Option<OwnedFd> = None;
                    let mut last: Option<CostSample> = None;
                    loop {
                        if shown.load(Ordering::Relaxed) {
                            if stats_fd.is_none() {
                                match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
                                    Ok(fd) => stats_fd = Some(fd),
                                    Err(e) => {
                                        set(&report, |r| {
                                            r.error = Some(format!("BPF_ENABLE_STATS: {e}"))
                                        });
                                    }
                                }
                            }
                            let sample = read_sample(&programs);
                            if let Some(earlier) = &last {
                                let programs = window(earlier, &sample);
                                let window_ns = sample.at_ns.saturating_sub(earlier.at_ns);
                                let on = stats_fd.is_some();
                                set(&report, |r| {
                                    r.programs = programs;
                                    r.window_ns = window_ns;
                                    r.stats_on = on;
                                });
                            }
                            last = Some(sample);
                        } else if stats_fd.is_some() || last.is_some() {
                            stats_fd = None;
                            last = None;
                            set(&report, |r| *r = CostReport::default());
                        }
                        match woken.recv_timeout(SAMPLE_EVERY) {
                            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })?
        };
        Ok(ProbeCostMonitor {
            shown,
            report,
            wake,
            thread: Some(thread),
        })
    }

    /// Turns the statistics on (`true`: sampled every [`SAMPLE_EVERY`]) or off.
    pub fn set_shown(&self, shown: bool) {
        if self.shown.swap(shown, Ordering::Relaxed) != shown {
            let _ = self.wake.try_send(());
        }
    }

    /// True while the statistics are asked for.
    pub fn is_shown(&self) -> bool {
        self.shown.load(Ordering::Relaxed)
    }

    /// The latest report (a copy).
    pub fn report(&self) -> CostReport {
        self.report.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for ProbeCostMonitor {
    fn drop(&mut self) {
        // Disconnecting the wake channel ends the thread, which closes the statistics fd.
        let (dead, _) = bounded(1);
        self.wake = dead;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn set(report: &Mutex<CostReport>, change: impl FnOnce(&mut CostReport)) {
    if let Ok(mut r) = report.lock() {
        change(&mut r);
    }
}

fn read_sample(programs: &[(String, OwnedFd)]) -> CostSample {
    CostSample {
        at_ns: monotonic_ns(),
        programs: programs
            .iter()
            .map(|(name, fd)| ProgramSample {
                name: name.clone(),
                stats: prog_run_stats(fd.as_fd()).ok(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ns: u64, programs: &[(&str, Option<(u64, u64)>)]) -> CostSample {
        CostSample {
            at_ns,
            programs: programs
                .iter()
                .map(|(name, stats)| ProgramSample {
                    name: name.to_string(),
                    stats: stats.map(|(run_count, run_time_ns)| ProgRunStats {
                        run_time_ns,
                        run_count,
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn a_window_gives_rate_average_and_cpu_share() {
        let earlier = sample(1_000_000_000, &[("sched_switch", Some((1_000, 500_000)))]);
        let later = sample(
            3_000_000_000,
            &[("sched_switch", Some((21_000, 10_500_000)))],
        );
        let cost = window(&earlier, &later);
        assert_eq!(cost.len(), 1);
        assert_eq!(cost[0].runs_per_s, Some(10_000.0));
        assert_eq!(cost[0].avg_ns_per_run, Some(500.0));
        // 10 ms of program time in 2 s of wall time: 0.5 % of one CPU.
        assert_eq!(cost[0].cpu_percent, Some(0.5));
    }

    #[test]
    fn unknown_and_idle_programs_are_not_guessed() {
        let earlier = sample(
            0,
            &[("a", Some((5, 50))), ("b", None), ("c", Some((9, 90)))],
        );
        let later = sample(
            1_000_000_000,
            &[
                ("a", Some((5, 50))),
                ("b", Some((1, 1))),
                ("c", Some((1, 1))),
            ],
        );
        let cost = window(&earlier, &later);
        assert_eq!(cost[0].runs_per_s, Some(0.0));
        assert_eq!(cost[0].avg_ns_per_run, None, "no run: no average");
        assert_eq!(cost[0].cpu_percent, Some(0.0));
        assert_eq!(cost[1].runs_per_s, None, "no earlier reading");
        assert_eq!(cost[2].cpu_percent, None, "counters went backwards");
    }
}
