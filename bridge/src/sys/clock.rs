//! Clocks, read with `clock_gettime` (vDSO) through rustix, as ns counts.

use rustix::time::{clock_gettime, ClockId};

/// The clocks the bridge reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// `CLOCK_MONOTONIC`: the clock of `bpf_ktime_get_ns`; stops during suspend.
    Monotonic,
    /// `CLOCK_BOOTTIME`: like `Monotonic`, but counts time spent suspended.
    Boottime,
    /// `CLOCK_THREAD_CPUTIME_ID`: CPU time of the calling thread.
    ThreadCpu,
    /// `CLOCK_PROCESS_CPUTIME_ID`: CPU time of the whole process.
    ProcessCpu,
}

/// The current value of `clock` in ns. Never fails (every clock here exists on Linux);
/// saturates at `u64::MAX` (in about 584 years of uptime).
pub fn clock_ns(clock: Clock) -> u64 {
    let id = match clock {
        Clock::Monotonic => ClockId::Monotonic,
        Clock::Boottime => ClockId::Boottime,
        Clock::ThreadCpu => ClockId::ThreadCPUTime,
        Clock::ProcessCpu => ClockId::ProcessCPUTime,
    };
    let ts = clock_gettime(id);
    (ts.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec.max(0) as u64)
}

/// Current CLOCK_MONOTONIC time in ns (the clock of `bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    clock_ns(Clock::Monotonic)
}

/// CPU time consumed by the calling thread, ns (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_ns() -> u64 {
    clock_ns(Clock::ThreadCpu)
}

/// CPU time consumed by the whole process, ns (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_ns() -> u64 {
    clock_ns(Clock::ProcessCpu)
}

/// Length of one clock tick (`USER_HZ`, `sysconf(_SC_CLK_TCK)`) in ns: 10,000,000 on every
/// usual Linux system. Falls back to 100 Hz if the kernel did not say. Always > 0.
pub fn clock_tick_ns() -> u64 {
    let hz = rustix::param::clock_ticks_per_second();
    let hz = if hz > 0 { hz } else { 100 };
    (1_000_000_000 / hz).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_move_forward_and_agree_in_order() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
        // Boot time counts suspend on top of monotonic time, so it is never behind.
        assert!(clock_ns(Clock::Boottime) >= clock_ns(Clock::Monotonic) - 1_000_000);
        assert!(process_cpu_ns() >= thread_cpu_ns().min(process_cpu_ns()));
        assert_eq!(clock_tick_ns(), 10_000_000);
    }
}
