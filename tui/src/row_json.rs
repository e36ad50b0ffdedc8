//! Rows in the JSON contract's field names (`docs/contract.md`).
//! More fields may be added; these names do not change without a changelog entry.

use bpftop_ordered::model::net::ProcessNet;
use bridge::{
    cmdlines::CommandLine,
    contract::{
        tcp_state_name, tcp_states_in_mask, ConnectionRow, ModeKind, ProcessRow, RowOrigin,
    },
    store::ModeTables,
};
use serde::Serialize;

/// A process row as printed by `dump --format json`.
#[derive(Debug, Serialize)]
pub struct ProcessJson {
    /// The mode whose table the row comes from.
    pub mode: ModeKind,
    /// tgid.
    pub pid: u32,
    /// Parent's tgid at fork (or when first seen).
    pub ppid: u32,
    /// Program name (kernel `comm`, at most 15 bytes).
    pub comm: String,
    /// Real uid.
    pub uid: u32,
    /// `running` or `exited`.
    pub state: &'static str,
    /// The task state as `ps` shows it: R S D T t Z I X (P parked), as of `sampled_ns`.
    pub task_state: String,
    /// Start, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// Exit, CLOCK_MONOTONIC ns; null while running or when unknown (a zombie found at
    /// start-up).
    pub exit_ns: Option<u64>,
    /// Exit status as a shell reports it: the `exit()` status, or 128 + signal when a signal
    /// killed it; null while running.
    pub exit_code: Option<i32>,
    /// The signal that killed the process; null while running or when it called exit().
    pub exit_signal: Option<u32>,
    /// Whether it dumped core; null while running.
    pub core_dumped: Option<bool>,
    /// Lifetime on-CPU time of all threads (dead ones included), ns, as of `sampled_ns`.
    pub cpu_ns: u64,
    /// True when `cpu_ns` is a lower bound (more threads than the probes sum up).
    pub cpu_partial: bool,
    /// Live threads (0 = unknown: a /proc row).
    pub threads: u32,
    /// Nice value of the group leader (`/proc/PID/stat` field 19), as of `sampled_ns`.
    pub nice: i32,
    /// Resident set size, bytes (`/proc/PID/status` VmRSS), as of `sampled_ns`; null for
    /// kernel threads, exited processes and processes without an address space.
    pub rss_bytes: Option<u64>,
    /// Virtual memory size, bytes (`/proc/PID/status` VmSize), as of `sampled_ns`; null
    /// exactly when `rss_bytes` is.
    pub virt_bytes: Option<u64>,
    /// cgroup v2 path (`/system.slice/ssh.service`; `/` the root), as `/proc/PID/cgroup`'s `0::`
    /// line; null when unknown (no cgroup2 mount, or the cgroup is gone).
    pub cgroup: Option<String>,
    /// When the kernel fields were read, CLOCK_MONOTONIC ns (0 = unknown).
    pub sampled_ns: u64,
    /// Command line, arguments joined by spaces (at most 256 bytes): captured by the kernel at
    /// the process's last exec, inherited at fork, or read from /proc for a process that
    /// predates the probes; null when unknown.
    pub cmdline: Option<String>,
    /// The command line was longer than 256 bytes and is cut; null with `cmdline`.
    pub cmdline_truncated: Option<bool>,
    /// A kernel thread (`PF_KTHREAD`).
    pub kernel_thread: bool,
    /// Sequence number of the last change applied (per mode; 0 for /proc rows).
    pub seq: u64,
    /// `kernel` or `procfs` (seeded at start-up, not yet seen by the probes).
    pub origin: RowOrigin,
    /// Payload bytes sent over the process's connection rows in the same mode's table (open
    /// and closed), lifetime: the sum of their `bytes_sent`; 0 when it owns none; null when
    /// one of them has unknown counts.
    pub net_bytes_sent: Option<u64>,
    /// The same for `bytes_received`.
    pub net_bytes_received: Option<u64>,
}

