//! The transport-limit benchmark: how many records per second a ring buffer or a perf array can
//! carry from the kernel into this program on this machine, and how much of that the bridge's
//! full pipeline keeps.
//!
//! Method (as the kernel's own `ringbuf` selftest bench): producer threads of this process call
//! `getpgid()` in a tight loop; the `bench_sys_enter` raw tracepoint, filtered to this thread
//! group and that syscall, emits one 112-byte process record per call into the benchmark's own
//! ring buffer or perf array (never the dashboard's). One consumer thread drains it, either as a
//! *null* consumer (advances the position only) or through the *full* pipeline the `ring` and
//! `perf` modes use (decode, sequence check, batch, channel, apply to a `TableStore`).
//! Every figure is counted: produced = the probe's sequence counter, consumed = records taken
//! out, drops = the probe's failure counter.

use std::{
    os::fd::AsFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use aya::{
    maps::{Array, PerCpuArray, RingBuf},
    Ebpf, EbpfLoader,
};
use bridge::{
    contract::{KernelState, ModeKind, ModeMessage},
    map_batch::{DumpPath, MapDump},
    mode::{
        incremental::{wait_readable, IncrementalConsumer, ResyncSource, MAX_BATCH},
        perf_buffers::PerfBuffers,
    },
    probe::{check_capabilities, handles::StateMapRead, object::attach_raw_tracepoint, LoadError},
    stats::{rate_per_s, thread_cpu_ns},
    store::TableStore,
    table::Retention,
};
use probe_common::{BenchConfig, BENCH_TRANSPORT_PERF, BENCH_TRANSPORT_RING};
use serde::Serialize;

/// The benchmark's own eBPF object (`bench_sys_enter` and its maps), built from
/// `ebpf-probe/src/bench_main.rs` by `cargo xtask build-ebpf`: the product object carries none
/// of it.
static BENCH_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../ebpf-probe/bpftop-bench-probe.bpf.o"
));

/// Which transport to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `BENCH_RING`, a BPF ring buffer.
    Ring,
    /// `BENCH_PERF`, a perf event array with one buffer per CPU.
    Perf,
}

/// What the consumer does with each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consumer {
    /// Only advances the read position (the transport's ceiling).
    Null,
    /// Decode, sequence check, batch, channel, apply to a table store (what the modes do).
    Full,
}

/// One benchmark run.
#[derive(Clone, Debug)]
pub struct TransportBenchConfig {
    /// Ring or perf.
    pub transport: Transport,
    /// Null or full consumer.
    pub consumer: Consumer,
    /// Wake the consumer every Nth record (1 = every record); with N > 1 the consumer also
    /// drains on a 1 ms timer. Ring: `BPF_RB_NO_WAKEUP` except every Nth record. Perf: the
    /// buffers are opened with `wakeup_events = N` ([`crate::perf_reader::SampledPerfBuffer`]; aya's own buffers
    /// always wake per sample, so N = 1 uses aya's, as the perf mode does).
    pub wakeup_every: u32,
    /// Producer threads calling `getpgid()`.
    pub producers: usize,
    /// How long the producers run.
    pub duration: Duration,
    /// Ring buffer bytes (power-of-two multiple of the page size).
    pub ring_bytes: u32,
    /// Perf pages per CPU (power of two).
    pub perf_pages: usize,
}

