//! Shared helpers of the `serve` / `--attach` tests: a collector process on a private socket,
//! a group of its own (created, and removed on drop), and viewers run as `nobody` in it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use crate::kernel_support::{TempDir, BIN};

/// A group made for one test (`groupadd`), removed on drop (`groupdel`).
pub struct TestGroup {
    /// Its name.
    pub name: String,
    /// Its gid.
    pub gid: u32,
}

impl TestGroup {
    /// A new group `bto<pid>x<n>`.
    pub fn new() -> TestGroup {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bto{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let status = Command::new("groupadd")
            .arg("-f")
            .arg(&name)
            .status()
            .expect("groupadd");
        assert!(status.success(), "groupadd {name}: {status}");
        let gid = bpftop_ordered::remote::socket_path::group_id(&name).expect("new group's gid");
        TestGroup { name, gid }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

/// A running `serve` on a socket in a private directory, for a group of its own; killed and
/// reaped on drop (then the directory and the group are removed).
pub struct Collector {
    child: Option<Child>,
    /// The socket.
    pub socket: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    /// The group that may attach.
    pub group: TestGroup,
    _dir: TempDir,
}

impl Collector {
    /// Starts `serve --socket DIR/run/c.sock --group GROUP ARGS` in a new directory (`tag`)
    /// for a new group, and waits until it serves.
    pub fn start(tag: &str, args: &[&str]) -> Collector {
        let dir = TempDir::new(tag);
        let mut collector = Collector {
            child: None,
            socket: dir.path().join("run").join("c.sock"),
            log: dir.path().join("serve.log"),
            args: args.iter().map(|a| a.to_string()).collect(),
            group: TestGroup::new(),
            _dir: dir,
        };
        collector.restart();
        collector
    }

    /// Starts it again (after [`Collector::kill9`]) and waits until it serves.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--group")
            .arg(&self.group.name)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start serve");
        let pid = child.id();
        self.child = Some(child);
        let limit = Instant::now() + Duration::from_secs(30);
        while !self.log_text().contains(&format!("pid {pid} epoch")) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "serve exited ({status}) before serving:\n{}",
                    self.log_text()
                );
            }
            assert!(Instant::now() < limit, "serve is not up after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The collector's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What it logged so far (all runs).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `limit`) until the log contains `text`; panics with the log otherwise.
    pub fn wait_for_log(&self, text: &str, limit: Duration) {
        let end = Instant::now() + limit;
        while !self.log_text().contains(text) {
            assert!(
                Instant::now() < end,
                "serve did not log `{text}` within {limit:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, reaped.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `BIN args` as `nobody`, with `gid` as its only supplementary group (`None`: no group).
pub fn as_nobody(gid: Option<u32>, args: &[&str]) -> Output {
    let mut command = Command::new("setpriv");
    command.args(["--reuid=nobody", "--regid=nogroup"]);
    match gid {
        Some(gid) => command.arg(format!("--groups={gid}")),
        None => command.arg("--clear-groups"),
    };
    command
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv")
}

/// `dump --attach SOCKET --table TABLE --format json ARGS` as `nobody` in `gid`; panics with its
/// stderr unless it succeeds. Returns stdout's JSON lines.
pub fn attached_dump(
    socket: &Path,
    gid: u32,
    table: &str,
    args: &[&str],
) -> Vec<serde_json::Value> {
    let socket = socket.to_str().unwrap();
    let base = [
        "dump", "--attach", socket, "--table", table, "--format", "json",
    ];
    let output = as_nobody(Some(gid), &[&base[..], args].concat());
    assert!(
        output.status.success(),
        "dump --attach failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}
