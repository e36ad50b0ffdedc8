//! `ss -tanpi` as the oracle of the connections table (tests/oracle_connections.rs).
//!
//! [`snapshot`] runs `ss -H -tanpi` and parses every TCP socket: state, local and peer address,
//! the processes holding it (`users:(("name",pid=N,fd=M))`) and the kernel's lifetime counters
//! (`bytes_sent`, `bytes_retrans`, `bytes_received`). What the contract derives from them:
//! - state: ss spelling, except `ESTAB` → `ESTABLISHED` and `TIME-WAIT` → `CLOSE` (a TIME-WAIT
//!   socket's full socket is gone: its connection reached CLOSE);
//! - owner: pid and name of the first holder ss lists (the process, its leader's comm);
//! - bytes_sent = `bytes_sent − bytes_retrans`; bytes_received = `bytes_received`, less 1 for
//!   the peer's FIN once it arrived (CLOSE-WAIT, LAST-ACK, CLOSING, TIME-WAIT).
//!
//! [`Expect`] is what one socket's row must hold: built from what the workload itself did,
//! cross-checked against ss with [`Expect::merge_ss`] (the oracle must agree with the workload,
//! or the test itself is wrong), then compared field by field with the row of each mode by
//! [`check_mode`]. [`Report`] prints one summary line per mode and fails with oracle and tool
//! side by side.
//!
//! [`run_with_oracle`] runs one dump around a workload and takes the ss snapshot shortly before
//! the dump's collection window closes, while the workload's connections idle.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    fmt,
    io::{BufRead, BufReader, Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;

pub use crate::kernel_support::set_accept_timeout;
use crate::kernel_support::{ping_pong, set_socket_option, DumpOutput, DumpSpec, RunningDump};

/// (local, peer) socket addresses; a listener's peer is `0.0.0.0:0` / `[::]:0`.
pub type Tuple = (SocketAddr, SocketAddr);

/// The three bridge modes every test compares.
pub const MODES: [&str; 3] = ["ring", "perf", "poll"];

// ---------------------------------------------------------------------------------------------
// ss parsing
// ---------------------------------------------------------------------------------------------

/// One process holding a socket, as `ss -p` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsUser {
    /// Process name (`/proc/PID/stat`, the group leader's comm).
    pub name: String,
    /// Process id (tgid).
    pub pid: u32,
    /// File descriptor.
    pub fd: u32,
}

/// One TCP socket as `ss -tanpi` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsSocket {
    /// State as ss spells it (`ESTAB`, `TIME-WAIT`, …).
    pub ss_state: String,
    /// Local address.
    pub local: SocketAddr,
    /// Peer address (port 0 for `*`).
    pub peer: SocketAddr,
    /// Holders, in ss order (empty for orphans and TIME-WAIT sockets).
    pub users: Vec<SsUser>,
    /// `bytes_sent` (0 when ss omits it).
    pub bytes_sent: u64,
    /// `bytes_retrans` (0 when ss omits it).
    pub bytes_retrans: u64,
    /// `bytes_received` (0 when ss omits it).
    pub bytes_received: u64,
    /// Whether ss printed a tcp_info line for it (TIME-WAIT and SYN-RECV sockets have none).
    pub has_info: bool,
}

impl SsSocket {
    /// (local, peer).
    pub fn tuple(&self) -> Tuple {
        (self.local, self.peer)
    }

    /// The state in the contract's spelling.
    pub fn contract_state(&self) -> &'static str {
        match self.ss_state.as_str() {
            "ESTAB" => "ESTABLISHED",
            "SYN-SENT" => "SYN-SENT",
            "SYN-RECV" => "SYN-RECV",
            "FIN-WAIT-1" => "FIN-WAIT-1",
            "FIN-WAIT-2" => "FIN-WAIT-2",
            "TIME-WAIT" | "UNCONN" => "CLOSE",
            "CLOSE-WAIT" => "CLOSE-WAIT",
            "LAST-ACK" => "LAST-ACK",
            "LISTEN" => "LISTEN",
            "CLOSING" => "CLOSING",
            _ => "UNKNOWN",
        }
    }

    /// The peer's FIN has arrived.
    pub fn fin_received(&self) -> bool {
        matches!(
            self.ss_state.as_str(),
            "CLOSE-WAIT" | "LAST-ACK" | "CLOSING" | "TIME-WAIT"
        )
    }

    /// Whether ss knows the byte counters of this socket.
    pub fn bytes_known(&self) -> bool {
        self.has_info && !matches!(self.ss_state.as_str(), "TIME-WAIT" | "SYN-RECV")
    }

    /// Payload sent once, per the contract; `None` when ss does not know.
    pub fn expected_sent(&self) -> Option<u64> {
        self.bytes_known()
            .then(|| self.bytes_sent.saturating_sub(self.bytes_retrans))
    }

    /// Payload received in order, per the contract; `None` when ss does not know.
    pub fn expected_received(&self) -> Option<u64> {
        self.bytes_known().then(|| {
            if self.fin_received() {
                self.bytes_received.saturating_sub(1)
            } else {
                self.bytes_received
            }
        })
    }

    /// The owner ss shows (first holder), if any.
    pub fn owner(&self) -> Option<(u32, &str)> {
        self.users.first().map(|u| (u.pid, u.name.as_str()))
    }

    /// True when either end uses one of `ports`.
    pub fn on_ports(&self, ports: &[u16]) -> bool {
        ports.contains(&self.local.port()) || ports.contains(&self.peer.port())
    }
}

