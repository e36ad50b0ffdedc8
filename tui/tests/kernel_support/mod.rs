//! Shared helpers of the real-kernel integration tests (`tests/kernel_*.rs`): run the real
//! `bpftop-ordered dump` the way a user does, know when its probes are attached, parse its JSON
//! lines, and generate workloads whose children, sockets and files are cleaned up even when an
//! assertion fails.
//!
//! Timing model: `dump` collects for `--duration` counted from the moment its session is up
//! (probes attached, mode threads started). [`run_dumps`] waits for that moment by watching the
//! dump's threads and file descriptors in /proc, runs the workload, and checks the workload
//! finished early enough before the dump's deadline for every mode to report it; on a slow
//! machine it retries with a longer duration instead of failing.
#![allow(dead_code)]

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bpftop-ordered");

/// A dash loop of about 100 ms of CPU on this kind of machine (≥ 20 ms even on a 5× faster one).
pub const SPIN: &str = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done";

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Why this process cannot load eBPF probes, or `None` when it can (root, or CAP_BPF and
/// CAP_PERFMON, or CAP_SYS_ADMIN in CapEff).
pub fn missing_privileges() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let Some(caps) = caps else {
        return (euid != 0).then(|| format!("not root (euid {euid}) and CapEff unreadable"));
    };
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        None
    } else {
        Some(format!(
            "needs CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN, as root normally has (euid {euid}, \
             CapEff {caps:#x})"
        ))
    }
}

/// Skips (prints `SKIP <test>: <reason>`, returns false) — or, under `CI=true`, fails: a skip in
/// CI would hide a broken pipeline.
pub fn skip_or_fail(test: &str, reason: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: cannot run under CI=true: {reason}");
    }
    eprintln!("SKIP {test}: {reason}");
    false
}

/// True when the test may load probes; otherwise skips or fails (see [`skip_or_fail`]).
pub fn privileged_or_skip(test: &str) -> bool {
    match missing_privileges() {
        None => true,
        Some(reason) => skip_or_fail(test, &reason),
    }
}

/// `let test = privileged!("name");` opens a real-kernel test: it returns from the test when
/// this process may not load probes (a skip, or a failure under `CI=true`: see
/// [`privileged_or_skip`]), else it is the test's name.
#[allow(unused_macros)]
macro_rules! privileged {
    ($test:expr) => {{
        let test: &str = $test;
        if !$crate::kernel_support::privileged_or_skip(test) {
            return;
        }
        test
    }};
}
#[allow(unused_imports)]
pub(crate) use privileged;

/// One `dump` invocation (arguments after the binary name).
#[derive(Clone, Debug)]
pub struct DumpSpec {
    args: Vec<String>,
    modes: Vec<String>,
}

impl DumpSpec {
    /// `args` without `--duration` (the harness sets it). Modes are taken from `--mode` /
    /// `--modes` (default ring) to know which mode threads to wait for.
    pub fn new(args: &[&str]) -> Self {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut modes = vec!["ring".to_string()];
        for pair in args.windows(2) {
            if pair[0] == "--mode" {
                modes = vec![pair[1].clone()];
            } else if pair[0] == "--modes" {
                modes = pair[1].split(',').map(str::to_string).collect();
            }
        }
        assert!(
            !args.iter().any(|a| a == "--duration"),
            "the harness sets --duration"
        );
        DumpSpec { args, modes }
    }

    /// `dump --table <table> --format json` followed by `args` (modes and other options).
    pub fn json(table: &str, args: &[&str]) -> Self {
        DumpSpec::new(&[&["dump", "--table", table, "--format", "json"][..], args].concat())
    }
}

