//! Byte totals of connections the tables no longer hold, so that the exported byte counters
//! never go down when closed connections are reaped.
//!
//! Around every reap the collector sums each mode's connection bytes before and after; the
//! difference is what the reaped rows had sent and received, and is added here. A sum that
//! drops for another reason (a row replaced by a new connection on the same 4-tuple, a
//! resync) is caught by the exporter's monotonic guard instead ([`super::encode`]).

use bridge::{contract::ModeKind, store::TableStore};

/// Bytes of reaped connection rows, per mode. Only grows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetiredTotals {
    sent: [u64; 3],
    received: [u64; 3],
}

/// (sent, received) payload bytes of every connection row of `mode` whose bytes are known.
pub fn connection_bytes(store: &TableStore, mode: ModeKind) -> (u64, u64) {
    store
        .mode(mode)
        .connections
        .iter()
        .filter_map(|row| row.bytes())
        .fold((0, 0), |(s, r), (sent, received)| (s + sent, r + received))
}

impl RetiredTotals {
    /// (sent, received) bytes of `mode`'s reaped rows so far.
    pub fn bytes(&self, mode: ModeKind) -> (u64, u64) {
        (self.sent[mode.index()], self.received[mode.index()])
    }

    /// Reaps `store` at `now_ns` through `reap` and adds what the reaped rows carried; returns
    /// what `reap` returned.
    pub fn reap_counting(
        &mut self,
        store: &mut TableStore,
        reap: impl FnOnce(&mut TableStore) -> usize,
    ) -> usize {
        let before = ModeKind::ALL.map(|mode| connection_bytes(store, mode));
        let reaped = reap(store);
        if reaped > 0 {
            for mode in ModeKind::ALL {
                let after = connection_bytes(store, mode);
                let i = mode.index();
                self.sent[i] += before[i].0.saturating_sub(after.0);
                self.received[i] += before[i].1.saturating_sub(after.1);
            }
        }
        reaped
    }
}