impl fmt::Display for SsSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ss[{} {} -> {} users {:?} sent {} retrans {} received {}]",
            self.ss_state,
            self.local,
            self.peer,
            self.users
                .iter()
                .map(|u| format!("{}/{}", u.name, u.pid))
                .collect::<Vec<_>>(),
            self.bytes_sent,
            self.bytes_retrans,
            self.bytes_received
        )
    }
}

/// Parses `ip:port`, `[v6]:port`, `*:port`, `ip%iface:port`; `*` as the port is 0.
pub fn parse_ss_addr(s: &str) -> Option<SocketAddr> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = if port == "*" { 0 } else { port.parse().ok()? };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next()?;
    let ip: IpAddr = if host == "*" {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

fn parse_users(line: &str) -> Vec<SsUser> {
    let mut users = Vec::new();
    let Some(start) = line.find("users:(") else {
        return users;
    };
    let mut rest = &line[start + "users:(".len()..];
    while let Some(open) = rest.find("(\"") {
        rest = &rest[open + 2..];
        let Some(name_end) = rest.find("\",pid=") else {
            break;
        };
        let name = rest[..name_end].to_string();
        rest = &rest[name_end + "\",pid=".len()..];
        let pid_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let pid: u32 = rest[..pid_end].parse().unwrap_or(0);
        rest = &rest[pid_end..];
        let mut fd = 0;
        if let Some(r) = rest.strip_prefix(",fd=") {
            let fd_end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            fd = r[..fd_end].parse().unwrap_or(0);
            rest = &r[fd_end..];
        }
        users.push(SsUser { name, pid, fd });
    }
    users
}

fn parse_main_line(line: &str) -> Option<SsSocket> {
    let mut fields = line.split_whitespace();
    let ss_state = fields.next()?.to_string();
    let _recv_q = fields.next()?;
    let _send_q = fields.next()?;
    let local = parse_ss_addr(fields.next()?)?;
    let peer = parse_ss_addr(fields.next()?)?;
    Some(SsSocket {
        ss_state,
        local,
        peer,
        users: parse_users(line),
        bytes_sent: 0,
        bytes_retrans: 0,
        bytes_received: 0,
        has_info: false,
    })
}

fn parse_info_line(socket: &mut SsSocket, line: &str) {
    for token in line.split_whitespace() {
        socket.has_info = true;
        let counter = |prefix: &str| token.strip_prefix(prefix).and_then(|v| v.parse().ok());
        if let Some(v) = counter("bytes_sent:") {
            socket.bytes_sent = v;
        } else if let Some(v) = counter("bytes_retrans:") {
            socket.bytes_retrans = v;
        } else if let Some(v) = counter("bytes_received:") {
            socket.bytes_received = v;
        }
    }
}

/// Parses the output of `ss -H -tanpi` (a header line, if present, is skipped: its "State"
/// column does not parse as an address).
pub fn parse_ss(text: &str) -> Vec<SsSocket> {
    let mut sockets = Vec::new();
    let mut current: Option<SsSocket> = None;
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(s) = current.as_mut() {
                parse_info_line(s, line);
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        sockets.extend(current.take());
        current = parse_main_line(line);
    }
    sockets.extend(current);
    sockets
}

/// Runs `ss -H -tanpi` now and parses it (panics when ss cannot run: the oracle is required).
pub fn snapshot() -> Vec<SsSocket> {
    let out = Command::new("ss")
        .args(["-H", "-tanpi"])
        .stdin(Stdio::null())
        .output()
        .expect("run `ss -H -tanpi` (iproute2)");
    assert!(
        out.status.success(),
        "ss failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_ss(&String::from_utf8_lossy(&out.stdout))
}

/// The ss sockets on `ports`, by tuple.
pub fn ss_on_ports<'a>(ss: &'a [SsSocket], ports: &[u16]) -> HashMap<Tuple, &'a SsSocket> {
    ss.iter()
        .filter(|s| s.on_ports(ports))
        .map(|s| (s.tuple(), s))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// (local, peer) of a connection row.
pub fn row_tuple(row: &Value) -> Tuple {
    let addr = |a: &str, p: &str| {
        let ip: IpAddr = row[a]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("field `{a}` is not an address in {row}"));
        let port = row[p]
            .as_u64()
            .unwrap_or_else(|| panic!("field `{p}` is not a port in {row}"));
        SocketAddr::new(ip, port as u16)
    };
    (addr("saddr", "sport"), addr("daddr", "dport"))
}

