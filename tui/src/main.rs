//! `bpftop-ordered`: the binary. Parses the command line and dispatches to the dashboard, `dump`
//! or `bench`. Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 missing privileges or
//! kernel support.

mod cli;
mod dump;
mod row_json;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match &cli.command {
        Some(cli::Command::Dump(args)) => dump::run(args),
        Some(cli::Command::Bench(_)) => {
            eprintln!("bpftop-ordered: bench is not built yet");
            Ok(1)
        }
        None => {
            eprintln!("bpftop-ordered: the dashboard is not built yet; use `dump`");
            Ok(1)
        }
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("bpftop-ordered: {error:#}");
            std::process::exit(1);
        }
    }
}
