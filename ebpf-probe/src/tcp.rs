//! The connections table: TCP state changes, sends and receives keep `CONN_STATE` current.
//!
//! A connection is keyed by family + 4-tuple. The local port is `skc_num` while the socket
//! holds its port and `inet_sport` after the kernel released it (closing sockets release the
//! port before the CLOSE transition is traced). Byte counts are the kernel's own lifetime TCP
//! counters (what `ss -ti` shows), reduced to payload, read whenever a record is made, so a
//! connection that predates the probes still shows its whole history.
//!
//! Owner (`pid`, `comm` of the process, as `ss -p` shows it): the connect() caller, the
//! listen() caller, or — for an accepted socket — the listener's owner until its first send or
//! receive names the process that uses it. Transitions in softirq context never set an owner.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        generated::{bpf_get_current_task_btf, bpf_skc_to_tcp_sock},
    },
    EbpfContext,
};
use probe_common::{
    conn_flags, failure, kind, table, ConnKey, ConnState, ProbeConfig, AF_INET, AF_INET6, COMM_LEN,
    TCP_CLOSE, TCP_LISTEN, TCP_SYN_RECV, TCP_SYN_SENT,
};

use crate::{
    atomic::{atomic_clear_bits, atomic_set_bits},
    emit::{config, count_failure, emit_conn, poll_seq},
    kread::{off, offsets_valid, read_maybe_stale, Btf, Mem, Stale},
    maps::{ConnOwner, CONNECTING_OWNER, CONN_DIRTY, CONN_STATE, CONN_STATE_LRU},
    process::Drained,
};

#[inline(always)]
fn port_passes(cfg: &ProbeConfig, key: &ConnKey) -> bool {
    cfg.filter_port == 0 || cfg.filter_port == key.sport || cfg.filter_port == key.dport
}

#[inline(always)]
fn conn_get(cfg: &ProbeConfig, key: &ConnKey) -> Option<*mut ConnState> {
    if cfg.use_lru_maps != 0 {
        CONN_STATE_LRU.get_ptr_mut(key)
    } else {
        CONN_STATE.get_ptr_mut(key)
    }
}

#[inline(always)]
fn conn_put(cfg: &ProbeConfig, key: &ConnKey, state: &ConnState) -> bool {
    let result = if cfg.use_lru_maps != 0 {
        CONN_STATE_LRU.insert(key, state, 0)
    } else {
        CONN_STATE.insert(key, state, 0)
    };
    if result.is_err() {
        count_failure(failure::CONN_MAP_FULL);
        return false;
    }
    true
}

/// The TCP socket behind a `tp_btf` socket argument, as a pointer the verifier types as
/// `struct tcp_sock` (so the `tcp_sock` fields can be loaded directly); 0 for any other socket.
#[inline(always)]
fn tcp_sock_of(sk: u64) -> u64 {
    if sk == 0 {
        return 0;
    }
    // SAFETY: `sk` is a BTF `struct sock *` argument; the helper checks the socket's kind.
    unsafe { bpf_skc_to_tcp_sock(sk as *mut core::ffi::c_void) as u64 }
}

/// The local port: the bound port, or (once the kernel released it) the port the socket used.
#[inline(always)]
fn local_port<M: Mem>(sk: u64) -> u16 {
    let bound: u16 = M::read(sk, off!(skc_num)).unwrap_or(0);
    if bound != 0 {
        return bound;
    }
    u16::from_be(M::read::<u16>(sk, off!(inet_sport)).unwrap_or(0))
}