/// The rows of `mode`, by tuple (a tuple may have several rows: reported as duplicates).
pub fn rows_by_tuple<'a>(out: &'a DumpOutput, mode: &'a str) -> HashMap<Tuple, Vec<&'a Value>> {
    let mut map: HashMap<Tuple, Vec<&Value>> = HashMap::new();
    for row in out.rows_of(mode) {
        map.entry(row_tuple(row)).or_default().push(row);
    }
    map
}

/// The rows of `mode` with either port in `ports`.
pub fn rows_on_ports<'a>(out: &'a DumpOutput, mode: &'a str, ports: &[u16]) -> Vec<&'a Value> {
    out.rows_of(mode)
        .filter(|r| {
            let (l, p) = row_tuple(r);
            ports.contains(&l.port()) || ports.contains(&p.port())
        })
        .collect()
}

/// A compact one-line view of a row for failure messages.
pub fn show_row(row: &Value) -> String {
    let (l, p) = row_tuple(row);
    format!(
        "tool[{} {l} -> {p} pid {} comm {} sent {} received {} start {} end {} seen {} origin {} \
         seq {}]",
        row["state"],
        row["pid"],
        row["comm"],
        row["bytes_sent"],
        row["bytes_received"],
        row["start_ns"],
        row["end_ns"],
        row["states_seen"],
        row["origin"],
        row["seq"]
    )
}

/// The test process's name as `ss -p` shows it (its leader's comm).
pub fn my_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .expect("read /proc/self/comm")
        .trim()
        .to_string()
}

/// This process's pid.
pub fn me() -> u32 {
    std::process::id()
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

/// What one field must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want<T> {
    /// Not checked.
    Any,
    /// Must be null (unknown).
    Null,
    /// Must be exactly this.
    Is(T),
    /// Null, or exactly this.
    NullOr(T),
}

impl<T: PartialEq + fmt::Display> Want<T> {
    fn accepts(&self, v: Option<&T>) -> bool {
        match self {
            Want::Any => true,
            Want::Null => v.is_none(),
            Want::Is(x) => v == Some(x),
            Want::NullOr(x) => v.is_none() || v == Some(x),
        }
    }

    fn exact(&self) -> Option<&T> {
        match self {
            Want::Is(x) => Some(x),
            _ => None,
        }
    }
}

impl<T: fmt::Display> fmt::Display for Want<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Any => write!(f, "*"),
            Want::Null => write!(f, "null"),
            Want::Is(x) => write!(f, "{x}"),
            Want::NullOr(x) => write!(f, "null|{x}"),
        }
    }
}

/// Whether a timestamp field must be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// Not checked.
    Any,
    /// Must be a number.
    Set,
    /// Must be null.
    Null,
    /// Must be a number in [lo, hi] (CLOCK_MONOTONIC ns the test read around the workload).
    Within(u64, u64),
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stamp::Any => write!(f, "*"),
            Stamp::Set => write!(f, "set"),
            Stamp::Null => write!(f, "null"),
            Stamp::Within(lo, hi) => write!(f, "[{lo}, {hi}]"),
        }
    }
}

