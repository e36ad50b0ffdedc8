//! Reading whole BPF hash maps from user space, fast: a small raw `bpf(2)` wrapper for
//! `BPF_MAP_LOOKUP_BATCH`, which aya 0.14 lacks, with a fallback to key iteration.
//!
//! [`dump_map`] copies every entry of a `BPF_MAP_TYPE_HASH` or `BPF_MAP_TYPE_LRU_HASH` map into a
//! caller-owned, reusable [`MapDump`] (keys and values in two contiguous byte buffers, so there is
//! no allocation per entry and, once the buffers have grown to the map's size, none per dump).
//!
//! * Primary path, [`DumpPath::Batch`]: `BPF_MAP_LOOKUP_BATCH` in chunks (1024 entries per call by
//!   default), about one syscall per chunk.
//! * Fallback, [`DumpPath::KeyIteration`]: `BPF_MAP_GET_NEXT_KEY` + `BPF_MAP_LOOKUP_ELEM`, two
//!   syscalls per entry. Taken by [`DumpStrategy::Auto`] when the kernel refuses the batch command
//!   (`EINVAL`, `ENOTSUPP`, `EOPNOTSUPP`).
//!
//! What no path guarantees:
//! * **Ordering**: none. Entries come in hash-bucket order, which is neither insertion nor key
//!   order and changes between kernels and map sizes. Sort in user space.
//! * **Consistency**: the map is *not* frozen while it is read. Under concurrent updates a dump is
//!   not a snapshot of one instant: an entry may be missing (deleted, or inserted into a part of
//!   the map already read), values of different entries may be from different moments, and with
//!   key iteration an entry may even appear twice (deleting the key the iteration stands on makes
//!   the kernel restart from the first key). Each single `(key, value)` pair is, however, a value
//!   the kernel held for that key (values are copied under the bucket lock / RCU, not torn across
//!   a `bpf_map_update_elem`; fields that BPF programs update in place, with atomics or plain
//!   stores, may be read mid-update as with any concurrent reader).

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::contract::Plain;
use crate::sys::bpf::{
    map_delete_batch, map_delete_elem, map_get_next_key, map_info, map_insert_new_elem,
    map_lookup_batch, map_lookup_elem, map_update_elem, BpfError, MapInfo,
};
use crate::sys::errno::{is_permission_denied, EINVAL, ENOENT, ENOSPC, EOPNOTSUPP};

pub use crate::sys::bpf::BpfCmd;
/// Kernel-internal `ENOTSUPP` (524), which leaks to user space from some BPF commands.
pub use crate::sys::errno::ENOTSUPP;

/// `BPF_MAP_TYPE_HASH`.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_ARRAY` (not dumpable here; named for tests and error messages).
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// `BPF_MAP_TYPE_LRU_HASH`.
pub const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
/// `BPF_F_NO_PREALLOC` map flag (hash maps allocate elements on insert instead of up front).
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// Entries requested per `BPF_MAP_LOOKUP_BATCH` call unless [`MapDump::with_batch_entries`] says
/// otherwise.
pub const DEFAULT_BATCH_ENTRIES: u32 = 1024;

