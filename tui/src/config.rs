//! The dashboard's config file: `$XDG_CONFIG_HOME/bpftop-ordered/config.toml` (falling back to
//! `~/.config/bpftop-ordered/config.toml`; `--config PATH` overrides).
//!
//! ```toml
//! mode = "ring"           # mode visible at start: ring | perf | poll
//! interval = "1s"         # refresh interval (also poll mode's snapshot interval)
//! theme = "default"       # built-in name or path to a theme file (relative to this file)
//!
//! [retention]             # finished rows (exited processes, closed connections)
//! max_age = "60s"
//! max_finished = 10000
//!
//! [columns]               # visible columns, in order
//! processes = ["pid", "user", "comm", "state", "cpu", "cpu_time", "start", "exit"]
//! connections = ["proto", "local", "remote", "state", "pid", "comm", "sent", "recv", "age"]
//!
//! [keys]                  # action = key or [keys]; replaces that action's default keys
//! quit = ["q", "ctrl-q"]
//!
//! [view]                  # what the tables show at start (the keys toggle it)
//! hide_exited = false     # exited processes and closed connections (key `E`)
//! hide_kernel_threads = false  # kernel threads (key `K`, as in htop)
//! ```
//!
//! Everything is validated when the file is read, before the terminal is touched: an unknown
//! key or a bad value is reported as `file:line:column: message` with the valid choices.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use bridge::contract::ModeKind;
use serde::Deserialize;
use toml::Spanned;

use crate::{
    dashboard::keymap::{Action, KeyChord, KeyMap},
    model::columns::{CONNECTION_COLUMNS, PROCESS_COLUMNS},
    theme::Theme,
    user_file::{read_bounded, FileError},
};

/// The config file as written (every field optional; unknown fields are errors).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    mode: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    theme: Option<Spanned<String>>,
    retention: Option<RetentionFile>,
    columns: Option<ColumnsFile>,
    keys: Option<BTreeMap<Spanned<String>, Spanned<KeyList>>>,
    view: Option<ViewFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewFile {
    hide_exited: Option<bool>,
    hide_kernel_threads: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    max_age: Option<Spanned<String>>,
    max_finished: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnsFile {
    processes: Option<Spanned<Vec<Spanned<String>>>>,
    connections: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `action = "key"` or `action = ["key", ...]` (an empty list unbinds the action).
#[derive(Debug)]
struct KeyList(Vec<String>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyListVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyListVisitor {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key name or a list of key names, e.g. \"q\" or [\"q\", \"ctrl-q\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyList, E> {
                Ok(KeyList(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KeyList, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<String>()? {
                    keys.push(key);
                }
                Ok(KeyList(keys))
            }
        }
        deserializer.deserialize_any(KeyListVisitor)
    }
}

/// The validated config. `None` means "not set in the file".
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
    /// Mode visible at start.
    pub mode: Option<ModeKind>,
    /// Refresh interval.
    pub interval: Option<Duration>,
    /// Theme, already loaded and validated.
    pub theme: Option<Theme>,
    /// Retention age of finished rows.
    pub retention_max_age: Option<Duration>,
    /// Retention count of finished rows.
    pub retention_max_finished: Option<usize>,
    /// Visible process columns (indices into `PROCESS_COLUMNS`), in order.
    pub process_columns: Option<Vec<usize>>,
    /// Visible connection columns (indices into `CONNECTION_COLUMNS`), in order.
    pub connection_columns: Option<Vec<usize>>,
    /// Key bindings (defaults plus the file's overrides).
    pub keymap: KeyMap,
    /// `[view] hide_exited`: start with exited processes and closed connections hidden.
    pub hide_exited: Option<bool>,
    /// `[view] hide_kernel_threads`: start with kernel threads hidden.
    pub hide_kernel_threads: Option<bool>,
}

/// Shortest refresh interval accepted: faster only burns CPU without a readable screen.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest refresh interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The default config path: `$XDG_CONFIG_HOME/bpftop-ordered/config.toml` when
/// `XDG_CONFIG_HOME` is set to an absolute path, else `$HOME/.config/bpftop-ordered/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("bpftop-ordered").join("config.toml"))
}