/// Family and 4-tuple of a TCP socket; `None` for other families or an unknown local port.
#[inline(always)]
fn conn_key_of<M: Mem>(sk: u64) -> Option<ConnKey> {
    let family: u16 = M::read(sk, off!(skc_family))?;
    let sport = local_port::<M>(sk);
    if sport == 0 {
        return None;
    }
    let dport_be: u16 = M::read(sk, off!(skc_dport))?;
    let mut key = ConnKey {
        family,
        sport,
        dport: u16::from_be(dport_be),
        pad: 0,
        saddr: [0; 16],
        daddr: [0; 16],
    };
    if family == AF_INET {
        let s: [u8; 4] = M::read(sk, off!(skc_rcv_saddr))?;
        let d: [u8; 4] = M::read(sk, off!(skc_daddr))?;
        key.saddr[..4].copy_from_slice(&s);
        key.daddr[..4].copy_from_slice(&d);
    } else if family == AF_INET6 {
        key.saddr = M::read(sk, off!(skc_v6_rcv_saddr))?;
        key.daddr = M::read(sk, off!(skc_v6_daddr))?;
    } else {
        return None;
    }
    Some(key)
}

/// The socket remembered in an entry, if it still is the socket of `key` (a freed and reused
/// `struct sock` has another 4-tuple).
#[inline(always)]
fn validated_sock(key: &ConnKey, sk: u64) -> Option<u64> {
    let family: u16 = read_maybe_stale(sk, off!(skc_family))?;
    let dport_be: u16 = read_maybe_stale(sk, off!(skc_dport))?;
    let sport_be: u16 = read_maybe_stale(sk, off!(inet_sport))?;
    let daddr: [u8; 4] = if family == AF_INET6 {
        read_maybe_stale(sk, off!(skc_v6_daddr))?
    } else {
        read_maybe_stale(sk, off!(skc_daddr))?
    };
    (family == key.family
        && u16::from_be(dport_be) == key.dport
        && u16::from_be(sport_be) == key.sport
        && daddr == [key.daddr[0], key.daddr[1], key.daddr[2], key.daddr[3]])
    .then_some(sk)
}

/// The calling process as an owner: tgid and its group leader's comm (what `ss -p` names).
#[inline(always)]
fn current_owner(now: u64) -> ConnOwner {
    // SAFETY: the helper only returns the current task, as a BTF-typed pointer (allowed in the
    // `tp_btf` programs that call this), so its fields are plain loads.
    let task = unsafe { bpf_get_current_task_btf() } as u64;
    let leader: u64 = Btf::read(task, off!(task_group_leader)).unwrap_or(0);
    ConnOwner {
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        pad: 0,
        since_ns: now,
        comm: Btf::read(leader, off!(task_comm)).unwrap_or([0; COMM_LEN]),
    }
}

/// Reads the kernel's lifetime payload counters into `*e`; true when they changed. Sent:
/// payload transmitted once (`bytes_sent − bytes_retrans`, no SYN/FIN); received: sequence
/// space received less the FIN (`SOCK_DONE`) — so both equal what the applications wrote and
/// read on a loss-free connection.
///
/// # Safety
/// `e` must point to a live state-map value or a stack value.
#[inline(always)]
unsafe fn read_counters<M: Mem>(e: *mut ConnState, sk: u64) -> bool {
    let sent: u64 = M::read(sk, off!(tcp_bytes_sent)).unwrap_or(0);
    let retrans: u64 = M::read(sk, off!(tcp_bytes_retrans)).unwrap_or(0);
    let mut received: u64 = M::read(sk, off!(tcp_bytes_received)).unwrap_or(0);
    let flags: u64 = M::read(sk, off!(skc_flags)).unwrap_or(0);
    if flags & (1u64 << (off!(sock_done_bit) & 63)) != 0 && received > 0 {
        received -= 1; // the peer's FIN takes one sequence number
    }
    unsafe {
        let sent = sent.saturating_sub(retrans).max((*e).bytes_sent);
        let received = received.max((*e).bytes_received);
        let changed = (*e).bytes_sent != sent || (*e).bytes_received != received;
        (*e).bytes_sent = sent;
        (*e).bytes_received = received;
        changed
    }
}

