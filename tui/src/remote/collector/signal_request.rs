//! A viewer's request to signal a process, checked against the viewer's own credentials
//! (kill(2)'s rule for an unprivileged sender: uid 0 may signal anything; another uid only
//! a process whose real or effective uid is its own), then sent as the dashboard sends it
//! (pidfd, start time checked).

use probe_common::ProcKey;

use crate::dashboard::signal::{SignalTarget, SIGNALS};

/// Whether a viewer with `viewer_uid` may signal a process with these real and effective
/// uids.
pub fn may_signal(viewer_uid: u32, real_uid: u32, effective_uid: u32) -> bool {
    viewer_uid == 0 || viewer_uid == real_uid || viewer_uid == effective_uid
}

/// The real and effective uid of `tgid`, from `/proc/TGID/status`.
pub fn process_uids(tgid: u32) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{tgid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let mut fields = line["Uid:".len()..].split_whitespace();
    let real = fields.next()?.parse().ok()?;
    let effective = fields.next()?.parse().ok()?;
    Some((real, effective))
}

/// Handles one request from a viewer with `viewer_uid`; returns the status text to show.
pub fn handle(viewer_uid: u32, key: ProcKey, signal: i32, comm: &str) -> String {
    let Some(choice) = SIGNALS.iter().find(|s| s.number == signal) else {
        return format!("not sent: signal {signal} is not one the dashboard offers");
    };
    let pid = key.tgid;
    let Some((real, effective)) = process_uids(pid) else {
        return format!(
            "SIG{} to {comm} (pid {pid}) failed: no such process (ESRCH: it exited)",
            choice.name
        );
    };
    if !may_signal(viewer_uid, real, effective) {
        return format!(
            "not sent: uid {viewer_uid} may not signal {comm} (pid {pid}, uid {real}): the \
             collector checks the viewer's own rights (EPERM)"
        );
    }
    SignalTarget {
        key,
        comm: comm.to_string(),
        guarded: None,
    }
    .send(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_rule() {
        assert!(may_signal(0, 1000, 1000));
        assert!(may_signal(1000, 1000, 0));
        assert!(may_signal(1000, 0, 1000));
        assert!(!may_signal(1000, 0, 0));
        let me = process_uids(std::process::id()).unwrap();
        assert_eq!(me.0, rustix::process::getuid().as_raw());
    }

    #[test]
    fn a_viewer_may_not_signal_another_users_process() {
        // pid 1 runs as root; a viewer with uid 65534 is refused before anything is sent.
        let init = ProcKey::new(1, 0);
        let text = handle(65534, init, libc::SIGTERM, "init");
        assert!(
            text.starts_with("not sent: uid 65534 may not signal init"),
            "{text}"
        );
        assert!(text.contains("EPERM"), "{text}");
        let text = handle(0, init, 12345, "init");
        assert!(text.contains("signal 12345 is not one"), "{text}");
        let text = handle(0, ProcKey::new(u32::MAX, 0), libc::SIGTERM, "ghost");
        assert!(text.contains("ESRCH"), "{text}");
    }
}
