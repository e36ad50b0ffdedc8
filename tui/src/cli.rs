//! Command line (clap): the dashboard by default, `dump`, `bench` and `serve` headless,
//! `completions` for shells.
//! The contract is `docs/contract.md` ("Command line", "Exit codes"); exit code 2 for usage errors is clap's.

use std::{path::PathBuf, time::Duration};

use bridge::{
    contract::ModeKind, defaults, mode::perf::PerfConfig, session::SessionConfig, table::Retention,
};
use clap::{builder::TypedValueParser, Args, Parser, Subcommand, ValueEnum};

/// Live, ordered process and TCP connection tables fed by eBPF.
#[derive(Debug, Parser)]
#[command(name = "bpftop-ordered", version, about)]
pub struct Cli {
    /// Headless subcommands; without one, the interactive dashboard opens.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Mode whose table is visible at start (all modes run).
    #[arg(long, global = false)]
    pub mode: Option<ModeKind>,
    /// Theme: a built-in name or a path to a TOML file.
    #[arg(long)]
    pub theme: Option<String>,
    /// Initial filter (same syntax as the `/` prompt).
    #[arg(long)]
    pub filter: Option<String>,
    /// Config file (default: $XDG_CONFIG_HOME/bpftop-ordered/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Show the tables of a running `serve` instead of loading probes (no privileges needed,
    /// only membership of the socket's group) [default path: /run/bpftop-ordered/bpftop-ordered.sock].
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = DEFAULT_SOCKET)]
    pub attach: Option<PathBuf>,
    /// Bridge settings.
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect for a while, then print one table (per mode) and the stats of each mode.
    #[command(mut_arg("interval", |a| a.help(DUMP_INTERVAL_HELP)))]
    Dump(DumpArgs),
    /// Generate a workload with known ground truth and compare the modes.
    #[command(mut_arg("interval", |a| a.help(BENCH_INTERVAL_HELP)))]
    Bench(BenchArgs),
    /// Run the collector headless and serve its tables to `--attach` viewers on a Unix socket.
    #[command(mut_arg("interval", |a| a.help(DUMP_INTERVAL_HELP)))]
    Serve(crate::serve::ServeArgs),
    /// The dashboard on a recording (`serve --record DIR`): ←/→ step, [/] a minute, g a
    /// typed time, Space plays at 1×/10×/60×.
    Replay(ReplayArgs),
    /// Run the collector headless and only record its tables (no socket): `serve --record`
    /// without viewers.
    #[command(mut_arg("interval", |a| a.help(DUMP_INTERVAL_HELP)))]
    Record(crate::serve::RecordArgs),
    /// Print a shell completion script to stdout (e.g. `bpftop-ordered completions bash`).
    Completions(CompletionsArgs),
    /// Internal to `bench --overhead`: run the storm in this process and print its ground
    /// truth on stdout (the observer then watches another process, as a user's would).
    #[command(hide = true)]
    BenchStorm(StormArgs),
}

/// Arguments of the hidden `bench-storm` (what `bench --overhead` passes it).
#[derive(Debug, Args)]
pub struct StormArgs {
    /// `exec` or `connect`.
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// How long to storm, ms.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub duration_ms: u64,
    /// Parallel generator threads.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256).map(|v| v as usize))]
    pub spawners: usize,
}

/// Arguments of `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording's directory.
    pub dir: PathBuf,
    /// The moment to open at (RFC 3339 in UTC, `now`, or before now: -5m) [default: the
    /// recording's last record].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub at: Option<String>,
    /// Mode whose tables are visible at start.
    #[arg(long)]
    pub mode: Option<ModeKind>,
    /// Theme: a built-in name or a path to a TOML file.
    #[arg(long)]
    pub theme: Option<String>,
    /// Initial filter (same syntax as the `/` prompt).
    #[arg(long)]
    pub filter: Option<String>,
    /// Config file (default: $XDG_CONFIG_HOME/bpftop-ordered/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// ←/→ step, also the refresh of a playing replay (humantime; 100ms..1h) [default: 1s,
    /// or the config file's `interval`].
    #[arg(long, value_parser = parse_interval)]
    pub interval: Option<Duration>,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// Bash (bash-completion).
    Bash,
    /// Zsh (a `_bpftop-ordered` function for `$fpath`).
    Zsh,
    /// Fish.
    Fish,
}

