// Why a hand-written parser and not the `procfs` crate (measured 2026-12-02, issue 9 step 5):
// the seed path, `read_processes("/proc")` (stat + status + task/*/schedstat per process), vs
// procfs 0.17.0 computing the same fields (`all_processes()`, `stat()`, `status().ruid`,
// `tasks()` -> `schedstat()`), release build, Debian 12, kernel 6.18, 2 cores (load ~3 from other
// test runs), runs interleaved with alternating order after one warm-up each:
//   85 processes, 3 x 31 runs:   hand-written min 3.94 / median 4.37-4.54 / max 4.64-10.45 ms
//                                procfs 0.17  min 5.13-5.90 / median 6.16-6.42 / max 8.01-14.73 ms
//   ~486 processes, 3 x 21 runs: hand-written min 22.6-27.3 / median 30.0-33.6 / max 37.4-65.3 ms
//                                procfs 0.17  min 35.1-40.6 / median 40.4-47.6 / max 52.1-58.3 ms
// (ranges are over the 3 invocations). The hand-written parser is ~1.35-1.45x faster at the
// median, so it stays and `procfs` is not a dependency. Command: a throwaway `evalbench` binary
// in a copy of this workspace, `cargo run --release -p evalbench -- 31` (resp. `-- 21` with 400
// extra `sleep` processes running), three times each.

//! Seeding the tables from `/proc`: the processes and TCP connections that already exist when the
//! probes attach.
//!
//! The eBPF probes only see *changes* after they are attached. At start-up the bridge therefore
//! reads the current processes ([`read_processes`]) and TCP sockets ([`read_tcp_connections`])
//! from procfs and converts them into the shared kernel types ([`ProcKey`]/[`ProcState`],
//! [`ConnKey`]/[`ConnState`]), so the ordered tables start complete.
//!
//! # What a seed can and cannot know
//!
//! - **Process start time.** `/proc/<pid>/stat` gives the start time in clock ticks
//!   (`USER_HZ`, usually 100 per second) since boot, rounded *down*; the probes key processes on
//!   the kernel's exact CLOCK_MONOTONIC start time in ns. The seeded `start_ns` is therefore up to
//!   one tick (plus a few µs of clock-offset measurement error) *earlier* than the kernel's value.
//!   Compare the two with [`start_ns_matches`], never with `==`. The boot-time → monotonic
//!   conversion uses the *current* `CLOCK_BOOTTIME − CLOCK_MONOTONIC` offset, so a system
//!   suspend between a process's start and the seed shifts its seeded `start_ns` too early by the
//!   time spent suspended.
//! - **CPU time** comes from `utime + stime` (whole thread group) in ticks, so it is also only
//!   tick-accurate.
//! - **`comm`** is the thread-group leader's name, cut to 15 bytes and NUL-padded like the
//!   kernel's `TASK_COMM_LEN`. procfs shows longer names for some kernel threads (e.g. workqueue
//!   workers, `kworker/u8:0-events_unbound`); their seeded `comm` is the first 15 bytes of that
//!   and may differ from the probes' `task->comm`.
//! - **Byte counters** of connections are unknown at seed time and are reported as 0, as is the
//!   connection `start_ns` (it is not in procfs).
//! - **Namespaces.** pids are those of the pid namespace of the procfs mount at `proc_root`, and
//!   `net/tcp*` show the network namespace of the *reading* process (`/proc/net` is
//!   `/proc/self/net`). Both match what the probes see when the bridge runs in the initial
//!   namespaces.
//!
//! Results come in the order procfs lists them (ascending pid for processes, hash-bucket order
//! of `net/tcp` then `net/tcp6` for connections); nothing here sorts them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sys::clock::{clock_ns, Clock};
use crate::sys::errno::ESRCH;
use crate::sys::fs::{read_at, read_prefix_at};
use probe_common::{
    conn_flags, proc_flags, ConnKey, ConnState, ProcKey, ProcState, AF_INET, AF_INET6, COMM_LEN,
};

/// `PF_KTHREAD` in `task_struct.flags` (stat field 9): the task is a kernel thread.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Slack added to one clock tick by [`start_ns_matches`], in ns (1 ms): covers the error of
/// measuring the boot-time → monotonic clock offset.
pub const START_NS_SLACK_NS: u64 = 1_000_000;

/// Why seeding failed as a whole, or why one piece of procfs text could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A file or directory that the seed cannot do without (the `proc_root` directory itself,
    /// `net/tcp`, an existing `net/tcp6`) could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// procfs text did not have the expected shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which kind of text: `"stat"`, `"status"`, `"net/tcp line"`, ...
        what: &'static str,
        /// What was wrong, with an excerpt of the offending text.
        reason: String,
    },
}

/// Counts of what a seed left out. Processes or sockets that vanished while being read (their
/// process exited: `ENOENT`/`ESRCH`) are normal and are *not* counted anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Entries (process directories, or lines of `net/tcp*`) that existed but could not be read
    /// or parsed, e.g. `EACCES` under `hidepid=1`, or malformed text. Each was left out.
    pub skipped: usize,
    /// `/proc/<pid>/fd` directories that could not be listed for a reason other than the process
    /// exiting (typically `EACCES` without `CAP_SYS_PTRACE`/root): sockets held only by those
    /// processes are returned without an owner. Always 0 for processes.
    pub fd_dirs_unreadable: usize,
}

/// A process that existed when the seed ran, as the probes would have recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeededProcess {
    /// `tgid` = the pid; `start_ns` = start time converted to CLOCK_MONOTONIC ns, accurate to one
    /// clock tick (see [`start_ns_matches`] and the module docs).
    pub key: ProcKey,
    /// `ppid`, `uid` (real), `comm` (≤ 15 bytes, NUL-padded), `start_ns` (= `key.start_ns`),
    /// `cpu_ns` (`utime + stime` of all threads, in ns, tick-accurate), `threads`, `nice` (stat
    /// field 19), `rss_bytes` (status `VmRSS`, with [`proc_flags::RSS_KNOWN`] in `flags` when
    /// the line is there). Other `flags`, `exit_ns`,
    /// `exit_code`, `last_emit_ns` and `poll_seq` are 0 — also for zombies (see
    /// [`SeededProcess::task_state`]), since procfs has no exit time.
    pub state: ProcState,
    /// The raw start time, stat field 22: clock ticks (`USER_HZ`) since boot, rounded down.
    pub start_ticks: u64,
    /// The task is a kernel thread (`PF_KTHREAD` set in stat field 9). Kept in the results so
    /// that views can show or hide them.
    pub kernel_thread: bool,
    /// The one-letter scheduler state of stat field 3 (`b'R'`, `b'S'`, `b'D'`, `b'Z'` zombie,
    /// ...). A zombie has exited but is not reaped yet.
    pub task_state: u8,
    /// `/proc/<pid>/cmdline` in the kernel capture's layout (its first
    /// [`probe_common::CMDLINE_LEN`] bytes, `TRUNCATED` when longer); `None` when empty (kernel
    /// threads, zombies) or unreadable.
    pub cmdline: Option<probe_common::Cmdline>,
}

