//! Rows, batches and table images to and from their wire form ([`super::protocol`]). Decoding
//! checks every length: bytes of the wrong size are an error, never a panic, and any bytes of
//! the right size are a valid kernel layout (plain data).

use bridge::{
    contract::{KernelState, ModeBatch, ModeMessage, Resync, Row, RowChange, RowOrigin},
    store::ModeImage,
};
use probe_common::{Cmdline, ProcKey};
use zerocopy::IntoBytes;

use super::protocol::{StoreOp, WireChange, WireResync, WireRow, WireTables};

/// A wire value that does not decode to a row.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} is {got} bytes, expected {expected}")]
pub struct WireRowError {
    /// Which field.
    pub what: &'static str,
    /// Its length.
    pub got: usize,
    /// The layout's size.
    pub expected: usize,
}

/// A row in its wire form.
pub fn row_to_wire<S: KernelState>(row: &Row<S>) -> WireRow {
    WireRow {
        key: row.key.as_bytes().to_vec(),
        state: row.state.as_bytes().to_vec(),
        seq: row.seq,
        changed_ns: row.changed_ns,
        procfs: row.origin == RowOrigin::Procfs,
    }
}

/// The row a wire row stands for.
pub fn row_from_wire<S: KernelState>(wire: &WireRow) -> Result<Row<S>, WireRowError> {
    let key = plain_from_bytes::<S::Key>("key", &wire.key)?;
    let state = plain_from_bytes::<S::Info>("state", &wire.state)?;
    Ok(Row {
        key,
        state,
        seq: wire.seq,
        changed_ns: wire.changed_ns,
        origin: if wire.procfs {
            RowOrigin::Procfs
        } else {
            RowOrigin::Kernel
        },
    })
}

/// A kernel layout read from exactly its size of bytes.
pub fn plain_from_bytes<T: bridge::contract::Plain>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, WireRowError> {
    T::read_from_bytes(bytes).map_err(|_| WireRowError {
        what,
        got: bytes.len(),
        expected: std::mem::size_of::<T>(),
    })
}

fn rows_to_wire<S: KernelState>(rows: &[Row<S>]) -> Vec<WireRow> {
    rows.iter().map(row_to_wire).collect()
}

/// Decodes every wire row of one table.
pub fn rows_from_wire<S: KernelState>(rows: &[WireRow]) -> Result<Vec<Row<S>>, WireRowError> {
    rows.iter().map(row_from_wire).collect()
}

/// The store operation a mode message is, in its wire form (borrowing the message: the
/// collector encodes it, then applies it).
pub fn message_to_op(message: &ModeMessage) -> StoreOp {
    match message {
        ModeMessage::Batch(batch) => StoreOp::Batch {
            mode: batch.mode,
            changes: batch
                .changes
                .iter()
                .map(|change| match change {
                    RowChange::Process(row) => WireChange::Process(row_to_wire(row)),
                    RowChange::Connection(row) => WireChange::Connection(row_to_wire(row)),
                })
                .collect(),
            resync: batch.resync.as_ref().map(|resync| WireResync {
                entries: WireTables {
                    processes: rows_to_wire(&resync.processes),
                    connections: rows_to_wire(&resync.connections),
                },
                complete: resync.complete,
                initial: resync.initial,
            }),
            counters: batch.counters.clone(),
        },
        ModeMessage::Failed { mode, error } => StoreOp::Failed {
            mode: *mode,
            error: error.clone(),
        },
        ModeMessage::CommandLines(entries) => StoreOp::CommandLines {
            entries: entries
                .iter()
                .map(|(key, line)| (key.as_bytes().to_vec(), line.as_bytes().to_vec()))
                .collect(),
        },
    }
}

/// What a replica does with one store operation.
// Moved once per delta, as `ModeMessage` is (see there): boxing would add an allocation
// per delta to save copying a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ReplicaOp {
    /// Handle this message (`TableStore::handle`).
    Message(ModeMessage),
    /// Reap at this time (`TableStore::reap`).
    Reap(u64),
}

