//! A viewer's side: a blocking connection to the collector that keeps a replica of its store.
//! The snapshot is assembled into a new [`TableStore`]; each delta is checked to follow the
//! last one (seq + 1) and handed out as the operation the collector's store did, so the
//! replica's tables are the collector's.

use std::{
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bridge::{contract::ModeKind, store::TableStore, table::Retention};

use super::{
    assembly::{Assembled, SnapshotAssembler},
    frame::{decode, write_message, FrameReader, VIEWER_READ_SLICE},
    protocol::{CollectorMessage, Position, ViewerMessage, PROTOCOL_VERSION},
    socket_path::{self, ConnectError},
    wire_rows::ReplicaOp,
};

/// A viewer pings this often (the collector disconnects a silent one).
const PING_EVERY: Duration = Duration::from_secs(1);

/// A collector that sends nothing (not even a heartbeat) this long is taken as gone.
pub const COLLECTOR_SILENCE: Duration = Duration::from_secs(5);

/// What the collector told in its handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorInfo {
    /// The collector's pid.
    pub pid: u32,
    /// Its run.
    pub epoch: u64,
    /// Its modes.
    pub modes: Vec<ModeKind>,
    /// Its probes' notes.
    pub notes: Vec<String>,
}

/// What happened on the connection.
// Moved once per delta, as `ModeMessage` is (see there): boxing would add an allocation
// per delta to save copying a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ReplicaEvent {
    /// A complete snapshot: the replica's new store.
    Replaced(Box<TableStore>),
    /// A delta to apply to the current store.
    Op(ReplicaOp),
    /// The answer to a signal request.
    SignalResult(String),
}

/// This viewer's view of the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Snapshots received (the first, and each resync).
    pub snapshots: u64,
    /// Of those, resyncs after this viewer's queue overflowed (as the collector counts them).
    pub resyncs: u64,
    /// Deltas applied.
    pub deltas: u64,
}

/// Why the connection ended (the viewer may reconnect).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Could not connect, or the handshake failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection broke or the collector stopped speaking.
    #[error("{0}")]
    Lost(String),
}

/// A connected viewer.
pub struct Replica {
    path: PathBuf,
    stream: UnixStream,
    reader: FrameReader<UnixStream>,
    info: CollectorInfo,
    position: Option<Position>,
    assembler: SnapshotAssembler,
    counters: LinkCounters,
    last_ping: Instant,
    last_heard: Instant,
}

impl Replica {
    /// Connects, shakes hands and asks for the stream after `since` (a snapshot when `None`
    /// or when the collector no longer holds those deltas).
    pub fn connect(path: &Path, since: Option<Position>) -> Result<Replica, LinkError> {
        let protocol_error = |reason: String| {
            LinkError::Connect(ConnectError::Protocol {
                path: path.to_path_buf(),
                reason,
            })
        };
        let mut stream = socket_path::connect(path)?;
        let io = |e: std::io::Error| protocol_error(format!("broke off the handshake: {e}"));
        stream
            .set_read_timeout(Some(COLLECTOR_SILENCE))
            .map_err(io)?;
        write_message(
            &mut stream,
            &ViewerMessage::Hello {
                proto: PROTOCOL_VERSION,
            },
        )
        .map_err(io)?;
        let mut reader = FrameReader::new(stream.try_clone().map_err(io)?);
        let frame = reader
            .read_frame()
            .map_err(io)?
            .ok_or_else(|| protocol_error("sent no handshake".into()))?;
        let ack = decode::<CollectorMessage>(&frame)
            .map_err(|e| protocol_error(format!("sent a bad handshake: {e}")))?;
        let (info, retention, start_tolerance_ns) = match ack {
            CollectorMessage::HelloAck {
                proto: PROTOCOL_VERSION,
                epoch,
                modes,
                pid,
                start_tolerance_ns,
                retention_age_ns,
                retention_rows,
                notes,
                ..
            } => (
                CollectorInfo {
                    pid,
                    epoch,
                    modes,
                    notes,
                },
                Retention {
                    max_age_ns: retention_age_ns,
                    max_finished: retention_rows.min(usize::MAX as u64) as usize,
                },
                start_tolerance_ns,
            ),
            CollectorMessage::Refused { message } => {
                return Err(protocol_error(format!("refused: {message}")))
            }
            other => return Err(protocol_error(format!("answered {other:?}"))),
        };
        write_message(&mut stream, &ViewerMessage::Watch { since }).map_err(io)?;
        stream
            .set_read_timeout(Some(VIEWER_READ_SLICE))
            .map_err(io)?;
        let now = Instant::now();
        Ok(Replica {
            path: path.to_path_buf(),
            stream,
            reader,
            info,
            position: since,
            assembler: SnapshotAssembler::new(start_tolerance_ns, retention),
            counters: LinkCounters::default(),
            last_ping: now,
            last_heard: now,
        })
    }