/// Why a dump failed. Every kernel answer maps to one of these; nothing here panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapDumpError {
    /// A `bpf(2)` call failed; `errno` is the kernel's answer.
    #[error("bpf({cmd}) failed: {}", io::Error::from_raw_os_error(*errno))]
    Syscall {
        /// The command that failed.
        cmd: BpfCmd,
        /// The raw errno (positive), e.g. `EPERM` (1).
        errno: i32,
    },
    /// The map's key size differs from the one the caller expects.
    #[error("map key size is {actual} bytes, caller expected {expected}")]
    KeySizeMismatch {
        /// What the caller asked for.
        expected: usize,
        /// What the kernel reports for the map.
        actual: usize,
    },
    /// The map's value size differs from the one the caller expects.
    #[error("map value size is {actual} bytes, caller expected {expected}")]
    ValueSizeMismatch {
        /// What the caller asked for.
        expected: usize,
        /// What the kernel reports for the map.
        actual: usize,
    },
    /// The map is neither `BPF_MAP_TYPE_HASH` nor `BPF_MAP_TYPE_LRU_HASH` (per-CPU maps, for
    /// instance, have a different value layout in user space).
    #[error("map type {map_type} is not supported (only HASH = 1 and LRU_HASH = 9)")]
    UnsupportedMapType {
        /// The kernel's `bpf_map_type` number.
        map_type: u32,
    },
    /// The kernel kept answering `ENOSPC` (a hash bucket larger than the chunk) even with a chunk
    /// of `entries` entries.
    #[error("BPF_MAP_LOOKUP_BATCH still returns ENOSPC with {entries} entries per call")]
    BatchChunkTooSmall {
        /// The largest chunk tried.
        entries: u32,
    },
    /// The kernel reported more entries than the buffer it was given can hold (never expected;
    /// reported instead of trusting the count).
    #[error("kernel returned {returned} entries for a {capacity}-entry batch buffer")]
    BadBatchCount {
        /// Count written back by the kernel.
        returned: u32,
        /// Count requested.
        capacity: u32,
    },
    /// The batch walk stopped advancing (success with zero entries and an unchanged position).
    #[error("BPF_MAP_LOOKUP_BATCH made no progress")]
    BatchNoProgress,
    /// Key iteration visited more keys than `limit` (a map under heavy concurrent deletion can
    /// make the kernel restart the walk again and again); the dump was abandoned.
    #[error("key iteration gave up after {limit} keys (map changing too fast?)")]
    IterationLimit {
        /// The number of keys visited.
        limit: usize,
    },
}

impl MapDumpError {
    /// The kernel errno, when the error came from a `bpf(2)` call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            MapDumpError::Syscall { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The `bpf(2)` command that failed, when the error came from one.
    pub fn cmd(&self) -> Option<BpfCmd> {
        match self {
            MapDumpError::Syscall { cmd, .. } => Some(*cmd),
            _ => None,
        }
    }

    /// True when the kernel refused for lack of privilege (`EPERM` / `EACCES`).
    pub fn is_permission_denied(&self) -> bool {
        self.errno().is_some_and(is_permission_denied)
    }
}

/// Which path [`dump_map`] may take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DumpStrategy {
    /// `BPF_MAP_LOOKUP_BATCH`; if the kernel refuses it with `EINVAL`, `ENOTSUPP` or `EOPNOTSUPP`,
    /// start over with key iteration. Costs one refused syscall per dump on kernels without
    /// batch support (< 5.6).
    #[default]
    Auto,
    /// Only `BPF_MAP_LOOKUP_BATCH`; a refusal is returned as an error.
    BatchOnly,
    /// Only `BPF_MAP_GET_NEXT_KEY` + `BPF_MAP_LOOKUP_ELEM` (two syscalls per entry).
    IterateOnly,
}

/// Which path a successful [`dump_map`] actually took (for stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DumpPath {
    /// `BPF_MAP_LOOKUP_BATCH`.
    Batch,
    /// `BPF_MAP_GET_NEXT_KEY` + `BPF_MAP_LOOKUP_ELEM`.
    KeyIteration,
}

impl DumpPath {
    /// Short stable name for stats output: `"batch"` or `"key-iteration"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DumpPath::Batch => "batch",
            DumpPath::KeyIteration => "key-iteration",
        }
    }
}

impl fmt::Display for DumpPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caller-owned, reusable buffer holding the result of the last [`dump_map`].
///
/// Keys and values are stored back to back (`len() * key_size()` and `len() * value_size()`
/// bytes); entry `i`'s key is `keys()[i * key_size()..][..key_size()]`, and its value is at the same
/// index in `values()`. Buffers only grow: after the first dump of a map, later dumps of a map of
/// similar size allocate nothing. Each [`dump_map`] replaces the previous contents (also when it
/// fails: the contents are then unspecified but memory-safe, and `len()` is 0).
#[derive(Clone, Debug)]
pub struct MapDump {
    keys: Vec<u8>,
    values: Vec<u8>,
    key_size: usize,
    value_size: usize,
    len: usize,
    batch_entries: u32,
    // Scratch: batch position tokens (in/out) and keys for iteration (prev/next).
    token_in: Vec<u8>,
    token_out: Vec<u8>,
    key_prev: Vec<u8>,
    key_next: Vec<u8>,
}

impl Default for MapDump {
    fn default() -> Self {
        Self::new()
    }
}

impl MapDump {
    /// An empty buffer that reads [`DEFAULT_BATCH_ENTRIES`] entries per batch call. Allocates
    /// nothing until the first dump.
    pub fn new() -> Self {
        Self::with_batch_entries(DEFAULT_BATCH_ENTRIES)
    }

