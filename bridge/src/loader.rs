//! Loading and attaching the probes (aya), and typed access to their maps.
//!
//! The eBPF object is embedded in the binary (built by `cargo xtask build-ebpf`, committed under
//! `ebpf-probe/`), so running needs no eBPF toolchain. Kernel struct offsets are resolved from
//! the running kernel's BTF and patched into the object before load.
//!
//! Ownership: [`Probes`] owns the `Ebpf` object (programs and links live as long as it does) and
//! the state/config/counter maps. The ring buffer and the perf array are handed out once, to the
//! thread of the mode that consumes them ([`Probes::take_ring`], [`Probes::take_perf`]).

use std::{
    error::Error as StdError,
    os::fd::{AsFd, BorrowedFd},
    sync::Mutex,
};

use aya::{
    maps::{Array, Map, MapData, PerCpuArray},
    programs::RawTracePoint,
    Ebpf, EbpfLoader,
};
use probe_common::{
    conn_flags, failure, mode_bit, proc_flags, seq_index, ConnKey, ConnState, KernelOffsets,
    ProbeConfig, ProcKey, ProcState,
};

use crate::{
    contract::ModeKind,
    kernel_offsets::{self, OffsetsError},
    map_batch::{self, DumpPath, DumpStrategy, MapDump, MapDumpError},
    stats::monotonic_ns,
};

/// The eBPF object built from `ebpf-probe/` (see `cargo xtask build-ebpf`).
pub static PROBE_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ebpf-probe/bpftop-probe.bpf.o"
));

/// (program name in the object, tracepoint it attaches to, required?). Optional probes that fail
/// to attach degrade with a note instead of failing the session.
const PROGRAMS: &[(&str, &str, bool)] = &[
    ("sched_process_fork", "sched_process_fork", true),
    ("sched_process_exec", "sched_process_exec", true),
    ("sched_process_exit", "sched_process_exit", true),
    ("sched_switch", "sched_switch", true),
    ("task_rename", "task_rename", true),
    ("inet_sock_set_state", "inet_sock_set_state", true),
    ("tcp_destroy_sock", "tcp_destroy_sock", true),
    ("sock_send_length", "sock_send_length", false),
    ("sock_recv_length", "sock_recv_length", false),
];

/// The flush program: loaded, never attached; run with `BPF_PROG_TEST_RUN`.
const FLUSH_PROGRAM: &str = "flush_dirty";

/// Capacity of the dirty queues: at most this many entities of one table waiting for one flush
/// (beyond it, refreshes are sent at once, counted as `dirty_queue_full`).
const MAX_DIRTY_QUEUE: u32 = 65_536;

/// Capacity of the socket-address caches (an LRU: eviction only costs a few kernel reads).
const SOCK_CACHE_ENTRIES: u32 = 16_384;

/// Capacity of the connect() owner memo (sockets between SYN_SENT and their next transition).
const CONNECTING_ENTRIES: u32 = 8_192;

/// Default capacity of the processes state map: the machine's `kernel.pid_max` (every live
/// process fits) plus 65,536 exited ones awaiting the reaper, at most 2^20. The map is not
/// preallocated, so capacity costs nothing until used.
pub fn default_proc_map_entries() -> u32 {
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(32_768);
    pid_max.saturating_add(65_536).min(1 << 20)
}

/// Default capacity of the connections state map: 262,144, twice the kernel's default
/// `tcp_max_tw_buckets` / `tcp_max_orphans` (131,072), i.e. room for every socket a busy server
/// holds plus recently closed ones awaiting the reaper. Not preallocated.
pub const DEFAULT_CONN_MAP_ENTRIES: u32 = 262_144;

/// Settings applied at load time (map sizes) and written into the config map.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Modes whose kernel emission starts enabled — except perf, which its consumer enables
    /// once its per-CPU buffers are open.
    pub modes: Vec<ModeKind>,
    /// Ring buffer size, bytes (power-of-two multiple of the page size).
    pub ring_bytes: u32,
    /// Ring wake-up sampling (see `ProbeConfig::ring_wakeup_every`).
    pub ring_wakeup_every: u32,
    /// Write to the LRU variants of the state maps.
    pub use_lru_maps: bool,
    /// In-kernel tgid filter (0 = all).
    pub filter_tgid: u32,
    /// In-kernel port filter (0 = all).
    pub filter_port: u16,
    /// Capacity of the processes state map (entries).
    pub proc_map_entries: u32,
    /// Capacity of the connections state map (entries).
    pub conn_map_entries: u32,
}

