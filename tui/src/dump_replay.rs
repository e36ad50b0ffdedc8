//! `dump --replay DIR`: the same output as `dump`, from a recording: the tables as of `--at`,
//! or every row of `--from .. --to` with its last state in the range. One more line follows
//! the stats: the replay's own figures (`{"replay": {...}}`, or `# replay: …`). Damaged
//! ranges met are named on stderr and in that line; the readable rest is printed.

use std::{io::Write, path::Path};

use bpftop_ordered::recording::{
    key::format_time,
    realtime_ns,
    reader::{Recording, ReplayError, Replayed},
    store::OpenError,
    time_arg::parse_time,
};

use crate::{
    cli::{DumpArgs, Format},
    dump::print_output,
};

/// Runs `dump --replay DIR`; returns the exit code: 0, 1 when the recording does not open
/// (held by a running recorder, missing, not a recording, damaged beyond reading), has
/// nothing at that time or a damaged range was met (the rest is still printed), 2 for a time
/// that does not parse.
pub fn run(dir: &Path, args: &DumpArgs) -> anyhow::Result<i32> {
    let now_ns = realtime_ns();
    let time = |text: &Option<String>| -> Result<Option<u64>, String> {
        text.as_deref().map(|t| parse_time(t, now_ns)).transpose()
    };
    let (at, from, to) = match (time(&args.at), time(&args.from), time(&args.to)) {
        (Ok(at), Ok(from), Ok(to)) => (at, from, to),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("bpftop-ordered: {e}");
            return Ok(2);
        }
    };
    let recording = match Recording::open(dir) {
        Ok(recording) => recording,
        Err(error @ OpenError::Locked(_)) => {
            eprintln!(
                "bpftop-ordered: {error}; stop the recorder, or read a copy of the directory"
            );
            return Ok(1);
        }
        Err(error) => {
            eprintln!("bpftop-ordered: {error}");
            return Ok(1);
        }
    };
    let end_ns = recording.span().map_or(now_ns, |(_, last)| last.ts_ns);
    let replayed = match from {
        Some(from) => recording.rows_between(from, to.unwrap_or(end_ns)),
        None => recording.state_at(at.unwrap_or(end_ns)),
    };
    let replayed = match replayed {
        Ok(replayed) => replayed,
        Err(error @ ReplayError::Open(_))
        | Err(error @ ReplayError::NothingBefore { .. })
        | Err(error @ ReplayError::Unreadable { .. }) => {
            eprintln!("bpftop-ordered: {}: {error}", dir.display());
            return Ok(1);
        }
    };
    let modes = args.modes();
    if let Some(missing) = modes.iter().find(|m| !replayed.run.modes.contains(m)) {
        eprintln!(
            "bpftop-ordered: the recording has no {missing} mode (it has {})",
            replayed
                .run
                .modes
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(",")
        );
        return Ok(1);
    }
    for damage in &replayed.damage {
        eprintln!("bpftop-ordered: {}: {damage}", dir.display());
    }
    let code = print_output(&replayed.store, &modes, args)?;
    let asked = Asked {
        at: from.is_none().then(|| at.unwrap_or(end_ns)),
        from,
        to: from.map(|_| to.unwrap_or(end_ns)),
    };
    print_replay(dir, &replayed, asked, args)?;
    Ok(if replayed.damage.is_empty() { code } else { 1 })
}

struct Asked {
    at: Option<u64>,
    from: Option<u64>,
    to: Option<u64>,
}

/// The replay's line: the times asked, the keyframe it started from, the last record applied,
/// records read, the run, damaged ranges.
fn print_replay(dir: &Path, replayed: &Replayed, asked: Asked, args: &DumpArgs) -> std::io::Result<()> {
    let text = |t: Option<u64>| t.map(format_time);
    let damage: Vec<String> = replayed.damage.iter().map(ToString::to_string).collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::json!({ "replay": {
                "dir": dir.display().to_string(),
                "at": text(asked.at),
                "from": text(asked.from),
                "to": text(asked.to),
                "keyframe": format_time(replayed.keyframe.ts_ns),
                "last_record": format_time(replayed.last.ts_ns),
                "records": replayed.records,
                "epoch": replayed.run.epoch,
                "collector_pid": replayed.run.pid,
                "realtime_offset_ns": replayed.run.realtime_offset_ns,
                "damaged": damage,
            }})
        ),
        Format::Table => writeln!(
            out,
            "# replay: dir={} at={} from={} to={} keyframe={} last_record={} records={} epoch={:#x} damaged={}",
            dir.display(),
            text(asked.at).unwrap_or_default(),
            text(asked.from).unwrap_or_default(),
            text(asked.to).unwrap_or_default(),
            format_time(replayed.keyframe.ts_ns),
            format_time(replayed.last.ts_ns),
            replayed.records,
            replayed.run.epoch,
            damage.len()
        ),
    }
}