/// What the row of one socket must hold, in every mode.
#[derive(Clone, Debug)]
pub struct Expect {
    /// A label for messages ("client 7").
    pub what: String,
    /// (local, peer).
    pub tuple: Tuple,
    /// Allowed states (one, normally).
    pub states: Vec<&'static str>,
    /// Owner pid.
    pub pid: Want<u32>,
    /// Owner comm.
    pub comm: Want<String>,
    /// bytes_sent.
    pub sent: Want<u64>,
    /// bytes_received.
    pub received: Want<u64>,
    /// start_ns.
    pub start: Stamp,
    /// end_ns.
    pub end: Stamp,
    /// Allowed origins (empty: any).
    pub origins: Vec<&'static str>,
    /// States that must be in states_seen.
    pub seen: Vec<&'static str>,
    /// States that must not be in states_seen.
    pub not_seen: Vec<&'static str>,
}

impl Expect {
    /// A socket in `state`; every other field unchecked until set.
    pub fn new(what: impl Into<String>, tuple: Tuple, state: &'static str) -> Self {
        Expect {
            what: what.into(),
            tuple,
            states: vec![state],
            pid: Want::Any,
            comm: Want::Any,
            sent: Want::Any,
            received: Want::Any,
            start: Stamp::Any,
            end: Stamp::Any,
            origins: Vec::new(),
            seen: Vec::new(),
            not_seen: Vec::new(),
        }
    }

    /// A socket only ss knows about: state, owner and counters from ss.
    pub fn from_ss(what: impl Into<String>, s: &SsSocket) -> Self {
        let mut e = Expect::new(what, s.tuple(), s.contract_state());
        e.merge_ss(s)
            .expect("an expectation built from ss agrees with ss");
        e
    }

    /// Owner pid and comm.
    pub fn owner(mut self, pid: u32, comm: &str) -> Self {
        self.pid = Want::Is(pid);
        self.comm = Want::Is(comm.to_string());
        self
    }

    /// Owner pid and comm, or null (unknown).
    pub fn owner_or_null(mut self, pid: u32, comm: &str) -> Self {
        self.pid = Want::NullOr(pid);
        self.comm = Want::NullOr(comm.to_string());
        self
    }

    /// Exact byte counters.
    pub fn bytes(mut self, sent: u64, received: u64) -> Self {
        self.sent = Want::Is(sent);
        self.received = Want::Is(received);
        self
    }

    /// Byte counters exact, or null (unknown).
    pub fn bytes_or_null(mut self, sent: u64, received: u64) -> Self {
        self.sent = Want::NullOr(sent);
        self.received = Want::NullOr(received);
        self
    }

    /// start_ns / end_ns.
    pub fn stamps(mut self, start: Stamp, end: Stamp) -> Self {
        self.start = start;
        self.end = end;
        self
    }

