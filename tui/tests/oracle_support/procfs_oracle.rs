//! The oracle side of `tests/oracle_processes.rs`: what the kernel itself says about a process,
//! read at a known CLOCK_MONOTONIC moment from /proc (`stat`, `status`, `comm`,
//! `task/*/schedstat`), the process CPU clock (`clock_getcpuclockid`) and `wait4` (status and
//! rusage), parsed here without any product code; child guards that kill and reap on drop; and
//! a scorecard that compares every field of a dumped row with its oracle, prints both figures
//! side by side on failure and a one-line summary per mode on success.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

/// `PF_KTHREAD` in `/proc/PID/stat` field 9 (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// CLOCK_MONOTONIC now, ns (the clock of every `*_ns` field of the dump).
pub fn mono_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC")
}

fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    (r == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// CLOCK_BOOTTIME − CLOCK_MONOTONIC, ns (what /proc's boot-relative start times are offset by;
/// 0 up to measurement noise on a machine that never suspended): the tightest of a few
/// bracketed reads.
pub fn boot_minus_mono_ns() -> i64 {
    let mut best: Option<(u64, i64)> = None;
    for _ in 0..8 {
        let m0 = mono_ns();
        let b = clock_ns(libc::CLOCK_BOOTTIME).expect("CLOCK_BOOTTIME");
        let m1 = mono_ns();
        let width = m1 - m0;
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, b as i64 - (m0 + width / 2) as i64));
        }
    }
    best.unwrap().1
}

/// USER_HZ: the unit of /proc/PID/stat's times.
pub fn clock_tick_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    assert!(hz > 0, "sysconf(_SC_CLK_TCK)");
    1_000_000_000 / hz as u64
}

/// The fields of `/proc/PID/stat` the tests use (proc(5) numbering).
#[derive(Clone, Debug)]
pub struct ProcStat {
    /// Field 2, without the parentheses.
    pub comm: String,
    /// Field 3.
    pub state: char,
    /// Field 4.
    pub ppid: u32,
    /// Field 9.
    pub flags: u64,
    /// Field 19.
    pub nice: i64,
    /// Field 20.
    pub num_threads: u64,
    /// Field 22: start time after boot, clock ticks.
    pub starttime_ticks: u64,
}

/// Parses `/proc/PID/stat` text (comm may contain spaces and parentheses: it ends at the last
/// `)`).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    // Fields from 3 on.
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    Some(ProcStat {
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        nice: field(19)?.parse().ok()?,
        num_threads: field(20)?.parse().ok()?,
        starttime_ticks: field(22)?.parse().ok()?,
    })
}

/// `/proc/PID/stat`, parsed.
pub fn read_stat(pid: u32) -> io::Result<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::other(format!("unparsable stat: {text}")))
}

/// A value of `/proc/PID/status` (the first word after `key:`).
fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })
}

/// Sum of the first field (on-CPU ns, `se.sum_exec_runtime`) of `/proc/PID/task/*/schedstat`:
/// the live threads only.
pub fn schedstat_sum_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    let mut any = false;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            if let Some(ns) = text
                .split_whitespace()
                .next()
                .and_then(|f| f.parse::<u64>().ok())
            {
                total += ns;
                any = true;
            }
        }
    }
    any.then_some(total)
}

/// The process CPU-time clock of `pid` (`clock_getcpuclockid`): the kernel's thread-group
/// total, threads already gone included (`signal->sum_sched_runtime` + live threads).
pub fn group_cpu_clock_ns(pid: u32) -> Option<u64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid out-pointer.
    let r = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    if r != 0 {
        return None;
    }
    clock_ns(clock)
}

/// The first 15 bytes of `name` (at a char boundary): what `task->comm` holds.
pub fn task_comm(name: &str) -> String {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// One process as /proc shows it, read at `read_ns`.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub pid: u32,
    /// `/proc/PID/comm` cut to 15 bytes: the group leader's `task->comm` (TASK_COMM_LEN 16 with
    /// its NUL). /proc shows a longer name for some kernel threads (the kthread's full name,
    /// workqueue worker descriptions); `task->comm` is its first 15 bytes.
    pub comm: String,
    /// `/proc/PID/stat` field 3.
    pub state: char,
    pub ppid: u32,
    /// Real uid (first of `Uid:` in status).
    pub uid: u32,
    /// `Threads:` in status.
    pub threads: u64,
    pub kernel_thread: bool,
    pub starttime_ticks: u64,
    /// `/proc/PID/stat` field 19.
    pub nice: i64,
    /// `VmRSS:` in status, bytes; None when the line is absent (kernel thread, zombie).
    pub rss_bytes: Option<u64>,
    /// `VmSize:` in status, bytes; None as for `rss_bytes`.
    pub virt_bytes: Option<u64>,
    /// The `0::` line of `/proc/PID/cgroup` (the cgroup v2 path); None without one.
    pub cgroup: Option<String>,
    /// `/proc/PID/cmdline` as `ps -o args` shows it: NULs as spaces, the final NUL dropped
    /// (empty for kernel threads).
    pub cmdline: String,
    /// Sum over `task/*/schedstat` (live threads).
    pub schedstat_ns: u64,
    /// The process CPU clock (dead threads included), when readable.
    pub group_clock_ns: Option<u64>,
    /// CLOCK_MONOTONIC when the reads finished.
    pub read_ns: u64,
}