impl ProcessJson {
    /// Converts a row of `mode`'s table.
    pub fn new(mode: ModeKind, row: &ProcessRow) -> Self {
        ProcessJson {
            mode,
            pid: row.pid(),
            ppid: row.state.ppid,
            comm: row.comm(),
            uid: row.state.uid,
            state: if row.is_exited() { "exited" } else { "running" },
            task_state: row.task_state().to_string(),
            start_ns: row.key.start_ns,
            exit_ns: row.exit_ns(),
            exit_code: row.exit_status(),
            exit_signal: row.exit_signal(),
            core_dumped: row.is_exited().then(|| row.core_dumped()),
            cpu_ns: row.state.cpu_ns,
            cpu_partial: row.state.flags & probe_common::proc_flags::CPU_PARTIAL != 0,
            threads: row.state.threads,
            nice: row.nice(),
            rss_bytes: row.rss_bytes(),
            virt_bytes: row.virt_bytes(),
            cgroup: None,
            sampled_ns: row.state.sampled_ns,
            cmdline: None,
            cmdline_truncated: None,
            kernel_thread: row.is_kernel_thread(),
            seq: row.seq,
            origin: row.origin,
            net_bytes_sent: None,
            net_bytes_received: None,
        }
    }

    /// With the process's traffic over its connections (see [`ProcessNet::build`]).
    pub fn with_net(mut self, net: &ProcessNet, row: &ProcessRow) -> Self {
        let bytes = net.of(row).bytes;
        self.net_bytes_sent = bytes.map(|b| b.0);
        self.net_bytes_received = bytes.map(|b| b.1);
        self
    }
}

impl ProcessJson {
    /// With the process's command line (`None`: unknown).
    pub fn with_cmdline(mut self, cmdline: Option<&CommandLine>) -> Self {
        if let Some(line) = cmdline {
            self.cmdline = Some(line.text.to_string());
            self.cmdline_truncated = Some(line.truncated);
        }
        self
    }

    /// With the path of the process's cgroup (`None`: unknown).
    pub fn with_cgroup(mut self, path: Option<&str>) -> Self {
        self.cgroup = path.map(str::to_string);
        self
    }
}

/// A connection row as printed by `dump --format json`.
#[derive(Debug, Serialize)]
pub struct ConnectionJson {
    /// The mode whose table the row comes from.
    pub mode: ModeKind,
    /// 4 or 6.
    pub family: u8,
    /// Local address.
    pub saddr: String,
    /// Local port.
    pub sport: u16,
    /// Remote address.
    pub daddr: String,
    /// Remote port.
    pub dport: u16,
    /// TCP state as `ss` names it (`ESTABLISHED`, `CLOSE`, …).
    pub state: &'static str,
    /// Owning process (as `ss -p` shows it); null when unknown.
    pub pid: Option<u32>,
    /// Owner's process name as it is now (`ss -p`); null when unknown.
    pub comm: Option<String>,
    /// Payload bytes sent, each counted once (`ss -ti` bytes_sent − bytes_retrans), lifetime;
    /// null when unknown.
    pub bytes_sent: Option<u64>,
    /// Payload bytes received in order (`ss -ti` bytes_received), lifetime; null when unknown.
    pub bytes_received: Option<u64>,
    /// Start (connect, accept handshake, listen), CLOCK_MONOTONIC ns; null when the connection
    /// predates the probes.
    pub start_ns: Option<u64>,
    /// Reached CLOSE, CLOCK_MONOTONIC ns; null while open, or closed at an unknown time.
    pub end_ns: Option<u64>,
    /// Sequence number of the last change applied.
    pub seq: u64,
    /// Every TCP state the connection has been in, in kernel numbering order.
    pub states_seen: Vec<&'static str>,
    /// `kernel` or `procfs`.
    pub origin: RowOrigin,
}

