//! The table store: one [`ModeTables`] per mode, owned by one thread (the store owner), which
//! applies [`ModeBatch`]es in arrival order. Views read it; nothing else writes it.

use crate::{
    cmdlines::{CommandLine, CommandLines},
    contract::{
        ConnectionRow, Entity, KernelState, ModeBatch, ModeCounters, ModeKind, ModeMessage,
        ProcessRow, Resync, Row, RowChange, RowOrigin,
    },
    stats::{monotonic_ns, ApplyStats, ModeStats},
    table::{OrderedTable, ProcessTable, Retention, UpsertOutcome},
};
use probe_common::{ConnState, ProcState};

/// The two tables of one mode, with that mode's stats.
#[derive(Debug)]
pub struct ModeTables {
    /// Processes in first-seen order.
    pub processes: ProcessTable,
    /// TCP connections in first-seen order.
    pub connections: OrderedTable<ConnectionRow>,
    /// Apply-side stats (lag, applied count).
    pub apply: ApplyStats,
    /// The mode's own counters, as of its last batch.
    pub counters: ModeCounters,
    /// Whether this mode is running (has sent at least one batch and has not failed).
    pub active: bool,
    /// Why the mode stopped, if it failed.
    pub failure: Option<String>,
}

impl ModeTables {
    /// Empty tables of a mode that has not run yet (see [`ProcessTable::new`] for the
    /// tolerance).
    pub fn new(start_tolerance_ns: u64) -> Self {
        ModeTables {
            processes: ProcessTable::new(start_tolerance_ns),
            connections: OrderedTable::new(),
            apply: ApplyStats::default(),
            counters: ModeCounters::default(),
            active: false,
            failure: None,
        }
    }

    /// The owner's process name as it is now (as `ss -p` shows it): the `comm` of the owner's
    /// process row in this mode's table when that row is the same process (it started before
    /// the connection), else the name recorded with the connection. `None` when the owner is
    /// unknown.
    pub fn owner_comm(&self, row: &ConnectionRow) -> Option<String> {
        let pid = row.owner_pid()?;
        let same_process = self.processes.latest_for_tgid(pid).filter(|p| {
            row.start_ns()
                .is_none_or(|started| p.key.start_ns <= started)
        });
        Some(same_process.map_or_else(|| row.comm(), |p| p.comm()))
    }

    /// Allocated bytes of this mode's tables (see [`OrderedTable::allocated_bytes`]).
    pub fn table_bytes(&self) -> u64 {
        self.processes.rows().allocated_bytes() + self.connections.allocated_bytes()
    }
}

/// How long the command line of a process no table holds is kept (see [`TableStore::reap`]).
const CMDLINE_GRACE_NS: u64 = 60_000_000_000;

/// All modes' tables, and the command lines of their processes (shared by the modes).
#[derive(Debug)]
pub struct TableStore {
    modes: [ModeTables; 3],
    cmdlines: CommandLines,
    retention: Retention,
}

impl TableStore {
    /// An empty store. `start_tolerance_ns` is how far /proc start times may be from the
    /// kernel's (one clock tick plus slack); `retention` bounds finished rows.
    pub fn new(start_tolerance_ns: u64, retention: Retention) -> Self {
        TableStore {
            modes: [
                ModeTables::new(start_tolerance_ns),
                ModeTables::new(start_tolerance_ns),
                ModeTables::new(start_tolerance_ns),
            ],
            cmdlines: CommandLines::default(),
            retention,
        }
    }

    /// The tables of one mode.
    pub fn mode(&self, mode: ModeKind) -> &ModeTables {
        &self.modes[mode.index()]
    }

    /// The command line of the process of `row` (any mode's row of it), if known (see
    /// [`CommandLines::of`]).
    pub fn cmdline(&self, row: &ProcessRow) -> Option<&CommandLine> {
        self.cmdlines.of(row)
    }

    /// Every known command line.
    pub fn cmdlines(&self) -> &CommandLines {
        &self.cmdlines
    }

    /// Sets command lines as a collector's store holds them (a replica taking its snapshot).
    pub fn restore_cmdlines(
        &mut self,
        lines: impl IntoIterator<Item = (probe_common::ProcKey, CommandLine)>,
    ) {
        for (key, line) in lines {
            self.cmdlines.insert(key, line);
        }
    }

    /// Retention in force.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Seeds every mode's tables with rows read from /proc (origin `Procfs`, seq 0).
    pub fn seed(&mut self, processes: &[ProcessRow], connections: &[ConnectionRow]) {
        for tables in &mut self.modes {
            for row in processes {
                tables.processes.upsert(row.clone());
            }
            for row in connections {
                tables.connections.upsert(row.clone());
            }
        }
    }