impl Snapshot {
    /// Reads `pid` now; `None` when it is gone.
    pub fn read(pid: u32) -> Option<Snapshot> {
        let stat = read_stat(pid).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let schedstat_ns = schedstat_sum_ns(pid).unwrap_or(0);
        let group_clock_ns = group_cpu_clock_ns(pid);
        Some(Snapshot {
            pid,
            comm: task_comm(comm.trim_end_matches('\n')),
            state: stat.state,
            ppid: stat.ppid,
            uid: status_field(&status, "Uid")?.parse().ok()?,
            threads: status_field(&status, "Threads")?.parse().ok()?,
            kernel_thread: stat.flags & PF_KTHREAD != 0,
            starttime_ticks: stat.starttime_ticks,
            nice: stat.nice,
            cmdline: std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    let b = b.strip_suffix(b"\0").unwrap_or(&b).to_vec();
                    String::from_utf8_lossy(&b).replace('\0', " ")
                })
                .unwrap_or_default(),
            rss_bytes: status_field(&status, "VmRSS")
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024),
            virt_bytes: status_field(&status, "VmSize")
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024),
            cgroup: std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .ok()
                .and_then(|c| {
                    c.lines()
                        .find_map(|l| l.strip_prefix("0::"))
                        .map(str::to_string)
                }),
            schedstat_ns,
            group_clock_ns,
            read_ns: mono_ns(),
        })
    }

    /// Like [`Snapshot::read`], panicking with `what` when the process is gone.
    pub fn of(pid: u32, what: &str) -> Snapshot {
        Snapshot::read(pid).unwrap_or_else(|| panic!("{what} (pid {pid}) is gone from /proc"))
    }

    /// The CLOCK_MONOTONIC window the process's start must lie in: /proc's start time is
    /// boot-relative and truncated to a clock tick, so `[tick, tick + 1)` shifted by the
    /// boot−monotonic offset, widened by 1 ms either side.
    pub fn start_window(&self) -> (u64, u64) {
        start_window(self.starttime_ticks)
    }
}

/// See [`Snapshot::start_window`].
pub fn start_window(starttime_ticks: u64) -> (u64, u64) {
    let tick = clock_tick_ns();
    let offset = boot_minus_mono_ns();
    let lo = ((starttime_ticks * tick) as i64 - offset).max(0) as u64;
    (lo.saturating_sub(1_000_000), lo + tick + 1_000_000)
}

/// What `wait4` reported for a reaped child.
#[derive(Clone, Debug)]
pub struct Reaped {
    pub pid: u32,
    /// Shell-style: the exit status, or 128 + signal.
    pub exit_code: i32,
    /// The killing signal, or None after exit().
    pub signal: Option<i32>,
    /// WCOREDUMP.
    pub core_dumped: bool,
    /// rusage utime + stime, ns (the kernel scales the two so they add up to the group's
    /// `sum_exec_runtime`; microsecond resolution).
    pub cpu_ns: u64,
    /// CLOCK_MONOTONIC right after `wait4` returned.
    pub reaped_ns: u64,
}