/// Measured outcome of one run.
#[derive(Clone, Debug, Serialize)]
pub struct TransportBenchResult {
    /// Ring or perf.
    pub transport: Transport,
    /// Null or full.
    pub consumer: Consumer,
    /// Wake-up sampling used.
    pub wakeup_every: u32,
    /// Records the probe offered (its sequence counter).
    pub produced: u64,
    /// Records the consumer took out.
    pub consumed: u64,
    /// Transport failures counted by the probe (ring full / perf output failed).
    pub kernel_drops: u64,
    /// `PERF_RECORD_LOST` counts (perf only): the same records as `kernel_drops`, reported
    /// by the buffer instead of by the BPF program, so `consumed + kernel_drops == produced`.
    pub perf_lost: u64,
    /// Records consumed per second of producer run time.
    pub consumed_per_s: f64,
    /// Records offered per second of producer run time.
    pub produced_per_s: f64,
    /// CPU time of the consumer thread (and, for `full`, the store thread), ns.
    pub consumer_cpu_ns: u64,
    /// Full pipeline only: rows applied by the store / stale / lag p99 (ns).
    pub applied: u64,
    /// Full pipeline only: p99 lag from `ktime_ns` to apply, ns.
    pub lag_p99_ns: u64,
    /// Producer run time, ns.
    pub run_ns: u64,
}

/// The benchmark maps have no state map behind them: a resync finds nothing.
struct NoStateMaps;

impl ResyncSource for NoStateMaps {
    fn sequence(&self, _: ModeKind, _: u8) -> u64 {
        0
    }
    fn map_full_count(&self) -> u64 {
        0
    }
    fn read<S: KernelState>(&self, _: &mut MapDump) -> StateMapRead<S> {
        Ok((Vec::new(), DumpPath::Batch))
    }
}

fn map_error(what: &'static str, e: impl std::fmt::Display) -> LoadError {
    LoadError::Map {
        map: what,
        detail: e.to_string(),
    }
}

fn load_bench_object(config: &TransportBenchConfig) -> Result<Ebpf, LoadError> {
    check_capabilities()?;
    let mut ebpf = EbpfLoader::new()
        .map_max_entries("BENCH_RING", config.ring_bytes)
        .load(BENCH_OBJECT)
        .map_err(|e| LoadError::Refused(format!("loading the eBPF object: {e}")))?;
    attach_raw_tracepoint(&mut ebpf, "bench_sys_enter", "sys_enter")?;
    Ok(ebpf)
}

/// The benchmark object's control and counter maps.
struct BenchMaps {
    config: Array<aya::maps::MapData, BenchConfig>,
    seq: Array<aya::maps::MapData, u64>,
    failures: PerCpuArray<aya::maps::MapData, u64>,
}

impl BenchMaps {
    fn take(ebpf: &mut Ebpf) -> Result<Self, LoadError> {
        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| map_error(name, "missing"))
        };
        let config = take("BENCH_CONFIG")?;
        let seq = take("BENCH_SEQ")?;
        let failures = take("BENCH_DROPS")?;
        Ok(BenchMaps {
            config: Array::try_from(config).map_err(|e| map_error("BENCH_CONFIG", e))?,
            seq: Array::try_from(seq).map_err(|e| map_error("BENCH_SEQ", e))?,
            failures: PerCpuArray::try_from(failures).map_err(|e| map_error("BENCH_DROPS", e))?,
        })
    }

    /// Arms (or, with `BenchConfig::default()`, disarms) the probe.
    fn set(&mut self, value: BenchConfig) -> Result<(), LoadError> {
        self.config
            .set(0, value, 0)
            .map_err(|e| map_error("BENCH_CONFIG", e))
    }

    /// (records offered, transport failures) as the probe counted them.
    fn counters(&self) -> Result<(u64, u64), LoadError> {
        let produced = self.seq.get(&0, 0).map_err(|e| map_error("BENCH_SEQ", e))?;
        let drops = self
            .failures
            .get(&0, 0)
            .map_err(|e| map_error("BENCH_DROPS", e))?
            .iter()
            .sum();
        Ok((produced, drops))
    }
}

/// What the consumer side counts, shared with its threads.
#[derive(Default)]
struct ConsumerCounts {
    stop: AtomicBool,
    consumed: AtomicU64,
    perf_lost: AtomicU64,
    cpu_ns: AtomicU64,
}