    /// An empty buffer that asks for `entries` entries per `BPF_MAP_LOOKUP_BATCH` call (at least
    /// 1). The chunk grows by itself, and stays grown, when the kernel answers `ENOSPC` (a hash
    /// bucket holding more entries than the chunk).
    pub fn with_batch_entries(entries: u32) -> Self {
        MapDump {
            keys: Vec::new(),
            values: Vec::new(),
            key_size: 0,
            value_size: 0,
            len: 0,
            batch_entries: entries.max(1),
            token_in: Vec::new(),
            token_out: Vec::new(),
            key_prev: Vec::new(),
            key_next: Vec::new(),
        }
    }

    /// Number of entries from the last dump.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the last dump found no entries (or none was made yet).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Key size in bytes of the last dump (0 before the first).
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Value size in bytes of the last dump (0 before the first).
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Current entries per `BPF_MAP_LOOKUP_BATCH` call (may have grown after `ENOSPC`).
    pub fn batch_entries(&self) -> u32 {
        self.batch_entries
    }

    /// All keys of the last dump, back to back, in the kernel's (hash) order.
    pub fn keys(&self) -> &[u8] {
        &self.keys[..self.len * self.key_size]
    }

    /// All values of the last dump, back to back, in the same order as [`MapDump::keys`].
    pub fn values(&self) -> &[u8] {
        &self.values[..self.len * self.value_size]
    }

    /// Entry `i` as `(key bytes, value bytes)`, or `None` when `i >= len()`.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        if i >= self.len {
            return None;
        }
        let k = &self.keys[i * self.key_size..(i + 1) * self.key_size];
        let v = &self.values[i * self.value_size..(i + 1) * self.value_size];
        Some((k, v))
    }

    /// All entries as `(key bytes, value bytes)`, in the kernel's (hash) order. Borrows the
    /// buffer; nothing is copied.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        // `chunks_exact(0)` panics, so map zero sizes (no dump yet) to an empty iteration.
        let ks = self.key_size.max(1);
        let vs = self.value_size.max(1);
        self.keys()
            .chunks_exact(ks)
            .zip(self.values().chunks_exact(vs))
            .take(self.len)
    }

    /// All entries copied out as `(K, V)` with `ptr::read_unaligned`, after checking that
    /// `size_of::<K>()` and `size_of::<V>()` match the dumped sizes.
    pub fn iter_typed<K: Plain, V: Plain>(
        &self,
    ) -> Result<impl ExactSizeIterator<Item = (K, V)> + '_, MapDumpError> {
        check_sizes::<K, V>(self.key_size, self.value_size)?;
        Ok(self.iter().map(|(k, v)| {
            // `check_sizes` proved the lengths, and any bytes are a valid `Plain` value.
            (
                K::read_from_bytes(k).expect("key length checked"),
                V::read_from_bytes(v).expect("value length checked"),
            )
        }))
    }

    /// Forget the entries (keeps the allocated memory for the next dump).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes currently allocated by this buffer (keys, values and scratch), for memory stats.
    pub fn allocated_bytes(&self) -> usize {
        self.keys.capacity()
            + self.values.capacity()
            + self.token_in.capacity()
            + self.token_out.capacity()
            + self.key_prev.capacity()
            + self.key_next.capacity()
    }

    /// Make room for `entries` entries in the key and value buffers (zero-filled on growth only).
    fn ensure_entries(&mut self, entries: usize) {
        let kb = entries * self.key_size;
        let vb = entries * self.value_size;
        if self.keys.len() < kb {
            self.keys.resize(kb, 0);
        }
        if self.values.len() < vb {
            self.values.resize(vb, 0);
        }
    }
}

fn check_sizes<K, V>(key_size: usize, value_size: usize) -> Result<(), MapDumpError> {
    if std::mem::size_of::<K>() != key_size {
        return Err(MapDumpError::KeySizeMismatch {
            expected: std::mem::size_of::<K>(),
            actual: key_size,
        });
    }
    if std::mem::size_of::<V>() != value_size {
        return Err(MapDumpError::ValueSizeMismatch {
            expected: std::mem::size_of::<V>(),
            actual: value_size,
        });
    }
    Ok(())
}