/// `wait4(pid)`, polling with WNOHANG for at most `limit`; `None` on timeout.
fn wait4_within(pid: u32, limit: Duration) -> Option<Reaped> {
    let end = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: zeroed rusage is a valid value; pointers are valid for the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
        let reaped_ns = mono_ns();
        if r == pid as i32 {
            let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
            let signaled = libc::WIFSIGNALED(status);
            return Some(Reaped {
                pid,
                exit_code: if signaled {
                    128 + libc::WTERMSIG(status)
                } else {
                    libc::WEXITSTATUS(status)
                },
                signal: signaled.then(|| libc::WTERMSIG(status)),
                core_dumped: signaled && libc::WCOREDUMP(status),
                cpu_ns: tv(usage.ru_utime) + tv(usage.ru_stime),
                reaped_ns,
            });
        }
        assert!(
            r == 0,
            "wait4({pid}): {} (status {status})",
            io::Error::last_os_error()
        );
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A child process managed by pid (so the test can `wait4` it for its rusage): killed with
/// SIGKILL and reaped on drop unless already reaped. Spawned with stdin/stdout/stderr null
/// unless the command says otherwise.
pub struct Proc {
    pub pid: u32,
    /// What the test calls it (in messages).
    pub label: String,
    /// CLOCK_MONOTONIC just before the fork.
    pub spawned_ns: u64,
    reaped: bool,
}

impl Proc {
    /// Spawns `cmd`. The `std::process::Child` is dropped at once (that neither kills nor
    /// waits); this guard owns the pid from then on.
    pub fn spawn(label: &str, cmd: &mut Command) -> Proc {
        let spawned_ns = mono_ns();
        // Reaped with wait4 by this guard (Drop or `reap`), not through the `Child`.
        #[allow(clippy::zombie_processes)]
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {label}: {e}"));
        Proc {
            pid: child.id(),
            label: label.to_string(),
            spawned_ns,
            reaped: false,
        }
    }

    /// Takes over a child spawned by the test itself (e.g. to read its stdout first);
    /// `spawned_ns`: CLOCK_MONOTONIC just before its fork.
    pub fn adopt_child(label: &str, child: std::process::Child, spawned_ns: u64) -> Proc {
        Proc {
            pid: child.id(),
            label: label.to_string(),
            spawned_ns,
            reaped: false,
        }
    }

    /// Sends `sig`; returns CLOCK_MONOTONIC just before sending.
    pub fn signal(&self, sig: i32) -> u64 {
        assert!(!self.reaped, "{} already reaped", self.label);
        let at = mono_ns();
        // SAFETY: kill(2) on our own unreaped child (its pid cannot have been reused).
        let r = unsafe { libc::kill(self.pid as i32, sig) };
        assert_eq!(
            r,
            0,
            "kill {} {sig}: {}",
            self.label,
            io::Error::last_os_error()
        );
        at
    }

    /// Waits (at most `limit`) for the child to end and reaps it.
    pub fn reap(&mut self, limit: Duration) -> Reaped {
        assert!(!self.reaped, "{} already reaped", self.label);
        let r = wait4_within(self.pid, limit).unwrap_or_else(|| {
            panic!(
                "{} (pid {}) did not end within {limit:?}",
                self.label, self.pid
            )
        });
        self.reaped = true;
        r
    }

    /// Waits (at most `limit`) until /proc shows the child in `state` (e.g. 'Z', 'T').
    pub fn wait_for_state(&self, state: char, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let now = read_stat(self.pid).map(|s| s.state).ok();
            if now == Some(state) {
                return;
            }
            assert!(
                Instant::now() < end,
                "{} (pid {}) not in state {state} within {limit:?} (is {now:?})",
                self.label,
                self.pid
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
            let _ = wait4_within(self.pid, Duration::from_secs(5));
        }
    }
}

/// A process that is not our child (an orphan adopted by init or a subreaper), held by a
/// pidfd so it can be killed on drop without the risk of hitting a reused pid.
pub struct Adopted {
    pub pid: u32,
    pidfd: OwnedFd,
}

impl Adopted {
    /// Opens a pidfd for `pid` (which must still be alive).
    pub fn open(pid: u32) -> Adopted {
        // SAFETY: pidfd_open(2) with flags 0; it returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        assert!(fd >= 0, "pidfd_open({pid}): {}", io::Error::last_os_error());
        Adopted {
            pid,
            // SAFETY: `fd` is a fresh descriptor we own.
            pidfd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
        }
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        // SAFETY: pidfd_send_signal(2) on our own pidfd; no memory is passed.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
}

/// A tracer thread holding a process in a ptrace stop (`t` in /proc) until drop, when it
/// detaches (the tracee then stops being traced; a stop it was in before is not restored).
pub struct TracingStop {
    done: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl TracingStop {
    /// PTRACE_SEIZE + PTRACE_INTERRUPT `pid` from a new thread (the tracer), and waits until
    /// the tracee is in its stop.
    pub fn start(pid: u32) -> TracingStop {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("bto-tracer".into())
            .spawn(move || {
                let pid = pid as libc::pid_t;
                let null = std::ptr::null_mut::<libc::c_void>();
                // SAFETY: ptrace(2) requests on one pid with null addr/data.
                if unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, null, null) } != 0 {
                    let _ =
                        ready_tx.send(Err(format!("PTRACE_SEIZE: {}", io::Error::last_os_error())));
                    return;
                }
                // SAFETY: as above.
                if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, null, null) } != 0 {
                    let _ = ready_tx.send(Err(format!(
                        "PTRACE_INTERRUPT: {}",
                        io::Error::last_os_error()
                    )));
                    return;
                }
                let mut status = 0;
                // SAFETY: waitpid(2) on the tracee, from its tracer thread.
                let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
                let stopped = r == pid && libc::WIFSTOPPED(status);
                let _ = ready_tx.send(if stopped {
                    Ok(())
                } else {
                    Err(format!(
                        "waitpid after PTRACE_INTERRUPT: {r}, status {status:#x}"
                    ))
                });
                // Until the guard is dropped (the sender goes away).
                let _ = done_rx.recv();
                // SAFETY: as above; the tracee is in a ptrace stop.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, null, null) };
            })
            .unwrap();
        let ready = ready_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| Err(format!("tracer: {e}")));
        let guard = TracingStop {
            done: Some(done_tx),
            handle: Some(handle),
        };
        if let Err(e) = ready {
            panic!("cannot put pid {pid} into a tracing stop: {e}");
        }
        guard
    }
}