    /// Allowed origins.
    pub fn origin(mut self, origins: &[&'static str]) -> Self {
        self.origins = origins.to_vec();
        self
    }

    /// States that must have been seen.
    pub fn seen(mut self, states: &[&'static str]) -> Self {
        self.seen.extend_from_slice(states);
        self
    }

    /// States that must not have been seen.
    pub fn not_seen(mut self, states: &[&'static str]) -> Self {
        self.not_seen.extend_from_slice(states);
        self
    }

    /// Cross-checks the workload's knowledge with ss and completes it from ss (owner and
    /// counters that the workload left unchecked). An error means oracle and workload disagree:
    /// the test's premise is wrong, not the tool.
    pub fn merge_ss(&mut self, s: &SsSocket) -> Result<(), String> {
        let state = s.contract_state();
        if !self.states.contains(&state) {
            return Err(format!(
                "{}: ss state {state} but the workload expects {:?}: {s}",
                self.what, self.states
            ));
        }
        self.states = vec![state];
        if let Some((pid, name)) = s.owner() {
            if let Some(p) = self.pid.exact() {
                if *p != pid {
                    return Err(format!(
                        "{}: ss owner pid {pid} but the workload expects {p}: {s}",
                        self.what
                    ));
                }
            }
            if let Some(c) = self.comm.exact() {
                if c != name {
                    return Err(format!(
                        "{}: ss owner name {name} but the workload expects {c}: {s}",
                        self.what
                    ));
                }
            }
            self.pid = Want::Is(pid);
            self.comm = Want::Is(name.to_string());
        }
        for (label, want, ss_value) in [
            ("bytes_sent", &mut self.sent, s.expected_sent()),
            ("bytes_received", &mut self.received, s.expected_received()),
        ] {
            let Some(v) = ss_value else { continue };
            match want {
                Want::Is(x) | Want::NullOr(x) if *x != v => {
                    return Err(format!(
                        "{}: ss {label} {v} but the workload expects {x}: {s}",
                        self.what
                    ));
                }
                _ => *want = Want::Is(v),
            }
        }
        Ok(())
    }

    /// Field-by-field differences between this expectation and `row` (empty: it matches).
    pub fn mismatches(&self, row: &Value) -> Vec<String> {
        let mut bad = Vec::new();
        let state = row["state"].as_str().unwrap_or("?");
        if !self.states.contains(&state) {
            bad.push(format!("state {state} (oracle {:?})", self.states));
        }
        let pid = row["pid"].as_u64().map(|p| p as u32);
        if !self.pid.accepts(pid.as_ref()) {
            bad.push(format!("pid {:?} (oracle {})", pid, self.pid));
        }
        let comm = row["comm"].as_str().map(str::to_string);
        if !self.comm.accepts(comm.as_ref()) {
            bad.push(format!("comm {:?} (oracle {})", comm, self.comm));
        }
        let sent = row["bytes_sent"].as_u64();
        if !self.sent.accepts(sent.as_ref()) {
            bad.push(format!("bytes_sent {:?} (oracle {})", sent, self.sent));
        }
        let received = row["bytes_received"].as_u64();
        if !self.received.accepts(received.as_ref()) {
            bad.push(format!(
                "bytes_received {:?} (oracle {})",
                received, self.received
            ));
        }
        for (field, want) in [("start_ns", self.start), ("end_ns", self.end)] {
            let v = row[field].as_u64();
            let ok = match want {
                Stamp::Any => true,
                Stamp::Set => v.is_some(),
                Stamp::Null => row[field].is_null(),
                Stamp::Within(lo, hi) => v.is_some_and(|v| lo <= v && v <= hi),
            };
            if !ok {
                bad.push(format!("{field} {} (oracle {want})", row[field]));
            }
        }
        let origin = row["origin"].as_str().unwrap_or("?");
        if !self.origins.is_empty() && !self.origins.contains(&origin) {
            bad.push(format!("origin {origin} (oracle {:?})", self.origins));
        }
        let seen: Vec<&str> = row["states_seen"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for s in &self.seen {
            if !seen.contains(s) {
                bad.push(format!("states_seen lacks {s}"));
            }
        }
        for s in &self.not_seen {
            if seen.contains(s) {
                bad.push(format!("states_seen has {s}"));
            }
        }
        // Invariants of every row.
        if !seen.contains(&state) {
            bad.push(format!(
                "states_seen {seen:?} lacks the current state {state}"
            ));
        }
        if row["end_ns"].as_u64().is_some() && state != "CLOSE" {
            bad.push(format!("end_ns set in state {state}"));
        }
        if let (Some(s), Some(e)) = (row["start_ns"].as_u64(), row["end_ns"].as_u64()) {
            if s > e {
                bad.push(format!("start_ns {s} after end_ns {e}"));
            }
        }
        if row["seq"].as_u64().is_none() {
            bad.push(format!("seq {} is not a number", row["seq"]));
        }
        let family = if self.tuple.0.is_ipv4() { 4 } else { 6 };
        if row["family"].as_u64() != Some(family) {
            bad.push(format!("family {} (oracle {family})", row["family"]));
        }
        bad
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "oracle[{:?} {} -> {} pid {} comm {} sent {} received {} start {} end {} seen+{:?} \
             seen-{:?} origin {:?}]",
            self.states,
            self.tuple.0,
            self.tuple.1,
            self.pid,
            self.comm,
            self.sent,
            self.received,
            self.start,
            self.end,
            self.seen,
            self.not_seen,
            self.origins
        )
    }
}

/// Cross-checks every expectation with the ss socket of the same tuple (when ss lists it) and
/// returns the ss sockets on `ports` that no expectation covers. Panics when ss and the
/// workload disagree (a test bug).
pub fn merge_oracle<'a>(
    test: &str,
    expects: &mut [Expect],
    ss: &'a [SsSocket],
    ports: &[u16],
) -> Vec<&'a SsSocket> {
    let mut by_tuple = ss_on_ports(ss, ports);
    let mut errors = Vec::new();
    for e in expects.iter_mut() {
        if let Some(s) = by_tuple.remove(&e.tuple) {
            if let Err(err) = e.merge_ss(s) {
                errors.push(err);
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{test}: the ss oracle disagrees with the workload (test bug):\n{}",
        errors.join("\n")
    );
    by_tuple.into_values().collect()
}

/// How one mode's table compares with the expectations.
#[derive(Debug, Default)]
pub struct ModeCheck {
    /// The mode.
    pub mode: String,
    /// Expectations checked.
    pub total: usize,
    /// Expectations whose one row matched every field.
    pub matched: usize,
    /// Expectations without a row.
    pub missing: usize,
    /// Expectations with a row that differs (or several rows).
    pub wrong: usize,
    /// One line per problem: oracle and tool side by side.
    pub problems: Vec<String>,
}

/// Compares `mode`'s rows with every expectation.
pub fn check_mode(out: &DumpOutput, mode: &str, expects: &[Expect]) -> ModeCheck {
    let rows = rows_by_tuple(out, mode);
    let mut c = ModeCheck {
        mode: mode.to_string(),
        total: expects.len(),
        ..ModeCheck::default()
    };
    for e in expects {
        match rows.get(&e.tuple).map(Vec::as_slice) {
            None | Some([]) => {
                c.missing += 1;
                c.problems.push(format!("{mode} {}: no row | {e}", e.what));
            }
            Some([row]) => {
                let bad = e.mismatches(row);
                if bad.is_empty() {
                    c.matched += 1;
                } else {
                    c.wrong += 1;
                    c.problems.push(format!(
                        "{mode} {}: {}\n    {e}\n    {}",
                        e.what,
                        bad.join("; "),
                        show_row(row)
                    ));
                }
            }
            Some(many) => {
                c.wrong += 1;
                c.problems.push(format!(
                    "{mode} {}: {} rows for one socket | {e}\n    {}",
                    e.what,
                    many.len(),
                    many.iter()
                        .map(|r| show_row(r))
                        .collect::<Vec<_>>()
                        .join("\n    ")
                ));
            }
        }
    }
    c
}

/// Collects failures of one test and prints per-mode summaries.
pub struct Report {
    test: String,
    failures: Vec<String>,
}

impl Report {
    /// A report for `test`.
    pub fn new(test: &str) -> Self {
        Report {
            test: test.to_string(),
            failures: Vec::new(),
        }
    }

    /// Prints `label: mode: matched/total`; every problem is a failure.
    pub fn strict(&mut self, label: &str, c: ModeCheck) {
        println!(
            "{}: {label}: {}: {}/{} match the oracle (missing {}, wrong {})",
            self.test, c.mode, c.matched, c.total, c.missing, c.wrong
        );
        self.failures.extend(c.problems);
    }

    /// A failure unless `ok`.
    pub fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(msg());
        }
    }

    /// A failure.
    pub fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    /// Prints a note (not a failure).
    pub fn note(&self, msg: &str) {
        println!("{}: {msg}", self.test);
    }

    /// Panics with every failure (the first 60 in full), or prints OK.
    pub fn finish(self) {
        if self.failures.is_empty() {
            println!("{}: OK", self.test);
            return;
        }
        let shown: Vec<&str> = self.failures.iter().take(60).map(String::as_str).collect();
        panic!(
            "{}: {} failure(s) against the oracle:\n{}{}",
            self.test,
            self.failures.len(),
            shown.join("\n"),
            if self.failures.len() > shown.len() {
                format!("\n… and {} more", self.failures.len() - shown.len())
            } else {
                String::new()
            }
        );
    }
}

/// Every mode printed a stats line and none failed; each mode printed as many rows as its
/// stats say its connections table holds (with `kernel_only`: at most that many, and no
/// `procfs` row).
pub fn check_modes_ran(report: &mut Report, out: &DumpOutput, kernel_only: bool) {
    for mode in MODES {
        if !out.stats.iter().any(|s| s["mode"] == mode) {
            report.fail(format!("no stats line for {mode}: {:?}", out.stats));
            continue;
        }
        let printed = out.rows_of(mode).count() as u64;
        let table = stat(out, mode, "connection_rows");
        if kernel_only {
            let seeded = out
                .rows_of(mode)
                .filter(|r| r["origin"] == "procfs")
                .count();
            report.check(seeded == 0 && printed <= table, || {
                format!(
                    "{mode}: --kernel-only printed {seeded} procfs row(s); {printed} rows \
                     printed, connection_rows {table}"
                )
            });
        } else {
            report.check(printed == table, || {
                format!("{mode}: {printed} rows printed but stats connection_rows is {table}")
            });
        }
    }
    report.check(!out.stderr.contains("mode failed"), || {
        format!("a mode failed: {}", out.stderr)
    });
}

/// Serialises the tests of one test binary (also under `--test-threads=2`): every dump sees
/// every TCP event of the machine, so a test's workload must not run inside another test's
/// dump (a 256-entry state map would fill with the other test's sockets).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A numeric stats field of `mode` (0 when absent).
pub fn stat(out: &DumpOutput, mode: &str, field: &str) -> u64 {
    out.stats_of(mode)[field].as_u64().unwrap_or(0)
}

/// One line with the loss counters of a mode.
pub fn stats_line(out: &DumpOutput, mode: &str) -> String {
    format!(
        "{mode}: drops {} map_full {} resyncs {} unobserved_changes {} perf_lost {} \
         kernel_drops {} connection_rows {}",
        stat(out, mode, "drops"),
        stat(out, mode, "map_full"),
        stat(out, mode, "resyncs"),
        stat(out, mode, "unobserved_changes"),
        stat(out, mode, "perf_lost"),
        stat(out, mode, "kernel_drops"),
        stat(out, mode, "connection_rows")
    )
}

// ---------------------------------------------------------------------------------------------
// Running a dump with the oracle
// ---------------------------------------------------------------------------------------------

/// The connections dump of every oracle test: all three modes, JSON, plus `extra`.
pub fn connections_spec(extra: &[&str]) -> DumpSpec {
    DumpSpec::json(
        "connections",
        &[&["--modes", "ring,perf,poll"][..], extra].concat(),
    )
}

/// How long before the end of the dump's collection window the ss snapshot is taken.
pub const ORACLE_LEAD: Duration = Duration::from_millis(600);

/// One dump, the workload around it, and the oracle read near its end.
pub struct OracleRun<B, T> {
    /// The dump's output.
    pub out: DumpOutput,
    /// What `before` returned (kept alive until now).
    pub before: B,
    /// What `during` returned (kept alive until now).
    pub during: T,
    /// `ss -tanpi`, taken while the workload idled, [`ORACLE_LEAD`] before the window closed.
    pub ss: Vec<SsSocket>,
    /// CLOCK_MONOTONIC ns just before `during` started and just after it returned.
    pub window: (u64, u64),
}

impl<B, T> OracleRun<B, T> {
    /// A timestamp taken while `during` ran.
    pub fn within(&self) -> Stamp {
        Stamp::Within(self.window.0, self.window.1)
    }
}

/// CLOCK_MONOTONIC now, ns (the clock of the rows' timestamps).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Runs `before` (state that must predate the dump), starts the dump and waits for its probes,
/// runs `during`, idles until [`ORACLE_LEAD`] before the collection window closes, reads ss,
/// and collects the dump. When `during` ends too late for that (slow machine), everything is
/// dropped and the attempt repeated with twice the duration (3 attempts).
pub fn run_with_oracle<B, T>(
    test: &str,
    spec: &DumpSpec,
    duration: Duration,
    mut before: impl FnMut() -> B,
    mut during: impl FnMut(&mut B) -> T,
) -> OracleRun<B, T> {
    let mut duration = duration;
    for attempt in 1..=3 {
        let mut b = before();
        let mut dump = RunningDump::start(spec, duration);
        dump.wait_ready();
        let started = Instant::now();
        let window_start = monotonic_ns();
        let t = during(&mut b);
        let window = (window_start, monotonic_ns());
        let workload_took = started.elapsed();
        let deadline = dump.deadline();
        let snap_at = deadline - ORACLE_LEAD;
        let now = Instant::now();
        if now > snap_at {
            assert!(
                attempt < 3,
                "{test}: workload ({workload_took:?}) still too slow for a {duration:?} dump \
                 after 3 attempts"
            );
            eprintln!(
                "note: {test}: workload took {workload_took:?}, too long for a {duration:?} \
                 dump; retrying with twice the duration"
            );
            drop(dump);
            drop(t);
            drop(b);
            duration *= 2;
            continue;
        }
        std::thread::sleep(snap_at - now);
        let ss_started = Instant::now();
        let ss = snapshot();
        let ss_took = ss_started.elapsed();
        println!(
            "{test}: workload {workload_took:?}; ss snapshot of {} sockets taken in {ss_took:?}, \
             {:?} before the {duration:?} window closed",
            ss.len(),
            deadline.saturating_duration_since(ss_started + ss_took)
        );
        let out = dump.finish();
        return OracleRun {
            out,
            before: b,
            during: t,
            ss,
            window,
        };
    }
    unreachable!()
}

// ---------------------------------------------------------------------------------------------
// Workload helpers
// ---------------------------------------------------------------------------------------------

/// Raises RLIMIT_NOFILE's soft limit to at least `want` (at most the hard limit); returns the
/// new soft limit.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: valid pointer to an rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
    lim.rlim_cur
}