/// A TCP socket that existed when the seed ran, as the probes would have recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeededConnection {
    /// Family ([`AF_INET`] from `net/tcp`, [`AF_INET6`] from `net/tcp6`, also for IPv4-mapped
    /// addresses), addresses in network byte order (IPv4 in bytes 0..4, the rest zero), ports in
    /// host order.
    pub key: ConnKey,
    /// `tcp_state` (kernel numbering, see [`crate::row::tcp_state_name`]), `states_seen_mask` = `1 <<
    /// tcp_state` (the only state known to have been seen). When an owner was found: `pid`
    /// (tgid), `comm` (the owner's thread-group leader, ≤ 15 bytes) and
    /// [`conn_flags::OWNER_KNOWN`] in `flags`; otherwise those are 0. `bytes_sent`,
    /// `bytes_received`, `start_ns`, `end_ns`, `last_emit_ns`, `poll_seq` are 0: unknown at seed
    /// time.
    pub state: ConnState,
    /// The socket's inode number (0 for `TIME-WAIT` and request sockets, which have no file and
    /// therefore no owner). Several entries can share a key (e.g. `SO_REUSEPORT` listeners); the
    /// inode tells them apart.
    pub inode: u64,
}

/// The fields of `/proc/<pid>/stat` that the seed uses, see [`parse_stat_line`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFields {
    /// Field 1.
    pub pid: u32,
    /// Field 2 without the parentheses, cut to 15 bytes, NUL-padded.
    pub comm: [u8; COMM_LEN],
    /// Field 3, one letter.
    pub state: u8,
    /// Field 4.
    pub ppid: u32,
    /// Field 9, `task_struct.flags`.
    pub flags: u32,
    /// Field 14, user CPU time in clock ticks.
    pub utime: u64,
    /// Field 15, system CPU time in clock ticks.
    pub stime: u64,
    /// Field 19, nice value (-20..19).
    pub nice: i32,
    /// Field 20, number of threads.
    pub num_threads: u32,
    /// Field 52, the exit status in `waitpid` form (raw: signal in the low 7 bits, core flag
    /// 0x80, status in bits 8..16); `None` on kernels before 3.5, which do not show it.
    pub exit_code: Option<u32>,
    /// Field 22, start time in clock ticks since boot.
    pub starttime: u64,
}

/// One socket line of `/proc/net/tcp` or `/proc/net/tcp6`, see [`parse_proc_net_tcp_line`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcNetTcpEntry {
    /// Family as given to the parser, addresses in network byte order, ports in host order.
    pub key: ConnKey,
    /// The `st` column: kernel TCP state number.
    pub tcp_state: u32,
    /// The `uid` column (socket owner's uid as the kernel records it).
    pub uid: u32,
    /// The `inode` column (0 when the socket has no file).
    pub inode: u64,
}

pub use crate::sys::clock::clock_tick_ns;

/// Whether a start time seeded from procfs (`seeded_start_ns`, from [`SeededProcess`]) and the
/// kernel's exact start time of the same process (`exact_start_ns`, e.g. from a probe record)
/// are the same process start: true when they differ by at most `tick_ns` (see
/// [`clock_tick_ns`]) plus [`START_NS_SLACK_NS`], in either direction.
pub fn start_ns_matches(seeded_start_ns: u64, exact_start_ns: u64, tick_ns: u64) -> bool {
    seeded_start_ns.abs_diff(exact_start_ns) <= tick_ns.saturating_add(START_NS_SLACK_NS)
}

/// `CLOCK_BOOTTIME − CLOCK_MONOTONIC` now, in ns: the time the system has spent suspended since
/// boot. Measured with the narrowest of a few `clock_gettime` samples (error: a few µs at most).
pub fn boottime_minus_monotonic_ns() -> u64 {
    let mut best: Option<(u64, u64)> = None; // (window, offset)
    for _ in 0..3 {
        let m1 = clock_ns(Clock::Monotonic);
        let b = clock_ns(Clock::Boottime);
        let m2 = clock_ns(Clock::Monotonic);
        let window = m2.saturating_sub(m1);
        let mid = m1 + window / 2;
        let offset = b.saturating_sub(mid);
        if best.is_none_or(|(w, _)| window < w) {
            best = Some((window, offset));
        }
    }
    best.map_or(0, |(_, offset)| offset)
}

/// Converts a stat start time (`start_ticks`, clock ticks since boot) into CLOCK_MONOTONIC ns:
/// `start_ticks × tick_ns − boot_minus_mono_ns`, saturating at 0 and at `u64::MAX`.
pub fn start_ticks_to_monotonic_ns(start_ticks: u64, tick_ns: u64, boot_minus_mono_ns: u64) -> u64 {
    start_ticks
        .saturating_mul(tick_ns)
        .saturating_sub(boot_minus_mono_ns)
}

