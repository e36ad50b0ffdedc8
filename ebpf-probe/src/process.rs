//! The processes table: fork, exec, exit, context switches and renames keep `PROC_STATE`
//! current.
//!
//! Every user-visible field is re-read from the kernel's task structures whenever a record is
//! made ([`sample_into`]), so uid, ppid, comm and the task state follow setuid, reparenting,
//! renames and sleeps. On-CPU time is the kernel's own lifetime figure (thread group sum of
//! `se.sum_exec_runtime`), not an estimate. Context switches and renames only mark an entry
//! dirty; the flush program sends one refresh per dirty process per flush period (the
//! throttle's bound) — the trailing edge that makes an idle process's last values arrive.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns, bpf_loop},
    EbpfContext,
};
use probe_common::{
    cmdline_flags, event_count, failure, kind, proc_flags, table, ProbeConfig, ProcKey, ProcState,
    CMDLINE_LEN, COMM_LEN, EXIT_ZOMBIE, MAX_THREADS_WALKED, PF_EXITING, PF_KTHREAD, TASK_DEAD,
};

use crate::{
    atomic::{atomic_clear_bits, atomic_set_bits},
    emit::{config, count_event, count_failure, emit_proc, poll_seq},
    kread::{off, offsets_valid, read_at, read_maybe_stale, Btf, Mem, Probe},
    maps::{CMDLINE_SCRATCH, PROC_CMDLINE, PROC_DIRTY, PROC_STATE, PROC_STATE_LRU},
};

/// Children whose parent exits are marked for a ppid re-read, at most this many per exit (the
/// rest are re-read when they next run).
const MAX_CHILDREN_WALKED: u32 = 32;

#[inline(always)]
fn tgid_passes(cfg: &ProbeConfig, tgid: u32) -> bool {
    cfg.filter_tgid == 0 || cfg.filter_tgid == tgid
}

/// The entry of `key` in the state map in use.
#[inline(always)]
pub fn proc_get(cfg: &ProbeConfig, key: &ProcKey) -> Option<*mut ProcState> {
    if cfg.use_lru_maps != 0 {
        PROC_STATE_LRU.get_ptr_mut(key)
    } else {
        PROC_STATE.get_ptr_mut(key)
    }
}

/// Writes a whole entry (creation, or a new process replacing a stale one); counts a full map.
#[inline(always)]
fn proc_put(cfg: &ProbeConfig, key: &ProcKey, state: &ProcState) -> bool {
    let result = if cfg.use_lru_maps != 0 {
        PROC_STATE_LRU.insert(key, state, 0)
    } else {
        PROC_STATE.insert(key, state, 0)
    };
    if result.is_err() {
        count_failure(failure::PROC_MAP_FULL);
        return false;
    }
    true
}

/// Identity of the process `task` belongs to: (tgid, group leader's start time), and the
/// leader's address.
#[inline(always)]
pub fn proc_key_of(task: u64) -> Option<(ProcKey, u64)> {
    proc_key_by::<Probe>(task)
}

/// [`proc_key_of`] with the task read by `M` ([`Btf`] for a `tp_btf` task argument).
#[inline(always)]
fn proc_key_by<M: Mem>(task: u64) -> Option<(ProcKey, u64)> {
    let tgid: u32 = M::read(task, off!(task_tgid))?;
    let leader: u64 = M::read(task, off!(task_group_leader))?;
    let start_ns: u64 = M::read(leader, off!(task_start_time))?;
    Some((
        ProcKey {
            tgid,
            pad: 0,
            start_ns,
        },
        leader,
    ))
}

/// The leader remembered in an entry, if it is still the task of `key` (a freed and reused
/// `task_struct` has another tgid or start time).
#[inline(always)]
fn validated_leader(key: &ProcKey, task_addr: u64) -> Option<u64> {
    let tgid: u32 = read_maybe_stale(task_addr, off!(task_tgid))?;
    let start_ns: u64 = read_maybe_stale(task_addr, off!(task_start_time))?;
    (tgid == key.tgid && start_ns == key.start_ns).then_some(task_addr)
}

