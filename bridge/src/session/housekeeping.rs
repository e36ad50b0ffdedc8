//! The housekeeping thread: the kernel flush every `update_interval` (every CPU sampled, the
//! dirty queues drained), and every 500 ms the kernel reaper (finished entries older than the
//! kernel retention; skipped while the poll mode reaps from its snapshots) and a read of `PROC_CMDLINE` whose new entries go to the store as a
//! [`ModeMessage::CommandLines`]. It owns the flush program and hands it back when it stops, so the
//! session's final flush runs after the last periodic one, never beside it.

use std::{
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use crossbeam_channel::Sender;

use crate::{
    cmdlines::CmdlineChanges,
    contract::ModeMessage,
    map_batch::MapDump,
    probe::{Controls, FlushProgram, StateMaps},
    stats::{monotonic_ns, thread_cpu_ns},
    stop::StopToken,
};

/// How often the kernel reaper runs.
const REAP_EVERY_NS: u64 = 500_000_000;
/// The reaper skips its read when the maps were reaped less than this ago (by the poll mode,
/// whose default interval is 1 s).
const REAPED_RECENTLY_NS: u64 = 1_500_000_000;

/// What the kernel flush has done so far.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// Flush cycles run.
    pub cycles: AtomicU64,
    /// Dirty-queue keys handled.
    pub keys: AtomicU64,
    /// Cycles that failed (the error is logged).
    pub errors: AtomicU64,
    /// CPU time of the housekeeping thread (flush and kernel reaper), ns.
    pub cpu_ns: AtomicU64,
}

/// The flush program with its cycle numbering and stats.
pub(super) struct Flusher {
    program: FlushProgram,
    cycle: AtomicU32,
    stats: Arc<FlushStats>,
}

impl Flusher {
    pub(super) fn new(program: FlushProgram) -> Self {
        Flusher {
            program,
            cycle: AtomicU32::new(0),
            stats: Arc::new(FlushStats::default()),
        }
    }

    pub(super) fn stats(&self) -> &Arc<FlushStats> {
        &self.stats
    }

    /// One flush cycle, with a cycle number never used before.
    pub(super) fn run_cycle(&self) {
        let number = self.cycle.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        match self.program.run(number, true) {
            Ok(keys) => {
                self.stats.keys.fetch_add(keys, Ordering::Relaxed);
            }
            Err(e) => {
                if self.stats.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    log::warn!("kernel flush: {e}");
                }
            }
        }
        self.stats.cycles.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts the thread; joining it gives the flusher back.
pub(super) fn spawn(
    flusher: Flusher,
    controls: Arc<Controls>,
    state_maps: Arc<StateMaps>,
    flush_every: Duration,
    kernel_retention: Duration,
    cmdlines_to: Sender<ModeMessage>,
    stop: StopToken,
) -> std::io::Result<JoinHandle<Flusher>> {
    let retention_ns = kernel_retention.as_nanos().min(u64::MAX as u128) as u64;
    std::thread::Builder::new()
        .name("bridge-flush".into())
        .spawn(move || {
            let mut next_reap_ns = monotonic_ns() + REAP_EVERY_NS;
            let mut cmdlines = CmdlineReader::default();
            cmdlines.send_new(&state_maps, &cmdlines_to);
            let mut process_events = ProcessEvents::default();
            loop {
                let started = monotonic_ns();
                flusher.run_cycle();
                if started >= next_reap_ns {
                    // The poll mode reaps from its own snapshots (no extra read of the maps);
                    // this thread reads and reaps only when no one did for a while.
                    if !state_maps.reaped_within(REAPED_RECENTLY_NS, started) {
                        if let Err(e) = state_maps.reap_finished(retention_ns) {
                            log::warn!("kernel state reaper: {e:#}");
                        }
                    }
                    if process_events.lines_may_be_new(&controls) {
                        cmdlines.send_new(&state_maps, &cmdlines_to);
                    }
                    next_reap_ns = started + REAP_EVERY_NS;
                }
                flusher
                    .stats
                    .cpu_ns
                    .store(thread_cpu_ns(), Ordering::Relaxed);
                let spent = Duration::from_nanos(monotonic_ns().saturating_sub(started));
                if stop.sleep(flush_every.saturating_sub(spent)) {
                    return flusher;
                }
            }
        })
}

/// Whether `PROC_CMDLINE` can hold a line not read yet: only a fork or an exec writes one (the
/// /proc seed is written before this thread starts), so a connect storm with no new process
/// costs no read of the map (16,384 lines of 264 bytes, twice a second).
#[derive(Default)]
struct ProcessEvents {
    /// Forks + execs the probes had counted at the previous check (`None`: never read).
    last: Option<u64>,
    /// Checks in a row that saw the same count.
    unchanged: u32,
}

impl ProcessEvents {
    /// True unless the count of forks and execs stayed the same for the last two checks. A
    /// fork is counted just before it writes its child's line, so the check after a change
    /// reads once more; an unreadable count always reads.
    fn lines_may_be_new(&mut self, controls: &Controls) -> bool {
        let now = controls.event_counts().ok().map(|c| c.forks + c.execs);
        self.observe(now)
    }

    fn observe(&mut self, now: Option<u64>) -> bool {
        if now.is_some() && now == self.last {
            self.unchanged = self.unchanged.saturating_add(1);
        } else {
            self.unchanged = 0;
        }
        self.last = now;
        now.is_none() || self.unchanged < 2
    }
}

/// Reads `PROC_CMDLINE` and sends what is new to the store.
#[derive(Default)]
struct CmdlineReader {
    changes: CmdlineChanges,
    scratch: MapDump,
    errors: u64,
}

impl CmdlineReader {
    fn send_new(&mut self, state_maps: &StateMaps, to: &Sender<ModeMessage>) {
        match state_maps.read_cmdlines(&mut self.scratch) {
            Ok(read) => {
                let new = self.changes.changed(read);
                if !new.is_empty() {
                    // A store that stopped listening is the session ending: nothing to do.
                    let _ = to.send(ModeMessage::CommandLines(new));
                }
            }
            Err(e) => {
                self.errors += 1;
                if self.errors <= 3 {
                    log::warn!("reading PROC_CMDLINE: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProcessEvents;

    #[test]
    fn command_lines_are_read_until_the_process_events_stay_unchanged_twice() {
        let mut events = ProcessEvents::default();
        // First count, then the same twice: the second unchanged check is the first skipped.
        assert!(events.observe(Some(10)));
        assert!(events.observe(Some(10)));
        assert!(!events.observe(Some(10)));
        assert!(!events.observe(Some(10)));
        // A fork or exec: read now and once more after it.
        assert!(events.observe(Some(11)));
        assert!(events.observe(Some(11)));
        assert!(!events.observe(Some(11)));
        // An unreadable count always reads.
        assert!(events.observe(None));
        assert!(events.observe(None));
    }
}
