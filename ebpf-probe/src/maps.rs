//! Every map of the product object. Sizes here are placeholders: user space sets the real
//! capacities at load time (`EbpfLoader::map_max_entries`) from the machine and the options.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerfEventByteArray, Queue, RingBuf},
};
use probe_common::{
    event_count, failure, Cmdline, ConnKey, ConnState, ProbeConfig, ProcKey, ProcState, COMM_LEN,
    SEQ_SLOTS,
};

/// `BPF_F_NO_PREALLOC`: entries are allocated on insert, so a map sized for the machine's
/// worst case costs only what it holds.
const NO_PREALLOC: u32 = 1;

#[map]
pub static CONFIG: Array<ProbeConfig> = Array::with_max_entries(1, 0);

#[map]
pub static SEQ: Array<u64> = Array::with_max_entries(SEQ_SLOTS, 0);

#[map]
pub static FAILURES: PerCpuArray<u64> = PerCpuArray::with_max_entries(failure::COUNT, 0);

#[map]
pub static EVENT_COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(event_count::COUNT, 0);

#[map]
pub static PROC_STATE: HashMap<ProcKey, ProcState> = HashMap::with_max_entries(16384, NO_PREALLOC);

#[map]
pub static PROC_STATE_LRU: LruHashMap<ProcKey, ProcState> = LruHashMap::with_max_entries(16384, 0);

#[map]
pub static CONN_STATE: HashMap<ConnKey, ConnState> = HashMap::with_max_entries(16384, NO_PREALLOC);

#[map]
pub static CONN_STATE_LRU: LruHashMap<ConnKey, ConnState> = LruHashMap::with_max_entries(16384, 0);

/// Processes with changes the throttle held back; drained by the flush program. A key is
/// pushed only when its entry's `DIRTY` flag goes from clear to set, so each entity is in the
/// queue at most once (plus rare duplicates from races, which the flush skips).
#[map]
pub static PROC_DIRTY: Queue<ProcKey> = Queue::with_max_entries(16384, 0);

/// Connections with changes waiting for the flush program (same rule as [`PROC_DIRTY`]).
#[map]
pub static CONN_DIRTY: Queue<ConnKey> = Queue::with_max_entries(16384, 0);

/// Owner of a socket that is connecting: `tcp_v{4,6}_connect` sets SYN_SENT before it picks
/// the local port, so the 4-tuple is not known yet. Keyed by the `struct sock` address;
/// consumed (deleted) by the socket's next transition, which every socket makes (to
/// ESTABLISHED or CLOSE).
#[map]
pub static CONNECTING_OWNER: LruHashMap<u64, ConnOwner> = LruHashMap::with_max_entries(4096, 0);

/// Command line of each process as its last exec left it (see [`probe_common::Cmdline`]); LRU,
/// so it never fills: the oldest entries make room.
#[map]
pub static PROC_CMDLINE: LruHashMap<ProcKey, Cmdline> = LruHashMap::with_max_entries(16384, 0);

/// Per-CPU scratch for building a [`Cmdline`] (too big for the BPF stack).
#[map]
pub static CMDLINE_SCRATCH: PerCpuArray<Cmdline> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static RING: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

#[map]
pub static PERF: PerfEventByteArray = PerfEventByteArray::new(0);

/// Who connected a socket, and when (see [`CONNECTING_OWNER`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ConnOwner {
    pub pid: u32,
    pub pad: u32,
    pub since_ns: u64,
    pub comm: [u8; COMM_LEN],
}
