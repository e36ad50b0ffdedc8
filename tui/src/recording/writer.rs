//! The recorder: a thread that writes what the collector sends it, in batches, to the
//! [`RecordStore`]. The collector hands it frames it has already encoded for its viewers
//! (a `Bytes` clone each) through a bounded channel and never waits: a full channel drops the
//! record (counted) and asks for a keyframe, so the recording resumes whole at the next one.
//!
//! Durability: each batch is handed to the OS when written (a `kill -9` loses only what was
//! still in the channel, at most [`BATCH_WAIT`] plus a batch), and fdatasync'ed every
//! [`SYNC_EVERY`] (a power loss loses at most about that). A write that fails (disk full,
//! I/O error) stops the recording with a warning on stderr; the collector goes on.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use fjall::PersistMode;

use super::{
    key::RecordKey,
    realtime_ns,
    record::{encode_frame, encode_run, RunInfo},
    store::RecordStore,
};

/// Records the channel holds before it drops (each a frame or a keyframe).
pub const CHANNEL_RECORDS: usize = 65_536;

/// The writer waits this long for more records before it writes a batch.
pub const BATCH_WAIT: Duration = Duration::from_millis(100);

/// Records written in one batch at most.
const BATCH_RECORDS: usize = 8192;

/// The journal is fdatasync'ed this often.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The log's memtable is flushed to a table file this often, so the journal (which fjall
/// cannot read past a damaged batch) holds at most about this much, and the rest sits in
/// table files whose blocks are checksummed one by one.
pub const FLUSH_EVERY: Duration = Duration::from_secs(60);

/// The keyframe index is pruned of keyframes retention dropped this often.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

enum Item {
    Frame {
        ts_ns: u64,
        frame: Bytes,
    },
    Keyframe {
        ts_ns: u64,
        run: RunInfo,
        frames: Vec<Bytes>,
    },
}

/// Counters of the recorder (shared with the collector).
#[derive(Default, Debug)]
pub struct RecorderCounters {
    /// Records written.
    pub records: AtomicU64,
    /// Keyframes written.
    pub keyframes: AtomicU64,
    /// Value bytes written (before compression).
    pub value_bytes: AtomicU64,
    /// Records dropped (channel full, or recording stopped).
    pub dropped: AtomicU64,
    /// Set when a record was dropped: the next keyframe is due now.
    pub keyframe_due: AtomicBool,
    /// Set when recording stopped on an error.
    pub stopped: AtomicBool,
}

/// The collector's side of the recorder.
pub struct Recorder {
    sender: Option<Sender<Item>>,
    counters: Arc<RecorderCounters>,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the writer thread on `store`.
    pub fn start(store: RecordStore) -> std::io::Result<Recorder> {
        let (sender, receiver) = crossbeam_channel::bounded(CHANNEL_RECORDS);
        let counters = Arc::new(RecorderCounters::default());
        let shared = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || write_loop(&store, &receiver, &shared))?;
        Ok(Recorder {
            sender: Some(sender),
            counters,
            thread: Some(thread),
        })
    }

    /// The counters.
    pub fn counters(&self) -> &RecorderCounters {
        &self.counters
    }

    fn send(&self, item: Item) {
        let Some(sender) = &self.sender else { return };
        if self.counters.stopped.load(Ordering::Relaxed) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match sender.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.counters.keyframe_due.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Records one delta frame (as the collector encoded it), stamped now.
    pub fn record_frame(&self, frame: Bytes) {
        self.send(Item::Frame {
            ts_ns: realtime_ns(),
            frame,
        });
    }

    /// Records a keyframe: the run's facts and its snapshot frames, stamped now.
    pub fn record_keyframe(&self, run: RunInfo, frames: Vec<Bytes>) {
        self.counters.keyframe_due.store(false, Ordering::Relaxed);
        self.send(Item::Keyframe {
            ts_ns: realtime_ns(),
            run,
            frames,
        });
    }

    /// Records a frame stamped `ts_ns`, waiting for room in the channel (benchmarks and
    /// tools that synthesize a recording; the collector never waits).
    pub fn record_frame_at(&self, ts_ns: u64, frame: Bytes) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Item::Frame { ts_ns, frame });
        }
    }

    /// Records a keyframe stamped `ts_ns`, waiting for room (see
    /// [`Recorder::record_frame_at`]).
    pub fn record_keyframe_at(&self, ts_ns: u64, run: RunInfo, frames: Vec<Bytes>) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Item::Keyframe { ts_ns, run, frames });
        }
    }

    /// A record was dropped since the last keyframe (never once recording stopped).
    pub fn keyframe_due(&self) -> bool {
        self.counters.keyframe_due.load(Ordering::Relaxed) && !self.stopped()
    }

    /// Recording stopped on an error (disk full, I/O error): nothing more is written.
    pub fn stopped(&self) -> bool {
        self.counters.stopped.load(Ordering::Relaxed)
    }

    /// Writes what was sent, syncs and stops the thread.
    pub fn finish(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

struct Writer<'a> {
    store: &'a RecordStore,
    counters: &'a RecorderCounters,
    last: RecordKey,
}

