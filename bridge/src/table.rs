//! Ordered tables: `IndexMap` keyed by entity identity, in first-seen order.
//!
//! Guarantees:
//! - insert, update and lookup are O(1); iteration is in first-seen order;
//! - a row is only replaced by a change with a higher `seq` ("highest seq wins"), so records that
//!   arrive out of order (perf CPUs, in-flight records after a resync) never roll a row back;
//! - finished rows (exited / closed) stay until [`OrderedTable::reap`] removes them, in one
//!   `retain` pass, once older than the retention time or beyond the retention count;
//! - sorting is a permutation computed on demand ([`OrderedTable::sorted_keys`]); the table
//!   itself is never reordered by a sort.

use indexmap::IndexMap;

/// The tables' hasher: foldhash, seeded per process. SipHash (std's default) took a fifth of
/// the apply time at 100k rows (BENCHMARKS.md, section 2); keys are kernel identities, and a
/// per-process random seed keeps crafted collisions (remote ports) impractical.
type FastHash = foldhash::fast::RandomState;

use crate::contract::{Entity, ProcessRow, RowOrigin};

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// A new row was appended.
    Inserted,
    /// An existing row was replaced by a newer change.
    Updated,
    /// The change was older than (or as old as) the row: ignored.
    Stale,
}

/// How long and how many finished rows are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Finished rows older than this (since they finished) are reaped, ns.
    pub max_age_ns: u64,
    /// At most this many finished rows are kept; the oldest-finished go first.
    pub max_finished: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_ns: 60_000_000_000,
            max_finished: 10_000,
        }
    }
}

/// An ordered table of rows of one kind.
#[derive(Clone, Debug)]
pub struct OrderedTable<R: Entity> {
    rows: IndexMap<R::Key, R, FastHash>,
    finished: usize,
    /// A lower bound of the finish times of the finished rows (`u64::MAX` when none), so a
    /// reap with nothing due returns without visiting the rows.
    oldest_finished_ns: u64,
}

impl<R: Entity> Default for OrderedTable<R> {
    fn default() -> Self {
        OrderedTable {
            rows: IndexMap::with_hasher(FastHash::default()),
            finished: 0,
            oldest_finished_ns: u64::MAX,
        }
    }
}

