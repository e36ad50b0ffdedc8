//! pid reuse through the real binary: two processes that get the same pid are two rows (the key
//! is tgid + start time). Its own test binary, because forcing a pid with
//! /proc/sys/kernel/ns_last_pid would hand that pid to whatever else the test binary spawns.
mod kernel_support;

use std::{
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use kernel_support::{num, privileged, run_dumps, skip_or_fail, text, DumpSpec, TempDir};
use serde_json::Value;

const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";

/// Serialises writers of ns_last_pid within this binary.
static NS_LAST_PID_LOCK: Mutex<()> = Mutex::new(());

/// Runs `program -c 'exit 1'`, then makes the next pid of the namespace equal to its pid and
/// runs `program -c 'exit 2'`. Retries when another process takes the pid in between. Returns
/// the shared pid.
fn two_processes_with_one_pid(program: &std::path::Path) -> u32 {
    let _lock = NS_LAST_PID_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let run = |code: u32| {
        let mut child = Command::new(program)
            .arg("-c")
            .arg(format!("exit {code}"))
            .spawn()
            .expect("spawn bto_reuse");
        let pid = child.id();
        let status = child.wait().expect("wait bto_reuse");
        assert_eq!(status.code(), Some(code as i32));
        pid
    };
    let end = Instant::now() + Duration::from_secs(5);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let first = run(1);
        std::fs::write(NS_LAST_PID, format!("{}", first - 1)).expect("write ns_last_pid");
        let second = run(2);
        if second == first {
            println!("pid {first} reused after {attempts} attempt(s)");
            return first;
        }
        assert!(
            Instant::now() < end,
            "could not get pid {first} twice in {attempts} attempts (busy machine?)"
        );
    }
}

#[test]
fn pid_reuse_makes_two_rows() {
    let test = privileged!("pid_reuse_makes_two_rows");
    if let Err(e) = std::fs::OpenOptions::new().write(true).open(NS_LAST_PID) {
        skip_or_fail(test, &format!("cannot write {NS_LAST_PID}: {e}"));
        return;
    }
    let dir = TempDir::new("reuse");
    let program = dir.program("/bin/sh", "bto_reuse");
    let spec = DumpSpec::json("processes", &["--mode", "ring"]);
    let (outputs, pid) = run_dumps(
        &[spec],
        Duration::from_secs(3),
        Duration::from_millis(500),
        || two_processes_with_one_pid(&program),
    );
    let rows: Vec<&Value> = outputs[0]
        .rows_of("ring")
        .filter(|r| num(r, "pid") == pid as u64)
        .collect();
    println!("{test}: rows with pid {pid}: {rows:#?}");
    assert_eq!(rows.len(), 2, "pid {pid}: {rows:?}");
    // First-seen order is creation order here.
    let (a, b) = (rows[0], rows[1]);
    assert!(
        num(a, "start_ns") < num(b, "start_ns"),
        "start times must differ and follow creation: {a} {b}"
    );
    for (row, code) in [(a, 1), (b, 2)] {
        assert_eq!(text(row, "comm"), "bto_reuse", "{row}");
        assert_eq!(text(row, "state"), "exited", "{row}");
        assert_eq!(row["exit_code"], code, "{row}");
        assert_eq!(num(row, "ppid"), std::process::id() as u64, "{row}");
        assert_eq!(text(row, "origin"), "kernel", "{row}");
    }
    // The first one exited before the second started.
    assert!(num(a, "exit_ns") <= num(b, "start_ns"), "{a} {b}");
}