/// Where `serve` listens and `--attach` connects by default.
pub const DEFAULT_SOCKET: &str = bpftop_ordered::remote::socket_path::DEFAULT_SOCKET;

/// `--interval` of `dump`: there is no dashboard to refresh.
const DUMP_INTERVAL_HELP: &str =
    "Poll mode's snapshot interval (humantime: 500ms, 2s; 10ms..1h) [default: 1s]";

/// `--interval` of `bench`: poll's snapshots and the /proc baseline's scans.
const BENCH_INTERVAL_HELP: &str = "Poll mode's snapshot interval, also the /proc baseline \
     collector's scan interval (humantime: 500ms, 2s; 10ms..1h) [default: 1s]";

/// Settings of the bridge shared by every command. Their help texts are true under every
/// command, except `--interval`'s, which is the dashboard's here and replaced by `dump`'s
/// and `bench`'s own (see [`Command`]).
#[derive(Debug, Args, Clone)]
pub struct BridgeArgs {
    /// The dashboard's refresh, also poll mode's snapshot interval (humantime: 500ms, 2s;
    /// 100ms..1h) [default: 1s, or the config file's `interval`].
    #[arg(long, value_parser = parse_interval)]
    pub interval: Option<Duration>,
    /// Ring buffer size in bytes (power-of-two multiple of 4096).
    #[arg(long, default_value_t = defaults::RING_BYTES, value_parser = parse_ring_bytes)]
    pub ring_bytes: u32,
    /// Ring wake-up sampling: 0 = no wake-up per record (drain every --drain-interval; the
    /// kernel wakes the consumer when the ring is half full), 1 = wake per record, N = every
    /// Nth record plus the drain timer.
    #[arg(long, default_value_t = defaults::RING_WAKEUP_EVERY, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub ring_wakeup_every: u32,
    /// Perf wake-up sampling: 0 = no wake-up per record (drain every --drain-interval; the
    /// kernel wakes the consumer when a CPU's buffer is half full), 1 = wake per record, N =
    /// every Nth record plus the drain timer.
    #[arg(long, default_value_t = defaults::PERF_WAKEUP_EVERY, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub perf_wakeup_every: u32,
    /// How often ring and perf drain when their wake-ups are not per record (1ms..1s).
    #[arg(long, default_value = defaults::STREAM_DRAIN_INTERVAL_TEXT, value_parser = parse_drain_interval)]
    pub drain_interval: Duration,
    /// Pages per CPU of each perf buffer (power of two) [default: as many as make the default
    /// ring's 4 MiB in all, 64..4096 per CPU: 512 on 2 CPUs].
    #[arg(long, value_parser = parse_perf_pages)]
    pub perf_pages: Option<usize>,
    /// Which state map variant the kernel writes and poll reads.
    #[arg(long, value_enum, default_value_t = PollMap::Hash)]
    pub poll_map: PollMap,
    /// Flush period: what changes without an event of its own (CPU time, task state, byte
    /// counters, renames) is sent at most once per entity per period, and at the latest one
    /// period after it changed (10ms..10s).
    #[arg(long, default_value = defaults::UPDATE_INTERVAL_TEXT, value_parser = parse_update_interval)]
    pub update_interval: Duration,
    /// In-kernel filter: only this pid (tgid).
    #[arg(long, default_value_t = 0)]
    pub filter_pid: u32,
    /// In-kernel filter: only connections with this local or remote port.
    #[arg(long, default_value_t = 0)]
    pub filter_port: u16,
    /// Do not capture command lines in the kernel (arguments can hold secrets): the CMD column
    /// and `cmdline` show only what /proc gives for processes that predate the probes.
    #[arg(long)]
    pub no_cmdline: bool,
    /// How long exited processes / closed connections stay in the tables [default: 60s, or the
    /// config file's value in the dashboard].
    #[arg(long, value_parser = parse_retention)]
    pub retention: Option<Duration>,
    /// At most this many exited/closed rows stay in each table (oldest-finished go first).
    #[arg(long, default_value_t = defaults::RETENTION_ROWS, value_parser = clap::value_parser!(u64).range(0..=100_000_000).map(|v| v as usize))]
    pub retention_rows: usize,
    /// Capacity of each kernel state map (entries) [default: processes kernel.pid_max + 65536
    /// (at most 1048576), connections 262144; the maps are not preallocated].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=(1 << 24)))]
    pub state_map_entries: Option<u32>,
}

