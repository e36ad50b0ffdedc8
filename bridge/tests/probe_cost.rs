//! The probe-cost monitor on the running kernel: off until shown, and while shown the exec
//! probe's run count follows the execs this test makes.
mod common;

use std::time::{Duration, Instant};

use bridge::{
    contract::ModeKind,
    probe_cost::CostReport,
    session::{Session, SessionConfig},
};

/// Waits (at most 10 s) for a report satisfying `done`.
fn wait_for(
    monitor: &bridge::probe_cost::ProbeCostMonitor,
    mut work: impl FnMut(),
    done: impl Fn(&CostReport) -> bool,
) -> CostReport {
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        work();
        let report = monitor.report();
        if done(&report) || Instant::now() > limit {
            return report;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn probe_cost_follows_execs_while_shown() {
    if !common::privileged_or_skip("probe_cost_follows_execs_while_shown") {
        return;
    }
    let mut config = SessionConfig::with_modes(&[ModeKind::Ring]);
    config.seed_from_procfs = false;
    let session = Session::start(config).expect("session starts");
    let monitor = session.probe_cost_monitor().expect("monitor starts");
    std::thread::sleep(Duration::from_millis(1200));
    let off = monitor.report();
    assert!(
        !off.stats_on && off.programs.is_empty(),
        "off until shown: {off:?}"
    );

    monitor.set_shown(true);
    let mut execs = 0u32;
    let report = wait_for(
        &monitor,
        || {
            for _ in 0..20 {
                let _ = std::process::Command::new("/bin/true").status();
                execs += 1;
            }
        },
        |r| {
            r.programs
                .iter()
                .any(|p| p.name == "sched_process_exec" && p.runs_per_s.unwrap_or(0.0) > 0.0)
        },
    );
    assert!(report.error.is_none(), "{report:?}");
    assert!(report.stats_on, "{report:?}");
    let exec = report
        .programs
        .iter()
        .find(|p| p.name == "sched_process_exec")
        .unwrap_or_else(|| panic!("no exec program in {report:?}"));
    let runs = exec.runs_per_s.expect("known run rate");
    assert!(runs > 0.0, "{execs} execs, report {report:?}");
    let avg = exec.avg_ns_per_run.expect("ran, so an average");
    assert!(avg > 0.0 && avg < 1e8, "average {avg} ns");
    assert!(
        exec.cpu_percent.is_some_and(|p| p > 0.0 && p < 100.0),
        "{exec:?}"
    );
    // Every attached program is listed, the context switch probe among them.
    assert!(
        report.programs.iter().any(|p| p.name == "sched_switch"),
        "{report:?}"
    );

    monitor.set_shown(false);
    let closed = wait_for(&monitor, || {}, |r| r.programs.is_empty());
    assert!(!closed.stats_on && closed.programs.is_empty(), "{closed:?}");
    drop(monitor);
    session.stop();
}
