//! `completions SHELL`: the shell completion script (clap_complete), generated from the same
//! clap definition that parses the command line, so it never lags behind it.

use std::io::Write;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell, CompletionsArgs};

/// Writes the completion script for `args.shell` to stdout; exit code 0.
pub fn run(args: &CompletionsArgs) -> Result<i32> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "bpftop-ordered", &mut out);
    out.flush()?;
    Ok(0)
}