/// Why the probes could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The process lacks a capability.
    #[error(
        "missing privileges: {what} needs {capability} (or CAP_SYS_ADMIN); run as root or grant \
         it, e.g. `sudo setcap cap_bpf,cap_perfmon+ep $(which bpftop-ordered)` ({detail})"
    )]
    Privilege {
        /// The operation that failed.
        what: String,
        /// The capability to grant.
        capability: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// A required tracepoint does not exist on this kernel.
    #[error("kernel support missing: tracepoint `{tracepoint}` could not be attached ({detail}); it needs Linux >= 5.8 with CONFIG_TRACEPOINTS")]
    MissingTracepoint {
        /// The tracepoint.
        tracepoint: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// The kernel BTF is missing or lacks a needed struct member.
    #[error("kernel support missing: {0}")]
    Btf(#[from] OffsetsError),
    /// The kernel refused the object or a program (verifier, unsupported map type).
    #[error("the kernel refused the probes: {0}")]
    Refused(String),
    /// A map operation failed at run time.
    #[error("map `{map}`: {detail}")]
    Map {
        /// The map.
        map: &'static str,
        /// The underlying error.
        detail: String,
    },
}

impl LoadError {
    /// True for errors the CLI reports with exit code 3 (privileges, kernel support).
    pub fn is_privilege_or_support(&self) -> bool {
        matches!(
            self,
            LoadError::Privilege { .. } | LoadError::MissingTracepoint { .. } | LoadError::Btf(_)
        )
    }
}

/// First OS error number in an error's source chain.
fn errno_in_chain(error: &(dyn StdError + 'static)) -> Option<i32> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        current = e.source();
    }
    None
}

fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    text
}

/// Maps an aya error to a [`LoadError`], recognising EPERM/EACCES as missing privileges.
fn classify(what: &str, capability: &'static str, error: &(dyn StdError + 'static)) -> LoadError {
    match errno_in_chain(error) {
        Some(libc::EPERM) | Some(libc::EACCES) => LoadError::Privilege {
            what: what.to_string(),
            capability,
            detail: describe(error),
        },
        _ => LoadError::Refused(format!("{what}: {}", describe(error))),
    }
}

/// Loads `program` from `ebpf` and attaches it to the raw tracepoint `tracepoint`. EPERM/EACCES
/// are missing privileges; any other attach failure means this kernel lacks the tracepoint.
pub(crate) fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    program: &str,
    tracepoint: &'static str,
) -> Result<(), LoadError> {
    let prog: &mut RawTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| LoadError::Refused(format!("program `{program}` missing")))?
        .try_into()
        .map_err(|e| classify("loading a program", "CAP_BPF", &e))?;
    prog.load()
        .map_err(|e| classify(&format!("loading program `{program}`"), "CAP_BPF", &e))?;
    prog.attach(tracepoint)
        .map_err(|e| match errno_in_chain(&e) {
            Some(libc::EPERM) | Some(libc::EACCES) => LoadError::Privilege {
                what: format!("attaching to tracepoint `{tracepoint}`"),
                capability: "CAP_PERFMON",
                detail: describe(&e),
            },
            _ => LoadError::MissingTracepoint {
                tracepoint,
                detail: describe(&e),
            },
        })?;
    Ok(())
}

/// Loads `program` without attaching it and returns its fd (for `BPF_PROG_TEST_RUN`).
fn load_unattached(ebpf: &mut Ebpf, program: &str) -> Result<aya::programs::ProgramFd, LoadError> {
    let prog: &mut RawTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| LoadError::Refused(format!("program `{program}` missing")))?
        .try_into()
        .map_err(|e| classify("loading a program", "CAP_BPF", &e))?;
    prog.load()
        .map_err(|e| classify(&format!("loading program `{program}`"), "CAP_BPF", &e))?;
    let fd = prog
        .fd()
        .map_err(|e| classify(&format!("program `{program}`"), "CAP_BPF", &e))?;
    fd.try_clone()
        .map_err(|e| LoadError::Refused(format!("duplicating the fd of `{program}`: {e}")))
}

/// Loads the embedded object (probes inert: no offsets) and attaches `program` to
/// `tracepoint` alone, then detaches everything. Answers "would this attach here?" with the
/// same typed error a session would get.
pub fn check_tracepoint(program: &str, tracepoint: &'static str) -> Result<(), LoadError> {
    check_capabilities()?;
    let mut ebpf = EbpfLoader::new()
        .load(PROBE_OBJECT)
        .map_err(|e| classify("loading the eBPF object", "CAP_BPF", &e))?;
    attach_raw_tracepoint(&mut ebpf, program, tracepoint)
}