/// Read **all** entries of the hash or LRU hash map `fd` into `out`, replacing its contents.
///
/// `key_size` / `value_size` are what the caller expects; they are checked against the kernel's
/// description of the map (`BPF_OBJ_GET_INFO_BY_FD`, one extra syscall) so that a wrong size is a
/// [`MapDumpError::KeySizeMismatch`] / [`MapDumpError::ValueSizeMismatch`] rather than garbage.
/// Only `BPF_MAP_TYPE_HASH` and `BPF_MAP_TYPE_LRU_HASH` are accepted.
///
/// Returns the path taken ([`DumpPath`]). Guarantees: every entry present for the whole duration
/// of the call is in `out`; entries come in no particular order (hash order); under concurrent
/// updates the result is *not* a consistent snapshot (see the module documentation). The batch
/// path returns each key at most once. Key iteration may return a key **several times** when
/// entries are deleted during the walk (measured: thousands of repeats in a 2,000-entry map with
/// 2,000 keys churning), so feed the result into something keyed (last one wins) rather than
/// counting entries; it gives up with [`MapDumpError::IterationLimit`] after
/// `4 * max_entries + 1024` keys. Reading does not touch LRU reference bits. `fd` is borrowed and
/// left open; `out` is owned by the caller and reused. On error `out` is left empty.
pub fn dump_map(
    fd: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    strategy: DumpStrategy,
    out: &mut MapDump,
) -> Result<DumpPath, MapDumpError> {
    out.len = 0;
    let info = map_info(fd)?;
    if info.map_type != BPF_MAP_TYPE_HASH && info.map_type != BPF_MAP_TYPE_LRU_HASH {
        return Err(MapDumpError::UnsupportedMapType {
            map_type: info.map_type,
        });
    }
    if info.key_size as usize != key_size {
        return Err(MapDumpError::KeySizeMismatch {
            expected: key_size,
            actual: info.key_size as usize,
        });
    }
    if info.value_size as usize != value_size {
        return Err(MapDumpError::ValueSizeMismatch {
            expected: value_size,
            actual: info.value_size as usize,
        });
    }
    out.key_size = key_size;
    out.value_size = value_size;

    let result = match strategy {
        DumpStrategy::IterateOnly => {
            dump_by_iteration(fd, info.max_entries, out).map(|()| DumpPath::KeyIteration)
        }
        DumpStrategy::BatchOnly => {
            dump_by_batch(fd, info.max_entries, out).map(|()| DumpPath::Batch)
        }
        DumpStrategy::Auto => match dump_by_batch(fd, info.max_entries, out) {
            Ok(()) => Ok(DumpPath::Batch),
            Err(MapDumpError::Syscall {
                cmd: BpfCmd::MapLookupBatch,
                errno,
            }) if is_batch_unsupported(errno) => {
                out.len = 0;
                dump_by_iteration(fd, info.max_entries, out).map(|()| DumpPath::KeyIteration)
            }
            Err(e) => Err(e),
        },
    };
    if result.is_err() {
        out.len = 0;
    }
    result
}

/// [`dump_map`] with the sizes taken from `K` and `V`, copying the entries out as a fresh
/// `Vec<(K, V)>` (one allocation per call; use [`dump_map`] + [`MapDump::iter_typed`] to avoid
/// it). `scratch` is the caller's reusable buffer; it holds the same entries afterwards. Same
/// guarantees as [`dump_map`]: no ordering, no snapshot consistency under concurrent updates.
pub fn dump_map_typed<K: Plain, V: Plain>(
    fd: BorrowedFd<'_>,
    strategy: DumpStrategy,
    scratch: &mut MapDump,
) -> Result<(Vec<(K, V)>, DumpPath), MapDumpError> {
    let path = dump_map(
        fd,
        std::mem::size_of::<K>(),
        std::mem::size_of::<V>(),
        strategy,
        scratch,
    )?;
    let entries = scratch.iter_typed::<K, V>()?.collect();
    Ok((entries, path))
}

/// True for the errnos with which a kernel says "no `BPF_MAP_LOOKUP_BATCH` here": `EINVAL`
/// (command unknown, < 5.6), `ENOTSUPP` (524) and `EOPNOTSUPP` (map type without batch ops).
pub fn is_batch_unsupported(errno: i32) -> bool {
    errno == EINVAL || errno == ENOTSUPP || errno == EOPNOTSUPP
}

