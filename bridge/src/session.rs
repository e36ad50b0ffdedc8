//! A running bridge: probes loaded and attached, the requested modes on their threads, the
//! /proc seed read at attach time. The caller owns the [`TableStore`] and applies the
//! [`ModeMessage`]s it receives (the store has exactly one owner).

use std::{
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender};

use crate::{
    contract::{ConnectionRow, ModeKind, ModeMessage, ProcessRow, RowOrigin},
    loader::{self, LoadError, ProbeSettings, Probes},
    procfs_seed,
    stats::{monotonic_ns, thread_cpu_ns},
    stop::StopToken,
    store::TableStore,
    table::Retention,
};

/// What to run and how.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Modes to run (each on its own thread, all at once).
    pub modes: Vec<ModeKind>,
    /// Poll mode's snapshot interval.
    pub poll_interval: Duration,
    /// Ring buffer size in bytes (a power-of-two multiple of the page size).
    pub ring_bytes: u32,
    /// Ring wake-up sampling (1 = wake per record; N = every Nth record, plus a timer).
    pub ring_wakeup_every: u32,
    /// Pages per CPU for each perf buffer (a power of two).
    pub perf_pages: usize,
    /// Perf wake-up sampling (1 = wake per record; N = every Nth record, plus a timer).
    pub perf_wakeup_every: u32,
    /// Use the LRU variants of the state maps.
    pub use_lru_maps: bool,
    /// Flush period: what changes without an event of its own (on-CPU time, task state, byte
    /// counters, renames) is sent at most once per entity per period, and at the latest one
    /// period after it changed.
    pub update_interval: Duration,
    /// In-kernel filter: only this tgid (0 = all).
    pub filter_tgid: u32,
    /// In-kernel filter: only this local or remote port (0 = all).
    pub filter_port: u16,
    /// Capacity of the processes state map (entries); default from the machine
    /// ([`loader::default_proc_map_entries`]).
    pub proc_map_entries: u32,
    /// Capacity of the connections state map (entries).
    pub conn_map_entries: u32,
    /// How long finished entries stay in the kernel state maps before user space deletes them.
    /// The session keeps them at least three poll intervals, so poll sees every exit that the
    /// map could hold.
    pub kernel_retention: Duration,
    /// How long / how many finished rows stay in the user-space tables.
    pub retention: Retention,
    /// Seed the tables from /proc at start-up.
    pub seed_from_procfs: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            modes: ModeKind::ALL.to_vec(),
            poll_interval: Duration::from_secs(1),
            ring_bytes: 4 << 20,
            ring_wakeup_every: 1,
            perf_pages: 64,
            perf_wakeup_every: 1,
            use_lru_maps: false,
            update_interval: Duration::from_millis(100),
            filter_tgid: 0,
            filter_port: 0,
            proc_map_entries: loader::default_proc_map_entries(),
            conn_map_entries: loader::DEFAULT_CONN_MAP_ENTRIES,
            kernel_retention: Duration::from_secs(10),
            retention: Retention::default(),
            seed_from_procfs: true,
        }
    }
}

/// Why a session could not start. [`SessionError::exit_code`] maps it to the CLI contract.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Loading/attaching the probes failed (privileges, kernel support, bad object).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Anything else (threads, /proc).
    #[error("{0}")]
    Other(String),
}

impl SessionError {
    /// 3 for missing privileges or kernel support, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            SessionError::Load(e) if e.is_privilege_or_support() => 3,
            _ => 1,
        }
    }
}

/// What the kernel flush has done so far (the housekeeping thread's work).
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

/// A running bridge. Dropping it stops the mode threads and detaches the probes.
pub struct Session {
    probes: Arc<Probes>,
    receiver: Receiver<ModeMessage>,
    /// Stops the mode threads (after the final flush).
    stop: StopToken,
    /// Stops the housekeeping thread (flush + reaper).
    housekeeping_stop: StopToken,
    housekeeper: Option<JoinHandle<()>>,
    flush_cycle: Arc<AtomicU32>,
    flush_stats: Arc<FlushStats>,
    finished: bool,
    threads: Vec<JoinHandle<()>>,
    modes: Vec<ModeKind>,
    seed_processes: Vec<ProcessRow>,
    seed_connections: Vec<ConnectionRow>,
    config: SessionConfig,
    tick_ns: u64,
}