/// SO_LINGER {on, 0}: close() then resets the connection (RST) instead of a FIN.
pub fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_socket_option(stream, libc::SO_LINGER, &linger, "SO_LINGER");
}

/// connect() to a closed IPv4 port without bind(), the way a client does; returns the local
/// port the kernel chose (it keeps it after the refusal), or the error when the connect was
/// not refused.
pub fn refused_connect(to: std::net::SocketAddrV4) -> std::io::Result<u16> {
    // SAFETY: plain socket syscalls on a descriptor this function owns and closes; the
    // sockaddr_in structs are fully initialised and correctly sized.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = to.port().to_be();
        sa.sin_addr.s_addr = u32::from(*to.ip()).to_be();
        let rc = libc::connect(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let result = if rc == 0 {
            Err(std::io::Error::other("connect succeeded: the port is open"))
        } else {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ECONNREFUSED) {
                Err(err)
            } else {
                let mut local: libc::sockaddr_in = std::mem::zeroed();
                let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                if libc::getsockname(
                    fd,
                    &mut local as *mut libc::sockaddr_in as *mut libc::sockaddr,
                    &mut len,
                ) != 0
                {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(u16::from_be(local.sin_port))
                }
            }
        };
        libc::close(fd);
        result
    }
}

/// A loopback connection of the test process: both streams, and what each side wrote.
pub struct Pair {
    /// The connecting side.
    pub client: TcpStream,
    /// The accepted side.
    pub server: TcpStream,
    /// Bytes the client wrote (and the server read).
    pub c2s: u64,
    /// Bytes the server wrote (and the client read).
    pub s2c: u64,
}

