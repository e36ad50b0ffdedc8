//! Reading a recording back: the tables as of a wall-clock time (the nearest keyframe ≤ T,
//! then every delta up to T), or every row that existed in a range with its last state in it
//! (the state at the start, then every delta up to the end without the reaps).
//!
//! Damage does not stop a replay: a record that does not decode, a range the store cannot
//! read, or deltas missing (dropped by the recorder) are each reported as a [`Damage`] naming
//! the keys (times) around it, and the replay resumes at the next keyframe.

use std::ops::Bound;

use bridge::{
    contract::{ModeBatch, ModeMessage, RowChange},
    store::TableStore,
    table::Retention,
};

use super::{
    key::{format_time, RecordKey},
    record::{decode_record, Record, RunInfo},
    store::{OpenError, RecordStore},
};
use crate::remote::{
    assembly::{Assembled, SnapshotAssembler},
    protocol::{CollectorMessage, Position},
    wire_rows::{op_from_wire, ReplicaOp},
};

/// A damaged or missing part of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The last record read before it (`None`: from the start).
    pub after: Option<RecordKey>,
    /// Where reading resumed (`None`: it did not, up to the time asked).
    pub resumed: Option<RecordKey>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.after.is_none() && self.resumed.is_none() {
            return f.write_str(&self.reason);
        }
        let after = self
            .after
            .map_or("the start".to_string(), |k| k.to_string());
        let resumed = self
            .resumed
            .map_or("the end of the range".to_string(), |k| k.to_string());
        write!(
            f,
            "damaged range after {after} up to {resumed}: {}",
            self.reason
        )
    }
}

/// Why nothing could be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The store did not open.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The recording is empty, or starts after the time asked.
    #[error("no keyframe at or before {} (the recording {span})", format_time(*at_ns))]
    NothingBefore {
        /// The time asked, wall-clock ns.
        at_ns: u64,
        /// What the recording covers.
        span: String,
    },
    /// Every keyframe at or before the time was damaged.
    #[error("nothing readable at or before {}: {}", format_time(*at_ns), list(damage))]
    Unreadable {
        /// The time asked.
        at_ns: u64,
        /// What was found damaged.
        damage: Vec<Damage>,
    },
}

fn list(damage: &[Damage]) -> String {
    damage
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Replayed tables.
pub struct Replayed {
    /// The tables.
    pub store: TableStore,
    /// The run that recorded them (of the last keyframe applied).
    pub run: RunInfo,
    /// The keyframe the replay started from.
    pub keyframe: RecordKey,
    /// The last record applied.
    pub last: RecordKey,
    /// Records read (keyframe parts and deltas).
    pub records: u64,
    /// Damaged or missing parts met on the way.
    pub damage: Vec<Damage>,
}

/// A recording opened for reading.
pub struct Recording {
    store: RecordStore,
}

/// What the replay does with reaps and later keyframes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// The state at the end.
    At,
    /// Every row from `from_ns` on: no reaps after it, later keyframes merged.
    Union { from_ns: u64 },
}

struct Cursor {
    store: Option<TableStore>,
    run: Option<RunInfo>,
    position: Option<Position>,
    /// A delta was missing: deltas are skipped until the next keyframe.
    broken: bool,
    assembler: Option<SnapshotAssembler>,
    keyframe: Option<RecordKey>,
    last: Option<RecordKey>,
    records: u64,
    damage: Vec<Damage>,
}

impl Recording {
    /// Opens the recording in `dir` (fails while a recorder holds it: [`OpenError::Locked`]).
    pub fn open(dir: &std::path::Path) -> Result<Recording, OpenError> {
        Ok(Recording {
            store: RecordStore::open_for_reading(dir)?,
        })
    }

    /// A recording over an open store (the recorder's own, to answer through its socket).
    pub fn from_store(store: RecordStore) -> Recording {
        Recording { store }
    }

    /// The first and last keys (`None`: empty).
    pub fn span(&self) -> Option<(RecordKey, RecordKey)> {
        Some((self.store.first_key().ok()??, self.store.last_key().ok()??))
    }

    fn span_text(&self) -> String {
        match self.span() {
            Some((first, last)) => format!(
                "covers {} .. {}",
                format_time(first.ts_ns),
                format_time(last.ts_ns)
            ),
            None => "is empty".into(),
        }
    }

    /// Keys of the keyframes at or before `at` (newest first), at most `count`.
    fn keyframes_before(&self, at: RecordKey, count: usize) -> Vec<RecordKey> {
        self.store
            .keyframes
            .range(..=at.to_bytes())
            .rev()
            .filter_map(|guard| guard.key().ok())
            .filter_map(|key| RecordKey::from_bytes(&key))
            .take(count)
            .collect()
    }