/// A running `dump`; killed and reaped on drop if still running.
pub struct RunningDump {
    child: Option<Child>,
    spec: DumpSpec,
    duration: Duration,
    ready_at: Option<Instant>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn read_all(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// Margin after the session looks up: a mode thread has its name before it enters its loop,
/// and perf turns its emission on just after opening its buffers.
const READY_MARGIN: Duration = Duration::from_millis(100);

impl RunningDump {
    /// Starts `bpftop-ordered <spec> --duration <duration>` with stdout/stderr captured.
    pub fn start(spec: &DumpSpec, duration: Duration) -> Self {
        let mut child = Command::new(BIN)
            .args(&spec.args)
            .arg("--duration")
            .arg(format!("{}ms", duration.as_millis()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdout = read_all(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        RunningDump {
            child: Some(child),
            spec: spec.clone(),
            duration,
            ready_at: None,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The dump's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// True when every mode thread of the session is running (and, for perf, its per-CPU
    /// buffers are open, after which it enables its kernel emission).
    fn session_is_up(&self) -> bool {
        let pid = self.pid();
        let mut threads = BTreeSet::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                if let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) {
                    threads.insert(comm.trim().to_string());
                }
            }
        }
        let threads_up = self
            .spec
            .modes
            .iter()
            .all(|m| threads.contains(&format!("bridge-{m}")));
        if !threads_up {
            return false;
        }
        if self.spec.modes.iter().any(|m| m == "perf") {
            let perf_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten()
                        .filter(|fd| {
                            std::fs::read_link(fd.path())
                                .map(|l| l.to_string_lossy().contains("perf_event"))
                                .unwrap_or(false)
                        })
                        .count()
                })
                .unwrap_or(0);
            return perf_fds >= online_cpus();
        }
        true
    }

    /// Waits until the probes are attached and the mode threads run (at most 20 s). Panics with
    /// the dump's stderr if it exits first.
    pub fn wait_ready(&mut self) {
        let limit = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let stderr = self.stderr.take().map(|h| h.join().unwrap()).unwrap();
                panic!(
                    "dump {:?} exited ({status}) before its probes were up; stderr:\n{}",
                    self.spec.args,
                    String::from_utf8_lossy(&stderr)
                );
            }
            if self.session_is_up() {
                std::thread::sleep(READY_MARGIN);
                self.ready_at = Some(Instant::now());
                return;
            }
            assert!(
                Instant::now() < limit,
                "dump {:?} did not attach within 20 s",
                self.spec.args
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Latest instant the dump may stop collecting (it starts counting before we see it up).
    pub fn deadline(&self) -> Instant {
        self.ready_at.expect("wait_ready first") - READY_MARGIN + self.duration
    }

    /// Waits for the dump to finish and parses its output. Panics on a non-zero exit.
    pub fn finish(mut self) -> DumpOutput {
        let mut child = self.child.take().unwrap();
        let limit = Instant::now() + self.duration + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dump {:?} did not finish in time", self.spec.args);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let stderr =
            String::from_utf8_lossy(&self.stderr.take().unwrap().join().unwrap()).into_owned();
        assert!(
            status.success(),
            "dump {:?} failed ({status}); stderr:\n{stderr}",
            self.spec.args
        );
        DumpOutput::parse(&String::from_utf8_lossy(&stdout), stderr)
    }
}

impl Drop for RunningDump {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts every dump, waits until all are attached, runs `workload`, and collects the outputs.
/// The workload must end at least `tail` before the dumps stop (time for the slowest mode — a
/// poll interval plus a read — to report its last change); when it did not (slow machine), the
/// attempt is discarded and repeated with twice the duration, up to 3 attempts. The workload's
/// result (e.g. guards keeping children or sockets alive) is dropped only after the dumps ended.
pub fn run_dumps<T>(
    specs: &[DumpSpec],
    duration: Duration,
    tail: Duration,
    mut workload: impl FnMut() -> T,
) -> (Vec<DumpOutput>, T) {
    let mut duration = duration;
    for attempt in 1..=3 {
        let mut dumps: Vec<RunningDump> = specs
            .iter()
            .map(|s| RunningDump::start(s, duration))
            .collect();
        for d in &mut dumps {
            d.wait_ready();
        }
        let result = workload();
        let deadline = dumps.iter().map(|d| d.deadline()).min().unwrap();
        let in_time = Instant::now() + tail <= deadline;
        if !in_time && attempt < 3 {
            eprintln!(
                "note: workload ended less than {tail:?} before the dump deadline (attempt \
                 {attempt}, duration {duration:?}); retrying with a longer duration"
            );
            drop(result);
            drop(dumps);
            duration *= 2;
            continue;
        }
        assert!(
            in_time,
            "workload still too slow for a {duration:?} dump after 3 attempts"
        );
        let outputs = dumps.into_iter().map(RunningDump::finish).collect();
        return (outputs, result);
    }
    unreachable!()
}

/// One dump (see [`run_dumps`]) around an [`exec_burst`] of `count` `/bin/true` from 2 threads:
/// the dump's output and the burst.
pub fn dump_exec_burst(
    spec: DumpSpec,
    count: usize,
    duration: Duration,
    tail: Duration,
) -> (DumpOutput, Vec<(u32, ExitStatus)>) {
    let (mut outputs, burst) = run_dumps(&[spec], duration, tail, || {
        exec_burst("/bin/true", count, 2)
    });
    (outputs.remove(0), burst)
}

/// Parsed `dump --format json` output: rows and one stats object per mode.
#[derive(Debug)]
pub struct DumpOutput {
    /// Row objects, in printed order (per mode, first-seen order).
    pub rows: Vec<Value>,
    /// The `stats` objects, one per mode.
    pub stats: Vec<Value>,
    /// What the dump wrote to stderr.
    pub stderr: String,
}

impl DumpOutput {
    fn parse(stdout: &str, stderr: String) -> Self {
        let mut rows = Vec::new();
        let mut stats = Vec::new();
        for (n, line) in stdout.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", n + 1));
            match value.get("stats") {
                Some(s) => stats.push(s.clone()),
                None => rows.push(value),
            }
        }
        DumpOutput {
            rows,
            stats,
            stderr,
        }
    }

    /// Rows of one mode's table.
    pub fn rows_of<'a>(&'a self, mode: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.rows.iter().filter(move |r| r["mode"] == mode)
    }

    /// The stats object of one mode (panics when the dump printed none).
    pub fn stats_of(&self, mode: &str) -> &Value {
        self.stats
            .iter()
            .find(|s| s["mode"] == mode)
            .unwrap_or_else(|| panic!("no stats line for mode {mode}; stats: {:?}", self.stats))
    }
}

/// A numeric field (panics with the row when missing or not a number).
pub fn num(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("field `{field}` is not an unsigned number in {v}"))
}

/// A string field (panics with the row when missing).
pub fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("field `{field}` is not a string in {v}"))
}

