//! Ordered tables: rows in a `Vec` in first-seen order, found through a hash index of
//! positions.
//!
//! Guarantees:
//! - insert, update and lookup are O(1); iteration is in first-seen order;
//! - a row is only replaced by a change with a higher `seq` ("highest seq wins"), so records that
//!   arrive out of order (perf CPUs, in-flight records after a resync) never roll a row back;
//! - finished rows (exited / closed) stay until [`OrderedTable::reap`] removes them, in one
//!   `retain` pass, once older than the retention time or beyond the retention count;
//! - sorting is a permutation computed on demand ([`OrderedTable::sorted_keys`]); the table
//!   itself is never reordered by a sort.
//!
//! Memory: each row is stored once (its key is read from the row, not kept beside it) and
//! the index holds a `u32` position per row; the row vector grows by a quarter, not by
//! doubling. An `IndexMap` kept the hash, a copy of the key and a `usize` slot per row and
//! doubled its entries: 245 bytes per process row where this takes ~195 (BENCHMARKS.md,
//! section 10). `hashbrown::HashTable` is the index `IndexMap` itself is built on.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The tables' hasher: foldhash, seeded per process. SipHash (std's default) took a fifth of
/// the apply time at 100k rows (BENCHMARKS.md, section 2); keys are kernel identities, and a
/// per-process random seed keeps crafted collisions (remote ports) impractical.
type FastHash = foldhash::fast::RandomState;

use crate::contract::{Entity, ProcessRow, RowOrigin};

/// Rows a table's vector grows by at least, and the share of its length (1/4) it grows by.
const MIN_GROWTH_ROWS: usize = 64;

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
    /// The rows, in first-seen order.
    rows: Vec<R>,
    /// Positions in `rows`, hashed by the row's key.
    index: HashTable<u32>,
    hasher: FastHash,
    finished: usize,
    /// A lower bound of the finish times of the finished rows (`u64::MAX` when none), so a
    /// reap with nothing due returns without visiting the rows.
    oldest_finished_ns: u64,
}