impl<R: Entity> OrderedTable<R> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of rows (live and finished).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows the table can hold without reallocating (its allocated capacity).
    pub fn capacity(&self) -> usize {
        self.rows.capacity()
    }

    /// Allocated bytes: capacity × (hash, key, row) entry, plus one `usize` index slot and one
    /// control byte per slot of the hash index.
    pub fn allocated_bytes(&self) -> u64 {
        let entry = std::mem::size_of::<(u64, R::Key, R)>() + std::mem::size_of::<usize>() + 1;
        (self.rows.capacity() * entry) as u64
    }

    /// Number of finished rows awaiting reaping.
    pub fn finished_len(&self) -> usize {
        self.finished
    }

    /// The row with this key.
    pub fn get(&self, key: &R::Key) -> Option<&R> {
        self.rows.get(key)
    }

    /// Position of the row in first-seen order.
    pub fn position(&self, key: &R::Key) -> Option<usize> {
        self.rows.get_index_of(key)
    }

    /// The row at a first-seen position.
    pub fn get_index(&self, index: usize) -> Option<&R> {
        self.rows.get_index(index).map(|(_, r)| r)
    }

    /// Rows in first-seen order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &R> + '_ {
        self.rows.values()
    }

    /// Applies a change: inserts a new row or replaces an older one (higher `seq` wins; a row
    /// whose `seq` is 0, i.e. from /proc, is replaced by any kernel change).
    pub fn upsert(&mut self, row: R) -> UpsertOutcome {
        let finished_ns = row.finished_ns();
        let finished = finished_ns.is_some();
        if let Some(t) = finished_ns {
            self.oldest_finished_ns = self.oldest_finished_ns.min(t);
        }
        match self.rows.get_mut(&row.key()) {
            Some(existing) => {
                if row.seq() <= existing.seq() && existing.seq() != 0 {
                    return UpsertOutcome::Stale;
                }
                let was_finished = existing.finished_ns().is_some();
                let mut row = row;
                row.inherit_unknowns(existing);
                *existing = row;
                self.finished = self.finished + finished as usize - was_finished as usize;
                UpsertOutcome::Updated
            }
            None => {
                self.rows.insert(row.key(), row);
                self.finished += finished as usize;
                UpsertOutcome::Inserted
            }
        }
    }

    /// Replaces the key of the row at `index` keeping its position; used when a /proc row's
    /// approximate key is replaced by the kernel's exact one. Returns false (and changes
    /// nothing) when `new_key` already exists.
    pub(crate) fn rekey(&mut self, index: usize, new_key: R::Key) -> bool {
        self.rows.replace_index(index, new_key).is_ok()
    }

    /// Removes finished rows that are older than `retention.max_age_ns` at `now_ns`, then the
    /// oldest-finished ones beyond `retention.max_finished`. One pass over the table (plus a
    /// selection when the count bound bites). Returns the number of rows removed.
    pub fn reap(&mut self, now_ns: u64, retention: Retention) -> usize {
        let mut cutoff_ns = now_ns.saturating_sub(retention.max_age_ns);
        if self.finished <= retention.max_finished && self.oldest_finished_ns >= cutoff_ns {
            return 0; // nothing old enough, and within the count bound
        }
        // The count bound can only bite with more finished rows than it allows: otherwise
        // one pass (the retain) is enough.
        let mut young: Vec<u64> = if self.finished > retention.max_finished {
            self.rows
                .values()
                .filter_map(|r| r.finished_ns())
                .filter(|t| *t >= cutoff_ns)
                .collect()
        } else {
            Vec::new()
        };
        if young.len() > retention.max_finished {
            // Keep the `max_finished` most recently finished rows.
            let drop = young.len() - retention.max_finished;
            young.select_nth_unstable(drop);
            cutoff_ns = cutoff_ns.max(young[drop]);
        }
        let before = self.rows.len();
        let mut oldest_kept = u64::MAX;
        self.rows.retain(|_, r| match r.finished_ns() {
            None => true,
            Some(t) if t >= cutoff_ns => {
                oldest_kept = oldest_kept.min(t);
                true
            }
            Some(_) => false,
        });
        self.oldest_finished_ns = oldest_kept;
        let removed = before - self.rows.len();
        self.finished -= removed;
        removed
    }

    /// Removes every row for which `keep` returns false (one `retain` pass).
    pub fn retain(&mut self, mut keep: impl FnMut(&R) -> bool) {
        self.rows.retain(|_, r| keep(r));
        self.finished = 0;
        self.oldest_finished_ns = u64::MAX;
        for t in self.rows.values().filter_map(|r| r.finished_ns()) {
            self.finished += 1;
            self.oldest_finished_ns = self.oldest_finished_ns.min(t);
        }
    }

    /// Keys of the rows accepted by `filter`, ordered by `cmp` (stable: ties keep first-seen
    /// order). O(n log n) in the number of accepted rows; the table is not modified.
    pub fn sorted_keys(
        &self,
        mut filter: impl FnMut(&R) -> bool,
        mut cmp: impl FnMut(&R, &R) -> std::cmp::Ordering,
    ) -> Vec<R::Key> {
        let mut picked: Vec<&R> = self.rows.values().filter(|r| filter(r)).collect();
        picked.sort_by(|a, b| cmp(a, b));
        picked.into_iter().map(|r| r.key()).collect()
    }
}

/// The processes table: an [`OrderedTable`] that also merges /proc rows with kernel rows.
///
/// /proc gives a start time accurate to one clock tick; the kernel's is exact. When a kernel
/// change arrives for a tgid that only has a /proc row with a start time within the tolerance,
/// the /proc row takes the exact key in place (its position is kept) before the change applies.
#[derive(Clone, Debug, Default)]
pub struct ProcessTable {
    table: OrderedTable<ProcessRow>,
    seeded_by_tgid: std::collections::HashMap<u32, probe_common::ProcKey, FastHash>,
    /// tgid → key of the latest-started row with that tgid (pid reuse keeps older rows).
    latest_by_tgid: std::collections::HashMap<u32, probe_common::ProcKey, FastHash>,
    start_tolerance_ns: u64,
}

impl ProcessTable {
    /// An empty table; `start_tolerance_ns` is how far a /proc start time may be from the
    /// kernel's for the same process (one clock tick plus slack).
    pub fn new(start_tolerance_ns: u64) -> Self {
        ProcessTable {
            start_tolerance_ns,
            ..Default::default()
        }
    }

