//! `bench --overhead`: what watching costs the watched. A max-rate storm (exec or loopback
//! connect) runs bare, beside each mode alone, beside the default configuration (every mode,
//! as the dashboard runs), and beside libbpf-tools' `execsnoop` / `tcplife` when installed.
//! Each round runs every observed configuration once, in an order rotated from round to round,
//! with a bare run before and after each (bare, A, bare, B, …, bare), and compares each run's
//! storm rate with the mean of its two neighbouring bare runs: drift of the shared machine
//! cancels as far as it is slower than two runs. Printed: the ratio's min / median / max over the rounds, the storm rates, the
//! observer's CPU time and its field-correct capture (a process counts only with the right
//! comm, exit status and command line; a connection only with the right owner, state and byte
//! count). The connect storm's clients close with RST (`SO_LINGER` 0), so no TIME-WAIT
//! sockets pile up and the rate stays comparable from run to run. The storm runs in processes
//! of its own (storm_process.rs), never beside the observer in this one.

use std::{io::Write, time::Duration};

use bridge::contract::ModeKind;
use serde_json::{json, Value};

use super::{
    observer::{Capture, ExternalObserver, ExternalTool, OwnObserver},
    storm_process::{value_name, StormKind, StormProcess, Truth},
};
use crate::cli::{BenchArgs, BenchFormat as Format, Workload};

/// Who watches during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Observer {
    /// Nobody.
    Bare,
    /// This tool with these modes.
    Own(Vec<ModeKind>),
    /// A libbpf-tools program.
    External(ExternalTool),
}

/// One configuration of the comparison.
#[derive(Clone, Debug)]
struct Config {
    label: String,
    observer: Observer,
}

/// One storm run.
#[derive(Clone, Debug)]
struct Run {
    rate_per_s: f64,
    /// The mean storm rate of the bare runs just before and just after this one (for a bare
    /// run: the mean of its round's bare runs).
    bare_reference_per_s: f64,
    captures: Vec<Capture>,
    observer_cpu_ns: Option<u64>,
    /// Spawns or connections of the storm that failed (not in the rate).
    generator_errors: u64,
}

/// Runs the comparison; returns the process exit code.
pub fn run(args: &BenchArgs) -> anyhow::Result<i32> {
    if args.workload == Workload::Mixed {
        eprintln!("bpftop-ordered: bench --overhead runs one storm: --workload exec or connect");
        return Ok(2);
    }
    if args.storm == StormKind::Python && args.workload != Workload::Exec {
        eprintln!("bpftop-ordered: --storm python is an exec storm only (--workload exec)");
        return Ok(2);
    }
    let configs = configs(args.workload);
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    let observed = configs.len() - 1; // configs[0] is bare
    for round in 0..args.rounds {
        let bare_once = || run_once(args, &Observer::Bare);
        let mut bare_runs = Vec::new();
        let mut before = match bare_once() {
            Ok(run) => run,
            Err(code) => return Ok(code),
        };
        bare_runs.push(before.clone());
        for step in 0..observed {
            let index = 1 + (step + round) % observed;
            let mut run = match run_once(args, &configs[index].observer) {
                Ok(run) => run,
                Err(code) => return Ok(code),
            };
            let after = match bare_once() {
                Ok(run) => run,
                Err(code) => return Ok(code),
            };
            run.bare_reference_per_s = (before.rate_per_s + after.rate_per_s) / 2.0;
            runs[index].push(run);
            bare_runs.push(after.clone());
            before = after;
        }
        let mean = bare_runs.iter().map(|r| r.rate_per_s).sum::<f64>() / bare_runs.len() as f64;
        for mut bare in bare_runs {
            bare.bare_reference_per_s = mean;
            runs[0].push(bare);
        }
    }
    print(args, &configs, &runs)?;
    Ok(0)
}