impl Config {
    /// Reads the config: `explicit` must exist; without it the default path is read when
    /// present, and a missing default file means the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, FileError> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => match default_path() {
                Some(path) if path.exists() => path,
                _ => return Ok(Config::default()),
            },
        };
        let text = read_bounded(&path, "config file")?;
        Config::parse(&path, &text)
    }

    /// Parses and validates config `text` read from `path` (used for messages and to resolve
    /// a relative theme path).
    pub fn parse(path: &Path, text: &str) -> Result<Config, FileError> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| FileError::from_toml(path, text, &e))?;
        let at = |span: std::ops::Range<usize>, message: String| {
            FileError::at(path, text, span.start, message)
        };
        let mut config = Config {
            source: Some(path.to_path_buf()),
            ..Config::default()
        };
        if let Some(mode) = file.mode {
            config.mode = Some(parse_mode(&mode, &at)?);
        }
        if let Some(interval) = file.interval {
            config.interval = Some(parse_interval(&interval, &at)?);
        }
        if let Some(theme) = file.theme {
            config.theme = Some(resolve_theme(path, &theme, &at)?);
        }
        if let Some(retention) = file.retention {
            (config.retention_max_age, config.retention_max_finished) =
                parse_retention(retention, &at)?;
        }
        if let Some(columns) = file.columns {
            (config.process_columns, config.connection_columns) = parse_columns(columns, &at)?;
        }
        if let Some(keys) = file.keys {
            config.keymap = parse_keys(path, keys, &at)?;
        }
        if let Some(view) = file.view {
            config.hide_exited = view.hide_exited;
            config.hide_kernel_threads = view.hide_kernel_threads;
        }
        Ok(config)
    }
}

/// Where in the file an error is: a span and a message make a located [`FileError`].
type Locate<'a> = dyn Fn(std::ops::Range<usize>, String) -> FileError + 'a;

/// The `mode` key: `ring`, `perf` or `poll`.
fn parse_mode(mode: &Spanned<String>, at: &Locate) -> Result<ModeKind, FileError> {
    mode.get_ref()
        .parse::<ModeKind>()
        .map_err(|e| at(mode.span(), e))
}

/// The `interval` key: a duration within the dashboard's range.
fn parse_interval(interval: &Spanned<String>, at: &Locate) -> Result<Duration, FileError> {
    let value = parse_duration(interval.get_ref()).map_err(|e| at(interval.span(), e))?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&value) {
        return Err(at(
            interval.span(),
            format!(
                "interval `{}` is out of range (from {} to {})",
                interval.get_ref(),
                humantime::format_duration(MIN_INTERVAL),
                humantime::format_duration(MAX_INTERVAL)
            ),
        ));
    }
    Ok(value)
}

/// The `[retention]` table: the age and the count of finished rows kept.
fn parse_retention(
    retention: RetentionFile,
    at: &Locate,
) -> Result<(Option<Duration>, Option<usize>), FileError> {
    let max_age = match retention.max_age {
        Some(age) => Some(parse_duration(age.get_ref()).map_err(|e| at(age.span(), e))?),
        None => None,
    };
    let max_finished = retention
        .max_finished
        .map(|count| *count.get_ref() as usize);
    Ok((max_age, max_finished))
}

/// Visible process and connection columns, as indices into each table's columns.
type ColumnLists = (Option<Vec<usize>>, Option<Vec<usize>>);

/// The `[columns]` table: the visible columns of each table.
fn parse_columns(columns: ColumnsFile, at: &Locate) -> Result<ColumnLists, FileError> {
    let process_names: Vec<&str> = PROCESS_COLUMNS.iter().map(|c| c.name).collect();
    let connection_names: Vec<&str> = CONNECTION_COLUMNS.iter().map(|c| c.name).collect();
    let processes = match columns.processes {
        Some(list) => Some(column_indices(&list, &process_names, "processes", at)?),
        None => None,
    };
    let connections = match columns.connections {
        Some(list) => Some(column_indices(&list, &connection_names, "connections", at)?),
        None => None,
    };
    Ok((processes, connections))
}

/// The `theme` key: a built-in name, or a theme file relative to the config file. A broken
/// theme file is reported at its own file:line.
fn resolve_theme(
    config_path: &Path,
    theme: &Spanned<String>,
    at: &Locate,
) -> Result<Theme, FileError> {
    let base_dir = config_path.parent().unwrap_or(Path::new("."));
    Theme::resolve(theme.get_ref(), base_dir).map_err(|e| match e {
        crate::theme::ThemeError::File(file_error) => file_error,
        crate::theme::ThemeError::Unknown(message) => at(theme.span(), message),
    })
}

