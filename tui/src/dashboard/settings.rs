//! Start-up settings: the command line over the config file over the defaults, validated in
//! full before the terminal is touched (a bad value is exit code 2 with a clear message).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use bridge::{contract::ModeKind, session::SessionConfig};

use super::{
    app::AppSettings,
    filter::{self, FilterTable},
    table_view::HideRows,
};
use crate::{
    config::{Config, MAX_INTERVAL, MIN_INTERVAL},
    model::columns::{CONNECTION_COLUMNS, PROCESS_COLUMNS},
    theme::Theme,
};

/// How the dashboard was asked to start. `None` fields were not given on the command line;
/// the config file, then the defaults, fill them in.
#[derive(Clone, Debug, Default)]
pub struct DashboardOptions {
    /// Mode whose tables are visible at start (all modes run).
    pub mode: Option<ModeKind>,
    /// Refresh interval (also poll mode's snapshot interval).
    pub interval: Option<Duration>,
    /// Theme: a built-in name or a path.
    pub theme: Option<String>,
    /// Initial filter text.
    pub filter: Option<String>,
    /// Config file to read instead of the default location.
    pub config_path: Option<PathBuf>,
    /// Retention age of finished rows from the command line (wins over the config file).
    pub retention: Option<Duration>,
    /// Bridge settings; `poll_interval` and `retention` are overridden as above.
    pub session: SessionConfig,
}

/// Everything the dashboard needs to start.
#[derive(Debug)]
pub struct Settings {
    /// For the app state.
    pub app: AppSettings,
    /// For the bridge session.
    pub session: SessionConfig,
}

/// Combines the options with the config file. Errors are messages for the user (exit code 2).
pub fn resolve(options: &DashboardOptions) -> Result<Settings, String> {
    let config = Config::load(options.config_path.as_deref()).map_err(|e| e.to_string())?;
    resolve_with(options, config)
}

/// [`resolve`] with an already loaded config.
pub fn resolve_with(options: &DashboardOptions, config: Config) -> Result<Settings, String> {
    let theme = match &options.theme {
        Some(name) => Theme::resolve(name, Path::new(".")).map_err(|e| format!("--theme: {e}"))?,
        None => config.theme.clone().unwrap_or_else(Theme::default_theme),
    };
    let interval = match options.interval {
        Some(interval) => {
            if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
                return Err(format!(
                    "--interval {} is out of range (from {} to {})",
                    humantime::format_duration(interval),
                    humantime::format_duration(MIN_INTERVAL),
                    humantime::format_duration(MAX_INTERVAL)
                ));
            }
            interval
        }
        None => config.interval.unwrap_or(Duration::from_secs(1)),
    };
    if let Some(text) = &options.filter {
        let for_processes = filter::parse(text, FilterTable::Processes);
        let for_connections = filter::parse(text, FilterTable::Connections);
        if let (Err(p), Err(c)) = (&for_processes, &for_connections) {
            return Err(if p == c {
                format!("--filter: {p}")
            } else {
                format!("--filter: for processes {p}; for connections {c}")
            });
        }
    }
    let mode = options.mode.or(config.mode).unwrap_or(ModeKind::Ring);
    let mut session = options.session.clone();
    session.poll_interval = interval;
    if let Some(age) = options.retention.or(config.retention_max_age) {
        session.retention.max_age_ns = age.as_nanos().min(u64::MAX as u128) as u64;
    }
    if let Some(count) = config.retention_max_finished {
        session.retention.max_finished = count;
    }
    let app = AppSettings {
        mode,
        interval,
        theme,
        keymap: config.keymap,
        process_columns: config
            .process_columns
            .unwrap_or_else(|| (0..PROCESS_COLUMNS.len()).collect()),
        connection_columns: config
            .connection_columns
            .unwrap_or_else(|| (0..CONNECTION_COLUMNS.len()).collect()),
        filter: options.filter.clone(),
        running_modes: session.modes(),
        flush_period: session.update_interval,
        hide: HideRows {
            exited: config.hide_exited.unwrap_or(false),
            kernel_threads: config.hide_kernel_threads.unwrap_or(false),
        },
        remember_in: options
            .config_path
            .clone()
            .or_else(crate::config::default_path),
    };
    Ok(Settings { app, session })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> DashboardOptions {
        DashboardOptions::default()
    }

    #[test]
    fn command_line_wins_over_config() {
        let config = Config::parse(
            Path::new("c.toml"),
            "mode = \"poll\"\ninterval = \"3s\"\ntheme = \"light\"\n[retention]\nmax_age = \"10s\"\n",
        )
        .unwrap();
        let from_config = resolve_with(&options(), config.clone()).unwrap();
        assert_eq!(from_config.app.mode, ModeKind::Poll);
        assert_eq!(from_config.app.interval, Duration::from_secs(3));
        assert_eq!(from_config.session.poll_interval, Duration::from_secs(3));
        assert_eq!(from_config.app.theme.name, "light");
        assert_eq!(from_config.session.retention.max_age_ns, 10_000_000_000);
        let cli = DashboardOptions {
            mode: Some(ModeKind::Perf),
            interval: Some(Duration::from_millis(500)),
            theme: Some("nord".into()),
            retention: Some(Duration::from_secs(5)),
            ..options()
        };
        let resolved = resolve_with(&cli, config).unwrap();
        assert_eq!(resolved.app.mode, ModeKind::Perf);
        assert_eq!(resolved.app.interval, Duration::from_millis(500));
        assert_eq!(resolved.app.theme.name, "nord");
        assert_eq!(resolved.session.retention.max_age_ns, 5_000_000_000);
    }

    #[test]
    fn bad_options_are_messages() {
        let bad_theme = DashboardOptions {
            theme: Some("nope".into()),
            ..options()
        };
        let e = resolve_with(&bad_theme, Config::default()).unwrap_err();
        assert!(e.starts_with("--theme: unknown theme `nope`"), "{e}");
        let bad_filter = DashboardOptions {
            filter: Some("pid:abc".into()),
            ..options()
        };
        let e = resolve_with(&bad_filter, Config::default()).unwrap_err();
        assert!(e.contains("pid must be a number"), "{e}");
        // Valid for connections only: accepted (applies where it parses).
        let port = DashboardOptions {
            filter: Some("port:443".into()),
            ..options()
        };
        assert!(resolve_with(&port, Config::default()).is_ok());
        let fast = DashboardOptions {
            interval: Some(Duration::from_millis(10)),
            ..options()
        };
        assert!(resolve_with(&fast, Config::default())
            .unwrap_err()
            .contains("out of range"));
    }
}
