//! The kernel side as user space sees it: loading and attaching the embedded object
//! ([`load`]), why that can fail ([`LoadError`]), kernel struct offsets from BTF
//! ([`offsets`]), and typed handles to what was loaded ([`handles`]).

pub mod errors;
pub mod handles;
pub mod object;
pub mod offsets;

use aya::{
    maps::{Array, Map, MapData, PerCpuArray},
    Ebpf, EbpfLoader,
};
use probe_common::{mode_bit, KernelOffsets, ProbeConfig};

pub use errors::LoadError;
pub use handles::{
    Controls, FlushProgram, KernelEventCounts, PerfTransport, ProbeLinks, RingTransport, StateMaps,
};
pub use object::{check_capabilities, check_tracepoint, PROBE_OBJECT};

use crate::{contract::ModeKind, map_batch};
use errors::classify;
use object::{attach_program, load_unattached, FLUSH_PROGRAM, PROGRAMS};

/// Capacity of the dirty queues: at most this many entities of one table waiting for one flush
/// (beyond it, the entity's next event queues it again; counted as `dirty_queue_full`).
const MAX_DIRTY_QUEUE: u32 = 65_536;

/// Capacity of the connect() owner memo (sockets between SYN_SENT and their next transition).
const CONNECTING_ENTRIES: u32 = 8_192;

/// What the kernel side is loaded with: map sizes and the initial config map.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Capture command lines at exec (and copy them at fork) into `PROC_CMDLINE`.
    pub capture_cmdline: bool,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        use crate::defaults;
        ProbeSettings {
            modes: ModeKind::ALL.to_vec(),
            ring_bytes: defaults::RING_BYTES,
            ring_wakeup_every: defaults::RING_WAKEUP_EVERY,
            use_lru_maps: false,
            filter_tgid: 0,
            filter_port: 0,
            proc_map_entries: defaults::proc_map_entries(),
            conn_map_entries: defaults::CONN_MAP_ENTRIES,
            capture_cmdline: true,
        }
    }
}

/// Everything [`load`] hands out, each piece to the part of the bridge that uses it.
pub struct LoadedProbes {
    /// Keeps the programs attached.
    pub links: ProbeLinks,
    /// Config, sequence and failure counters.
    pub controls: Controls,
    /// The state maps in use.
    pub state_maps: StateMaps,
    /// The ring buffer.
    pub ring: RingTransport,
    /// The perf event array.
    pub perf: PerfTransport,
    /// The flush program.
    pub flush: FlushProgram,
    /// Optional probes that could not attach, for the user.
    pub notes: Vec<String>,
}

/// Resolves offsets from BTF, loads the object, attaches every program and writes the config
/// map. Errors say which capability, tracepoint or BTF member is missing.
pub fn load(settings: &ProbeSettings) -> Result<LoadedProbes, LoadError> {
    check_capabilities()?;
    let offsets = offsets::resolve_running_kernel_offsets()?;
    let mut ebpf = load_object(settings, &offsets)?;
    let notes = attach_programs(&mut ebpf)?;
    // take_handles writes the config (the probes' start) before the flush program loads.
    take_handles(ebpf, settings, notes)
}

fn load_object(settings: &ProbeSettings, offsets: &KernelOffsets) -> Result<Ebpf, LoadError> {
    // Only the variant in use gets its capacity; the other (preallocated LRU, or unused hash)
    // stays minimal so it costs no kernel memory.
    let (proc_lru, proc_hash, conn_lru, conn_hash) = if settings.use_lru_maps {
        (settings.proc_map_entries, 1, settings.conn_map_entries, 1)
    } else {
        (1, settings.proc_map_entries, 1, settings.conn_map_entries)
    };
    EbpfLoader::new()
        .override_global("OFFSETS", offsets, true)
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
        .map_max_entries("PROC_CMDLINE", cmdline_map_entries(settings))
        .map_max_entries("CONNECTING_OWNER", CONNECTING_ENTRIES)
        .load(PROBE_OBJECT)
        .map_err(|e| classify("loading the eBPF object", "CAP_BPF", &e))
}

/// The most command lines `PROC_CMDLINE` holds (an LRU map is preallocated: 16384 entries
/// of 264 bytes are about 5 MiB). The kernel reaper deletes a reaped process's line, so the map
/// holds live and recently exited processes.
const MAX_CMDLINE_ENTRIES: u32 = 16384;

/// `PROC_CMDLINE`'s capacity: as the processes map's, at most [`MAX_CMDLINE_ENTRIES`]; one
/// entry (no memory to speak of) with `--no-cmdline`.
fn cmdline_map_entries(settings: &ProbeSettings) -> u32 {
    if settings.capture_cmdline {
        settings.proc_map_entries.clamp(1, MAX_CMDLINE_ENTRIES)
    } else {
        1
    }
}

