//! Typed handles to the loaded probes' maps and programs, one per job, each owned by the
//! thread that uses it:
//! - [`Controls`] (config, sequence counters, failure counters) and [`StateMaps`] are shared
//!   (`Arc`) by every mode, the flush and the reaper;
//! - [`RingTransport`] and [`PerfTransport`] are moved into their mode's thread, so a transport
//!   can have one consumer only — by construction, not by a run-time check;
//! - [`FlushProgram`] belongs to the housekeeping thread, then to the final flush;
//! - [`ProbeLinks`] keeps the programs attached for as long as it lives.

use std::{
    os::fd::{AsFd, BorrowedFd},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
};

use aya::{
    maps::{Array, Map, MapData, PerCpuArray},
    programs::ProgramFd,
    Ebpf,
};
use probe_common::{
    event_count, failure, flush_op, mode_bit, seq_index, ConnKey, ConnState, ProbeConfig, ProcKey,
    ProcState,
};

use super::errors::{describe, LoadError};
use crate::{
    contract::{KernelState, ModeKind},
    map_batch::{self, DumpPath, DumpStrategy, MapDump, MapDumpError},
    stats::monotonic_ns,
};

/// Every entry of `S`'s state map, in hash order, and the read path taken.
pub type StateMapRead<S> = Result<(Vec<(<S as KernelState>::Key, S)>, DumpPath), MapDumpError>;

/// The attached programs: dropping this detaches them.
pub struct ProbeLinks {
    _ebpf: Ebpf,
}

impl ProbeLinks {
    pub(crate) fn new(ebpf: Ebpf) -> Self {
        ProbeLinks { _ebpf: ebpf }
    }

    /// A duplicate of every loaded program's fd, with the program's name (for reading its
    /// run-time statistics: [`crate::probe_cost`]). Programs whose fd cannot be duplicated
    /// are left out.
    pub fn program_fds(&self) -> Vec<(String, std::os::fd::OwnedFd)> {
        self._ebpf
            .programs()
            .filter_map(|(name, program)| {
                let fd = program.fd().ok()?.as_fd().try_clone_to_owned().ok()?;
                Some((name.to_string(), fd))
            })
            .collect()
    }
}

/// Process events counted by the kernel programs since the probes attached (host wide, every
/// process the pid filter passes; counted while at least one mode is on, whether or not a mode
/// emits them). Monotonic for the life of a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelEventCounts {
    /// New processes (forks of a thread group, not of a thread).
    pub forks: u64,
    /// `exec` calls.
    pub execs: u64,
    /// Processes whose last thread exited (once each; an exit the processes map could not hold
    /// is counted in `map_full` instead).
    pub exits: u64,
}

/// The run-time controls of the probes: the config map (which modes emit, filters), the
/// per-(mode, table) sequence counters and the per-CPU failure counters.
pub struct Controls {
    config: Mutex<Array<MapData, ProbeConfig>>,
    seq: Array<MapData, u64>,
    failures: PerCpuArray<MapData, u64>,
    events: PerCpuArray<MapData, u64>,
}

impl Controls {
    pub(crate) fn new(
        config: Array<MapData, ProbeConfig>,
        seq: Array<MapData, u64>,
        failures: PerCpuArray<MapData, u64>,
        events: PerCpuArray<MapData, u64>,
    ) -> Self {
        Controls {
            config: Mutex::new(config),
            seq,
            failures,
            events,
        }
    }

    fn config_error(e: aya::maps::MapError) -> LoadError {
        LoadError::Map {
            map: "CONFIG",
            detail: describe(&e),
        }
    }

    /// The config currently in the kernel.
    pub fn read_config(&self) -> Result<ProbeConfig, LoadError> {
        let map = self.config.lock().expect("config lock poisoned");
        map.get(&0, 0).map_err(Self::config_error)
    }

    /// Turns a mode's kernel emission on or off (takes effect on the next event).
    pub fn set_mode_enabled(&self, mode: ModeKind, enabled: bool) -> Result<(), LoadError> {
        let mut map = self.config.lock().expect("config lock poisoned");
        let mut config = map.get(&0, 0).map_err(Self::config_error)?;
        let bit = mode_bit(mode.kernel_mode());
        if enabled {
            config.modes_enabled |= bit;
        } else {
            config.modes_enabled &= !bit;
        }
        map.set(0, config, 0).map_err(Self::config_error)
    }