    /// How far a /proc start time may be from the kernel's (see [`ProcessTable::new`]).
    pub fn start_tolerance_ns(&self) -> u64 {
        self.start_tolerance_ns
    }

    /// The underlying ordered table (read-only).
    pub fn rows(&self) -> &OrderedTable<ProcessRow> {
        &self.table
    }

    /// The row of the process that now has (or last had) pid `tgid`: of the rows with that
    /// tgid, the one that started last.
    pub fn latest_for_tgid(&self, tgid: u32) -> Option<&ProcessRow> {
        self.latest_by_tgid
            .get(&tgid)
            .and_then(|key| self.table.get(key))
    }

    /// Applies a process change (kernel or /proc origin).
    pub fn upsert(&mut self, row: ProcessRow) -> UpsertOutcome {
        let key = row.key;
        let outcome = self.upsert_row(row);
        if outcome == UpsertOutcome::Inserted {
            let newer = self
                .latest_by_tgid
                .get(&key.tgid)
                .is_none_or(|k| k.start_ns <= key.start_ns || self.table.get(k).is_none());
            if newer {
                self.latest_by_tgid.insert(key.tgid, key);
            }
        }
        outcome
    }

    fn upsert_row(&mut self, row: ProcessRow) -> UpsertOutcome {
        if row.origin == RowOrigin::Procfs {
            if self.table.get(&row.key).is_none() {
                self.seeded_by_tgid.insert(row.key.tgid, row.key);
            }
            return self.table.upsert(row);
        }
        if self.table.get(&row.key).is_none() {
            if let Some(seed_key) = self.seeded_by_tgid.remove(&row.key.tgid) {
                let close = seed_key.start_ns.abs_diff(row.key.start_ns) <= self.start_tolerance_ns;
                if let (true, Some(index)) = (close, self.table.position(&seed_key)) {
                    self.table.rekey(index, row.key);
                    if self.latest_by_tgid.get(&row.key.tgid) == Some(&seed_key) {
                        self.latest_by_tgid.insert(row.key.tgid, row.key);
                    }
                }
            }
        }
        self.table.upsert(row)
    }

    /// Drops index entries whose rows are gone.
    fn prune_indexes(&mut self) {
        let table = &self.table;
        self.seeded_by_tgid
            .retain(|_, key| table.get(key).is_some());
        self.latest_by_tgid
            .retain(|_, key| table.get(key).is_some());
    }

    /// See [`OrderedTable::reap`].
    pub fn reap(&mut self, now_ns: u64, retention: Retention) -> usize {
        let removed = self.table.reap(now_ns, retention);
        if removed > 0 {
            self.prune_indexes();
        }
        removed
    }