/// The `memlock:` figure (bytes the kernel charges for the map) from `/proc/self/fdinfo/<fd>`.
///
/// Works for any BPF map fd; an fd whose fdinfo has no `memlock:` line (not a BPF object) gives
/// an `InvalidData` error. The number is the kernel's own estimate (`map_mem_usage`), which for
/// preallocated hash maps covers all `max_entries` elements, not just the live ones.
pub fn map_fd_memlock_bytes(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    parse_memlock(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "no numeric `memlock:` line in fdinfo (not a BPF map?)",
        )
    })
}

fn parse_memlock(fdinfo: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
}

impl From<BpfError> for MapDumpError {
    fn from(e: BpfError) -> Self {
        MapDumpError::Syscall {
            cmd: e.cmd,
            errno: e.errno,
        }
    }
}

/// Runs the raw tracepoint program `prog` once with `args` as its arguments
/// (`BPF_PROG_TEST_RUN`), on `cpu` when given (the program then sees that CPU's current task),
/// else on the calling CPU. Returns the program's return value.
pub fn run_raw_tracepoint(
    prog: BorrowedFd<'_>,
    args: &[u64],
    cpu: Option<u32>,
) -> Result<u32, MapDumpError> {
    Ok(crate::sys::bpf::prog_test_run_raw_tracepoint(
        prog, args, cpu,
    )?)
}

