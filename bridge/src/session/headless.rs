//! Collecting into a store for a while, then converging: what the headless commands (`dump`,
//! `bench`) do with a session.

use std::time::{Duration, Instant};

use super::Session;
use crate::{stats::monotonic_ns, store::TableStore};

/// Finished rows are reaped this often while collecting.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// A mode thread stuck in the kernel must not hang the command.
const FINISH_LIMIT: Duration = Duration::from_secs(10);

impl Session {
    /// Applies the session's messages to `store` until `until` (or the channel disconnects),
    /// reaping finished rows every second.
    pub fn pump_until(&self, store: &mut TableStore, until: Instant) {
        let mut next_reap = Instant::now() + REAP_EVERY;
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            match self.messages().recv_timeout(until - now) {
                Ok(message) => store.handle(message),
                Err(_) => return,
            }
            if Instant::now() >= next_reap {
                store.reap(monotonic_ns());
                next_reap += REAP_EVERY;
            }
        }
    }

    /// Ends collection with converged tables: the final kernel flush, then every mode's last
    /// batch (ring/perf drain once more, poll takes one more snapshot) is applied to `store`,
    /// and last every command line the kernel holds (a process that exec'd after the final
    /// periodic read included).
    pub fn finish_into(&mut self, store: &mut TableStore) {
        self.finish();
        let limit = Instant::now() + FINISH_LIMIT;
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            match self.messages().recv_timeout(left) {
                Ok(message) => store.handle(message),
                Err(_) => break,
            }
        }
        match self.state_maps().read_cmdlines(&mut Default::default()) {
            Ok(all) => store.handle(crate::contract::ModeMessage::CommandLines(all)),
            Err(e) => log::warn!("reading PROC_CMDLINE: {e}"),
        }
    }
}