/// State of one thread walk, shared with [`thread_step`] through `bpf_loop`.
#[repr(C)]
struct ThreadWalk {
    head: u64,
    node: u64,
    node_offset: u64,
    total: u64,
    runtime_offset: u32,
    /// 0 walking, 1 reached the head (complete), 2 stopped early (a read failed).
    done: u32,
}

/// One step of the thread walk (a `bpf_loop` callback: verified once, not per thread).
#[inline(never)]
extern "C" fn thread_step(_index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `bpf_loop` passes the `ThreadWalk` given to it.
    let walk = unsafe { &mut *(ctx as *mut ThreadWalk) };
    if walk.node == walk.head {
        walk.done = 1;
        return 1;
    }
    if walk.node == 0 {
        walk.done = 2;
        return 1;
    }
    let thread = walk.node - walk.node_offset;
    walk.total += read_at::<u64>(thread, walk.runtime_offset).unwrap_or(0);
    walk.node = read_at(walk.node, 0).unwrap_or(0);
    0
}

// Verifier cost. `sample_into` runs in most programs and, in the flush, inside a `bpf_loop`
// callback. Written as one inlined function with a branch per read, its paths multiply: each
// failed read leaves a constant where a successful one leaves an unknown value, and the
// verifier walks the rest of the function once per combination it cannot prune. On the
// 6.18.44-fc-v1252 kernel build (not on -v669) that took the flush past the 1M-instruction
// budget and four tracepoints past the 512-byte combined stack. So each group of fields is read by a function of its own (not
// inlined) that writes straight into the entry and returns only the XOR of old and new
// values: when it returns, its frame and its path-dependent values are gone, so every path
// through it meets the caller in the same state (a join point for the verifier).

/// Writes `value` into `*field` and returns what changed (old XOR new), widened to 64 bits.
///
/// # Safety
/// `field` must point into a live state-map value or a stack value.
#[inline(always)]
unsafe fn store_u32(field: *mut u32, value: u32) -> u64 {
    unsafe {
        let old = *field;
        *field = value;
        (old ^ value) as u64
    }
}

/// [`store_u32`] for a 64-bit field.
///
/// # Safety
/// As [`store_u32`].
#[inline(always)]
unsafe fn store_u64(field: *mut u64, value: u64) -> u64 {
    unsafe {
        let old = *field;
        *field = value;
        old ^ value
    }
}

/// Sets the `bits` of `(*e).flags` when `on`, clears them otherwise (atomically: other CPUs set
/// flag bits of the same entry); returns the bits that changed.
///
/// # Safety
/// `e` must point to a live state-map value or a stack value.
#[inline(always)]
unsafe fn store_flag(e: *mut ProcState, bits: u32, on: bool) -> u64 {
    unsafe {
        let flags = core::ptr::addr_of_mut!((*e).flags);
        let old = if on {
            atomic_set_bits(flags, bits)
        } else {
            atomic_clear_bits(flags, bits)
        };
        let now_on = if on { bits } else { 0 };
        ((old & bits) ^ now_on) as u64
    }
}

/// Lifetime on-CPU time of `leader`'s thread group into `(*e).cpu_ns`, ns:
/// `signal->sum_sched_runtime` (threads already released) plus `se.sum_exec_runtime` of each
/// live thread, never less than before (a thread being released can be counted twice or not
/// at all for an instant: the walk takes no lock). `CPU_PARTIAL` is set when the figure is a
/// lower bound (the walk stopped at [`MAX_THREADS_WALKED`] threads, or a read failed).
/// Returns what changed.
///
/// # Safety
/// `e` must point to a live state-map value or a stack value.
#[inline(never)]
unsafe fn sample_cpu_into(e: *mut ProcState, leader: u64) -> u64 {
    let signal: u64 = read_at(leader, off!(task_signal)).unwrap_or(0);
    let head = signal + off!(signal_thread_head) as u64;
    let mut walk = ThreadWalk {
        head,
        node: 0,
        node_offset: off!(task_thread_node) as u64,
        total: 0,
        runtime_offset: off!(task_sum_exec_runtime),
        done: 2,
    };
    if let Some(total) = read_at::<u64>(signal, off!(signal_sum_sched_runtime)) {
        walk.total = total;
        walk.node = read_at(head, 0).unwrap_or(0);
        walk.done = 0;
        // SAFETY: the callback is a BPF function and `walk` outlives the call.
        unsafe {
            bpf_loop(
                MAX_THREADS_WALKED + 1,
                thread_step as *mut core::ffi::c_void,
                core::ptr::addr_of_mut!(walk).cast(),
                0,
            )
        };
    }
    unsafe {
        let cpu_ns = walk.total.max((*e).cpu_ns);
        store_u64(core::ptr::addr_of_mut!((*e).cpu_ns), cpu_ns)
            | store_flag(e, proc_flags::CPU_PARTIAL, walk.done != 1)
    }
}

