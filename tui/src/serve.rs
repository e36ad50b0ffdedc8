//! `bpftop-ordered serve`: the collector. Binds the socket first (so a second `serve` or a
//! missing group fails before any probe loads), then runs every requested mode headless and
//! serves the store to `--attach` viewers until SIGTERM / SIGINT / SIGHUP.

use std::{os::unix::fs::DirBuilderExt, path::PathBuf, time::Duration};

use bpftop_ordered::recording::{
    source::SOCKET_NOTE,
    store::{RecordRetention, RecordStore},
};
use bpftop_ordered::remote::{
    collector::{self, CollectorOptions, RecordOptions},
    socket_path::{self, BindError, DEFAULT_GROUP},
};
use bridge::contract::ModeKind;
use clap::{builder::TypedValueParser, Args};

use crate::{
    cli::{BridgeArgs, DEFAULT_SOCKET},
    headless,
};

/// `serve` arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The socket to listen on; its directory is created (0750) when missing.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// The group that may attach: owner group of the socket (0660) and of a directory serve
    /// creates.
    #[arg(long, default_value = DEFAULT_GROUP)]
    pub group: String,
    /// Modes to run and serve, comma separated (each viewer switches between them itself).
    #[arg(long, value_delimiter = ',', default_value = "ring,perf,poll")]
    pub modes: Vec<ModeKind>,
    /// Deltas a viewer's queue holds; a viewer that falls this far behind is resynced by a
    /// snapshot (counted on both sides).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000).map(|v| v as usize))]
    pub viewer_queue: usize,
    /// A viewer that sends nothing (it pings every second) or takes no frame for this long is
    /// disconnected (humantime: 500ms, 30s; 100ms..1h).
    #[arg(long, default_value = "30s", value_parser = parse_viewer_timeout)]
    pub viewer_timeout: Duration,
    /// Record every change of every table, and a keyframe every --record-keyframe-every, in
    /// this directory (created when missing; a directory holding anything but a recording is
    /// refused). `bpftop-ordered replay DIR` / `dump --replay DIR` read it back.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Retention of the recording.
    #[command(flatten)]
    pub recording: RecordingArgs,
    /// Bridge settings.
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

/// `record` arguments: a collector that only records (no socket).
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The recording's directory (created when missing; a directory holding anything but a
    /// recording is refused).
    pub dir: PathBuf,
    /// Modes to run and record, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "ring,perf,poll")]
    pub modes: Vec<ModeKind>,
    /// Retention of the recording.
    #[command(flatten)]
    pub recording: RecordingArgs,
    /// Bridge settings.
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

/// Retention and keyframes of a recording (`serve --record`, `record`).
#[derive(Debug, Args, Clone)]
pub struct RecordingArgs {
    /// The recording's size on disk at most (bytes; K/M/G/T suffixes are powers of 1024),
    /// journal included; the oldest records go first.
    #[arg(long, default_value = "1G", value_parser = parse_bytes)]
    pub record_max_bytes: u64,
    /// Records older than this go (humantime: 24h, 7days; 1m..365days).
    #[arg(long, default_value = "24h", value_parser = parse_max_age)]
    pub record_max_age: Duration,
    /// A full-table keyframe is recorded this often: a replay seeks to the one before the time
    /// and applies at most this much of changes (humantime: 10s; 1s..1h).
    #[arg(long, default_value = "10s", value_parser = parse_keyframe_every)]
    pub record_keyframe_every: Duration,
}

/// Bytes with an optional binary suffix (`1G` = 2^30); at least 64 MiB + 8 MiB (the journal
/// and one table).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => return Err(format!("{s}: unknown unit {other:?} (e.g. 512M, 1G)")),
    };
    let value: u64 = digits.parse().map_err(|e| format!("{s}: {e}"))?;
    let bytes = value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{s} is too large"))?;
    if bytes < 72 << 20 {
        return Err(format!(
            "{s} is too small: at least 72M (the store's 64M journal and one 8M table)"
        ));
    }
    Ok(bytes)
}

fn parse_max_age(s: &str) -> Result<Duration, String> {
    bounded(
        s,
        Duration::from_secs(60),
        Duration::from_secs(365 * 86_400),
        "1m..365days",
    )
}

