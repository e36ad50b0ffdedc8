//! The `bench --overhead` storm in a process of its own, as a watched workload is on a real
//! machine: `bpftop-ordered bench-storm` (hidden) runs the exec or connect storm and prints its
//! ground truth on stdout; [`StormProcess`] starts it from the bench and reads that back.
//!
//! Why not threads of the bench process: the observer (a session and its tables) then shares
//! one address space with the storm, so the observer's allocations and frees (page faults,
//! `munmap`'s TLB-shootdown IPIs to every CPU running a thread of the process) and the storm's
//! `posix_spawn` stacks contend on one `mm`. A user's dashboard is another process. Measured
//! one after the other on one machine (2026-12-06, 3 rounds, `exec` storm): the default
//! configuration slowed the in-process storm to 0.839 of bare (median) and the storm in its own
//! process to 0.893 (BENCHMARKS.md 8g).
//!
//! Lines printed (one entity per line, then one `end` line):
//! - `exec <pid> <spawned_ns> <exit_status> <comm> <cmdline…>`
//! - `conn <client port> <server port>` (both on 127.0.0.1)
//! - `end <completed> <failed> <elapsed_ns>`

use std::{
    io::{BufWriter, Read, Write},
    process::{Child, Command, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context};

use super::workload::{self, ConnectTruth, ExpectedExec, VariedExecTruth};
use crate::cli::{StormArgs, Workload};

/// The storm's ground truth, as the storm process reported it.
pub enum Truth {
    /// Every child of the exec storm.
    Exec(VariedExecTruth),
    /// Every connection of the connect storm.
    Connect(ConnectTruth),
}

impl Truth {
    /// Spawns or connections completed (the rate's numerator), and those that failed.
    pub fn counts(&self) -> (u64, u64) {
        match self {
            Truth::Exec(t) => (t.spawned, t.errors),
            Truth::Connect(t) => (t.connections, t.errors),
        }
    }
}

/// What one storm run did.
pub struct StormOutcome {
    /// Its ground truth.
    pub truth: Truth,
    /// From the storm's first entity to its last, as the storm process measured it.
    pub elapsed: Duration,
    /// The (first) storm process's pid: the owner of its connections.
    pub pid: u32,
}

/// Which program generates the storm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StormKind {
    /// `bpftop-ordered bench-storm`: Rust threads (`posix_spawn` + wait, or connect / send /
    /// RST close), the least CPU per entity, so the harshest ratio for an observer.
    Native,
    /// Separate Python processes, one per spawner, each looping `subprocess.Popen(...).wait()`
    /// (BENCHMARKS.md's reference storm: two Python loops running /bin/true). Exec storm only.
    Python,
}

/// The Python loop of [`StormKind::Python`].
const PYTHON_EXEC_LOOP: &str = include_str!("storms/exec_loop.py");

/// One storm process and the thread reading its report.
struct Reporter {
    child: Child,
    reader: JoinHandle<std::io::Result<String>>,
}

impl Reporter {
    fn start(mut command: Command) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the storm process {:?}", command.get_program()))?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        // Read while it runs: its report can exceed a pipe's 64 KiB.
        let reader = std::thread::Builder::new()
            .name("bench-storm-out".into())
            .spawn(move || {
                let mut text = String::new();
                stdout.read_to_string(&mut text).map(|_| text)
            })
            .context("starting the storm reader")?;
        Ok(Reporter { child, reader })
    }

    fn finish(mut self, workload: Workload) -> anyhow::Result<StormOutcome> {
        let pid = self.child.id();
        let text = self
            .reader
            .join()
            .map_err(|_| anyhow!("the storm reader panicked"));
        let status = self.child.wait().context("waiting for the storm process")?;
        let text = text?.context("reading the storm's report")?;
        if !status.success() {
            bail!("the storm process failed ({status})");
        }
        parse_report(&text, workload, pid)
    }
}

/// A running storm: one process (native) or one per spawner (Python).
pub struct StormProcess {
    reporters: Vec<Reporter>,
    workload: Workload,
}

