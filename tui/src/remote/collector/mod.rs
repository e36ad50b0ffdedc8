//! `serve`: the privileged collector. The session's owner (this thread) applies every mode
//! message to the one store and publishes it to the viewers ([`hub`]); a tokio runtime
//! accepts viewers and runs one task per viewer ([`viewer_task`]).

pub mod hub;
pub mod metrics;
pub mod signal_request;
pub mod viewer_task;

use std::{
    os::unix::net::UnixListener,
    sync::{atomic::Ordering, Arc, Mutex},
    time::Duration,
};

use crate::recording::store::RecordStore;

use bridge::{session::Session, stats::monotonic_ns};
use crossbeam_channel::{select, tick, Receiver};

use hub::{Hub, HubLimits};
use viewer_task::{serve_viewer, ViewerContext};

/// How the collector treats its viewers, and what else it serves.
#[derive(Debug)]
pub struct CollectorOptions {
    /// Frames a viewer's queue holds before it overflows (the viewer is then resynced).
    pub queue_frames: usize,
    /// A viewer silent this long, or that takes no frame this long, is disconnected.
    pub viewer_timeout: Duration,
    /// `/metrics` is served on this listener (bound before the probes load), if any.
    pub prometheus: Option<PrometheusOptions>,
}

/// The Prometheus endpoint's settings.
#[derive(Debug)]
pub struct PrometheusOptions {
    /// The bound listener.
    pub listener: std::net::TcpListener,
    /// Per-name process series kept (the rest are summed under `comm="other"`).
    pub top_k: usize,
}

/// What the collector records (`serve --record`, `record`).
pub struct RecordOptions {
    /// The store, open for writing.
    pub store: RecordStore,
    /// A full-table keyframe is recorded this often.
    pub keyframe_every: Duration,
}

/// Deltas kept for viewers that reconnect (count).
pub const RECENT_FRAMES: usize = 65_536;
/// Deltas kept for viewers that reconnect (bytes).
pub const RECENT_BYTES: usize = 64 * 1024 * 1024;

/// Finished rows are reaped (and the reap published) this often.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// This run's epoch: the wall clock in ns, mixed with the pid (two collectors started in the
/// same ns still differ).
fn new_epoch() -> u64 {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now_ns ^ ((std::process::id() as u64) << 48)
}

/// Serves `session`'s tables on `listener` until SIGTERM, SIGINT or SIGHUP; returns the exit
/// code (0).
pub fn run(
    session: Session,
    listener: Option<UnixListener>,
    options: CollectorOptions,
    record: Option<RecordOptions>,
) -> anyhow::Result<i32> {
    let epoch = new_epoch();
    let modes = session.running_modes().to_vec();
    let store = session.new_store();
    let hello = viewer_task::hello(epoch, modes.clone(), &store, session.notes().to_vec());
    let limits = HubLimits {
        queue_frames: options.queue_frames,
        recent_frames: RECENT_FRAMES,
        recent_bytes: RECENT_BYTES,
    };
    let mut hub = Hub::new(epoch, store, modes, limits);
    let mut keyframe_every = None;
    if let Some(record) = record {
        let path = record.store.path.clone();
        hub.set_recorder(record.store, session.notes().to_vec())?;
        keyframe_every = Some(record.keyframe_every);
        eprintln!(
            "bpftop-ordered serve: recording to {} (a keyframe every {})",
            path.display(),
            humantime::format_duration(record.keyframe_every)
        );
    }
    let hub = Arc::new(Mutex::new(hub));
    let context = ViewerContext {
        hub: Arc::clone(&hub),
        hello,
        timeout: options.viewer_timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve-viewers")
        .enable_all()
        .build()?;
    if let Some(prometheus) = options.prometheus {
        let exporter = metrics::encode::HostExporter::new(
            Arc::clone(&hub),
            Some(session.shared_controls()),
            prometheus.top_k,
        );
        let registry = Arc::new(exporter.into_registry());
        prometheus.listener.set_nonblocking(true)?;
        let address = prometheus.listener.local_addr()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(prometheus.listener)?
        };
        runtime.spawn(metrics::http::serve(listener, registry, Default::default()));
        eprintln!("bpftop-ordered serve: Prometheus series at http://{address}/metrics");
    }
    if let Some(listener) = listener {
        listener.set_nonblocking(true)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::UnixListener::from_std(listener)?
        };
        runtime.spawn(accept_viewers(listener, context));
    }
    // The dashboard's exit signals, without its Ctrl-Z: a collector has no terminal to give
    // back.
    let (signals, _signal_handle) =
        crate::dashboard::event_loop::forward_signals(&crate::dashboard::event_loop::EXIT_SIGNALS)?;
    eprintln!(
        "bpftop-ordered serve: pid {} epoch {epoch:#x} serving",
        std::process::id()
    );
    let signal = own_session(&session, &hub, &signals, keyframe_every);
    eprintln!("bpftop-ordered serve: signal {signal}: stopping");
    {
        let mut hub = lock(&hub);
        if let Some(recorder) = hub.recorder() {
            let counters = recorder.counters();
            eprintln!(
                "bpftop-ordered serve: recorded {} records ({} keyframes, {} value bytes), dropped {}",
                counters.records.load(Ordering::Relaxed),
                counters.keyframes.load(Ordering::Relaxed),
                counters.value_bytes.load(Ordering::Relaxed),
                counters.dropped.load(Ordering::Relaxed)
            );
        }
        hub.finish_recording();
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    session.stop();
    Ok(0)
}

/// The session owner's loop: publish every message, reap every second, record a keyframe
/// every `keyframe_every` (and at the next reap after the recorder dropped a record).
/// Returns the signal that stopped it.
fn own_session(
    session: &Session,
    hub: &Mutex<Hub>,
    signals: &Receiver<i32>,
    keyframe_every: Option<Duration>,
) -> i32 {
    let reap = tick(REAP_EVERY);
    let keyframe = keyframe_every.map_or_else(crossbeam_channel::never, tick);
    let mut messages = session.messages().clone();
    loop {
        select! {
            recv(messages) -> message => match message {
                Ok(message) => lock(hub).publish_message(message),
                Err(_) => messages = crossbeam_channel::never(),
            },
            recv(reap) -> _ => {
                let mut hub = lock(hub);
                hub.publish_reap(monotonic_ns());
                if hub.recorder().is_some_and(|r| r.keyframe_due()) {
                    hub.record_keyframe();
                }
            }
            recv(keyframe) -> _ => lock(hub).record_keyframe(),
            recv(signals) -> signal => return signal.unwrap_or(libc::SIGTERM),
        }
    }
}

/// The hub's lock; a viewer task that panicked while holding it leaves data that is still
/// consistent (every hub operation completes before it can panic), so the lock is taken anyway.
fn lock(hub: &Mutex<Hub>) -> std::sync::MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_viewers(listener: tokio::net::UnixListener, context: ViewerContext) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_viewer(stream, context.clone()));
            }
            Err(error) => {
                // Out of descriptors or memory: keep serving those connected.
                eprintln!("bpftop-ordered serve: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