impl Drop for TracingStop {
    fn drop(&mut self) {
        self.done.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The on-CPU time of one process sampled every few ms from a background thread (sum of
/// `task/*/schedstat`, with the CLOCK_MONOTONIC of each read), so the oracle can be evaluated
/// at the very moment the tool sampled (`sampled_ns`).
pub struct CpuTimeline {
    samples: Arc<Mutex<Vec<(u64, u64)>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl CpuTimeline {
    /// Starts sampling `pid` every `every`, for at most `limit`.
    pub fn start(pid: u32, every: Duration, limit: Duration) -> CpuTimeline {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::Builder::new()
                .name("bto-cpu-sampler".into())
                .spawn(move || {
                    let end = Instant::now() + limit;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                        let before = mono_ns();
                        if let Some(ns) = schedstat_sum_ns(pid) {
                            let after = mono_ns();
                            samples.lock().unwrap().push((before / 2 + after / 2, ns));
                        }
                        std::thread::sleep(every);
                    }
                })
                .unwrap()
        };
        CpuTimeline {
            samples,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }

    /// The on-CPU time at `t` (linear between the two samples around it), with the width of
    /// that bracket; `None` when `t` is outside the sampled span.
    pub fn at(&self, t: u64) -> Option<(u64, u64)> {
        let samples = self.samples.lock().unwrap();
        let i = samples.partition_point(|&(at, _)| at <= t);
        if i == 0 || i == samples.len() {
            return None;
        }
        let ((t0, c0), (t1, c1)) = (samples[i - 1], samples[i]);
        let frac = (t - t0) as f64 / (t1 - t0).max(1) as f64;
        Some((c0 + ((c1 - c0) as f64 * frac) as u64, t1 - t0))
    }
}

impl Drop for CpuTimeline {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The CPU tolerance the tests use: 5 % of the oracle or 2 ticks at HZ=250 (8 ms), whichever
/// is larger.
pub fn cpu_tolerance(oracle_ns: u64) -> u64 {
    (oracle_ns / 20).max(8_000_000)
}

/// The RSS tolerance: 10 % of VmRSS, or the most the tool's approximate figure can lag,
/// whichever is larger. The tool reads each `rss_stat` counter's global value
/// (`percpu_counter.count`, what `get_mm_counter` returns); `/proc/PID/status` VmRSS on this
/// kernel adds the per-CPU parts exactly. Each CPU holds fewer than `percpu_counter_batch`
/// (max(32, 2 × CPUs)) pages of each counter locally, so the two differ by less than
/// 3 counters × CPUs × batch pages (768 KiB with 2 CPUs and 4 KiB pages) plus what the
/// process mapped or freed between the tool's sample and the oracle's read.
pub fn rss_tolerance(oracle_bytes: u64) -> u64 {
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let batch = (2 * cpus).max(32);
    (oracle_bytes / 10).max(3 * cpus * batch * page)
}

/// How a process's cpu_ns is judged.
#[derive(Clone, Debug)]
pub enum CpuTruth {
    /// |tool − oracle| ≤ [`cpu_tolerance`].
    Near {
        oracle_ns: u64,
        source: &'static str,
    },
    /// A process still on a CPU when the oracle was read at `read_ns`, after the tool's last
    /// sample (`sampled_ns`): it may have run for up to `read_ns − sampled_ns` more (one
    /// thread), so `oracle − tol − (read_ns − sampled_ns) ≤ tool ≤ oracle + tol`.
    RunningAtRead {
        oracle_ns: u64,
        read_ns: u64,
        source: &'static str,
    },
    /// The tool's figure is a lower bound (cpu_partial): 0 < tool ≤ oracle + tolerance.
    LowerBound {
        oracle_ns: u64,
        source: &'static str,
    },
}

impl CpuTruth {
    /// Near the `wait4` rusage (utime + stime) of a reaped process.
    pub fn wait4(reaped: &Reaped) -> CpuTruth {
        CpuTruth::Near {
            oracle_ns: reaped.cpu_ns,
            source: "wait4 rusage utime+stime",
        }
    }
}

/// How a process ended, per `wait4` (or, for a zombie, per /proc and the later `wait4`).
#[derive(Clone, Debug)]
pub struct ExitTruth {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub core_dumped: bool,
    /// CLOCK_MONOTONIC window of the exit: from the signal (or spawn) to the reap (or the
    /// /proc read that showed the zombie).
    pub window: (u64, u64),
}

impl ExitTruth {
    /// From a reap; `since`: the earliest instant the exit can have happened.
    pub fn reaped(r: &Reaped, since: u64) -> ExitTruth {
        ExitTruth {
            exit_code: r.exit_code,
            signal: r.signal,
            core_dumped: r.core_dumped,
            window: (since, r.reaped_ns),
        }
    }
}

/// Whether a row must come from the probes, or may still be the /proc seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginTruth {
    /// Started after the probes attached: `kernel`, seq > 0.
    Kernel,
    /// Existed before: `kernel` (seq > 0) or `procfs` (seq 0).
    Either,
}

/// The oracle's complete view of one process row.
#[derive(Clone, Debug)]
pub struct Expected {
    pub label: String,
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub uid: u32,
    pub task_state: char,
    pub start_window: (u64, u64),
    /// None while running.
    pub exit: Option<ExitTruth>,
    pub cpu: CpuTruth,
    pub cpu_partial: bool,
    /// Live threads (`Threads:`), for rows whose process is still there; None: not checked
    /// (reaped processes).
    pub threads: Option<u64>,
    pub kernel_thread: bool,
    /// Nice value (stat field 19); None: not checked (reaped processes).
    pub nice: Option<i64>,
    /// Resident set size: None not checked; Some(None) must be null; Some(Some(b)) within
    /// [`rss_tolerance`] of `b` (status VmRSS).
    pub rss_bytes: Option<Option<u64>>,
    /// Virtual size: None not checked; Some(None) must be null; Some(Some(b)) within 10 % of
    /// `b` (status VmSize; an mmap between the tool's sample and the oracle's read moves it).
    pub virt_bytes: Option<Option<u64>>,
    /// cgroup v2 path: None not checked; Some(p) must equal `p` (`/proc/PID/cgroup` `0::`).
    pub cgroup: Option<String>,
    /// Command line and truncation: None not checked; Some(None) must be null.
    pub cmdline: Option<Option<(String, bool)>>,
    pub origin: OriginTruth,
    /// Window `sampled_ns` must lie in.
    pub sampled_window: (u64, u64),
}

impl Expected {
    /// A live process as `snap` shows it (cpu: the sum of its threads' schedstat, the right
    /// oracle while no thread has died; use [`Expected::cpu`] to change it).
    pub fn live(label: &str, snap: &Snapshot, origin: OriginTruth) -> Expected {
        let start_window = snap.start_window();
        Expected {
            label: label.to_string(),
            pid: snap.pid,
            ppid: snap.ppid,
            comm: snap.comm.clone(),
            uid: snap.uid,
            task_state: snap.state,
            start_window,
            exit: None,
            cpu: CpuTruth::Near {
                oracle_ns: snap.schedstat_ns,
                source: "sum task/*/schedstat",
            },
            cpu_partial: snap.threads > 256,
            threads: Some(snap.threads),
            kernel_thread: snap.kernel_thread,
            nice: Some(snap.nice),
            rss_bytes: Some(snap.rss_bytes),
            virt_bytes: Some(snap.virt_bytes),
            cgroup: snap.cgroup.clone(),
            cmdline: None,
            origin,
            sampled_window: (start_window.0, snap.read_ns),
        }
        .with_cmdline(snap)
    }

    /// [`Expected::live`] of `p` as /proc shows it now, under its own label.
    pub fn live_proc(p: &Proc, origin: OriginTruth) -> Expected {
        Expected::live(&p.label, &Snapshot::of(p.pid, &p.label), origin)
    }

    /// A reaped child: identity from a /proc read while it was alive (`alive`; ppid, uid and
    /// comm as given), end and CPU from `wait4` (see [`Expected::reaped_child`]).
    pub fn reaped(
        label: &str,
        alive: &Snapshot,
        comm: &str,
        since: u64,
        reaped: &Reaped,
    ) -> Expected {
        Expected {
            pid: alive.pid,
            ppid: alive.ppid,
            uid: alive.uid,
            start_window: alive.start_window(),
            ..Expected::reaped_child(label, comm, since, reaped)
        }
    }

    /// A child of this process with its uid, known from `wait4` alone: started no earlier than
    /// `since` (before its fork), exited (`X`) as `wait4` says between `since` and the reap, CPU
    /// from its rusage.
    pub fn reaped_child(label: &str, comm: &str, since: u64, reaped: &Reaped) -> Expected {
        let exit = ExitTruth::reaped(reaped, since);
        Expected {
            label: label.to_string(),
            pid: reaped.pid,
            ppid: std::process::id(),
            comm: comm.to_string(),
            // SAFETY: getuid has no preconditions.
            uid: unsafe { libc::getuid() },
            task_state: 'X',
            start_window: exit.window,
            sampled_window: (exit.window.0, mono_ns()),
            exit: Some(exit),
            cpu: CpuTruth::wait4(reaped),
            cpu_partial: false,
            threads: None,
            kernel_thread: false,
            nice: None,
            // Exited: the address space is gone.
            rss_bytes: Some(None),
            virt_bytes: Some(None),
            cgroup: None,
            cmdline: None,
            origin: OriginTruth::Kernel,
        }
    }

    /// Checks `cmdline` against the exec-time command line of `snap` (/proc/PID/cmdline, cut to
    /// the tool's 256 bytes).
    pub fn with_cmdline(mut self, snap: &Snapshot) -> Expected {
        let full = snap.cmdline.clone();
        if full.is_empty() {
            // A kernel thread has no arguments and the tool knows none; a zombie's are gone
            // from /proc (the tool keeps the exec-time line): nothing to compare with.
            self.cmdline = snap.kernel_thread.then_some(None);
            return self;
        }
        self.cmdline = Some(Some(if full.len() > 256 {
            // The tool keeps the first 256 bytes of the NUL-separated form.
            (
                String::from_utf8_lossy(&full.as_bytes()[..256]).into_owned(),
                true,
            )
        } else {
            (full, false)
        }));
        self
    }

    /// Replaces the CPU oracle.
    pub fn cpu(mut self, cpu: CpuTruth) -> Expected {
        self.cpu = cpu;
        self
    }
}

fn ms(ns: i128) -> String {
    format!("{:.3}ms", ns as f64 / 1e6)
}

/// One comparison of a tool figure with its oracle.
#[derive(Debug)]
struct Check {
    mode: String,
    subject: String,
    field: String,
    oracle: String,
    tool: String,
    ok: bool,
    /// (|error| ns, tolerance ns) for numeric comparisons.
    error: Option<(u64, u64)>,
}

/// The comparisons of one subject in one mode (see [`Scorecard::at`]).
pub struct Scope<'a> {
    card: &'a mut Scorecard,
    mode: &'a str,
    subject: &'a str,
}

impl Scope<'_> {
    fn push(
        &mut self,
        field: &str,
        oracle: String,
        tool: String,
        ok: bool,
        error: Option<(u64, u64)>,
    ) {
        self.card.checks.push(Check {
            mode: self.mode.to_string(),
            subject: self.subject.to_string(),
            field: field.to_string(),
            oracle,
            tool,
            ok,
            error,
        });
    }

    /// `tool == oracle` (JSON values).
    pub fn eq(&mut self, field: &str, oracle: Value, tool: &Value) {
        let ok = &oracle == tool;
        self.push(field, oracle.to_string(), tool.to_string(), ok, None);
    }

    /// A condition with its own description of what the oracle expects.
    pub fn holds(&mut self, field: &str, oracle: &str, tool: &Value, ok: bool) {
        self.push(field, oracle.to_string(), tool.to_string(), ok, None);
    }

    /// |tool − oracle| ≤ tol (tool must be an unsigned number).
    pub fn near(&mut self, field: &str, oracle: u64, tool: &Value, tol: u64, source: &str) {
        match tool.as_u64() {
            Some(t) => {
                let err = t.abs_diff(oracle);
                self.push(
                    field,
                    format!("{oracle} ({source}; tol ±{})", ms(tol as i128)),
                    format!("{t} (err {})", ms(t as i128 - oracle as i128)),
                    err <= tol,
                    Some((err, tol)),
                );
            }
            None => self.push(
                field,
                format!("{oracle} ({source})"),
                tool.to_string(),
                false,
                None,
            ),
        }
    }

    /// lo ≤ tool ≤ hi (tool must be an unsigned number); the error is the distance outside.
    pub fn within(&mut self, field: &str, (lo, hi): (u64, u64), tool: &Value, source: &str) {
        match tool.as_u64() {
            Some(t) => {
                let err = lo.saturating_sub(t).max(t.saturating_sub(hi));
                self.push(
                    field,
                    format!("[{lo}, {hi}] ({source})"),
                    format!("{t} ({} past lo)", ms(t as i128 - lo as i128)),
                    err == 0,
                    Some((err, hi - lo)),
                );
            }
            None => self.push(
                field,
                format!("[{lo}, {hi}] ({source})"),
                tool.to_string(),
                false,
                None,
            ),
        }
    }
}

/// Every comparison of one test, per mode.
pub struct Scorecard {
    test: String,
    checks: Vec<Check>,
}

impl Scorecard {
    pub fn new(test: &str) -> Scorecard {
        Scorecard {
            test: test.to_string(),
            checks: Vec::new(),
        }
    }

