//! Network figures beside the tables' own counters: per-connection send / receive rates over
//! the kernel's own sample window, and per-process byte totals and rates summed over the
//! process's connections in the same mode's table.
//!
//! Both are computed once per refresh ([`ConnectionRates::sample`], [`ProcessNet::build`]),
//! never per cell draw.

// foldhash, as the ordered tables use (bridge/src/table.rs: SipHash was a fifth of the
// apply time at 100k rows); these maps are rebuilt or probed for every row each refresh.
use foldhash::{HashMap, HashMapExt};

use bridge::{
    contract::{ConnectionRow, ProcessRow, RowOrigin},
    store::ModeTables,
    table::ProcessTable,
};
use probe_common::{ConnKey, ProcKey};

/// (sent, received) bytes per second.
pub type ByteRates = (f64, f64);

/// Per-connection send / receive rates over the refresh window.
///
/// Each figure is the growth of the kernel's lifetime byte counters between two of its own
/// samples, divided by the time between those samples, as [`super::process_cpu::ProcessCpu`]
/// does for CPU time: a connection row carries the counters as of its last record
/// (`changed_ns`, the record's kernel time; poll: the state map entry's last write), and the
/// kernel sends a changed counter at most one flush period after the change, so at a sample
/// taken at `now` the counters are known valid until `max(changed_ns, now − flush_period)`.
/// A closed connection's counters are final: its rate is 0 after the window it closed in.
/// Unknown (`None`): first sight of a connection that started before the previous sample,
/// byte counters unknown, or a row whose source changed (/proc seed → kernel).
#[derive(Clone, Debug)]
pub struct ConnectionRates {
    entries: HashMap<ConnKey, RateEntry>,
    epoch: u32,
    previous_horizon_ns: Option<u64>,
    flush_period_ns: u64,
}

impl Default for ConnectionRates {
    fn default() -> Self {
        ConnectionRates::new(100_000_000)
    }
}

/// One connection's baseline. Kept small (56 bytes; it was 80 with `Option`s and a `u64`
/// epoch): with 100k connections it is a hash-table entry per row.
#[derive(Clone, Debug)]
struct RateEntry {
    /// (sent, received) counters of the last sample; meaningful with [`rate_bits::BYTES`].
    bytes: (u64, u64),
    /// Until when `bytes` are known to be the connection's counters.
    valid_ns: u64,
    /// The connection's start as the row has it (a new connection on the same 4-tuple
    /// restarts the baseline).
    start_ns: u64,
    /// Bytes/s over the last window; meaningful with [`rate_bits::RATES`].
    rates: ByteRates,
    /// The sample that last saw the row (equality only: wrapping is harmless).
    epoch: u32,
    /// [`rate_bits`].
    bits: u8,
}

/// Bits of [`RateEntry::bits`] and [`TrafficEntry::bits`].
mod rate_bits {
    /// `bytes` are the counters (else unknown).
    pub const BYTES: u8 = 1;
    /// `rates` are known.
    pub const RATES: u8 = 2;
    /// The row came from /proc (its origin; a kernel row replacing it restarts the baseline).
    pub const PROCFS: u8 = 4;
}

impl RateEntry {
    fn new(
        bytes: Option<(u64, u64)>,
        valid_ns: u64,
        start_ns: u64,
        origin: RowOrigin,
        rates: Option<ByteRates>,
        epoch: u32,
    ) -> Self {
        let mut entry = RateEntry {
            bytes: (0, 0),
            valid_ns,
            start_ns,
            rates: (0.0, 0.0),
            epoch,
            bits: if origin == RowOrigin::Procfs {
                rate_bits::PROCFS
            } else {
                0
            },
        };
        entry.set_bytes(bytes);
        entry.set_rates(rates);
        entry
    }

    fn bytes(&self) -> Option<(u64, u64)> {
        (self.bits & rate_bits::BYTES != 0).then_some(self.bytes)
    }

    fn set_bytes(&mut self, bytes: Option<(u64, u64)>) {
        self.bits &= !rate_bits::BYTES;
        if let Some(b) = bytes {
            self.bytes = b;
            self.bits |= rate_bits::BYTES;
        }
    }

    fn rates(&self) -> Option<ByteRates> {
        (self.bits & rate_bits::RATES != 0).then_some(self.rates)
    }