/// Resident and virtual size of `leader`'s address space into `(*e).rss_bytes` /
/// `virt_bytes`, bytes, as `/proc/PID/status` VmRSS (the global counts of the file, anon and
/// shmem `rss_stat` counters, each clamped at 0) and VmSize (`total_vm` pages). `RSS_KNOWN` is
/// set when there is an `mm` and every read succeeded; `KERNEL_THREAD` when `PF_KTHREAD` (a
/// kernel thread borrowing an mm with `kthread_use_mm` has no RSS of its own). Returns what
/// changed.
///
/// # Safety
/// `e` must point to a live state-map value or a stack value.
#[inline(never)]
unsafe fn sample_memory_into(e: *mut ProcState, leader: u64) -> u64 {
    let task_flags: u32 = read_at(leader, off!(task_flags)).unwrap_or(0);
    let kernel_thread = task_flags & PF_KTHREAD != 0;
    let mm: u64 = if kernel_thread {
        0
    } else {
        read_at(leader, off!(task_mm)).unwrap_or(0)
    };
    // read_at of a NULL base is None: no mm, nothing known.
    let file: Option<i64> = read_at(mm, off!(mm_rss_file));
    let anon: Option<i64> = read_at(mm, off!(mm_rss_anon));
    let shmem: Option<i64> = read_at(mm, off!(mm_rss_shmem));
    let total_vm: Option<u64> = read_at(mm, off!(mm_total_vm));
    let known = file.is_some() && anon.is_some() && shmem.is_some() && total_vm.is_some();
    let shift = off!(page_shift) & 63;
    let (rss_bytes, virt_bytes) = match (file, anon, shmem, total_vm) {
        (Some(f), Some(a), Some(s), Some(v)) => (
            ((f.max(0) as u64) + (a.max(0) as u64) + (s.max(0) as u64)) << shift,
            v << shift,
        ),
        _ => (0, 0),
    };
    unsafe {
        // KERNEL_THREAD is only ever set (a process does not stop being one).
        if kernel_thread {
            atomic_set_bits(
                core::ptr::addr_of_mut!((*e).flags),
                proc_flags::KERNEL_THREAD,
            );
        }
        store_u64(core::ptr::addr_of_mut!((*e).rss_bytes), rss_bytes)
            | store_u64(core::ptr::addr_of_mut!((*e).virt_bytes), virt_bytes)
            | store_flag(e, proc_flags::RSS_KNOWN, known)
    }
}

/// Id of `leader`'s cgroup in the default hierarchy (`cgroups->dfl_cgrp->kn->id`) into
/// `(*e).cgroup_id`; `CGROUP_KNOWN` when every pointer on the way could be read. Returns what
/// changed.
///
/// # Safety
/// `e` must point to a live state-map value or a stack value.
#[inline(never)]
unsafe fn sample_cgroup_into(e: *mut ProcState, leader: u64) -> u64 {
    // read_at of a NULL base is None: a missing link ends the chain.
    let css_set: u64 = read_at(leader, off!(task_cgroups)).unwrap_or(0);
    let cgroup: u64 = read_at(css_set, off!(css_set_dfl_cgrp)).unwrap_or(0);
    let kn: u64 = read_at(cgroup, off!(cgroup_kn)).unwrap_or(0);
    let id: Option<u64> = read_at(kn, off!(kernfs_node_id));
    unsafe {
        store_u64(core::ptr::addr_of_mut!((*e).cgroup_id), id.unwrap_or(0))
            | store_flag(e, proc_flags::CGROUP_KNOWN, id.is_some())
    }
}

