//! The store: a fjall database in DIR with three keyspaces:
//!
//! - `log`: every record, by [`super::key::RecordKey`]; FIFO compaction drops its oldest
//!   tables past `max_bytes` or `max_age` (retention);
//! - `keyframes`: the key of each keyframe's first record (an index: the keyframe ≤ T is one
//!   reverse seek);
//! - `meta`: `format` = [`STORE_MARKER`] (a directory without it is not a recording and is
//!   never written to).
//!
//! fjall lets one process open a database at a time: a second one gets
//! [`OpenError::Locked`].

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use fjall::{
    compaction::Fifo,
    config::{BlockSizePolicy, CompressionPolicy},
    CompressionType, Database, Keyspace, KeyspaceCreateOptions,
};

/// `meta`'s `format` value of a recording.
pub const STORE_MARKER: &[u8] = b"bpftop-ordered recording 1";

/// The file in a recording's directory where journal cuts found at opening are kept.
pub const DAMAGE_NOTE: &str = "damage.txt";

/// Each journal's written length: up to its last byte that is not zero (a journal may be
/// preallocated with zeros).
fn written_journals(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.ends_with(".jnl") {
                return None;
            }
            let bytes = std::fs::read(entry.path()).ok()?;
            let written = bytes.iter().rposition(|b| *b != 0).map_or(0, |at| at + 1);
            Some((name, written as u64))
        })
        .collect()
}

/// The journal's size limit (fjall's minimum), bytes; counted in `max_bytes`.
pub const JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Data block size of the log's tables, bytes (the unit LZ4 compresses and a seek reads).
const DATA_BLOCK_BYTES: u32 = 64 * 1024;

/// Memtable size, bytes: the unit FIFO retention drops (small, so retention is fine-grained).
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

/// Retention of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRetention {
    /// Total bytes on disk (tables and journal) kept at most, roughly.
    pub max_bytes: u64,
    /// Records older than this go (by whole tables).
    pub max_age: Duration,
}

/// Why a store did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (a running recorder) holds the store.
    #[error("{0} is open in another process (a running `serve --record` / `record`?); fjall lets one process open a store at a time")]
    Locked(PathBuf),
    /// The directory holds something that is not a recording: never written to.
    #[error("{0} is not a bpftop-ordered recording ({1}); not touching it")]
    NotARecording(PathBuf, String),
    /// The store does not open (damaged, or unreadable).
    #[error("{0}: the store does not open: {1}")]
    Damaged(PathBuf, String),
    /// No recording there.
    #[error("{0}: no recording there")]
    Missing(PathBuf),
}

/// An open store.
#[derive(Clone)]
pub struct RecordStore {
    /// The directory.
    pub path: PathBuf,
    /// The database.
    pub db: Database,
    /// Every record.
    pub log: Keyspace,
    /// First keys of keyframes.
    pub keyframes: Keyspace,
    meta: Keyspace,
    /// Set when a damaged journal was cut at its readable prefix (on a copy).
    pub salvage: Option<Arc<super::salvage::Salvage>>,
}

fn log_options(retention: Option<RecordRetention>) -> KeyspaceCreateOptions {
    let fifo = match retention {
        Some(r) => Fifo::new(
            r.max_bytes
                .saturating_sub(JOURNAL_BYTES)
                .max(MEMTABLE_BYTES),
            Some(r.max_age.as_secs().max(1)),
        ),
        // A reader never drops anything.
        None => Fifo::new(u64::MAX, None),
    };
    // FIFO keeps every table in level 0, which fjall leaves uncompressed by default: LZ4 on
    // 64 KiB blocks there (successive records are much alike).
    KeyspaceCreateOptions::default()
        .compaction_strategy(Arc::new(fifo))
        .max_memtable_size(MEMTABLE_BYTES)
        .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
        .data_block_size_policy(BlockSizePolicy::all(DATA_BLOCK_BYTES))
}

fn classify(path: &Path, error: fjall::Error) -> OpenError {
    match error {
        fjall::Error::Locked => OpenError::Locked(path.to_path_buf()),
        other => OpenError::Damaged(path.to_path_buf(), format!("{other:?}")),
    }
}

