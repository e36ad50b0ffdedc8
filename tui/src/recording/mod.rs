//! Record / replay (`serve --record DIR`, `record DIR`, `replay DIR`, `dump --replay DIR`):
//! every store operation the collector applies, and a full-table keyframe every K seconds,
//! kept in an embedded ordered store (fjall: a pure-Rust LSM tree with LZ4 and FIFO
//! compaction by bytes and age; BENCHMARKS.md "Record / replay" says why this one).
//!
//! The values are the collector's own protocol frames (`docs/protocol.md`): a keyframe is a
//! [`record::Record::Run`] followed by one snapshot (`SnapshotBegin` … `SnapshotEnd`), a
//! change is one `Delta`. Replay is thus the same code as `--attach`: the snapshot is
//! assembled by [`crate::remote::assembly`], the deltas apply with
//! [`crate::remote::wire_rows::op_from_wire`]. The state at wall-clock time T is the nearest
//! keyframe ≤ T plus the deltas up to T.
//!
//! - [`key`]: keys (big-endian wall-clock ns ++ seq) and time text;
//! - [`record`]: values (a format byte, a kind byte, postcard);
//! - [`store`]: opening the store (lock, format check, retention);
//! - [`writer`]: the recorder thread (bounded channel, never blocks the collector);
//! - [`reader`]: the state at a time, the rows of a range, damaged ranges;
//! - [`time_arg`]: `--at` / `--from` / `--to` values (RFC 3339 or `-5m`).

pub mod key;
pub mod reader;
pub mod record;
pub mod salvage;
pub mod source;
pub mod store;
pub mod time_arg;
pub mod writer;

/// CLOCK_REALTIME now, ns since the Unix epoch.
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
