//! A running bridge: probes loaded and attached, the requested modes on their threads (each
//! owning its transport), the housekeeping thread (kernel flush and reaper), the /proc seed
//! read at attach time. The caller owns the [`TableStore`] and applies the [`ModeMessage`]s it
//! receives (the store has exactly one owner).

mod config;
mod headless;
mod housekeeping;
mod seed;

use std::{sync::Arc, thread::JoinHandle, time::Duration};

use crossbeam_channel::{Receiver, Sender};

pub use config::SessionConfig;
pub use housekeeping::FlushStats;

use crate::{
    contract::{ConnectionRow, ModeKind, ModeMessage, ProcessRow},
    mode::{perf::PerfMode, poll::PollMode, ring::RingMode, KernelShared, Mode},
    probe::{self, Controls, LoadError, LoadedProbes, ProbeLinks, StateMaps},
    procfs_seed,
    stop::StopToken,
    store::TableStore,
};
use housekeeping::Flusher;

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

/// The housekeeping thread while it runs, or the flusher it gave back.
enum Housekeeping {
    Running(JoinHandle<Flusher>, StopToken),
    Stopped(Option<Flusher>),
}

/// A running bridge. Dropping it stops every thread and detaches the probes.
pub struct Session {
    receiver: Receiver<ModeMessage>,
    kernel: KernelShared,
    /// Stops the mode threads (after the final flush).
    stop: StopToken,
    housekeeping: Housekeeping,
    flush_stats: Arc<FlushStats>,
    threads: Vec<JoinHandle<()>>,
    modes: Vec<ModeKind>,
    notes: Vec<String>,
    seed_processes: Vec<ProcessRow>,
    seed_connections: Vec<ConnectionRow>,
    config: SessionConfig,
    tick_ns: u64,
    // Last: the programs stay attached until every thread above has stopped.
    _links: ProbeLinks,
}

fn stop_token() -> Result<StopToken, SessionError> {
    StopToken::new().map_err(|e| SessionError::Other(format!("creating an eventfd: {e}")))
}

impl Session {
    /// Loads and attaches the probes, reads the /proc seed, and starts one thread per mode
    /// plus the housekeeping thread.
    pub fn start(mut config: SessionConfig) -> Result<Session, SessionError> {
        config.probes.modes = config.modes();
        config.kernel_retention = config.effective_kernel_retention();
        let LoadedProbes {
            links,
            controls,
            state_maps,
            ring,
            perf,
            flush,
            notes,
        } = probe::load(&config.probes)?;
        let kernel = KernelShared {
            controls: Arc::new(controls),
            state_maps: Arc::new(state_maps),
        };
        // Seed after attaching, so nothing falls between the /proc read and the probes.
        let (seed_processes, seed_connections) = if config.seed_from_procfs {
            let seed = seed::read_seed(&config.probes).map_err(SessionError::Other)?;
            kernel.state_maps.seed_cmdlines(&seed.cmdlines);
            (seed.processes, seed.connections)
        } else {
            (Vec::new(), Vec::new())
        };
        let (sender, receiver) = crossbeam_channel::bounded(1024);
        let flusher = Flusher::new(flush);
        let flush_stats = Arc::clone(flusher.stats());
        let housekeeping_stop = stop_token()?;
        let housekeeper = housekeeping::spawn(
            flusher,
            Arc::clone(&kernel.controls),
            Arc::clone(&kernel.state_maps),
            config.update_interval,
            config.kernel_retention,
            sender.clone(),
            housekeeping_stop.clone(),
        )
        .map_err(|e| SessionError::Other(format!("cannot start the flush thread: {e}")))?;
        let mut session = Session {
            receiver,
            kernel: kernel.clone(),
            stop: stop_token()?,
            housekeeping: Housekeeping::Running(housekeeper, housekeeping_stop),
            flush_stats,
            threads: Vec::new(),
            modes: Vec::new(),
            notes,
            seed_processes,
            seed_connections,
            config: config.clone(),
            tick_ns: procfs_seed::clock_tick_ns(),
            _links: links,
        };
        // Each transport is moved into the one mode that consumes it.
        let (mut ring, mut perf) = (Some(ring), Some(perf));
        for kind in config.modes() {
            let mode: Box<dyn Mode> = match kind {
                ModeKind::Ring => Box::new(RingMode::new(
                    ring.take().expect("one ring mode"),
                    kernel.clone(),
                    config.ring(),
                )),
                ModeKind::Perf => Box::new(PerfMode::new(
                    perf.take().expect("one perf mode"),
                    kernel.clone(),
                    config.perf,
                )),
                ModeKind::Poll => Box::new(PollMode::new(kernel.clone(), config.poll())),
            };
            session.spawn_mode(mode, sender.clone())?;
        }
        Ok(session)
    }