/// The replica's operation for a wire operation.
pub fn op_from_wire(op: StoreOp) -> Result<ReplicaOp, WireRowError> {
    Ok(match op {
        StoreOp::Batch {
            mode,
            changes,
            resync,
            counters,
        } => {
            let changes = changes
                .iter()
                .map(|change| {
                    Ok(match change {
                        WireChange::Process(row) => RowChange::Process(row_from_wire(row)?),
                        WireChange::Connection(row) => RowChange::Connection(row_from_wire(row)?),
                    })
                })
                .collect::<Result<_, WireRowError>>()?;
            let resync = match resync {
                None => None,
                Some(wire) => Some(Resync {
                    processes: rows_from_wire(&wire.entries.processes)?,
                    connections: rows_from_wire(&wire.entries.connections)?,
                    complete: wire.complete,
                    initial: wire.initial,
                }),
            };
            ReplicaOp::Message(ModeMessage::Batch(ModeBatch {
                mode,
                changes,
                resync,
                counters,
            }))
        }
        StoreOp::Failed { mode, error } => ReplicaOp::Message(ModeMessage::Failed { mode, error }),
        StoreOp::CommandLines { entries } => ReplicaOp::Message(ModeMessage::CommandLines(
            entries
                .iter()
                .map(|(key, line)| {
                    Ok((
                        plain_from_bytes::<ProcKey>("key", key)?,
                        plain_from_bytes::<Cmdline>("cmdline", line)?,
                    ))
                })
                .collect::<Result<_, WireRowError>>()?,
        )),
        StoreOp::Reap { now_ns } => ReplicaOp::Reap(now_ns),
    })
}

/// An image's rows in wire form, in chunks of at most `chunk_rows` rows of each table.
pub fn image_chunks(image: &ModeImage, chunk_rows: usize) -> Vec<WireTables> {
    let chunk_rows = chunk_rows.max(1);
    let mut processes = image.processes.chunks(chunk_rows);
    let mut connections = image.connections.chunks(chunk_rows);
    let mut chunks = Vec::new();
    loop {
        let (p, c) = (processes.next(), connections.next());
        if p.is_none() && c.is_none() {
            return chunks;
        }
        chunks.push(WireTables {
            processes: p.map(rows_to_wire).unwrap_or_default(),
            connections: c.map(rows_to_wire).unwrap_or_default(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge::contract::{ConnectionRow, ModeKind, ProcessRow};
    use probe_common::{ConnKey, ConnState, ProcKey, ProcState};

    #[test]
    fn rows_cross_the_wire_bit_for_bit() {
        let process = ProcessRow::from_record(
            ProcKey::new(42, 7),
            ProcState {
                exit_code: 7,
                ..Default::default()
            },
            3,
            11,
        );
        let back: ProcessRow = row_from_wire(&row_to_wire(&process)).unwrap();
        assert_eq!(back, process);
        let connection = ConnectionRow::from_procfs(
            ConnKey::ipv4([127, 0, 0, 1], 1, [127, 0, 0, 1], 2),
            ConnState::default(),
        );
        let back: ConnectionRow = row_from_wire(&row_to_wire(&connection)).unwrap();
        assert_eq!(back, connection);
    }

    #[test]
    fn a_short_key_is_an_error() {
        let mut wire = row_to_wire(&ProcessRow::from_procfs(
            ProcKey::new(1, 1),
            ProcState::default(),
        ));
        wire.key.pop();
        let error = row_from_wire::<ProcState>(&wire).unwrap_err();
        assert_eq!(error.what, "key");
        assert!(op_from_wire(StoreOp::Batch {
            mode: ModeKind::Ring,
            changes: vec![WireChange::Process(wire)],
            resync: None,
            counters: Default::default(),
        })
        .is_err());
    }

    #[test]
    fn command_lines_cross_the_wire() {
        let mut line = Cmdline::default();
        line.bytes[..9].copy_from_slice(b"sleep\x009\x00\x00");
        line.len = 8;
        let key = ProcKey::new(7, 70);
        let op = message_to_op(&ModeMessage::CommandLines(vec![(key, line)]));
        let ReplicaOp::Message(ModeMessage::CommandLines(back)) = op_from_wire(op).unwrap() else {
            panic!("not command lines")
        };
        assert_eq!(back, vec![(key, line)]);
        let short = StoreOp::CommandLines {
            entries: vec![(key.as_bytes().to_vec(), vec![0; 3])],
        };
        assert!(op_from_wire(short).is_err());
    }

    #[test]
    fn images_chunk_both_tables() {
        let image = ModeImage {
            processes: (0..5)
                .map(|i| ProcessRow::from_procfs(ProcKey::new(i, 0), ProcState::default()))
                .collect(),
            ..Default::default()
        };
        let chunks = image_chunks(&image, 2);
        assert_eq!(
            chunks
                .iter()
                .map(|t| (t.processes.len(), t.connections.len()))
                .collect::<Vec<_>>(),
            [(2, 0), (2, 0), (1, 0)]
        );
        assert!(image_chunks(&ModeImage::default(), 2).is_empty());
    }
}
