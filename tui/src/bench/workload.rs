//! Workload generators with ground truth: every entity the bench creates is recorded here, so
//! capture ratios are counted against what really happened, not against an estimate.

use std::{
    collections::{HashMap, HashSet},
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bridge::stats::monotonic_ns;

/// What the exec generators created.
#[derive(Debug, Default)]
pub struct ExecTruth {
    /// Pid of each child (spawned and waited for) -> CLOCK_MONOTONIC ns just before the spawn.
    pub pids: HashMap<u32, u64>,
    /// Spawns (equals `pids.len()` unless a pid was reused within the run).
    pub spawned: u64,
    /// Spawns that failed (not counted as generated).
    pub errors: u64,
}

/// A loopback client 4-tuple: (client port, server port), both on 127.0.0.1.
pub type ClientTuple = (u16, u16);

/// What the connect generators created.
#[derive(Debug, Default)]
pub struct ConnectTruth {
    /// Distinct client-side 4-tuples (127.0.0.1:sport -> 127.0.0.1:dport).
    pub tuples: HashSet<ClientTuple>,
    /// Connections completed (connect + 100 bytes sent + close).
    pub connections: u64,
    /// Connections that failed (not counted as generated).
    pub errors: u64,
}

/// An exec generator thread: (pid, spawn time) of each child, and the failed spawns.
pub type ExecHandle = JoinHandle<(Vec<(u32, u64)>, u64)>;

/// Sleeps until `at` unless that is in the past (rate pacing).
fn pace(next: &mut Instant, step: Option<Duration>) {
    if let Some(step) = step {
        *next += step;
        let now = Instant::now();
        if *next > now {
            std::thread::sleep(*next - now);
        }
    }
}

/// Per-thread pacing step for `rate` entities/s over `threads` threads (None = max rate).
fn step_for(rate: u64, threads: usize) -> Option<Duration> {
    (rate > 0).then(|| Duration::from_secs_f64(threads as f64 / rate as f64))
}

/// Starts `threads` spawners of `/bin/true` that run until `deadline`.
pub fn start_exec(threads: usize, rate: u64, deadline: Instant) -> Vec<ExecHandle> {
    let step = step_for(rate, threads);
    spawn_generators(threads, "bench-exec", move |_| {
        let mut spawned = Vec::new();
        let mut errors = 0u64;
        let mut next = Instant::now();
        while Instant::now() < deadline {
            let at = monotonic_ns();
            match Command::new("/bin/true").spawn() {
                Ok(mut child) => {
                    spawned.push((child.id(), at));
                    let _ = child.wait();
                }
                Err(_) => errors += 1,
            }
            pace(&mut next, step);
        }
        (spawned, errors)
    })
}

/// Starts `threads` generator threads named `name-N`, each running `body(N)`: what it
/// created and how many attempts failed.
fn spawn_generators<T: Send + 'static>(
    threads: usize,
    name: &str,
    body: impl Fn(usize) -> (Vec<T>, u64) + Send + Clone + 'static,
) -> Vec<JoinHandle<(Vec<T>, u64)>> {
    (0..threads)
        .map(|i| {
            let body = body.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || body(i))
                .expect("spawning a bench thread")
        })
        .collect()
}

/// Collects the exec generators' results.
pub fn join_exec(handles: Vec<ExecHandle>) -> ExecTruth {
    let (spawned, errors) = join_generators(handles);
    ExecTruth {
        spawned: spawned.len() as u64,
        pids: spawned.into_iter().collect(),
        errors,
    }
}

/// Joins generator threads that each return (what they created, failures): everything
/// created, in thread order, and the failures summed.
fn join_generators<T>(handles: Vec<JoinHandle<(Vec<T>, u64)>>) -> (Vec<T>, u64) {
    let mut created = Vec::new();
    let mut failed = 0;
    for handle in handles {
        let (made, errors) = handle.join().expect("bench generator thread panicked");
        created.extend(made);
        failed += errors;
    }
    (created, failed)
}

/// A loopback listener that accepts, reads to EOF and closes, until stopped.
pub struct Listener {
    /// Where clients connect.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Listener {
    /// Binds 127.0.0.1:0 and starts the accept thread.
    pub fn start() -> std::io::Result<Listener> {
        Listener::start_threads(1)
    }

    /// Binds 127.0.0.1:0 and starts `threads` accept threads on the one socket (so the server
    /// side keeps up with as many clients and its accept queue does not overflow into SYN
    /// retransmits, which would make the storm's rate jump from run to run).
    pub fn start_threads(threads: usize) -> std::io::Result<Listener> {
        let socket = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        // std listens with a backlog of 128; a storm overflows that when the accept threads
        // wait for a CPU, and each dropped SYN stalls a client for its 1 s retransmit. Calling
        // listen(2) again on a listening socket raises the backlog (capped by somaxconn).
        {
            use std::os::fd::AsRawFd;
            // SAFETY: listen(2) on a socket fd owned by `socket`.
            if unsafe { libc::listen(socket.as_raw_fd(), 4096) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let listener = socket.try_clone()?;
            let flag = Arc::clone(&stop);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("bench-listener-{i}"))
                    .spawn(move || {
                        let mut buf = [0u8; 512];
                        for stream in listener.incoming() {
                            if flag.load(Ordering::Relaxed) {
                                break;
                            }
                            if let Ok(mut stream) = stream {
                                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                            }
                        }
                    })?,
            );
        }
        Ok(Listener {
            addr,
            stop,
            handles,
        })
    }

    /// Stops the accept threads (wakes each with one last connection, not counted).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for _ in &self.handles {
            let _ = TcpStream::connect(self.addr);
        }
        for handle in self.handles {
            let _ = handle.join();
        }
    }
}

