//! Remembering the `E`/`K` toggles: `[view] hide_exited` and `hide_kernel_threads` written back
//! into the config file, everything else in it (comments, order, other tables) kept as it was.

use std::{io::Write, path::Path};

use crate::{dashboard::table_view::HideRows, user_file::read_bounded};

/// Sets `[view] hide_exited` and `[view] hide_kernel_threads` in the config file at `path` to
/// `hide`, creating the file (and its directory) when missing. The new text replaces the old
/// atomically (written to a temporary file beside it, then renamed), so a crash never leaves
/// half a config. A file that cannot be read or parsed is left untouched and the reason
/// returned (the dashboard read it at start, so that means it changed since).
pub fn remember_view(path: &Path, hide: HideRows) -> Result<(), String> {
    let text = if path.exists() {
        read_bounded(path, "config file").map_err(|e| e.to_string())?
    } else {
        String::new()
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: not TOML any more, left as it is: {e}", path.display()))?;
    let view = doc
        .entry("view")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| format!("{}: `view` is not a table, left as it is", path.display()))?;
    view.insert("hide_exited", toml_edit::value(hide.exited));
    view.insert("hide_kernel_threads", toml_edit::value(hide.kernel_threads));
    write_atomically(path, doc.to_string().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn toggles_are_written_back_keeping_the_rest() {
        let dir = std::env::temp_dir().join(format!("bto-config-view-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/config.toml");
        let hide = |exited, kernel_threads| HideRows {
            exited,
            kernel_threads,
        };
        // No file yet: created with just the view table.
        remember_view(&path, hide(true, false)).unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(
            (config.hide_exited, config.hide_kernel_threads),
            (Some(true), Some(false))
        );
        // An existing file keeps its comments and other keys.
        std::fs::write(
            &path,
            "# mine\nmode = \"perf\"  # visible first\n[view]\nhide_exited = true\n",
        )
        .unwrap();
        remember_view(&path, hide(false, true)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# mine\nmode = \"perf\"  # visible first\n"),
            "{text}"
        );
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.mode, Some(bridge::contract::ModeKind::Perf));
        assert_eq!(
            (config.hide_exited, config.hide_kernel_threads),
            (Some(false), Some(true))
        );
        // A file that is no longer TOML is left alone.
        std::fs::write(&path, "mode = \n").unwrap();
        let error = remember_view(&path, hide(true, true)).unwrap_err();
        assert!(error.contains("left as it is"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mode = \n");
        // `view` that is not a table.
        std::fs::write(&path, "view = 3\n").unwrap();
        assert!(remember_view(&path, hide(true, true))
            .unwrap_err()
            .contains("not a table"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