/// Effective capability bits of this process (from /proc/self/status `CapEff`).
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Checks CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN) before touching the kernel, so the message
/// names the capability instead of a bare EPERM.
pub fn check_capabilities() -> Result<(), LoadError> {
    let Some(caps) = effective_capabilities() else {
        return Ok(()); // cannot tell; let the kernel decide
    };
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if has(CAP_SYS_ADMIN) {
        return Ok(());
    }
    for (bit, name) in [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")] {
        if !has(bit) {
            return Err(LoadError::Privilege {
                what: "loading eBPF probes".into(),
                capability: name,
                detail: format!("effective capabilities are {caps:#x}"),
            });
        }
    }
    Ok(())
}

/// Loaded and attached probes.
pub struct Probes {
    /// Keeps programs and links alive; also lends out maps at start-up.
    _ebpf: Mutex<Ebpf>,
    config: Mutex<Array<MapData, ProbeConfig>>,
    seq: Array<MapData, u64>,
    failures: PerCpuArray<MapData, u64>,
    proc_state: MapData,
    conn_state: MapData,
    flush: aya::programs::ProgramFd,
    ring: Mutex<Option<Map>>,
    perf: Mutex<Option<Map>>,
    ring_bytes: u64,
    ring_memlock: u64,
    perf_memlock: u64,
    notes: Vec<String>,
    use_lru_maps: bool,
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::Map {
        map: name,
        detail: "not found in the eBPF object".into(),
    })
}

fn map_data(map: Map, name: &'static str) -> Result<MapData, LoadError> {
    match map {
        Map::HashMap(data) | Map::LruHashMap(data) => Ok(data),
        other => Err(LoadError::Map {
            map: name,
            detail: format!("unexpected map type {other:?}"),
        }),
    }
}

fn memlock_of(map: &Map) -> u64 {
    let fd = match map {
        Map::RingBuf(d) | Map::PerfEventArray(d) => d.fd().as_fd(),
        _ => return 0,
    };
    map_batch::map_fd_memlock_bytes(fd).unwrap_or(0)
}

impl Probes {
    /// Resolves offsets from BTF, loads the object, attaches every program and writes the
    /// config map. Errors say which capability, tracepoint or BTF member is missing.
    pub fn load_and_attach(settings: &ProbeSettings) -> Result<Probes, LoadError> {
        check_capabilities()?;
        let offsets: KernelOffsets = kernel_offsets::resolve_running_kernel_offsets()?;
        let (proc_map, conn_map) = if settings.use_lru_maps {
            ("PROC_STATE_LRU", "CONN_STATE_LRU")
        } else {
            ("PROC_STATE", "CONN_STATE")
        };
        // Only the variant in use gets its capacity; the other (preallocated LRU, or unused
        // hash) stays minimal so it costs no kernel memory.
        let (proc_lru, proc_hash, conn_lru, conn_hash) = if settings.use_lru_maps {
            (settings.proc_map_entries, 1, settings.conn_map_entries, 1)
        } else {
            (1, settings.proc_map_entries, 1, settings.conn_map_entries)
        };
        let mut ebpf = EbpfLoader::new()
            .override_global("OFFSETS", &offsets, true)
            .map_max_entries("RING", settings.ring_bytes)
            .map_max_entries("PROC_STATE", proc_hash)
            .map_max_entries("PROC_STATE_LRU", proc_lru)
            .map_max_entries("CONN_STATE", conn_hash)
            .map_max_entries("CONN_STATE_LRU", conn_lru)
            .map_max_entries(
                "PROC_DIRTY",
                settings.proc_map_entries.clamp(1, MAX_DIRTY_QUEUE),
            )
            .map_max_entries(
                "CONN_DIRTY",
                settings.conn_map_entries.clamp(1, MAX_DIRTY_QUEUE),
            )
            .map_max_entries("SOCK_KEYS", SOCK_CACHE_ENTRIES)
            .map_max_entries("CONNECTING_OWNER", CONNECTING_ENTRIES)
            .load(PROBE_OBJECT)
            .map_err(|e| classify("loading the eBPF object", "CAP_BPF", &e))?;

        let mut notes = Vec::new();
        for (program, tracepoint, required) in PROGRAMS {
            match attach_raw_tracepoint(&mut ebpf, program, tracepoint) {
                Ok(()) => {}
                Err(LoadError::MissingTracepoint { tracepoint, detail }) if !required => {
                    notes.push(format!(
                        "optional tracepoint `{tracepoint}` unavailable ({detail}): byte counts \
                         will stay 0"
                    ));
                }
                Err(e) => return Err(e),
            }
        }

        let flush = load_unattached(&mut ebpf, FLUSH_PROGRAM)?;
        let config_map = Array::try_from(take_map(&mut ebpf, "CONFIG")?)
            .map_err(|e| classify("opening CONFIG", "CAP_BPF", &e))?;
        let seq = Array::try_from(take_map(&mut ebpf, "SEQ")?)
            .map_err(|e| classify("opening SEQ", "CAP_BPF", &e))?;
        let failures = PerCpuArray::try_from(take_map(&mut ebpf, "FAILURES")?)
            .map_err(|e| classify("opening FAILURES", "CAP_BPF", &e))?;
        let proc_state = map_data(take_map(&mut ebpf, proc_map)?, proc_map)?;
        let conn_state = map_data(take_map(&mut ebpf, conn_map)?, conn_map)?;
        let ring = take_map(&mut ebpf, "RING")?;
        let perf = take_map(&mut ebpf, "PERF")?;
        let ring_memlock = memlock_of(&ring);
        let perf_memlock = memlock_of(&perf);

        let probes = Probes {
            _ebpf: Mutex::new(ebpf),
            config: Mutex::new(config_map),
            seq,
            failures,
            proc_state,
            conn_state,
            flush,
            ring: Mutex::new(Some(ring)),
            perf: Mutex::new(Some(perf)),
            ring_bytes: settings.ring_bytes as u64,
            ring_memlock,
            perf_memlock,
            notes,
            use_lru_maps: settings.use_lru_maps,
        };
        // perf output fails for CPUs whose buffer is not open yet, so the perf thread turns its
        // own emission on once its buffers are open (`set_mode_enabled`).
        let mut modes_enabled = 0;
        for mode in settings.modes.iter().filter(|m| **m != ModeKind::Perf) {
            modes_enabled |= mode_bit(mode.kernel_mode());
        }
        probes.write_config(ProbeConfig {
            modes_enabled,
            ring_wakeup_every: settings.ring_wakeup_every,
            filter_tgid: settings.filter_tgid,
            filter_port: settings.filter_port,
            pad: 0,
            use_lru_maps: settings.use_lru_maps as u32,
        })?;
        Ok(probes)
    }

