//! The observers `bench --overhead` runs beside a storm, and how each one's capture is checked
//! field by field: this tool's own session (any set of modes, in this process, its batches
//! applied by the calling thread as `dump` does), or an external tool from libbpf-tools
//! (`execsnoop`, `tcplife`) in a child process writing to a file.

use std::{
    collections::HashSet,
    fs::File,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bridge::{
    contract::{ModeKind, RowOrigin},
    session::{Session, SessionConfig},
    stats::thread_cpu_ns,
    store::TableStore,
};

use super::{
    procfs::is_loopback_v4,
    workload::{ConnectTruth, VariedExecTruth},
    START_SLACK_AFTER_NS as START_AFTER_NS, START_SLACK_BEFORE_NS as START_BEFORE_NS,
};
/// Payload each connect-storm client sends.
const CONNECT_PAYLOAD_BYTES: u64 = 100;
/// How long every observer runs before the storm starts (after attaching, for the tools;
/// after every mode's first batch, for ours).
const SETTLE: Duration = Duration::from_millis(500);

/// What one observer saw of one storm, per table it reports (one entry per mode, or one for
/// an external tool).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capture {
    /// Who saw it: a mode name or the tool's name.
    pub by: String,
    /// Entities of the storm whose identity (pid + start time, or client 4-tuple) was seen.
    pub seen: usize,
    /// Of those, entities whose fields were right too (see [`Capture::checked_fields`]).
    pub correct: usize,
    /// Generated entities.
    pub generated: usize,
    /// Which fields `correct` checked.
    pub checked_fields: &'static str,
}

impl Capture {
    /// Field-correct captures / generated; `None` when nothing was generated.
    pub fn correct_ratio(&self) -> Option<f64> {
        (self.generated > 0).then(|| self.correct as f64 / self.generated as f64)
    }
}

/// One of this tool's sessions, running while a storm runs.
pub struct OwnObserver {
    session: Session,
    store: TableStore,
    modes: Vec<ModeKind>,
    cpu_at_start_ns: u64,
}

impl OwnObserver {
    /// Starts a session with `config`, waits until every mode delivered its first batch (at
    /// most 5 s), then applies for [`SETTLE`] more, as long as the external tools are given
    /// after they attach, so that no run measures a start-up. `Err` holds the exit code of a
    /// failed start.
    pub fn start(config: SessionConfig) -> Result<Self, i32> {
        let modes = config.modes();
        let session = crate::headless::start_session(config)?;
        let mut store = session.new_store();
        let ready_by = Instant::now() + Duration::from_secs(5);
        while !modes.iter().all(|m| {
            let t = store.mode(*m);
            t.active || t.failure.is_some()
        }) {
            let left = ready_by.saturating_duration_since(Instant::now());
            match session.messages().recv_timeout(left) {
                Ok(message) => store.handle(message),
                Err(_) => break,
            }
        }
        let mut observer = OwnObserver {
            session,
            store,
            modes,
            cpu_at_start_ns: thread_cpu_ns(),
        };
        let settled_at = Instant::now() + SETTLE;
        observer.pump_while(|| Instant::now() < settled_at);
        Ok(observer)
    }

    /// Applies batches until `done()` is true (checked every 10 ms).
    pub fn pump_while(&mut self, mut running: impl FnMut() -> bool) {
        while running() {
            self.session
                .pump_until(&mut self.store, Instant::now() + Duration::from_millis(10));
        }
    }