    /// See [`OrderedTable::retain`].
    pub fn retain(&mut self, keep: impl FnMut(&ProcessRow) -> bool) {
        self.table.retain(keep);
        self.prune_indexes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_common::{proc_flags, ProcKey, ProcState};

    fn row(tgid: u32, start_ns: u64, seq: u64) -> ProcessRow {
        ProcessRow {
            key: ProcKey::new(tgid, start_ns),
            state: ProcState {
                start_ns,
                ..Default::default()
            },
            seq,
            changed_ns: seq,
            origin: RowOrigin::Kernel,
        }
    }

    fn exited(mut r: ProcessRow, exit_ns: u64) -> ProcessRow {
        r.state.flags |= proc_flags::EXITED;
        r.state.exit_ns = exit_ns;
        r
    }

    #[test]
    fn keeps_first_seen_order_and_highest_seq() {
        let mut t = OrderedTable::new();
        assert_eq!(t.upsert(row(3, 30, 1)), UpsertOutcome::Inserted);
        assert_eq!(t.upsert(row(1, 10, 2)), UpsertOutcome::Inserted);
        let mut newer = row(3, 30, 5);
        newer.state.cpu_ns = 99;
        assert_eq!(t.upsert(newer), UpsertOutcome::Updated);
        assert_eq!(t.upsert(row(3, 30, 4)), UpsertOutcome::Stale);
        let order: Vec<u32> = t.iter().map(|r| r.key.tgid).collect();
        assert_eq!(order, vec![3, 1]);
        assert_eq!(t.get(&row(3, 30, 0).key).unwrap().state.cpu_ns, 99);
    }

    #[test]
    fn pid_reuse_makes_two_rows() {
        let mut t = OrderedTable::new();
        t.upsert(exited(row(42, 100, 1), 150));
        t.upsert(row(42, 200, 2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.finished_len(), 1);
    }

    #[test]
    fn reap_by_age_and_count() {
        let mut t = OrderedTable::new();
        for i in 0..10u32 {
            t.upsert(exited(row(i, i as u64, i as u64 + 1), 1000 + i as u64));
        }
        t.upsert(row(100, 5, 50));
        // Age: finished before 1005 go.
        let removed = t.reap(
            2005,
            Retention {
                max_age_ns: 1000,
                max_finished: 100,
            },
        );
        assert_eq!(removed, 5);
        assert_eq!(t.finished_len(), 5);
        // Count: keep the 2 most recently finished.
        t.reap(
            2005,
            Retention {
                max_age_ns: 10_000,
                max_finished: 2,
            },
        );
        let left: Vec<u32> = t.iter().map(|r| r.key.tgid).collect();
        assert_eq!(left, vec![8, 9, 100]);
        assert_eq!(t.finished_len(), 2);
    }

    #[test]
    fn reap_with_nothing_due_keeps_everything_and_later_reaps_exactly() {
        let mut t = OrderedTable::new();
        let retention = Retention {
            max_age_ns: 100,
            max_finished: 10,
        };
        t.upsert(exited(row(1, 1, 1), 500));
        t.upsert(row(2, 2, 2));
        t.upsert(exited(row(3, 3, 3), 550));
        assert_eq!(t.reap(599, retention), 0, "nothing finished before 499");
        assert_eq!(t.reap(620, retention), 1, "row 1 (finished at 500) is due");
        assert_eq!(t.finished_len(), 1);
        // A row that finishes earlier than the remembered oldest lowers the bound.
        t.upsert(exited(row(4, 4, 4), 10));
        assert_eq!(t.reap(620, retention), 1);
        let left: Vec<u32> = t.iter().map(|r| r.key.tgid).collect();
        assert_eq!(left, vec![2, 3]);
        assert_eq!(t.reap(700, retention), 1);
        assert_eq!(t.finished_len(), 0);
    }

    #[test]
    fn sorted_keys_is_a_stable_permutation() {
        let mut t = OrderedTable::new();
        for (tgid, cpu) in [(1, 5), (2, 9), (3, 5), (4, 1)] {
            let mut r = row(tgid, tgid as u64, 1);
            r.state.cpu_ns = cpu;
            t.upsert(r);
        }
        let keys = t.sorted_keys(|_| true, |a, b| b.state.cpu_ns.cmp(&a.state.cpu_ns));
        let tgids: Vec<u32> = keys.iter().map(|k| k.tgid).collect();
        assert_eq!(tgids, vec![2, 1, 3, 4]);
        let odd = t.sorted_keys(|r| r.key.tgid % 2 == 1, |a, b| a.key.cmp(&b.key));
        assert_eq!(odd.len(), 2);
        // The table's own order is untouched.
        assert_eq!(t.get_index(0).unwrap().key.tgid, 1);
    }

    #[test]
    fn procfs_row_takes_the_exact_kernel_key_in_place() {
        let mut t = ProcessTable::new(10_000_000);
        let mut seed = row(7, 1_000_000_000, 0);
        seed.origin = RowOrigin::Procfs;
        t.upsert(seed);
        t.upsert(row(8, 5, 1));
        // Kernel start time differs by 3 ms (within one tick).
        let exact = row(7, 1_003_000_000, 4);
        assert_eq!(t.upsert(exact.clone()), UpsertOutcome::Updated);
        assert_eq!(t.rows().len(), 2);
        assert_eq!(t.rows().get_index(0).unwrap(), &exact);
        assert_eq!(t.latest_for_tgid(7).unwrap().key, exact.key);
        // A later process reusing pid 7 is a new row, and the one pid 7 now names.
        assert_eq!(t.upsert(row(7, 9_000_000_000, 5)), UpsertOutcome::Inserted);
        assert_eq!(t.rows().len(), 3);
        assert_eq!(t.latest_for_tgid(7).unwrap().key.start_ns, 9_000_000_000);
        assert!(t.latest_for_tgid(99).is_none());
    }
}