impl Writer<'_> {
    /// The next key at `ts_ns`: never before the last one.
    fn next_key(&mut self, ts_ns: u64) -> RecordKey {
        self.last = RecordKey {
            ts_ns: ts_ns.max(self.last.ts_ns),
            seq: self.last.seq + 1,
        };
        self.last
    }

    fn write(&mut self, items: Vec<Item>) -> fjall::Result<()> {
        let mut batch = self.store.db.batch();
        let (mut records, mut bytes, mut keyframes) = (0u64, 0u64, 0u64);
        for item in items {
            match item {
                Item::Frame { ts_ns, frame } => {
                    let key = self.next_key(ts_ns);
                    let value = encode_frame(&frame);
                    bytes += value.len() as u64;
                    records += 1;
                    batch.insert(&self.store.log, key.to_bytes(), value);
                }
                Item::Keyframe { ts_ns, run, frames } => {
                    let key = self.next_key(ts_ns);
                    batch.insert(&self.store.keyframes, key.to_bytes(), []);
                    let value = encode_run(&run);
                    bytes += value.len() as u64;
                    batch.insert(&self.store.log, key.to_bytes(), value);
                    for frame in frames {
                        let key = self.next_key(ts_ns);
                        let value = encode_frame(&frame);
                        bytes += value.len() as u64;
                        batch.insert(&self.store.log, key.to_bytes(), value);
                    }
                    keyframes += 1;
                }
            }
        }
        batch.commit()?;
        self.counters.records.fetch_add(records, Ordering::Relaxed);
        self.counters
            .value_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        self.counters
            .keyframes
            .fetch_add(keyframes, Ordering::Relaxed);
        Ok(())
    }

    /// Removes index entries of keyframes retention has dropped from the log.
    fn prune(&self) -> fjall::Result<()> {
        let Some(first) = self.store.first_key()? else {
            return Ok(());
        };
        let old: Vec<_> = self
            .store
            .keyframes
            .range(..first.to_bytes())
            .map(|guard| guard.key())
            .collect::<fjall::Result<_>>()?;
        for key in old {
            self.store.keyframes.remove(key)?;
        }
        Ok(())
    }
}

fn write_loop(store: &RecordStore, receiver: &Receiver<Item>, counters: &RecorderCounters) {
    let last = match store.last_key() {
        Ok(key) => key.unwrap_or(RecordKey { ts_ns: 0, seq: 0 }),
        Err(e) => return stop(store, counters, &format!("reading the last record: {e}")),
    };
    let mut writer = Writer {
        store,
        counters,
        last,
    };
    let (mut synced, mut pruned, mut flushed) = (Instant::now(), Instant::now(), Instant::now());
    loop {
        let mut items = Vec::new();
        let open = match receiver.recv_timeout(BATCH_WAIT) {
            Ok(item) => {
                items.push(item);
                while items.len() < BATCH_RECORDS {
                    match receiver.try_recv() {
                        Ok(item) => items.push(item),
                        Err(_) => break,
                    }
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        };
        if !items.is_empty() {
            if let Err(e) = writer.write(items) {
                return stop(store, counters, &format!("writing: {e}"));
            }
        }
        if !open || synced.elapsed() >= SYNC_EVERY {
            if let Err(e) = store.db.persist(PersistMode::SyncData) {
                return stop(store, counters, &format!("syncing: {e}"));
            }
            synced = Instant::now();
        }
        if flushed.elapsed() >= FLUSH_EVERY {
            if let Err(e) = store.log.rotate_memtable() {
                return stop(store, counters, &format!("flushing: {e}"));
            }
            flushed = Instant::now();
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            if let Err(e) = writer.prune() {
                return stop(store, counters, &format!("pruning the keyframe index: {e}"));
            }
            pruned = Instant::now();
        }
        if !open {
            return;
        }
    }
}

fn stop(store: &RecordStore, counters: &RecorderCounters, what: &str) {
    counters.stopped.store(true, Ordering::Relaxed);
    eprintln!(
        "bpftop-ordered serve: WARNING: recording to {} stopped ({what}); the collector and its viewers go on",
        store.path.display()
    );
}
