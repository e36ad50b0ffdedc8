//! The hand-written `bpf(2)` commands that aya 0.14 does not offer: map info, batch and
//! element access by fd, `BPF_PROG_TEST_RUN`, and (for tests) `BPF_MAP_CREATE`.
//!
//! rustix does not wrap `bpf(2)`, so [`sys_bpf`] is the one raw syscall here. Each command is a
//! function that fills its `union bpf_attr` member; the ones whose buffers the kernel sizes by
//! the map's key and value sizes are `unsafe fn`s with the size contract under `# Safety`.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::errno::{EEXIST, EINTR, EIO, ENOENT};

/// `bpf(2)` command numbers used here (from `include/uapi/linux/bpf.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BpfCmd {
    /// `BPF_MAP_CREATE` (0), only used by the test helpers.
    MapCreate,
    /// `BPF_MAP_LOOKUP_ELEM` (1).
    MapLookupElem,
    /// `BPF_MAP_UPDATE_ELEM` (2), only used by the test helpers.
    MapUpdateElem,
    /// `BPF_MAP_DELETE_ELEM` (3), only used by the test helpers.
    MapDeleteElem,
    /// `BPF_MAP_GET_NEXT_KEY` (4).
    MapGetNextKey,
    /// `BPF_OBJ_GET_INFO_BY_FD` (15).
    ObjGetInfoByFd,
    /// `BPF_MAP_LOOKUP_BATCH` (24).
    MapLookupBatch,
    /// `BPF_PROG_TEST_RUN` (10): runs the flush program on demand.
    ProgTestRun,
    /// `BPF_MAP_DELETE_BATCH` (27): the kernel reaper's deletes.
    MapDeleteBatch,
}

impl BpfCmd {
    /// The kernel's number for this command.
    pub const fn as_raw(self) -> i32 {
        match self {
            BpfCmd::MapCreate => 0,
            BpfCmd::MapLookupElem => 1,
            BpfCmd::MapUpdateElem => 2,
            BpfCmd::MapDeleteElem => 3,
            BpfCmd::MapGetNextKey => 4,
            BpfCmd::ObjGetInfoByFd => 15,
            BpfCmd::MapLookupBatch => 24,
            BpfCmd::ProgTestRun => 10,
            BpfCmd::MapDeleteBatch => 27,
        }
    }

    /// The kernel's name for this command, e.g. `"BPF_MAP_LOOKUP_BATCH"`.
    pub const fn name(self) -> &'static str {
        match self {
            BpfCmd::MapCreate => "BPF_MAP_CREATE",
            BpfCmd::MapLookupElem => "BPF_MAP_LOOKUP_ELEM",
            BpfCmd::MapUpdateElem => "BPF_MAP_UPDATE_ELEM",
            BpfCmd::MapDeleteElem => "BPF_MAP_DELETE_ELEM",
            BpfCmd::MapGetNextKey => "BPF_MAP_GET_NEXT_KEY",
            BpfCmd::ObjGetInfoByFd => "BPF_OBJ_GET_INFO_BY_FD",
            BpfCmd::MapLookupBatch => "BPF_MAP_LOOKUP_BATCH",
            BpfCmd::ProgTestRun => "BPF_PROG_TEST_RUN",
            BpfCmd::MapDeleteBatch => "BPF_MAP_DELETE_BATCH",
        }
    }
}

impl fmt::Display for BpfCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `bpf(2)` call that the kernel refused: the command and its errno (positive, never
/// `EINTR`: interrupted calls are retried).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfError {
    /// The command that failed.
    pub cmd: BpfCmd,
    /// The raw errno (positive), e.g. [`EPERM`](super::errno::EPERM).
    pub errno: i32,
}

/// What the kernel says about a map (`struct bpf_map_info`, the prefix up to `name`).
#[repr(C)]
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// The `bpf_map_type` number.
    pub map_type: u32,
    /// The map's id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Capacity in entries.
    pub max_entries: u32,
    /// `BPF_F_*` creation flags.
    pub map_flags: u32,
    /// The map's name, NUL-padded.
    pub name: [u8; 16],
}