    /// The comparisons of `subject` (a process, or "all rows") in `mode`.
    /// A byte figure of `row`: unchecked (`want` None), null (`Some(None)`), or within
    /// `tolerance(oracle)` of the oracle's `Some(Some(oracle))` read from `source`.
    #[allow(clippy::too_many_arguments)]
    fn bytes_near(
        &mut self,
        mode: &str,
        s: &str,
        row: &Value,
        field: &str,
        source: &str,
        want: Option<Option<u64>>,
        tolerance: impl Fn(u64) -> u64,
    ) {
        match want {
            None => {}
            Some(None) => self.at(mode, s).eq(field, Value::Null, &row[field]),
            Some(Some(oracle)) => {
                let tol = tolerance(oracle);
                let got = row[field].as_u64();
                let err = got.map(|t| t.abs_diff(oracle));
                let shown = got.map_or_else(
                    || row[field].to_string(),
                    |t| {
                        format!(
                            "{t} (err {:+.1} %)",
                            100.0 * (t as f64 - oracle as f64) / oracle.max(1) as f64
                        )
                    },
                );
                self.at(mode, s).push(
                    field,
                    format!("{oracle} ({source}; tol ±{tol})"),
                    shown,
                    err.is_some_and(|e| e <= tol),
                    err.map(|e| (e, tol)),
                );
            }
        }
    }

