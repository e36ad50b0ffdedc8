//! `dump --replay DIR`: the same output as `dump`, from a recording: the tables as of `--at`,
//! or every row of `--from .. --to` with its last state in the range. One more line follows
//! the stats: the replay's own figures (`{"replay": {...}}`, or `# replay: …`). Damaged
//! ranges met are named on stderr and in that line; the readable rest is printed. While a
//! `serve --record` holds the recording, the replay goes through its socket.

use std::{io::Write, path::Path};

use bpftop_ordered::recording::{
    key::format_time,
    realtime_ns,
    source::{Moment, ReplaySource},
    time_arg::parse_time,
};

use crate::{
    cli::{DumpArgs, Format},
    dump::print_output,
};

/// Runs `dump --replay DIR`; returns the exit code: 0; 1 when the recording does not open
/// (missing, not a recording, damaged beyond reading, held by a `record` without socket), has
/// nothing at that time, or a damaged range was met (the rest is still printed); 2 for a time
/// that does not parse; 3 without access to the socket of the collector recording it.
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
    let replayed = ReplaySource::open(dir).and_then(|source| match from {
        Some(from) => source.rows_between(from, to),
        None => source.state_at(at),
    });
    let moment = match replayed {
        Ok(moment) => moment,
        Err(error) => {
            eprintln!("bpftop-ordered: {}: {}", dir.display(), error.message);
            return Ok(error.code);
        }
    };
    let modes = args.modes();
    if let Some(missing) = modes.iter().find(|m| !moment.run.modes.contains(m)) {
        eprintln!(
            "bpftop-ordered: the recording has no {missing} mode (it has {})",
            moment
                .run
                .modes
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(",")
        );
        return Ok(1);
    }
    for damage in &moment.damage {
        eprintln!("bpftop-ordered: {}: {damage}", dir.display());
    }
    let code = print_output(&moment.store, &modes, args)?;
    let end_ns = moment.span_ns.1;
    let asked = Asked {
        at: from.is_none().then(|| at.unwrap_or(end_ns)),
        from,
        to: from.map(|_| to.unwrap_or(end_ns)),
    };
    print_replay(dir, &moment, asked, args)?;
    Ok(if moment.damage.is_empty() { code } else { 1 })
}

struct Asked {
    at: Option<u64>,
    from: Option<u64>,
    to: Option<u64>,
}

/// The replay's line: the times asked, the keyframe it started from, the last record applied,
/// records read, the run, damaged ranges, the socket it went through.
fn print_replay(dir: &Path, moment: &Moment, asked: Asked, args: &DumpArgs) -> std::io::Result<()> {
    let text = |t: Option<u64>| t.map(format_time);
    let via = moment.via.as_ref().map(|p| p.display().to_string());
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
                "keyframe": format_time(moment.keyframe.ts_ns),
                "last_record": format_time(moment.last.ts_ns),
                "first_record": format_time(moment.span_ns.0),
                "records": moment.records,
                "epoch": moment.run.epoch,
                "collector_pid": moment.run.pid,
                "realtime_offset_ns": moment.run.realtime_offset_ns,
                "damaged": moment.damage,
                "via_socket": via,
            }})
        ),
        Format::Table => writeln!(
            out,
            "# replay: dir={} at={} from={} to={} keyframe={} last_record={} records={} epoch={:#x} damaged={} via_socket={}",
            dir.display(),
            text(asked.at).unwrap_or_default(),
            text(asked.from).unwrap_or_default(),
            text(asked.to).unwrap_or_default(),
            format_time(moment.keyframe.ts_ns),
            format_time(moment.last.ts_ns),
            moment.records,
            moment.run.epoch,
            moment.damage.len(),
            via.unwrap_or_default()
        ),
    }
}
