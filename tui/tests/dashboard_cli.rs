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

/// Runs the binary with `args`; asserts exit code 2, nothing on stdout (the terminal is left
/// alone) and `text` on stderr, which it returns.
fn exits_2_saying(args: &[&str], text: &str) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    assert_eq!(stdout, "", "{args:?}: nothing on stdout");
    assert!(
        stderr.contains(text),
        "{args:?}: expected `{text}` in: {stderr}"
    );
    stderr
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
    exits_2_saying(
        &["--config", "/nonexistent/config.toml"],
        "/nonexistent/config.toml: cannot read the config file",
    );
}

#[test]
fn bad_theme_filter_and_interval_exit_2() {
    let broken = fixture("themes/broken.toml");
    for (args, text) in [
        (
            &["--theme", "solarised"][..],
            "--theme: unknown theme `solarised` (built-in: default, light",
        ),
        (
            &["--theme", &broken],
            "broken.toml:4:16: unknown colour `purplish`",
        ),
        (&["--filter", "pid:abc"], "pid must be a number, not `abc`"),
        // 50ms is a valid poll interval but below the dashboard's refresh range.
        (&["--interval", "50ms"], "--interval 50ms is out of range"),
        // Below 10ms the command line itself refuses it, for every command.
        (&["--interval", "5ms"], "at least 10ms"),
    ] {
        exits_2_saying(args, text);
    }
}

#[test]
fn without_a_terminal_the_dashboard_points_to_dump() {
    let stderr = exits_2_saying(&["--theme", "light"], "the dashboard needs a terminal");
    assert!(stderr.contains("bpftop-ordered dump"), "{stderr}");
}

/// Runs the binary with `args`, killing it (and failing) if it has not exited within 10 s.
fn run_bounded(args: &[&str]) -> (i32, String) {
    use std::time::{Duration, Instant};
    let mut child = Command::new(BINARY)
        .args(args)
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("bpftop-cli-test-empty-config"),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`bpftop-ordered {}` still ran after 10 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code().unwrap_or(-1), stderr)
}

/// Each command line exits 2, promptly, with its expected text on stderr.
fn assert_usage_errors(cases: &[(&[&str], &str)]) {
    for (args, expected) in cases {
        let (code, stderr) = run_bounded(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected `{expected}` in: {stderr}"
        );
    }
}

#[test]
fn config_and_theme_files_must_be_small_regular_files() {
    let dir = std::env::temp_dir().join(format!("bpftop-cli-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo.toml");
    let status = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    let big = dir.join("big.toml");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    let (fifo, big, dir_text) = (
        fifo.display().to_string(),
        big.display().to_string(),
        dir.display().to_string(),
    );
    let cases: [(&[&str], &str); 8] = [
        (
            &["--config", "/dev/zero"],
            "it is a character device, not a regular file",
        ),
        (&["--config", &fifo], "it is a FIFO, not a regular file"),
        (&["--config", &big], "too large"),
        (
            &["--config", &dir_text],
            "it is a directory, not a regular file",
        ),
        (
            &["--theme", "/dev/zero"],
            "cannot read the theme file: it is a character device",
        ),
        (
            &["--theme", &fifo],
            "cannot read the theme file: it is a FIFO",
        ),
        (&["--theme", &big], "the theme file is too large"),
        (
            &["--theme", &dir_text],
            "cannot read the theme file: it is a directory",
        ),
    ];
    assert_usage_errors(&cases);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn absurd_numbers_are_usage_errors_not_panics_or_wraps() {
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "dump",
                "--table",
                "processes",
                "--duration",
                "18446744073709551615s",
            ],
            "is too long for a run (at most 1 day)",
        ),
        (
            &[
                "dump",
                "--table",
                "processes",
                "--retention",
                "18446744074s",
            ],
            "is too long for the retention (at most 365 days)",
        ),
        (
            &[
                "dump",
                "--table",
                "processes",
                "--interval",
                "18446744073709551615s",
            ],
            "is too long for the interval (at most 1h)",
        ),
        (
            &[
                "dump",
                "--table",
                "processes",
                "--update-interval",
                "99999999999999999999s",
            ],
            "--update-interval",
        ),
        (
            &["dump", "--table", "processes", "--state-map-entries", "0"],
            "0 is not in 1..=16777216",
        ),
        (
            &["bench", "--spawners", "100000"],
            "100000 is not in 1..=256",
        ),
    ];
    assert_usage_errors(&cases);
}

/// The `--help` text of one option: its lines from `--name` to the next option.
fn option_help(help: &str, option: &str) -> String {
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(option));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("{option} in\n{help}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.trim_start().starts_with("--")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_command_help_describes_its_own_options() {
    let help = |args: &[&str]| {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    };
    let bench = help(&["bench", "--help"]);
    let dump = help(&["dump", "--help"]);
    let dashboard = help(&["--help"]);

    // bench compares all three modes by default, written as the option is typed.
    let modes = option_help(&bench, "--modes");
    assert!(modes.contains("[default: ring,perf,poll]"), "{modes}");

    // --interval: only the dashboard has a refresh.
    let interval = option_help(&dump, "--interval");
    assert!(
        interval.contains("Poll mode's snapshot interval"),
        "{interval}"
    );
    assert!(
        !interval.contains("dashboard") && !interval.contains("refresh"),
        "{interval}"
    );
    let interval = option_help(&bench, "--interval");
    assert!(interval.contains("/proc baseline"), "{interval}");
    assert!(
        !interval.contains("dashboard") && !interval.contains("refresh"),
        "{interval}"
    );
    let interval = option_help(&dashboard, "--interval");
    assert!(
        interval.contains("dashboard's refresh") && interval.contains("100ms..1h"),
        "{interval}"
    );

    // --format: bench prints collectors, not dump's rows.
    let format = option_help(&bench, "--format");
    assert!(format.contains("per collector"), "{format}");
    assert!(!format.contains("per row"), "{format}");
    let format = option_help(&dump, "--format");
    assert!(format.contains("One JSON object per row"), "{format}");
    assert!(!format.contains("collector"), "{format}");
}