/// Parent, real uid, comm, scheduler and exit state, thread count and nice of the process led
/// by `leader` into `*e`. Returns what changed.
///
/// # Safety
/// `e` must point to a live state-map value or a stack value.
#[inline(never)]
unsafe fn sample_identity_into(e: *mut ProcState, leader: u64) -> u64 {
    let parent: u64 = read_at(leader, off!(task_real_parent)).unwrap_or(0);
    let ppid: u32 = read_at(parent, off!(task_tgid)).unwrap_or(0);
    let cred: u64 = read_at(leader, off!(task_real_cred)).unwrap_or(0);
    let uid: u32 = read_at(cred, off!(cred_uid)).unwrap_or(0);
    let task_state: u32 = read_at(leader, off!(task_state)).unwrap_or(0);
    let exit_state: u32 = read_at(leader, off!(task_exit_state)).unwrap_or(0);
    let signal: u64 = read_at(leader, off!(task_signal)).unwrap_or(0);
    let threads: u32 = read_at(signal, off!(signal_nr_threads)).unwrap_or(0);
    let static_prio: i32 = read_at(leader, off!(task_static_prio)).unwrap_or(120);
    unsafe {
        let comm = core::ptr::addr_of_mut!((*e).comm).cast::<u64>();
        let (old_a, old_b) = (comm.read(), comm.add(1).read());
        // Straight into the entry: no 16-byte copy on the stack. A failed read leaves zeros.
        if aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            comm.cast(),
            COMM_LEN as u32,
            (leader + off!(task_comm) as u64) as *const core::ffi::c_void,
        ) != 0
        {
            count_failure(failure::KERNEL_READ);
        }
        let comm_changed = (comm.read() ^ old_a) | (comm.add(1).read() ^ old_b);
        comm_changed
            | store_u32(core::ptr::addr_of_mut!((*e).ppid), ppid)
            | store_u32(core::ptr::addr_of_mut!((*e).uid), uid)
            | store_u32(core::ptr::addr_of_mut!((*e).task_state), task_state)
            | store_u32(core::ptr::addr_of_mut!((*e).exit_state), exit_state)
            | store_u32(core::ptr::addr_of_mut!((*e).threads), threads)
            | store_u32(
                core::ptr::addr_of_mut!((*e).nice).cast(),
                (static_prio - 120) as u32,
            )
    }
}

/// Reads every user-visible field of the process whose group leader is `leader` into `*e`
/// (in place: other CPUs only ever set flag bits atomically). Returns true when a field other
/// than the sample time changed.
///
/// Not inlined, and made of functions that are not inlined either (see the note above
/// [`store_u32`]): its frames sit beside — not on top of — the caller's and [`emit_proc`]'s.
///
/// # Safety
/// `e` must point to a live state-map value.
#[inline(never)]
unsafe fn sample_into(e: *mut ProcState, leader: u64, now: u64) -> bool {
    unsafe {
        let changed = sample_identity_into(e, leader)
            | sample_cpu_into(e, leader)
            | sample_memory_into(e, leader)
            | sample_cgroup_into(e, leader);
        (*e).sampled_ns = now;
        (*e).task_addr = leader;
        changed != 0
    }
}

/// Stamps the change for poll, records the emission time, and sends the entry to ring/perf.
///
/// # Safety
/// `e` must point to a live state-map value.
#[inline(always)]
pub unsafe fn publish<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    kind: u16,
    key: &ProcKey,
    e: *mut ProcState,
    now: u64,
) {
    unsafe {
        if let Some(seq) = poll_seq(cfg, table::PROCESSES) {
            (*e).poll_seq = seq;
        }
        (*e).last_emit_ns = now;
        emit_proc(ctx, cfg, kind, key, &*e);
    }
}

/// Marks the entry dirty; the first marking since the last record queues the key for the flush
/// program. A full queue is counted (`dirty_queue_full`); the entity's next event retries.
///
/// # Safety
/// `e` must point to a live state-map value.
#[inline(always)]
pub unsafe fn mark_dirty(key: &ProcKey, e: *mut ProcState, extra: u32) {
    unsafe {
        let flags_ptr = core::ptr::addr_of_mut!((*e).flags);
        if extra == 0 && core::ptr::read_volatile(flags_ptr) & proc_flags::DIRTY != 0 {
            return; // already queued: no atomic on the hot path
        }
        let old = atomic_set_bits(flags_ptr, proc_flags::DIRTY | extra);
        if old & proc_flags::DIRTY != 0 {
            return;
        }
        if PROC_DIRTY.push(key, 0).is_err() {
            // Counted; the flag is cleared so the entity's next event queues it again.
            count_failure(failure::DIRTY_QUEUE_FULL);
            atomic_clear_bits(flags_ptr, proc_flags::DIRTY);
        }
    }
}