    /// Converges the tables (final flush and drain), checks them against the truth and stops
    /// the session. Returns one capture per mode and the observer's CPU time in ns (the mode
    /// threads plus this thread's applying).
    pub fn finish(
        mut self,
        exec: Option<&VariedExecTruth>,
        connect: Option<&ConnectTruth>,
        storm_pid: u32,
    ) -> (Vec<Capture>, u64) {
        self.session.finish_into(&mut self.store);
        let apply_cpu_ns = thread_cpu_ns().saturating_sub(self.cpu_at_start_ns);
        let mut captures = Vec::new();
        let mut cpu_ns = apply_cpu_ns;
        for mode in &self.modes {
            let tables = self.store.mode(*mode);
            cpu_ns += self.store.stats(*mode).cpu_ns;
            let mut capture = Capture {
                by: mode.to_string(),
                ..Capture::default()
            };
            if let Some(truth) = exec {
                capture.generated = truth.children.len();
                capture.checked_fields = "pid+start, comm, exit status, cmdline";
                let mut seen = HashSet::new();
                for row in tables.processes.rows().iter() {
                    let Some(want) = truth.children.get(&row.key.tgid) else {
                        continue;
                    };
                    let start = row.key.start_ns;
                    if row.origin != RowOrigin::Kernel
                        || start + START_BEFORE_NS < want.spawned_ns
                        || start > want.spawned_ns + START_AFTER_NS
                        || !seen.insert(row.key.tgid)
                    {
                        continue;
                    }
                    let cmdline = self.store.cmdline(row).map(|line| &*line.text);
                    if row.comm() == want.comm
                        && row.exit_status() == Some(want.exit_status)
                        && cmdline == Some(want.cmdline.as_str())
                    {
                        capture.correct += 1;
                    }
                }
                capture.seen = seen.len();
            }
            if let Some(truth) = connect {
                capture.generated = truth.tuples.len();
                capture.checked_fields = "4-tuple, owner pid, CLOSE, bytes sent";
                let mut seen = HashSet::new();
                for row in tables.connections.iter() {
                    let tuple = (row.key.sport, row.key.dport);
                    if row.origin != RowOrigin::Kernel
                        || !is_loopback_v4(&row.key)
                        || !truth.tuples.contains(&tuple)
                        || !seen.insert(tuple)
                    {
                        continue;
                    }
                    if row.owner_pid() == Some(storm_pid)
                        && row.is_closed()
                        && row.bytes().map(|(sent, _)| sent) == Some(CONNECT_PAYLOAD_BYTES)
                    {
                        capture.correct += 1;
                    }
                }
                capture.seen = seen.len();
            }
            captures.push(capture);
        }
        self.session.stop();
        (captures, cpu_ns)
    }
}

/// An external observer from libbpf-tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalTool {
    /// `execsnoop`: one line per exec (comm, pid, ppid, return value, arguments).
    Execsnoop,
    /// `tcplife`: one line per closed TCP session (pid, comm, addresses, ports, KB, ms).
    Tcplife,
}

impl ExternalTool {
    /// The tool's name as installed.
    pub fn name(self) -> &'static str {
        match self {
            ExternalTool::Execsnoop => "execsnoop",
            ExternalTool::Tcplife => "tcplife",
        }
    }

    /// Where the tool is, when installed (Debian's `libbpf-tools` puts it in /usr/sbin).
    pub fn path(self) -> Option<PathBuf> {
        ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]
            .iter()
            .map(|dir| PathBuf::from(dir).join(self.name()))
            .find(|p| p.is_file())
    }
}

/// A running external tool, writing to a file (block-buffered, as when redirected).
pub struct ExternalObserver {
    tool: ExternalTool,
    child: Child,
    output: PathBuf,
}

impl ExternalObserver {
    /// Starts the tool and waits until it has attached (it holds a BPF link or perf event fd),
    /// then 500 ms more for its buffers; at most 10 s.
    pub fn start(tool: ExternalTool) -> anyhow::Result<Self> {
        let path = tool
            .path()
            .ok_or_else(|| anyhow::anyhow!("{} is not installed", tool.name()))?;
        let output = std::env::temp_dir().join(format!(
            "bpftop-overhead-{}-{}.txt",
            tool.name(),
            std::process::id()
        ));
        let file = File::create(&output)?;
        let mut child = Command::new(&path)
            .stdout(Stdio::from(file))
            .stderr(Stdio::piped())
            .spawn()?;
        let ready_by = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                anyhow::bail!("{} exited at start ({status}): {}", tool.name(), err.trim());
            }
            if holds_bpf_attachment(child.id()) || Instant::now() >= ready_by {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(SETTLE);
        Ok(ExternalObserver {
            tool,
            child,
            output,
        })
    }

