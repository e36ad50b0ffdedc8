//! Processes: the kernel's process state as a row, and what a view asks of it.

use probe_common::{proc_flags, table, ProcKey, ProcState};

use super::row::{comm_to_string, KernelState, Row, RowOrigin};

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

impl KernelState for ProcState {
    type Key = ProcKey;
    const TABLE: u8 = table::PROCESSES;
    const TABLE_NAME: &'static str = "processes";

    fn finished_ns(&self) -> Option<u64> {
        (self.flags & proc_flags::EXITED != 0).then_some(self.exit_ns)
    }

    fn poll_seq(&self) -> u64 {
        self.poll_seq
    }

    fn last_emit_ns(&self) -> u64 {
        self.last_emit_ns
    }

    fn sanitized(mut self) -> Self {
        self.task_addr = 0;
        self.retry_cycle = 0;
        self.exit_tid = 0;
        self.flags &= !(proc_flags::DIRTY | proc_flags::REPARENT_PENDING);
        self
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
            state: ProcState {
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