    /// Applies one batch: the resync first (if any), then the changes in order.
    pub fn apply(&mut self, batch: ModeBatch) {
        let tables = &mut self.modes[batch.mode.index()];
        tables.active = true;
        tables.counters = batch.counters;
        let now = monotonic_ns();
        if let Some(resync) = batch.resync {
            apply_resync(tables, resync);
        }
        for change in batch.changes {
            match change {
                RowChange::Process(row) => apply_change(tables, row, now),
                RowChange::Connection(row) => apply_change(tables, row, now),
            }
        }
    }

    /// Applies one message from a mode: a batch, or the news that the mode failed.
    pub fn handle(&mut self, message: ModeMessage) {
        match message {
            ModeMessage::Batch(batch) => self.apply(batch),
            ModeMessage::Failed { mode, error } => self.mark_failed(mode, error),
            ModeMessage::CommandLines(entries) => {
                self.cmdlines.absorb(&entries);
            }
        }
    }

    /// Records that a mode failed; its tables keep what they had.
    pub fn mark_failed(&mut self, mode: ModeKind, error: String) {
        let tables = &mut self.modes[mode.index()];
        tables.failure = Some(error);
        tables.active = false;
    }

    /// Reaps finished rows in every mode according to the retention. Returns rows removed.
    pub fn reap(&mut self, now_ns: u64) -> usize {
        let retention = self.retention;
        let reaped = self
            .modes
            .iter_mut()
            .map(|t| t.processes.reap(now_ns, retention) + t.connections.reap(now_ns, retention))
            .sum();
        if reaped > 0 {
            // A command line can arrive before its process's row (poll shows a process up to
            // an interval late): keep young processes' lines whether or not a row holds them.
            let young_ns = now_ns.saturating_sub(CMDLINE_GRACE_NS);
            let modes = &self.modes;
            self.cmdlines.retain(|key| {
                let holder = if key.pad != 0 {
                    // A /proc line: kept while the table holds that pid's seeded process.
                    modes.iter().any(|t| {
                        t.processes
                            .latest_for_tgid(key.tgid)
                            .is_some_and(ProcessRow::predates_probes)
                    })
                } else {
                    modes.iter().any(|t| t.processes.rows().get(key).is_some())
                };
                holder || key.start_ns >= young_ns
            });
        }
        reaped
    }

    /// Combined stats of one mode as of now.
    pub fn stats(&self, mode: ModeKind) -> ModeStats {
        let tables = self.mode(mode);
        ModeStats::combine(
            mode,
            &tables.counters,
            &tables.apply,
            tables.table_bytes(),
            (tables.processes.rows().len(), tables.connections.len()),
            monotonic_ns(),
        )
    }
}

/// One mode's tables as rows in first-seen order, with the mode's counters and status: what a
/// collector sends an attached viewer, whose [`TableStore::restore`] rebuilds the same tables.
/// The lag histogram is not part of it: a replica measures its own lag (kernel change to its
/// own apply).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModeImage {
    /// The processes table, first-seen order.
    pub processes: Vec<ProcessRow>,
    /// The connections table, first-seen order.
    pub connections: Vec<ConnectionRow>,
    /// The mode's counters as of its last batch.
    pub counters: ModeCounters,
    /// See [`ModeTables::active`].
    pub active: bool,
    /// See [`ModeTables::failure`].
    pub failure: Option<String>,
    /// Changes applied so far ([`ApplyStats::applied`]).
    pub applied: u64,
    /// Changes found stale so far ([`ApplyStats::stale`]).
    pub stale: u64,
}

impl TableStore {
    /// A copy of one mode's tables (see [`ModeImage`]).
    pub fn image(&self, mode: ModeKind) -> ModeImage {
        let tables = self.mode(mode);
        ModeImage {
            processes: tables.processes.rows().iter().cloned().collect(),
            connections: tables.connections.iter().cloned().collect(),
            counters: tables.counters.clone(),
            active: tables.active,
            failure: tables.failure.clone(),
            applied: tables.apply.applied,
            stale: tables.apply.stale,
        }
    }

    /// Replaces one mode's tables with `image`. The rows are inserted in the image's order, so
    /// first-seen order, /proc rows awaiting their kernel key and the per-tgid index come out
    /// as in the store the image was taken from; the lag histogram starts empty.
    pub fn restore(&mut self, mode: ModeKind, image: ModeImage) {
        let tolerance = self.modes[mode.index()].processes.start_tolerance_ns();
        let mut tables = ModeTables::new(tolerance);
        for row in image.processes {
            tables.processes.upsert(row);
        }
        for row in image.connections {
            tables.connections.upsert(row);
        }
        tables.counters = image.counters;
        tables.active = image.active;
        tables.failure = image.failure;
        tables.apply.applied = image.applied;
        tables.apply.stale = image.stale;
        self.modes[mode.index()] = tables;
    }
}