/// Runs one configuration and returns what was measured.
pub fn run(config: &TransportBenchConfig) -> Result<TransportBenchResult, LoadError> {
    let mut ebpf = load_bench_object(config)?;
    let mut maps = BenchMaps::take(&mut ebpf)?;
    let counts = Arc::new(ConsumerCounts::default());
    let (sender, receiver) = crossbeam_channel::bounded::<ModeMessage>(1024);
    // The consumer is started (and its buffers opened) before the probe is armed.
    let full = config.consumer == Consumer::Full;
    let consumer_thread = spawn_consumer(&mut ebpf, config, full.then_some(sender), &counts)?;
    let store_thread = full.then(|| spawn_store(receiver, config.transport, &counts));
    maps.set(BenchConfig {
        tgid: std::process::id(),
        syscall_nr: libc::SYS_getpgid as u32,
        transport: match config.transport {
            Transport::Ring => BENCH_TRANSPORT_RING,
            Transport::Perf => BENCH_TRANSPORT_PERF,
        },
        wakeup_every: config.wakeup_every,
    })?;
    let run_ns = run_producers(config.producers.max(1), config.duration);
    maps.set(BenchConfig::default())?;
    let (produced, kernel_drops) = maps.counters()?;
    // Let the consumer take what is still in the buffer, then stop it.
    let drain_deadline = Instant::now() + Duration::from_secs(2);
    while counts.consumed.load(Ordering::Relaxed) + kernel_drops < produced
        && Instant::now() < drain_deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    counts.stop.store(true, Ordering::Relaxed);
    let _ = consumer_thread.join();
    let (applied, lag_p99_ns) = store_thread
        .map(|t| t.join().unwrap_or((0, 0)))
        .unwrap_or((0, 0));
    let consumed = counts.consumed.load(Ordering::Relaxed);
    Ok(TransportBenchResult {
        transport: config.transport,
        consumer: config.consumer,
        wakeup_every: config.wakeup_every,
        produced,
        consumed,
        kernel_drops,
        perf_lost: counts.perf_lost.load(Ordering::Relaxed),
        consumed_per_s: rate_per_s(consumed, run_ns),
        produced_per_s: rate_per_s(produced, run_ns),
        consumer_cpu_ns: counts.cpu_ns.load(Ordering::Relaxed),
        applied,
        lag_p99_ns,
        run_ns,
    })
}

/// Opens the transport and starts the consumer thread on it; `sender` is the full pipeline's
/// channel (`None`: the null consumer).
fn spawn_consumer(
    ebpf: &mut Ebpf,
    config: &TransportBenchConfig,
    sender: Option<crossbeam_channel::Sender<ModeMessage>>,
    counts: &Arc<ConsumerCounts>,
) -> Result<std::thread::JoinHandle<()>, LoadError> {
    let counts = Arc::clone(counts);
    let config = config.clone();
    Ok(match config.transport {
        Transport::Ring => {
            let map = ebpf
                .take_map("BENCH_RING")
                .ok_or_else(|| map_error("BENCH_RING", "missing"))?;
            let ring = RingBuf::try_from(map).map_err(|e| map_error("BENCH_RING", e))?;
            std::thread::spawn(move || {
                consume_ring(ring, &config, sender, &counts.stop, &counts.consumed);
                counts.cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
            })
        }
        Transport::Perf => {
            let map = ebpf
                .take_map("BENCH_PERF")
                .ok_or_else(|| map_error("BENCH_PERF", "missing"))?;
            let buffers = PerfBuffers::open(map, config.perf_pages, config.wakeup_every)
                .map_err(|e| map_error("BENCH_PERF", format!("{e:#}")))?;
            std::thread::spawn(move || {
                let ConsumerCounts {
                    stop,
                    consumed,
                    perf_lost,
                    ..
                } = &*counts;
                consume_perf(buffers, &config, sender, stop, consumed, perf_lost);
                counts.cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
            })
        }
    })
}