/// Parses the whole content of `/proc/<pid>/stat` (bytes: `comm` need not be UTF-8).
///
/// `comm` is taken between the first `(` and the *last* `)`, so names containing spaces,
/// parentheses or newlines parse correctly. Requires at least fields 1 to 22. Never panics;
/// any other shape is [`SeedError::Malformed`].
pub fn parse_stat_line(content: &[u8]) -> Result<StatFields, SeedError> {
    let bad = |reason: &str| SeedError::Malformed {
        what: "stat",
        reason: format!("{reason} in {:?}", excerpt(content)),
    };
    let open = content
        .iter()
        .position(|&b| b == b'(')
        .ok_or_else(|| bad("no '('"))?;
    let close = content
        .iter()
        .rposition(|&b| b == b')')
        .ok_or_else(|| bad("no ')'"))?;
    if close < open {
        return Err(bad("')' before '('"));
    }
    let pid = parse_dec::<u32>(content[..open].trim_ascii()).ok_or_else(|| bad("bad pid"))?;
    let comm = comm_array(&content[open + 1..close]);
    // Fields 3.. follow the last ')'.
    let rest: Vec<&[u8]> = content[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    // rest[i] is field i + 3.
    let field = |n: usize| rest.get(n - 3).copied();
    if rest.len() < 22 - 2 {
        return Err(bad("fewer than 22 fields"));
    }
    let state = match field(3) {
        Some([c]) => *c,
        _ => return Err(bad("bad state field")),
    };
    let num_u32 = |n: usize, name: &str| {
        field(n)
            .and_then(parse_dec::<u32>)
            .ok_or_else(|| bad(&format!("bad {name} (field {n})")))
    };
    let num_u64 = |n: usize, name: &str| {
        field(n)
            .and_then(parse_dec::<u64>)
            .ok_or_else(|| bad(&format!("bad {name} (field {n})")))
    };
    Ok(StatFields {
        pid,
        comm,
        state,
        ppid: num_u32(4, "ppid")?,
        flags: num_u32(9, "flags")?,
        utime: num_u64(14, "utime")?,
        stime: num_u64(15, "stime")?,
        nice: field(19)
            .and_then(|t| match t.strip_prefix(b"-") {
                Some(digits) => parse_dec::<i32>(digits).map(|n| -n),
                None => parse_dec::<i32>(t),
            })
            .ok_or_else(|| bad("bad nice (field 19)"))?,
        num_threads: num_u32(20, "num_threads")?,
        starttime: num_u64(22, "starttime")?,
        exit_code: field(52).and_then(parse_dec::<u32>),
    })
}

/// Parses the real uid (the first value of the `Uid:` line) from the content of
/// `/proc/<pid>/status`. Never panics; a missing or bad line is [`SeedError::Malformed`].
pub fn parse_status_uid(content: &[u8]) -> Result<u32, SeedError> {
    let bad = |reason: &str| SeedError::Malformed {
        what: "status",
        reason: reason.to_string(),
    };
    let line = content
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"Uid:"))
        .ok_or_else(|| bad("no Uid: line"))?;
    let first = line
        .split(|b| b.is_ascii_whitespace())
        .find(|t| !t.is_empty())
        .ok_or_else(|| bad("empty Uid: line"))?;
    parse_dec::<u32>(first).ok_or_else(|| bad(&format!("bad uid {:?}", excerpt(first))))
}

/// The resident set size from the `VmRSS:` line of `/proc/<pid>/status` (`N kB`), bytes;
/// `None` when there is no such line (a kernel thread, a zombie) or it is malformed.
pub fn parse_status_rss_bytes(content: &[u8]) -> Option<u64> {
    status_kib_line(content, b"VmRSS:")
}

/// The virtual memory size from the `VmSize:` line of `/proc/<pid>/status`, bytes (`None` as
/// for [`parse_status_rss_bytes`]).
pub fn parse_status_virt_bytes(content: &[u8]) -> Option<u64> {
    status_kib_line(content, b"VmSize:")
}

fn status_kib_line(content: &[u8], name: &[u8]) -> Option<u64> {
    let line = content
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(name))?;
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty());
    let kib = parse_dec::<u64>(words.next()?)?;
    (words.next()? == b"kB").then(|| kib.saturating_mul(1024))
}

/// `/proc/<pid>/cmdline` content (at most `CMDLINE_LEN + 1` bytes read) in the layout of the
/// kernel's exec-time capture; `None` when empty.
pub fn cmdline_from_proc(content: &[u8]) -> Option<probe_common::Cmdline> {
    use probe_common::{cmdline_flags, Cmdline, CMDLINE_LEN};
    if content.is_empty() {
        return None;
    }
    let n = content.len().min(CMDLINE_LEN);
    let mut cmdline = Cmdline::default();
    cmdline.bytes[..n].copy_from_slice(&content[..n]);
    cmdline.len = n as u32;
    if content.len() > CMDLINE_LEN {
        cmdline.flags = cmdline_flags::TRUNCATED;
    }
    Some(cmdline)
}

/// Parses one socket line of `/proc/net/tcp` (`family` = [`AF_INET`]) or `/proc/net/tcp6`
/// (`family` = [`AF_INET6`]).
///
/// Addresses are hex dumps of the kernel's in-memory 32-bit words (`%08X` of each `__be32`),
/// so each word is converted with the host's byte order into network-order bytes; ports are
/// host-order hex. The header line, an unknown family, wrong address lengths, non-hex digits
/// or missing columns are [`SeedError::Malformed`]; never panics. `TIME-WAIT` and request
/// sockets (shorter lines, inode 0) parse normally.
pub fn parse_proc_net_tcp_line(line: &str, family: u16) -> Result<ProcNetTcpEntry, SeedError> {
    let bad = |reason: &str| SeedError::Malformed {
        what: "net/tcp line",
        reason: format!("{reason} in {:?}", excerpt(line.as_bytes())),
    };
    let words = match family {
        AF_INET => 1,
        AF_INET6 => 4,
        _ => return Err(bad(&format!("unknown family {family}"))),
    };
    let cols: Vec<&str> = line.split_ascii_whitespace().collect();
    if cols.len() < 10 {
        return Err(bad("fewer than 10 columns"));
    }
    let slot = cols[0].strip_suffix(':').map(str::as_bytes);
    if slot.and_then(parse_dec::<u64>).is_none() {
        return Err(bad("bad slot column"));
    }
    let (saddr, sport) = parse_endpoint(cols[1], words).ok_or_else(|| bad("bad local address"))?;
    let (daddr, dport) = parse_endpoint(cols[2], words).ok_or_else(|| bad("bad remote address"))?;
    let tcp_state = parse_hex(cols[3], 2).ok_or_else(|| bad("bad st column"))?;
    let uid = parse_dec::<u32>(cols[7].as_bytes()).ok_or_else(|| bad("bad uid column"))?;
    let inode = parse_dec::<u64>(cols[9].as_bytes()).ok_or_else(|| bad("bad inode column"))?;
    Ok(ProcNetTcpEntry {
        key: ConnKey {
            family,
            sport: sport as u16,
            dport: dport as u16,
            pad: 0,
            saddr,
            daddr,
        },
        tcp_state,
        uid,
        inode,
    })
}

/// The inode of a `/proc/<pid>/fd/<n>` link target of the form `socket:[INODE]`, or `None`
/// for any other target (files, pipes, `anon_inode:...`, malformed text).
pub fn parse_socket_link(target: &OsStr) -> Option<u64> {
    let inner = target
        .as_bytes()
        .strip_prefix(b"socket:[")?
        .strip_suffix(b"]")?;
    parse_dec::<u64>(inner)
}

