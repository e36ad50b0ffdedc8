//! A stop signal that wakes every waiter at once.
//!
//! A flag plus an eventfd: [`StopToken::stop`] sets the flag and makes the eventfd readable for
//! good, so a thread sleeping in [`StopToken::sleep`] — or in `poll(2)` on its transport's fds
//! with [`StopToken::fd`] added — returns immediately instead of at its next timeout.

use std::{
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};

#[derive(Debug)]
struct Inner {
    stopped: AtomicBool,
    wake: OwnedFd,
}

/// Cloneable handle to one stop signal. Once stopped, it stays stopped.
#[derive(Clone, Debug)]
pub struct StopToken {
    inner: Arc<Inner>,
}

impl StopToken {
    /// A new, unstopped token.
    pub fn new() -> std::io::Result<Self> {
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(StopToken {
            inner: Arc::new(Inner {
                stopped: AtomicBool::new(false),
                wake,
            }),
        })
    }

    /// Signals stop: every current and future waiter returns at once.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        // The counter is never read back, so the fd stays readable from now on. A full counter
        // (EAGAIN) is just as readable.
        let _ = rustix::io::write(&self.inner.wake, &1u64.to_ne_bytes());
    }

    /// True once [`StopToken::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// The eventfd that becomes readable on stop, for `poll(2)` sets of other fds.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inner.wake.as_fd()
    }

    /// Sleeps up to `timeout`, returning early on stop. Returns true when stopped.
    pub fn sleep(&self, timeout: Duration) -> bool {
        if self.is_stopped() {
            return true;
        }
        let mut fds = [PollFd::new(&self.inner.wake, PollFlags::IN)];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // EINTR just ends the sleep early; callers loop on their own deadline.
        let _ = poll(&mut fds, ms);
        self.is_stopped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn stop_wakes_a_sleeper_at_once() {
        let token = StopToken::new().unwrap();
        assert!(!token.sleep(Duration::from_millis(1)));
        let sleeper = {
            let token = token.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let stopped = token.sleep(Duration::from_secs(30));
                (stopped, started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        token.stop();
        let (stopped, slept) = sleeper.join().unwrap();
        assert!(stopped);
        assert!(slept < Duration::from_secs(10), "slept {slept:?}");
        // Stays stopped; later sleeps return at once.
        assert!(token.sleep(Duration::from_secs(30)));
        assert!(token.is_stopped());
    }
}