/// State map variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PollMap {
    /// BPF_MAP_TYPE_HASH: inserts fail (counted) when full.
    Hash,
    /// BPF_MAP_TYPE_LRU_HASH: bounded memory, cold entries evicted (counted by poll).
    Lru,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let interval = parse_bounded(s, Duration::from_secs(3600), "the interval")?;
    if interval < Duration::from_millis(10) {
        return Err(format!(
            "{s} is too short: poll would read the maps back to back (at least 10ms, e.g. 500ms, 1s)"
        ));
    }
    Ok(interval)
}

fn parse_update_interval(s: &str) -> Result<Duration, String> {
    parse_period(s, "the flush period", "10ms", "10s", "100ms")
}

/// A humantime period within `[min, max]` (humantime constants), else a message naming
/// `what`, the range and an example.
fn parse_period(
    s: &str,
    what: &str,
    min: &str,
    max: &str,
    example: &str,
) -> Result<Duration, String> {
    let interval = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    let bound = |text: &str| humantime::parse_duration(text).expect("a valid bound");
    if interval < bound(min) || interval > bound(max) {
        return Err(format!(
            "{s} is out of range: {what} must be between {min} and {max} (e.g. {example})"
        ));
    }
    Ok(interval)
}

fn parse_drain_interval(s: &str) -> Result<Duration, String> {
    parse_period(s, "the drain interval", "1ms", "1s", "10ms")
}

/// The longest `--duration`: a day. Longer values are refused instead of overflowing a clock.
const MAX_RUN: Duration = Duration::from_secs(24 * 3600);