/// Reads every process listed in `proc_root` (normally `/proc`) — one entry per thread group,
/// kernel threads included (marked [`SeededProcess::kernel_thread`]) — in procfs listing order.
///
/// Processes that exit while being read are left out silently; ones that cannot be read or
/// parsed for another reason are left out and counted (see [`read_processes_with_report`];
/// this function logs the count at debug level). Fails only when `proc_root` itself cannot be
/// listed.
pub fn read_processes(proc_root: &Path) -> Result<Vec<SeededProcess>, SeedError> {
    let (procs, report) = read_processes_with_report(proc_root)?;
    if report.skipped > 0 {
        log::debug!(
            "procfs seed: {} processes could not be read",
            report.skipped
        );
    }
    Ok(procs)
}

/// [`read_processes`], also returning how many processes were skipped.
///
/// `stat` and `status` are opened relative to one open `/proc/<pid>` directory, so both
/// describe the same process even if the pid is reused meanwhile.
pub fn read_processes_with_report(
    proc_root: &Path,
) -> Result<(Vec<SeededProcess>, SeedReport), SeedError> {
    let clocks = SeedClocks {
        tick_ns: clock_tick_ns(),
        boot_offset: boottime_minus_monotonic_ns(),
        cgroup2_root: crate::cgroups::cgroup2_mount(),
    };
    let mut report = SeedReport::default();
    let mut out = Vec::new();
    for (pid, dir) in pid_dirs(proc_root)? {
        match read_one_process(&dir, pid, &clocks) {
            Ok(p) => out.push(p),
            Err(Fail::Vanished) => {}
            Err(Fail::Other(e)) => {
                log::trace!("procfs seed: skipping {}: {e}", dir.display());
                report.skipped += 1;
            }
        }
    }
    Ok((out, report))
}

/// Reads the TCP sockets of `proc_root/net/tcp` then `proc_root/net/tcp6` (in file order) and
/// finds each socket's owner by scanning the `socket:[INODE]` links in `/proc/<pid>/fd/*`: the
/// process with the lowest pid holding the socket wins (e.g. the parent that passed it on). Sockets of
/// processes whose fd directory cannot be read get no owner.
///
/// Malformed lines and unreadable fd directories are skipped and counted (see
/// [`read_tcp_connections_with_report`]; this function logs the counts at debug level). A
/// missing `net/tcp6` (IPv6 disabled) counts as empty; an unreadable `net/tcp` or an existing
/// but unreadable `net/tcp6` is an error.
pub fn read_tcp_connections(proc_root: &Path) -> Result<Vec<SeededConnection>, SeedError> {
    let (conns, report) = read_tcp_connections_with_report(proc_root)?;
    if report != SeedReport::default() {
        log::debug!(
            "procfs seed: {} malformed net/tcp lines, {} fd directories unreadable",
            report.skipped,
            report.fd_dirs_unreadable
        );
    }
    Ok(conns)
}

/// [`read_tcp_connections`], also returning what was skipped.
pub fn read_tcp_connections_with_report(
    proc_root: &Path,
) -> Result<(Vec<SeededConnection>, SeedReport), SeedError> {
    let mut report = SeedReport::default();
    let mut out = Vec::new();
    for (file, family, required) in [("tcp", AF_INET, true), ("tcp6", AF_INET6, false)] {
        let path = proc_root.join("net").join(file);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(SeedError::Io { path, source }),
        };
        let text = String::from_utf8_lossy(&text);
        for line in text.lines() {
            let first = line.split_ascii_whitespace().next();
            if first.is_none() || first == Some("sl") {
                continue; // blank line or header
            }
            match parse_proc_net_tcp_line(line, family) {
                Ok(e) => out.push(SeededConnection {
                    key: e.key,
                    state: ConnState {
                        tcp_state: e.tcp_state,
                        states_seen_mask: 1u32.checked_shl(e.tcp_state).unwrap_or(0),
                        ..ConnState::default()
                    },
                    inode: e.inode,
                }),
                Err(e) => {
                    log::trace!("procfs seed: {}: {e}", path.display());
                    report.skipped += 1;
                }
            }
        }
    }

    let wanted: usize = out.iter().filter(|c| c.inode != 0).count();
    if wanted > 0 {
        let owners = find_socket_owners(proc_root, &out, &mut report)?;
        for c in &mut out {
            if let Some(&(pid, comm)) = owners.get(&c.inode) {
                c.state.pid = pid;
                c.state.comm = comm;
                c.state.flags |= conn_flags::OWNER_KNOWN;
            }
        }
    }
    Ok((out, report))
}

/// Maps socket inode → (owning tgid, leader comm); the first pid found wins.
fn find_socket_owners(
    proc_root: &Path,
    conns: &[SeededConnection],
    report: &mut SeedReport,
) -> Result<HashMap<u64, (u32, [u8; COMM_LEN])>, SeedError> {
    // None = wanted, not yet owned.
    let mut owners: HashMap<u64, Option<(u32, [u8; COMM_LEN])>> = conns
        .iter()
        .filter(|c| c.inode != 0)
        .map(|c| (c.inode, None))
        .collect();
    let mut unowned = owners.len();
    // procfs lists pids in ascending order already; sorting makes "lowest pid wins" hold for
    // any directory given as `proc_root`.
    let mut dirs = pid_dirs(proc_root)?;
    dirs.sort_by_key(|(pid, _)| *pid);
    for (pid, dir) in dirs {
        if unowned == 0 {
            break;
        }
        let entries = match std::fs::read_dir(dir.join("fd")) {
            Ok(e) => e,
            Err(e) if is_vanished(&e) => continue,
            Err(_) => {
                report.fd_dirs_unreadable += 1;
                continue;
            }
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            // A link that cannot be read was closed meanwhile (or the process exited).
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if let Some(inode) = parse_socket_link(target.as_os_str()) {
                if matches!(owners.get(&inode), Some(None)) && !found.contains(&inode) {
                    found.push(inode);
                }
            }
        }
        if found.is_empty() {
            continue;
        }
        // The owner's name; a process that exited meanwhile does not own anything any more.
        let Ok(stat) = std::fs::read(dir.join("stat")) else {
            continue;
        };
        let Ok(fields) = parse_stat_line(&stat) else {
            continue;
        };
        for inode in found {
            owners.insert(inode, Some((pid, fields.comm)));
            unowned -= 1;
        }
    }
    Ok(owners
        .into_iter()
        .filter_map(|(inode, o)| o.map(|o| (inode, o)))
        .collect())
}

/// Why one process could not be read.
enum Fail {
    /// It exited meanwhile (`ENOENT`/`ESRCH`).
    Vanished,
    /// Anything else.
    Other(SeedError),
}

impl From<SeedError> for Fail {
    fn from(e: SeedError) -> Self {
        Fail::Other(e)
    }
}

