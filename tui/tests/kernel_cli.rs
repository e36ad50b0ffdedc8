//! Exit codes of the CLI contract: usage errors exit 2 with a message naming the valid values;
//! missing privileges exit 3 with a message naming the missing capability (provoked as root by
//! running the binary under `setpriv` with a reduced capability bounding set).
mod kernel_support;

use std::process::Command;

/// Runs the binary with `args`, returns (exit code, stderr).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(kernel_support::BIN)
        .args(args)
        .output()
        .expect("run bpftop-ordered");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_table_is_a_usage_error_naming_the_valid_tables() {
    let (code, stderr) = run(&["dump", "--table", "bogus"]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(
        stderr.contains("processes") && stderr.contains("connections"),
        "{stderr}"
    );
}

#[test]
fn unknown_mode_is_a_usage_error_naming_the_valid_modes() {
    let (code, stderr) = run(&["dump", "--mode", "bogus", "--table", "processes"]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    for mode in ["ring", "perf", "poll"] {
        assert!(stderr.contains(mode), "{stderr}");
    }
}

#[test]
fn ring_size_that_is_not_a_page_multiple_is_a_usage_error() {
    let (code, stderr) = run(&["dump", "--table", "processes", "--ring-bytes", "5000"]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("4096"), "{stderr}");
}

#[test]
fn an_interval_too_short_to_poll_is_a_usage_error() {
    let (code, stderr) = run(&["dump", "--table", "processes", "--interval", "0s"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("at least 10ms"), "{stderr}");
}

#[test]
fn bad_duration_is_a_usage_error() {
    let (code, stderr) = run(&["dump", "--table", "processes", "--duration", "soon"]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
}

/// `setpriv` (util-linux) runs the binary with a reduced capability bounding set: as root, the
/// exec'd program then holds exactly the capabilities left in it.
fn setpriv() -> Option<&'static str> {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Runs `dump` with only `caps` (e.g. "-all,+bpf") in the bounding set.
fn run_with_caps(caps: &str) -> Option<(Option<i32>, String, String)> {
    let setpriv = setpriv()?;
    let out = Command::new(setpriv)
        .arg(format!("--bounding-set={caps}"))
        .arg("--inh-caps=-all")
        .arg(kernel_support::BIN)
        .args(["dump", "--table", "processes", "--duration", "1s"])
        .output()
        .expect("run setpriv");
    Some((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// [`run_with_caps`], or `None` after skipping `test` (failing under CI=true) without setpriv.
fn run_with_caps_or_skip(test: &str, caps: &str) -> Option<(Option<i32>, String, String)> {
    let run = run_with_caps(caps);
    if run.is_none() {
        kernel_support::skip_or_fail(test, "setpriv (util-linux) is not installed");
    }
    run
}

/// `dump` with only `caps` in the bounding set exits 3 naming the capability it lacks.
fn check_exits_3_naming(test: &str, caps: &str, missing: &str) {
    let Some((code, _, stderr)) = run_with_caps_or_skip(test, caps) else {
        return;
    };
    assert_eq!(code, Some(3), "stderr: {stderr}");
    assert!(stderr.contains(missing), "{stderr}");
}

#[test]
fn without_capabilities_dump_exits_3_naming_cap_bpf() {
    let test = "without_capabilities_dump_exits_3_naming_cap_bpf";
    check_exits_3_naming(test, "-all", "CAP_BPF");
}

#[test]
fn with_cap_bpf_only_dump_exits_3_naming_cap_perfmon() {
    let test = "with_cap_bpf_only_dump_exits_3_naming_cap_perfmon";
    if !kernel_support::privileged_or_skip(test) {
        return; // without CAP_BPF ourselves we cannot hand it on
    }
    check_exits_3_naming(test, "-all,+bpf", "CAP_PERFMON");
}

#[test]
fn cap_bpf_and_cap_perfmon_suffice_without_cap_sys_admin() {
    let test = "cap_bpf_and_cap_perfmon_suffice_without_cap_sys_admin";
    if !kernel_support::privileged_or_skip(test) {
        return;
    }
    let Some((code, stdout, stderr)) = run_with_caps_or_skip(test, "-all,+bpf,+perfmon") else {
        return;
    };
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let stats = stdout
        .lines()
        .filter(|l| l.starts_with("{\"stats\""))
        .count();
    assert_eq!(stats, 1, "one stats line expected: {stdout}");
}

/// `dump … | head -1`: when the reader goes away the dump ends quietly with exit 0 (not
/// `Broken pipe (os error 32)` and exit 1).
#[test]
fn a_reader_that_goes_away_ends_the_dump_quietly() {
    use std::io::{BufRead, BufReader};
    let test = "a_reader_that_goes_away_ends_the_dump_quietly";
    if !kernel_support::privileged_or_skip(test) {
        return;
    }
    // Three modes: more output than a pipe holds, so writing goes on after the reader left.
    let mut child = Command::new(kernel_support::BIN)
        .args([
            "dump",
            "--modes",
            "ring,perf,poll",
            "--table",
            "processes",
            "--duration",
            "1s",
        ])
        .args(["--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run bpftop-ordered");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here, as `head -1` exits after its line.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(first.starts_with("{\"mode\":\"ring\""), "{first}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