/// Batch walk. `out.key_size` / `out.value_size` are the map's (checked by the caller).
fn dump_by_batch(
    fd: BorrowedFd<'_>,
    max_entries: u32,
    out: &mut MapDump,
) -> Result<(), MapDumpError> {
    // Hash maps use a u32 bucket index as the position token, array-like maps a key; be generous.
    let token_len = out.key_size.max(8);
    out.token_in.resize(token_len, 0);
    out.token_out.resize(token_len, 0);
    // A bucket can never hold more than max_entries elements (plus some slack for entries
    // being replaced concurrently); past this, ENOSPC is not about our chunk size.
    let chunk_limit = max_entries.saturating_mul(2).max(out.batch_entries);
    let mut first = true;
    loop {
        let count = out.batch_entries;
        let start = out.len;
        out.ensure_entries(start + count as usize);
        let in_batch = if first { None } else { Some(&out.token_in[..]) };
        // SAFETY: keys/values have room for `count` entries of the map's sizes from `start`
        // (ensure_entries), the tokens hold at least `max(key_size, 8)` bytes (the kernel uses
        // 4 bytes for hash maps), and all buffers outlive the call.
        let r = unsafe {
            map_lookup_batch(
                fd,
                in_batch,
                &mut out.token_out,
                &mut out.keys[start * out.key_size..],
                &mut out.values[start * out.value_size..],
                count,
            )
        };
        let step = match r {
            Ok(step) => step,
            Err(BpfError { errno: ENOSPC, .. }) => {
                // A bucket has more entries than `count`: nothing was returned; retry the same
                // position with a bigger chunk.
                if count >= chunk_limit {
                    return Err(MapDumpError::BatchChunkTooSmall { entries: count });
                }
                out.batch_entries = count.saturating_mul(2).min(chunk_limit);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // On both success and ENOENT the kernel wrote back how many entries it copied.
        if step.count > count {
            return Err(MapDumpError::BadBatchCount {
                returned: step.count,
                capacity: count,
            });
        }
        out.len = start + step.count as usize;
        if step.done {
            return Ok(());
        }
        if step.count == 0 && !first && out.token_in == out.token_out {
            return Err(MapDumpError::BatchNoProgress);
        }
        std::mem::swap(&mut out.token_in, &mut out.token_out);
        first = false;
    }
}

/// `BPF_MAP_GET_NEXT_KEY` + `BPF_MAP_LOOKUP_ELEM` walk.
fn dump_by_iteration(
    fd: BorrowedFd<'_>,
    max_entries: u32,
    out: &mut MapDump,
) -> Result<(), MapDumpError> {
    let ks = out.key_size;
    let vs = out.value_size;
    out.key_prev.resize(ks, 0);
    out.key_next.resize(ks, 0);
    // Deleting the key we stand on restarts the kernel's walk from the first key; bound the
    // total work so that a map in heavy churn cannot keep us here forever.
    let limit = (max_entries as usize)
        .saturating_mul(4)
        .saturating_add(1024);
    let mut visited = 0usize;
    let mut have_prev = false;
    loop {
        let prev = if have_prev {
            Some(&out.key_prev[..])
        } else {
            None
        };
        // SAFETY: key_prev is readable and key_next writable for `key_size` bytes.
        if !unsafe { map_get_next_key(fd, prev, &mut out.key_next)? } {
            return Ok(());
        }
        visited += 1;
        if visited > limit {
            return Err(MapDumpError::IterationLimit { limit });
        }
        let n = out.len;
        out.ensure_entries(n + 1);
        // SAFETY: key_next is readable for `key_size` bytes, the value slot writable for
        // `value_size` bytes (ensure_entries; non-per-CPU map checked by the caller).
        // `false`: deleted between the two calls, so skipped.
        if unsafe { map_lookup_elem(fd, &out.key_next, &mut out.values[n * vs..])? } {
            out.keys[n * ks..(n + 1) * ks].copy_from_slice(&out.key_next);
            out.len = n + 1;
        }
        std::mem::swap(&mut out.key_prev, &mut out.key_next);
        have_prev = true;
    }
}

/// Helpers for tests and benchmarks that need a real map without loading a BPF object. Not part
/// of the supported API.
#[cfg(feature = "test-support")]
pub mod test_support {
    use super::*;
    use std::os::fd::OwnedFd;

    /// Create a map with `BPF_MAP_CREATE`. The returned fd owns the map (closing it frees it).
    pub fn create_map(
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    ) -> Result<OwnedFd, MapDumpError> {
        Ok(crate::sys::bpf::map_create(
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags,
        )?)
    }

    /// Create a `BPF_MAP_TYPE_HASH` map.
    pub fn create_hash_map_for_tests(
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<OwnedFd, MapDumpError> {
        create_map(BPF_MAP_TYPE_HASH, key_size, value_size, max_entries, 0)
    }

    /// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`.
    ///
    /// # Panics
    /// When `key` / `value` are not the map's key / value size (checked against the kernel).
    pub fn update_elem(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> Result<(), MapDumpError> {
        let info = map_info(fd)?;
        assert_eq!(key.len(), info.key_size as usize, "key size");
        assert_eq!(value.len(), info.value_size as usize, "value size");
        super::update_elem(fd, key, value)
    }

    /// `BPF_MAP_DELETE_ELEM`; see [`super::delete_elem`].
    ///
    /// # Panics
    /// When `key` is not the map's key size.
    pub fn delete_elem(fd: BorrowedFd<'_>, key: &[u8]) -> Result<(), MapDumpError> {
        super::delete_elem(fd, key).map(|_| ())
    }
}

/// `KeySizeMismatch` unless `key` is exactly the map's key size.
fn check_key_len(info: &MapInfo, key: &[u8]) -> Result<(), MapDumpError> {
    if key.len() != info.key_size as usize {
        return Err(MapDumpError::KeySizeMismatch {
            expected: info.key_size as usize,
            actual: key.len(),
        });
    }
    Ok(())
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`: sets `key` to `value` in any map type. Both lengths
/// are checked against the map's sizes first (one extra `BPF_OBJ_GET_INFO_BY_FD`), so a wrong
/// length is an error, never an out-of-bounds read.
pub fn update_elem(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> Result<(), MapDumpError> {
    check_elem_lens(fd, key, value)?;
    // SAFETY: key and value are readable for the map's sizes (checked above).
    unsafe { map_update_elem(fd, key, value)? };
    Ok(())
}

/// `KeySizeMismatch` / `ValueSizeMismatch` unless `key` and `value` are exactly the map's
/// sizes (one `BPF_OBJ_GET_INFO_BY_FD`).
fn check_elem_lens(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> Result<(), MapDumpError> {
    let info = map_info(fd)?;
    check_key_len(&info, key)?;
    if value.len() != info.value_size as usize {
        return Err(MapDumpError::ValueSizeMismatch {
            expected: info.value_size as usize,
            actual: value.len(),
        });
    }
    Ok(())
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_NOEXIST`: adds `key` → `value` unless `key` is already
/// there (then `Ok(false)` and the entry is unchanged). Lengths are checked as in
/// [`update_elem`].
pub fn insert_new_elem(fd: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> Result<bool, MapDumpError> {
    check_elem_lens(fd, key, value)?;
    // SAFETY: key and value are readable for the map's sizes (checked above).
    Ok(unsafe { map_insert_new_elem(fd, key, value)? })
}

/// `BPF_MAP_DELETE_ELEM`: removes `key` from a hash map. Returns `Ok(false)` when the key was
/// not there (ENOENT). The key length is checked against the map's key size first (one extra
/// `BPF_OBJ_GET_INFO_BY_FD`), so a wrong length is an error, never an out-of-bounds read.
/// Used by the test helpers only: the product deletes with [`delete_keys`].
#[cfg(feature = "test-support")]
pub fn delete_elem(fd: BorrowedFd<'_>, key: &[u8]) -> Result<bool, MapDumpError> {
    let info = map_info(fd)?;
    check_key_len(&info, key)?;
    // SAFETY: key is readable for the map's key size (checked above).
    Ok(unsafe { map_delete_elem(fd, key)? })
}

/// Removes `keys` (each exactly the map's key size) from a hash map with as few syscalls as
/// the kernel allows: `BPF_MAP_DELETE_BATCH` (Linux 5.6+), skipping keys that are no longer
/// there, or one `BPF_MAP_DELETE_ELEM` per key where batches are refused. Returns how many
/// were removed. Any other refusal is returned after the keys before it were removed.
pub fn delete_keys<K: Plain>(fd: BorrowedFd<'_>, keys: &[K]) -> Result<usize, MapDumpError> {
    use zerocopy::IntoBytes;
    if keys.is_empty() {
        return Ok(0);
    }
    let info = map_info(fd)?;
    check_key_len(&info, keys[0].as_bytes())?;
    let bytes = keys.as_bytes();
    let key_size = std::mem::size_of::<K>();
    let mut removed = 0usize;
    let mut next = 0usize;
    while next < keys.len() {
        let rest = &bytes[next * key_size..];
        let count = (keys.len() - next).min(u32::MAX as usize) as u32;
        // SAFETY: `rest` holds `count` keys of the map's key size (checked above).
        let (done, error) = unsafe { map_delete_batch(fd, rest, count) };
        removed += done as usize;
        next += done as usize;
        match error {
            None => {}
            // The key after the removed ones is gone already (a race with nobody: only the
            // reaper deletes, but a key may be listed twice): skip it.
            Some(e) if e.errno == ENOENT => next += 1,
            Some(e) if is_batch_unsupported(e.errno) && removed == 0 && next == 0 => {
                return Ok(keys
                    .iter()
                    // SAFETY: each key is the map's key size (checked above).
                    .filter(|key| unsafe { map_delete_elem(fd, key.as_bytes()) }.unwrap_or(false))
                    .count());
            }
            Some(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memlock_line() {
        let s = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t2078\nmap_type:\t1\n\
                 key_size:\t16\nvalue_size:\t72\nmax_entries:\t16384\nmap_flags:\t0x0\n\
                 map_extra:\t0x0\nmemlock:\t2364288\nmap_id:\t42\nfrozen:\t0\n";
        assert_eq!(parse_memlock(s), Some(2_364_288));
        assert_eq!(parse_memlock("pos:\t0\n"), None);
        assert_eq!(parse_memlock("memlock:\tlots\n"), None);
    }

    #[test]
    fn batch_refusals_are_classified() {
        assert!(is_batch_unsupported(crate::sys::errno::EINVAL));
        assert!(is_batch_unsupported(ENOTSUPP));
        assert!(is_batch_unsupported(crate::sys::errno::EOPNOTSUPP));
        assert!(!is_batch_unsupported(crate::sys::errno::EPERM));
        assert!(!is_batch_unsupported(crate::sys::errno::ENOENT));
        assert!(!is_batch_unsupported(crate::sys::errno::ENOSPC));
    }

    #[test]
    fn empty_dump_iterates_nothing() {
        let d = MapDump::new();
        assert_eq!(d.iter().count(), 0);
        assert!(d.get(0).is_none());
        assert!(d.keys().is_empty() && d.values().is_empty());
    }

    #[test]
    fn errors_carry_errno_and_command() {
        let e = MapDumpError::Syscall {
            cmd: BpfCmd::MapLookupBatch,
            errno: crate::sys::errno::EPERM,
        };
        assert_eq!(e.errno(), Some(crate::sys::errno::EPERM));
        assert_eq!(e.cmd(), Some(BpfCmd::MapLookupBatch));
        assert!(e.is_permission_denied());
        assert!(e.to_string().contains("BPF_MAP_LOOKUP_BATCH"));
        assert_eq!(BpfCmd::MapLookupBatch.as_raw(), 24);
        assert_eq!(BpfCmd::MapGetNextKey.as_raw(), 4);
    }
}