    fn set_rates(&mut self, rates: Option<ByteRates>) {
        self.bits &= !rate_bits::RATES;
        if let Some(r) = rates {
            self.rates = r;
            self.bits |= rate_bits::RATES;
        }
    }

    fn origin(&self) -> RowOrigin {
        if self.bits & rate_bits::PROCFS != 0 {
            RowOrigin::Procfs
        } else {
            RowOrigin::Kernel
        }
    }
}

/// Bytes per second of `delta` bytes over `window_ns`.
fn per_s(delta: u64, window_ns: u64) -> f64 {
    delta as f64 * 1e9 / window_ns as f64
}

impl ConnectionRates {
    /// A tracker for a session whose kernel flush runs every `flush_period_ns`.
    pub fn new(flush_period_ns: u64) -> Self {
        ConnectionRates {
            entries: HashMap::new(),
            epoch: 0,
            previous_horizon_ns: None,
            flush_period_ns,
        }
    }

    /// Samples every row at `now_ns`. A connection first seen in this sample has no figure,
    /// unless it started after the previous sample (then its whole counters count, from its
    /// start). Entries of rows that are gone are dropped.
    pub fn sample<'a>(&mut self, rows: impl Iterator<Item = &'a ConnectionRow>, now_ns: u64) {
        self.epoch = self.epoch.wrapping_add(1);
        let epoch = self.epoch;
        let horizon = now_ns.saturating_sub(self.flush_period_ns);
        for row in rows {
            let bytes = row.bytes();
            let changed_ns = if row.is_closed() {
                // Final: the counters at close stay valid from then on.
                row.changed_ns.max(row.state.end_ns)
            } else {
                row.changed_ns
            };
            let valid_ns = changed_ns.max(horizon).min(now_ns.max(changed_ns));
            let window = |from: (u64, u64), t0: u64| -> Option<ByteRates> {
                let (sent, received) = bytes?;
                (sent >= from.0 && received >= from.1 && valid_ns > t0).then(|| {
                    (
                        per_s(sent - from.0, valid_ns - t0),
                        per_s(received - from.1, valid_ns - t0),
                    )
                })
            };
            let started_in_window = |row: &ConnectionRow| {
                row.origin == RowOrigin::Kernel
                    && row.start_ns().is_some_and(|start| {
                        self.previous_horizon_ns
                            .is_some_and(|previous| start >= previous)
                    })
            };
            let fresh = started_in_window(row)
                .then(|| window((0, 0), row.state.start_ns))
                .flatten();
            match self.entries.get_mut(&row.key) {
                Some(entry)
                    if entry.origin() == row.origin && entry.start_ns == row.state.start_ns =>
                {
                    let rates = match (entry.bytes(), bytes) {
                        (Some(before), Some(now)) if before == now => Some((0.0, 0.0)),
                        (Some(before), Some(_)) => window(before, entry.valid_ns),
                        _ => None,
                    };
                    entry.set_rates(rates);
                    entry.set_bytes(bytes);
                    entry.valid_ns = valid_ns;
                    entry.epoch = epoch;
                }
                Some(entry) => {
                    // Another connection on the same 4-tuple, or kernel data replacing a seed.
                    let new_connection = entry.start_ns != row.state.start_ns;
                    *entry = RateEntry::new(
                        bytes,
                        valid_ns,
                        row.state.start_ns,
                        row.origin,
                        if new_connection { fresh } else { None },
                        epoch,
                    );
                }
                None => {
                    self.entries.insert(
                        row.key,
                        RateEntry::new(
                            bytes,
                            valid_ns,
                            row.state.start_ns,
                            row.origin,
                            fresh,
                            epoch,
                        ),
                    );
                }
            }
        }
        self.entries.retain(|_, entry| entry.epoch == epoch);
        self.previous_horizon_ns = Some(horizon);
    }

    /// Connections with a baseline (rows seen by the last sample).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// (sent, received) bytes/s of a connection over the last window; `None` when unknown.
    pub fn rates(&self, key: &ConnKey) -> Option<ByteRates> {
        self.entries.get(key).and_then(RateEntry::rates)
    }
}