impl Session {
    /// Loads and attaches the probes, reads the /proc seed, and starts one thread per mode.
    pub fn start(mut config: SessionConfig) -> Result<Session, SessionError> {
        config.kernel_retention = config.kernel_retention.max(config.poll_interval * 3);
        let settings = ProbeSettings {
            modes: config.modes.clone(),
            ring_bytes: config.ring_bytes,
            ring_wakeup_every: config.ring_wakeup_every,
            use_lru_maps: config.use_lru_maps,
            filter_tgid: config.filter_tgid,
            filter_port: config.filter_port,
            proc_map_entries: config.proc_map_entries,
            conn_map_entries: config.conn_map_entries,
        };
        let probes = Arc::new(Probes::load_and_attach(&settings)?);
        // Seed after attaching, so nothing falls between the /proc read and the probes.
        let tick_ns = procfs_seed::clock_tick_ns();
        let (seed_processes, seed_connections) = if config.seed_from_procfs {
            read_seed(&config).map_err(SessionError::Other)?
        } else {
            (Vec::new(), Vec::new())
        };
        let (sender, receiver) = crossbeam_channel::bounded(1024);
        let token = || {
            StopToken::new().map_err(|e| SessionError::Other(format!("creating an eventfd: {e}")))
        };
        let mut session = Session {
            probes,
            receiver,
            stop: token()?,
            housekeeping_stop: token()?,
            housekeeper: None,
            flush_cycle: Arc::new(AtomicU32::new(0)),
            flush_stats: Arc::new(FlushStats::default()),
            finished: false,
            threads: Vec::new(),
            modes: Vec::new(),
            seed_processes,
            seed_connections,
            config: config.clone(),
            tick_ns,
        };
        for mode in &config.modes {
            session.spawn_mode(*mode, sender.clone())?;
        }
        session.spawn_housekeeper()?;
        Ok(session)
    }

    fn spawn_mode(
        &mut self,
        mode: ModeKind,
        sender: Sender<ModeMessage>,
    ) -> Result<(), SessionError> {
        let probes = Arc::clone(&self.probes);
        let stop = self.stop.clone();
        let config = self.config.clone();
        let handle = std::thread::Builder::new()
            .name(format!("bridge-{mode}"))
            .spawn(move || {
                let result = match mode {
                    ModeKind::Ring => crate::mode::ring::run(&probes, &config, &sender, &stop),
                    ModeKind::Perf => crate::mode::perf::run(&probes, &config, &sender, &stop),
                    ModeKind::Poll => crate::mode::poll::run(&probes, &config, &sender, &stop),
                };
                if let Err(error) = result {
                    let _ = sender.send(ModeMessage::Failed {
                        mode,
                        error: format!("{error:#}"),
                    });
                }
            })
            .map_err(|e| SessionError::Other(format!("cannot start the {mode} thread: {e}")))?;
        self.threads.push(handle);
        self.modes.push(mode);
        Ok(())
    }

    /// The housekeeping thread: the kernel flush every `update_interval` (every CPU sampled,
    /// the dirty queues drained) and the kernel reaper (finished entries older than
    /// `kernel_retention`) every 500 ms.
    fn spawn_housekeeper(&mut self) -> Result<(), SessionError> {
        let probes = Arc::clone(&self.probes);
        let stop = self.housekeeping_stop.clone();
        let cycle = Arc::clone(&self.flush_cycle);
        let stats = Arc::clone(&self.flush_stats);
        let flush_every = self.config.update_interval;
        let reap_every_ns = 500_000_000u64;
        let retention_ns = self.config.kernel_retention.as_nanos() as u64;
        let handle = std::thread::Builder::new()
            .name("bridge-flush".into())
            .spawn(move || {
                let mut next_reap_ns = monotonic_ns() + reap_every_ns;
                loop {
                    let started = monotonic_ns();
                    run_flush(&probes, &cycle, &stats);
                    if started >= next_reap_ns {
                        if let Err(e) = probes.reap_finished(retention_ns) {
                            log::warn!("kernel state reaper: {e:#}");
                        }
                        next_reap_ns = started + reap_every_ns;
                    }
                    stats.cpu_ns.store(thread_cpu_ns(), Ordering::Relaxed);
                    let spent = Duration::from_nanos(monotonic_ns().saturating_sub(started));
                    if stop.sleep(flush_every.saturating_sub(spent)) {
                        return;
                    }
                }
            })
            .map_err(|e| SessionError::Other(format!("cannot start the flush thread: {e}")))?;
        self.housekeeper = Some(handle);
        Ok(())
    }