    pub fn at<'a>(&'a mut self, mode: &'a str, subject: &'a str) -> Scope<'a> {
        Scope {
            card: self,
            mode,
            subject,
        }
    }

    /// A row that should exist does not.
    pub fn missing(&mut self, mode: &str, subject: &str, why: &str) {
        self.at(mode, subject)
            .push("row", why.to_string(), "missing".to_string(), false, None);
    }

    /// Compares every contract field of `mode`'s row for `want` (the row of that pid whose
    /// start lies in the oracle's window, or its only row).
    pub fn process(&mut self, mode: &str, rows: &[&Value], want: &Expected) {
        let mut subject = format!("{} pid {}", want.label, want.pid);
        let of_pid: Vec<&Value> = rows
            .iter()
            .copied()
            .filter(|r| r["pid"].as_u64() == Some(want.pid as u64))
            .collect();
        let in_window = |r: &&&Value| {
            r["start_ns"]
                .as_u64()
                .is_some_and(|s| s >= want.start_window.0 && s <= want.start_window.1)
        };
        let row = match of_pid.iter().find(in_window).or(of_pid.first()) {
            Some(r) => *r,
            None => {
                self.missing(mode, &subject, "a row with this pid");
                return;
            }
        };
        subject.push_str(match row["origin"].as_str() {
            Some("procfs") => " [procfs]",
            _ => "",
        });
        self.at(mode, &subject)
            .holds("rows of pid", "1", &json!(of_pid.len()), of_pid.len() == 1);
        let s = subject.as_str();
        self.at(mode, s).eq("pid", json!(want.pid), &row["pid"]);
        self.at(mode, s).eq("ppid", json!(want.ppid), &row["ppid"]);
        self.at(mode, s).eq("comm", json!(want.comm), &row["comm"]);
        self.at(mode, s).eq("uid", json!(want.uid), &row["uid"]);
        let state = if want.exit.is_some() {
            "exited"
        } else {
            "running"
        };
        self.at(mode, s).eq("state", json!(state), &row["state"]);
        self.at(mode, s).eq(
            "task_state",
            json!(want.task_state.to_string()),
            &row["task_state"],
        );
        self.at(mode, s).within(
            "start_ns",
            want.start_window,
            &row["start_ns"],
            "/proc stat starttime, 1 tick + 1 ms",
        );
        match &want.exit {
            None => {
                for field in ["exit_ns", "exit_code", "exit_signal", "core_dumped"] {
                    self.at(mode, s).eq(field, Value::Null, &row[field]);
                }
            }
            Some(exit) => {
                let lo = exit.window.0.max(row["start_ns"].as_u64().unwrap_or(0));
                self.at(mode, s).within(
                    "exit_ns",
                    (lo, exit.window.1),
                    &row["exit_ns"],
                    "after start and signal/spawn, before wait4 returned",
                );
                self.at(mode, s)
                    .eq("exit_code", json!(exit.exit_code), &row["exit_code"]);
                self.at(mode, s)
                    .eq("exit_signal", json!(exit.signal), &row["exit_signal"]);
                self.at(mode, s)
                    .eq("core_dumped", json!(exit.core_dumped), &row["core_dumped"]);
            }
        }
        match &want.cpu {
            CpuTruth::Near { oracle_ns, source } => {
                self.at(mode, s).near(
                    "cpu_ns",
                    *oracle_ns,
                    &row["cpu_ns"],
                    cpu_tolerance(*oracle_ns),
                    source,
                );
            }
            CpuTruth::RunningAtRead {
                oracle_ns,
                read_ns,
                source,
            } => {
                let tol = cpu_tolerance(*oracle_ns);
                let since = read_ns.saturating_sub(row["sampled_ns"].as_u64().unwrap_or(0));
                let (lo, hi) = (oracle_ns.saturating_sub(tol + since), oracle_ns + tol);
                self.at(mode, s).within(
                    "cpu_ns",
                    (lo, hi),
                    &row["cpu_ns"],
                    &format!(
                        "{oracle_ns} {source} at the read, {} after sampled_ns; tol ±{}",
                        ms(since as i128),
                        ms(tol as i128)
                    ),
                );
            }
            CpuTruth::LowerBound { oracle_ns, source } => {
                let tol = cpu_tolerance(*oracle_ns);
                let ok = row["cpu_ns"]
                    .as_u64()
                    .is_some_and(|c| c > 0 && c <= oracle_ns + tol);
                self.at(mode, s).holds(
                    "cpu_ns",
                    &format!(
                        "0 < cpu_ns <= {oracle_ns} + {} ({source}, lower bound)",
                        ms(tol as i128)
                    ),
                    &row["cpu_ns"],
                    ok,
                );
            }
        }
        self.at(mode, s)
            .eq("cpu_partial", json!(want.cpu_partial), &row["cpu_partial"]);
        if let Some(threads) = want.threads {
            let tool = row["threads"].as_u64();
            let ok = tool == Some(threads) || (tool == Some(0) && row["origin"] == "procfs");
            self.at(mode, s).holds(
                "threads",
                &format!("{threads} (/proc status Threads; 0 allowed for a procfs row)"),
                &row["threads"],
                ok,
            );
        }
        let sampled_lo = want.sampled_window.0.max(
            want.exit
                .as_ref()
                .and_then(|_| row["exit_ns"].as_u64())
                .unwrap_or(0),
        );
        if row["origin"] == "procfs" && row["sampled_ns"] == 0 {
            self.at(mode, s).holds(
                "sampled_ns",
                "0 (unknown) allowed for a procfs row",
                &row["sampled_ns"],
                true,
            );
        } else {
            self.at(mode, s).within(
                "sampled_ns",
                (sampled_lo, want.sampled_window.1),
                &row["sampled_ns"],
                "after start (exit), before the oracle read",
            );
        }
        self.at(mode, s).eq(
            "kernel_thread",
            json!(want.kernel_thread),
            &row["kernel_thread"],
        );
        match &want.cmdline {
            None => {}
            Some(None) => {
                self.at(mode, s).eq("cmdline", Value::Null, &row["cmdline"]);
            }
            Some(Some((text, truncated))) => {
                self.at(mode, s).eq("cmdline", json!(text), &row["cmdline"]);
                self.at(mode, s).eq(
                    "cmdline_truncated",
                    json!(truncated),
                    &row["cmdline_truncated"],
                );
            }
        }
        if let Some(nice) = want.nice {
            self.at(mode, s).eq("nice", json!(nice), &row["nice"]);
        }
        if let Some(path) = &want.cgroup {
            self.at(mode, s).eq("cgroup", json!(path), &row["cgroup"]);
        }
        self.bytes_near(
            mode,
            s,
            row,
            "virt_bytes",
            "status VmSize",
            want.virt_bytes,
            |b| b / 10,
        );
        self.bytes_near(
            mode,
            s,
            row,
            "rss_bytes",
            "status VmRSS",
            want.rss_bytes,
            rss_tolerance,
        );
        let origin = row["origin"].as_str().unwrap_or("");
        let seq = row["seq"].as_u64();
        match want.origin {
            OriginTruth::Kernel => {
                self.at(mode, s)
                    .eq("origin", json!("kernel"), &row["origin"]);
                self.at(mode, s)
                    .holds("seq", "> 0", &row["seq"], seq.is_some_and(|q| q > 0));
            }
            OriginTruth::Either => {
                self.at(mode, s).holds(
                    "origin",
                    "kernel or procfs",
                    &row["origin"],
                    origin == "kernel" || origin == "procfs",
                );
                let ok = match origin {
                    "procfs" => seq == Some(0),
                    _ => seq.is_some_and(|q| q > 0),
                };
                self.at(mode, s)
                    .holds("seq", "0 for procfs, > 0 for kernel", &row["seq"], ok);
            }
        }
    }

    /// Number of failed checks so far.
    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }

    /// Prints a one-line summary per mode (matches/total, worst numeric error relative to its
    /// tolerance) and, when any check failed, every failed check with the oracle and tool
    /// figures side by side; then panics on failure.
    pub fn finish(self) {
        let mut per_mode: BTreeMap<&str, Vec<&Check>> = BTreeMap::new();
        for c in &self.checks {
            per_mode.entry(c.mode.as_str()).or_default().push(c);
        }
        for (mode, checks) in &per_mode {
            let ok = checks.iter().filter(|c| c.ok).count();
            let worst = checks
                .iter()
                .filter(|c| c.field.starts_with("cpu"))
                .filter_map(|c| c.error.map(|(e, t)| (c, e, t)))
                .max_by(|a, b| {
                    let ra = a.1 as f64 / a.2.max(1) as f64;
                    let rb = b.1 as f64 / b.2.max(1) as f64;
                    ra.total_cmp(&rb).then(a.1.cmp(&b.1))
                });
            let worst = match worst {
                Some((c, e, t)) => format!(
                    "worst cpu error {} ({:.0} % of its ±{} tolerance) on {} {}",
                    ms(e as i128),
                    100.0 * e as f64 / t.max(1) as f64,
                    ms(t as i128),
                    c.subject,
                    c.field
                ),
                None => "no cpu comparisons".to_string(),
            };
            let worst_window = checks
                .iter()
                .filter(|c| {
                    !c.field.starts_with("cpu")
                        && !c.field.ends_with("_bytes")
                        && c.error.is_some_and(|(e, _)| e > 0)
                })
                .map(|c| {
                    format!(
                        "{} {} off by {}",
                        c.subject,
                        c.field,
                        ms(c.error.unwrap().0 as i128)
                    )
                })
                .next()
                .unwrap_or_default();
            let worst_rss = checks
                .iter()
                .filter(|c| c.field == "rss_bytes")
                .filter_map(|c| c.error.map(|(e, t)| (c, e, t)))
                .max_by(|a, b| a.1.cmp(&b.1))
                .map(|(c, e, t)| {
                    format!(
                        "; worst rss error {e} B of ±{t} B on {} ({} vs {})",
                        c.subject, c.tool, c.oracle
                    )
                })
                .unwrap_or_default();
            println!(
                "{}: {mode}: {ok}/{} fields match oracle; {worst}{worst_rss}{}",
                self.test,
                checks.len(),
                if worst_window.is_empty() {
                    String::new()
                } else {
                    format!("; {worst_window}")
                }
            );
        }
        let failed: Vec<&Check> = self.checks.iter().filter(|c| !c.ok).collect();
        if failed.is_empty() {
            return;
        }
        let mut table = String::new();
        let _ = writeln!(
            table,
            "{:<5} {:<36} {:<14} {:<60} tool",
            "mode", "process", "field", "oracle"
        );
        for c in &failed {
            let _ = writeln!(
                table,
                "{:<5} {:<36} {:<14} {:<60} {}",
                c.mode, c.subject, c.field, c.oracle, c.tool
            );
        }
        panic!(
            "{}: {} of {} checks disagree with the oracle:\n{table}",
            self.test,
            failed.len(),
            self.checks.len()
        );
    }
}