impl ConnectionJson {
    /// Converts a row of `mode`'s table (`tables`: that mode's tables, for the owner's name).
    pub fn new(mode: ModeKind, row: &ConnectionRow, tables: &ModeTables) -> Self {
        ConnectionJson {
            mode,
            family: row.family_number(),
            saddr: row.saddr().to_string(),
            sport: row.key.sport,
            daddr: row.daddr().to_string(),
            dport: row.key.dport,
            state: tcp_state_name(row.state.tcp_state),
            pid: row.owner_pid(),
            comm: tables.owner_comm(row),
            bytes_sent: row.bytes().map(|(sent, _)| sent),
            bytes_received: row.bytes().map(|(_, received)| received),
            start_ns: row.start_ns(),
            end_ns: row.end_ns(),
            seq: row.seq,
            states_seen: tcp_states_in_mask(row.state.states_seen_mask),
            origin: row.origin,
        }
    }
}

/// The JSON rows byte for byte: any change to a field's name, unit or null-ness fails here and
/// must come with a `docs/contract.md` changelog entry.
#[cfg(test)]
mod golden {
    use super::*;
    use bridge::{
        contract::{ModeBatch, ModeCounters, RowChange},
        store::TableStore,
        table::Retention,
    };
    use probe_common::{conn_flags, proc_flags, ConnKey, ConnState, ProcKey, ProcState, AF_INET};

    fn comm(name: &str) -> [u8; probe_common::COMM_LEN] {
        let mut comm = [0u8; probe_common::COMM_LEN];
        comm[..name.len()].copy_from_slice(name.as_bytes());
        comm
    }

    fn process(tgid: u32, state: ProcState, origin: RowOrigin) -> ProcessRow {
        ProcessRow {
            key: ProcKey::new(tgid, state.start_ns),
            state: bridge::contract::KernelState::info(&state),
            seq: if origin == RowOrigin::Kernel { 42 } else { 0 },
            changed_ns: 0,
            origin,
        }
    }