/// How a storm client ends its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseBy {
    /// `close()`: FIN, and the client's socket lingers 60 s in TIME-WAIT (the rate of a long
    /// storm then depends on how many ephemeral ports are still held).
    Fin,
    /// `SO_LINGER` 0 then `close()`: RST, no TIME-WAIT, so the rate stays steady from run to
    /// run (what `bench --overhead` needs to compare runs).
    Reset,
}

/// Starts `threads` clients doing connect / send 100 bytes / close against `addr` until
/// `deadline`.
pub fn start_connect(
    threads: usize,
    rate: u64,
    deadline: Instant,
    addr: SocketAddr,
) -> Vec<JoinHandle<(Vec<ClientTuple>, u64)>> {
    start_connect_closing(threads, rate, deadline, addr, CloseBy::Fin)
}

/// [`start_connect`] with the given way of closing.
pub fn start_connect_closing(
    threads: usize,
    rate: u64,
    deadline: Instant,
    addr: SocketAddr,
    close_by: CloseBy,
) -> Vec<JoinHandle<(Vec<ClientTuple>, u64)>> {
    let step = step_for(rate, threads);
    spawn_generators(threads, "bench-conn", move |_| {
        let payload = [0x5au8; 100];
        let mut done = Vec::new();
        let mut errors = 0u64;
        let mut next = Instant::now();
        while Instant::now() < deadline {
            let result = TcpStream::connect(addr).and_then(|mut s| {
                let local = s.local_addr()?;
                s.write_all(&payload)?;
                if close_by == CloseBy::Reset {
                    set_linger_zero(&s)?;
                }
                Ok(local.port())
            });
            match result {
                Ok(sport) => done.push((sport, addr.port())),
                Err(_) => errors += 1,
            }
            pace(&mut next, step);
        }
        (done, errors)
    })
}

/// `SO_LINGER {on, 0}`: the next `close()` sends RST and leaves no TIME-WAIT socket.
fn set_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd owned by `stream`, a live `linger` of the size passed.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Collects the connect generators' results.
pub fn join_connect(handles: Vec<JoinHandle<(Vec<ClientTuple>, u64)>>) -> ConnectTruth {
    let (done, errors) = join_generators(handles);
    ConnectTruth {
        connections: done.len() as u64,
        tuples: done.into_iter().collect(),
        errors,
    }
}

/// What one exec of the overhead storm should look like in a captured row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedExec {
    /// CLOCK_MONOTONIC ns just before the spawn.
    pub spawned_ns: u64,
    /// `comm` after the exec (`true` or `false`).
    pub comm: &'static str,
    /// Exit status (0 for `true`, 1 for `false`).
    pub exit_status: i32,
    /// The command line as `ps -o args` shows it.
    pub cmdline: String,
}

/// What the overhead storm created: every child by pid (a reused pid keeps its last child).
#[derive(Debug, Default)]
pub struct VariedExecTruth {
    /// Pid -> what its row must show.
    pub children: HashMap<u32, ExpectedExec>,
    /// Spawns that completed (spawned and waited for).
    pub spawned: u64,
    /// Spawns that failed.
    pub errors: u64,
}

/// An overhead-storm spawner thread: (pid, what its row must show) per child, failed spawns.
pub type VariedExecHandle = JoinHandle<(Vec<(u32, ExpectedExec)>, u64)>;

/// Starts `threads` spawners that alternate `/bin/true ovh-T-N` and `/bin/false ovh-T-N` (T the
/// thread, N the spawn) as fast as they can until `deadline`: a comm, exit status and command
/// line that differ from child to child, so a capture can be checked field by field.
pub fn start_varied_exec(threads: usize, deadline: Instant) -> Vec<VariedExecHandle> {
    spawn_generators(threads, "bench-exec", move |t| {
        let mut spawned = Vec::new();
        let mut errors = 0u64;
        let mut n = 0u64;
        while Instant::now() < deadline {
            let (comm, exit_status) = if n.is_multiple_of(2) {
                ("true", 0)
            } else {
                ("false", 1)
            };
            let program = format!("/bin/{comm}");
            let arg = format!("ovh-{t}-{n}");
            n += 1;
            let spawned_ns = monotonic_ns();
            match Command::new(&program).arg(&arg).spawn() {
                Ok(mut child) => {
                    let pid = child.id();
                    let _ = child.wait();
                    let cmdline = format!("{program} {arg}");
                    let expected = ExpectedExec {
                        spawned_ns,
                        comm,
                        exit_status,
                        cmdline,
                    };
                    spawned.push((pid, expected));
                }
                Err(_) => errors += 1,
            }
        }
        (spawned, errors)
    })
}

/// Collects the overhead storm's results.
pub fn join_varied_exec(handles: Vec<VariedExecHandle>) -> VariedExecTruth {
    let (children, errors) = join_generators(handles);
    let spawned = children.len() as u64;
    let children = children.into_iter().collect();
    VariedExecTruth {
        children,
        spawned,
        errors,
    }
}