    /// Records offered so far to `mode` for `table` (the kernel's sequence counter).
    pub fn sequence(&self, mode: ModeKind, table: u8) -> Result<u64, LoadError> {
        self.seq
            .get(&seq_index(mode.kernel_mode(), table), 0)
            .map_err(|e| LoadError::Map {
                map: "SEQ",
                detail: describe(&e),
            })
    }

    /// A kernel failure counter (`probe_common::failure::*`), summed over CPUs.
    pub fn failure_count(&self, which: u32) -> Result<u64, LoadError> {
        let values = self.failures.get(&which, 0).map_err(|e| LoadError::Map {
            map: "FAILURES",
            detail: describe(&e),
        })?;
        Ok(values.iter().sum())
    }

    /// Process events the probes counted since they attached, summed over CPUs: see
    /// [`KernelEventCounts`].
    pub fn event_counts(&self) -> Result<KernelEventCounts, LoadError> {
        let read = |which: u32| -> Result<u64, LoadError> {
            let values = self.events.get(&which, 0).map_err(|e| LoadError::Map {
                map: "EVENT_COUNTS",
                detail: describe(&e),
            })?;
            Ok(values.iter().sum())
        };
        Ok(KernelEventCounts {
            forks: read(event_count::FORKS)?,
            execs: read(event_count::EXECS)?,
            exits: read(event_count::EXITS)?,
        })
    }

    /// Failed state-map inserts so far (both tables): entities the maps could not hold.
    pub fn map_full_count(&self) -> u64 {
        self.failure_count(failure::PROC_MAP_FULL).unwrap_or(0)
            + self.failure_count(failure::CONN_MAP_FULL).unwrap_or(0)
    }

    /// Ring transport failures so far.
    pub fn ring_reserve_failures(&self) -> u64 {
        self.failure_count(failure::RING_RESERVE).unwrap_or(0)
    }

    /// Perf transport failures so far.
    pub fn perf_output_failures(&self) -> u64 {
        self.failure_count(failure::PERF_OUTPUT).unwrap_or(0)
    }
}

/// The two state maps in use (hash or LRU variant): what poll reads, resyncs read and the
/// reaper trims.
pub struct StateMaps {
    processes: MapData,
    connections: MapData,
    use_lru_maps: bool,
    /// `PROC_CMDLINE` (LRU hash, [`ProcKey`] → [`probe_common::Cmdline`]).
    cmdlines: Option<MapData>,
    /// When the finished entries were last reaped (CLOCK_MONOTONIC ns; 0 = never), by the poll
    /// mode from its snapshot or by the housekeeping thread from a read of its own.
    last_reap_ns: AtomicU64,
}

impl StateMaps {
    pub(crate) fn new(
        processes: MapData,
        connections: MapData,
        use_lru_maps: bool,
        cmdlines: Option<MapData>,
    ) -> Self {
        StateMaps {
            processes,
            connections,
            use_lru_maps,
            cmdlines,
            last_reap_ns: AtomicU64::new(0),
        }
    }