/// Creates the entry of a process the probes had not seen (it predates them, or its entry was
/// evicted), reading everything from its leader, and sends it as `kind`.
#[inline(always)]
fn first_seen<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    key: &ProcKey,
    leader: u64,
    kind: u16,
    now: u64,
) -> Option<*mut ProcState> {
    let fresh = ProcState {
        start_ns: key.start_ns,
        flags: proc_flags::FIRST_SEEN_RUNNING,
        ..ProcState::default()
    };
    if !proc_put(cfg, key, &fresh) {
        return None;
    }
    let e = proc_get(cfg, key)?;
    // SAFETY: `e` points to the value just inserted.
    unsafe {
        sample_into(e, leader, now);
        publish(ctx, cfg, kind, key, e, now);
    }
    Some(e)
}

/// `sched_process_fork(parent, child)`: a new thread group.
pub fn on_fork<C: EbpfContext>(ctx: &C, child: u64) -> Option<()> {
    let cfg = config()?;
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    let pid: u32 = read_at(child, off!(task_pid))?;
    let tgid: u32 = read_at(child, off!(task_tgid))?;
    if pid != tgid || !tgid_passes(&cfg, tgid) {
        return None; // a new thread, not a new process
    }
    count_event(event_count::FORKS);
    let now = unsafe { bpf_ktime_get_ns() };
    let start_ns: u64 = read_at(child, off!(task_start_time))?;
    let key = ProcKey {
        tgid,
        pad: 0,
        start_ns,
    };
    let fresh = ProcState {
        start_ns,
        ..ProcState::default()
    };
    if !proc_put(&cfg, &key, &fresh) {
        return None;
    }
    if cfg.skip_cmdline == 0 {
        inherit_cmdline(&key);
    }
    let e = proc_get(&cfg, &key)?;
    // SAFETY: `e` points to the value just inserted.
    unsafe {
        sample_into(e, child, now);
        publish(ctx, &cfg, kind::PROC_FORK, &key, e, now);
    }
    Some(())
}

/// A forked child shares its parent's arguments until it execs (`/proc/PID/cmdline` of a fork
/// shows the parent's): copies the parent's `PROC_CMDLINE` entry, if it has one, to `child`.
/// The tracepoint runs in the parent (`current`).
#[inline(never)]
fn inherit_cmdline(child: &ProcKey) {
    let current = unsafe { bpf_get_current_task() };
    let Some((parent, _)) = proc_key_of(current) else {
        return;
    };
    // SAFETY: the values are only read, and copied by the helper.
    let found = unsafe {
        PROC_CMDLINE
            .get(&parent)
            .or_else(|| PROC_CMDLINE.get(&ProcKey::seeded_cmdline(parent.tgid)))
    };
    if let Some(cmdline) = found {
        let _ = PROC_CMDLINE.insert(child, cmdline, 0);
    }
}

/// Stores the command line of the process that just exec'd (`leader` is `current`, so its
/// arguments are readable user memory): up to [`CMDLINE_LEN`] bytes of `mm->arg_start ..
/// arg_end`, NUL-separated as in `/proc/PID/cmdline`.
#[inline(never)]
fn capture_cmdline(key: &ProcKey, leader: u64) {
    let Some(scratch) = CMDLINE_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let mm: u64 = read_at(leader, off!(task_mm)).unwrap_or(0);
    let start: u64 = read_at(mm, off!(mm_arg_start)).unwrap_or(0);
    let end: u64 = read_at(mm, off!(mm_arg_end)).unwrap_or(0);
    let total = end.saturating_sub(start);
    // SAFETY: `scratch` points to this CPU's map value.
    unsafe {
        (*scratch).flags = 0;
        (*scratch).len = 0;
        if start == 0 || total == 0 {
            (*scratch).flags = cmdline_flags::READ_FAILED;
        } else {
            let n: u32 = if total >= CMDLINE_LEN as u64 {
                CMDLINE_LEN as u32
            } else {
                (total as u32) & (CMDLINE_LEN as u32 - 1)
            };
            if total > CMDLINE_LEN as u64 {
                (*scratch).flags = cmdline_flags::TRUNCATED;
            }
            let r = aya_ebpf::helpers::generated::bpf_probe_read_user(
                core::ptr::addr_of_mut!((*scratch).bytes).cast(),
                n,
                start as *const core::ffi::c_void,
            );
            if r == 0 {
                (*scratch).len = n;
            } else {
                (*scratch).flags = cmdline_flags::READ_FAILED;
            }
        }
        let _ = PROC_CMDLINE.insert(key, &*scratch, 0);
    }
}