/// A private directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("bto-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A symlink `name` → `target` in this directory: running it makes the kernel's `comm` of
    /// the new program `name` (the basename of the executed path).
    pub fn program(&self, target: &str, name: &str) -> PathBuf {
        assert!(name.len() <= 15, "comm holds at most 15 bytes");
        let link = self.0.join(name);
        std::os::unix::fs::symlink(target, &link).expect("symlink");
        link
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Child processes killed and reaped on drop (also when a test panics).
#[derive(Default)]
pub struct Children(pub Vec<Child>);

impl Children {
    /// Pids of the children.
    pub fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

/// Runs `program` `count` times from `threads` threads, as fast as they can (each waits for its
/// child before the next). Returns (pid, exit status) of every child.
pub fn exec_burst(program: &str, count: usize, threads: usize) -> Vec<(u32, ExitStatus)> {
    exec_burst_in_waves(program, count, threads, 1)
}

/// Like [`exec_burst`], but each thread starts `wave` children back to back before it reaps
/// them: forks, execs and exits then come in dense bursts (at most `threads * wave` children
/// alive at once).
pub fn exec_burst_in_waves(
    program: &str,
    count: usize,
    threads: usize,
    wave: usize,
) -> Vec<(u32, ExitStatus)> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let program = program.to_string();
            let n = count / threads + usize::from(t < count % threads);
            std::thread::Builder::new()
                .name(format!("bto-burst-{t}"))
                .spawn(move || {
                    let mut done = Vec::with_capacity(n);
                    let mut running = Children::default();
                    for i in 0..n {
                        running.0.push(
                            Command::new(&program)
                                .stdin(Stdio::null())
                                .stdout(Stdio::null())
                                .stderr(Stdio::null())
                                .spawn()
                                .expect("spawn burst child"),
                        );
                        if running.0.len() == wave || i + 1 == n {
                            for mut child in running.0.drain(..) {
                                let pid = child.id();
                                done.push((pid, child.wait().expect("wait burst child")));
                            }
                        }
                    }
                    done
                })
                .unwrap()
        })
        .collect();
    let all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("burst thread"))
        .collect();
    assert_eq!(all.len(), count);
    all
}

/// Starts `count` `/bin/sleep 30` children in one new process group, then kills the whole group
/// with one SIGKILL: their exits land within a few milliseconds, a far denser burst of records
/// than spawning can produce. Returns (pid, exit status) of every child (status: killed by 9).
pub fn mass_exit(count: usize) -> Vec<(u32, ExitStatus)> {
    use std::os::unix::process::CommandExt;
    let mut children = Children::default();
    let mut pgid = 0;
    for _ in 0..count {
        let child = Command::new("/bin/sleep")
            .arg("30")
            .stdin(Stdio::null())
            .process_group(pgid)
            .spawn()
            .expect("spawn sleep");
        if pgid == 0 {
            pgid = child.id() as i32;
        }
        children.0.push(child);
    }
    // SAFETY: kill(2) on our own process group; no memory is involved.
    let killed = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    assert_eq!(
        killed,
        0,
        "kill process group {pgid}: {}",
        std::io::Error::last_os_error()
    );
    children
        .0
        .iter_mut()
        .map(|c| (c.id(), c.wait().expect("wait sleep")))
        .collect()
}

