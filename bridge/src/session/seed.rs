//! The /proc seed: what exists when the probes attach, as rows, with the session's filters.

use crate::{
    contract::{ConnectionRow, ProcessRow, Row},
    procfs_seed,
    stats::monotonic_ns,
};

use crate::probe::ProbeSettings;
use probe_common::ProcKey;

/// The /proc seed as rows, with the session's in-kernel filters applied to it too (so a
/// `--filter-pid` session shows only that pid, seeded or not).
///
/// Semantics shared with the kernel rows: a connection ends at TCP CLOSE, so a TIME-WAIT
/// remnant is a closed connection (close time unknown); a connection's start is unknown when it
/// predates the probes; byte counts are the kernel's lifetime counters (from `sock_diag`, as
/// `ss -ti`); `cpu_ns` is lifetime CPU (see `procfs_seed`). Request sockets
/// (NEW-SYN-RECV) are not connections yet and are left out.
/// What the seed read: rows, and the command lines of the seeded processes (for
/// `PROC_CMDLINE`, so that their children inherit them in the kernel).
pub(super) struct Seed {
    pub processes: Vec<ProcessRow>,
    pub connections: Vec<ConnectionRow>,
    /// Keyed by [`ProcKey::seeded_cmdline`] (a /proc start time is not the kernel's).
    pub cmdlines: Vec<(ProcKey, probe_common::Cmdline)>,
}

pub(super) fn read_seed(probes: &ProbeSettings) -> Result<Seed, String> {
    use probe_common::{conn_flags, proc_flags, TCP_CLOSE};
    const TCP_TIME_WAIT: u32 = 6;
    const TCP_NEW_SYN_RECV: u32 = 12;
    let root = std::path::Path::new("/proc");
    let seeded_at = monotonic_ns();
    let seeded: Vec<_> = procfs_seed::read_processes(root)
        .map_err(|e| format!("reading processes from /proc: {e}"))?
        .into_iter()
        .filter(|p| probes.filter_tgid == 0 || p.key.tgid == probes.filter_tgid)
        .collect();
    let cmdlines = if probes.capture_cmdline {
        seeded
            .iter()
            .filter_map(|p| Some((ProcKey::seeded_cmdline(p.key.tgid), p.cmdline?)))
            .collect()
    } else {
        Vec::new()
    };
    let processes = seeded
        .into_iter()
        .map(|p| {
            let mut state = p.state;
            let (task_state, exit_state) =
                crate::contract::task_state::raw_from_letter(p.task_state);
            state.task_state = task_state;
            state.exit_state = exit_state;
            state.sampled_ns = seeded_at;
            if p.kernel_thread {
                state.flags |= proc_flags::KERNEL_THREAD;
            }
            // A zombie found at start-up has exited (its status is in /proc), at a time the
            // tool cannot know. A zombie leader with live threads is still a running process.
            if p.task_state == b'Z' && state.threads <= 1 {
                state.flags |= proc_flags::EXITED | proc_flags::EXIT_TIME_UNKNOWN;
                state.exit_ns = seeded_at;
            }
            Row::from_procfs(p.key, state)
        })
        .collect();
    let counters = crate::tcp_diag::tcp_byte_counters().unwrap_or_else(|e| {
        log::warn!("sock_diag unavailable ({e}): byte counts of pre-existing connections unknown");
        Default::default()
    });
    let connections = procfs_seed::read_tcp_connections(root)
        .map_err(|e| format!("reading TCP connections from /proc: {e}"))?
        .into_iter()
        .filter(|c| c.state.tcp_state != TCP_NEW_SYN_RECV)
        .filter(|c| {
            let port = probes.filter_port;
            port == 0 || c.key.sport == port || c.key.dport == port
        })
        .filter(|c| probes.filter_tgid == 0 || c.state.pid == probes.filter_tgid)
        .map(|c| {
            let mut state = c.state;
            state.flags |= conn_flags::START_UNKNOWN;
            match counters.get(&c.key) {
                Some(&(acked, received)) => {
                    state.bytes_sent = acked;
                    state.bytes_received = received;
                }
                None if state.tcp_state == TCP_TIME_WAIT => {}
                None => state.flags |= conn_flags::BYTES_UNKNOWN,
            }
            if state.tcp_state == TCP_TIME_WAIT {
                // The connection is over; only its TIME-WAIT remnant is left.
                state.tcp_state = TCP_CLOSE;
                state.states_seen_mask |= 1 << TCP_CLOSE;
                state.flags |=
                    conn_flags::CLOSED | conn_flags::END_UNKNOWN | conn_flags::BYTES_UNKNOWN;
                state.end_ns = seeded_at;
            }
            Row::from_procfs(c.key, state)
        })
        .collect();
    Ok(Seed {
        processes,
        connections,
        cmdlines,
    })
}