    /// The first keyframe after `after`, at or before `end`.
    fn keyframe_after(&self, after: RecordKey, end: RecordKey) -> Option<RecordKey> {
        self.store
            .keyframes
            .range((
                Bound::Excluded(after.to_bytes()),
                Bound::Included(end.to_bytes()),
            ))
            .filter_map(|guard| guard.key().ok())
            .find_map(|key| RecordKey::from_bytes(&key))
    }

    /// Wall-clock times of the keyframes in `[from_ns, to_ns]`.
    pub fn keyframe_times(&self, from_ns: u64, to_ns: u64) -> Vec<u64> {
        self.store
            .keyframes
            .range(RecordKey::first_at(from_ns).to_bytes()..=RecordKey::last_at(to_ns).to_bytes())
            .filter_map(|guard| guard.key().ok())
            .filter_map(|key| RecordKey::from_bytes(&key))
            .map(|key| key.ts_ns)
            .collect()
    }

    /// The tables as of `at_ns` (wall clock, ns).
    pub fn state_at(&self, at_ns: u64) -> Result<Replayed, ReplayError> {
        self.replay(at_ns, at_ns, Goal::At)
    }

    /// Every row that existed in `[from_ns, to_ns]`, each with its last state in the range
    /// (finished rows are not reaped after `from_ns`).
    pub fn rows_between(&self, from_ns: u64, to_ns: u64) -> Result<Replayed, ReplayError> {
        self.replay(from_ns, to_ns, Goal::Union { from_ns })
    }

    fn replay(&self, start_ns: u64, end_ns: u64, goal: Goal) -> Result<Replayed, ReplayError> {
        let end = RecordKey::last_at(end_ns);
        let mut candidates = self.keyframes_before(RecordKey::last_at(start_ns), 4);
        if candidates.is_empty() && matches!(goal, Goal::Union { .. }) {
            // A range that begins before the recording: from its first keyframe on.
            candidates.extend(self.keyframe_after(RecordKey::first_at(0), end));
        }
        if candidates.is_empty() {
            return Err(ReplayError::NothingBefore {
                at_ns: start_ns,
                span: self.span_text(),
            });
        }
        let mut damage = Vec::new();
        for start in candidates {
            let mut cursor = Cursor {
                store: None,
                run: None,
                position: None,
                broken: false,
                assembler: None,
                keyframe: None,
                last: None,
                records: 0,
                damage: std::mem::take(&mut damage),
            };
            self.run_from(&mut cursor, start, end, goal);
            for note in self.store.damage_notes() {
                cursor.damage.push(Damage {
                    after: None,
                    resumed: None,
                    reason: note,
                });
            }
            if let Some(salvage) = &self.store.salvage {
                let last = self.store.last_key().ok().flatten();
                if last.is_some_and(|last| last <= end) {
                    cursor.damage.push(Damage {
                        after: last,
                        resumed: None,
                        reason: salvage.to_string(),
                    });
                }
            }
            match (cursor.store, cursor.run, cursor.keyframe, cursor.last) {
                (Some(store), Some(run), Some(keyframe), Some(last)) => {
                    return Ok(Replayed {
                        store,
                        run,
                        keyframe,
                        last,
                        records: cursor.records,
                        damage: cursor.damage,
                    })
                }
                _ => damage = cursor.damage,
            }
        }
        Err(ReplayError::Unreadable {
            at_ns: start_ns,
            damage,
        })
    }

    /// Reads records from `start` to `end`, resuming after damage at the next keyframe.
    fn run_from(&self, cursor: &mut Cursor, start: RecordKey, end: RecordKey, goal: Goal) {
        let mut from = start;
        'resume: loop {
            let range = self.store.log.range(from.to_bytes()..=end.to_bytes());
            for guard in range {
                let problem = match guard.into_inner() {
                    Err(e) => Some((None, format!("the store cannot read it: {e}"))),
                    Ok((key, value)) => match RecordKey::from_bytes(&key) {
                        None => Some((None, format!("a key of {} bytes", key.len()))),
                        Some(key) => match decode_record(&value) {
                            Err(e) => Some((Some(key), format!("record {key}: {e}"))),
                            Ok(record) => {
                                cursor.records += 1;
                                cursor.last = Some(key);
                                match cursor.take(key, record, goal) {
                                    Ok(()) => None,
                                    Err(reason) => Some((Some(key), reason)),
                                }
                            }
                        },
                    },
                };
                let Some((at, reason)) = problem else {
                    continue;
                };
                // Resume at the next keyframe after the last good record (or this one).
                let after = at.or(cursor.last).unwrap_or(from);
                let resumed = self.keyframe_after(after, end);
                cursor.damage.push(Damage {
                    after: cursor.last,
                    resumed,
                    reason,
                });
                cursor.broken = true;
                match resumed {
                    Some(next) => {
                        from = next;
                        continue 'resume;
                    }
                    None => return,
                }
            }
            return;
        }
    }
}