impl<R: Entity> Default for OrderedTable<R> {
    fn default() -> Self {
        OrderedTable {
            rows: Vec::new(),
            index: HashTable::new(),
            hasher: FastHash::default(),
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

    /// A table of `rows`, in their order (a row whose key came earlier is left out), with its
    /// index and finished-row bookkeeping built from them: O(rows). For copies made outside
    /// the apply path (a paused view's); the vector is used as given, with no slack added.
    pub fn from_rows(rows: Vec<R>) -> Self {
        let mut table = OrderedTable {
            rows: Vec::with_capacity(rows.len()),
            ..OrderedTable::default()
        };
        for row in rows {
            if table.position(&row.key()).is_some() {
                continue;
            }
            if let Some(t) = row.finished_ns() {
                table.finished += 1;
                table.oldest_finished_ns = table.oldest_finished_ns.min(t);
            }
            table.push(row);
        }
        table
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

    /// Allocated bytes: the row vector's capacity × row size, plus one `u32` position and one
    /// control byte per bucket of the hash index (buckets: a power of two ≥ 8/7 × capacity).
    pub fn allocated_bytes(&self) -> u64 {
        let rows = self.rows.capacity() * std::mem::size_of::<R>();
        let buckets = match self.index.capacity() {
            0 => 0,
            c => (c * 8 / 7).next_power_of_two(),
        };
        (rows + buckets * (std::mem::size_of::<u32>() + 1)) as u64
    }

    /// Number of finished rows awaiting reaping.
    pub fn finished_len(&self) -> usize {
        self.finished
    }

    /// The row with this key.
    pub fn get(&self, key: &R::Key) -> Option<&R> {
        self.position(key).map(|i| &self.rows[i])
    }

    /// Position of the row in first-seen order.
    pub fn position(&self, key: &R::Key) -> Option<usize> {
        let rows = &self.rows;
        self.index
            .find(self.hasher.hash_one(key), |&i| {
                rows[i as usize].key() == *key
            })
            .map(|&i| i as usize)
    }

    /// The row at a first-seen position.
    pub fn get_index(&self, index: usize) -> Option<&R> {
        self.rows.get(index)
    }

    /// Rows in first-seen order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &R> + '_ {
        self.rows.iter()
    }

    /// Applies a change: inserts a new row or replaces an older one (higher `seq` wins; a row
    /// whose `seq` is 0, i.e. from /proc, is replaced by any kernel change).
    pub fn upsert(&mut self, row: R) -> UpsertOutcome {
        let finished_ns = row.finished_ns();
        let finished = finished_ns.is_some();
        if let Some(t) = finished_ns {
            self.oldest_finished_ns = self.oldest_finished_ns.min(t);
        }
        match self.position(&row.key()) {
            Some(position) => {
                let existing = &mut self.rows[position];
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
                self.push(row);
                self.finished += finished as usize;
                UpsertOutcome::Inserted
            }
        }
    }

    /// Replaces the key of the row at `index` keeping its position; used when a /proc row's
    /// approximate key is replaced by the kernel's exact one. Returns false (and changes
    /// nothing) when `new_key` already exists.
    pub(crate) fn rekey(&mut self, index: usize, new_key: R::Key) -> bool {
        if index >= self.rows.len() || self.position(&new_key).is_some() {
            return false;
        }
        let old_key = self.rows[index].key();
        let old_hash = self.hasher.hash_one(old_key);
        if let Ok(slot) = self.index.find_entry(old_hash, |&i| i as usize == index) {
            slot.remove();
        }
        self.rows[index].set_key(new_key);
        let rows = &self.rows;
        let hasher = &self.hasher;
        self.index
            .insert_unique(hasher.hash_one(new_key), index as u32, |&i| {
                hasher.hash_one(rows[i as usize].key())
            });
        true
    }

    /// Appends a row whose key is not in the table. The vector grows by a quarter of its
    /// length (not by doubling: with 100k-row tables the doubling slack was tens of MB).
    fn push(&mut self, row: R) {
        if self.rows.len() == self.rows.capacity() {
            let more = (self.rows.len() / 4).max(MIN_GROWTH_ROWS);
            self.rows.reserve_exact(more);
        }
        let position = u32::try_from(self.rows.len()).expect("fewer than 2^32 rows");
        let hash = self.hasher.hash_one(row.key());
        self.rows.push(row);
        let rows = &self.rows;
        let hasher = &self.hasher;
        self.index
            .insert_unique(hash, position, |&i| hasher.hash_one(rows[i as usize].key()));
    }

    /// Keeps the rows `keep` accepts, in order, then rebuilds the index (O(rows), as
    /// `IndexMap::retain` does) and gives back the vector's slack beyond a quarter.
    fn retain_rows(&mut self, keep: impl FnMut(&mut R) -> bool) {
        self.rows.retain_mut(keep);
        let slack = self.rows.len() / 4 + MIN_GROWTH_ROWS;
        if self.rows.capacity() > self.rows.len() + 2 * slack {
            self.rows.shrink_to(self.rows.len() + slack);
        }
        self.index.clear();
        let rows = &self.rows;
        let hasher = &self.hasher;
        for (position, row) in rows.iter().enumerate() {
            self.index
                .insert_unique(hasher.hash_one(row.key()), position as u32, |&i| {
                    hasher.hash_one(rows[i as usize].key())
                });
        }
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
                .iter()
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
        self.retain_rows(|r| match r.finished_ns() {
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
        self.retain_rows(|r| keep(r));
        self.finished = 0;
        self.oldest_finished_ns = u64::MAX;
        for t in self.rows.iter().filter_map(|r| r.finished_ns()) {
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
        let mut picked: Vec<&R> = self.rows.iter().filter(|r| filter(r)).collect();
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
    /// tgid → start time (the key's `start_ns`) of the latest-started row with that tgid (pid
    /// reuse keeps older rows). The start time alone, not the key: 16 bytes an entry instead
    /// of 24, with a row per process in each mode.
    latest_by_tgid: std::collections::HashMap<u32, u64, FastHash>,
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

    /// A processes table of `rows`, in their order ([`OrderedTable::from_rows`]), with its tgid
    /// indexes built from them: the latest-started row of each tgid, and the /proc rows by
    /// tgid. Lookups ([`ProcessTable::latest_for_tgid`]) answer as on the table the rows were
    /// copied from.
    pub fn from_rows(rows: Vec<ProcessRow>, start_tolerance_ns: u64) -> Self {
        let table = OrderedTable::from_rows(rows);
        let mut seeded_by_tgid = std::collections::HashMap::with_hasher(FastHash::default());
        let mut latest_by_tgid: std::collections::HashMap<u32, u64, FastHash> =
            std::collections::HashMap::with_hasher(FastHash::default());
        for row in table.iter() {
            if row.origin == RowOrigin::Procfs {
                seeded_by_tgid.insert(row.key.tgid, row.key);
            }
            let latest = latest_by_tgid
                .entry(row.key.tgid)
                .or_insert(row.key.start_ns);
            *latest = (*latest).max(row.key.start_ns);
        }
        ProcessTable {
            table,
            seeded_by_tgid,
            latest_by_tgid,
            start_tolerance_ns,
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
            .and_then(|start_ns| self.table.get(&probe_common::ProcKey::new(tgid, *start_ns)))
    }

    /// Applies a process change (kernel or /proc origin).
    pub fn upsert(&mut self, row: ProcessRow) -> UpsertOutcome {
        let key = row.key;
        let outcome = self.upsert_row(row);
        if outcome == UpsertOutcome::Inserted {
            let newer = self.latest_by_tgid.get(&key.tgid).is_none_or(|start_ns| {
                *start_ns <= key.start_ns
                    || self
                        .table
                        .get(&probe_common::ProcKey::new(key.tgid, *start_ns))
                        .is_none()
            });
            if newer {
                self.latest_by_tgid.insert(key.tgid, key.start_ns);
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
                    if self.latest_by_tgid.get(&row.key.tgid) == Some(&seed_key.start_ns) {
                        self.latest_by_tgid.insert(row.key.tgid, row.key.start_ns);
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
        self.latest_by_tgid.retain(|tgid, start_ns| {
            table
                .get(&probe_common::ProcKey::new(*tgid, *start_ns))
                .is_some()
        });
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
    use crate::contract::ProcInfo;
    use probe_common::{proc_flags, ProcKey};

    fn row(tgid: u32, start_ns: u64, seq: u64) -> ProcessRow {
        ProcessRow {
            key: ProcKey::new(tgid, start_ns),
            state: ProcInfo {
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

    #[test]
    fn index_follows_growth_reaps_and_rekeys() {
        let mut t = OrderedTable::new();
        for i in 0..5_000u32 {
            let r = row(i, u64::from(i) + 1, u64::from(i) + 1);
            t.upsert(if i % 2 == 0 { exited(r, 10) } else { r });
        }
        assert!(
            t.capacity() < 5_000 * 5 / 4 + MIN_GROWTH_ROWS,
            "{}",
            t.capacity()
        );
        let retention = Retention {
            max_age_ns: 1,
            max_finished: 0,
        };
        assert_eq!(t.reap(1_000, retention), 2_500);
        assert!(
            t.capacity() <= 2_500 * 3 / 2 + 2 * MIN_GROWTH_ROWS,
            "slack given back"
        );
        for (position, r) in t.iter().enumerate() {
            assert_eq!(r.key.tgid % 2, 1);
            assert_eq!(t.position(&r.key), Some(position));
        }
        assert!(t.get(&ProcKey::new(2, 3)).is_none(), "reaped rows are gone");
        let old = ProcKey::new(7, 8);
        let new = ProcKey::new(7, 9);
        let at = t.position(&old).unwrap();
        assert!(!t.rekey(at, ProcKey::new(9, 10)), "a key in use is refused");
        assert!(t.rekey(at, new));
        assert!(t.get(&old).is_none());
        assert_eq!(t.position(&new), Some(at));
        assert_eq!(t.get(&new).unwrap().key, new);
        assert_eq!(t.upsert(row(7, 9, 100)), UpsertOutcome::Updated);
        assert_eq!(t.len(), 2_500);
    }
}
