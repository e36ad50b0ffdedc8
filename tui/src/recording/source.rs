//! Where a replay reads from: the recording's store itself, or — while a recorder holds it
//! (fjall opens a store in one process at a time) — the recorder's collector, through its
//! socket ([`crate::remote::protocol::ViewerMessage::Replay`]). `serve --record` leaves the
//! socket's path in [`SOCKET_NOTE`] in the recording's directory for that.

use std::{
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use bridge::{store::TableStore, table::Retention};

use super::{
    key::RecordKey,
    reader::{Recording, Replayed},
    record::RunInfo,
    store::OpenError,
};
use crate::remote::{
    assembly::{Assembled, SnapshotAssembler},
    frame::{decode, write_message, FrameReader},
    protocol::{CollectorMessage, ViewerMessage, PROTOCOL_VERSION},
    socket_path,
};

/// The file in a recording's directory that names the socket of the collector recording it.
pub const SOCKET_NOTE: &str = "serve.socket";

/// A replay through the socket must be answered within this.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// Replayed tables, from either source.
pub struct Moment {
    /// The tables.
    pub store: TableStore,
    /// The run that recorded them.
    pub run: RunInfo,
    /// The keyframe the replay started from.
    pub keyframe: RecordKey,
    /// The last record applied.
    pub last: RecordKey,
    /// The recording's first and last record, wall-clock ns.
    pub span_ns: (u64, u64),
    /// Records read.
    pub records: u64,
    /// Damaged ranges met, as text.
    pub damage: Vec<String>,
    /// The collector's socket when the replay went through it.
    pub via: Option<PathBuf>,
}

/// Why nothing was replayed: the message and the exit code (1; 3 without access to the
/// recorder's socket).
#[derive(Debug)]
pub struct SourceError {
    /// What to print.
    pub message: String,
    /// The exit code.
    pub code: i32,
}

impl SourceError {
    fn new(message: impl Into<String>) -> SourceError {
        SourceError {
            message: message.into(),
            code: 1,
        }
    }
}

/// A recording to replay.
pub enum ReplaySource {
    /// Opened here.
    Local(Recording),
    /// Held by the collector on this socket.
    Remote(PathBuf),
}

impl ReplaySource {
    /// Opens the recording in `dir`, or finds the collector recording it.
    pub fn open(dir: &Path) -> Result<ReplaySource, SourceError> {
        match Recording::open(dir) {
            Ok(recording) => Ok(ReplaySource::Local(recording)),
            Err(error @ OpenError::Locked(_)) => {
                match std::fs::read_to_string(dir.join(SOCKET_NOTE)) {
                    Ok(socket) => Ok(ReplaySource::Remote(PathBuf::from(socket.trim()))),
                    Err(_) => Err(SourceError::new(format!(
                        "{error}; the process holding it has no socket to replay through \
                         (`record` has none: stop it, or record with `serve --record`)"
                    ))),
                }
            }
            Err(error) => Err(SourceError::new(error.to_string())),
        }
    }

    /// The tables as of `at_ns` (`None`: the last record).
    pub fn state_at(&self, at_ns: Option<u64>) -> Result<Moment, SourceError> {
        self.replay(at_ns, None, None)
    }

    /// Every row of `from_ns .. to_ns` (`None`: the last record).
    pub fn rows_between(&self, from_ns: u64, to_ns: Option<u64>) -> Result<Moment, SourceError> {
        self.replay(None, Some(from_ns), to_ns)
    }

    fn replay(
        &self,
        at_ns: Option<u64>,
        from_ns: Option<u64>,
        to_ns: Option<u64>,
    ) -> Result<Moment, SourceError> {
        match self {
            ReplaySource::Local(recording) => {
                let (first, last) = recording
                    .span()
                    .ok_or_else(|| SourceError::new("the recording is empty"))?;
                let replayed = match from_ns {
                    Some(from) => recording.rows_between(from, to_ns.unwrap_or(last.ts_ns)),
                    None => recording.state_at(at_ns.unwrap_or(last.ts_ns)),
                }
                .map_err(|e| SourceError::new(e.to_string()))?;
                Ok(moment(replayed, (first.ts_ns, last.ts_ns)))
            }
            ReplaySource::Remote(socket) => through_socket(socket, at_ns, from_ns, to_ns),
        }
    }
}

fn moment(replayed: Replayed, span_ns: (u64, u64)) -> Moment {
    Moment {
        store: replayed.store,
        run: replayed.run,
        keyframe: replayed.keyframe,
        last: replayed.last,
        span_ns,
        records: replayed.records,
        damage: replayed.damage.iter().map(ToString::to_string).collect(),
        via: None,
    }
}

fn through_socket(
    socket: &Path,
    at_ns: Option<u64>,
    from_ns: Option<u64>,
    to_ns: Option<u64>,
) -> Result<Moment, SourceError> {
    let mut stream: UnixStream = socket_path::connect(socket).map_err(|e| SourceError {
        message: format!("the recording is held by a collector; replaying through it: {e}"),
        code: e.exit_code(),
    })?;
    let lost = |e: String| SourceError::new(format!("replaying through {}: {e}", socket.display()));
    let io = |e: std::io::Error| lost(e.to_string());
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io)?;
    write_message(
        &mut stream,
        &ViewerMessage::Hello {
            proto: PROTOCOL_VERSION,
        },
    )
    .map_err(io)?;
    let mut reader = FrameReader::new(stream.try_clone().map_err(io)?);
    let limit = Instant::now() + ANSWER_LIMIT;
    let mut next = || -> Result<CollectorMessage, SourceError> {
        loop {
            if Instant::now() > limit {
                return Err(lost(format!("no answer within {ANSWER_LIMIT:?}")));
            }
            if let Some(frame) = reader.read_frame().map_err(io)? {
                return decode(&frame).map_err(|e| lost(e.to_string()));
            }
        }
    };
    let mut assembler = match next()? {
        CollectorMessage::HelloAck {
            start_tolerance_ns,
            retention_age_ns,
            retention_rows,
            ..
        } => SnapshotAssembler::new(
            start_tolerance_ns,
            Retention {
                max_age_ns: retention_age_ns,
                max_finished: retention_rows.min(usize::MAX as u64) as usize,
            },
        ),
        CollectorMessage::Refused { message } => return Err(lost(format!("refused: {message}"))),
        other => return Err(lost(format!("answered {other:?}"))),
    };
    write_message(
        &mut stream,
        &ViewerMessage::Replay {
            at_ns,
            from_ns,
            to_ns,
        },
    )
    .map_err(io)?;
    let mut store = None;
    loop {
        match assembler.handle(next()?).map_err(lost)? {
            Assembled::Pending => {}
            Assembled::Complete(new, _) => store = Some(*new),
            Assembled::Other(CollectorMessage::ReplayDone(summary)) => {
                let store = store.ok_or_else(|| lost("a summary without tables".into()))?;
                let key = |(ts_ns, seq)| RecordKey { ts_ns, seq };
                return Ok(Moment {
                    store,
                    run: summary.run,
                    keyframe: key(summary.keyframe),
                    last: key(summary.last),
                    span_ns: summary.span_ns,
                    records: summary.records,
                    damage: summary.damage,
                    via: Some(socket.to_path_buf()),
                });
            }
            Assembled::Other(CollectorMessage::ReplayFailed { message }) => {
                return Err(SourceError::new(message))
            }
            Assembled::Other(CollectorMessage::Heartbeat { .. }) => {}
            Assembled::Other(other) => return Err(lost(format!("answered {other:?}"))),
        }
    }
}
