//! `bpftop-ordered`: the binary. Parses the command line and dispatches to the dashboard, `dump`
//! or `bench`, `serve`, `completions`. Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 missing privileges or
//! kernel support.

mod bench;
mod cli;
mod completions;
mod dump;
mod dump_attached;
mod dump_replay;
mod headless;
#[cfg(test)]
mod man;
mod row_json;
mod serve;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match &cli.command {
        Some(cli::Command::Dump(args)) => dump::run(args),
        Some(cli::Command::Bench(args)) => bench::run(args),
        Some(cli::Command::Serve(args)) => serve::run(args),
        Some(cli::Command::Record(args)) => serve::run_record(args),
        Some(cli::Command::Replay(args)) => {
            let options = bpftop_ordered::dashboard::DashboardOptions {
                mode: args.mode,
                interval: args.interval,
                theme: args.theme.clone(),
                filter: args.filter.clone(),
                config_path: args.config.clone(),
                retention: None,
                session: bridge::session::SessionConfig::with_modes(
                    &bridge::contract::ModeKind::ALL,
                ),
            };
            bpftop_ordered::dashboard::replayed::run(options, &args.dir, args.at.as_deref())
        }
        Some(cli::Command::Completions(args)) => completions::run(args),
        Some(cli::Command::BenchStorm(args)) => Ok(bench::run_storm_child(args)),
        None => {
            let options = bpftop_ordered::dashboard::DashboardOptions {
                mode: cli.mode,
                interval: cli.bridge.interval,
                theme: cli.theme.clone(),
                filter: cli.filter.clone(),
                config_path: cli.config.clone(),
                retention: cli.bridge.retention,
                session: cli
                    .bridge
                    .session_config(bridge::contract::ModeKind::ALL.to_vec()),
            };
            match &cli.attach {
                Some(path) => bpftop_ordered::dashboard::attached::run(options, path),
                None => bpftop_ordered::dashboard::run(options),
            }
        }
    };
    match code {
        Ok(code) => std::process::exit(code),
        // The reader went away (`dump … | head`): nothing is wrong with the tool, and the
        // reader has what it wanted.
        Err(error) if is_broken_pipe(&error) => std::process::exit(0),
        Err(error) => {
            eprintln!("bpftop-ordered: {error:#}");
            std::process::exit(1);
        }
    }
}

/// True when `error` is, or was caused by, a write to a pipe whose reader has gone (EPIPE).
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