/// True while sent data is not yet acknowledged (`snd_una` behind `write_seq`): the acked
/// counter will still move without a send of its own.
#[inline(always)]
fn unacked<M: Mem>(sk: u64) -> bool {
    let una: u32 = M::read(sk, off!(tcp_snd_una)).unwrap_or(0);
    let write: u32 = M::read(sk, off!(tcp_write_seq)).unwrap_or(0);
    una != write
}

/// Stamps the change for poll, records the emission time, sends the entry to ring/perf.
///
/// # Safety
/// `e` must point to a live state-map value.
#[inline(always)]
unsafe fn publish<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    kind: u16,
    key: &ConnKey,
    e: *mut ConnState,
    now: u64,
) {
    unsafe {
        if let Some(seq) = poll_seq(cfg, table::CONNECTIONS) {
            (*e).poll_seq = seq;
        }
        (*e).last_emit_ns = now;
        emit_conn(ctx, cfg, kind, key, &*e);
    }
}

/// Marks the entry dirty and queues the key on the first marking (see the process version).
///
/// # Safety
/// `e` must point to a live state-map value.
#[inline(always)]
unsafe fn mark_dirty(key: &ConnKey, e: *mut ConnState) {
    unsafe {
        let flags_ptr = core::ptr::addr_of_mut!((*e).flags);
        if core::ptr::read_volatile(flags_ptr) & conn_flags::DIRTY != 0 {
            return;
        }
        let old = atomic_set_bits(flags_ptr, conn_flags::DIRTY);
        if old & conn_flags::DIRTY != 0 {
            return;
        }
        if CONN_DIRTY.push(key, 0).is_err() {
            // Counted; the flag is cleared so the connection's next event queues it again.
            count_failure(failure::DIRTY_QUEUE_FULL);
            atomic_clear_bits(flags_ptr, conn_flags::DIRTY);
        }
    }
}

/// The owner of the listener an accepted socket came from (same local address and port, or
/// the wildcard address).
#[inline(always)]
fn listener_owner(cfg: &ProbeConfig, key: &ConnKey) -> Option<(u32, [u8; COMM_LEN])> {
    let mut listener = ConnKey {
        family: key.family,
        sport: key.sport,
        dport: 0,
        pad: 0,
        saddr: key.saddr,
        daddr: [0; 16],
    };
    let e = match conn_get(cfg, &listener) {
        Some(e) => e,
        None => {
            listener.saddr = [0; 16];
            conn_get(cfg, &listener)?
        }
    };
    // SAFETY: pointer into a live map value; copied out.
    let (pid, comm, flags) = unsafe { ((*e).pid, (*e).comm, (*e).flags) };
    (flags & conn_flags::OWNER_KNOWN != 0 && flags & conn_flags::CLOSED == 0).then_some((pid, comm))
}

#[inline(always)]
fn state_bit(state: u32) -> u32 {
    if state < 32 {
        1 << state
    } else {
        0
    }
}