    fn spawn_mode(
        &mut self,
        mode: Box<dyn Mode>,
        sender: Sender<ModeMessage>,
    ) -> Result<(), SessionError> {
        let kind = mode.kind();
        let stop = self.stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("bridge-{kind}"))
            .spawn(move || {
                if let Err(error) = mode.run(&sender, &stop) {
                    let _ = sender.send(ModeMessage::Failed {
                        mode: kind,
                        error: format!("{error:#}"),
                    });
                }
            })
            .map_err(|e| SessionError::Other(format!("cannot start the {kind} thread: {e}")))?;
        self.threads.push(handle);
        self.modes.push(kind);
        Ok(())
    }

    /// Messages from the mode threads, in the order they were sent.
    pub fn messages(&self) -> &Receiver<ModeMessage> {
        &self.receiver
    }

    /// Modes that were started, in display order.
    pub fn running_modes(&self) -> &[ModeKind] {
        &self.modes
    }

    /// The configuration the session runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Notes about optional probes that could not attach (shown to the user).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The probes' controls: sequence and failure counters, the config map.
    pub fn controls(&self) -> &Controls {
        &self.kernel.controls
    }

    /// The probes' controls, shared: for a reader on another thread (the exporter reads the
    /// kernel's event counters at scrape time).
    pub fn shared_controls(&self) -> Arc<Controls> {
        Arc::clone(&self.kernel.controls)
    }

    /// The state maps in use (read-only access for tests and diagnostics).
    pub fn state_maps(&self) -> &StateMaps {
        &self.kernel.state_maps
    }

    /// A monitor of this session's probes' kernel run-time statistics (off until shown).
    pub fn probe_cost_monitor(&self) -> std::io::Result<crate::probe_cost::ProbeCostMonitor> {
        crate::probe_cost::ProbeCostMonitor::start(self._links.program_fds())
    }

    /// What the kernel flush has done so far.
    pub fn flush_stats(&self) -> &FlushStats {
        &self.flush_stats
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
        self.kernel.controls.set_mode_enabled(mode, enabled)
    }

    /// Ends collection so that the last output is converged: stops the periodic flush, runs a
    /// final kernel flush (every CPU sampled, every dirty entity sent), then tells the modes to
    /// drain once more (poll: take one more snapshot) and stop. The modes' last batches keep
    /// arriving on [`Session::messages`], which disconnects once every mode has stopped.
    /// Calling it again does nothing.
    pub fn finish(&mut self) {
        let flusher = match std::mem::replace(&mut self.housekeeping, Housekeeping::Stopped(None)) {
            Housekeeping::Running(handle, stop) => {
                stop.stop();
                handle.join().ok()
            }
            Housekeeping::Stopped(flusher) => {
                self.housekeeping = Housekeeping::Stopped(flusher);
                return;
            }
        };
        if let Some(flusher) = &flusher {
            flusher.run_cycle();
        }
        self.housekeeping = Housekeeping::Stopped(flusher);
        self.stop.stop();
    }

    /// Stops every thread and waits for them (remaining messages are discarded).
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