impl Pair {
    /// The client socket's (local, peer).
    pub fn client_tuple(&self) -> Tuple {
        (
            self.client.local_addr().unwrap(),
            self.client.peer_addr().unwrap(),
        )
    }

    /// The server socket's (local, peer).
    pub fn server_tuple(&self) -> Tuple {
        let (l, p) = self.client_tuple();
        (p, l)
    }
}

/// Connects to `listener`, accepts, moves `c2s` bytes client → server and then `s2c` back, in
/// this thread (both amounts small enough for the loopback buffers: at most 64 KiB).
pub fn open_pair(listener: &TcpListener, c2s: usize, s2c: usize) -> Pair {
    assert!(
        c2s <= 65536 && s2c <= 65536,
        "open_pair moves at most 64 KiB"
    );
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    let server =
        crate::kernel_support::accept_within(listener, Duration::from_secs(10)).expect("accept");
    assert_eq!(client.local_addr().unwrap(), server.peer_addr().unwrap());
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    (&client).write_all(&vec![b'c'; c2s]).expect("client write");
    let mut buf = vec![0u8; c2s];
    (&server).read_exact(&mut buf).expect("server read");
    (&server).write_all(&vec![b's'; s2c]).expect("server write");
    let mut buf = vec![0u8; s2c];
    (&client).read_exact(&mut buf).expect("client read");
    Pair {
        client,
        server,
        c2s: c2s as u64,
        s2c: s2c as u64,
    }
}