/// The full pipeline's store thread: applies every batch; returns (rows applied, p99 lag ns).
fn spawn_store(
    receiver: crossbeam_channel::Receiver<ModeMessage>,
    transport: Transport,
    counts: &Arc<ConsumerCounts>,
) -> std::thread::JoinHandle<(u64, u64)> {
    let counts = Arc::clone(counts);
    let mode = match transport {
        Transport::Ring => ModeKind::Ring,
        Transport::Perf => ModeKind::Perf,
    };
    std::thread::spawn(move || {
        let mut store = TableStore::new(0, Retention::default());
        for message in receiver {
            if let ModeMessage::Batch(batch) = message {
                store.apply(batch);
            }
        }
        counts.cpu_ns.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
        let stats = store.stats(mode);
        (stats.events, stats.lag_p99_ns)
    })
}

/// Runs `producers` threads calling `getpgid()` for `duration`; returns their run time, ns.
fn run_producers(producers: usize, duration: Duration) -> u64 {
    let producing = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let producing = Arc::clone(&producing);
            std::thread::spawn(move || {
                while producing.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        // SAFETY: getpgid(0) has no memory arguments.
                        unsafe { libc::syscall(libc::SYS_getpgid, 0) };
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    producing.store(false, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    started.elapsed().as_nanos() as u64
}

fn drain_timeout(config: &TransportBenchConfig) -> Duration {
    if config.wakeup_every > 1 {
        Duration::from_millis(1)
    } else {
        Duration::from_millis(50)
    }
}

fn consume_ring(
    mut ring: RingBuf<aya::maps::MapData>,
    config: &TransportBenchConfig,
    sender: Option<crossbeam_channel::Sender<ModeMessage>>,
    stop: &AtomicBool,
    consumed: &AtomicU64,
) {
    let mut pipeline = sender
        .as_ref()
        .map(|_| IncrementalConsumer::new(ModeKind::Ring, 0));
    let timeout = drain_timeout(config);
    while !stop.load(Ordering::Relaxed) {
        if wait_readable([ring.as_fd()], timeout).is_err() {
            return;
        }
        let mut taken = 0u64;
        loop {
            let mut more = false;
            while let Some(item) = ring.next() {
                taken += 1;
                if let Some(p) = pipeline.as_mut() {
                    p.push_bytes(&item, false);
                    if p.pending_len() >= MAX_BATCH {
                        more = true;
                        break;
                    }
                }
            }
            if let (Some(p), Some(s)) = (pipeline.as_mut(), sender.as_ref()) {
                if p.end_drain(&NoStateMaps, s, || 0, 0).is_err() {
                    return;
                }
            }
            if !more {
                break;
            }
        }
        consumed.fetch_add(taken, Ordering::Relaxed);
    }
}

fn consume_perf(
    mut buffers: PerfBuffers,
    config: &TransportBenchConfig,
    sender: Option<crossbeam_channel::Sender<ModeMessage>>,
    stop: &AtomicBool,
    consumed: &AtomicU64,
    perf_lost: &AtomicU64,
) {
    let mut pipeline = sender
        .as_ref()
        .map(|_| IncrementalConsumer::new(ModeKind::Perf, 0));
    let timeout = drain_timeout(config);
    while !stop.load(Ordering::Relaxed) {
        if wait_readable(buffers.fds(), timeout).is_err() {
            return;
        }
        let (taken, lost) = buffers.drain(|head, tail| {
            if let Some(p) = pipeline.as_mut() {
                p.push_perf_sample(head, tail);
            }
        });
        if let (Some(p), Some(s)) = (pipeline.as_mut(), sender.as_ref()) {
            if p.end_drain(&NoStateMaps, s, || 0, lost).is_err() {
                return;
            }
        }
        consumed.fetch_add(taken, Ordering::Relaxed);
        perf_lost.fetch_add(lost, Ordering::Relaxed);
    }
}
