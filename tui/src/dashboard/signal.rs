//! Sending a signal to the process under the cursor (htop's `k` / F9): the signals offered,
//! the target captured when the picker opens, and a send that can only reach that process.
//!
//! The target is identified by (tgid, start time), not by pid alone: the send opens a pidfd,
//! checks through /proc that the process behind it started when the row says, and signals the
//! pidfd. A pid reused by another process is refused; a process that exited meanwhile gives
//! ESRCH. Nothing is sent without the user's confirmation, and pid 1 or a kernel thread needs
//! a second one.

use std::io;

use bridge::{contract::ProcessRow, procfs_seed};
use probe_common::ProcKey;

/// One entry of the signal picker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalChoice {
    /// The signal number.
    pub number: i32,
    /// Its name without `SIG` (`TERM`).
    pub name: &'static str,
    /// What it usually does.
    pub what: &'static str,
}

/// The signals offered, the polite ones first (as htop lists the common ones).
pub const SIGNALS: &[SignalChoice] = &[
    SignalChoice {
        number: libc::SIGTERM,
        name: "TERM",
        what: "ask to terminate",
    },
    SignalChoice {
        number: libc::SIGINT,
        name: "INT",
        what: "interrupt (as Ctrl-C)",
    },
    SignalChoice {
        number: libc::SIGHUP,
        name: "HUP",
        what: "hang up / reload",
    },
    SignalChoice {
        number: libc::SIGQUIT,
        name: "QUIT",
        what: "quit with a core dump",
    },
    SignalChoice {
        number: libc::SIGKILL,
        name: "KILL",
        what: "kill at once (cannot be caught)",
    },
    SignalChoice {
        number: libc::SIGSTOP,
        name: "STOP",
        what: "stop (cannot be caught)",
    },
    SignalChoice {
        number: libc::SIGCONT,
        name: "CONT",
        what: "continue a stopped process",
    },
    SignalChoice {
        number: libc::SIGUSR1,
        name: "USR1",
        what: "user-defined 1",
    },
    SignalChoice {
        number: libc::SIGUSR2,
        name: "USR2",
        what: "user-defined 2",
    },
];

/// Where the signal dialog is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalStage {
    /// Choosing a signal; `cursor` indexes [`SIGNALS`].
    Choose {
        /// The highlighted signal.
        cursor: usize,
    },
    /// `y` sends `signal`; anything else cancels.
    Confirm {
        /// Index into [`SIGNALS`].
        signal: usize,
    },
    /// pid 1 or a kernel thread: a second `y` is needed.
    ConfirmAgain {
        /// Index into [`SIGNALS`].
        signal: usize,
    },
}

/// The process the dialog is about, captured when it opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalTarget {
    /// Identity: tgid and start time (CLOCK_MONOTONIC ns).
    pub key: ProcKey,
    /// Its name when the dialog opened.
    pub comm: String,
    /// Why a second confirmation is needed (`pid 1`, `a kernel thread`), if it is.
    pub guarded: Option<&'static str>,
}

impl SignalTarget {
    /// The target for `row`, or why no signal can be sent to it.
    pub fn for_row(row: &ProcessRow) -> Result<SignalTarget, String> {
        if row.is_exited() {
            return Err(format!("{} (pid {}) has exited", row.comm(), row.pid()));
        }
        if row.pid() == 0 {
            return Err("pid 0 is the idle task: no signal can be sent to it".into());
        }
        let guarded = if row.pid() == 1 {
            Some("pid 1 (init): signalling it can bring the system down")
        } else if row.is_kernel_thread() {
            Some("a kernel thread: most ignore signals, some act on them")
        } else {
            None
        };
        Ok(SignalTarget {
            key: row.key,
            comm: row.comm(),
            guarded,
        })
    }

    /// Sends `signal` to exactly this process; returns the status line to show.
    pub fn send(&self, signal: &SignalChoice) -> String {
        let pid = self.key.tgid;
        match send_to_same_process(self.key, signal.number) {
            Ok(()) => format!("sent SIG{} to {} (pid {pid})", signal.name, self.comm),
            Err(SendError::Reused) => format!(
                "not sent: pid {pid} now belongs to another process than {}",
                self.comm
            ),
            Err(SendError::Os(error)) => format!(
                "SIG{} to {} (pid {pid}) failed: {}",
                signal.name,
                self.comm,
                errno_text(&error)
            ),
        }
    }
}

enum SendError {
    /// The pid now belongs to a process that started at another time.
    Reused,
    Os(io::Error),
}

fn send_to_same_process(key: ProcKey, signal: i32) -> Result<(), SendError> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, key.tgid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(SendError::Os(io::Error::last_os_error()));
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pidfd pins the process it was opened for; if that one started when the row says,
    // the signal below reaches it and no other, even if it exits and the pid is reused.
    let stat = std::fs::read(format!("/proc/{}/stat", key.tgid)).map_err(|e| {
        SendError::Os(match e.kind() {
            // Gone between the open and the read: as the signal would say.
            io::ErrorKind::NotFound => io::Error::from_raw_os_error(libc::ESRCH),
            _ => e,
        })
    })?;
    let fields = procfs_seed::parse_stat_line(&stat)
        .map_err(|e| SendError::Os(io::Error::other(e.to_string())))?;
    let tick_ns = procfs_seed::clock_tick_ns();
    let started_ns = procfs_seed::start_ticks_to_monotonic_ns(
        fields.starttime,
        tick_ns,
        procfs_seed::boottime_minus_monotonic_ns(),
    );
    if !procfs_seed::start_ns_matches(started_ns, key.start_ns, tick_ns) {
        return Err(SendError::Reused);
    }
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a signal number, no siginfo (NULL: as kill(2) would send), flags 0.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent < 0 {
        return Err(SendError::Os(io::Error::last_os_error()));
    }
    Ok(())
}

/// `Operation not permitted (EPERM)`: the message with the errno name users search for.
fn errno_text(error: &io::Error) -> String {
    let name = match error.raw_os_error() {
        Some(libc::EPERM) => " (EPERM)",
        Some(libc::ESRCH) => " (ESRCH: it exited)",
        Some(libc::EINVAL) => " (EINVAL)",
        _ => "",
    };
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    format!("{text}{name}")
}
