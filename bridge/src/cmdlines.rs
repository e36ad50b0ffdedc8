//! Command lines by process: what the kernel's `PROC_CMDLINE` map holds (captured at exec,
//! copied to a forked child, seeded from /proc for processes that predate the probes), as
//! text, for every mode's process rows at once (a command line is a fact of the process, not of
//! a bridge mode).

use std::{collections::HashMap, sync::Arc};

use probe_common::{Cmdline, ProcKey};

use crate::contract::{cmdline_text, ProcessRow};

/// A process's command line as `ps -o args` shows it: the arguments joined by single spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// The arguments joined by spaces (invalid UTF-8 replaced); shared, never copied per view.
    pub text: Arc<str>,
    /// The command line was longer than [`probe_common::CMDLINE_LEN`] bytes: `text` is its
    /// start.
    pub truncated: bool,
}

impl CommandLine {
    /// The text of a kernel capture; `None` when the capture failed (nothing is known).
    pub fn from_kernel(c: &Cmdline) -> Option<CommandLine> {
        let (text, truncated) = cmdline_text(c)?;
        Some(CommandLine {
            text: text.into(),
            truncated,
        })
    }
}

/// Every known command line, by process identity. A process without an entry has an unknown
/// command line (it did not exec while the probes ran and its parent's was not known, or the
/// kernel's LRU map evicted it).
#[derive(Debug, Default)]
pub struct CommandLines {
    by_key: HashMap<ProcKey, CommandLine>,
}

impl CommandLines {
    /// Takes in entries read from `PROC_CMDLINE` (a later read of a key replaces an earlier
    /// one: the process exec'd again). Returns how many entries changed.
    pub fn absorb(&mut self, entries: &[(ProcKey, Cmdline)]) -> usize {
        let mut changed = 0;
        for (key, raw) in entries {
            let Some(line) = CommandLine::from_kernel(raw) else {
                continue;
            };
            if self.by_key.get(key) != Some(&line) {
                self.by_key.insert(*key, line);
                changed += 1;
            }
        }
        changed
    }

    /// The command line of the process of `row`, if known: its own entry, else — for a
    /// process that predates the probes — the one read from /proc at start-up.
    pub fn of(&self, row: &ProcessRow) -> Option<&CommandLine> {
        self.by_key.get(&row.key).or_else(|| {
            row.predates_probes()
                .then(|| self.by_key.get(&ProcKey::seeded_cmdline(row.key.tgid)))
                .flatten()
        })
    }

    /// Every entry, in no particular order (a collector's snapshot copies them).
    pub fn iter(&self) -> impl Iterator<Item = (&ProcKey, &CommandLine)> + '_ {
        self.by_key.iter()
    }

    /// Sets the command line of `key` (a replica taking a collector's snapshot).
    pub fn insert(&mut self, key: ProcKey, line: CommandLine) {
        self.by_key.insert(key, line);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when no command line is known.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Keeps only the processes for which `keep` is true (the store drops the command lines of
    /// processes no table holds any more).
    pub fn retain(&mut self, mut keep: impl FnMut(&ProcKey) -> bool) {
        self.by_key.retain(|key, _| keep(key));
    }

    /// Heap bytes held, approximately (entries and text).
    pub fn allocated_bytes(&self) -> u64 {
        let entry = std::mem::size_of::<(ProcKey, CommandLine)>() as u64 + 8;
        self.by_key
            .values()
            .map(|line| entry + line.text.len() as u64)
            .sum()
    }
}

/// Which `PROC_CMDLINE` entries changed since the last read, by a fingerprint per key, so that
/// a periodic reader sends only what is new (a read returns the whole map).
#[derive(Debug, Default)]
pub struct CmdlineChanges {
    seen: HashMap<ProcKey, u64>,
}

impl CmdlineChanges {
    /// The entries of `read` (a whole-map read) that are new or differ from the last call,
    /// forgetting keys that are gone from the map.
    pub fn changed(&mut self, read: Vec<(ProcKey, Cmdline)>) -> Vec<(ProcKey, Cmdline)> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        let mut present = HashMap::with_capacity(read.len());
        let mut out = Vec::new();
        for (key, c) in read {
            let used = (c.len as usize).min(c.bytes.len());
            let print = hasher.hash_one((c.flags, &c.bytes[..used]));
            if self.seen.get(&key) != Some(&print) {
                out.push((key, c));
            }
            present.insert(key, print);
        }
        self.seen = present;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(args: &[u8]) -> Cmdline {
        let mut c = Cmdline::default();
        c.bytes[..args.len()].copy_from_slice(args);
        c.len = args.len() as u32;
        c
    }

    #[test]
    fn absorbs_replaces_and_retains() {
        let a = ProcKey::new(10, 1);
        let b = ProcKey::new(11, 2);
        let mut lines = CommandLines::default();
        assert_eq!(
            lines.absorb(&[(a, raw(b"sleep\x00100\0")), (b, raw(b"sh\0"))]),
            2
        );
        assert_eq!(&*lines.by_key[&a].text, "sleep 100");
        assert_eq!(
            lines.absorb(&[(a, raw(b"sleep\x00100\0"))]),
            0,
            "same again"
        );
        assert_eq!(lines.absorb(&[(a, raw(b"cat\0"))]), 1, "exec'd again");
        assert_eq!(&*lines.by_key[&a].text, "cat");
        let mut failed = raw(b"");
        failed.flags = probe_common::cmdline_flags::READ_FAILED;
        assert_eq!(lines.absorb(&[(ProcKey::new(12, 3), failed)]), 0);
        lines.retain(|k| *k == b);
        assert!(!lines.by_key.contains_key(&a) && lines.len() == 1);
        assert!(lines.allocated_bytes() > 0);
    }

    #[test]
    fn processes_that_predate_the_probes_fall_back_to_the_proc_entry() {
        use crate::contract::Row;
        let mut lines = CommandLines::default();
        lines.absorb(&[(ProcKey::seeded_cmdline(10), raw(b"old\0"))]);
        let state = probe_common::ProcState::default();
        let seeded = Row::from_procfs(ProcKey::new(10, 1_000), state);
        assert_eq!(&*lines.of(&seeded).unwrap().text, "old");
        let mut first_seen = state;
        first_seen.flags = probe_common::proc_flags::FIRST_SEEN_RUNNING;
        let kernel_row = Row::from_record(ProcKey::new(10, 1_003), first_seen, 1, 2);
        assert_eq!(&*lines.of(&kernel_row).unwrap().text, "old");
        let forked = Row::from_record(ProcKey::new(10, 9_000), state, 1, 2);
        assert!(
            lines.of(&forked).is_none(),
            "born under the probes: not the /proc line"
        );
        lines.absorb(&[(forked.key, raw(b"new\0"))]);
        assert_eq!(&*lines.of(&forked).unwrap().text, "new");
    }

    #[test]
    fn changes_are_reported_once() {
        let a = ProcKey::new(10, 1);
        let mut changes = CmdlineChanges::default();
        assert_eq!(changes.changed(vec![(a, raw(b"x\0"))]).len(), 1);
        assert!(changes.changed(vec![(a, raw(b"x\0"))]).is_empty());
        assert_eq!(changes.changed(vec![(a, raw(b"y\0"))]).len(), 1);
        assert!(changes.changed(vec![]).is_empty());
        assert_eq!(
            changes.changed(vec![(a, raw(b"y\0"))]).len(),
            1,
            "gone, then back"
        );
    }
}
