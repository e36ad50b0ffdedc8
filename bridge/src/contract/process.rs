//! Processes: the kernel's process state as a row, and what a view asks of it.

use probe_common::{proc_flags, table, ProcKey, ProcState};

use super::row::{comm_to_string, KernelState, Row, RowOrigin, RowState};

/// A command line captured at exec as text, as `ps -o args` shows it: the arguments joined by
/// spaces (`/proc/PID/cmdline` with its NULs as spaces, the final one dropped), invalid UTF-8
/// replaced; and whether it was cut at [`probe_common::CMDLINE_LEN`] bytes. `None` when the
/// kernel could not read it.
pub fn cmdline_text(c: &probe_common::Cmdline) -> Option<(String, bool)> {
    use probe_common::cmdline_flags;
    if c.flags & cmdline_flags::READ_FAILED != 0 {
        return None;
    }
    let bytes = &c.bytes[..(c.len as usize).min(c.bytes.len())];
    let truncated = c.flags & cmdline_flags::TRUNCATED != 0;
    let bytes = if truncated {
        bytes
    } else {
        bytes.strip_suffix(b"\0").unwrap_or(bytes)
    };
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    Some((String::from_utf8_lossy(&spaced).into_owned(), truncated))
}

/// One process, keyed by tgid + start time (a reused pid is a new row).
pub type ProcessRow = Row<ProcState>;

/// What a process row keeps of [`ProcState`]: every field of it except the kernel-internal
/// ones (`last_emit_ns`, `poll_seq`, `task_addr`, `exit_tid`, `retry_cycle`), with the same
/// names, units and meaning (see [`ProcState`]); `flags` without the kernel's bookkeeping
/// bits (`DIRTY`, `REPARENT_PENDING`). 104 bytes where the map value has 136 — with 100k
/// processes in each of three modes, 10 MB less. The field order avoids padding, so the
/// layout is its bytes (the socket and recordings carry it as such).
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct ProcInfo {
    /// Start time, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// Exit time, CLOCK_MONOTONIC ns; 0 while running.
    pub exit_ns: u64,
    /// Lifetime on-CPU time of the thread group, ns, as of `sampled_ns`.
    pub cpu_ns: u64,
    /// When the fields were read from the kernel, CLOCK_MONOTONIC ns.
    pub sampled_ns: u64,
    /// Resident set size, bytes (valid with [`proc_flags::RSS_KNOWN`]).
    pub rss_bytes: u64,
    /// Virtual memory size, bytes (valid with [`proc_flags::RSS_KNOWN`]).
    pub virt_bytes: u64,
    /// cgroup v2 id (valid with [`proc_flags::CGROUP_KNOWN`]).
    pub cgroup_id: u64,
    /// Parent's tgid.
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// Raw wait status of the exit.
    pub exit_code: u32,
    /// [`proc_flags`] bits (kernel bookkeeping bits cleared).
    pub flags: u32,
    /// The group leader's `__state`.
    pub task_state: u32,
    /// The group leader's `exit_state`.
    pub exit_state: u32,
    /// Live threads.
    pub threads: u32,
    /// Nice value (-20..19).
    pub nice: i32,
    /// `comm` of the group leader, NUL-padded.
    pub comm: [u8; probe_common::COMM_LEN],
}

impl RowState for ProcInfo {
    fn finished_ns(&self) -> Option<u64> {
        (self.flags & proc_flags::EXITED != 0).then_some(self.exit_ns)
    }
}

impl KernelState for ProcState {
    type Key = ProcKey;
    type Info = ProcInfo;
    const TABLE: u8 = table::PROCESSES;
    const TABLE_NAME: &'static str = "processes";

    fn poll_seq(&self) -> u64 {
        self.poll_seq
    }

    fn last_emit_ns(&self) -> u64 {
        self.last_emit_ns
    }

    fn info(&self) -> ProcInfo {
        ProcInfo {
            start_ns: self.start_ns,
            exit_ns: self.exit_ns,
            cpu_ns: self.cpu_ns,
            sampled_ns: self.sampled_ns,
            rss_bytes: self.rss_bytes,
            virt_bytes: self.virt_bytes,
            cgroup_id: self.cgroup_id,
            ppid: self.ppid,
            uid: self.uid,
            exit_code: self.exit_code,
            flags: self.flags & !(proc_flags::DIRTY | proc_flags::REPARENT_PENDING),
            task_state: self.task_state,
            exit_state: self.exit_state,
            threads: self.threads,
            nice: self.nice,
            comm: self.comm,
        }
    }
}

impl ProcessRow {
    /// The pid (tgid) as user space knows it.
    pub fn pid(&self) -> u32 {
        self.key.tgid
    }

    /// `comm` as text.
    pub fn comm(&self) -> String {
        comm_to_string(&self.state.comm)
    }

    /// True once the last thread exited.
    pub fn is_exited(&self) -> bool {
        self.state.flags & proc_flags::EXITED != 0
    }

    /// The task state letter as `ps` shows it (see [`super::task_state::letter`]).
    pub fn task_state(&self) -> char {
        super::task_state::letter(self.state.task_state, self.state.exit_state)
    }

    /// The signal that killed the process; `None` while running or when it called exit().
    pub fn exit_signal(&self) -> Option<u32> {
        let signal = self.state.exit_code & 0x7f;
        (self.is_exited() && signal != 0).then_some(signal)
    }

