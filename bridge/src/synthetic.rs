//! A synthetic source of mode batches, for tests and benchmarks of the store and the views.
//!
//! **Nothing here comes from a kernel.** [`SyntheticSource`] invents a plausible little world —
//! processes with pids, parents, users, `comm`s and CPU time; TCP connections with 4-tuples,
//! states, owners and byte counts — and evolves it step by step, producing the same
//! [`ModeBatch`]es a real mode would send, so the store and the dashboard can be driven without
//! probes or privileges. It is deterministic: the same seed and the same calls give the same
//! batches. It is never wired to the product's data path; only tests and benches build one.
//!
//! Times are CLOCK_MONOTONIC-like ns supplied by the caller (a fixed origin in deterministic
//! tests, [`crate::stats::monotonic_ns`] where lag figures should look real).

use probe_common::{
    conn_flags, proc_flags, ConnKey, ConnState, ProcKey, ProcState, AF_INET, AF_INET6, COMM_LEN,
};

use crate::contract::{ConnectionRow, ModeBatch, ModeCounters, ModeKind, ProcessRow, RowChange};

/// Names given to invented processes (typical of a small server).
const PROCESS_NAMES: &[&str] = &[
    "systemd",
    "sshd",
    "nginx",
    "postgres",
    "redis-server",
    "bash",
    "sleep",
    "cron",
    "containerd",
    "node",
    "python3",
    "rsyslogd",
    "chronyd",
    "vim",
    "curl",
    "sh",
];

/// Short-lived commands forked during [`SyntheticSource::step`].
const SHORT_LIVED_NAMES: &[&str] = &["sh", "curl", "sleep", "grep", "awk", "date", "git"];

/// Local listening ports of invented servers.
const LISTEN_PORTS: &[u16] = &[22, 80, 443, 5432, 6379, 8080];

/// TCP states used for invented connections (kernel numbering): mostly established.
const CONNECTION_STATES: &[u32] = &[1, 1, 1, 1, 1, 1, 2, 6, 8, 4];

/// Small deterministic PRNG (SplitMix64): enough for plausible data, no dependency.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn comm_bytes(name: &str) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    let len = name.len().min(COMM_LEN - 1);
    comm[..len].copy_from_slice(&name.as_bytes()[..len]);
    comm
}

/// How big the invented world is and how fast it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticShape {
    /// Live processes at the start.
    pub processes: usize,
    /// Connections at the start.
    pub connections: usize,
    /// Percentage of live processes whose CPU time advances in each step.
    pub busy_percent: u64,
    /// Short-lived processes forked (and, later, exited) per step.
    pub churn_per_step: usize,
}

impl Default for SyntheticShape {
    fn default() -> Self {
        SyntheticShape {
            processes: 120,
            connections: 40,
            busy_percent: 30,
            churn_per_step: 3,
        }
    }
}

/// A deterministic generator of plausible (invented) process and connection changes.
#[derive(Clone, Debug)]
pub struct SyntheticSource {
    rng: SplitMix64,
    shape: SyntheticShape,
    now_ns: u64,
    next_pid: u32,
    next_ephemeral_port: u16,
    processes: Vec<(ProcKey, ProcState)>,
    connections: Vec<(ConnKey, ConnState)>,
    /// Per mode, per table: the last sequence number handed out.
    seq: [[u64; 2]; 3],
    counters: [ModeCounters; 3],
    started_ns: u64,
}

impl SyntheticSource {
    /// A world of the default shape, seeded with `seed`, whose clock starts at `start_ns`.
    pub fn new(seed: u64, start_ns: u64) -> Self {
        Self::with_shape(seed, start_ns, SyntheticShape::default())
    }

    /// A world of the given shape, seeded with `seed`, whose clock starts at `start_ns`.
    pub fn with_shape(seed: u64, start_ns: u64, shape: SyntheticShape) -> Self {
        let mut source = SyntheticSource {
            rng: SplitMix64(seed),
            shape,
            now_ns: start_ns,
            next_pid: 1,
            next_ephemeral_port: 40000,
            processes: Vec::with_capacity(shape.processes),
            connections: Vec::with_capacity(shape.connections),
            seq: [[0; 2]; 3],
            counters: Default::default(),
            started_ns: start_ns,
        };
        for index in 0..shape.processes {
            let name = match PROCESS_NAMES.get(index) {
                Some(name) => name,
                None => source.rng.pick(PROCESS_NAMES),
            };
            // Long-lived: started up to a day before the clock origin (but not before 0).
            let age = source.rng.below(86_400_000_000_000).min(start_ns);
            let cpu_ns = source.rng.below(5_000_000_000);
            source.spawn_process(name, start_ns - age, cpu_ns);
        }
        for _ in 0..shape.connections {
            source.open_connection();
        }
        source
    }