/// `union bpf_attr` member for `BPF_MAP_CREATE` (prefix up to `map_name`; the kernel zero-fills
/// the rest).
#[cfg(feature = "test-support")]
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `union bpf_attr` member for `BPF_MAP_*_ELEM` and `BPF_MAP_GET_NEXT_KEY`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` or `next_key`.
    value: u64,
    flags: u64,
}

/// `union bpf_attr` member `batch`, for `BPF_MAP_*_BATCH`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `union bpf_attr` member `info`, for `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The `test` member of `union bpf_attr` (`BPF_PROG_TEST_RUN`).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

/// `BPF_F_TEST_RUN_ON_CPU`: run on `cpu` (through an IPI when it is another CPU).
const BPF_F_TEST_RUN_ON_CPU: u32 = 1;

/// `bpf(cmd, attr, sizeof attr)`, retried on `EINTR`. Returns the non-negative result or errno.
///
/// # Safety
/// `attr` must be the `bpf_attr` member for `cmd`, and every pointer in it must be valid for the
/// reads/writes the kernel does for `cmd` with the sizes the map has.
unsafe fn sys_bpf<A>(cmd: BpfCmd, attr: &mut A) -> Result<libc::c_long, BpfError> {
    loop {
        // SAFETY: forwarded to the caller; `attr` is a live, exclusively borrowed struct of
        // the size passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd.as_raw(),
                (attr as *mut A).cast::<libc::c_void>(),
                std::mem::size_of::<A>() as libc::c_uint,
            )
        };
        if r >= 0 {
            return Ok(r);
        }
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(EIO);
        if errno != EINTR {
            return Err(BpfError { cmd, errno });
        }
    }
}

fn raw(fd: BorrowedFd<'_>) -> u32 {
    fd.as_raw_fd() as u32
}

/// The prefix of `struct bpf_prog_info` up to `run_cnt` (offsets 192 and 200 in
/// `include/uapi/linux/bpf.h` since Linux 5.1; a layout test checks them).
#[repr(C)]
#[derive(Clone, Copy)]
struct ProgInfoRunStats {
    /// Every field before `run_time_ns`, not read here.
    head: [u64; 24],
    run_time_ns: u64,
    run_cnt: u64,
}

/// What the kernel counted for one program while run-time statistics were on
/// (`BPF_ENABLE_STATS` held, or `kernel.bpf_stats_enabled = 1`); both stay 0 while off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgRunStats {
    /// Total time spent running the program, ns (`run_time_ns`).
    pub run_time_ns: u64,
    /// Times the program ran (`run_cnt`).
    pub run_count: u64,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a program: its cumulative run time and run count.
pub fn prog_run_stats(fd: BorrowedFd<'_>) -> Result<ProgRunStats, BpfError> {
    let mut info = ProgInfoRunStats {
        head: [0; 24],
        run_time_ns: 0,
        run_cnt: 0,
    };
    let mut attr = InfoAttr {
        bpf_fd: raw(fd),
        info_len: std::mem::size_of::<ProgInfoRunStats>() as u32,
        info: (&mut info as *mut ProgInfoRunStats) as u64,
    };
    // SAFETY: `info` is writable for `info_len` bytes; the kernel writes at most that many.
    unsafe { sys_bpf(BpfCmd::ObjGetInfoByFd, &mut attr)? };
    Ok(ProgRunStats {
        run_time_ns: info.run_time_ns,
        run_count: info.run_cnt,
    })
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map: its type, sizes and capacity.
pub fn map_info(fd: BorrowedFd<'_>) -> Result<MapInfo, BpfError> {
    let mut info = MapInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: raw(fd),
        info_len: std::mem::size_of::<MapInfo>() as u32,
        info: (&mut info as *mut MapInfo) as u64,
    };
    // SAFETY: `info` is writable for `info_len` bytes; the kernel writes at most that many.
    unsafe { sys_bpf(BpfCmd::ObjGetInfoByFd, &mut attr)? };
    Ok(info)
}

/// One `BPF_MAP_LOOKUP_BATCH` call's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchStep {
    /// Entries the kernel copied (as it wrote back; the caller checks it against the request).
    pub count: u32,
    /// True when the kernel said `ENOENT`: the walk reached the end of the map.
    pub done: bool,
}