impl StormProcess {
    /// Starts the storm for `duration` with `spawners` generators (threads of one
    /// `bpftop-ordered bench-storm`, or Python processes).
    pub fn start(
        kind: StormKind,
        workload: Workload,
        duration: Duration,
        spawners: usize,
    ) -> anyhow::Result<Self> {
        let duration_ms = duration.as_millis().to_string();
        let mut reporters = Vec::new();
        match kind {
            StormKind::Native => {
                let exe = std::env::current_exe().context("finding this executable")?;
                let mut command = Command::new(exe);
                command
                    .arg("bench-storm")
                    .args(["--workload", &value_name(workload)])
                    .args(["--duration-ms", &duration_ms])
                    .args(["--spawners", &spawners.to_string()]);
                reporters.push(Reporter::start(command)?);
            }
            StormKind::Python => {
                if workload != Workload::Exec {
                    bail!("--storm python is an exec storm only");
                }
                for t in 0..spawners {
                    let mut command = Command::new("python3");
                    command
                        .args(["-c", PYTHON_EXEC_LOOP])
                        .arg(t.to_string())
                        .arg(&duration_ms);
                    reporters.push(Reporter::start(command)?);
                }
            }
        }
        Ok(StormProcess {
            reporters,
            workload,
        })
    }

    /// True until every storm process has closed its output (it has finished).
    pub fn is_running(&self) -> bool {
        self.reporters.iter().any(|r| !r.reader.is_finished())
    }

    /// Waits for the storm processes and merges their reports (entities by pid or 4-tuple,
    /// counts summed, the longest elapsed time).
    pub fn finish(self) -> anyhow::Result<StormOutcome> {
        let mut merged: Option<StormOutcome> = None;
        for reporter in self.reporters {
            let outcome = reporter.finish(self.workload)?;
            merged = Some(match merged {
                None => outcome,
                Some(mut all) => {
                    match (&mut all.truth, outcome.truth) {
                        (Truth::Exec(a), Truth::Exec(b)) => {
                            a.children.extend(b.children);
                            a.spawned += b.spawned;
                            a.errors += b.errors;
                        }
                        (Truth::Connect(a), Truth::Connect(b)) => {
                            a.tuples.extend(b.tuples);
                            a.connections += b.connections;
                            a.errors += b.errors;
                        }
                        _ => bail!("storm reports of different workloads"),
                    }
                    all.elapsed = all.elapsed.max(outcome.elapsed);
                    all
                }
            });
        }
        merged.ok_or_else(|| anyhow!("no storm process ran"))
    }
}

/// How the command line writes `value` (its clap name).
pub fn value_name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// Parses a storm process's report.
fn parse_report(text: &str, workload: Workload, pid: u32) -> anyhow::Result<StormOutcome> {
    let mut exec = VariedExecTruth::default();
    let mut connect = ConnectTruth::default();
    let mut end = None;
    for (number, line) in text.lines().enumerate() {
        let bad = || anyhow!("storm report line {}: {line:?}", number + 1);
        let mut fields = line.splitn(6, ' ');
        match fields.next() {
            Some("exec") => {
                let mut next = || fields.next().ok_or_else(bad);
                let child_pid: u32 = next()?.parse().map_err(|_| bad())?;
                let spawned_ns: u64 = next()?.parse().map_err(|_| bad())?;
                let exit_status: i32 = next()?.parse().map_err(|_| bad())?;
                let comm = match next()? {
                    "true" => "true",
                    "false" => "false",
                    _ => return Err(bad()),
                };
                let cmdline = next()?.to_string();
                exec.children.insert(
                    child_pid,
                    ExpectedExec {
                        spawned_ns,
                        comm,
                        exit_status,
                        cmdline,
                    },
                );
            }
            Some("conn") => {
                let mut next = || fields.next().ok_or_else(bad);
                let sport: u16 = next()?.parse().map_err(|_| bad())?;
                let dport: u16 = next()?.parse().map_err(|_| bad())?;
                connect.tuples.insert((sport, dport));
            }
            Some("end") => {
                let mut next = || fields.next().ok_or_else(bad);
                let completed: u64 = next()?.parse().map_err(|_| bad())?;
                let failed: u64 = next()?.parse().map_err(|_| bad())?;
                let elapsed_ns: u64 = next()?.parse().map_err(|_| bad())?;
                end = Some((completed, failed, elapsed_ns));
            }
            _ => return Err(bad()),
        }
    }
    let (completed, failed, elapsed_ns) =
        end.ok_or_else(|| anyhow!("the storm report has no end line"))?;
    let truth = match workload {
        Workload::Connect => {
            connect.connections = completed;
            connect.errors = failed;
            Truth::Connect(connect)
        }
        _ => {
            exec.spawned = completed;
            exec.errors = failed;
            Truth::Exec(exec)
        }
    };
    Ok(StormOutcome {
        truth,
        elapsed: Duration::from_nanos(elapsed_ns),
        pid,
    })
}