/// The longest `--retention`: a year (the tables' time arithmetic is in u64 ns).
const MAX_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A humantime duration no longer than `max` (so `18446744073709551615s` is a usage error,
/// not a panic or a silent wrap).
fn parse_bounded(s: &str, max: Duration, what: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if value > max {
        return Err(format!(
            "{s} is too long for {what} (at most {})",
            format_limit(max)
        ));
    }
    Ok(value)
}

/// A limit as people write it: whole days as days (`365 days`, not humantime's
/// `11months 30days 3h 50m 24s`), anything else in humantime.
fn format_limit(limit: Duration) -> String {
    const DAY_S: u64 = 86_400;
    match limit.as_secs() / DAY_S {
        days if days > 0 && limit == Duration::from_secs(days * DAY_S) => {
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
        _ => humantime::format_duration(limit).to_string(),
    }
}

fn parse_run_duration(s: &str) -> Result<Duration, String> {
    parse_bounded(s, MAX_RUN, "a run")
}

fn parse_retention(s: &str) -> Result<Duration, String> {
    parse_bounded(s, MAX_RETENTION, "the retention")
}

fn parse_ring_bytes(s: &str) -> Result<u32, String> {
    let v: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if v < 4096 || !v.is_power_of_two() {
        return Err(format!(
            "{v} is not a power-of-two multiple of the 4096-byte page (e.g. 4096, 65536, 4194304)"
        ));
    }
    Ok(v)
}

fn parse_perf_pages(s: &str) -> Result<usize, String> {
    let v: usize = s.parse().map_err(|e| format!("{e}"))?;
    if v == 0 || !v.is_power_of_two() {
        return Err(format!("{v} is not a power of two (e.g. 1, 8, 64)"));
    }
    Ok(v)
}

impl BridgeArgs {
    /// The session configuration for `modes` (duplicates are run once).
    pub fn session_config(&self, modes: Vec<ModeKind>) -> SessionConfig {
        let mut config = SessionConfig::with_modes(&modes);
        let probes = &mut config.probes;
        probes.ring_bytes = self.ring_bytes;
        probes.ring_wakeup_every = self.ring_wakeup_every;
        probes.use_lru_maps = self.poll_map == PollMap::Lru;
        probes.filter_tgid = self.filter_pid;
        probes.filter_port = self.filter_port;
        probes.capture_cmdline = !self.no_cmdline;
        if let Some(entries) = self.state_map_entries {
            probes.proc_map_entries = entries;
            probes.conn_map_entries = entries;
        }
        config.perf = PerfConfig {
            // None: the session default (sized for this machine), computed once.
            pages: self.perf_pages.unwrap_or(config.perf.pages),
            wakeup_every: self.perf_wakeup_every,
            drain_interval: self.drain_interval,
        };
        config.ring_drain_interval = self.drain_interval;
        config.poll_interval = self.interval.unwrap_or(defaults::POLL_INTERVAL);
        config.update_interval = self.update_interval;
        config.retention = Retention {
            max_age_ns: self
                .retention
                .unwrap_or(defaults::RETENTION_AGE)
                .as_nanos()
                .min(u64::MAX as u128) as u64,
            max_finished: self.retention_rows,
        };
        config
    }
}

/// Which table to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableName {
    /// Processes.
    Processes,
    /// TCP connections.
    Connections,
}

/// Output format of `dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per row, then one `{"stats": {...}}` line per mode.
    Json,
    /// Aligned text columns: a header and the rows per mode, then one `# mode: …` stats line
    /// per mode.
    Table,
}

/// Output format of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchFormat {
    /// One `{"stats": {...}}` line per collector (each mode, then the /proc baseline); with
    /// --transport one `{"transport": {...}}` line per measurement.
    Json,
    /// One aligned text row per collector (per measurement with --transport).
    Table,
}

/// `dump` arguments.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// One mode (mutually exclusive with --modes).
    #[arg(long, conflicts_with = "modes")]
    pub mode: Option<ModeKind>,
    /// Several modes at once, comma separated: ring,perf,poll.
    #[arg(long, value_delimiter = ',')]
    pub modes: Vec<ModeKind>,
    /// Which table.
    #[arg(long, value_enum)]
    pub table: TableName,
    /// How long to collect.
    #[arg(long, default_value = "3s", value_parser = parse_run_duration)]
    pub duration: Duration,
    /// Output format of the rows and the stats.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Leave out rows seeded from /proc (keep only what the probes reported).
    #[arg(long)]
    pub kernel_only: bool,
    /// Read the tables of a running `serve` instead of loading probes: print them after
    /// --duration of deltas (bridge settings are the collector's) [default path:
    /// /run/bpftop-ordered/bpftop-ordered.sock].
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = DEFAULT_SOCKET)]
    pub attach: Option<PathBuf>,
    /// Print the tables of a recording (`serve --record DIR`) instead: as of --at, or every
    /// row of --from .. --to.
    #[arg(long, value_name = "DIR", conflicts_with = "attach")]
    pub replay: Option<PathBuf>,
    /// With --replay: the moment to print (RFC 3339 in UTC, `now`, or before now: -5m)
    /// [default: the recording's last record].
    #[arg(
        long,
        value_name = "TIME",
        requires = "replay",
        conflicts_with = "from",
        allow_hyphen_values = true
    )]
    pub at: Option<String>,
    /// With --replay: print every row that existed from this time on, each with its last state
    /// up to --to.
    #[arg(
        long,
        value_name = "TIME",
        requires = "replay",
        allow_hyphen_values = true
    )]
    pub from: Option<String>,
    /// With --replay --from: the end of the range [default: the recording's last record].
    #[arg(
        long,
        value_name = "TIME",
        requires = "from",
        allow_hyphen_values = true
    )]
    pub to: Option<String>,
    /// Bridge settings.
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