/// `sched_process_exec(p, old_pid, bprm)`: after exec `p` is the group leader, with the new
/// program's comm and credentials.
pub fn on_exec<C: EbpfContext>(ctx: &C, task: u64) -> Option<()> {
    let cfg = config()?;
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    let (key, leader) = proc_key_of(task)?;
    if !tgid_passes(&cfg, key.tgid) {
        return None;
    }
    count_event(event_count::EXECS);
    if cfg.skip_cmdline == 0 {
        capture_cmdline(&key, leader);
    }
    let now = unsafe { bpf_ktime_get_ns() };
    match proc_get(&cfg, &key) {
        // SAFETY: pointer into a live map value.
        Some(e) => unsafe {
            atomic_clear_bits(core::ptr::addr_of_mut!((*e).flags), proc_flags::DIRTY);
            sample_into(e, leader, now);
            publish(ctx, &cfg, kind::PROC_EXEC, &key, e, now);
        },
        None => {
            first_seen(ctx, &cfg, &key, leader, kind::PROC_EXEC, now)?;
        }
    }
    Some(())
}

/// `sched_process_exit(p, ...)`: fires per thread; the process is dying when the thread
/// group's `signal->live` count has dropped to zero. The exit is recorded here (time, code) and
/// sent at that thread's final context switch, when its on-CPU time is final.
pub fn on_exit<C: EbpfContext>(ctx: &C, task: u64) -> Option<()> {
    let cfg = config()?;
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    let signal: u64 = read_at(task, off!(task_signal))?;
    let live: i32 = read_at(signal, off!(signal_live))?;
    if live != 0 {
        return None; // other threads of the group are still alive
    }
    let (key, leader) = proc_key_of(task)?;
    if !tgid_passes(&cfg, key.tgid) {
        return None;
    }
    // The /proc command line of a process that predates the probes dies with it.
    let _ = PROC_CMDLINE.remove(&ProcKey::seeded_cmdline(key.tgid));
    let now = unsafe { bpf_ktime_get_ns() };
    let e = match proc_get(&cfg, &key) {
        Some(e) => e,
        None => first_seen(ctx, &cfg, &key, leader, kind::PROC_FIRST_SEEN, now)?,
    };
    let exit_code: u32 = read_at(task, off!(task_exit_code))?;
    let tid: u32 = read_at(task, off!(task_pid))?;
    // SAFETY: pointer into a live map value.
    unsafe {
        let flags = (*e).flags;
        if flags & (proc_flags::EXITING | proc_flags::EXITED) != 0 {
            return None;
        }
        count_event(event_count::EXITS);
        (*e).exit_ns = now;
        (*e).exit_code = exit_code;
        (*e).exit_tid = tid;
        // Queued too, so that the flush completes the exit should the final switch be missed.
        mark_dirty(&key, e, proc_flags::EXITING);
    }
    mark_children_for_reparent(&cfg, task);
    Some(())
}

/// The children of a dying process get a new parent once it is gone: mark them so the flush
/// re-reads their ppid (after the kernel has reparented them).
#[inline(always)]
fn mark_children_for_reparent(cfg: &ProbeConfig, task: u64) {
    let head = task + off!(task_children) as u64;
    let sibling_offset = off!(task_sibling) as u64;
    let Some(mut node) = read_at::<u64>(head, 0) else {
        return;
    };
    for _ in 0..MAX_CHILDREN_WALKED {
        if node == head || node == 0 {
            return;
        }
        let child = node - sibling_offset;
        if let Some((key, _)) = proc_key_of(child) {
            if let Some(e) = proc_get(cfg, &key) {
                // SAFETY: pointer into a live map value.
                unsafe { mark_dirty(&key, e, proc_flags::REPARENT_PENDING) };
            }
        }
        match read_at::<u64>(node, 0) {
            Some(next) => node = next,
            None => return,
        }
    }
}

