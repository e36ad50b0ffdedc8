//! The picture a paused dashboard shows: every mode's tables as they were at the pause.
//!
//! The three modes hold the same kernel truth, so most rows of one mode equal the other
//! modes' rows. The mode on screen is copied whole (its tables are what the view sorts,
//! filters and looks up in); each other mode keeps only a `u32` per row that equals the shown
//! copy's row with the same key, and a copy of each row that differs. Switching modes while
//! paused rebuilds the new mode's tables from that and re-expresses the others against them,
//! so the pause never holds more than one full copy: with 100k process and 100k connection rows
//! in each mode, three full copies were ~90 MB (BENCHMARKS.md, section 10).

use bridge::{
    contract::{ConnectionRow, KernelState, ModeKind, Row},
    store::ModeTables,
    table::{OrderedTable, ProcessTable},
};
use probe_common::{ConnState, ProcState};

/// Marks an entry of [`TableDelta::order`] as an index into [`TableDelta::own`].
const OWN_ROW: u32 = 1 << 31;

/// One table of a mode that is not on screen, against the shown mode's copy of that table.
/// A row counts as shared when its key, state and origin equal the shown copy's row: its
/// version (`seq`, counted per mode) and change time are kept beside it, so a rebuilt row is
/// this mode's own to the last field.
#[derive(Debug)]
struct TableDelta<S: KernelState> {
    /// The mode's rows in its own first-seen order: a position in the shown copy, or
    /// [`OWN_ROW`] | an index into `own`.
    order: Vec<u32>,
    /// Per entry of `order`: the row's `seq` and `changed_ns` in this mode.
    versions: Vec<(u64, u64)>,
    /// The rows whose content differs from (or is missing in) the shown copy.
    own: Vec<Row<S>>,
}

impl<S: KernelState> TableDelta<S> {
    /// `rows` (in order) against `base`.
    fn of<'a>(
        rows: impl ExactSizeIterator<Item = &'a Row<S>>,
        base: &OrderedTable<Row<S>>,
    ) -> Self {
        let mut delta = TableDelta {
            order: Vec::with_capacity(rows.len()),
            versions: Vec::with_capacity(rows.len()),
            own: Vec::new(),
        };
        for row in rows {
            let shared = base.position(&row.key).filter(|&position| {
                base.get_index(position)
                    .is_some_and(|b| b.state == row.state && b.origin == row.origin)
            });
            match shared {
                Some(position) => delta.order.push(position as u32),
                None => {
                    delta.order.push(OWN_ROW | delta.own.len() as u32);
                    delta.own.push(row.clone());
                }
            }
            delta.versions.push((row.seq, row.changed_ns));
        }
        delta.own.shrink_to_fit();
        delta
    }

    /// The mode's rows, in order, rebuilt over `base`.
    fn rows(&self, base: &OrderedTable<Row<S>>) -> Vec<Row<S>> {
        self.order
            .iter()
            .zip(&self.versions)
            .filter_map(|(&entry, &(seq, changed_ns))| {
                let mut row = if entry & OWN_ROW != 0 {
                    self.own.get((entry & !OWN_ROW) as usize)?.clone()
                } else {
                    base.get_index(entry as usize)?.clone()
                };
                row.seq = seq;
                row.changed_ns = changed_ns;
                Some(row)
            })
            .collect()
    }

    /// Rows this delta keeps a copy of.
    fn own_rows(&self) -> usize {
        self.own.len()
    }
}

/// A mode that is not on screen: its two tables as deltas.
#[derive(Debug)]
struct ModeDelta {
    processes: TableDelta<ProcState>,
    connections: TableDelta<ConnState>,
}

/// Every mode's tables at the moment of the pause, one of them (the shown one) whole.
#[derive(Debug)]
pub struct FrozenTables {
    shown: ModeKind,
    processes: ProcessTable,
    connections: OrderedTable<ConnectionRow>,
    /// Indexed by [`ModeKind::index`]; `None` for the shown mode.
    others: [Option<ModeDelta>; 3],
}