/// `bpftop-ordered bench-storm`: runs the storm in this process and prints its report on
/// stdout. Returns the exit code (0; 1 when the listener cannot start or stdout fails).
pub fn run_child(args: &StormArgs) -> i32 {
    let duration = Duration::from_millis(args.duration_ms);
    let started = Instant::now();
    let deadline = started + duration;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let written = match args.workload {
        Workload::Connect => {
            let listener = match workload::Listener::start_threads(args.spawners) {
                Ok(listener) => listener,
                Err(e) => {
                    eprintln!("bpftop-ordered: starting the listener: {e}");
                    return 1;
                }
            };
            let handles = workload::start_connect_closing(
                args.spawners,
                0,
                deadline,
                listener.addr,
                workload::CloseBy::Reset,
            );
            let truth = workload::join_connect(handles);
            let elapsed = started.elapsed();
            listener.stop();
            write_connect(&mut out, &truth, elapsed)
        }
        _ => {
            let handles = workload::start_varied_exec(args.spawners, deadline);
            let truth = workload::join_varied_exec(handles);
            write_exec(&mut out, &truth, started.elapsed())
        }
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bpftop-ordered: writing the storm report: {e}");
            1
        }
    }
}

fn write_exec(
    out: &mut impl Write,
    truth: &VariedExecTruth,
    elapsed: Duration,
) -> std::io::Result<()> {
    for (pid, want) in &truth.children {
        writeln!(
            out,
            "exec {pid} {} {} {} {}",
            want.spawned_ns, want.exit_status, want.comm, want.cmdline
        )?;
    }
    write_end(out, truth.spawned, truth.errors, elapsed)
}

fn write_connect(
    out: &mut impl Write,
    truth: &ConnectTruth,
    elapsed: Duration,
) -> std::io::Result<()> {
    for (sport, dport) in &truth.tuples {
        writeln!(out, "conn {sport} {dport}")?;
    }
    write_end(out, truth.connections, truth.errors, elapsed)
}

/// The report's last line: `end <completed> <failed> <elapsed_ns>`.
fn write_end(
    out: &mut impl Write,
    completed: u64,
    failed: u64,
    elapsed: Duration,
) -> std::io::Result<()> {
    writeln!(out, "end {completed} {failed} {}", elapsed.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_report_round_trips() {
        let mut truth = VariedExecTruth::default();
        truth.children.insert(
            41,
            ExpectedExec {
                spawned_ns: 7,
                comm: "false",
                exit_status: 1,
                cmdline: "/bin/false ovh-0-1".into(),
            },
        );
        truth.spawned = 2;
        truth.errors = 1;
        let mut text = Vec::new();
        write_exec(&mut text, &truth, Duration::from_millis(3)).unwrap();
        let outcome = parse_report(std::str::from_utf8(&text).unwrap(), Workload::Exec, 9).unwrap();
        assert_eq!(outcome.truth.counts(), (2, 1));
        let Truth::Exec(parsed) = outcome.truth else {
            panic!("an exec report parsed as connect")
        };
        assert_eq!(parsed.children, truth.children);
        assert_eq!(outcome.elapsed, Duration::from_millis(3));
        assert_eq!(outcome.pid, 9);
    }

    #[test]
    fn a_connect_report_round_trips() {
        let mut truth = ConnectTruth::default();
        truth.tuples.insert((40000, 8080));
        truth.connections = 1;
        let mut text = Vec::new();
        write_connect(&mut text, &truth, Duration::from_secs(1)).unwrap();
        let outcome =
            parse_report(std::str::from_utf8(&text).unwrap(), Workload::Connect, 9).unwrap();
        assert_eq!(outcome.truth.counts(), (1, 0));
        let Truth::Connect(parsed) = outcome.truth else {
            panic!("a connect report parsed as exec")
        };
        assert_eq!(parsed.tuples, truth.tuples);
    }

    #[test]
    fn a_truncated_or_garbled_report_is_an_error() {
        assert!(parse_report("conn 1 2\n", Workload::Connect, 1).is_err());
        assert!(parse_report("conn x 2\nend 1 0 5\n", Workload::Connect, 1).is_err());
        assert!(parse_report("exec 1 2 0 sh /bin/sh\nend 1 0 5\n", Workload::Exec, 1).is_err());
        assert!(parse_report("hello\n", Workload::Exec, 1).is_err());
    }
}