/// Bare, each mode alone, the default configuration, then the external tool if installed.
fn configs(workload: Workload) -> Vec<Config> {
    let mut configs = vec![Config {
        label: "bare".into(),
        observer: Observer::Bare,
    }];
    for mode in ModeKind::ALL {
        configs.push(Config {
            label: mode.to_string(),
            observer: Observer::Own(vec![mode]),
        });
    }
    configs.push(Config {
        label: "default".into(),
        observer: Observer::Own(ModeKind::ALL.to_vec()),
    });
    let tool = match workload {
        Workload::Connect => ExternalTool::Tcplife,
        _ => ExternalTool::Execsnoop,
    };
    if tool.path().is_some() {
        configs.push(Config {
            label: tool.name().into(),
            observer: Observer::External(tool),
        });
    } else {
        eprintln!(
            "bpftop-ordered: note: {} is not installed (Debian: apt-get install libbpf-tools); its row is left out",
            tool.name()
        );
    }
    configs
}

/// Runs the storm once beside `observer`. `Err` holds an exit code.
fn run_once(args: &BenchArgs, observer: &Observer) -> Result<Run, i32> {
    let mut own = None;
    let mut external = None;
    match observer {
        Observer::Bare => {}
        Observer::Own(modes) => {
            let mut config = args.bridge.session_config(modes.clone());
            config.retention.max_finished = usize::MAX;
            config.retention.max_age_ns = u64::MAX;
            own = Some(OwnObserver::start(config)?);
        }
        Observer::External(tool) => match ExternalObserver::start(*tool) {
            Ok(o) => external = Some(o),
            Err(e) => {
                eprintln!("bpftop-ordered: {e}");
                return Err(1);
            }
        },
    }
    // The storm runs in a process of its own, as a watched workload does (storm_process.rs).
    let storm = StormProcess::start(args.storm, args.workload, args.duration, args.spawners)
        .map_err(|e| {
            eprintln!("bpftop-ordered: {e:#}");
            1
        })?;
    wait_for(&mut own, || storm.is_running());
    let outcome = storm.finish().map_err(|e| {
        eprintln!("bpftop-ordered: {e:#}");
        1
    })?;
    let (exec, connect) = match &outcome.truth {
        Truth::Exec(t) => (Some(t), None),
        Truth::Connect(t) => (None, Some(t)),
    };
    let (completed, failed) = outcome.truth.counts();
    let rate_per_s = completed as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
    let (captures, observer_cpu_ns) = if let Some(own) = own {
        let (captures, cpu) = own.finish(exec, connect, outcome.pid);
        (captures, Some(cpu))
    } else if let Some(external) = external {
        match external.finish(exec, connect, outcome.pid) {
            Ok((capture, cpu)) => (vec![capture], Some(cpu)),
            Err(e) => {
                eprintln!("bpftop-ordered: {e}");
                return Err(1);
            }
        }
    } else {
        (Vec::new(), None)
    };
    Ok(Run {
        rate_per_s,
        bare_reference_per_s: rate_per_s,
        captures,
        observer_cpu_ns,
        generator_errors: failed,
    })
}