/// What every process of one seed is read with.
struct SeedClocks {
    tick_ns: u64,
    boot_offset: u64,
    /// The cgroup2 mount, to turn `/proc/PID/cgroup` paths into cgroup ids.
    cgroup2_root: Option<PathBuf>,
}

fn read_one_process(dir: &Path, pid: u32, clocks: &SeedClocks) -> Result<SeededProcess, Fail> {
    let SeedClocks {
        tick_ns,
        boot_offset,
        ..
    } = *clocks;
    let io_fail = |e: io::Error, name: &str| {
        if is_vanished(&e) {
            Fail::Vanished
        } else {
            Fail::Other(SeedError::Io {
                path: dir.join(name),
                source: e,
            })
        }
    };
    let dir_file = File::open(dir).map_err(|e| io_fail(e, ""))?;
    let stat = read_at(&dir_file, c"stat").map_err(|e| io_fail(e, "stat"))?;
    let status = read_at(&dir_file, c"status").map_err(|e| io_fail(e, "status"))?;
    if stat.is_empty() {
        // A task being torn down can show an empty file.
        return Err(Fail::Vanished);
    }
    let f = parse_stat_line(&stat)?;
    if f.pid != pid {
        return Err(Fail::Other(SeedError::Malformed {
            what: "stat",
            reason: format!("pid {} in {}", f.pid, dir.display()),
        }));
    }
    let uid = parse_status_uid(&status)?;
    let rss_bytes = parse_status_rss_bytes(&status);
    let virt_bytes = parse_status_virt_bytes(&status);
    let cmdline = read_prefix_at(&dir_file, c"cmdline", probe_common::CMDLINE_LEN + 1)
        .ok()
        .and_then(|c| cmdline_from_proc(&c));
    let cgroup_id = clocks.cgroup2_root.as_deref().and_then(|root| {
        let content = read_at(&dir_file, c"cgroup").ok()?;
        let content = String::from_utf8_lossy(&content);
        crate::cgroups::id_of_path(root, crate::cgroups::v2_path_in_proc_cgroup(&content)?)
    });
    let start_ns = start_ticks_to_monotonic_ns(f.starttime, tick_ns, boot_offset);
    // utime + stime cover every thread, dead ones included, but only to a tick (rounded
    // down); the live threads' schedstat is exact in ns. The larger is the better figure:
    // exact for a process whose threads are all alive, a tick-accurate lower bound otherwise.
    let ticks_ns = f.utime.saturating_add(f.stime).saturating_mul(tick_ns);
    let cpu_ns = live_threads_runtime_ns(dir).map_or(ticks_ns, |live| live.max(ticks_ns));
    Ok(SeededProcess {
        key: ProcKey {
            tgid: pid,
            pad: 0,
            start_ns,
        },
        state: ProcState {
            ppid: f.ppid,
            uid,
            start_ns,
            cpu_ns,
            exit_code: f.exit_code.unwrap_or(0),
            threads: f.num_threads,
            comm: f.comm,
            nice: f.nice,
            rss_bytes: rss_bytes.unwrap_or(0),
            virt_bytes: virt_bytes.unwrap_or(0),
            cgroup_id: cgroup_id.unwrap_or(0),
            flags: if rss_bytes.is_some() && virt_bytes.is_some() {
                proc_flags::RSS_KNOWN
            } else {
                0
            } | if cgroup_id.is_some() {
                proc_flags::CGROUP_KNOWN
            } else {
                0
            },
            ..ProcState::default()
        },
        start_ticks: f.starttime,
        kernel_thread: f.flags & PF_KTHREAD != 0,
        task_state: f.state,
        cmdline,
    })
}

/// Sum of `se.sum_exec_runtime` (the first field of `task/*/schedstat`) over the live threads
/// of the process at `dir`, ns; `None` when the task list cannot be read.
fn live_threads_runtime_ns(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(dir.join("task")).ok()?.flatten() {
        // A thread that exited meanwhile has no schedstat any more: it counts as nothing.
        let Ok(text) = std::fs::read(task.path().join("schedstat")) else {
            continue;
        };
        let first = text
            .split(|b| b.is_ascii_whitespace())
            .next()
            .unwrap_or(&[]);
        total = total.saturating_add(parse_dec::<u64>(first)?);
    }
    Some(total)
}

/// The numeric entries of `proc_root`, in listing order.
fn pid_dirs(proc_root: &Path) -> Result<Vec<(u32, PathBuf)>, SeedError> {
    let io_err = |source| SeedError::Io {
        path: proc_root.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(proc_root).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        if let Some(pid) = parse_dec::<u32>(entry.file_name().as_bytes()) {
            out.push((pid, entry.path()));
        }
    }
    Ok(out)
}

fn is_vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH)
}

/// Copies a name into a kernel-style comm: at most `COMM_LEN - 1` bytes, NUL-padded.
fn comm_array(name: &[u8]) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    let n = name.len().min(COMM_LEN - 1);
    comm[..n].copy_from_slice(&name[..n]);
    comm
}