/// One process's traffic: the sums over its connection rows in the mode's table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessTraffic {
    /// Connection rows the process owns (open and closed, while retention keeps them).
    pub connections: u32,
    /// (sent, received) lifetime payload bytes summed over those rows; `None` when one of
    /// them has unknown counters (the sum would be a guess). `Some((0, 0))` for a process
    /// that owns no connection row.
    pub bytes: Option<(u64, u64)>,
    /// (sent, received) bytes/s summed over those rows' rates; `None` when one of them has
    /// no rate yet.
    pub rates: Option<ByteRates>,
}

const NO_TRAFFIC: ProcessTraffic = ProcessTraffic {
    connections: 0,
    bytes: Some((0, 0)),
    rates: Some((0.0, 0.0)),
};

/// Per-process traffic of one mode, built from that mode's tables.
#[derive(Clone, Debug, Default)]
pub struct ProcessNet {
    by_process: HashMap<ProcKey, TrafficEntry>,
}

/// [`ProcessTraffic`] as stored: 40 bytes where the struct with its `Option`s takes 56 (an
/// entry per process that owns a connection row).
#[derive(Clone, Copy, Debug)]
struct TrafficEntry {
    bytes: (u64, u64),
    rates: ByteRates,
    connections: u32,
    /// [`rate_bits::BYTES`]: `bytes` are the sums; [`rate_bits::RATES`]: `rates` are.
    bits: u8,
}

impl TrafficEntry {
    fn traffic(&self) -> ProcessTraffic {
        ProcessTraffic {
            connections: self.connections,
            bytes: (self.bits & rate_bits::BYTES != 0).then_some(self.bytes),
            rates: (self.bits & rate_bits::RATES != 0).then_some(self.rates),
        }
    }
}

impl ProcessNet {
    /// Sums every connection row of `tables` into its owner's process row, with the rates of
    /// `rates` (`None`: totals only, as `dump` prints them). A connection belongs to the
    /// process row of its owner pid that started last at or before the connection started
    /// (or was first seen), so a connection of an earlier process with the same pid counts
    /// for that process (while its row is retained), never for the later one. A connection
    /// without a known owner, or whose owner has no process row, counts for no process.
    /// O(connections), plus one pass over the process rows when a pid was reused.
    pub fn build(tables: &ModeTables, rates: Option<&ConnectionRates>) -> ProcessNet {
        let mut net = ProcessNet::default();
        net.rebuild(tables, rates);
        net
    }

    /// [`ProcessNet::build`] into this one, reusing its allocation (the dashboard rebuilds
    /// every refresh; a fresh map beside the old one doubled its memory at 100k processes).
    pub fn rebuild(&mut self, tables: &ModeTables, rates: Option<&ConnectionRates>) {
        let by_process = &mut self.by_process;
        by_process.clear();
        let mut owners = OwnerIndex::new(&tables.processes);
        for row in tables.connections.iter() {
            let Some(owner) = owners.owner(row) else {
                continue;
            };
            let traffic = by_process.entry(owner).or_insert(TrafficEntry {
                bytes: (0, 0),
                rates: (0.0, 0.0),
                connections: 0,
                bits: rate_bits::BYTES | rate_bits::RATES,
            });
            traffic.connections += 1;
            match row.bytes() {
                Some((sent, received)) => {
                    traffic.bytes.0 = traffic.bytes.0.saturating_add(sent);
                    traffic.bytes.1 = traffic.bytes.1.saturating_add(received);
                }
                None => traffic.bits &= !rate_bits::BYTES,
            }
            let row_rates = match rates {
                Some(rates) => rates.rates(&row.key),
                None => None,
            };
            match row_rates {
                Some((sent, received)) => {
                    traffic.rates.0 += sent;
                    traffic.rates.1 += received;
                }
                None => traffic.bits &= !rate_bits::RATES,
            }
        }
    }

    /// The traffic of a process (no traffic when it owns no connection row).
    pub fn get(&self, key: &ProcKey) -> ProcessTraffic {
        self.by_process
            .get(key)
            .map_or(NO_TRAFFIC, TrafficEntry::traffic)
    }

    /// The traffic of a process row.
    pub fn of(&self, row: &ProcessRow) -> ProcessTraffic {
        self.get(&row.key)
    }
}

/// A mode's network figures as of the last refresh: its connections' rates and its
/// processes' traffic.
#[derive(Clone, Debug, Default)]
pub struct ModeNet {
    /// Per-connection rates.
    pub connections: ConnectionRates,
    /// Per-process totals and rates.
    pub processes: ProcessNet,
}