    /// Every command line in `PROC_CMDLINE` (captured at exec, copied at fork, seeded from
    /// /proc), by process, in hash order (one `BPF_MAP_LOOKUP_BATCH` pass). Empty when the
    /// object has no such map.
    pub fn read_cmdlines(
        &self,
        scratch: &mut MapDump,
    ) -> Result<Vec<(ProcKey, probe_common::Cmdline)>, MapDumpError> {
        match &self.cmdlines {
            Some(map) => {
                Ok(map_batch::dump_map_typed(map.fd().as_fd(), DumpStrategy::Auto, scratch)?.0)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Adds the command lines of processes that predate the probes (read from /proc) to
    /// `PROC_CMDLINE`, so that children they fork inherit them in the kernel. An entry the
    /// kernel already wrote (an exec since the probes attached) is kept. Returns how many were
    /// added.
    pub fn seed_cmdlines(&self, entries: &[(ProcKey, probe_common::Cmdline)]) -> usize {
        let Some(map) = &self.cmdlines else {
            return 0;
        };
        let fd = map.fd().as_fd();
        entries
            .iter()
            .filter(|(key, cmdline)| {
                use zerocopy::IntoBytes;
                match map_batch::insert_new_elem(fd, key.as_bytes(), cmdline.as_bytes()) {
                    Ok(added) => added,
                    Err(e) => {
                        log::warn!("seeding PROC_CMDLINE: {e}");
                        false
                    }
                }
            })
            .count()
    }

    /// The map of `S`'s table.
    pub fn fd_of<S: KernelState>(&self) -> BorrowedFd<'_> {
        if S::TABLE == probe_common::table::PROCESSES {
            self.processes.fd().as_fd()
        } else {
            self.connections.fd().as_fd()
        }
    }

    /// True when the LRU variants are in use.
    pub fn uses_lru_maps(&self) -> bool {
        self.use_lru_maps
    }

    /// Kernel memory of both state maps and of `PROC_CMDLINE`, bytes (fdinfo memlock).
    pub fn kernel_bytes(&self) -> u64 {
        let memlock = |d: &MapData| map_batch::map_fd_memlock_bytes(d.fd().as_fd()).unwrap_or(0);
        memlock(&self.processes)
            + memlock(&self.connections)
            + self.cmdlines.as_ref().map_or(0, memlock)
    }

    /// Every entry of `S`'s map, in hash order, and which read path was taken.
    pub fn read<S: KernelState>(&self, scratch: &mut MapDump) -> StateMapRead<S> {
        map_batch::dump_map_typed(self.fd_of::<S>(), DumpStrategy::Auto, scratch)
    }

    /// Every process entry (see [`StateMaps::read`]).
    pub fn read_processes(
        &self,
        scratch: &mut MapDump,
    ) -> Result<(Vec<(ProcKey, ProcState)>, DumpPath), MapDumpError> {
        self.read::<ProcState>(scratch)
    }

    /// Every connection entry (see [`StateMaps::read`]).
    pub fn read_connections(
        &self,
        scratch: &mut MapDump,
    ) -> Result<(Vec<(ConnKey, ConnState)>, DumpPath), MapDumpError> {
        self.read::<ConnState>(scratch)
    }

    /// Deletes finished entries (exited processes, closed connections) that finished more than
    /// `retention_ns` ago, reading both maps to find them. Returns how many were deleted.
    pub fn reap_finished(&self, retention_ns: u64) -> Result<usize, MapDumpError> {
        let now_ns = monotonic_ns();
        let mut scratch = MapDump::new();
        let (processes, _) = self.read::<ProcState>(&mut scratch)?;
        let mut reaped = self.reap_due(&processes, retention_ns, now_ns)?;
        drop(processes);
        let (connections, _) = self.read::<ConnState>(&mut scratch)?;
        reaped += self.reap_due(&connections, retention_ns, now_ns)?;
        self.note_reaped(now_ns);
        Ok(reaped)
    }

    /// Deletes the entries of `entries` (a read of `S`'s map taken at `read_ns`) that had
    /// finished more than `retention_ns` before it, and a reaped process's command line. The
    /// poll mode calls this with each snapshot, so the reaper needs no read of its own while
    /// poll runs (see [`StateMaps::reaped_within`]). Returns how many were deleted.
    pub fn reap_due<S: KernelState>(
        &self,
        entries: &[(S::Key, S)],
        retention_ns: u64,
        read_ns: u64,
    ) -> Result<usize, MapDumpError> {
        let cutoff_ns = read_ns.saturating_sub(retention_ns);
        let due: Vec<S::Key> = entries
            .iter()
            .filter(|(_, state)| state.finished_ns().is_some_and(|t| t < cutoff_ns))
            .map(|(key, _)| *key)
            .collect();
        // A reaped process's command line goes with it (the housekeeping thread has read it by
        // then: it reads every 500 ms, the kernel retention is longer), so PROC_CMDLINE holds
        // live and recent processes and its LRU never evicts a live one's line for old ones.
        // Not every process has a line: the keys without one are skipped.
        if let Some(cmdlines) = self
            .cmdlines
            .as_ref()
            .filter(|_| S::TABLE == probe_common::table::PROCESSES)
        {
            // As before the batch deletes: a command line that cannot be deleted (the LRU
            // evicts it in time) never keeps the state entries from being reaped.
            if let Err(e) = map_batch::delete_keys(cmdlines.fd().as_fd(), &due) {
                log::debug!("deleting reaped processes' command lines: {e}");
            }
        }
        // One BPF_MAP_DELETE_BATCH for all (a storm finishes ~80k entries a second: a syscall
        // per key was most of the reaper's CPU).
        map_batch::delete_keys(self.fd_of::<S>(), &due)
    }

    /// Records that both maps were reaped from a read taken at `read_ns`.
    pub fn note_reaped(&self, read_ns: u64) {
        self.last_reap_ns.fetch_max(read_ns, Ordering::Relaxed);
    }

    /// True when both maps were reaped less than `window_ns` before `now_ns`.
    pub fn reaped_within(&self, window_ns: u64, now_ns: u64) -> bool {
        let last = self.last_reap_ns.load(Ordering::Relaxed);
        last != 0 && now_ns.saturating_sub(last) < window_ns
    }
}

/// The ring buffer, for the ring mode's thread alone.
pub struct RingTransport {
    /// The `RING` map.
    pub map: Map,
    /// Its kernel memory, bytes (fdinfo memlock, else the configured size).
    pub kernel_bytes: u64,
}

/// The perf event array, for the perf mode's thread alone (it opens the per-CPU buffers).
pub struct PerfTransport {
    /// The `PERF` map. Keep it alive while buffers are registered: closing its last fd clears
    /// the entries.
    pub map: Map,
    /// Kernel memory of the array map itself (not its buffers), bytes.
    pub map_kernel_bytes: u64,
}

/// How long the online-CPU list is reused before sysfs is read again (a CPU brought online
/// is sampled from then on).
const ONLINE_CPUS_FOR_NS: u64 = 10_000_000_000;

/// The flush program (see `probe_common::flush_op`).
pub struct FlushProgram {
    fd: ProgramFd,
    /// The online CPUs and when they were read (CLOCK_MONOTONIC ns): sysfs is read every
    /// [`ONLINE_CPUS_FOR_NS`], not at every cycle (an open and a read each time).
    online: Mutex<(u64, Vec<u32>)>,
}

impl FlushProgram {
    pub(crate) fn new(fd: ProgramFd) -> Self {
        FlushProgram {
            fd,
            online: Mutex::new((0, Vec::new())),
        }
    }

    fn online_cpus(&self) -> Vec<u32> {
        let now_ns = monotonic_ns();
        let mut online = self.online.lock().unwrap_or_else(|p| p.into_inner());
        if online.1.is_empty() || now_ns.saturating_sub(online.0) >= ONLINE_CPUS_FOR_NS {
            *online = (now_ns, online_cpus());
        }
        online.1.clone()
    }

    /// Runs one flush cycle: with `sample_cpus`, the program first runs pinned to every online
    /// CPU so the task running there is marked dirty; then it drains both dirty queues, sending
    /// one refresh per changed entity. `cycle` must differ from the previous call's. Returns
    /// the number of queue keys handled.
    pub fn run(&self, cycle: u32, sample_cpus: bool) -> Result<u64, MapDumpError> {
        let fd = self.fd.as_fd();
        if sample_cpus {
            for cpu in self.online_cpus() {
                map_batch::run_raw_tracepoint(
                    fd,
                    &[flush_op::SAMPLE_CURRENT, cycle as u64],
                    Some(cpu),
                )?;
            }
        }
        let mut handled = 0u64;
        // Each run handles at most MAX_PER_RUN keys per table; a full queue (65,536) takes
        // 512 runs, so this bound is never the limit of a healthy cycle.
        for _ in 0..1024 {
            let ret = map_batch::run_raw_tracepoint(fd, &[flush_op::DRAIN, cycle as u64], None)?;
            handled += (ret & !flush_op::DRAINED) as u64;
            if ret & flush_op::DRAINED != 0 {
                break;
            }
        }
        Ok(handled)
    }
}

/// The online CPUs (from sysfs), or CPU 0 alone when the list cannot be read.
fn online_cpus() -> Vec<u32> {
    aya::util::online_cpus().unwrap_or_else(|_| vec![0])
}
