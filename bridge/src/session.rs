//! A running bridge: probes loaded and attached, the requested modes on their threads, the
//! /proc seed read at attach time. The caller owns the [`TableStore`] and applies the
//! [`ModeMessage`]s it receives (the store has exactly one owner).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender};

use crate::{
    loader::{LoadError, ProbeSettings, Probes},
    mode::{ModeKind, ModeMessage},
    procfs_seed,
    row::{ConnectionRow, ProcessRow, RowOrigin},
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
    /// Kernel throttle: minimum interval between CPU / byte-count records of one entity.
    pub update_interval: Duration,
    /// In-kernel filter: only this tgid (0 = all).
    pub filter_tgid: u32,
    /// In-kernel filter: only this local or remote port (0 = all).
    pub filter_port: u16,
    /// Capacity of each state map (entries).
    pub state_map_entries: u32,
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
            state_map_entries: 16384,
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

/// A running bridge. Dropping it stops the mode threads and detaches the probes.
pub struct Session {
    probes: Arc<Probes>,
    receiver: Receiver<ModeMessage>,
    stop: Arc<AtomicBool>,
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
            update_interval_ns: config.update_interval.as_nanos() as u64,
            filter_tgid: config.filter_tgid,
            filter_port: config.filter_port,
            state_map_entries: config.state_map_entries,
        };
        let probes = Arc::new(Probes::load_and_attach(&settings)?);
        // Seed after attaching, so nothing falls between the /proc read and the probes.
        let tick_ns = procfs_seed::clock_tick_ns();
        let (seed_processes, seed_connections) = if config.seed_from_procfs {
            read_seed().map_err(SessionError::Other)?
        } else {
            (Vec::new(), Vec::new())
        };
        let (sender, receiver) = crossbeam_channel::bounded(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let mut session = Session {
            probes,
            receiver,
            stop,
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
        session.spawn_kernel_reaper()?;
        Ok(session)
    }

    fn spawn_mode(
        &mut self,
        mode: ModeKind,
        sender: Sender<ModeMessage>,
    ) -> Result<(), SessionError> {
        let probes = Arc::clone(&self.probes);
        let stop = Arc::clone(&self.stop);
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

    fn spawn_kernel_reaper(&mut self) -> Result<(), SessionError> {
        let probes = Arc::clone(&self.probes);
        let stop = Arc::clone(&self.stop);
        let retention_ns = self.config.kernel_retention.as_nanos() as u64;
        let handle = std::thread::Builder::new()
            .name("bridge-reaper".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(e) = probes.reap_finished(retention_ns) {
                        log::warn!("kernel state reaper: {e:#}");
                    }
                    sleep_unless_stopped(&stop, Duration::from_millis(500));
                }
            })
            .map_err(|e| SessionError::Other(format!("cannot start the reaper thread: {e}")))?;
        self.threads.push(handle);
        Ok(())
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

    /// Stops the mode threads and waits for them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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

/// Sleeps up to `total`, returning early once `stop` is set.
pub(crate) fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(20);
    let mut left = total;
    while !stop.load(Ordering::Relaxed) && !left.is_zero() {
        let now = left.min(step);
        std::thread::sleep(now);
        left -= now;
    }
}

fn read_seed() -> Result<(Vec<ProcessRow>, Vec<ConnectionRow>), String> {
    let root = std::path::Path::new("/proc");
    let processes = procfs_seed::read_processes(root)
        .map_err(|e| format!("reading processes from /proc: {e}"))?
        .into_iter()
        .map(|p| ProcessRow {
            key: p.key,
            state: p.state,
            seq: 0,
            changed_ns: 0,
            origin: RowOrigin::Procfs,
        })
        .collect();
    let connections = procfs_seed::read_tcp_connections(root)
        .map_err(|e| format!("reading TCP connections from /proc: {e}"))?
        .into_iter()
        .map(|c| ConnectionRow {
            key: c.key,
            state: c.state,
            seq: 0,
            changed_ns: 0,
            origin: RowOrigin::Procfs,
        })
        .collect();
    Ok((processes, connections))
}