    #[test]
    fn process_rows() {
        // Killed by SIGKILL with a core dump, seen by the probes.
        let killed = process(
            4242,
            ProcState {
                ppid: 1,
                uid: 65534,
                start_ns: 1_000_000_000,
                exit_ns: 3_500_000_000,
                exit_code: 9 | 0x80,
                cpu_ns: 1_234_567,
                threads: 1,
                sampled_ns: 3_500_000_000,
                flags: proc_flags::EXITED,
                exit_state: 0x10, // EXIT_DEAD: reaped
                comm: comm("sleep"),
                ..Default::default()
            },
            RowOrigin::Kernel,
        );
        // A running kernel thread read from /proc: what /proc cannot tell is 0 or null.
        let seeded = process(
            2,
            ProcState {
                start_ns: 10_000_000,
                cpu_ns: 40_000_000,
                flags: proc_flags::KERNEL_THREAD,
                task_state: 0x0402, // TASK_IDLE: TASK_UNINTERRUPTIBLE | TASK_NOLOAD
                comm: comm("kthreadd"),
                ..Default::default()
            },
            RowOrigin::Procfs,
        );
        // Running, reniced, with a known resident set.
        let niced = process(
            777,
            ProcState {
                ppid: 1,
                uid: 1000,
                start_ns: 5_000_000_000,
                cpu_ns: 9_000_000,
                threads: 2,
                sampled_ns: 6_000_000_000,
                nice: 7,
                rss_bytes: 67_108_864,
                virt_bytes: 134_217_728,
                flags: proc_flags::RSS_KNOWN,
                task_state: 0x1, // TASK_INTERRUPTIBLE
                comm: comm("hog"),
                ..Default::default()
            },
            RowOrigin::Kernel,
        );
        // Two connections of the killed process, one closed: the net totals are their sums.
        let mut store = TableStore::new(0, Retention::default());
        let connection = |sport: u16, bytes: (u64, u64), flags: u32| {
            RowChange::Connection(ConnectionRow::from_record(
                ConnKey {
                    family: AF_INET,
                    sport,
                    ..Default::default()
                },
                ConnState {
                    pid: 4242,
                    tcp_state: 1,
                    bytes_sent: bytes.0,
                    bytes_received: bytes.1,
                    start_ns: 2_000_000_000,
                    flags: conn_flags::OWNER_KNOWN | flags,
                    ..Default::default()
                },
                1,
                2_000_000_000,
            ))
        };
        store.apply(ModeBatch {
            mode: ModeKind::Ring,
            changes: vec![
                RowChange::Process(killed.clone()),
                RowChange::Process(seeded.clone()),
                RowChange::Process(niced.clone()),
                connection(1, (100_000, 20), 0),
                connection(2, (23_456, 7), conn_flags::CLOSED),
            ],
            resync: None,
            counters: ModeCounters::default(),
        });
        let net = ProcessNet::build(store.mode(ModeKind::Ring), None);
        let cmdline = CommandLine {
            text: "hog --size 64M".into(),
            truncated: false,
        };
        let text: Vec<String> = [
            (ModeKind::Ring, &killed),
            (ModeKind::Poll, &seeded),
            (ModeKind::Perf, &niced),
        ]
        .iter()
        .map(|(mode, row)| {
            let known = (row.pid() == 777).then_some(&cmdline);
            let json = ProcessJson::new(*mode, row)
                .with_net(&net, row)
                .with_cmdline(known)
                .with_cgroup(known.map(|_| "/system.slice/hog.service"));
            serde_json::to_string(&json).unwrap()
        })
        .collect();
        assert_eq!(
            text,
            [
                r#"{"mode":"ring","pid":4242,"ppid":1,"comm":"sleep","uid":65534,"state":"exited","task_state":"X","start_ns":1000000000,"exit_ns":3500000000,"exit_code":137,"exit_signal":9,"core_dumped":true,"cpu_ns":1234567,"cpu_partial":false,"threads":1,"nice":0,"rss_bytes":null,"virt_bytes":null,"cgroup":null,"sampled_ns":3500000000,"cmdline":null,"cmdline_truncated":null,"kernel_thread":false,"seq":42,"origin":"kernel","net_bytes_sent":123456,"net_bytes_received":27}"#,
                r#"{"mode":"poll","pid":2,"ppid":0,"comm":"kthreadd","uid":0,"state":"running","task_state":"I","start_ns":10000000,"exit_ns":null,"exit_code":null,"exit_signal":null,"core_dumped":null,"cpu_ns":40000000,"cpu_partial":false,"threads":0,"nice":0,"rss_bytes":null,"virt_bytes":null,"cgroup":null,"sampled_ns":0,"cmdline":null,"cmdline_truncated":null,"kernel_thread":true,"seq":0,"origin":"procfs","net_bytes_sent":0,"net_bytes_received":0}"#,
                r#"{"mode":"perf","pid":777,"ppid":1,"comm":"hog","uid":1000,"state":"running","task_state":"S","start_ns":5000000000,"exit_ns":null,"exit_code":null,"exit_signal":null,"core_dumped":null,"cpu_ns":9000000,"cpu_partial":false,"threads":2,"nice":7,"rss_bytes":67108864,"virt_bytes":134217728,"cgroup":"/system.slice/hog.service","sampled_ns":6000000000,"cmdline":"hog --size 64M","cmdline_truncated":false,"kernel_thread":false,"seq":42,"origin":"kernel","net_bytes_sent":0,"net_bytes_received":0}"#,
            ]
        );
    }