impl DumpArgs {
    /// The modes to run: --modes, else --mode, else ring.
    /// Each mode once, in the order first given (`ring,ring,perf` runs ring and perf).
    pub fn modes(&self) -> Vec<ModeKind> {
        if !self.modes.is_empty() {
            let mut modes: Vec<ModeKind> = Vec::new();
            for mode in &self.modes {
                if !modes.contains(mode) {
                    modes.push(*mode);
                }
            }
            modes
        } else {
            vec![self.mode.unwrap_or(ModeKind::Ring)]
        }
    }
}

/// Bench workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Parallel spawners of a short-lived binary.
    Exec,
    /// Loopback connect / send / close storm.
    Connect,
    /// Both at once.
    Mixed,
}

/// `bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Workload to generate.
    #[arg(long, value_enum, default_value_t = Workload::Exec)]
    pub workload: Workload,
    /// How long to generate load.
    #[arg(long, default_value = "5s", value_parser = parse_run_duration)]
    pub duration: Duration,
    /// Modes to compare, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "ring,perf,poll")]
    pub modes: Vec<ModeKind>,
    /// Output format of the comparison.
    #[arg(long, value_enum, default_value_t = BenchFormat::Table)]
    pub format: BenchFormat,
    /// Parallel workload generators.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256).map(|v| v as usize))]
    pub spawners: usize,
    /// Target rate of entities per second over all generators (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Also compare against a /proc polling collector (what top/ps do), at the same interval.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub procfs: bool,
    /// Run the transport-limit benchmark instead of a workload.
    #[arg(long, conflicts_with = "overhead")]
    pub transport: bool,
    /// Measure the observer cost instead: the storm bare, beside each mode alone, beside the
    /// default configuration and beside execsnoop / tcplife when installed (BENCHMARKS.md).
    #[arg(long)]
    pub overhead: bool,
    /// What generates the `--overhead` storm, in processes of its own: `native` (Rust
    /// threads, the least CPU per entity) or `python` (one Python loop per spawner running
    /// /bin/true and /bin/false; exec only).
    #[arg(long, value_enum, default_value_t = crate::bench::StormKind::Native)]
    pub storm: crate::bench::StormKind,
    /// Rounds of `--overhead` (every configuration once per round, order rotated).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100).map(|v| v as usize))]
    pub rounds: usize,
    /// Bridge settings.
    #[command(flatten)]
    pub bridge: BridgeArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_compares_every_mode_by_default() {
        let cli = Cli::try_parse_from(["bpftop-ordered", "bench"]).unwrap();
        let Some(Command::Bench(args)) = cli.command else {
            panic!("bench parsed as {:?}", cli.command)
        };
        assert_eq!(args.modes, ModeKind::ALL.to_vec());
        assert_eq!(args.format, BenchFormat::Table);
    }

    #[test]
    fn limits_read_as_written() {
        assert_eq!(format_limit(MAX_RETENTION), "365 days");
        assert_eq!(format_limit(MAX_RUN), "1 day");
        assert_eq!(format_limit(Duration::from_secs(3600)), "1h");
    }

    #[test]
    fn the_update_interval_default_is_the_bridge_default() {
        assert_eq!(
            parse_update_interval(defaults::UPDATE_INTERVAL_TEXT),
            Ok(defaults::UPDATE_INTERVAL)
        );
        assert_eq!(
            parse_drain_interval(defaults::STREAM_DRAIN_INTERVAL_TEXT),
            Ok(defaults::STREAM_DRAIN_INTERVAL)
        );
    }
}