    fn write_config(&self, config: ProbeConfig) -> Result<(), LoadError> {
        let mut map = self.config.lock().expect("config lock poisoned");
        map.set(0, config, 0).map_err(|e| LoadError::Map {
            map: "CONFIG",
            detail: describe(&e),
        })
    }

    /// The config currently in the kernel.
    pub fn read_config(&self) -> Result<ProbeConfig, LoadError> {
        let map = self.config.lock().expect("config lock poisoned");
        map.get(&0, 0).map_err(|e| LoadError::Map {
            map: "CONFIG",
            detail: describe(&e),
        })
    }

    /// Turns a mode's kernel emission on or off (takes effect on the next event).
    pub fn set_mode_enabled(&self, mode: ModeKind, enabled: bool) -> Result<(), LoadError> {
        let mut map = self.config.lock().expect("config lock poisoned");
        let map_error = |e: aya::maps::MapError| LoadError::Map {
            map: "CONFIG",
            detail: describe(&e),
        };
        let mut config = map.get(&0, 0).map_err(map_error)?;
        let bit = mode_bit(mode.kernel_mode());
        if enabled {
            config.modes_enabled |= bit;
        } else {
            config.modes_enabled &= !bit;
        }
        map.set(0, config, 0).map_err(map_error)
    }

    /// Notes about optional probes that could not attach (shown to the user).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Hands the ring buffer map to its consumer; `None` if already taken.
    pub fn take_ring(&self) -> Option<Map> {
        self.ring.lock().expect("ring lock poisoned").take()
    }

    /// Hands the perf event array to its consumer; `None` if already taken.
    pub fn take_perf(&self) -> Option<Map> {
        self.perf.lock().expect("perf lock poisoned").take()
    }

    /// Kernel memory of the ring buffer map, bytes (fdinfo memlock, or the configured size).
    pub fn ring_kernel_bytes(&self) -> u64 {
        if self.ring_memlock > 0 {
            self.ring_memlock
        } else {
            self.ring_bytes
        }
    }

    /// Kernel memory of the perf event array map itself (not its per-CPU buffers), bytes.
    pub fn perf_map_kernel_bytes(&self) -> u64 {
        self.perf_memlock
    }