/// Waits while `running()`: applying the own observer's batches, or sleeping.
fn wait_for(own: &mut Option<OwnObserver>, mut running: impl FnMut() -> bool) {
    match own {
        Some(observer) => observer.pump_while(running),
        None => {
            while running() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// (min, median, max) of `values`; `None` when empty. The median of an even count is the
/// mean of the middle two.
pub fn min_median_max(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some((sorted[0], median, sorted[n - 1]))
}

/// Per run, its storm rate over its bare reference.
fn ratios(runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .map(|run| run.rate_per_s / run.bare_reference_per_s.max(1e-9))
        .collect()
}

fn print(args: &BenchArgs, configs: &[Config], runs: &[Vec<Run>]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let workload = value_name(args.workload);
    let storm = value_name(args.storm);
    if args.format == Format::Table {
        writeln!(
            out,
            "# overhead: workload={workload} storm={} duration={} rounds={} spawners={}; ratio = storm rate beside the observer / mean of the bare runs before and after it (bare row: each bare run / its round's mean)",
            storm,
            humantime::format_duration(args.duration),
            args.rounds,
            args.spawners
        )?;
        writeln!(
            out,
            "{:<10} {:>20} {:>20} {:>12}  FIELD-CORRECT CAPTURE (min over rounds)",
            "OBSERVER", "RATE/S min/med/max", "RATIO min/med/max", "CPU_MS med"
        )?;
    }
    for (config, runs) in configs.iter().zip(runs) {
        let rates: Vec<f64> = runs.iter().map(|r| r.rate_per_s).collect();
        let ratio = ratios(runs);
        let cpu: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.observer_cpu_ns.map(|c| c as f64))
            .collect();
        // Per observed table (mode or tool), the lowest field-correct ratio of any round.
        let mut worst: Vec<(String, Option<f64>, &'static str)> = Vec::new();
        for run in runs {
            for capture in &run.captures {
                let ratio = capture.correct_ratio();
                match worst.iter_mut().find(|(by, _, _)| *by == capture.by) {
                    Some(entry) => {
                        entry.1 = match (entry.1, ratio) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            _ => None,
                        }
                    }
                    None => worst.push((capture.by.clone(), ratio, capture.checked_fields)),
                }
            }
        }
        match args.format {
            Format::Json => {
                let stats = |v: &[f64]| {
                    min_median_max(v).map(|(a, b, c)| json!({"min": a, "median": b, "max": c}))
                };
                let captures: Vec<Value> = runs
                    .iter()
                    .map(|r| {
                        r.captures
                            .iter()
                            .map(|c| {
                                json!({"by": c.by, "generated": c.generated, "seen": c.seen,
                                       "correct": c.correct, "checked_fields": c.checked_fields})
                            })
                            .collect::<Vec<_>>()
                            .into()
                    })
                    .collect();
                writeln!(
                    out,
                    "{}",
                    json!({"overhead": {
                        "observer": config.label,
                        "workload": workload,
                        "storm": storm,
                        "rounds": args.rounds,
                        "runs": runs.len(),
                        "bare_reference_per_s": runs.iter().map(|r| r.bare_reference_per_s).collect::<Vec<_>>(),
                        "rates_per_s": rates,
                        "ratios": ratio,
                        "ratio": stats(&ratio),
                        "observer_cpu_ns": runs.iter().map(|r| r.observer_cpu_ns).collect::<Vec<_>>(),
                        "captures": captures,
                        "generator_errors": runs.iter().map(|r| r.generator_errors).collect::<Vec<_>>(),
                    }})
                )?;
            }
            Format::Table => {
                let triple = |v: &[f64], digits: usize| {
                    min_median_max(v).map_or("-".into(), |(a, b, c)| {
                        format!("{a:.digits$}/{b:.digits$}/{c:.digits$}")
                    })
                };
                let cpu_ms =
                    min_median_max(&cpu).map_or("-".into(), |(_, m, _)| format!("{:.0}", m / 1e6));
                let capture = if worst.is_empty() {
                    "-".to_string()
                } else {
                    worst
                        .iter()
                        .map(|(by, r, _)| {
                            format!(
                                "{by} {}",
                                r.map_or("-".into(), |r| format!("{:.2}%", r * 100.0))
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                writeln!(
                    out,
                    "{:<10} {:>20} {:>20} {:>12}  {capture}",
                    config.label,
                    triple(&rates, 0),
                    triple(&ratio, 3),
                    cpu_ms
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_median_max_of_odd_and_even_counts() {
        assert_eq!(min_median_max(&[3.0, 1.0, 2.0]), Some((1.0, 2.0, 3.0)));
        assert_eq!(min_median_max(&[4.0, 1.0, 2.0, 3.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(min_median_max(&[]), None);
    }

    #[test]
    fn ratios_compare_each_run_with_its_bare_neighbours() {
        let run = |rate_per_s, bare_reference_per_s| Run {
            rate_per_s,
            bare_reference_per_s,
            captures: Vec::new(),
            observer_cpu_ns: None,
            generator_errors: 0,
        };
        assert_eq!(
            ratios(&[run(90.0, 100.0), run(200.0, 200.0)]),
            vec![0.9, 1.0]
        );
    }

    #[test]
    fn every_mode_and_the_default_are_compared_with_bare() {
        let labels: Vec<String> = configs(Workload::Exec)
            .into_iter()
            .map(|c| c.label)
            .take(5)
            .collect();
        assert_eq!(labels, ["bare", "ring", "perf", "poll", "default"]);
    }
}