    #[test]
    fn connection_rows() {
        let store = TableStore::new(0, Retention::default());
        let tables = store.mode(ModeKind::Perf);
        let v4 = ConnKey::ipv4([127, 0, 0, 1], 47020, [127, 0, 0, 1], 8080);
        // Closed, owner known, exact byte counts.
        let closed = ConnectionRow {
            key: v4,
            state: bridge::contract::ConnInfo {
                tcp_state: 7, // TCP_CLOSE
                states_seen_mask: (1 << 1) | (1 << 2) | (1 << 4) | (1 << 7),
                pid: 4242,
                comm: comm("curl"),
                bytes_sent: 123_456,
                bytes_received: 7_890,
                start_ns: 2_000_000_000,
                end_ns: 2_500_000_000,
                flags: conn_flags::CLOSED | conn_flags::OWNER_KNOWN,
            },
            seq: 7,
            changed_ns: 0,
            origin: RowOrigin::Kernel,
        };
        // Found at start-up over IPv6: owner, bytes and start unknown.
        let v6 = ConnKey::ipv6(
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            22,
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            50000,
        );
        let seeded = ConnectionRow {
            key: v6,
            state: bridge::contract::ConnInfo {
                tcp_state: 1, // TCP_ESTABLISHED
                states_seen_mask: 1 << 1,
                flags: conn_flags::START_UNKNOWN | conn_flags::BYTES_UNKNOWN,
                ..Default::default()
            },
            seq: 0,
            changed_ns: 0,
            origin: RowOrigin::Procfs,
        };
        let text: Vec<String> = [&closed, &seeded]
            .iter()
            .map(|row| {
                serde_json::to_string(&ConnectionJson::new(ModeKind::Perf, row, tables)).unwrap()
            })
            .collect();
        assert_eq!(
            text,
            [
                r#"{"mode":"perf","family":4,"saddr":"127.0.0.1","sport":47020,"daddr":"127.0.0.1","dport":8080,"state":"CLOSE","pid":4242,"comm":"curl","bytes_sent":123456,"bytes_received":7890,"start_ns":2000000000,"end_ns":2500000000,"seq":7,"states_seen":["ESTABLISHED","SYN-SENT","FIN-WAIT-1","CLOSE"],"origin":"kernel"}"#,
                r#"{"mode":"perf","family":6,"saddr":"::1","sport":22,"daddr":"::1","dport":50000,"state":"ESTABLISHED","pid":null,"comm":null,"bytes_sent":null,"bytes_received":null,"start_ns":null,"end_ns":null,"seq":0,"states_seen":["ESTABLISHED"],"origin":"procfs"}"#,
            ]
        );
    }

    /// The field names `docs/contract.md` documents under `heading`: the backquoted names in
    /// the first cell of each row of the table that follows it.
    fn documented_fields(heading: &str) -> Vec<String> {
        let contract = include_str!("../../docs/contract.md");
        let section = &contract[contract
            .find(heading)
            .expect("the heading is in the contract")..];
        let mut fields: Vec<String> = section
            .lines()
            .skip(1)
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| line.split('|').nth(1))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_string))
            .collect();
        fields.sort();
        fields
    }

    /// The keys of a JSON row other than those every row has (`mode`, `seq`, `origin`, told in
    /// the contract's prose), sorted.
    fn row_fields(row: impl Serialize) -> Vec<String> {
        let serde_json::Value::Object(object) = serde_json::to_value(row).unwrap() else {
            panic!("a row is a JSON object");
        };
        let mut fields: Vec<String> = object
            .keys()
            .filter(|key| !["mode", "seq", "origin"].contains(&key.as_str()))
            .cloned()
            .collect();
        fields.sort();
        fields
    }

    #[test]
    fn the_contract_documents_exactly_the_fields_printed() {
        let contract = include_str!("../../docs/contract.md");
        for common in [r#"`"mode"`"#, r#"`"seq"`"#, r#"`"origin"`"#] {
            assert!(contract.contains(common), "{common} in docs/contract.md");
        }
        let process = process(1, ProcState::default(), RowOrigin::Kernel);
        assert_eq!(
            row_fields(ProcessJson::new(ModeKind::Ring, &process)),
            documented_fields("### Process rows")
        );
        let store = TableStore::new(0, Retention::default());
        let connection = ConnectionRow::from_record(ConnKey::default(), ConnState::default(), 0, 0);
        assert_eq!(
            row_fields(ConnectionJson::new(
                ModeKind::Ring,
                &connection,
                store.mode(ModeKind::Ring)
            )),
            documented_fields("### Connection rows")
        );
    }
}