    /// What the kernel flush has done so far.
    pub fn flush_stats(&self) -> &FlushStats {
        &self.flush_stats
    }

    /// Messages from the mode threads, in the order they were sent.
    pub fn messages(&self) -> &Receiver<ModeMessage> {
        &self.receiver
    }

    /// Modes that were started.
    pub fn running_modes(&self) -> &[ModeKind] {
        &self.modes
    }

    /// The configuration the session runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// A new, empty store with this session's tolerance and retention, seeded from /proc.
    pub fn new_store(&self) -> TableStore {
        let tolerance = self.tick_ns + procfs_seed::START_NS_SLACK_NS;
        let mut store = TableStore::new(tolerance, self.config.retention);
        store.seed(&self.seed_processes, &self.seed_connections);
        store
    }

    /// Turns a mode's kernel emission on or off at run time (its thread keeps running).
    pub fn set_mode_emission(&self, mode: ModeKind, enabled: bool) -> Result<(), LoadError> {
        self.probes.set_mode_enabled(mode, enabled)
    }

    /// The loaded probes (kernel counters, map access) — for tests and benchmarks.
    pub fn probes(&self) -> &Probes {
        &self.probes
    }

    /// Ends collection so that the last output is converged: stops the periodic flush, runs a
    /// final kernel flush (every CPU sampled, every dirty entity sent), then tells the modes to
    /// drain once more (poll: take one more snapshot) and stop. The modes' last batches keep
    /// arriving on [`Session::messages`], which disconnects once every mode has stopped.
    /// Calling it again does nothing.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.housekeeping_stop.stop();
        if let Some(handle) = self.housekeeper.take() {
            let _ = handle.join();
        }
        run_flush(&self.probes, &self.flush_cycle, &self.flush_stats);
        self.stop.stop();
    }

    /// Stops the mode threads and waits for them (their remaining messages are discarded).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.finish();
        // Unblock senders that wait on a full channel.
        while self.receiver.try_recv().is_ok() {}
        for handle in self.threads.drain(..) {
            while !handle.is_finished() {
                while self.receiver.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = handle.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One kernel flush cycle, with a cycle number never used before.
fn run_flush(probes: &Probes, cycle: &AtomicU32, stats: &FlushStats) {
    let number = cycle.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    match probes.flush(number, true) {
        Ok(keys) => {
            stats.keys.fetch_add(keys, Ordering::Relaxed);
        }
        Err(e) => {
            if stats.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                log::warn!("kernel flush: {e}");
            }
        }
    }
    stats.cycles.fetch_add(1, Ordering::Relaxed);
}

/// The /proc seed as rows, with the session's in-kernel filters applied to it too (so a
/// `--filter-pid` session shows only that pid, seeded or not).
///
/// Semantics shared with the kernel rows: a connection ends at TCP CLOSE, so a TIME-WAIT
/// remnant is a closed connection (close time unknown); a connection's start is unknown when it
/// predates the probes; byte counts are the kernel's lifetime counters (from `sock_diag`, as
/// `ss -ti`); `cpu_ns` is lifetime CPU (`utime + stime`, tick-accurate). Request sockets
/// (NEW-SYN-RECV) are not connections yet and are left out.
fn read_seed(config: &SessionConfig) -> Result<(Vec<ProcessRow>, Vec<ConnectionRow>), String> {
    use probe_common::{conn_flags, proc_flags, TCP_CLOSE};
    const TCP_TIME_WAIT: u32 = 6;
    const TCP_NEW_SYN_RECV: u32 = 12;
    let root = std::path::Path::new("/proc");
    let seeded_at = monotonic_ns();
    let processes = procfs_seed::read_processes(root)
        .map_err(|e| format!("reading processes from /proc: {e}"))?
        .into_iter()
        .filter(|p| config.filter_tgid == 0 || p.key.tgid == config.filter_tgid)
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
            ProcessRow {
                key: p.key,
                state,
                seq: 0,
                changed_ns: 0,
                origin: RowOrigin::Procfs,
            }
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
            let port = config.filter_port;
            port == 0 || c.key.sport == port || c.key.dport == port
        })
        .filter(|c| config.filter_tgid == 0 || c.state.pid == config.filter_tgid)
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
            ConnectionRow {
                key: c.key,
                state,
                seq: 0,
                changed_ns: 0,
                origin: RowOrigin::Procfs,
            }
        })
        .collect();
    Ok((processes, connections))
}