    /// The synthetic clock: the time of the last step, ns.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Every entity as it is now, as changes (what a full resync would list). No sequence
    /// numbers yet: [`SyntheticSource::batch`] stamps them per mode.
    pub fn snapshot(&self) -> Vec<RowChange> {
        let processes = self.processes.iter().map(|(key, state)| {
            RowChange::Process(ProcessRow::from_record(*key, *state, 0, self.now_ns))
        });
        let connections = self.connections.iter().map(|(key, state)| {
            RowChange::Connection(ConnectionRow::from_record(*key, *state, 0, self.now_ns))
        });
        processes.chain(connections).collect()
    }

    /// Advances the clock by `elapsed_ns` and evolves the world: CPU time accrues, short-lived
    /// processes are forked and exit, connections open, move bytes and close. Returns the
    /// changes (without sequence numbers). Finished entities are forgotten after their final
    /// change, as the kernel forgets them after reaping.
    pub fn step(&mut self, elapsed_ns: u64) -> Vec<RowChange> {
        self.now_ns += elapsed_ns;
        let now = self.now_ns;
        let mut changes = Vec::new();

        let live = self.processes.len();
        for index in 0..live {
            if self.rng.chance(self.shape.busy_percent) {
                let share = self.rng.below(elapsed_ns / 4 + 1);
                let running = self.rng.chance(30);
                let (key, state) = &mut self.processes[index];
                state.cpu_ns += share;
                state.sampled_ns = now;
                // Busy processes are sampled running or back asleep (ps R / S).
                state.task_state = if running { 0 } else { 1 };
                changes.push(process_change(*key, *state, now));
            }
        }

        // Exit some earlier short-lived processes (never pid 1..=16, the long-lived core).
        let mut exits = 0;
        let mut index = 0;
        while index < self.processes.len() && exits < self.shape.churn_per_step {
            let short_lived = self.processes[index].0.tgid > PROCESS_NAMES.len() as u32
                && SHORT_LIVED_NAMES.contains(&comm_str(&self.processes[index].1.comm));
            if short_lived && self.rng.chance(50) {
                let (key, mut state) = self.processes.remove(index);
                state.flags |= proc_flags::EXITED;
                state.exit_ns = now;
                state.sampled_ns = now;
                // Reaped at once (ps would show nothing; the row shows X, dead).
                state.task_state = probe_common::TASK_DEAD;
                state.exit_state = probe_common::EXIT_DEAD;
                // Mostly `exit(0)`, sometimes `exit(1)`, rarely SIGKILL (wait-status encoding).
                state.exit_code = match self.rng.below(10) {
                    0 => 9,
                    1 | 2 => 1 << 8,
                    _ => 0,
                };
                changes.push(process_change(key, state, now));
                exits += 1;
            } else {
                index += 1;
            }
        }
        for _ in 0..self.shape.churn_per_step {
            let name = *self.rng.pick(SHORT_LIVED_NAMES);
            // Forked during the step: a little CPU time so far.
            let cpu_ns = self.rng.below(elapsed_ns / 20 + 1);
            let start_ns = now - self.rng.below(elapsed_ns / 2 + 1);
            let (key, state) = self.spawn_process(name, start_ns, cpu_ns);
            changes.push(process_change(key, state, now));
        }

        for index in 0..self.connections.len() {
            let (key, state) = &mut self.connections[index];
            if state.tcp_state == 1 && self.rng.chance(40) {
                state.bytes_sent += self.rng.below(64 * 1024);
                state.bytes_received += self.rng.below(256 * 1024);
                changes.push(connection_change(*key, *state, now));
            }
        }
        if !self.connections.is_empty() && self.rng.chance(50) {
            let index = self.rng.below(self.connections.len() as u64) as usize;
            if self.connections[index].1.tcp_state != 10 {
                let (key, mut state) = self.connections.remove(index);
                state.tcp_state = 7;
                state.states_seen_mask |= 1 << 7;
                state.flags |= conn_flags::CLOSED;
                state.end_ns = now;
                changes.push(connection_change(key, state, now));
            }
        }
        if self.rng.chance(50) {
            let (key, state) = self.open_connection();
            changes.push(connection_change(key, state, now));
        }
        changes
    }