/// Attaches every program; returns notes about optional ones this kernel lacks.
fn attach_programs(ebpf: &mut Ebpf) -> Result<Vec<String>, LoadError> {
    let mut notes = Vec::new();
    let mut btf = None;
    for (program, tracepoint, required) in PROGRAMS {
        match attach_program(ebpf, program, tracepoint, &mut btf) {
            Ok(()) => {}
            Err(LoadError::MissingTracepoint { tracepoint, detail }) if !required => {
                notes.push(format!(
                    "optional tracepoint `{tracepoint}` unavailable ({detail}): byte counts are \
                     refreshed only at TCP state changes"
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(notes)
}

fn take_handles(
    mut ebpf: Ebpf,
    settings: &ProbeSettings,
    notes: Vec<String>,
) -> Result<LoadedProbes, LoadError> {
    let (proc_map, conn_map) = if settings.use_lru_maps {
        ("PROC_STATE_LRU", "CONN_STATE_LRU")
    } else {
        ("PROC_STATE", "CONN_STATE")
    };
    let mut config: Array<_, ProbeConfig> = Array::try_from(take_map(&mut ebpf, "CONFIG")?)
        .map_err(|e| classify("opening CONFIG", "CAP_BPF", &e))?;
    // The attached probes go live here, before the flush program is loaded: its verification
    // is the longest of all (0.9 s of the ~1.1 s start-up on 6.18.44-fc-v1252), and a process
    // that forks, execs and exits meanwhile would otherwise be missed. Until the flush runs,
    // refreshes wait in the dirty queues.
    config
        .set(0, initial_config(settings), 0)
        .map_err(|e| classify("writing CONFIG", "CAP_BPF", &e))?;
    let flush = FlushProgram::new(load_unattached(&mut ebpf, FLUSH_PROGRAM)?);
    let seq = Array::try_from(take_map(&mut ebpf, "SEQ")?)
        .map_err(|e| classify("opening SEQ", "CAP_BPF", &e))?;
    let failures = PerCpuArray::try_from(take_map(&mut ebpf, "FAILURES")?)
        .map_err(|e| classify("opening FAILURES", "CAP_BPF", &e))?;
    let events = PerCpuArray::try_from(take_map(&mut ebpf, "EVENT_COUNTS")?)
        .map_err(|e| classify("opening EVENT_COUNTS", "CAP_BPF", &e))?;
    let state_maps = StateMaps::new(
        hash_map_data(take_map(&mut ebpf, proc_map)?, proc_map)?,
        hash_map_data(take_map(&mut ebpf, conn_map)?, conn_map)?,
        settings.use_lru_maps,
        match ebpf.take_map("PROC_CMDLINE") {
            Some(map) => Some(hash_map_data(map, "PROC_CMDLINE")?),
            None => None,
        },
    );
    let ring = take_map(&mut ebpf, "RING")?;
    let ring_memlock = memlock_of(&ring);
    let perf = take_map(&mut ebpf, "PERF")?;
    let perf_memlock = memlock_of(&perf);
    Ok(LoadedProbes {
        links: ProbeLinks::new(ebpf),
        controls: Controls::new(config, seq, failures, events),
        state_maps,
        ring: RingTransport {
            map: ring,
            kernel_bytes: if ring_memlock > 0 {
                ring_memlock
            } else {
                settings.ring_bytes as u64
            },
        },
        perf: PerfTransport {
            map: perf,
            map_kernel_bytes: perf_memlock,
        },
        flush,
        notes,
    })
}

/// The config map at start: every requested mode emits except perf, which turns its own
/// emission on once its per-CPU buffers are open (output to a CPU without one fails).
fn initial_config(settings: &ProbeSettings) -> ProbeConfig {
    let modes_enabled = settings
        .modes
        .iter()
        .filter(|m| **m != ModeKind::Perf)
        .fold(0, |bits, mode| bits | mode_bit(mode.kernel_mode()));
    ProbeConfig {
        modes_enabled,
        ring_wakeup_every: settings.ring_wakeup_every,
        filter_tgid: settings.filter_tgid,
        filter_port: settings.filter_port,
        pad: 0,
        use_lru_maps: settings.use_lru_maps as u32,
        skip_cmdline: !settings.capture_cmdline as u32,
    }
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::Map {
        map: name,
        detail: "not found in the eBPF object".into(),
    })
}

fn hash_map_data(map: Map, name: &'static str) -> Result<MapData, LoadError> {
    match map {
        Map::HashMap(data) | Map::LruHashMap(data) => Ok(data),
        other => Err(LoadError::Map {
            map: name,
            detail: format!("unexpected map type {other:?}"),
        }),
    }
}

fn memlock_of(map: &Map) -> u64 {
    use std::os::fd::AsFd;
    let fd = match map {
        Map::RingBuf(d) | Map::PerfEventArray(d) => d.fd().as_fd(),
        _ => return 0,
    };
    map_batch::map_fd_memlock_bytes(fd).unwrap_or(0)
}