fn parse_keyframe_every(s: &str) -> Result<Duration, String> {
    bounded(
        s,
        Duration::from_secs(1),
        Duration::from_secs(3600),
        "1s..1h",
    )
}

fn bounded(s: &str, min: Duration, max: Duration, range: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if value < min || value > max {
        return Err(format!("{s} is out of range ({range})"));
    }
    Ok(value)
}

impl RecordingArgs {
    /// Opens the store in `dir` to record into; the problem is printed and exit code 1
    /// returned when it does not open (held by another recorder, not a recording, damaged).
    fn open(&self, dir: &std::path::Path) -> Result<RecordOptions, i32> {
        if !dir.exists() {
            // Command lines can hold secrets: a new recording is root's alone (others replay
            // through the collector's socket, as its group allows).
            let created = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
            if let Err(error) = created {
                eprintln!("bpftop-ordered: cannot create {}: {error}", dir.display());
                return Err(1);
            }
        }
        let retention = RecordRetention {
            max_bytes: self.record_max_bytes,
            max_age: self.record_max_age,
        };
        match RecordStore::open_for_writing(dir, retention) {
            Ok(store) => Ok(RecordOptions {
                store,
                keyframe_every: self.record_keyframe_every,
            }),
            Err(error) => {
                eprintln!("bpftop-ordered: cannot record: {error}");
                Err(1)
            }
        }
    }
}

fn unique(modes: &[ModeKind]) -> Vec<ModeKind> {
    let mut unique: Vec<ModeKind> = Vec::new();
    for mode in modes {
        if !unique.contains(mode) {
            unique.push(*mode);
        }
    }
    unique
}

/// Runs `record`; returns the process exit code (0 after a stop signal, 1 when the store does
/// not open, 3 without privileges for the probes).
pub fn run_record(args: &RecordArgs) -> anyhow::Result<i32> {
    let record = match args.recording.open(&args.dir) {
        Ok(record) => record,
        Err(code) => return Ok(code),
    };
    let session = match headless::start_session(args.bridge.session_config(unique(&args.modes))) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    collector::run(
        session,
        None,
        CollectorOptions {
            queue_frames: 1,
            viewer_timeout: Duration::from_secs(30),
        },
        Some(record),
    )
}

fn parse_viewer_timeout(s: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if value < Duration::from_millis(100) || value > Duration::from_secs(3600) {
        return Err(format!("{s} is out of range (100ms..1h, e.g. 30s)"));
    }
    Ok(value)
}

/// Runs `serve`; returns the process exit code (0 after a stop signal, 1 when already
/// running, the socket cannot be set up or the `--record` store does not open, 2 when the
/// group does not exist, 3 without privileges for the probes).
pub fn run(args: &ServeArgs) -> anyhow::Result<i32> {
    let Some(gid) = socket_path::group_id(&args.group) else {
        let error = BindError::NoGroup(args.group.clone());
        eprintln!("bpftop-ordered: {error}");
        return Ok(error.exit_code());
    };
    let listener = match socket_path::bind(&args.socket, gid) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("bpftop-ordered: {error}");
            return Ok(error.exit_code());
        }
    };
    // From here on the socket is ours: remove it however serve ends.
    let _socket = RemoveOnDrop(args.socket.clone());
    let record = match &args.record {
        Some(dir) => match args.recording.open(dir) {
            Ok(record) => Some(record),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    // Replays of the recording while it is held go through this socket.
    let _note = args.record.as_ref().map(|dir| {
        let note = dir.join(SOCKET_NOTE);
        let socket = std::path::absolute(&args.socket).unwrap_or_else(|_| args.socket.clone());
        if let Err(error) = std::fs::write(&note, socket.as_os_str().as_encoded_bytes()) {
            eprintln!(
                "bpftop-ordered serve: cannot write {}: {error}",
                note.display()
            );
        }
        RemoveOnDrop(note)
    });
    let modes = unique(&args.modes);
    let session = match headless::start_session(args.bridge.session_config(modes)) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    eprintln!(
        "bpftop-ordered serve: listening on {} (group {})",
        args.socket.display(),
        args.group
    );
    collector::run(
        session,
        Some(listener),
        CollectorOptions {
            queue_frames: args.viewer_queue,
            viewer_timeout: args.viewer_timeout,
        },
        record,
    )
}

/// Removes a file (the socket, the recording's socket note) when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
