//! The one row type of both tables: a kernel state with its key, version and origin.
//!
//! A row keeps the user-side part of the kernel's raw state ([`RowState`]: the `probe_common`
//! state without its kernel-internal fields) and formats nothing: views format
//! only the rows they show. What differs between processes and connections is said once, by
//! [`KernelState`]; everything generic (tables, resync, poll's diff, the store, views) is
//! written against [`Entity`].

/// Where a row's current content came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOrigin {
    /// A change record or a state-map entry: kernel data.
    Kernel,
    /// Read from /proc at start-up (exists before the probes attached); replaced by kernel data
    /// as soon as the probes see the entity.
    Procfs,
}

/// A plain-old-data layout shared with the kernel: any byte pattern of the right length is a
/// valid value, and the value is its bytes (no padding). Proved by zerocopy's derives on the
/// `probe_common` types, so no unsafe cast is needed to read or write them.
pub trait Plain:
    zerocopy::FromBytes + zerocopy::IntoBytes + zerocopy::Immutable + zerocopy::KnownLayout + Copy
{
}

impl<T> Plain for T where
    T: zerocopy::FromBytes
        + zerocopy::IntoBytes
        + zerocopy::Immutable
        + zerocopy::KnownLayout
        + Copy
{
}

/// What a row keeps of an entity: the user-side part of a kernel state (no kernel address,
/// no flush bookkeeping), a plain layout so it travels as its bytes on the socket and in a
/// recording.
pub trait RowState:
    Plain + Clone + std::fmt::Debug + PartialEq + Eq + Default + Send + 'static
{
    /// CLOCK_MONOTONIC ns when the entity finished (exited / closed), `None` while live.
    fn finished_ns(&self) -> Option<u64>;
    /// When this state replaces `previous` (an older state of the same entity), fills in
    /// what it does not know but `previous` did. Default: nothing.
    fn inherit_unknowns(&mut self, _previous: &Self) {}
}

/// What a state-map value type tells the generic code: its key, its table, when the entity
/// finished, how the kernel versions it, and what of it a row keeps.
pub trait KernelState:
    Plain + Clone + std::fmt::Debug + PartialEq + Default + Send + 'static
{
    /// The entity's identity (the state map's key).
    type Key: Plain + Eq + Ord + std::hash::Hash + std::fmt::Debug + Send + 'static;
    /// What a row keeps of this state ([`KernelState::info`]).
    type Info: RowState;
    /// `probe_common::table::*` of this state's table.
    const TABLE: u8;
    /// The table's name, as on the command line (`processes`, `connections`).
    const TABLE_NAME: &'static str;
    /// CLOCK_MONOTONIC ns when the entity finished (exited / closed), `None` while live: as
    /// its row would say ([`RowState::finished_ns`]).
    fn finished_ns(&self) -> Option<u64> {
        self.info().finished_ns()
    }
    /// The poll sequence number the kernel stamped on the entry's last change.
    fn poll_seq(&self) -> u64;
    /// CLOCK_MONOTONIC ns when the kernel last wrote the entry (its last record).
    fn last_emit_ns(&self) -> u64;
    /// The state without its kernel-internal fields (kernel addresses, flush bookkeeping,
    /// versioning): nothing user space keeps, shows or forwards carries a kernel pointer, and
    /// a row is 32 bytes smaller than the map value.
    fn info(&self) -> Self::Info;
}

/// One row: an entity's kernel state, the change it reflects, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row<S: KernelState> {
    /// Identity of the entity.
    pub key: S::Key,
    /// What the row keeps of the kernel state as of `seq` ([`KernelState::info`]).
    pub state: S::Info,
    /// Sequence number of the change applied last (per mode; 0 for /proc rows).
    pub seq: u64,
    /// CLOCK_MONOTONIC ns of that change (0 when unknown, e.g. /proc rows).
    pub changed_ns: u64,
    /// Kernel data or /proc seed.
    pub origin: RowOrigin,
}

impl<S: KernelState> Row<S> {
    /// A row from a change record: kernel data, versioned by `seq`, changed at `ktime_ns`.
    pub fn from_record(key: S::Key, state: S, seq: u64, ktime_ns: u64) -> Self {
        Row {
            key,
            state: state.info(),
            seq,
            changed_ns: ktime_ns,
            origin: RowOrigin::Kernel,
        }
    }

    /// A row from a state-map entry: kernel data, versioned by `seq`, changed when the entry was
    /// last written.
    pub fn from_state_map(key: S::Key, state: S, seq: u64) -> Self {
        Row {
            key,
            state: state.info(),
            seq,
            changed_ns: state.last_emit_ns(),
            origin: RowOrigin::Kernel,
        }
    }

    /// A row read from /proc at start-up (seq 0: any kernel change replaces it).
    pub fn from_procfs(key: S::Key, state: S) -> Self {
        Row {
            key,
            state: state.info(),
            seq: 0,
            changed_ns: 0,
            origin: RowOrigin::Procfs,
        }
    }
}

/// Something a table can hold: identified by a key, versioned by a sequence number, and
/// possibly finished (exited process / closed connection) and due for reaping.
pub trait Entity: Clone + std::fmt::Debug {
    /// Identity of the entity.
    type Key: Copy + Eq + Ord + std::hash::Hash + std::fmt::Debug;
    /// The row's key.
    fn key(&self) -> Self::Key;
    /// Replaces the row's key (a /proc-seeded row re-keyed to the kernel's identity).
    fn set_key(&mut self, key: Self::Key);
    /// Sequence number of the change the row reflects (per mode; 0 for /proc rows).
    fn seq(&self) -> u64;
    /// CLOCK_MONOTONIC ns of the change the row reflects (0 when unknown).
    fn changed_ns(&self) -> u64;
    /// CLOCK_MONOTONIC ns when the entity finished (exited/closed), `None` while live.
    fn finished_ns(&self) -> Option<u64>;
    /// Kernel data or /proc seed.
    fn origin(&self) -> RowOrigin;
    /// True once the entity exited / closed.
    fn is_finished(&self) -> bool {
        self.finished_ns().is_some()
    }
    /// Called when this row replaces `previous`, an older row of the same entity (see
    /// [`KernelState::inherit_unknowns`]).
    fn inherit_unknowns(&mut self, previous: &Self);
}

impl<S: KernelState> Entity for Row<S> {
    type Key = S::Key;
    fn key(&self) -> S::Key {
        self.key
    }
    fn set_key(&mut self, key: S::Key) {
        self.key = key;
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn changed_ns(&self) -> u64 {
        self.changed_ns
    }
    fn finished_ns(&self) -> Option<u64> {
        self.state.finished_ns()
    }
    fn origin(&self) -> RowOrigin {
        self.origin
    }
    fn inherit_unknowns(&mut self, previous: &Self) {
        self.state.inherit_unknowns(&previous.state);
    }
}

/// Converts a NUL-padded kernel `comm` to text (lossy for non-UTF-8 bytes).
pub fn comm_to_string(comm: &[u8; probe_common::COMM_LEN]) -> String {
    let len = comm
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(probe_common::COMM_LEN);
    String::from_utf8_lossy(&comm[..len]).into_owned()
}