impl RecordStore {
    /// Opens (or creates) the store in `dir` to record into, with `retention`. A directory
    /// that holds anything but a recording is refused and left as it is.
    pub fn open_for_writing(dir: &Path, retention: RecordRetention) -> Result<Self, OpenError> {
        let existing = std::fs::read_dir(dir)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false);
        if existing && !dir.join("version").exists() && !dir.join("lock").exists() {
            return Err(OpenError::NotARecording(
                dir.to_path_buf(),
                "a directory with other files".into(),
            ));
        }
        let store = Self::open(dir, Some(retention))?;
        match store.meta.get("format") {
            Ok(Some(marker)) if &*marker == STORE_MARKER => {}
            Ok(None) if !existing => store
                .meta
                .insert("format", STORE_MARKER)
                .map_err(|e| OpenError::Damaged(dir.to_path_buf(), e.to_string()))?,
            Ok(None) => {
                return Err(OpenError::NotARecording(
                    dir.to_path_buf(),
                    "a fjall database without a recording's marker".into(),
                ))
            }
            Ok(Some(other)) => {
                return Err(OpenError::NotARecording(
                    dir.to_path_buf(),
                    format!("marker {:?}", String::from_utf8_lossy(&other)),
                ))
            }
            Err(e) => return Err(OpenError::Damaged(dir.to_path_buf(), e.to_string())),
        }
        // The recorder continues after the last key: it must be readable.
        store
            .last_key()
            .map_err(|e| OpenError::Damaged(dir.to_path_buf(), format!("its last record: {e}")))?;
        Ok(store)
    }

    /// Opens the store in `dir` to read it (nothing is dropped while it is open). A journal
    /// that does not recover (damaged) is not touched: its readable prefix is opened from a
    /// copy, and [`RecordStore::salvage`] says where the damage starts.
    pub fn open_for_reading(dir: &Path) -> Result<Self, OpenError> {
        if !dir.join("version").exists() && !dir.join("lock").exists() {
            return Err(OpenError::Missing(dir.to_path_buf()));
        }
        let store = match Self::open(dir, None) {
            Err(OpenError::Damaged(_, reason)) if reason.contains("JournalRecovery") => {
                super::salvage::open_readable_prefix(dir, &reason)?
            }
            other => other?,
        };
        match store.meta.get("format") {
            Ok(Some(marker)) if &*marker == STORE_MARKER => Ok(store),
            Ok(_) => Err(OpenError::NotARecording(
                dir.to_path_buf(),
                "no recording's marker".into(),
            )),
            Err(e) => Err(OpenError::Damaged(dir.to_path_buf(), e.to_string())),
        }
    }

    /// Opens `dir` as it is (reading: no retention). fjall's recovery cuts a journal at the
    /// first batch it cannot read as whole (a write torn by a crash, or damage that looks like
    /// one) without saying so: such a cut is detected here (the journal's written length
    /// before and after), reported on stderr and kept in [`DAMAGE_NOTE`], which
    /// [`RecordStore::damage_notes`] reads back for every later replay.
    pub(super) fn open(dir: &Path, retention: Option<RecordRetention>) -> Result<Self, OpenError> {
        let before = written_journals(dir);
        let store = Self::open_as_is(dir, retention)?;
        for (name, was) in before {
            let now = std::fs::metadata(dir.join(&name)).map_or(0, |m| m.len());
            if now < was {
                let last = store.last_key().ok().flatten();
                let text = format!(
                    "journal {name} was cut by recovery at byte {now} of {was} written (a torn \
                     or damaged batch): records after {} are lost\n",
                    last.map_or("the start".to_string(), |k| k.to_string())
                );
                eprintln!("bpftop-ordered: {}: {}", dir.display(), text.trim_end());
                use std::io::Write;
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(DAMAGE_NOTE))
                    .and_then(|mut f| f.write_all(text.as_bytes()));
            }
        }
        Ok(store)
    }

    /// Opens a salvage copy (its cut is the salvage's own, not damage to report).
    pub(super) fn open_copy(dir: &Path) -> Result<Self, OpenError> {
        Self::open_as_is(dir, None)
    }

    /// Damage found when the store was opened, now or before (one line each).
    pub fn damage_notes(&self) -> Vec<String> {
        std::fs::read_to_string(self.path.join(DAMAGE_NOTE))
            .map(|text| text.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn open_as_is(dir: &Path, retention: Option<RecordRetention>) -> Result<Self, OpenError> {
        let db = Database::builder(dir)
            .max_journaling_size(JOURNAL_BYTES)
            .journal_compression(CompressionType::Lz4)
            .cache_size(16 * 1024 * 1024)
            .open()
            .map_err(|e| classify(dir, e))?;
        let log = db
            .keyspace("log", || log_options(retention))
            .map_err(|e| classify(dir, e))?;
        let keyframes = db
            .keyspace("keyframes", KeyspaceCreateOptions::default)
            .map_err(|e| classify(dir, e))?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(|e| classify(dir, e))?;
        Ok(RecordStore {
            path: dir.to_path_buf(),
            db,
            log,
            keyframes,
            meta,
            salvage: None,
        })
    }

    /// The last record's key (`None`: empty).
    pub fn last_key(&self) -> fjall::Result<Option<super::key::RecordKey>> {
        match self.log.last_key_value() {
            None => Ok(None),
            Some(guard) => Ok(super::key::RecordKey::from_bytes(&guard.key()?)),
        }
    }

    /// The first record's key (`None`: empty).
    pub fn first_key(&self) -> fjall::Result<Option<super::key::RecordKey>> {
        match self.log.first_key_value() {
            None => Ok(None),
            Some(guard) => Ok(super::key::RecordKey::from_bytes(&guard.key()?)),
        }
    }

    /// Bytes on disk (tables and journals).
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }
}