    /// The collector's handshake.
    pub fn info(&self) -> &CollectorInfo {
        &self.info
    }

    /// The socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last delta applied (or the snapshot's position); `None` before the first snapshot.
    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// The link's counters.
    pub fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// Sends a request to the collector.
    pub fn request(&mut self, message: &ViewerMessage) -> Result<(), LinkError> {
        write_message(&mut self.stream, message).map_err(|e| LinkError::Lost(e.to_string()))
    }

    /// The next event, waiting at most about [`VIEWER_READ_SLICE`] (`Ok(None)`: nothing yet).
    /// Pings the collector as due; a collector silent for [`COLLECTOR_SILENCE`] is lost.
    pub fn next_event(&mut self) -> Result<Option<ReplicaEvent>, LinkError> {
        if self.last_ping.elapsed() >= PING_EVERY {
            self.request(&ViewerMessage::Ping)?;
            self.last_ping = Instant::now();
        }
        let frame = match self.reader.read_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) if self.last_heard.elapsed() > COLLECTOR_SILENCE => {
                return Err(LinkError::Lost(format!(
                    "the collector sent nothing for {COLLECTOR_SILENCE:?}"
                )))
            }
            Ok(None) => return Ok(None),
            Err(e) => return Err(LinkError::Lost(format!("connection lost: {e}"))),
        };
        self.last_heard = Instant::now();
        let message = decode::<CollectorMessage>(&frame)
            .map_err(|e| LinkError::Lost(format!("the collector sent {e}")))?;
        self.handle(message)
    }

    fn handle(&mut self, message: CollectorMessage) -> Result<Option<ReplicaEvent>, LinkError> {
        let lost = LinkError::Lost;
        if let CollectorMessage::SnapshotBegin { reason, .. } = &message {
            self.counters.snapshots += 1;
            if reason == "queue overflow" {
                self.counters.resyncs += 1;
            }
        }
        let message = match self.assembler.handle(message).map_err(lost)? {
            Assembled::Pending => return Ok(None),
            Assembled::Complete(store, position) => {
                self.position = Some(position);
                return Ok(Some(ReplicaEvent::Replaced(store)));
            }
            Assembled::Other(message) => message,
        };
        match message {
            CollectorMessage::Delta { seq, op } => {
                let Some(position) = self.position.as_mut() else {
                    return Err(lost("a delta before any snapshot".to_string()));
                };
                if self.assembler.in_snapshot() || seq != position.seq + 1 {
                    return Err(lost(format!(
                        "delta {seq} does not follow {} (resyncing)",
                        position.seq
                    )));
                }
                position.seq = seq;
                self.counters.deltas += 1;
                let op = super::wire_rows::op_from_wire(op)
                    .map_err(|e| lost(format!("bad row: {e}")))?;
                Ok(Some(ReplicaEvent::Op(op)))
            }
            CollectorMessage::Heartbeat { resyncs, .. } => {
                self.counters.resyncs = self.counters.resyncs.max(resyncs);
                Ok(None)
            }
            CollectorMessage::SignalResult { text, .. } => {
                Ok(Some(ReplicaEvent::SignalResult(text)))
            }
            other => Err(lost(format!("unexpected {other:?}"))),
        }
    }
}

/// Applies an event's data to `store`; other events are returned to the caller.
pub fn apply_to(store: &mut TableStore, event: ReplicaEvent) -> Option<ReplicaEvent> {
    match event {
        ReplicaEvent::Replaced(new) => *store = *new,
        ReplicaEvent::Op(ReplicaOp::Message(message)) => store.handle(message),
        ReplicaEvent::Op(ReplicaOp::Reap(now_ns)) => {
            store.reap(now_ns);
        }
        other => return Some(other),
    }
    None
}
