//! Config and theme validation: every fixture in `tests/invalid_configs/*.toml` must be
//! rejected with the message and the file:line its header comments announce:
//!
//! ```toml
//! # expect-file: broken.toml   (optional: the error is in another file, e.g. a theme)
//! # expect-line: 4
//! # expect: unknown field `modee`
//! ```
//!
//! Plus the good cases: an example config, a custom theme by path, the default path rules.

use std::path::{Path, PathBuf};

use bpftop_ordered::{
    config::Config, dashboard::keymap::Action, theme::Theme, user_file::FileError,
};
use bridge::contract::ModeKind;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid_configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("# {key}: ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

#[test]
fn every_invalid_config_is_rejected_with_its_message_and_line() {
    let files = fixtures();
    assert!(files.len() >= 15, "fixtures found: {}", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = header(&text, "expect").expect("fixture has an `# expect:` line");
        let line: usize = header(&text, "expect-line")
            .expect("fixture has an `# expect-line:` line")
            .parse()
            .unwrap();
        let error: FileError = match Config::load(Some(&path)) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(error) => error,
        };
        let shown = error.to_string();
        assert!(
            shown.contains(expected),
            "{}: expected {expected:?} in {shown:?}",
            path.display()
        );
        let file = header(&text, "expect-file")
            .map(str::to_string)
            .unwrap_or_else(|| path.file_name().unwrap().to_string_lossy().into_owned());
        assert!(
            error.path.ends_with(&file),
            "{}: error is about {} (wanted {file})",
            path.display(),
            error.path.display()
        );
        assert_eq!(
            error.location.map(|(l, _)| l),
            Some(line),
            "{}: {shown}",
            path.display()
        );
        // The message starts with file:line:column, as compilers print them.
        let prefix = format!("{}:{line}:", error.path.display());
        assert!(shown.starts_with(&prefix), "{shown}");
    }
}

#[test]
fn a_missing_explicit_config_is_an_error() {
    let error = Config::load(Some(Path::new("/nonexistent/bpftop.toml"))).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/bpftop.toml: cannot read the config file"),
        "{error}"
    );
}

#[test]
fn a_good_config_with_a_theme_file_loads() {
    let dir = std::env::temp_dir().join(format!("bpftop-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("mine.toml"),
        "[styles]\nrow_selected = { fg = \"black\", bg = \"#ffcc00\" }\n",
    )
    .unwrap();
    let config_path = dir.join("config.toml");
    std::fs::write(
        &config_path,
        r#"
mode = "poll"
interval = "500ms"
theme = "mine.toml"        # relative to this file

[retention]
max_age = "2m"
max_finished = 100

[columns]
processes = ["pid", "comm", "cpu", "start"]
connections = ["local", "remote", "state", "sent", "recv"]

[keys]
quit = ["x", "ctrl-q"]
pause = "p"
detail = []                # unbound
"#,
    )
    .unwrap();
    let config = Config::load(Some(&config_path)).unwrap();
    assert_eq!(config.mode, Some(ModeKind::Poll));
    let theme = config.theme.unwrap();
    assert_eq!(theme.name, "mine", "named after the file");
    assert_ne!(theme.row_selected, Theme::default_theme().row_selected);
    assert_eq!(theme.header, Theme::default_theme().header, "inherited");
    assert_eq!(config.process_columns.unwrap(), vec![0, 3, 5, 7]);
    assert_eq!(config.keymap.label(Action::Quit), "x/Ctrl-Q");
    assert_eq!(config.keymap.label(Action::Pause), "p");
    assert_eq!(config.keymap.label(Action::Detail), "(unbound)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn built_in_themes_resolve_by_name_and_path() {
    for name in ["default", "light", "high-contrast", "monochrome", "nord"] {
        assert_eq!(Theme::resolve(name, Path::new(".")).unwrap().name, name);
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../themes")
            .join(format!("{name}.toml"));
        let loaded = Theme::load(&path).unwrap();
        assert_eq!(loaded, Theme::resolve(name, Path::new(".")).unwrap());
    }
}
