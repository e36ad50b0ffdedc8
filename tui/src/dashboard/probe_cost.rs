//! The dashboard's side of the probe-cost overlay (key `o`): it owns the session's
//! [`ProbeCostMonitor`] handle and the report last copied from it. The monitor's thread holds
//! the BPF fds; the UI thread only flips the "shown" flag and copies reports.

use bridge::probe_cost::{CostReport, ProbeCostMonitor};

/// The monitor (absent when the dashboard runs without a session, e.g. in tests) and the
/// report shown.
#[derive(Default)]
pub struct ProbeCostView {
    /// The session's monitor.
    pub monitor: Option<ProbeCostMonitor>,
    /// What the overlay shows.
    pub report: CostReport,
}

impl ProbeCostView {
    /// Turns the kernel statistics on while `shown` (off otherwise) and copies the monitor's
    /// latest report. Returns true when the report changed. Without a monitor the report is
    /// left as it is.
    pub fn refresh(&mut self, shown: bool) -> bool {
        let Some(monitor) = &self.monitor else {
            return false;
        };
        monitor.set_shown(shown);
        let report = monitor.report();
        let changed = report != self.report;
        self.report = report;
        changed
    }

    /// True when a monitor runs (a live session).
    pub fn is_live(&self) -> bool {
        self.monitor.is_some()
    }
}