    /// True when the process dumped core (`WCOREDUMP`).
    pub fn core_dumped(&self) -> bool {
        self.is_exited() && self.state.exit_code & 0x80 != 0
    }

    /// When the process exited, CLOCK_MONOTONIC ns; `None` while running or when the exit
    /// time is unknown (a zombie found at start-up).
    pub fn exit_ns(&self) -> Option<u64> {
        (self.is_exited() && self.state.flags & proc_flags::EXIT_TIME_UNKNOWN == 0)
            .then_some(self.state.exit_ns)
    }

    /// Nice value of the group leader (-20..19), as of the row's sample.
    pub fn nice(&self) -> i32 {
        self.state.nice
    }

    /// Resident set size in bytes (`/proc/PID/status` VmRSS), as of the row's sample; `None`
    /// for a kernel thread, an exited process, or a process without an address space.
    pub fn rss_bytes(&self) -> Option<u64> {
        (self.state.flags & proc_flags::RSS_KNOWN != 0
            && !self.is_exited()
            && !self.is_kernel_thread())
        .then_some(self.state.rss_bytes)
    }

    /// Virtual memory size in bytes (`/proc/PID/status` VmSize), as of the row's sample; `None`
    /// exactly when [`ProcessRow::rss_bytes`] is.
    pub fn virt_bytes(&self) -> Option<u64> {
        self.rss_bytes().map(|_| self.state.virt_bytes)
    }

    /// Id of the process's cgroup v2 (the inode of its directory in the cgroup2 mount), as of
    /// the row's sample; `None` when it could not be read.
    pub fn cgroup_id(&self) -> Option<u64> {
        (self.state.flags & proc_flags::CGROUP_KNOWN != 0).then_some(self.state.cgroup_id)
    }

    /// True when the process existed before the probes attached: read from /proc, or first
    /// seen running by the kernel (not forked under the probes).
    pub fn predates_probes(&self) -> bool {
        self.origin == RowOrigin::Procfs || self.state.flags & proc_flags::FIRST_SEEN_RUNNING != 0
    }

    /// True for a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.state.flags & proc_flags::KERNEL_THREAD != 0
    }

    /// Exit status as a shell reports it: the `exit()` status, or `128 + signal` when a signal
    /// killed the process; `None` while running.
    pub fn exit_status(&self) -> Option<i32> {
        if !self.is_exited() {
            return None;
        }
        let code = self.state.exit_code;
        let signal = code & 0x7f;
        Some(if signal != 0 {
            128 + signal as i32
        } else {
            ((code >> 8) & 0xff) as i32
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_common::COMM_LEN;

    fn exited(code: u32) -> ProcessRow {
        ProcessRow {
            key: ProcKey::default(),
            state: ProcInfo {
                flags: proc_flags::EXITED,
                exit_code: code,
                ..Default::default()
            },
            seq: 1,
            changed_ns: 1,
            origin: super::super::row::RowOrigin::Kernel,
        }
    }

    #[test]
    fn exit_status_decodes_wait_status() {
        assert_eq!(exited(7 << 8).exit_status(), Some(7));
        assert_eq!(exited(7 << 8).exit_signal(), None);
        assert_eq!(exited(9).exit_status(), Some(137));
        assert_eq!(exited(9).exit_signal(), Some(9));
        // `exit 137` and SIGKILL read the same as a status, and differ in exit_signal.
        assert_eq!(exited(137 << 8).exit_status(), Some(137));
        assert_eq!(exited(137 << 8).exit_signal(), None);
        assert_eq!(exited(0).exit_status(), Some(0));
        // SIGSEGV with a core dump.
        let core = exited(11 | 0x80);
        assert_eq!(core.exit_signal(), Some(11));
        assert!(core.core_dumped());
        assert_eq!(core.exit_status(), Some(139));
        assert!(!exited(11).core_dumped());
    }

    #[test]
    fn rss_is_unknown_without_the_flag_and_after_exit() {
        let mut row = exited(0);
        row.state.rss_bytes = 4096;
        row.state.flags = proc_flags::RSS_KNOWN;
        assert_eq!(row.rss_bytes(), Some(4096));
        row.state.flags = 0;
        assert_eq!(row.rss_bytes(), None);
        row.state.flags = proc_flags::RSS_KNOWN | proc_flags::EXITED;
        assert_eq!(row.rss_bytes(), None);
        row.state.flags = proc_flags::RSS_KNOWN | proc_flags::KERNEL_THREAD;
        assert_eq!(row.rss_bytes(), None);
    }

    #[test]
    fn cmdline_joins_arguments_with_spaces() {
        let mut c = probe_common::Cmdline::default();
        let args = b"sleep\x00100\x00";
        c.bytes[..args.len()].copy_from_slice(args);
        c.len = args.len() as u32;
        assert_eq!(cmdline_text(&c), Some(("sleep 100".into(), false)));
        c.flags = probe_common::cmdline_flags::TRUNCATED;
        assert_eq!(cmdline_text(&c), Some(("sleep 100 ".into(), true)));
        c.flags = probe_common::cmdline_flags::READ_FAILED;
        assert_eq!(cmdline_text(&c), None);
    }

    #[test]
    fn comm_stops_at_nul_and_handles_full_length() {
        let mut comm = [0u8; COMM_LEN];
        comm[..3].copy_from_slice(b"sh\0");
        assert_eq!(comm_to_string(&comm), "sh");
        assert_eq!(comm_to_string(&[b'a'; COMM_LEN]).len(), COMM_LEN);
    }
}
