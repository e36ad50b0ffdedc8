//! Bounded ingestion: the event loop applies mode messages for at most [`APPLY_BUDGET`] per
//! wake-up (and stops at once when a key is waiting), so a frame or a key press never waits
//! for a backlog to be worked off. When a pass runs out of budget with messages still queued
//! the dashboard is behind; [`IngestLoad`] turns that into the header's `BEHIND` badge,
//! decided once a second so it does not flicker.

use std::time::Duration;

/// Longest stretch of applying before the loop looks at input and the clock again.
pub const APPLY_BUDGET: Duration = Duration::from_millis(8);

/// What the last second's ingestion passes said about keeping up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestLoad {
    /// Passes this second that ran out of budget with messages left.
    cut_short: u32,
    /// The largest backlog (queued messages) seen after such a pass this second.
    backlog: usize,
    /// Shown: the backlog of the last second in which the dashboard fell behind.
    behind: Option<usize>,
}

impl IngestLoad {
    /// Records one pass: whether it ran out of budget, and the messages still queued after it.
    pub fn record_pass(&mut self, out_of_budget: bool, queued: usize) {
        if out_of_budget && queued > 0 {
            self.cut_short += 1;
            self.backlog = self.backlog.max(queued);
        }
    }

    /// Closes the second: the badge shows while the last second had a pass cut short with a
    /// backlog. Returns true when the badge changed.
    pub fn on_second(&mut self) -> bool {
        let behind = (self.cut_short > 0).then_some(self.backlog);
        self.cut_short = 0;
        self.backlog = 0;
        let changed = behind.is_some() != self.behind.is_some();
        self.behind = behind;
        changed
    }

    /// Messages queued when the dashboard last fell behind, while the badge shows.
    pub fn behind(&self) -> Option<usize> {
        self.behind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_left_by_a_full_budget_raises_the_badge_for_a_second() {
        let mut load = IngestLoad::default();
        load.record_pass(true, 40);
        load.record_pass(true, 12);
        assert_eq!(load.behind(), None, "decided at the second, not per pass");
        assert!(load.on_second());
        assert_eq!(load.behind(), Some(40));
        // A quiet second clears it.
        assert!(load.on_second());
        assert_eq!(load.behind(), None);
    }

    #[test]
    fn passes_that_drained_everything_or_yielded_early_are_not_behind() {
        let mut load = IngestLoad::default();
        load.record_pass(true, 0);
        load.record_pass(false, 500);
        assert!(!load.on_second());
        assert_eq!(load.behind(), None);
    }
}