impl Cursor {
    /// Takes one record; an error is a record out of place (a gap, a bad row).
    fn take(&mut self, key: RecordKey, record: Record, goal: Goal) -> Result<(), String> {
        match record {
            Record::Run(run) => {
                self.assembler = Some(SnapshotAssembler::new(
                    run.start_tolerance_ns,
                    Retention {
                        max_age_ns: run.retention_age_ns,
                        max_finished: run.retention_rows.min(usize::MAX as u64) as usize,
                    },
                ));
                self.run = Some(run);
                self.keyframe.get_or_insert(key);
                Ok(())
            }
            Record::Frame(message) => {
                let Some(assembler) = self.assembler.as_mut() else {
                    // The tail of a keyframe whose start retention dropped: skip to the next.
                    return Ok(());
                };
                match assembler.handle(message)? {
                    Assembled::Pending => Ok(()),
                    Assembled::Complete(store, position) => {
                        self.keyframe_done(*store, position, key, goal);
                        Ok(())
                    }
                    Assembled::Other(CollectorMessage::Delta { seq, op }) => {
                        self.delta(key, seq, op, goal)
                    }
                    Assembled::Other(_) => Ok(()),
                }
            }
        }
    }

    fn keyframe_done(&mut self, new: TableStore, position: Position, key: RecordKey, goal: Goal) {
        let continuous = self.position == Some(position) && !self.broken;
        self.broken = false;
        let merge = matches!(goal, Goal::Union { from_ns } if key.ts_ns > from_ns);
        match self.store.as_mut() {
            // The same tables as the deltas so far built: nothing to do.
            Some(_) if continuous => {}
            // A new run (or after a gap) within a range: its rows join those seen.
            Some(store) if merge => {
                for mode in self.run.iter().flat_map(|r| r.modes.clone()) {
                    let image = new.image(mode);
                    let changes = image
                        .processes
                        .into_iter()
                        .map(RowChange::Process)
                        .chain(image.connections.into_iter().map(RowChange::Connection))
                        .collect();
                    store.handle(ModeMessage::Batch(ModeBatch {
                        mode,
                        changes,
                        resync: None,
                        counters: image.counters,
                    }));
                }
            }
            _ => {
                self.store = Some(new);
                self.keyframe = Some(key);
            }
        }
        self.position = Some(position);
    }

