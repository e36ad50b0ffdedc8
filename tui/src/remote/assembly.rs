//! Assembling a snapshot ([`CollectorMessage::SnapshotBegin`] … [`CollectorMessage::SnapshotEnd`])
//! into a new [`TableStore`]. Shared by a viewer's [`super::replica::Replica`] (frames from
//! the socket) and by replay (`crate::recording`: the same frames, read back from a recording's
//! keyframes), so both rebuild exactly the collector's tables.

use std::collections::HashMap;

use bridge::cmdlines::CommandLine;
use bridge::{
    contract::ModeKind,
    store::{ModeImage, TableStore},
    table::Retention,
};
use probe_common::ProcKey;

use super::{
    protocol::{CollectorMessage, Position},
    wire_rows::{plain_from_bytes, rows_from_wire},
};

struct PendingSnapshot {
    position: Position,
    store: TableStore,
    images: HashMap<ModeKind, ModeImage>,
}

/// What one message did to the assembly.
// Returned once per message; boxing the store would cost nothing, but the enum is moved
// straight into a match.
#[allow(clippy::large_enum_variant)]
pub enum Assembled {
    /// A snapshot message that is not the last one (nothing to do yet).
    Pending,
    /// The last message of a snapshot: the new store, as of `Position`.
    Complete(Box<TableStore>, Position),
    /// Not a snapshot message: handed back.
    Other(CollectorMessage),
}

/// Builds stores from snapshot messages (see the module doc).
pub struct SnapshotAssembler {
    start_tolerance_ns: u64,
    retention: Retention,
    pending: Option<PendingSnapshot>,
}

impl SnapshotAssembler {
    /// An assembler for a collector with this /proc start-time tolerance (ns) and retention.
    pub fn new(start_tolerance_ns: u64, retention: Retention) -> SnapshotAssembler {
        SnapshotAssembler {
            start_tolerance_ns,
            retention,
            pending: None,
        }
    }

    /// A snapshot is being assembled (begun, not ended).
    pub fn in_snapshot(&self) -> bool {
        self.pending.is_some()
    }

    /// Drops a snapshot being assembled.
    pub fn abandon(&mut self) {
        self.pending = None;
    }

    fn pending(&mut self, what: &str) -> Result<&mut PendingSnapshot, String> {
        self.pending
            .as_mut()
            .ok_or_else(|| format!("{what} outside a snapshot"))
    }

    /// Takes one message: snapshot messages are assembled, others handed back. An error is a
    /// message out of place or a row that does not decode.
    pub fn handle(&mut self, message: CollectorMessage) -> Result<Assembled, String> {
        match message {
            CollectorMessage::SnapshotBegin { position, .. } => {
                self.pending = Some(PendingSnapshot {
                    position,
                    store: TableStore::new(self.start_tolerance_ns, self.retention),
                    images: HashMap::new(),
                });
                Ok(Assembled::Pending)
            }
            CollectorMessage::SnapshotRows { mode, rows } => {
                let pending = self.pending("snapshot rows")?;
                let image = pending.images.entry(mode).or_default();
                let bad = |e: super::wire_rows::WireRowError| format!("bad row: {e}");
                image
                    .processes
                    .extend(rows_from_wire(&rows.processes).map_err(bad)?);
                image
                    .connections
                    .extend(rows_from_wire(&rows.connections).map_err(bad)?);
                Ok(Assembled::Pending)
            }
            CollectorMessage::SnapshotMode {
                mode,
                counters,
                active,
                failure,
                applied,
                stale,
            } => {
                let pending = self.pending("a snapshot mode")?;
                let mut image = pending.images.remove(&mode).unwrap_or_default();
                image.counters = counters;
                image.active = active;
                image.failure = failure;
                image.applied = applied;
                image.stale = stale;
                pending.store.restore(mode, image);
                Ok(Assembled::Pending)
            }
            CollectorMessage::SnapshotCmdlines { entries } => {
                let pending = self.pending("snapshot command lines")?;
                let lines = entries
                    .into_iter()
                    .map(|(key, text, truncated)| {
                        let key = plain_from_bytes::<ProcKey>("key", &key)
                            .map_err(|e| format!("bad command line: {e}"))?;
                        let text = text.into();
                        Ok((key, CommandLine { text, truncated }))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                pending.store.restore_cmdlines(lines);
                Ok(Assembled::Pending)
            }
            CollectorMessage::SnapshotEnd => {
                let pending = self
                    .pending
                    .take()
                    .ok_or_else(|| "a snapshot end without a begin".to_string())?;
                Ok(Assembled::Complete(
                    Box::new(pending.store),
                    pending.position,
                ))
            }
            other => Ok(Assembled::Other(other)),
        }
    }
}
