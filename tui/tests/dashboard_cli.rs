//! The dashboard's start-up contract, through the built binary (no root, no terminal needed):
//! a bad config, theme, filter or interval is reported on stderr with exit code 2 before the
//! terminal is touched (nothing at all on stdout: no escape sequences), and without a terminal
//! the dashboard refuses with exit code 2 and points to `dump`.

use std::{path::Path, process::Command};

const BINARY: &str = env!("CARGO_BIN_EXE_bpftop-ordered");

fn run(args: &[&str]) -> (i32, String, String) {
    let empty = std::env::temp_dir().join("bpftop-cli-test-empty-config");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(BINARY)
        .args(args)
        .env("XDG_CONFIG_HOME", &empty)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/invalid_configs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_bad_config_exits_2_with_file_and_line_and_leaves_the_terminal_alone() {
    let path = fixture("bad_mode.toml");
    let (code, stdout, stderr) = run(&["--config", &path]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "", "nothing written to the terminal");
    assert_eq!(
        stderr.trim(),
        format!("bpftop-ordered: {path}:3:8: unknown mode `rung` (valid: ring, perf, poll)")
    );
}

#[test]
fn a_missing_config_exits_2() {
    let (code, stdout, stderr) = run(&["--config", "/nonexistent/config.toml"]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("/nonexistent/config.toml: cannot read the config file"),
        "{stderr}"
    );
}

#[test]
fn bad_theme_filter_and_interval_exit_2() {
    let (code, stdout, stderr) = run(&["--theme", "solarised"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.contains("--theme: unknown theme `solarised` (built-in: default, light"),
        "{stderr}"
    );

    let broken = fixture("themes/broken.toml");
    let (code, _, stderr) = run(&["--theme", &broken]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("broken.toml:4:16: unknown colour `purplish`"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&["--filter", "pid:abc"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("pid must be a number, not `abc`"),
        "{stderr}"
    );

    // 50ms is a valid poll interval but below the dashboard's refresh range.
    let (code, _, stderr) = run(&["--interval", "50ms"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--interval 50ms is out of range"),
        "{stderr}"
    );
    // Below 10ms the command line itself refuses it, for every command.
    let (code, _, stderr) = run(&["--interval", "5ms"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("at least 10ms"), "{stderr}");
}

#[test]
fn without_a_terminal_the_dashboard_points_to_dump() {
    let (code, stdout, stderr) = run(&["--theme", "light"]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("the dashboard needs a terminal"),
        "{stderr}"
    );
    assert!(stderr.contains("bpftop-ordered dump"), "{stderr}");
}