/// A table of the store, as the generic apply path sees it: the same operations on the
/// process table (with its /proc re-keying) and on the connection table.
trait StoreTable<R> {
    fn upsert(&mut self, row: R) -> UpsertOutcome;
    fn retain(&mut self, keep: impl FnMut(&R) -> bool);
}

impl StoreTable<ProcessRow> for ProcessTable {
    fn upsert(&mut self, row: ProcessRow) -> UpsertOutcome {
        ProcessTable::upsert(self, row)
    }
    fn retain(&mut self, keep: impl FnMut(&ProcessRow) -> bool) {
        ProcessTable::retain(self, keep)
    }
}

impl<R: Entity> StoreTable<R> for OrderedTable<R> {
    fn upsert(&mut self, row: R) -> UpsertOutcome {
        OrderedTable::upsert(self, row)
    }
    fn retain(&mut self, keep: impl FnMut(&R) -> bool) {
        OrderedTable::retain(self, keep)
    }
}

/// A kernel state kind and the table of a [`ModeTables`] that holds its rows.
trait StoredState: KernelState {
    type Table: StoreTable<Row<Self>>;
    fn table_mut(tables: &mut ModeTables) -> &mut Self::Table;
}

impl StoredState for ProcState {
    type Table = ProcessTable;
    fn table_mut(tables: &mut ModeTables) -> &mut ProcessTable {
        &mut tables.processes
    }
}

impl StoredState for ConnState {
    type Table = OrderedTable<ConnectionRow>;
    fn table_mut(tables: &mut ModeTables) -> &mut OrderedTable<ConnectionRow> {
        &mut tables.connections
    }
}

/// Applies one change and records its lag (and whether it was stale) at `now_ns`.
fn apply_change<S: StoredState>(tables: &mut ModeTables, row: Row<S>, now_ns: u64) {
    let changed_ns = row.changed_ns;
    let outcome = S::table_mut(tables).upsert(row);
    tables
        .apply
        .record_apply(changed_ns, now_ns, outcome == UpsertOutcome::Stale);
}

/// Applies a picture of the state maps to a mode's tables. Every entry is upserted with the
/// resync's seq, so only newer records override it. A reseed after loss also removes live
/// kernel rows that are no longer in the maps (their exit was lost and the entry already
/// reaped, or an LRU map evicted them) — but only when the maps are complete: after a failed
/// insert (map full) absence proves nothing, and a live row is kept. The first listing removes
/// nothing. Finished rows and /proc rows stay until retention or a kernel change.
fn apply_resync(tables: &mut ModeTables, resync: Resync) {
    let remove_absent = resync.complete && !resync.initial;
    resync_table(tables, resync.processes, remove_absent);
    resync_table(tables, resync.connections, remove_absent);
}

