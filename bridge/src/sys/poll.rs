//! Waiting for readable fds (`poll(2)` through rustix).

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};

/// Waits until at least one of `fds` is readable (`POLLIN`, or an error / hang-up on it) or
/// `timeout` passes; true when one is. The timeout is cut to whole ms (at most `i32::MAX`);
/// an interrupting signal (`EINTR`) counts as a timeout. The fds are only borrowed for the
/// call, so the caller may read from their owners between waits.
pub fn wait_readable<'fd>(
    fds: impl IntoIterator<Item = BorrowedFd<'fd>>,
    timeout: Duration,
) -> io::Result<bool> {
    let mut set: Vec<PollFd<'fd>> = fds
        .into_iter()
        .map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
        .collect();
    let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    match poll(&mut set, timeout_ms) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn readable_fd_wakes_and_unreadable_one_times_out() {
        use rustix::event::{eventfd, EventfdFlags};
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap();
        assert!(!wait_readable([fd.as_fd()], Duration::from_millis(1)).unwrap());
        rustix::io::write(&fd, &1u64.to_ne_bytes()).unwrap();
        assert!(wait_readable([fd.as_fd()], Duration::from_secs(5)).unwrap());
    }
}