/// The `[keys]` table: each action's keys replace its defaults; a key bound twice is an error
/// at the overriding key.
fn parse_keys(
    path: &Path,
    keys: BTreeMap<Spanned<String>, Spanned<KeyList>>,
    at: &Locate,
) -> Result<KeyMap, FileError> {
    let mut overrides = Vec::new();
    let mut key_spans = Vec::new();
    for (name, list) in keys {
        let action = Action::from_config_name(name.get_ref()).ok_or_else(|| {
            let valid: Vec<&str> = Action::ALL.iter().map(|a| a.config_name()).collect();
            at(
                name.span(),
                format!(
                    "unknown action `{}` in [keys] (actions: {})",
                    name.get_ref(),
                    valid.join(", ")
                ),
            )
        })?;
        let span = list.span();
        let mut chords = Vec::new();
        for key in &list.get_ref().0 {
            let chord = KeyChord::parse(key).map_err(|e| at(span.clone(), e))?;
            key_spans.push((chord, span.clone()));
            chords.push(chord);
        }
        overrides.push((action, chords));
    }
    KeyMap::with_overrides(&overrides).map_err(|conflict| {
        // Point at the overriding key that collided (a default key has no line).
        let span = key_spans
            .iter()
            .rev()
            .find(|(chord, _)| *chord == conflict.key)
            .map(|(_, span)| span.clone());
        match span {
            Some(span) => at(span, conflict.to_string()),
            None => FileError::whole(path, conflict.to_string()),
        }
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration `{text}`: {e} (examples: 500ms, 2s, 1m)"))
}

fn column_indices(
    list: &Spanned<Vec<Spanned<String>>>,
    valid: &[&str],
    table: &str,
    at: &Locate,
) -> Result<Vec<usize>, FileError> {
    if list.get_ref().is_empty() {
        return Err(at(
            list.span(),
            format!(
                "columns.{table} is empty: list at least one of {}",
                valid.join(", ")
            ),
        ));
    }
    let mut indices = Vec::new();
    for name in list.get_ref() {
        let index = valid
            .iter()
            .position(|v| v == name.get_ref())
            .ok_or_else(|| {
                at(
                    name.span(),
                    format!(
                        "unknown column `{}` for {table} (columns: {})",
                        name.get_ref(),
                        valid.join(", ")
                    ),
                )
            })?;
        if indices.contains(&index) {
            return Err(at(
                name.span(),
                format!("column `{}` is listed twice", name.get_ref()),
            ));
        }
        indices.push(index);
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses() {
        let text = r#"
mode = "perf"
interval = "2s"
theme = "light"
[retention]
max_age = "5m"
max_finished = 500
[columns]
processes = ["pid", "comm", "cpu"]
connections = ["local", "remote", "state"]
[keys]
quit = ["x", "ctrl-q"]
help = "f1"
hide_exited = "X"
[view]
hide_exited = true
hide_kernel_threads = false
"#;
        let config = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(config.mode, Some(ModeKind::Perf));
        assert_eq!(config.interval, Some(Duration::from_secs(2)));
        assert_eq!(config.theme.unwrap().name, "light");
        assert_eq!(config.retention_max_age, Some(Duration::from_secs(300)));
        assert_eq!(config.retention_max_finished, Some(500));
        assert_eq!(config.process_columns.unwrap().len(), 3);
        assert_eq!(config.keymap.label(Action::Quit), "x/Ctrl-Q");
        assert_eq!(config.keymap.label(Action::Help), "F1");
        assert_eq!(config.keymap.label(Action::HideExited), "X");
        assert_eq!(config.keymap.label(Action::HideKernelThreads), "K");
        assert_eq!(config.hide_exited, Some(true));
        assert_eq!(config.hide_kernel_threads, Some(false));
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let config = Config::parse(Path::new("c.toml"), "").unwrap();
        assert!(config.mode.is_none() && config.interval.is_none());
        assert!(config.hide_exited.is_none() && config.hide_kernel_threads.is_none());
    }
}
