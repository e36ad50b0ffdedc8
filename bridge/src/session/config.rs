//! What a session runs and how: the probes' load settings, each mode's own config, and the
//! user-space tables' retention. Defaults come from [`crate::defaults`].

use std::time::Duration;

use crate::{
    contract::ModeKind,
    defaults,
    mode::{perf::PerfConfig, poll::PollConfig, ring::RingConfig},
    probe::ProbeSettings,
    table::Retention,
};

/// What to run and how.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Kernel side: which modes emit (and so which mode threads run), map sizes, filters.
    pub probes: ProbeSettings,
    /// How the perf consumer runs.
    pub perf: PerfConfig,
    /// The ring consumer's drain timer when its wake-ups are sampled or off.
    pub ring_drain_interval: Duration,
    /// Poll mode's snapshot interval.
    pub poll_interval: Duration,
    /// Flush period: what changes without an event of its own (on-CPU time, task state, byte
    /// counters, renames) is sent at most once per entity per period, and at the latest one
    /// period after it changed.
    pub update_interval: Duration,
    /// How long finished entries stay in the kernel state maps before user space deletes them
    /// (the session keeps them at least three poll intervals, so poll sees every exit the map
    /// could hold).
    pub kernel_retention: Duration,
    /// How long / how many finished rows stay in the user-space tables.
    pub retention: Retention,
    /// Seed the tables from /proc at start-up.
    pub seed_from_procfs: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            probes: ProbeSettings::default(),
            perf: PerfConfig {
                pages: defaults::perf_pages_here(),
                wakeup_every: defaults::PERF_WAKEUP_EVERY,
                drain_interval: defaults::STREAM_DRAIN_INTERVAL,
            },
            ring_drain_interval: defaults::STREAM_DRAIN_INTERVAL,
            poll_interval: defaults::POLL_INTERVAL,
            update_interval: defaults::UPDATE_INTERVAL,
            kernel_retention: defaults::KERNEL_RETENTION,
            retention: Retention::default(),
            seed_from_procfs: true,
        }
    }
}

impl SessionConfig {
    /// A default config running `modes`.
    pub fn with_modes(modes: &[ModeKind]) -> Self {
        let mut config = SessionConfig::default();
        config.probes.modes = modes.to_vec();
        config
    }

    /// The modes to run, each once, in display order (ring | perf | poll).
    pub fn modes(&self) -> Vec<ModeKind> {
        ModeKind::ALL
            .into_iter()
            .filter(|m| self.probes.modes.contains(m))
            .collect()
    }

    /// The kernel reaper's retention in force: at least three poll intervals.
    pub fn effective_kernel_retention(&self) -> Duration {
        self.kernel_retention
            .max(self.poll_interval.saturating_mul(3))
    }

    /// The ring consumer's config (its wake-up sampling is the kernel's).
    pub fn ring(&self) -> RingConfig {
        RingConfig {
            wakeup_every: self.probes.ring_wakeup_every,
            drain_interval: self.ring_drain_interval,
        }
    }

    /// The poll mode's config.
    pub fn poll(&self) -> PollConfig {
        PollConfig {
            interval: self.poll_interval,
            kernel_retention: self.effective_kernel_retention(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_unique_and_ordered() {
        let config = SessionConfig::with_modes(&[ModeKind::Poll, ModeKind::Ring, ModeKind::Ring]);
        assert_eq!(config.modes(), vec![ModeKind::Ring, ModeKind::Poll]);
    }

    #[test]
    fn kernel_retention_covers_three_poll_intervals() {
        let mut config = SessionConfig {
            poll_interval: Duration::from_secs(7),
            ..SessionConfig::default()
        };
        assert_eq!(config.effective_kernel_retention(), Duration::from_secs(21));
        config.poll_interval = Duration::MAX;
        assert_eq!(config.effective_kernel_retention(), Duration::MAX);
    }
}