/// Completes an exit: final on-CPU time and task state, then the exit record.
///
/// # Safety
/// `e` must point to a live state-map value.
#[inline(always)]
unsafe fn finish_exit<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    key: &ProcKey,
    e: *mut ProcState,
    leader: u64,
    now: u64,
) {
    unsafe {
        let flags_ptr = core::ptr::addr_of_mut!((*e).flags);
        let old = atomic_set_bits(flags_ptr, proc_flags::EXITED);
        if old & proc_flags::EXITED != 0 {
            return;
        }
        atomic_clear_bits(flags_ptr, proc_flags::EXITING | proc_flags::DIRTY);
        sample_into(e, leader, now);
        publish(ctx, cfg, kind::PROC_EXIT, key, e, now);
        if (*e).exit_state == EXIT_ZOMBIE {
            // Watched by the flush until the parent reaps it (task state Z → X).
            mark_dirty(key, e, 0);
        }
    }
}

/// `sched_switch(preempt, prev, next, prev_state)`: `prev` ran; its process has fresh on-CPU
/// time. A dying thread's final switch completes its process's exit.
pub fn on_switch<C: EbpfContext>(ctx: &C, prev: u64, prev_state: u32) -> Option<()> {
    let cfg = config()?;
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    // `prev` is a `tp_btf` argument: its identity is read by plain loads (the hot path of
    // every context switch; the rare first-seen and exit paths keep their probe reads).
    let (key, leader) = proc_key_by::<Btf>(prev)?;
    if key.tgid == 0 || !tgid_passes(&cfg, key.tgid) {
        return None; // the idle task
    }
    match proc_get(&cfg, &key) {
        // SAFETY: pointer into a live map value.
        Some(e) => unsafe {
            let flags = core::ptr::read_volatile(core::ptr::addr_of!((*e).flags));
            if flags & proc_flags::EXITED != 0 {
                return None;
            }
            if prev_state & TASK_DEAD != 0 && flags & proc_flags::EXITING != 0 {
                let tid: u32 = read_at(prev, off!(task_pid))?;
                if tid == (*e).exit_tid {
                    let now = bpf_ktime_get_ns();
                    finish_exit(ctx, &cfg, &key, e, leader, now);
                    return Some(());
                }
            }
            mark_dirty(&key, e, 0);
        },
        None => {
            let now = unsafe { bpf_ktime_get_ns() };
            first_seen(ctx, &cfg, &key, leader, kind::PROC_FIRST_SEEN, now)?;
        }
    }
    Some(())
}

/// `task_rename(task, comm)`: a new name for the process when `task` is its leader. Marked
/// dirty only: the flush reads the new `comm` once the kernel has stored it.
pub fn on_rename(task: u64) -> Option<()> {
    let cfg = config()?;
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    let pid: u32 = read_at(task, off!(task_pid))?;
    let tgid: u32 = read_at(task, off!(task_tgid))?;
    if pid != tgid || !tgid_passes(&cfg, tgid) {
        return None; // a thread's name, not the process's
    }
    let (key, _) = proc_key_of(task)?;
    let e = proc_get(&cfg, &key)?;
    // SAFETY: pointer into a live map value.
    unsafe { mark_dirty(&key, e, 0) };
    Some(())
}

/// Flush program, run pinned to each CPU: the process running there gets its on-CPU time
/// refreshed even if it never leaves the CPU.
pub fn sample_current<C: EbpfContext>(ctx: &C, cfg: &ProbeConfig) -> Option<()> {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == 0 || !tgid_passes(cfg, tgid) {
        return None;
    }
    // SAFETY: the helper only returns the current task's address.
    let task = unsafe { bpf_get_current_task() };
    let (key, leader) = proc_key_of(task)?;
    match proc_get(cfg, &key) {
        // SAFETY: pointer into a live map value.
        Some(e) => unsafe { mark_dirty(&key, e, 0) },
        None => {
            let now = unsafe { bpf_ktime_get_ns() };
            first_seen(ctx, cfg, &key, leader, kind::PROC_FIRST_SEEN, now)?;
        }
    }
    Some(())
}