    /// Kernel memory of the two state maps in use, bytes (fdinfo memlock).
    pub fn state_maps_kernel_bytes(&self) -> u64 {
        map_batch::map_fd_memlock_bytes(self.proc_state.fd().as_fd()).unwrap_or(0)
            + map_batch::map_fd_memlock_bytes(self.conn_state.fd().as_fd()).unwrap_or(0)
    }

    /// Current value of a (mode, table) sequence counter: records offered to that mode so far.
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

    /// Failed state-map inserts so far (both tables): entities the maps could not hold.
    pub fn map_full_count(&self) -> u64 {
        self.failure_count(failure::PROC_MAP_FULL).unwrap_or(0)
            + self.failure_count(failure::CONN_MAP_FULL).unwrap_or(0)
    }

    /// File descriptor of the processes state map in use.
    pub fn proc_state_fd(&self) -> BorrowedFd<'_> {
        self.proc_state.fd().as_fd()
    }

    /// File descriptor of the connections state map in use.
    pub fn conn_state_fd(&self) -> BorrowedFd<'_> {
        self.conn_state.fd().as_fd()
    }

    /// True when the LRU variants are in use.
    pub fn uses_lru_maps(&self) -> bool {
        self.use_lru_maps
    }

    /// Reads every process entry of the state map. Order: none (hash order).
    pub fn read_processes(
        &self,
        scratch: &mut MapDump,
    ) -> Result<(Vec<(ProcKey, ProcState)>, DumpPath), MapDumpError> {
        map_batch::dump_map_typed(self.proc_state_fd(), DumpStrategy::Auto, scratch)
    }

    /// Reads every connection entry of the state map. Order: none (hash order).
    pub fn read_connections(
        &self,
        scratch: &mut MapDump,
    ) -> Result<(Vec<(ConnKey, ConnState)>, DumpPath), MapDumpError> {
        map_batch::dump_map_typed(self.conn_state_fd(), DumpStrategy::Auto, scratch)
    }

    /// Deletes finished entries (exited processes, closed connections) that finished more than
    /// `retention_ns` ago from the state maps. Returns how many were deleted.
    pub fn reap_finished(&self, retention_ns: u64) -> Result<usize, MapDumpError> {
        let now = monotonic_ns();
        let cutoff = now.saturating_sub(retention_ns);
        let mut scratch = MapDump::new();
        let mut deleted = 0;
        let (procs, _) = self.read_processes(&mut scratch)?;
        for (key, state) in procs {
            if state.flags & proc_flags::EXITED != 0 && state.exit_ns < cutoff {
                deleted += delete_entry(self.proc_state_fd(), &key) as usize;
            }
        }
        let (conns, _) = self.read_connections(&mut scratch)?;
        for (key, state) in conns {
            if state.flags & conn_flags::CLOSED != 0 && state.end_ns < cutoff {
                deleted += delete_entry(self.conn_state_fd(), &key) as usize;
            }
        }
        Ok(deleted)
    }

    /// Runs one flush cycle (see `probe_common::flush_op`): with `sample_cpus`, the program
    /// first runs pinned to every online CPU so the task running there is marked dirty; then it
    /// drains both dirty queues, sending one refresh per changed entity. `cycle` must differ
    /// from the previous call's. Returns the number of queue keys handled.
    pub fn flush(&self, cycle: u32, sample_cpus: bool) -> Result<u64, MapDumpError> {
        use probe_common::flush_op;
        let fd = self.flush.as_fd();
        if sample_cpus {
            for cpu in online_cpus() {
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

    /// Ring transport failures so far.
    pub fn ring_reserve_failures(&self) -> u64 {
        self.failure_count(failure::RING_RESERVE).unwrap_or(0)
    }

    /// Perf transport failures so far.
    pub fn perf_output_failures(&self) -> u64 {
        self.failure_count(failure::PERF_OUTPUT).unwrap_or(0)
    }
}

/// The online CPUs (from sysfs), or CPU 0 alone when the list cannot be read.
fn online_cpus() -> Vec<u32> {
    aya::util::online_cpus().unwrap_or_else(|_| vec![0])
}

fn delete_entry<K: Copy>(fd: BorrowedFd<'_>, key: &K) -> bool {
    // SAFETY: K is a repr(C) probe_common key without implicit padding.
    let bytes = unsafe {
        std::slice::from_raw_parts((key as *const K).cast::<u8>(), std::mem::size_of::<K>())
    };
    map_batch::delete_elem(fd, bytes).is_ok()
}