/// Parses ASCII decimal digits only (no sign, no spaces, not empty).
fn parse_dec<T: std::str::FromStr>(s: &[u8]) -> Option<T> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses exactly `len` ASCII hex digits.
fn parse_hex(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Parses `ADDR:PORT` where ADDR is `words` × 8 hex digits (each a native-endian u32 dump).
fn parse_endpoint(s: &str, words: usize) -> Option<([u8; 16], u32)> {
    let (addr, port) = s.split_once(':')?;
    if addr.len() != words * 8 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for i in 0..words {
        let word = parse_hex(addr.get(i * 8..i * 8 + 8)?, 8)?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    Some((bytes, parse_hex(port, 4)?))
}

/// A short, printable excerpt of procfs text for error messages.
fn excerpt(s: &[u8]) -> String {
    let cut = &s[..s.len().min(120)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn comm(s: &str) -> [u8; COMM_LEN] {
        comm_array(s.as_bytes())
    }

    /// Fields 3..=22 and a few more after a given `pid (comm)`.
    fn stat_with(
        pid: u32,
        name: &str,
        ppid: u32,
        flags: u32,
        utime: u64,
        stime: u64,
        start: u64,
    ) -> String {
        format!(
            "{pid} ({name}) S {ppid} {pid} {pid} 0 -1 {flags} 99 0 0 0 {utime} {stime} 0 0 20 0 1 0 \
             {start} 3133440 389 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        )
    }

    #[test]
    fn stat_real_line() {
        let line = b"6251 (cat) R 6247 6247 4832 0 -1 4194304 99 0 0 0 7 3 0 0 20 0 1 0 36239 \
                     3133440 389 18446744073709551615 94271322906624 94271322926505 0 0 0 0 0 0 0 \
                     0 0 0 17 1 0 0 0 0 0\n";
        let f = parse_stat_line(line).unwrap();
        assert_eq!(f.pid, 6251);
        assert_eq!(f.comm, comm("cat"));
        assert_eq!(f.state, b'R');
        assert_eq!(f.ppid, 6247);
        assert_eq!(f.flags, 4194304);
        assert_eq!((f.utime, f.stime), (7, 3));
        assert_eq!(f.starttime, 36239);
        assert_eq!(f.nice, 0);
    }

    #[test]
    fn stat_nice_may_be_negative() {
        let line = b"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 39 19 1 0 5 0 0 0\n";
        assert_eq!(parse_stat_line(line).unwrap().nice, 19);
        let line = b"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 0 -20 1 0 5 0 0 0\n";
        assert_eq!(parse_stat_line(line).unwrap().nice, -20);
        let line = b"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 0 -x 1 0 5 0 0 0\n";
        assert!(parse_stat_line(line).is_err());
    }

    #[test]
    fn status_rss_line() {
        let status = b"Name:\tcat\nUid:\t0\t0\t0\t0\nVmRSS:\t    1880 kB\nThreads:\t1\n";
        assert_eq!(parse_status_rss_bytes(status), Some(1880 * 1024));
        let status = b"Name:\tcat\nVmSize:\t    5480 kB\nVmRSS:\t 1880 kB\n";
        assert_eq!(parse_status_virt_bytes(status), Some(5480 * 1024));
        assert_eq!(parse_status_virt_bytes(b"Name:\tkthreadd\n"), None);
        assert_eq!(parse_status_rss_bytes(b"Name:\tkthreadd\nUid:\t0\n"), None);
        assert_eq!(parse_status_rss_bytes(b"VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_status_rss_bytes(b"VmRSS:\n"), None);
    }

    #[test]
    fn cmdline_from_proc_marks_truncation() {
        use probe_common::{cmdline_flags, CMDLINE_LEN};
        assert_eq!(cmdline_from_proc(b""), None);
        let c = cmdline_from_proc(b"sleep\x00100\x00").unwrap();
        assert_eq!((c.len, c.flags), (10, 0));
        assert_eq!(&c.bytes[..10], b"sleep\x00100\x00");
        let long = vec![b'x'; CMDLINE_LEN + 1];
        let c = cmdline_from_proc(&long).unwrap();
        assert_eq!(
            (c.len as usize, c.flags),
            (CMDLINE_LEN, cmdline_flags::TRUNCATED)
        );
    }

    #[test]
    fn stat_comm_with_spaces_and_parentheses() {
        let line = stat_with(1234, "a (b) c", 1, 0, 0, 0, 555);
        let f = parse_stat_line(line.as_bytes()).unwrap();
        assert_eq!(f.pid, 1234);
        assert_eq!(f.comm, comm("a (b) c"));
        assert_eq!(f.ppid, 1);
        assert_eq!(f.starttime, 555);

        for name in [") ) R 9 (", "x)", "(", ")", "", " ", "a\nb) S 1"] {
            let line = stat_with(7, name, 3, 0, 0, 0, 42);
            let f = parse_stat_line(line.as_bytes()).unwrap_or_else(|e| panic!("{name:?}: {e}"));
            assert_eq!(f.comm, comm(name), "{name:?}");
            assert_eq!((f.pid, f.ppid, f.starttime), (7, 3, 42), "{name:?}");
        }
    }

    #[test]
    fn stat_comm_is_cut_to_15_bytes_and_may_be_binary() {
        let line = stat_with(9, "kworker/u8:0-events_unbound", 2, PF_KTHREAD, 0, 0, 1);
        let f = parse_stat_line(line.as_bytes()).unwrap();
        assert_eq!(&f.comm[..15], b"kworker/u8:0-ev");
        assert_eq!(f.comm[15], 0);
        assert!(f.flags & PF_KTHREAD != 0);

        let mut line = b"10 (\xff\xfe x) S 1 ".to_vec();
        line.extend_from_slice(b"1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 77 0 0\n");
        let f = parse_stat_line(&line).unwrap();
        assert_eq!(&f.comm[..4], b"\xff\xfe x");
        assert_eq!((f.utime, f.stime, f.starttime), (5, 6, 77));
    }

    #[test]
    fn stat_malformed_is_an_error() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n",
            b"1234",
            b"1234 (cat R 1 2 3",
            b"1234 cat) R 1 2 3",
            b") 1234 (cat",
            b"x (cat) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"-1 (cat) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"1 (cat) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0",
            b"1 (cat) R -1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"1 (cat) RR 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"1 (cat) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5x",
            b"1 (cat) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999",
        ];
        for c in cases {
            assert!(
                parse_stat_line(c).is_err(),
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
        // Every prefix of a valid line either parses or errors, without panicking.
        let line = stat_with(1234, "a (b) c", 1, 0, 0, 0, 555);
        for i in 0..line.len() {
            let _ = parse_stat_line(&line.as_bytes()[..i]);
        }
        assert!(parse_stat_line(b"1 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5").is_ok());
    }

    #[test]
    fn status_uid() {
        let s = b"Name:\tcat\nUmask:\t0022\nState:\tR (running)\nTgid:\t1\nUid:\t1000\t1001\t1002\t1003\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_status_uid(s).unwrap(), 1000);
        assert!(parse_status_uid(b"Name:\tx\n").is_err());
        assert!(parse_status_uid(b"Uid:\n").is_err());
        assert!(parse_status_uid(b"Uid:\t-1\t0\n").is_err());
        assert!(parse_status_uid(b"").is_err());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn net_tcp_ipv4_line() {
        let line = "   1: 0100007F:0035 0200A8C0:D431 01 00000000:00000000 00:00000000 00000000   \
                    101        0 15043 1 00000000aad104ea 100 0 0 10 0";
        let e = parse_proc_net_tcp_line(line, AF_INET).unwrap();
        assert_eq!(e.key.family, AF_INET);
        assert_eq!(&e.key.saddr[..4], &[127, 0, 0, 1]);
        assert_eq!(&e.key.daddr[..4], &[192, 168, 0, 2]);
        assert!(e.key.saddr[4..].iter().all(|&b| b == 0));
        assert_eq!((e.key.sport, e.key.dport), (53, 0xD431));
        assert_eq!(e.tcp_state, 1);
        assert_eq!(e.uid, 101);
        assert_eq!(e.inode, 15043);
        assert_eq!(e.key.pad, 0);

        // A TIME-WAIT line: fewer columns, inode 0.
        let tw = "   5: 0100007F:1F90 0100007F:C350 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000";
        let e = parse_proc_net_tcp_line(tw, AF_INET).unwrap();
        assert_eq!((e.tcp_state, e.inode), (6, 0));
        assert_eq!((e.key.sport, e.key.dport), (8080, 50000));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn net_tcp6_lines() {
        // [::1]:53 listening.
        let line = "   0: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A \
                    00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 100 0 0 10 0";
        let e = parse_proc_net_tcp_line(line, AF_INET6).unwrap();
        assert_eq!(e.key.family, AF_INET6);
        let mut loopback = [0u8; 16];
        loopback[15] = 1;
        assert_eq!(e.key.saddr, loopback);
        assert_eq!(e.key.daddr, [0u8; 16]);
        assert_eq!(
            (e.key.sport, e.key.dport, e.tcp_state, e.inode),
            (53, 0, 10, 2222)
        );

        // 2001:db8::1:8080 <-> IPv4-mapped ::ffff:127.0.0.1:443 — stays AF_INET6.
        let line = "  12: B80D0120000000000000000001000000:1F90 0000000000000000FFFF00000100007F:01BB 01 \
                    00000000:00000000 00:00000000 00000000  1000        0 3333 1 0000000000000000 20 4 30 10 -1";
        let e = parse_proc_net_tcp_line(line, AF_INET6).unwrap();
        assert_eq!(
            e.key.saddr,
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(
            e.key.daddr,
            "::ffff:127.0.0.1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(e.key.family, AF_INET6);
        assert_eq!(
            (e.key.sport, e.key.dport, e.tcp_state, e.uid),
            (8080, 443, 1, 1000)
        );
    }

    #[test]
    fn net_tcp_malformed_is_an_error() {
        let good4 = "   1: 0100007F:0035 0200A8C0:D431 01 00000000:00000000 00:00000000 00000000   101        0 15043";
        assert!(parse_proc_net_tcp_line(good4, AF_INET).is_ok());
        let cases = [
            ("", AF_INET),
            ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", AF_INET),
            ("   1: 0100007F:0035 0200A8C0:D431 01", AF_INET),
            ("   1: 0100007F:0035 0200A8C0:D431 01 00000000:00000000 00:00000000 00000000   101        0", AF_INET),
            ("   1: 0100007F0035 0200A8C0:D431 01 0:0 0:0 0 101 0 15043", AF_INET),
            ("   1: 0100007:0035 0200A8C0:D431 01 0:0 0:0 0 101 0 15043", AF_INET),
            ("   1: 0100007G:0035 0200A8C0:D431 01 0:0 0:0 0 101 0 15043", AF_INET),
            ("   1: +100007F:0035 0200A8C0:D431 01 0:0 0:0 0 101 0 15043", AF_INET),
            ("   1: 0100007F:00035 0200A8C0:D431 01 0:0 0:0 0 101 0 15043", AF_INET),
            ("   1: 0100007F:0035 0200A8C0:D431 1 0:0 0:0 0 101 0 15043", AF_INET),
            ("   1: 0100007F:0035 0200A8C0:D431 01 0:0 0:0 0 x 0 15043", AF_INET),
            ("   1: 0100007F:0035 0200A8C0:D431 01 0:0 0:0 0 101 0 -5", AF_INET),
            ("   x 0100007F:0035 0200A8C0:D431 01 0:0 0:0 0 101 0 15043", AF_INET),
            // An IPv4 line parsed as IPv6 and vice versa.
            (good4, AF_INET6),
            ("   0: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 2222", AF_INET),
            (good4, 3),
            // Multi-byte UTF-8 where hex is expected must not panic on slicing.
            ("   1: 0100007é:0035 0200A8C0:D431 01 0:0 0:0 0 101 0 15043", AF_INET),
            ("   0: 000000000000000000000000010000é0:0035 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 2222", AF_INET6),
        ];
        for (line, family) in cases {
            assert!(
                parse_proc_net_tcp_line(line, family).is_err(),
                "{line:?} family {family}"
            );
        }
        for i in 0..good4.len() {
            let _ = parse_proc_net_tcp_line(&good4[..i], AF_INET);
        }
    }

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(OsStr::new("socket:[12345]")), Some(12345));
        assert_eq!(parse_socket_link(OsStr::new("socket:[]")), None);
        assert_eq!(parse_socket_link(OsStr::new("socket:[12")), None);
        assert_eq!(parse_socket_link(OsStr::new("socket:[x1]")), None);
        assert_eq!(parse_socket_link(OsStr::new("pipe:[12345]")), None);
        assert_eq!(parse_socket_link(OsStr::new("/dev/null")), None);
        assert_eq!(parse_socket_link(OsStr::new("anon_inode:[eventfd]")), None);
    }

    #[test]
    fn start_time_conversion_and_matching() {
        let tick = 10_000_000;
        assert_eq!(start_ticks_to_monotonic_ns(36239, tick, 0), 362_390_000_000);
        assert_eq!(
            start_ticks_to_monotonic_ns(36239, tick, 2_000_000_000),
            360_390_000_000
        );
        assert_eq!(start_ticks_to_monotonic_ns(1, tick, 2_000_000_000), 0);
        assert_eq!(start_ticks_to_monotonic_ns(u64::MAX, tick, 0), u64::MAX);

        assert!(start_ns_matches(100, 100, tick));
        assert!(start_ns_matches(
            1_000_000_000,
            1_000_000_000 + tick + START_NS_SLACK_NS,
            tick
        ));
        assert!(start_ns_matches(
            1_000_000_000 + tick + START_NS_SLACK_NS,
            1_000_000_000,
            tick
        ));
        assert!(!start_ns_matches(
            1_000_000_000,
            1_000_000_001 + tick + START_NS_SLACK_NS,
            tick
        ));
        assert!(!start_ns_matches(0, u64::MAX, tick));
        assert!(start_ns_matches(0, u64::MAX, u64::MAX));

        let t = clock_tick_ns();
        assert!(
            t > 0 && 1_000_000_000u64.checked_rem(t) == Some(0),
            "tick {t}"
        );
        // No suspend in a test machine's life is longer than its uptime.
        let off = boottime_minus_monotonic_ns();
        assert!(off <= clock_ns(Clock::Boottime));
    }

    /// A throw-away directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "procfs-seed-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn write(&self, rel: &str, content: &[u8]) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        fn link(&self, rel: &str, target: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn status(uid: u32) -> String {
        format!("Name:\tx\nState:\tS (sleeping)\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    }

    #[test]
    fn fake_proc_tree_processes() {
        let root = TempDir::new();
        root.write(
            "1/stat",
            stat_with(1, "init", 0, 0x400100, 30, 20, 5).as_bytes(),
        );
        root.write("1/status", status(0).as_bytes());
        root.write(
            "2/stat",
            stat_with(2, "kthreadd", 0, 0x208040, 0, 1, 0).as_bytes(),
        );
        root.write("2/status", status(0).as_bytes());
        root.write(
            "1234/stat",
            stat_with(1234, "a (b) c", 1, 0, 1, 2, 300).as_bytes(),
        );
        root.write("1234/status", status(1000).as_bytes());
        // Vanished: directory without files (ENOENT) — silent.
        std::fs::create_dir_all(root.0.join("4000")).unwrap();
        // Malformed: counted.
        root.write("4001/stat", b"garbage");
        root.write("4001/status", status(0).as_bytes());
        root.write(
            "4002/stat",
            stat_with(4002, "nouid", 1, 0, 0, 0, 1).as_bytes(),
        );
        root.write("4002/status", b"Name:\tnouid\n");
        // Not pids.
        root.write("self/stat", stat_with(1, "no", 0, 0, 0, 0, 0).as_bytes());
        root.write("net/tcp", b"");
        root.write("12ab/stat", b"");

        let (procs, report) = read_processes_with_report(&root.0).unwrap();
        assert_eq!(
            report,
            SeedReport {
                skipped: 2,
                fd_dirs_unreadable: 0
            }
        );
        let mut by_pid: Vec<_> = procs.iter().map(|p| (p.key.tgid, *p)).collect();
        by_pid.sort_by_key(|(pid, _)| *pid);
        let pids: Vec<u32> = by_pid.iter().map(|(p, _)| *p).collect();
        assert_eq!(pids, [1, 2, 1234]);

        let tick = clock_tick_ns();
        let p = by_pid[2].1;
        assert_eq!(p.state.ppid, 1);
        assert_eq!(p.state.uid, 1000);
        assert_eq!(p.state.comm, comm("a (b) c"));
        assert_eq!(p.state.cpu_ns, 3 * tick);
        assert_eq!(p.start_ticks, 300);
        assert_eq!(p.key.start_ns, p.state.start_ns);
        // The clock offset is measured anew on each call; it may move by a few ns.
        let expected = (300 * tick).saturating_sub(boottime_minus_monotonic_ns());
        assert!(start_ns_matches(p.key.start_ns, expected, 0));
        assert_eq!(
            (p.state.flags, p.state.exit_ns, p.state.exit_code),
            (0, 0, 0)
        );
        assert!(!p.kernel_thread);
        assert_eq!(p.task_state, b'S');
        assert!(by_pid[1].1.kernel_thread);
        assert!(!by_pid[0].1.kernel_thread);

        assert!(read_processes(&root.0.join("missing")).is_err());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn fake_proc_tree_connections() {
        let root = TempDir::new();
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        let tcp = format!(
            "{header}\
             \x20  0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0\n\
             \x20  1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 101 1 0 20 4 30 10 -1\n\
             \x20  2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 102 1 0 20 4 30 10 -1\n\
             \x20  3: 0100007F:1F91 0100007F:C351 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0\n\
             \x20  4: 0100007F:1F92 0100007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 103 1 0\n\
             this line is broken\n\n"
        );
        root.write("net/tcp", tcp.as_bytes());
        root.write(
            "net/tcp6",
            b"  sl  local_address remote_address st ...\n   0: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 200 1 0\n",
        );
        // pid 10 holds the listener and the client socket; pid 20 shares the client (inherited)
        // and holds the server side; nobody holds 103 or 200.
        root.write("10/stat", stat_with(10, "server", 1, 0, 0, 0, 1).as_bytes());
        root.link("10/fd/0", "/dev/null");
        root.link("10/fd/3", "socket:[100]");
        root.link("10/fd/4", "socket:[101]");
        root.link("10/fd/5", "pipe:[101]");
        root.write(
            "20/stat",
            stat_with(20, "worker", 10, 0, 0, 0, 1).as_bytes(),
        );
        root.link("20/fd/3", "socket:[101]");
        root.link("20/fd/7", "socket:[102]");
        root.link("20/fd/8", "socket:[999]");
        std::fs::create_dir_all(root.0.join("30")).unwrap(); // no fd dir: vanished, silent

        let (conns, report) = read_tcp_connections_with_report(&root.0).unwrap();
        assert_eq!(
            report,
            SeedReport {
                skipped: 1,
                fd_dirs_unreadable: 0
            }
        );
        let inodes: Vec<u64> = conns.iter().map(|c| c.inode).collect();
        assert_eq!(
            inodes,
            [100, 101, 102, 0, 103, 200],
            "file order, tcp then tcp6"
        );
        let owner = |i: usize| {
            (
                conns[i].state.pid,
                conns[i].state.comm,
                conns[i].state.flags,
            )
        };
        let known = conn_flags::OWNER_KNOWN;
        assert_eq!(owner(0), (10, comm("server"), known));
        assert_eq!(
            owner(1),
            (10, comm("server"), known),
            "first owner (lowest pid) wins"
        );
        assert_eq!(owner(2), (20, comm("worker"), known));
        assert_eq!(owner(3), (0, [0; COMM_LEN], 0));
        assert_eq!(owner(4), (0, [0; COMM_LEN], 0));
        assert_eq!(owner(5), (0, [0; COMM_LEN], 0));

        let c = &conns[1];
        assert_eq!(c.key.family, AF_INET);
        assert_eq!((c.key.sport, c.key.dport), (8080, 50000));
        assert_eq!(&c.key.saddr[..4], &[127, 0, 0, 1]);
        assert_eq!(c.state.tcp_state, 1);
        assert_eq!(c.state.states_seen_mask, 1 << 1);
        assert_eq!(
            (c.state.bytes_sent, c.state.bytes_received, c.state.start_ns),
            (0, 0, 0)
        );
        assert_eq!(conns[0].state.tcp_state, 10);
        assert_eq!(conns[5].key.family, AF_INET6);
        assert_eq!(conns[5].key.sport, 53);

        // IPv6 disabled: no tcp6 is fine; no tcp is an error.
        std::fs::remove_file(root.0.join("net/tcp6")).unwrap();
        assert_eq!(read_tcp_connections(&root.0).unwrap().len(), 5);
        std::fs::remove_file(root.0.join("net/tcp")).unwrap();
        assert!(matches!(
            read_tcp_connections(&root.0),
            Err(SeedError::Io { .. })
        ));
    }
}