    /// Wraps `changes` into a batch for `mode`: each change gets that mode's next sequence
    /// number for its table, and the mode's counters advance plausibly (received records,
    /// a batch, a little thread CPU time, fixed kernel memory per mode).
    pub fn batch(&mut self, mode: ModeKind, changes: &[RowChange]) -> ModeBatch {
        let seqs = &mut self.seq[mode.index()];
        let stamped: Vec<RowChange> = changes
            .iter()
            .cloned()
            .map(|change| match change {
                RowChange::Process(mut row) => {
                    seqs[0] += 1;
                    row.seq = seqs[0];
                    RowChange::Process(row)
                }
                RowChange::Connection(mut row) => {
                    seqs[1] += 1;
                    row.seq = seqs[1];
                    RowChange::Connection(row)
                }
            })
            .collect();
        let counters = &mut self.counters[mode.index()];
        counters.started_ns = self.started_ns;
        counters.received += stamped.len() as u64;
        counters.batches += 1;
        counters.max_batch = counters.max_batch.max(stamped.len() as u64);
        // Plausible per-record consumer cost: poll pays for whole-map reads, perf for merging.
        let per_record_ns = match mode {
            ModeKind::Ring => 900,
            ModeKind::Perf => 1_400,
            ModeKind::Poll => 2_500,
        };
        counters.cpu_ns += 20_000 + per_record_ns * stamped.len() as u64;
        counters.kernel_bytes = match mode {
            ModeKind::Ring => 4 << 20,
            ModeKind::Perf => 64 * 4096 * 4,
            ModeKind::Poll => 2 << 20,
        };
        counters.buffer_bytes = 64 * 1024;
        ModeBatch {
            mode,
            changes: stamped,
            resync: None,
            counters: counters.clone(),
        }
    }

    /// The current world as a batch for `mode` (what a mode sends when it starts).
    pub fn initial_batch(&mut self, mode: ModeKind) -> ModeBatch {
        let changes = self.snapshot();
        self.batch(mode, &changes)
    }

    /// One [`SyntheticSource::step`] of `elapsed_ns`, as a batch for `mode`.
    pub fn next_batch(&mut self, mode: ModeKind, elapsed_ns: u64) -> ModeBatch {
        let changes = self.step(elapsed_ns);
        self.batch(mode, &changes)
    }

    fn spawn_process(&mut self, name: &str, start_ns: u64, cpu_ns: u64) -> (ProcKey, ProcState) {
        let tgid = self.next_pid;
        // Pids grow with small gaps (threads take pids too).
        self.next_pid += 1 + self.rng.below(7) as u32;
        let ppid = match self.processes.len() {
            0 => 0,
            n => self.processes[self.rng.below(n as u64) as usize].0.tgid,
        };
        let uid = *self.rng.pick(&[0u32, 0, 0, 33, 1000, 1000, 105]);
        let key = ProcKey::new(tgid, start_ns);
        let state = ProcState {
            ppid,
            uid,
            start_ns,
            cpu_ns,
            sampled_ns: self.now_ns.max(start_ns),
            // Sleeping, as most processes are (ps S).
            task_state: 1,
            threads: 1,
            comm: comm_bytes(name),
            ..Default::default()
        };
        self.processes.push((key, state));
        (key, state)
    }

    fn open_connection(&mut self) -> (ConnKey, ConnState) {
        let ipv6 = self.rng.chance(20);
        let listening = self.connections.len() < LISTEN_PORTS.len() && self.rng.chance(60);
        let mut key = ConnKey {
            family: if ipv6 { AF_INET6 } else { AF_INET },
            ..Default::default()
        };
        if ipv6 {
            key.saddr = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
            key.daddr = [
                0x20,
                0x01,
                0x0d,
                0xb8,
                0,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                self.rng.below(256) as u8,
                self.rng.below(256) as u8,
            ];
        } else {
            key.saddr[..4].copy_from_slice(&[10, 0, 0, 5]);
            let remote = [
                *self.rng.pick(&[93u8, 140, 151, 185, 192]),
                self.rng.below(256) as u8,
                self.rng.below(256) as u8,
                1 + self.rng.below(254) as u8,
            ];
            key.daddr[..4].copy_from_slice(&remote);
        }
        let tcp_state = if listening {
            key.sport = LISTEN_PORTS[self.connections.len() % LISTEN_PORTS.len()];
            key.daddr = [0; 16];
            10
        } else if self.rng.chance(50) {
            // Inbound to a server port.
            key.sport = *self.rng.pick(LISTEN_PORTS);
            key.dport = 1024 + self.rng.below(60000) as u16;
            *self.rng.pick(CONNECTION_STATES)
        } else {
            // Outbound from an ephemeral port.
            key.sport = self.next_ephemeral_port;
            self.next_ephemeral_port = self.next_ephemeral_port.wrapping_add(1).max(40000);
            key.dport = *self.rng.pick(&[443u16, 443, 80, 5432, 53]);
            *self.rng.pick(CONNECTION_STATES)
        };
        let owner = match self.processes.len() {
            0 => None,
            n => Some(self.processes[self.rng.below(n as u64) as usize]),
        };
        let age = self.rng.below(3_600_000_000_000).min(self.now_ns);
        let mut state = ConnState {
            tcp_state,
            states_seen_mask: 1 << tcp_state,
            start_ns: self.now_ns - age,
            ..Default::default()
        };
        if let Some((owner_key, owner_state)) = owner {
            state.pid = owner_key.tgid;
            state.comm = owner_state.comm;
            state.flags |= conn_flags::OWNER_KNOWN;
        }
        if tcp_state == 1 {
            state.states_seen_mask |= 1 << 2;
            state.bytes_sent = self.rng.below(8 << 20);
            state.bytes_received = self.rng.below(64 << 20);
        }
        self.connections.push((key, state));
        (key, state)
    }
}