/// One table's part of [`apply_resync`].
fn resync_table<S: StoredState>(tables: &mut ModeTables, rows: Vec<Row<S>>, remove_absent: bool) {
    let table = S::table_mut(tables);
    if remove_absent {
        let live: std::collections::HashSet<S::Key> = rows.iter().map(|r| r.key).collect();
        table.retain(|r| r.origin == RowOrigin::Procfs || r.is_finished() || live.contains(&r.key));
    }
    // The resync's seq is the highest the mode had seen when it read the map: a row already
    // holding that seq is current; older rows are replaced.
    for row in rows {
        table.upsert(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ProcInfo;
    use probe_common::{proc_flags, ProcKey};

    fn proc_row(tgid: u32, seq: u64, exited: bool) -> ProcessRow {
        ProcessRow {
            key: ProcKey::new(tgid, tgid as u64),
            state: ProcInfo {
                flags: if exited { proc_flags::EXITED } else { 0 },
                exit_ns: if exited { 10 } else { 0 },
                ..Default::default()
            },
            seq,
            changed_ns: 1,
            origin: RowOrigin::Kernel,
        }
    }

    fn batch(mode: ModeKind, changes: Vec<RowChange>, resync: Option<Resync>) -> ModeBatch {
        ModeBatch {
            mode,
            changes,
            resync,
            counters: ModeCounters::default(),
        }
    }

    #[test]
    fn batches_go_to_their_mode_only() {
        let mut store = TableStore::new(0, Retention::default());
        store.apply(batch(
            ModeKind::Perf,
            vec![RowChange::Process(proc_row(1, 1, false))],
            None,
        ));
        assert_eq!(store.mode(ModeKind::Perf).processes.rows().len(), 1);
        assert_eq!(store.mode(ModeKind::Ring).processes.rows().len(), 0);
        let stats = store.stats(ModeKind::Perf);
        assert_eq!(stats.events, 1);
        assert_eq!(stats.mode, "perf");
        assert!(stats.lag_max_ns > 0);
    }

    #[test]
    fn resync_converges_to_the_map() {
        let mut store = TableStore::new(0, Retention::default());
        store.apply(batch(
            ModeKind::Ring,
            vec![
                RowChange::Process(proc_row(1, 1, false)),
                RowChange::Process(proc_row(2, 2, false)),
                RowChange::Process(proc_row(3, 3, true)),
            ],
            None,
        ));
        // The map no longer has 1 (reaped after a lost exit); 2 exited meanwhile; 4 is new.
        let resync = Resync {
            processes: vec![proc_row(2, 10, true), proc_row(4, 10, false)],
            connections: vec![],
            complete: true,
            initial: false,
        };
        store.apply(batch(ModeKind::Ring, vec![], Some(resync)));
        let tgids: Vec<(u32, bool)> = store
            .mode(ModeKind::Ring)
            .processes
            .rows()
            .iter()
            .map(|r| (r.key.tgid, r.is_exited()))
            .collect();
        assert_eq!(tgids, vec![(2, true), (3, true), (4, false)]);
        // An in-flight record older than the resync is stale.
        store.apply(batch(
            ModeKind::Ring,
            vec![RowChange::Process(proc_row(2, 5, false))],
            None,
        ));
        assert!(store
            .mode(ModeKind::Ring)
            .processes
            .rows()
            .iter()
            .next()
            .unwrap()
            .is_exited());
        assert_eq!(store.stats(ModeKind::Ring).stale, 1);
    }

    #[test]
    fn an_image_restores_the_same_tables() {
        let mut store = TableStore::new(0, Retention::default());
        let seed = ProcessRow::from_procfs(ProcKey::new(9, 100), ProcState::default());
        store.seed(&[seed], &[]);
        // 3, an exited 1, then 3 again (stale).
        let changes = [(3, 1, false), (1, 2, true), (3, 1, false)]
            .map(|(tgid, seq, exited)| RowChange::Process(proc_row(tgid, seq, exited)));
        store.apply(batch(ModeKind::Poll, changes.to_vec(), None));
        store.mark_failed(ModeKind::Poll, "gone".into());
        let image = store.image(ModeKind::Poll);
        let mut replica = TableStore::new(0, Retention::default());
        replica.restore(ModeKind::Poll, image.clone());
        assert_eq!(replica.image(ModeKind::Poll), image);
        let tgids = |s: &TableStore| -> Vec<u32> {
            s.mode(ModeKind::Poll)
                .processes
                .rows()
                .iter()
                .map(|r| r.key.tgid)
                .collect()
        };
        assert_eq!(tgids(&replica), [9, 3, 1], "first-seen order is kept");
        let (ours, theirs) = (store.stats(ModeKind::Poll), replica.stats(ModeKind::Poll));
        assert_eq!((theirs.events, theirs.stale), (ours.events, ours.stale));
        assert_eq!(theirs.lag_max_ns, 0, "a replica measures its own lag");
        assert_eq!(
            replica.mode(ModeKind::Poll).failure.as_deref(),
            Some("gone")
        );
        assert_eq!(replica.mode(ModeKind::Ring).processes.rows().len(), 0);
    }

    #[test]
    fn resync_of_an_incomplete_map_keeps_live_rows() {
        let mut store = TableStore::new(0, Retention::default());
        let live: Vec<RowChange> = (1..=5)
            .map(|i| RowChange::Process(proc_row(i, i as u64, false)))
            .collect();
        store.apply(batch(ModeKind::Perf, live, None));
        // The map was full: it holds only process 1 (and a new process 6).
        let resync = Resync {
            processes: vec![proc_row(1, 20, false), proc_row(6, 20, false)],
            connections: vec![],
            complete: false,
            initial: false,
        };
        store.apply(batch(ModeKind::Perf, vec![], Some(resync)));
        let tgids: Vec<u32> = store
            .mode(ModeKind::Perf)
            .processes
            .rows()
            .iter()
            .map(|r| r.key.tgid)
            .collect();
        assert_eq!(tgids, vec![1, 2, 3, 4, 5, 6], "no live row may be dropped");
        // The first listing never removes anything either, even from a complete map.
        let list = Resync {
            processes: vec![proc_row(7, 30, false)],
            connections: vec![],
            complete: true,
            initial: true,
        };
        store.apply(batch(ModeKind::Perf, vec![], Some(list)));
        assert_eq!(store.mode(ModeKind::Perf).processes.rows().len(), 7);
    }
}