    fn delta(
        &mut self,
        key: RecordKey,
        seq: u64,
        op: crate::remote::protocol::StoreOp,
        goal: Goal,
    ) -> Result<(), String> {
        let (Some(store), Some(position)) = (self.store.as_mut(), self.position.as_mut()) else {
            return Ok(());
        };
        if self.broken {
            return Ok(());
        }
        if seq != position.seq + 1 {
            return Err(format!(
                "deltas {}..{} of run {:#x} are missing (dropped by the recorder)",
                position.seq + 1,
                seq.saturating_sub(1),
                position.epoch
            ));
        }
        position.seq = seq;
        match op_from_wire(op).map_err(|e| format!("bad row in {key}: {e}"))? {
            ReplicaOp::Message(message) => store.handle(message),
            ReplicaOp::Reap(now_ns) => {
                let keep = matches!(goal, Goal::Union { from_ns } if key.ts_ns > from_ns);
                if !keep {
                    store.reap(now_ns);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{
        realtime_ns,
        store::{RecordRetention, RecordStore},
    };
    use crate::remote::collector::hub::{Hub, HubLimits};
    use bridge::contract::{ModeCounters, ModeKind, ProcessRow};
    use probe_common::{ProcKey, ProcState};
    use std::time::Duration;

    fn batch(tgid: u32, exit_code: u32) -> ModeMessage {
        ModeMessage::Batch(ModeBatch {
            mode: ModeKind::Ring,
            changes: vec![RowChange::Process(ProcessRow::from_record(
                ProcKey::new(tgid, 1),
                ProcState {
                    exit_code,
                    ..Default::default()
                },
                tgid as u64 * 10 + exit_code as u64,
                1,
            ))],
            resync: None,
            counters: ModeCounters::default(),
        })
    }

    fn hub(dir: &std::path::Path) -> Hub {
        let store = RecordStore::open_for_writing(
            dir,
            RecordRetention {
                max_bytes: 1 << 30,
                max_age: Duration::from_secs(3600),
            },
        )
        .unwrap();
        let mut hub = Hub::new(
            7,
            TableStore::new(0, Retention::default()),
            vec![ModeKind::Ring],
            HubLimits {
                queue_frames: 16,
                recent_frames: 16,
                recent_bytes: usize::MAX,
            },
        );
        hub.set_recorder(store, vec![]).unwrap();
        hub
    }

    fn tgids(store: &TableStore) -> Vec<(u32, u32)> {
        store
            .mode(ModeKind::Ring)
            .processes
            .rows()
            .iter()
            .map(|r| (r.key.tgid, r.state.exit_code))
            .collect()
    }

    /// Waits a little so the next record has a later wall-clock time; returns a time between.
    fn tick() -> u64 {
        std::thread::sleep(Duration::from_millis(3));
        let between = realtime_ns();
        std::thread::sleep(Duration::from_millis(3));
        between
    }

    #[test]
    fn the_state_at_a_time_is_the_keyframe_before_plus_the_deltas() {
        let dir = tempfile::tempdir().unwrap();
        let mut hub = hub(dir.path());
        let t0 = tick();
        hub.publish_message(batch(1, 0));
        let t1 = tick();
        hub.publish_message(batch(2, 0));
        hub.record_keyframe();
        let t2 = tick();
        hub.publish_message(batch(1, 7));
        let t3 = tick();
        hub.finish_recording();
        drop(hub);
        let recording = Recording::open(dir.path()).unwrap();
        let at = |t| tgids(&recording.state_at(t).unwrap().store);
        assert_eq!(at(t0), vec![]);
        assert_eq!(at(t1), vec![(1, 0)]);
        assert_eq!(at(t2), vec![(1, 0), (2, 0)]);
        assert_eq!(at(t3), vec![(1, 7), (2, 0)]);
        let replayed = recording.state_at(t3).unwrap();
        assert!(replayed.damage.is_empty(), "{:?}", replayed.damage);
        assert!(replayed.keyframe.ts_ns > t1 && replayed.keyframe.ts_ns < t2);
        assert_eq!(replayed.run.epoch, 7);
        assert!(matches!(
            recording.state_at(t0 - 1_000_000_000),
            Err(ReplayError::NothingBefore { .. })
        ));
        // A range keeps every row with its last state in it.
        let union = recording.rows_between(t0, t3).unwrap();
        assert_eq!(tgids(&union.store), vec![(1, 7), (2, 0)]);
    }

    #[test]
    fn a_damaged_record_is_named_and_the_rest_replays() {
        let dir = tempfile::tempdir().unwrap();
        let mut hub = hub(dir.path());
        hub.publish_message(batch(1, 0));
        let t1 = tick();
        hub.publish_message(batch(2, 0));
        tick();
        hub.record_keyframe();
        hub.publish_message(batch(3, 0));
        let t3 = tick();
        hub.finish_recording();
        drop(hub);
        // Overwrite the delta of tgid 2 with bytes of no record.
        let bad = {
            let store = RecordStore::open_for_reading(dir.path()).unwrap();
            let keys: Vec<RecordKey> = store
                .log
                .range(RecordKey::first_at(t1).to_bytes()..)
                .map(|g| RecordKey::from_bytes(&g.key().unwrap()).unwrap())
                .collect();
            store
                .log
                .insert(keys[0].to_bytes(), [1u8, 1, 0xff])
                .unwrap();
            keys[0]
        };
        let recording = Recording::open(dir.path()).unwrap();
        let replayed = recording.state_at(t3).unwrap();
        // The later keyframe is whole: the state is right, and no damage lies on its way.
        assert_eq!(tgids(&replayed.store), vec![(1, 0), (2, 0), (3, 0)]);
        // From the first keyframe, the damage is met and named; the replay resumes at the next.
        let range = recording.rows_between(t1 - 1, t3).unwrap();
        assert_eq!(range.damage.len(), 1, "{:?}", range.damage);
        let text = range.damage[0].to_string();
        assert!(text.contains(&bad.to_string()), "{text}");
        assert!(range.damage[0].resumed.is_some());
        assert_eq!(tgids(&range.store), vec![(1, 0), (2, 0), (3, 0)]);
    }

    #[test]
    fn a_directory_of_other_files_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious"), b"data").unwrap();
        let retention = RecordRetention {
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(60),
        };
        assert!(matches!(
            RecordStore::open_for_writing(dir.path(), retention),
            Err(OpenError::NotARecording(..))
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(matches!(
            Recording::open(dir.path()),
            Err(OpenError::Missing(..))
        ));
        // Held by a recorder: a second opener is told so.
        let other = tempfile::tempdir().unwrap();
        let _held = RecordStore::open_for_writing(other.path(), retention).unwrap();
        assert!(matches!(
            Recording::open(other.path()),
            Err(OpenError::Locked(..))
        ));
    }
}