/// Opens `count` connections to `listener` fast (see [`ping_pong`]): 4 bytes each way.
pub fn hold_connections(listener: &TcpListener, count: usize) -> Vec<Pair> {
    ping_pong(listener, count, "bto-hold-connect", "bto-hold-accept")
        .into_iter()
        .map(|(client, server)| Pair {
            client,
            server,
            c2s: 4,
            s2c: 4,
        })
        .collect()
}

/// A `python3 -c SCRIPT ARGS…` child that reports over stdout lines; killed on drop (also when
/// the test panics). Its stdin stays open: scripts wait on it to hold their sockets.
pub struct PyHelper {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl PyHelper {
    /// Starts the helper; `None` when python3 cannot be run.
    pub fn start(script: &str, args: &[String]) -> Option<Self> {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Some(PyHelper { child, lines: rx })
    }

    /// The helper's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line it prints (panics after 15 s or when it exits).
    pub fn line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(15)) {
            Ok(line) => line,
            Err(e) => {
                let status = self.child.try_wait();
                panic!(
                    "python helper {} gave no line ({e}); status {status:?}",
                    self.pid()
                )
            }
        }
    }
}

impl Drop for PyHelper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1`.
pub const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// `::1`.
pub const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A listener's tuple in the rows: (local, unspecified address of its family, port 0).
pub fn listener_tuple(local: SocketAddr) -> Tuple {
    let any = if local.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    (local, SocketAddr::new(any, 0))
}
