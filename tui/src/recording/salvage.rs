//! A journal that does not recover (a checksum mismatch in the middle: damaged, not merely
//! torn by a crash, which fjall itself cuts off) makes fjall refuse the whole store. The
//! reader then opens the longest readable prefix of the journals instead, on a copy (the
//! recording itself is never written): the table files are linked or copied as they are, the
//! journals copied up to a byte offset found by bisection. The damage starts after the last
//! record of that prefix; records of the journals past it are reported lost.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::store::{OpenError, RecordStore};

/// Where a damaged journal was cut.
#[derive(Debug)]
pub struct Salvage {
    /// The copy the readable prefix was opened from (removed on drop).
    pub copy: tempfile::TempDir,
    /// Why the journal did not recover.
    pub reason: String,
    /// The journal file the cut falls in, and the byte offset in it.
    pub cut: (String, u64),
    /// Bytes of journal past the cut (unreadable).
    pub lost_bytes: u64,
}

impl std::fmt::Display for Salvage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal {} is damaged near byte {} ({}): its {} bytes past that are unreadable",
            self.cut.0, self.cut.1, self.reason, self.lost_bytes
        )
    }
}

/// The journals in write order (`0.jnl`, `1.jnl`, …) with their sizes.
fn journals(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut journals: Vec<(u64, PathBuf, u64)> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number: u64 = name.strip_suffix(".jnl")?.parse().ok()?;
            Some((number, entry.path(), entry.metadata().ok()?.len()))
        })
        .collect();
    journals.sort();
    Ok(journals.into_iter().map(|(_, p, l)| (p, l)).collect())
}

/// Copies `from` into `to` (table files hard-linked where possible), journals cut so that
/// `keep` bytes of them in write order remain.
fn copy_cut(from: &Path, to: &Path, journals: &[(PathBuf, u64)], keep: u64) -> std::io::Result<()> {
    for entry in walk(from)? {
        let relative = entry.strip_prefix(from).expect("under from");
        let target = to.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        if journals.iter().any(|(p, _)| *p == entry) {
            continue;
        }
        // Only table files are immutable (and large): link them; copy the rest (the lock
        // above all: a link would share the recorder's lock).
        let table = relative.components().any(|c| c.as_os_str() == "tables");
        if !table || fs::hard_link(&entry, &target).is_err() {
            fs::copy(&entry, &target)?;
        }
    }
    let mut left = keep;
    for (path, len) in journals {
        let take = left.min(*len);
        left -= take;
        let bytes = fs::read(path)?;
        fs::write(
            to.join(path.file_name().expect("a file")),
            &bytes[..take as usize],
        )?;
    }
    Ok(())
}

fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            files.extend(walk(&entry.path())?);
        } else {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Opens the longest prefix of `dir`'s journals that recovers, from a copy.
pub fn open_readable_prefix(dir: &Path, reason: &str) -> Result<RecordStore, OpenError> {
    let damaged = |e: std::io::Error| {
        OpenError::Damaged(dir.to_path_buf(), format!("{reason}; salvaging it: {e}"))
    };
    let journals = journals(dir).map_err(damaged)?;
    let total: u64 = journals.iter().map(|(_, l)| l).sum();
    let attempt = |keep: u64| -> Result<Option<(RecordStore, tempfile::TempDir)>, OpenError> {
        let copy = tempfile::Builder::new()
            .prefix("bpftop-ordered-salvage")
            .tempdir()
            .map_err(damaged)?;
        copy_cut(dir, copy.path(), &journals, keep).map_err(damaged)?;
        match RecordStore::open_copy(copy.path()) {
            Ok(store) => Ok(Some((store, copy))),
            Err(_) => Ok(None),
        }
    };
    // Bisect: `good` opens, `bad` does not (the whole of it failed already).
    let (mut good, mut bad) = (0u64, total);
    while bad - good > 1 {
        let middle = good + (bad - good) / 2;
        match attempt(middle)? {
            Some(_) => good = middle,
            None => bad = middle,
        }
    }
    let Some((mut store, copy)) = attempt(good)? else {
        return Err(OpenError::Damaged(
            dir.to_path_buf(),
            format!("{reason}; not even an empty journal recovers"),
        ));
    };
    let mut left = good;
    let mut cut = (String::new(), 0);
    for (path, len) in &journals {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        cut = (name, left.min(*len));
        if left <= *len {
            break;
        }
        left -= len;
    }
    store.path = dir.to_path_buf();
    store.salvage = Some(std::sync::Arc::new(Salvage {
        copy,
        reason: reason.to_string(),
        cut,
        lost_bytes: total - good,
    }));
    Ok(store)
}