fn comm_str(comm: &[u8; COMM_LEN]) -> &str {
    let len = comm.iter().position(|b| *b == 0).unwrap_or(COMM_LEN);
    std::str::from_utf8(&comm[..len]).unwrap_or("")
}

fn process_change(key: ProcKey, state: ProcState, now_ns: u64) -> RowChange {
    RowChange::Process(ProcessRow::from_record(key, state, 0, now_ns))
}

fn connection_change(key: ConnKey, state: ConnState, now_ns: u64) -> RowChange {
    RowChange::Connection(ConnectionRow::from_record(key, state, 0, now_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{store::TableStore, table::Retention};

    #[test]
    fn same_seed_same_batches() {
        let mut a = SyntheticSource::new(7, 1_000_000_000_000);
        let mut b = SyntheticSource::new(7, 1_000_000_000_000);
        assert_eq!(a.snapshot(), b.snapshot());
        for _ in 0..5 {
            let x = a.next_batch(ModeKind::Ring, 1_000_000_000);
            let y = b.next_batch(ModeKind::Ring, 1_000_000_000);
            assert_eq!(x.changes, y.changes);
            assert_eq!(x.counters, y.counters);
        }
        let other = SyntheticSource::new(8, 1_000_000_000_000);
        assert_ne!(other.snapshot(), a.snapshot());
    }

    #[test]
    fn batches_apply_cleanly_and_stay_bounded() {
        let start = 1_000_000_000_000;
        let mut source = SyntheticSource::new(1, start);
        let mut store = TableStore::new(0, Retention::default());
        for mode in ModeKind::ALL {
            store.apply(source.initial_batch(mode));
        }
        for _ in 0..100 {
            let changes = source.step(1_000_000_000);
            for mode in ModeKind::ALL {
                store.apply(source.batch(mode, &changes));
            }
        }
        let stats = store.stats(ModeKind::Perf);
        assert_eq!(stats.stale, 0, "every change carries a fresh seq");
        let tables = store.mode(ModeKind::Perf);
        // Churn forks 3 and exits up to 3 per step: the live set stays near its start size.
        let live = tables
            .processes
            .rows()
            .iter()
            .filter(|r| !r.is_exited())
            .count();
        assert!((120..=420).contains(&live), "live processes: {live}");
        assert!(
            tables.processes.rows().finished_len() > 0,
            "some processes exited"
        );
        assert!(tables.connections.iter().any(|c| c.is_closed()));
        assert!(tables.connections.iter().any(|c| c.state.tcp_state == 10));
        // Each mode numbered its own changes.
        assert_eq!(
            store.mode(ModeKind::Ring).processes.rows().len(),
            store.mode(ModeKind::Poll).processes.rows().len()
        );
    }

    #[test]
    fn rows_are_plausible() {
        let source = SyntheticSource::new(3, 5_000_000_000_000);
        for change in source.snapshot() {
            match change {
                RowChange::Process(row) => {
                    assert!(row.pid() > 0);
                    assert!(!row.comm().is_empty());
                    assert!(row.key.start_ns <= source.now_ns());
                    assert_eq!(row.key.start_ns, row.state.start_ns);
                }
                RowChange::Connection(row) => {
                    assert!(row.key.sport > 0);
                    assert!(matches!(row.family_number(), 4 | 6));
                    assert!(row.state.start_ns <= source.now_ns());
                }
            }
        }
    }
}