    /// Lets the tool drain for 1 s, stops it (SIGINT, as a user would), reads its output and
    /// checks it against the truth. Returns the capture and the tool's CPU time in ns.
    pub fn finish(
        mut self,
        exec: Option<&VariedExecTruth>,
        connect: Option<&ConnectTruth>,
        storm_pid: u32,
    ) -> anyhow::Result<(Capture, u64)> {
        std::thread::sleep(Duration::from_secs(1));
        let cpu_ns = child_cpu_ns(self.child.id()).unwrap_or(0);
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.output)?;
        let _ = std::fs::remove_file(&self.output);
        let mut capture = Capture {
            by: self.tool.name().into(),
            ..Capture::default()
        };
        match self.tool {
            ExternalTool::Execsnoop => {
                let truth = exec.ok_or_else(|| anyhow::anyhow!("execsnoop needs an exec storm"))?;
                capture.generated = truth.children.len();
                capture.checked_fields = "pid, comm, exec return 0, args (no exit status)";
                let mut seen = HashSet::new();
                for line in text.lines() {
                    let Some((comm, pid, ret, args)) = parse_execsnoop(line) else {
                        continue;
                    };
                    let Some(want) = truth.children.get(&pid) else {
                        continue;
                    };
                    if !seen.insert(pid) {
                        continue;
                    }
                    if comm == want.comm && ret == 0 && args == want.cmdline {
                        capture.correct += 1;
                    }
                }
                capture.seen = seen.len();
            }
            ExternalTool::Tcplife => {
                let truth =
                    connect.ok_or_else(|| anyhow::anyhow!("tcplife needs a connect storm"))?;
                capture.generated = truth.tuples.len();
                capture.checked_fields = "4-tuple, pid";
                let mut seen = HashSet::new();
                for line in text.lines() {
                    let Some((pid, tuple)) = parse_tcplife(line) else {
                        continue;
                    };
                    if truth.tuples.contains(&tuple) && seen.insert(tuple) && pid == storm_pid {
                        capture.correct += 1;
                    }
                }
                capture.seen = seen.len();
            }
        }
        Ok((capture, cpu_ns))
    }
}

/// `PCOMM PID PPID RET ARGS` → (comm, pid, ret, args).
fn parse_execsnoop(line: &str) -> Option<(&str, u32, i64, &str)> {
    let mut rest = line.trim_start();
    let mut field = || {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (f, r) = rest.split_at(end);
        rest = r.trim_start();
        f
    };
    let comm = field();
    let pid = field().parse().ok()?;
    let _ppid: u32 = field().parse().ok()?;
    let ret = field().parse().ok()?;
    Some((comm, pid, ret, rest.trim_end()))
}

/// `PID COMM LADDR LPORT RADDR RPORT TX_KB RX_KB MS` (IPv4, 127.0.0.1 both ends) →
/// (pid, (local port, remote port)).
fn parse_tcplife(line: &str) -> Option<(u32, (u16, u16))> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 9 {
        return None;
    }
    // COMM may contain spaces: count the address and port fields from the end.
    let n = fields.len();
    let (laddr, lport, raddr, rport) = (fields[n - 7], fields[n - 6], fields[n - 5], fields[n - 4]);
    if laddr != "127.0.0.1" || raddr != "127.0.0.1" {
        return None;
    }
    Some((
        fields[0].parse().ok()?,
        (lport.parse().ok()?, rport.parse().ok()?),
    ))
}

/// True when `pid` holds a BPF link or a perf event fd (what attaching a program leaves).
fn holds_bpf_attachment(pid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    dir.filter_map(Result::ok).any(|entry| {
        std::fs::read_link(entry.path()).is_ok_and(|target| {
            let t = target.to_string_lossy();
            t == "anon_inode:bpf_link" || t == "anon_inode:[perf_event]"
        })
    })
}

/// utime + stime of a live process, ns (`/proc/PID/stat` fields 14 and 15).
fn child_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * bridge::procfs_seed::clock_tick_ns())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execsnoop_lines_parse_with_their_arguments() {
        assert_eq!(
            parse_execsnoop("true             12120  11324    0 /bin/true ovh-0-4"),
            Some(("true", 12120, 0, "/bin/true ovh-0-4"))
        );
        assert_eq!(
            parse_execsnoop("PCOMM            PID    PPID   RET ARGS"),
            None
        );
    }

    #[test]
    fn tcplife_lines_parse_from_the_end() {
        let line =
            "4242  bench conn 0 127.0.0.1       40000 127.0.0.1       8080      0      0 0.05";
        assert_eq!(parse_tcplife(line), Some((4242, (40000, 8080))));
        assert_eq!(
            parse_tcplife(
                "PID   COMM       LADDR           LPORT RADDR           RPORT TX_KB RX_KB MS"
            ),
            None
        );
    }

    #[test]
    fn a_capture_ratio_counts_only_correct_rows() {
        let capture = Capture {
            seen: 10,
            correct: 9,
            generated: 12,
            ..Capture::default()
        };
        assert_eq!(capture.correct_ratio(), Some(0.75));
        assert_eq!(Capture::default().correct_ratio(), None);
    }
}
