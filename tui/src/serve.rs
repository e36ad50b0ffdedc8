//! `bpftop-ordered serve`: the collector. Binds the socket first (so a second `serve` or a
//! missing group fails before any probe loads), then runs every requested mode headless and
//! serves the store to `--attach` viewers until SIGTERM / SIGINT / SIGHUP.

use std::{path::PathBuf, time::Duration};

use bpftop_ordered::remote::{
    collector::{self, CollectorOptions, PrometheusOptions},
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
    /// Serve Prometheus series at http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks a
    /// free one, printed at start). Host aggregates only: no pid or 4-tuple labels.
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<std::net::SocketAddr>,
    /// Process names exported one series each in `bpftop_processes_by_comm` (those with the
    /// most processes); the rest are summed under comm="other". 0..100.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=100).map(|v| v as usize))]
    pub prometheus_top_k: usize,
    /// Bridge settings.
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

fn parse_viewer_timeout(s: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if value < Duration::from_millis(100) || value > Duration::from_secs(3600) {
        return Err(format!("{s} is out of range (100ms..1h, e.g. 30s)"));
    }
    Ok(value)
}

/// Runs `serve`; returns the process exit code (0 after a stop signal, 1 when already
/// running or the socket or the `--prometheus` address cannot be set up, 2 when the group does not exist, 3 without
/// privileges for the probes).
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
    let prometheus = match args.prometheus {
        None => None,
        Some(address) => match std::net::TcpListener::bind(address) {
            Ok(listener) => Some(PrometheusOptions {
                listener,
                top_k: args.prometheus_top_k,
            }),
            Err(error) => {
                eprintln!("bpftop-ordered: cannot serve /metrics on {address}: {error}");
                return Ok(1);
            }
        },
    };
    let mut modes: Vec<ModeKind> = Vec::new();
    for mode in &args.modes {
        if !modes.contains(mode) {
            modes.push(*mode);
        }
    }
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
        listener,
        CollectorOptions {
            queue_frames: args.viewer_queue,
            viewer_timeout: args.viewer_timeout,
            prometheus,
        },
    )
}

/// Removes the socket file when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