/// What the flush did with one dirty key.
pub enum Drained {
    /// Handled (refreshed, or nothing to do).
    Done,
    /// Put back for a later cycle.
    Requeued,
    /// The key was put back earlier in this cycle: everything older has been seen.
    Wrapped,
}

/// Puts a key back into the dirty queue for the next flush cycle.
///
/// # Safety
/// `e` must point to a live state-map value.
#[inline(always)]
unsafe fn requeue(key: &ProcKey, e: *mut ProcState, cycle: u32, extra: u32) -> Drained {
    unsafe {
        (*e).retry_cycle = cycle;
        atomic_set_bits(
            core::ptr::addr_of_mut!((*e).flags),
            proc_flags::DIRTY | extra,
        );
        if PROC_DIRTY.push(key, 0).is_err() {
            count_failure(failure::DIRTY_QUEUE_FULL);
            atomic_clear_bits(core::ptr::addr_of_mut!((*e).flags), proc_flags::DIRTY);
        }
    }
    Drained::Requeued
}

/// An exit whose final switch was not seen this long after `exit_ns` is completed by the flush.
const EXIT_FINISH_GRACE_NS: u64 = 1_000_000_000;

/// Flush program: one key from the processes dirty queue.
pub fn drain_one<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    key: &ProcKey,
    cycle: u32,
    now: u64,
) -> Drained {
    let Some(e) = proc_get(cfg, key) else {
        return Drained::Done; // reaped meanwhile
    };
    // SAFETY: pointer into a live map value.
    unsafe {
        let flags_ptr = core::ptr::addr_of_mut!((*e).flags);
        if (*e).retry_cycle == cycle && core::ptr::read_volatile(flags_ptr) & proc_flags::DIRTY != 0
        {
            let _ = PROC_DIRTY.push(key, 0);
            return Drained::Wrapped;
        }
        let old = atomic_clear_bits(flags_ptr, proc_flags::DIRTY);
        if old & proc_flags::DIRTY == 0 {
            return Drained::Done; // a duplicate of a key already handled
        }
        let leader = validated_leader(key, (*e).task_addr);
        if old & proc_flags::EXITED != 0 {
            // Zombie watch: only the task state can still change (Z → X when reaped). A
            // leader that is gone (freed, reused) was reaped.
            let exit_state: u32 = match leader {
                Some(l) => read_maybe_stale(l, off!(task_exit_state)).unwrap_or(0),
                None => 0,
            };
            if exit_state == EXIT_ZOMBIE {
                return requeue(key, e, cycle, 0);
            }
            if leader.is_none() {
                (*e).exit_state = probe_common::EXIT_DEAD;
                (*e).sampled_ns = now;
            } else {
                (*e).exit_state = exit_state;
            }
            publish(ctx, cfg, kind::PROC_REFRESH, key, e, now);
            return Drained::Done;
        }
        let Some(leader) = leader else {
            return Drained::Done; // the task is gone and its exit was not seen
        };
        if old & proc_flags::EXITING != 0 {
            if now.saturating_sub((*e).exit_ns) < EXIT_FINISH_GRACE_NS {
                return requeue(key, e, cycle, 0);
            }
            finish_exit(ctx, cfg, key, e, leader, now);
            return Drained::Done;
        }
        let mut result = Drained::Done;
        if old & proc_flags::REPARENT_PENDING != 0 {
            let parent: u64 = read_at(leader, off!(task_real_parent)).unwrap_or(0);
            let parent_flags: u32 = read_at(parent, off!(task_flags)).unwrap_or(0);
            if parent_flags & PF_EXITING != 0 {
                // Not reparented yet: look again next cycle (refresh the rest now).
                result = requeue(key, e, cycle, proc_flags::REPARENT_PENDING);
            } else {
                atomic_clear_bits(flags_ptr, proc_flags::REPARENT_PENDING);
            }
        }
        if sample_into(e, leader, now) {
            publish(ctx, cfg, kind::PROC_REFRESH, key, e, now);
        }
        result
    }
}