impl FrozenTables {
    /// Copies the modes' tables (`modes[ModeKind::index]`) as they are now, `shown` whole and
    /// the other modes as deltas.
    pub fn capture(modes: [&ModeTables; 3], shown: ModeKind) -> Self {
        let tables = modes[shown.index()];
        let processes = ProcessTable::from_rows(
            tables.processes.rows().iter().cloned().collect(),
            tables.processes.start_tolerance_ns(),
        );
        let connections = OrderedTable::from_rows(tables.connections.iter().cloned().collect());
        let others = ModeKind::ALL.map(|mode| {
            (mode != shown).then(|| {
                let theirs = modes[mode.index()];
                ModeDelta {
                    processes: TableDelta::of(theirs.processes.rows().iter(), processes.rows()),
                    connections: TableDelta::of(theirs.connections.iter(), &connections),
                }
            })
        });
        FrozenTables {
            shown,
            processes,
            connections,
            others,
        }
    }

    /// The mode whose tables are whole.
    pub fn shown(&self) -> ModeKind {
        self.shown
    }

    /// Makes `mode` the whole one: its tables are rebuilt from its delta, and every other mode
    /// (the one shown until now included) is re-expressed against them. Rows are as at the
    /// pause; nothing is read from the live store.
    pub fn show(&mut self, mode: ModeKind) {
        if mode == self.shown {
            return;
        }
        let old_processes = &self.processes;
        let old_connections = &self.connections;
        let Some(delta) = self.others[mode.index()].take() else {
            return;
        };
        let processes = ProcessTable::from_rows(
            delta.processes.rows(old_processes.rows()),
            old_processes.start_tolerance_ns(),
        );
        let connections = OrderedTable::from_rows(delta.connections.rows(old_connections));
        let mut others: [Option<ModeDelta>; 3] = [None, None, None];
        for other in ModeKind::ALL {
            if other == mode {
                continue;
            }
            let delta = if other == self.shown {
                // The old whole copy is read in place, not copied first.
                ModeDelta {
                    processes: TableDelta::of(old_processes.rows().iter(), processes.rows()),
                    connections: TableDelta::of(old_connections.iter(), &connections),
                }
            } else {
                let Some(d) = &self.others[other.index()] else {
                    continue;
                };
                ModeDelta {
                    processes: TableDelta::of(
                        d.processes.rows(old_processes.rows()).iter(),
                        processes.rows(),
                    ),
                    connections: TableDelta::of(
                        d.connections.rows(old_connections).iter(),
                        &connections,
                    ),
                }
            };
            others[other.index()] = Some(delta);
        }
        self.shown = mode;
        self.processes = processes;
        self.connections = connections;
        self.others = others;
    }

    /// The shown mode's processes.
    pub fn processes(&self) -> &ProcessTable {
        &self.processes
    }

    /// The shown mode's connections.
    pub fn connections(&self) -> &OrderedTable<ConnectionRow> {
        &self.connections
    }

    /// Rows copied whole: the shown mode's, plus those of the other modes that differ from
    /// them (what the pause costs, in rows).
    pub fn copied_rows(&self) -> usize {
        self.processes.rows().len()
            + self.connections.len()
            + self
                .others
                .iter()
                .flatten()
                .map(|d| d.processes.own_rows() + d.connections.own_rows())
                .sum::<usize>()
    }