/// Loopback TCP connections held open until drop: a listener and, per connection, the client
/// and the accepted server stream. Each connection exchanged a few bytes each way so both ends
/// have a known owner (the connect() thread for the client, the first receiver for the server).
pub struct HeldConnections {
    /// The listener (kept open so the port stays ours).
    pub listener: TcpListener,
    /// (client, server) streams.
    pub streams: Vec<(TcpStream, TcpStream)>,
}

impl HeldConnections {
    /// Opens `count` connections to a fresh listener on `ip` (port chosen by the kernel). The
    /// client side connects from a thread named `client_thread`, the server side accepts and
    /// first reads in a thread named `server_thread` (thread names are what `comm` shows).
    pub fn open(ip: IpAddr, count: usize, client_thread: &str, server_thread: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("bind loopback listener");
        let streams = ping_pong(&listener, count, client_thread, server_thread);
        HeldConnections { listener, streams }
    }

    /// The listener's port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }
}

/// Opens `count` connections to `listener` fast: a thread named `client_thread` connects and
/// writes "ping", a thread named `server_thread` accepts (blocking, 10 s timeout), reads it and
/// answers "pong", which the client reads. Returns the (client, server) streams in connect
/// order (4 bytes each way).
pub fn ping_pong(
    listener: &TcpListener,
    count: usize,
    client_thread: &str,
    server_thread: &str,
) -> Vec<(TcpStream, TcpStream)> {
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(false).unwrap();
    set_accept_timeout(listener, Duration::from_secs(10));
    let server_listener = listener.try_clone().unwrap();
    let server = std::thread::Builder::new()
        .name(server_thread.into())
        .spawn(move || {
            (0..count)
                .map(|_| {
                    let (stream, _) = server_listener.accept()?;
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    let mut ping = [0u8; 4];
                    (&stream).read_exact(&mut ping)?;
                    (&stream).write_all(b"pong")?;
                    Ok(stream)
                })
                .collect::<std::io::Result<Vec<TcpStream>>>()
        })
        .unwrap();
    let client = std::thread::Builder::new()
        .name(client_thread.into())
        .spawn(move || {
            (0..count)
                .map(|_| {
                    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    (&stream).write_all(b"ping")?;
                    let mut pong = [0u8; 4];
                    (&stream).read_exact(&mut pong)?;
                    Ok(stream)
                })
                .collect::<std::io::Result<Vec<TcpStream>>>()
        })
        .unwrap();
    let clients = client.join().unwrap().expect("client side");
    let servers = server.join().unwrap().expect("server side");
    // Accept order equals connect order: the client connects one at a time and waits for the
    // server's reply before the next connect.
    let streams: Vec<_> = clients.into_iter().zip(servers).collect();
    for (c, s) in &streams {
        assert_eq!(c.local_addr().unwrap(), s.peer_addr().unwrap());
    }
    streams
}

/// setsockopt(SOL_SOCKET, `name`, `value`) on an open socket; panics naming `what` on failure.
pub fn set_socket_option<T>(socket: &impl AsRawFd, name: libc::c_int, value: &T, what: &str) {
    // SAFETY: setsockopt on an open socket with a pointer to a live `T` and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "{what}: {}", std::io::Error::last_os_error());
}

/// SO_RCVTIMEO on a listener: a blocking accept() gives up after `timeout`.
pub fn set_accept_timeout(listener: &TcpListener, timeout: Duration) {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    set_socket_option(listener, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO");
}

/// Accepts one connection, giving up after `limit` (so a failed client cannot hang the test).
pub fn accept_within(listener: &TcpListener, limit: Duration) -> std::io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let end = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `ip:port` as the JSON rows spell a socket address (`saddr`+`sport`), for set comparisons.
pub fn endpoint(addr: &str, port: u64) -> String {
    SocketAddr::new(addr.parse().expect("ip address"), port as u16).to_string()
}

/// The (local, remote) endpoints of a connection row.
pub fn row_endpoints(row: &Value) -> (String, String) {
    (
        endpoint(text(row, "saddr"), num(row, "sport")),
        endpoint(text(row, "daddr"), num(row, "dport")),
    )
}