/// `inet_sock_set_state(sk, oldstate, newstate)`; `sk` is the BTF-typed argument of a
/// `tp_btf` program, so the socket is read by plain loads ([`Btf`]).
#[inline(always)]
pub fn on_set_state<C: EbpfContext>(
    ctx: &C,
    sk: u64,
    old_state: u32,
    new_state: u32,
) -> Option<()> {
    let cfg = config()?;
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    let sk = tcp_sock_of(sk);
    if sk == 0 {
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    if new_state == TCP_SYN_SENT {
        // connect(): process context, but the local port is not chosen yet. Remember the
        // owner by socket address; the next transition carries the full 4-tuple.
        let owner = current_owner(now);
        if cfg.filter_tgid == 0 || cfg.filter_tgid == owner.pid {
            let _ = CONNECTING_OWNER.insert(sk, owner, 0);
        } else {
            // Never leave an earlier socket's owner at this address for this one's exit.
            let _ = CONNECTING_OWNER.remove(sk);
        }
        return None;
    }
    // Only the transition out of SYN_SENT may use the connect() owner: an entry left by a
    // socket at the same address must never be given to an accepted or listening socket.
    // Every socket leaves SYN_SENT by a traced transition (to ESTABLISHED or CLOSE), which
    // deletes the entry here, so no delete is needed when the socket is destroyed; the LRU
    // bounds what a socket in SYN_SENT while the probes detached leaves behind.
    let connecting = if old_state == TCP_SYN_SENT {
        // SAFETY: pointer into a live map value; copied out.
        let owner = CONNECTING_OWNER.get_ptr(sk).map(|o| unsafe { *o });
        let _ = CONNECTING_OWNER.remove(sk);
        owner
    } else {
        None
    };
    let Some(key) = conn_key_of::<Btf>(sk) else {
        count_failure(failure::CONN_UNKEYED);
        return None;
    };
    if !port_passes(&cfg, &key) {
        return None;
    }
    let existing = match conn_get(&cfg, &key) {
        // SAFETY: pointer into a live map value.
        Some(e) if unsafe { (*e).flags } & conn_flags::CLOSED == 0 => Some(e),
        // Closed already: a repeated CLOSE is nothing new; any other transition is a new
        // connection reusing the 4-tuple.
        Some(_) if new_state == TCP_CLOSE => return None,
        _ => None,
    };
    let e = match existing {
        Some(e) => e,
        None => {
            // A new connection (a closed entry with the same 4-tuple was a previous one).
            let mut fresh = ConnState {
                start_ns: now,
                sock_addr: sk,
                ..ConnState::default()
            };
            if let Some(owner) = connecting {
                fresh.pid = owner.pid;
                fresh.comm = owner.comm;
                fresh.start_ns = owner.since_ns;
                fresh.flags = conn_flags::OWNER_KNOWN;
                fresh.states_seen_mask = state_bit(TCP_SYN_SENT);
            } else if old_state == TCP_LISTEN && new_state == TCP_SYN_RECV {
                // An accepted socket, cloned from its listener (hence the LISTEN old state).
                if let Some((pid, comm)) = listener_owner(&cfg, &key) {
                    fresh.pid = pid;
                    fresh.comm = comm;
                    fresh.flags = conn_flags::OWNER_KNOWN | conn_flags::OWNER_FROM_LISTENER;
                }
            } else if new_state == TCP_LISTEN {
                let owner = current_owner(now); // listen(): process context
                fresh.pid = owner.pid;
                fresh.comm = owner.comm;
                fresh.flags = conn_flags::OWNER_KNOWN;
            } else {
                // Established before the probes attached: start and owner unknown here.
                fresh.flags = conn_flags::START_UNKNOWN;
            }
            if fresh.pid != 0 && cfg.filter_tgid != 0 && fresh.pid != cfg.filter_tgid {
                return None;
            }
            // The entry is completed on the stack and published from there: one map update,
            // no lookup of the value just inserted.
            let e = core::ptr::addr_of_mut!(fresh);
            // SAFETY: a stack value.
            unsafe {
                apply_transition::<Btf>(e, sk, old_state, new_state, now);
                stamp(&cfg, e, now);
            }
            if !conn_put(&cfg, &key, &fresh) {
                return None;
            }
            emit_conn(ctx, &cfg, kind::CONN_STATE, &key, &fresh);
            return Some(());
        }
    };
    // SAFETY: pointer into a live map value.
    unsafe {
        apply_transition::<Btf>(e, sk, old_state, new_state, now);
        let flags_ptr = core::ptr::addr_of_mut!((*e).flags);
        if new_state == TCP_CLOSE {
            // A close is sent at once, with everything still pending.
            atomic_clear_bits(flags_ptr, conn_flags::DIRTY | conn_flags::PENDING);
            atomic_set_bits(flags_ptr, conn_flags::CLOSED);
            publish(ctx, &cfg, kind::CONN_STATE, &key, e, now);
        } else {
            // Neither an open nor a close (ESTABLISHED of an accepted socket, FIN_WAIT1/2,
            // CLOSE_WAIT, LAST_ACK, CLOSING): coalesced into the flush, which sends the entry
            // within one flush period — or the close sends it first. A connection's open and
            // close stay immediate; a storm of short connections sends two records per socket.
            atomic_set_bits(flags_ptr, conn_flags::PENDING);
            mark_dirty(&key, e);
        }
    }
    Some(())
}

/// What a state change writes into an entry: the state, the states seen, the socket, the
/// counters and (at CLOSE) the end time and the `CLOSED` flag — set plainly here; a live map
/// value also gets the flag atomically (see the caller).
///
/// # Safety
/// `e` must point to a live state-map value or a stack value.
#[inline(always)]
unsafe fn apply_transition<M: Mem>(
    e: *mut ConnState,
    sk: u64,
    old_state: u32,
    new_state: u32,
    now: u64,
) {
    unsafe {
        // An accepted socket reports its listener's LISTEN as the old state; only a real
        // listener leaves LISTEN (for CLOSE).
        let mut seen = state_bit(new_state);
        if old_state != TCP_LISTEN || new_state == TCP_CLOSE {
            seen |= state_bit(old_state);
        }
        (*e).states_seen_mask |= seen;
        (*e).tcp_state = new_state;
        (*e).sock_addr = sk;
        read_counters::<M>(e, sk);
        if new_state == TCP_CLOSE {
            (*e).end_ns = now;
        }
    }
}

/// A stack entry about to be inserted: `CLOSED` if it is closing, and the poll stamp and
/// emission time that [`publish`] gives a live entry.
///
/// # Safety
/// `e` must point to a stack value.
#[inline(always)]
unsafe fn stamp(cfg: &ProbeConfig, e: *mut ConnState, now: u64) {
    unsafe {
        if (*e).tcp_state == TCP_CLOSE {
            (*e).flags |= conn_flags::CLOSED;
        }
        if let Some(seq) = poll_seq(cfg, table::CONNECTIONS) {
            (*e).poll_seq = seq;
        }
        (*e).last_emit_ns = now;
    }
}

/// `sock_send_length` / `sock_recv_length(sk, ret, flags)`: the application moved data. The
/// byte counters are refreshed by the flush; an ownerless (or listener-owned) socket gets the
/// calling process as its owner at once. `sk` is a `tp_btf` argument, read by plain loads.
#[inline(always)]
pub fn on_io<C: EbpfContext>(ctx: &C, sk: u64, ret: i32) -> Option<()> {
    if ret <= 0 {
        return None;
    }
    let cfg = config()?;
    if !offsets_valid() || cfg.modes_enabled == 0 {
        return None;
    }
    // Read from the socket each time: plain loads cost less than a socket → key cache (a
    // hash lookup here, an insert at the first change, a delete at destroy).
    let sk = tcp_sock_of(sk);
    if sk == 0 {
        return None;
    }
    let key = conn_key_of::<Btf>(sk)?;
    if !port_passes(&cfg, &key) {
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    match conn_get(&cfg, &key) {
        // SAFETY: pointer into a live map value.
        Some(e) => unsafe {
            let flags = core::ptr::read_volatile(core::ptr::addr_of!((*e).flags));
            if flags & conn_flags::CLOSED != 0 {
                return None; // its final counters were read at CLOSE
            }
            if flags & conn_flags::OWNER_KNOWN == 0 || flags & conn_flags::OWNER_FROM_LISTENER != 0
            {
                let owner = current_owner(now);
                if cfg.filter_tgid != 0 && owner.pid != cfg.filter_tgid {
                    return None;
                }
                // The owner is sent by the flush (coalesced, like a state change).
                (*e).pid = owner.pid;
                (*e).comm = owner.comm;
                atomic_set_bits(
                    core::ptr::addr_of_mut!((*e).flags),
                    conn_flags::OWNER_KNOWN | conn_flags::PENDING,
                );
                atomic_clear_bits(
                    core::ptr::addr_of_mut!((*e).flags),
                    conn_flags::OWNER_FROM_LISTENER,
                );
                (*e).sock_addr = sk;
            }
            mark_dirty(&key, e);
        },
        None => {
            // A connection that predates the probes, first seen in process context.
            let tcp_state: u8 = Btf::read(sk, off!(skc_state))?;
            if tcp_state as u32 == TCP_CLOSE || tcp_state as u32 == TCP_LISTEN {
                return None; // never create an entry for a socket that is already gone
            }
            let owner = current_owner(now);
            if cfg.filter_tgid != 0 && owner.pid != cfg.filter_tgid {
                return None;
            }
            let mut fresh = ConnState {
                pid: owner.pid,
                comm: owner.comm,
                tcp_state: tcp_state as u32,
                states_seen_mask: state_bit(tcp_state as u32),
                flags: conn_flags::OWNER_KNOWN | conn_flags::START_UNKNOWN,
                start_ns: now,
                sock_addr: sk,
                ..ConnState::default()
            };
            // SAFETY: a stack value.
            unsafe { read_counters::<Btf>(&mut fresh, sk) };
            if !conn_put(&cfg, &key, &fresh) {
                return None;
            }
            let e = conn_get(&cfg, &key)?;
            // SAFETY: pointer into a live map value.
            unsafe {
                publish(ctx, &cfg, kind::CONN_REFRESH, &key, e, now);
                if unacked::<Btf>(sk) {
                    mark_dirty(&key, e);
                }
            }
        }
    }
    Some(())
}

/// Flush program: one key from the connections dirty queue.
pub fn drain_one<C: EbpfContext>(
    ctx: &C,
    cfg: &ProbeConfig,
    key: &ConnKey,
    cycle: u32,
    now: u64,
) -> Drained {
    let Some(e) = conn_get(cfg, key) else {
        return Drained::Done;
    };
    // SAFETY: pointer into a live map value.
    unsafe {
        let flags_ptr = core::ptr::addr_of_mut!((*e).flags);
        if (*e).retry_cycle == cycle && core::ptr::read_volatile(flags_ptr) & conn_flags::DIRTY != 0
        {
            let _ = CONN_DIRTY.push(key, 0);
            return Drained::Wrapped;
        }
        let old = atomic_clear_bits(flags_ptr, conn_flags::DIRTY);
        if old & conn_flags::DIRTY == 0 || old & conn_flags::CLOSED != 0 {
            return Drained::Done;
        }
        // Cleared before the entry is read, so a change made meanwhile is sent now or by the
        // next flush (its transition sets the bit again and requeues the key).
        let pending = atomic_clear_bits(flags_ptr, conn_flags::PENDING) & conn_flags::PENDING != 0;
        // A socket that is gone closed: its CLOSE carried the final counters.
        let sk = validated_sock(key, (*e).sock_addr);
        let counters_changed = sk.is_some_and(|sk| read_counters::<Stale>(e, sk));
        if pending || counters_changed {
            publish(ctx, cfg, kind::CONN_REFRESH, key, e, now);
        }
        let Some(sk) = sk else {
            return Drained::Done;
        };
        if unacked::<Stale>(sk) {
            (*e).retry_cycle = cycle;
            atomic_set_bits(flags_ptr, conn_flags::DIRTY);
            if CONN_DIRTY.push(key, 0).is_err() {
                count_failure(failure::DIRTY_QUEUE_FULL);
                atomic_clear_bits(flags_ptr, conn_flags::DIRTY);
            }
            return Drained::Requeued;
        }
    }
    Drained::Done
}