impl ModeNet {
    /// Empty figures for a session whose kernel flush runs every `flush_period_ns`.
    pub fn new(flush_period_ns: u64) -> Self {
        ModeNet {
            connections: ConnectionRates::new(flush_period_ns),
            processes: ProcessNet::default(),
        }
    }

    /// The once-per-refresh sample of `tables` at `now_ns`: connection rates, then the
    /// per-process sums.
    pub fn sample(&mut self, tables: &ModeTables, now_ns: u64) {
        self.connections.sample(tables.connections.iter(), now_ns);
        self.processes.rebuild(tables, Some(&self.connections));
    }
}

/// Finds a connection's owning process row: the latest row of its tgid when that one
/// started at or before the connection (the common case, O(1)); else, after a pid reuse, the
/// latest earlier row of that tgid, from an index of all rows built once, on first need.
struct OwnerIndex<'a> {
    processes: &'a ProcessTable,
    by_tgid: Option<HashMap<u32, Vec<u64>>>,
}

impl<'a> OwnerIndex<'a> {
    fn new(processes: &'a ProcessTable) -> Self {
        OwnerIndex {
            processes,
            by_tgid: None,
        }
    }

    fn owner(&mut self, row: &ConnectionRow) -> Option<ProcKey> {
        let tgid = row.owner_pid()?;
        // The connection's start, or when the probes first saw it (its owner existed then);
        // 0 when not even that is known (a /proc row), and any row of the tgid qualifies.
        let reference = row.state.start_ns;
        if let Some(latest) = self.processes.latest_for_tgid(tgid) {
            if reference == 0 || latest.key.start_ns <= reference {
                return Some(latest.key);
            }
        }
        let processes = self.processes;
        let index = self.by_tgid.get_or_insert_with(|| {
            let mut index: HashMap<u32, Vec<u64>> = HashMap::new();
            for p in processes.rows().iter() {
                index.entry(p.key.tgid).or_default().push(p.key.start_ns);
            }
            index
        });
        let start_ns = index
            .get(&tgid)?
            .iter()
            .copied()
            .filter(|start| reference == 0 || *start <= reference)
            .max()?;
        Some(ProcKey::new(tgid, start_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge::{
        contract::{ModeBatch, ModeCounters, ModeKind, RowChange},
        store::TableStore,
        table::Retention,
    };
    use probe_common::conn_flags;

    const S: u64 = 1_000_000_000;
    const MIB: u64 = 1 << 20;

    fn key(sport: u16) -> ConnKey {
        ConnKey::ipv4([127, 0, 0, 1], sport, [127, 0, 0, 1], 80)
    }

    /// A kernel connection row of `pid`, started at `start_ns`, last changed at `changed_ns`.
    fn conn(
        sport: u16,
        pid: u32,
        start_ns: u64,
        bytes: (u64, u64),
        changed_ns: u64,
    ) -> ConnectionRow {
        ConnectionRow {
            key: key(sport),
            state: bridge::contract::ConnInfo {
                pid,
                tcp_state: 1,
                flags: conn_flags::OWNER_KNOWN,
                bytes_sent: bytes.0,
                bytes_received: bytes.1,
                start_ns,
                ..Default::default()
            },
            seq: changed_ns,
            changed_ns,
            origin: RowOrigin::Kernel,
        }
    }

    fn closed(mut row: ConnectionRow, end_ns: u64) -> ConnectionRow {
        row.state.flags |= conn_flags::CLOSED;
        row.state.tcp_state = 7;
        row.state.end_ns = end_ns;
        row.changed_ns = end_ns;
        row.seq += 1;
        row
    }

    fn process(tgid: u32, start_ns: u64, exit_ns: Option<u64>) -> ProcessRow {
        ProcessRow {
            key: ProcKey::new(tgid, start_ns),
            state: bridge::contract::ProcInfo {
                start_ns,
                exit_ns: exit_ns.unwrap_or(0),
                flags: if exit_ns.is_some() {
                    probe_common::proc_flags::EXITED
                } else {
                    0
                },
                ..Default::default()
            },
            seq: start_ns,
            changed_ns: start_ns,
            origin: RowOrigin::Kernel,
        }
    }

    fn close(a: ByteRates, b: ByteRates) -> bool {
        (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6
    }

    #[test]
    fn connection_rates_over_the_kernel_sample_window() {
        let mut rates = ConnectionRates::new(S / 10);
        // Seen first at 10 s, started long before: no window yet.
        let a = conn(1, 7, S, (MIB, 0), 9 * S + S / 2);
        rates.sample([&a].into_iter(), 10 * S);
        assert_eq!(rates.rates(&a.key), None, "first sight has no window");
        // Known valid until 9.9 s (10 s − flush period); the next record, 1 MiB sent and
        // 512 KiB received later, was made at 10.9 s: a 1.0 s window.
        let a2 = conn(1, 7, S, (2 * MIB, MIB / 2), 10 * S + 9 * S / 10);
        // b started within the window (10.5 s): all its bytes count, from its start.
        let b = conn(2, 7, 10 * S + S / 2, (MIB, 0), 10 * S + 9 * S / 10);
        rates.sample([&a2, &b].into_iter(), 11 * S);
        assert!(close(
            rates.rates(&a.key).unwrap(),
            (MIB as f64, MIB as f64 / 2.0)
        ));
        assert!(
            close(rates.rates(&b.key).unwrap(), (MIB as f64 / 0.4, 0.0)),
            "1 MiB over 0.4 s: {:?}",
            rates.rates(&b.key)
        );
        // No record since: the counters did not change, 0 B/s (known, not unknown).
        rates.sample([&a2, &b].into_iter(), 12 * S);
        assert_eq!(rates.rates(&a.key), Some((0.0, 0.0)));
        // a closes at 12.5 s after 1 MiB more: that window counts, later ones are 0. The
        // final counters hold from the close on, so the windows tile time: from 11.9 s (the
        // previous horizon) to 12.9 s (this one), 1 MiB over 1 s.
        let a3 = closed(conn(1, 7, S, (3 * MIB, MIB / 2), 0), 12 * S + S / 2);
        rates.sample([&a3].into_iter(), 13 * S);
        assert!(close(rates.rates(&a.key).unwrap(), (MIB as f64, 0.0)));
        rates.sample([&a3].into_iter(), 14 * S);
        assert_eq!(rates.rates(&a.key), Some((0.0, 0.0)), "closed: 0 after");
        // Gone rows are forgotten.
        assert_eq!(rates.rates(&b.key), None);
    }

    #[test]
    fn unknown_counters_and_reused_tuples() {
        let mut rates = ConnectionRates::new(S / 10);
        let mut seeded = conn(1, 7, 0, (0, 0), 0);
        seeded.state.flags |= conn_flags::BYTES_UNKNOWN | conn_flags::START_UNKNOWN;
        seeded.origin = RowOrigin::Procfs;
        rates.sample([&seeded].into_iter(), 10 * S);
        rates.sample([&seeded].into_iter(), 11 * S);
        assert_eq!(
            rates.rates(&seeded.key),
            None,
            "unknown bytes: unknown rate, never 0"
        );
        // The kernel's record replaces the seed: a new baseline, still unknown.
        let kernel = conn(1, 7, 0, (5 * MIB, 0), 11 * S + S / 2);
        rates.sample([&kernel].into_iter(), 12 * S);
        assert_eq!(rates.rates(&kernel.key), None);
        // Another connection on the same 4-tuple, started in the window, with fewer bytes:
        // no negative rate, its own bytes from its start.
        let again = conn(1, 7, 12 * S + S / 2, (MIB / 2, 0), 12 * S + 9 * S / 10);
        rates.sample([&again].into_iter(), 13 * S);
        assert!(close(
            rates.rates(&again.key).unwrap(),
            (MIB as f64 / 2.0 / 0.4, 0.0)
        ));
    }

    fn tables_with(processes: Vec<ProcessRow>, connections: Vec<ConnectionRow>) -> TableStore {
        let mut store = TableStore::new(0, Retention::default());
        let changes = processes
            .into_iter()
            .map(RowChange::Process)
            .chain(connections.into_iter().map(RowChange::Connection))
            .collect();
        store.apply(ModeBatch {
            mode: ModeKind::Ring,
            changes,
            resync: None,
            counters: ModeCounters::default(),
        });
        store
    }

    #[test]
    fn process_totals_sum_its_connections_open_and_closed() {
        let p = process(100, S, None);
        let other = process(200, S, None);
        let mut unowned = conn(4, 0, 3 * S, (MIB, MIB), 3 * S);
        unowned.state.flags &= !conn_flags::OWNER_KNOWN;
        let store = tables_with(
            vec![p.clone(), other.clone()],
            vec![
                conn(1, 100, 2 * S, (1_000, 10), 2 * S),
                closed(conn(2, 100, 2 * S, (20_000, 200), 0), 3 * S),
                conn(3, 200, 2 * S, (5, 5), 2 * S),
                unowned,
            ],
        );
        let net = ProcessNet::build(store.mode(ModeKind::Ring), None);
        let t = net.get(&p.key);
        assert_eq!(t.connections, 2);
        assert_eq!(t.bytes, Some((21_000, 210)), "closed connections count");
        assert_eq!(t.rates, None, "no rates asked for");
        assert_eq!(net.get(&other.key).bytes, Some((5, 5)));
        // A process without connections: no traffic, known.
        let lonely = process(300, S, None);
        assert_eq!(net.get(&lonely.key), NO_TRAFFIC);
    }

    #[test]
    fn a_reused_pid_does_not_inherit_the_earlier_processes_connections() {
        // pid 100 ran from 1 s to 5 s with a connection; a new pid 100 started at 6 s.
        let earlier = process(100, S, Some(5 * S));
        let later = process(100, 6 * S, None);
        let store = tables_with(
            vec![earlier.clone(), later.clone()],
            vec![
                closed(conn(1, 100, 2 * S, (7_000, 70), 0), 4 * S),
                conn(2, 100, 7 * S, (300, 3), 7 * S),
            ],
        );
        let tables = store.mode(ModeKind::Ring);
        assert_eq!(
            tables.processes.latest_for_tgid(100).unwrap().key,
            later.key
        );
        let net = ProcessNet::build(tables, None);
        assert_eq!(net.get(&later.key).bytes, Some((300, 3)));
        assert_eq!(net.get(&later.key).connections, 1);
        assert_eq!(
            net.get(&earlier.key).bytes,
            Some((7_000, 70)),
            "the earlier process keeps its own"
        );
    }

    #[test]
    fn unknown_counters_make_the_total_unknown() {
        let p = process(100, S, None);
        let mut unknown = conn(2, 100, 0, (0, 0), 0);
        unknown.state.flags |= conn_flags::BYTES_UNKNOWN | conn_flags::START_UNKNOWN;
        unknown.origin = RowOrigin::Procfs;
        unknown.seq = 0;
        let store = tables_with(
            vec![p.clone()],
            vec![conn(1, 100, 2 * S, (1_000, 10), 2 * S), unknown],
        );
        let net = ProcessNet::build(store.mode(ModeKind::Ring), None);
        assert_eq!(net.get(&p.key).bytes, None);
        assert_eq!(net.get(&p.key).connections, 2);
    }

    #[test]
    fn process_rates_sum_connection_rates() {
        let p = process(100, S, None);
        let a = conn(1, 100, 2 * S, (0, 0), 2 * S);
        let b = conn(2, 100, 2 * S, (0, 0), 2 * S);
        let mut store = tables_with(vec![p.clone()], vec![a, b]);
        let mut rates = ConnectionRates::new(S / 10);
        rates.sample(store.mode(ModeKind::Ring).connections.iter(), 10 * S);
        let net = ProcessNet::build(store.mode(ModeKind::Ring), Some(&rates));
        assert_eq!(net.get(&p.key).rates, None, "first sight");
        let a2 = conn(1, 100, 2 * S, (MIB, 0), 10 * S + 9 * S / 10);
        let b2 = conn(2, 100, 2 * S, (0, MIB), 10 * S + 9 * S / 10);
        store.apply(ModeBatch {
            mode: ModeKind::Ring,
            changes: vec![RowChange::Connection(a2), RowChange::Connection(b2)],
            resync: None,
            counters: ModeCounters::default(),
        });
        rates.sample(store.mode(ModeKind::Ring).connections.iter(), 11 * S);
        let net = ProcessNet::build(store.mode(ModeKind::Ring), Some(&rates));
        assert!(close(
            net.get(&p.key).rates.unwrap(),
            (MIB as f64, MIB as f64)
        ));
        assert_eq!(net.get(&p.key).bytes, Some((MIB, MIB)));
    }
}