    /// A mode's tables as they were at the pause, rebuilt (for tests and checks: the view
    /// reads only the shown mode).
    #[cfg(test)]
    fn rows_of(&self, mode: ModeKind) -> (Vec<Row<ProcState>>, Vec<ConnectionRow>) {
        if mode == self.shown {
            return (
                self.processes.rows().iter().cloned().collect(),
                self.connections.iter().cloned().collect(),
            );
        }
        let delta = self.others[mode.index()]
            .as_ref()
            .expect("a delta per other mode");
        (
            delta.processes.rows(self.processes.rows()),
            delta.connections.rows(&self.connections),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge::contract::{ConnInfo, ProcInfo, ProcessRow, RowOrigin};
    use probe_common::{ConnKey, ProcKey};

    fn process(tgid: u32, seq: u64, cpu_ns: u64) -> ProcessRow {
        ProcessRow {
            key: ProcKey::new(tgid, 1_000 + tgid as u64),
            seq,
            changed_ns: seq,
            origin: RowOrigin::Kernel,
            state: ProcInfo {
                cpu_ns,
                ..ProcInfo::default()
            },
        }
    }

    fn connection(port: u16, seq: u64, bytes_sent: u64) -> ConnectionRow {
        ConnectionRow {
            key: ConnKey {
                family: probe_common::AF_INET,
                sport: port,
                dport: 80,
                pad: 0,
                saddr: [0; 16],
                daddr: [0; 16],
            },
            seq,
            changed_ns: seq,
            origin: RowOrigin::Kernel,
            state: ConnInfo {
                bytes_sent,
                ..ConnInfo::default()
            },
        }
    }

    /// Three modes that hold the same rows except where each mode is behind or ahead.
    fn modes() -> [ModeTables; 3] {
        let mut modes = ModeKind::ALL.map(|_| ModeTables::new(0));
        for mode in ModeKind::ALL {
            let tables = &mut modes[mode.index()];
            for tgid in 1..=50 {
                // Mode-dependent CPU time for every tenth process: those rows differ.
                let cpu = if tgid % 10 == 0 {
                    mode.index() as u64
                } else {
                    7
                };
                // Sequence numbers are per mode: equal content, different versions.
                let seq = tgid as u64 * 10 + mode.index() as u64;
                tables.processes.upsert(process(tgid, seq, cpu));
            }
            for port in 1..=30 {
                let seq = port as u64 * 10 + mode.index() as u64;
                tables.connections.upsert(connection(port, seq, 100));
            }
        }
        // Only poll has seen process 99 and connection 99; perf lacks connection 5's latest.
        let poll = &mut modes[ModeKind::Poll.index()];
        poll.processes.upsert(process(99, 99, 1));
        poll.connections.upsert(connection(99, 99, 1));
        poll.connections.upsert(connection(5, 500, 555));
        modes[ModeKind::Ring.index()]
            .connections
            .upsert(connection(5, 500, 555));
        modes
    }

    fn refs(modes: &[ModeTables; 3]) -> [&ModeTables; 3] {
        [&modes[0], &modes[1], &modes[2]]
    }

    fn rows_now(tables: &ModeTables) -> (Vec<ProcessRow>, Vec<ConnectionRow>) {
        (
            tables.processes.rows().iter().cloned().collect(),
            tables.connections.iter().cloned().collect(),
        )
    }

    #[test]
    fn every_mode_is_kept_as_it_was_and_only_the_differing_rows_are_copied_twice() {
        let modes = modes();
        let frozen = FrozenTables::capture(refs(&modes), ModeKind::Ring);
        for mode in ModeKind::ALL {
            assert_eq!(
                frozen.rows_of(mode),
                rows_now(&modes[mode.index()]),
                "{mode:?}"
            );
        }
        // Ring whole: 50 + 30 rows. Perf differs in 5 processes and connection 5; poll in 5
        // processes and process 99 / connection 99 (connection 5 equals ring's).
        assert_eq!(frozen.copied_rows(), 80 + 6 + 7);
    }

    #[test]
    fn switching_modes_while_paused_shows_each_mode_as_at_the_pause_not_as_now() {
        let mut modes = modes();
        let mut frozen = FrozenTables::capture(refs(&modes), ModeKind::Ring);
        let at_pause: Vec<_> = modes.iter().map(rows_now).collect();
        // Collection goes on underneath.
        for tables in &mut modes {
            tables.processes.upsert(process(1, 1_000, 123));
            tables.connections.upsert(connection(200, 1, 1));
        }
        for mode in [
            ModeKind::Poll,
            ModeKind::Perf,
            ModeKind::Ring,
            ModeKind::Poll,
        ] {
            frozen.show(mode);
            assert_eq!(frozen.shown(), mode);
            let shown = (
                frozen
                    .processes()
                    .rows()
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>(),
                frozen.connections().iter().cloned().collect::<Vec<_>>(),
            );
            assert_eq!(shown, at_pause[mode.index()], "{mode:?} shown");
            for other in ModeKind::ALL {
                assert_eq!(
                    frozen.rows_of(other),
                    at_pause[other.index()],
                    "{other:?} kept"
                );
            }
            assert_eq!(
                frozen.processes().latest_for_tgid(99).is_some(),
                mode == ModeKind::Poll,
                "the tgid index follows the shown mode"
            );
        }
    }
}
