//! `dump --attach`: the same output as `dump`, from the tables of a running `serve`: wait for
//! the snapshot, apply --duration of deltas, print. One more line
//! follows the stats: the link's own figures (`{"attach": {...}}`, or `# attach: …`).

use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use bpftop_ordered::remote::replica::{apply_to, LinkError, Replica, ReplicaEvent};
use bridge::{store::TableStore, table::Retention};

use crate::{
    cli::{DumpArgs, Format},
    dump::print_output,
};

/// The snapshot must come within this.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// Runs `dump --attach PATH`; returns the exit code (3 without access to the socket, 1 when
/// no collector answers or the link breaks).
pub fn run(path: &Path, args: &DumpArgs) -> anyhow::Result<i32> {
    match collect(path, args) {
        Ok(code) => Ok(code),
        Err(LinkError::Connect(error)) => {
            eprintln!("bpftop-ordered: {error}");
            Ok(error.exit_code())
        }
        Err(error @ LinkError::Lost(_)) => {
            eprintln!("bpftop-ordered: attached to {}: {error}", path.display());
            Ok(1)
        }
    }
}

fn collect(path: &Path, args: &DumpArgs) -> Result<i32, LinkError> {
    let mut replica = Replica::connect(path, None)?;
    let modes = args.modes();
    if let Some(missing) = modes.iter().find(|m| !replica.info().modes.contains(m)) {
        eprintln!(
            "bpftop-ordered: the collector does not run {missing} mode (it runs {})",
            replica
                .info()
                .modes
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(",")
        );
        return Ok(1);
    }
    let mut store = TableStore::new(0, Retention::default());
    let mut snapshot = false;
    let limit = Instant::now() + ANSWER_LIMIT;
    while !snapshot {
        if Instant::now() > limit {
            return Err(LinkError::Lost("no snapshot came".into()));
        }
        if let Some(event) = replica.next_event()? {
            snapshot |= matches!(event, ReplicaEvent::Replaced(_));
            apply_to(&mut store, event);
        }
    }
    let until = Instant::now() + args.duration;
    while Instant::now() < until {
        if let Some(event) = replica.next_event()? {
            apply_to(&mut store, event);
        }
    }
    let code = print_output(&store, &modes, args).map_err(|e| LinkError::Lost(e.to_string()))?;
    print_link(&replica, args).map_err(|e| LinkError::Lost(e.to_string()))?;
    Ok(code)
}

/// The link's line: collector pid and epoch, position, snapshots, resyncs, deltas.
fn print_link(replica: &Replica, args: &DumpArgs) -> std::io::Result<()> {
    let counters = replica.counters();
    let info = replica.info();
    let seq = replica.position().map_or(0, |p| p.seq);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({ "attach": {
                "socket": replica.path().display().to_string(),
                "collector_pid": info.pid,
                "epoch": info.epoch,
                "seq": seq,
                "snapshots": counters.snapshots,
                "resyncs": counters.resyncs,
                "deltas": counters.deltas,
            }})
        ),
        Format::Table => writeln!(
            out,
            "# attach: socket={} collector_pid={} epoch={:#x} seq={seq} snapshots={} resyncs={} deltas={}",
            replica.path().display(),
            info.pid,
            info.epoch,
            counters.snapshots,
            counters.resyncs,
            counters.deltas
        ),
    }
}