/// `BPF_MAP_LOOKUP_BATCH`: copies up to `count` entries after the position `in_batch` (`None`:
/// from the start) into `keys` / `values`, and the next position into `out_batch`. `ENOENT`
/// (end of map) is `Ok` with [`BatchStep::done`]; every other refusal is an error.
///
/// # Safety
/// `keys` must hold at least `count × key_size` bytes and `values` `count × value_size` bytes of
/// the map `fd`; `in_batch` and `out_batch` must hold a position token of the map (4 bytes for
/// hash maps, `key_size` for array-like maps).
pub unsafe fn map_lookup_batch(
    fd: BorrowedFd<'_>,
    in_batch: Option<&[u8]>,
    out_batch: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> Result<BatchStep, BpfError> {
    let mut attr = BatchAttr {
        in_batch: in_batch.map_or(0, |token| token.as_ptr() as u64),
        out_batch: out_batch.as_mut_ptr() as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count,
        map_fd: raw(fd),
        elem_flags: 0,
        flags: 0,
    };
    // SAFETY: the buffers are live and sized as the caller promised.
    match unsafe { sys_bpf(BpfCmd::MapLookupBatch, &mut attr) } {
        // On both success and ENOENT the kernel wrote back how many entries it copied.
        Ok(_) => Ok(BatchStep {
            count: attr.count,
            done: false,
        }),
        Err(e) if e.errno == ENOENT => Ok(BatchStep {
            count: attr.count,
            done: true,
        }),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_GET_NEXT_KEY`: writes the key after `prev` (`None`: the first key) into `next`.
/// Returns `Ok(false)` at the end of the map (`ENOENT`).
///
/// # Safety
/// `prev` (when given) and `next` must hold at least the map's key size in bytes.
pub unsafe fn map_get_next_key(
    fd: BorrowedFd<'_>,
    prev: Option<&[u8]>,
    next: &mut [u8],
) -> Result<bool, BpfError> {
    let mut attr = MapElemAttr {
        map_fd: raw(fd),
        key: prev.map_or(0, |key| key.as_ptr() as u64),
        value: next.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: prev is readable and next writable for the map's key size (caller's promise).
    not_found_is_false(unsafe { sys_bpf(BpfCmd::MapGetNextKey, &mut attr) })
}

/// `BPF_MAP_LOOKUP_ELEM`: copies the value of `key` into `value`. Returns `Ok(false)` when the
/// key is not in the map (`ENOENT`).
///
/// # Safety
/// `key` must hold at least the map's key size and `value` its value size in bytes (per-CPU
/// maps need `value_size` × possible CPUs).
pub unsafe fn map_lookup_elem(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &mut [u8],
) -> Result<bool, BpfError> {
    let mut attr = MapElemAttr {
        map_fd: raw(fd),
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: key readable, value writable for the map's sizes (caller's promise).
    not_found_is_false(unsafe { sys_bpf(BpfCmd::MapLookupElem, &mut attr) })
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`: sets `key` to `value`.
///
/// # Safety
/// `key` must hold at least the map's key size and `value` its value size in bytes.
pub unsafe fn map_update_elem(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
) -> Result<(), BpfError> {
    let mut attr = MapElemAttr {
        map_fd: raw(fd),
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: key and value are readable for the map's sizes (caller's promise).
    unsafe { sys_bpf(BpfCmd::MapUpdateElem, &mut attr)? };
    Ok(())
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_NOEXIST`: adds `key` with `value` unless the key is there.
/// Returns `Ok(false)` when it was (`EEXIST`; the entry is left as it is).
///
/// # Safety
/// `key` must hold at least the map's key size and `value` its value size in bytes.
pub unsafe fn map_insert_new_elem(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
) -> Result<bool, BpfError> {
    const BPF_NOEXIST: u64 = 1;
    let mut attr = MapElemAttr {
        map_fd: raw(fd),
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: BPF_NOEXIST,
        ..Default::default()
    };
    // SAFETY: key and value are readable for the map's sizes (caller's promise).
    match unsafe { sys_bpf(BpfCmd::MapUpdateElem, &mut attr) } {
        Ok(_) => Ok(true),
        Err(e) if e.errno == EEXIST => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_DELETE_ELEM`: removes `key`. Returns `Ok(false)` when it was not there (`ENOENT`).
///
/// # Safety
/// `key` must hold at least the map's key size in bytes.
pub unsafe fn map_delete_elem(fd: BorrowedFd<'_>, key: &[u8]) -> Result<bool, BpfError> {
    let mut attr = MapElemAttr {
        map_fd: raw(fd),
        key: key.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: key is readable for the map's key size (caller's promise).
    not_found_is_false(unsafe { sys_bpf(BpfCmd::MapDeleteElem, &mut attr) })
}

/// `BPF_MAP_DELETE_BATCH`: removes the `count` keys laid out back to back in `keys`, in order,
/// stopping at the first that fails. Returns how many were removed and the error that stopped
/// the call, if any (`ENOENT`: the key after the removed ones was not there).
///
/// # Safety
/// `keys` must hold at least `count` × the map's key size bytes.
pub unsafe fn map_delete_batch(
    fd: BorrowedFd<'_>,
    keys: &[u8],
    count: u32,
) -> (u32, Option<BpfError>) {
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        count,
        map_fd: raw(fd),
        ..Default::default()
    };
    // SAFETY: keys is readable for count keys (caller's promise); the kernel writes back only
    // `attr.count`.
    match unsafe { sys_bpf(BpfCmd::MapDeleteBatch, &mut attr) } {
        Ok(_) => (attr.count, None),
        // The kernel writes back how many it removed before the failure.
        Err(e) => (attr.count.min(count), Some(e)),
    }
}

fn not_found_is_false(r: Result<libc::c_long, BpfError>) -> Result<bool, BpfError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.errno == ENOENT => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_PROG_TEST_RUN` of the raw tracepoint program `prog` with `args` as its arguments, on
/// `cpu` when given (the program then sees that CPU's current task), else on the calling CPU.
/// Returns the program's return value.
pub fn prog_test_run_raw_tracepoint(
    prog: BorrowedFd<'_>,
    args: &[u64],
    cpu: Option<u32>,
) -> Result<u32, BpfError> {
    let mut attr = TestRunAttr {
        prog_fd: raw(prog),
        ctx_size_in: std::mem::size_of_val(args) as u32,
        ctx_in: args.as_ptr() as u64,
        flags: if cpu.is_some() {
            BPF_F_TEST_RUN_ON_CPU
        } else {
            0
        },
        cpu: cpu.unwrap_or(0),
        ..TestRunAttr::default()
    };
    // SAFETY: `args` is readable for `ctx_size_in` bytes and outlives the call; the kernel only
    // reads `ctx_in`, and no output buffers are given.
    unsafe { sys_bpf(BpfCmd::ProgTestRun, &mut attr)? };
    Ok(attr.retval)
}

/// `BPF_MAP_CREATE` of a map named `bpftop_test`. The returned fd owns the map (closing it
/// frees it). For tests and benchmarks only.
#[cfg(feature = "test-support")]
pub fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> Result<std::os::fd::OwnedFd, BpfError> {
    use std::os::fd::FromRawFd;
    let mut map_name = [0u8; 16];
    map_name[..11].copy_from_slice(b"bpftop_test");
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        map_name,
        ..Default::default()
    };
    // SAFETY: BPF_MAP_CREATE reads only the attr itself.
    let fd = unsafe { sys_bpf(BpfCmd::MapCreate, &mut attr)? };
    // SAFETY: the kernel just returned this new fd and nobody else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prog_info_run_stats_sit_where_the_kernel_puts_them() {
        assert_eq!(std::mem::offset_of!(ProgInfoRunStats, run_time_ns), 192);
        assert_eq!(std::mem::offset_of!(ProgInfoRunStats, run_cnt), 200);
    }

    #[test]
    fn command_numbers_and_names() {
        assert_eq!(BpfCmd::MapLookupBatch.as_raw(), 24);
        assert_eq!(BpfCmd::MapGetNextKey.as_raw(), 4);
        assert_eq!(BpfCmd::ProgTestRun.to_string(), "BPF_PROG_TEST_RUN");
    }

    #[test]
    fn attr_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
        assert_eq!(std::mem::size_of::<BatchAttr>(), 56);
        assert_eq!(std::mem::size_of::<InfoAttr>(), 16);
        assert_eq!(std::mem::size_of::<TestRunAttr>(), 80); // up to batch_size, padded to 8
        assert_eq!(std::mem::size_of::<MapInfo>(), 40);
    }
}
