//! Themes: named styles for every part of the screen, read from TOML.
//!
//! Built-in themes live in `themes/*.toml` and are compiled in with `include_str!`; a theme can
//! also be loaded from a path (`--theme PATH` or `theme = "PATH"` in the config). A file may
//! leave styles out: they are taken from the `default` theme. Unknown fields are errors, and so
//! are unknown colours — reported with file:line and the valid choices.
//!
//! A style is `{ fg = "...", bg = "...", bold = true, dim = true, italic = true,
//! underlined = true, reversed = true }`. Colours: `reset` (the terminal's own), the 16 ANSI
//! names (`black`, `red`, …, `dark-gray`, `light-red`, …, `white`), an index `"0"`..`"255"`, or
//! `#rrggbb`.

use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::user_file::{read_bounded, FileError};

/// The built-in themes: (name, TOML text). The first is the default.
const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("monochrome", include_str!("../../themes/monochrome.toml")),
    ("nord", include_str!("../../themes/nord.toml")),
];

/// Names of the built-in themes, in cycling order.
pub fn built_in_names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(name, _)| *name).collect()
}

/// Why a theme could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThemeError {
    /// Not a built-in name and not an existing file.
    Unknown(String),
    /// The theme file is unreadable or invalid.
    File(FileError),
}

impl std::fmt::Display for ThemeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThemeError::Unknown(message) => f.write_str(message),
            ThemeError::File(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ThemeError {}

/// A colour as written in a theme file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ColorSpec(Color);

impl<'de> Deserialize<'de> for ColorSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_color(&text)
            .map(ColorSpec)
            .map_err(serde::de::Error::custom)
    }
}

const COLOR_NAMES: &[(&str, Color)] = &[
    ("reset", Color::Reset),
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("gray", Color::Gray),
    ("dark-gray", Color::DarkGray),
    ("light-red", Color::LightRed),
    ("light-green", Color::LightGreen),
    ("light-yellow", Color::LightYellow),
    ("light-blue", Color::LightBlue),
    ("light-magenta", Color::LightMagenta),
    ("light-cyan", Color::LightCyan),
    ("white", Color::White),
];

/// Parses a colour: a name from the 16 ANSI colours (or `reset`), `"0"`..`"255"`, `#rrggbb`.
pub fn parse_color(text: &str) -> Result<Color, String> {
    let normal = text.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    if let Some((_, color)) = COLOR_NAMES.iter().find(|(name, _)| *name == normal) {
        return Ok(*color);
    }
    if let Some(hex) = normal.strip_prefix('#') {
        if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let value = u32::from_str_radix(hex, 16).expect("checked hex digits");
            return Ok(Color::Rgb(
                (value >> 16) as u8,
                (value >> 8) as u8,
                value as u8,
            ));
        }
    }
    if let Ok(index) = normal.parse::<u8>() {
        return Ok(Color::Indexed(index));
    }
    let names: Vec<&str> = COLOR_NAMES.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "unknown colour `{text}` (use {}, an index \"0\"..\"255\", or #rrggbb)",
        names.join(", ")
    ))
}

/// A style as written in a theme file.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<ColorSpec>,
    bg: Option<ColorSpec>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underlined: bool,
    #[serde(default)]
    reversed: bool,
}

impl StyleSpec {
    fn to_style(self) -> Style {
        let mut style = Style::default();
        if let Some(ColorSpec(fg)) = self.fg {
            style = style.fg(fg);
        }
        if let Some(ColorSpec(bg)) = self.bg {
            style = style.bg(bg);
        }
        for (on, modifier) in [
            (self.bold, Modifier::BOLD),
            (self.dim, Modifier::DIM),
            (self.italic, Modifier::ITALIC),
            (self.underlined, Modifier::UNDERLINED),
            (self.reversed, Modifier::REVERSED),
        ] {
            if on {
                style = style.add_modifier(modifier);
            }
        }
        style
    }
}

/// Declares the theme's roles once: the resolved [`Theme`] fields and the file's `[styles]`
/// table (all optional there, inherited from the base theme when missing).
macro_rules! theme_roles {
    ($($(#[doc = $doc:literal])+ $role:ident,)+) => {
        /// A resolved theme: one ratatui style per part of the screen.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Theme {
            /// The theme's name (file stem for themes loaded from a path).
            pub name: String,
            /// One line on what the theme is for.
            pub description: String,
            $($(#[doc = $doc])+ pub $role: Style,)+
        }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct StylesFile {
            $(#[serde(default)] $role: Option<StyleSpec>,)+
        }

        impl StylesFile {
            fn resolve(
                self,
                name: String,
                description: String,
                base: Option<&Theme>,
            ) -> Result<Theme, String> {
                Ok(Theme {
                    name,
                    description,
                    $($role: match (self.$role, base) {
                        (Some(spec), _) => spec.to_style(),
                        (None, Some(base)) => base.$role,
                        (None, None) => {
                            return Err(format!("style `{}` is missing", stringify!($role)))
                        }
                    },)+
                })
            }
        }
    };
}

theme_roles! {
    /// The header line.
    header,
    /// The program name in the header.
    header_title,
    /// Values in the header (host, kernel, mode, rates).
    header_value,
    /// The PAUSED / FOLLOW badges.
    badge,
    /// The selected table tab.
    tab_active,
    /// The other table tab.
    tab_inactive,
    /// Column titles.
    table_header,
    /// The title of the sorted column.
    table_header_sorted,
    /// Table rows.
    row,
    /// The selected row.
    row_selected,
    /// Exited processes and closed connections (until retention removes them).
    row_finished,
    /// The marker of rows seeded from /proc.
    row_seeded,
    /// Mode panel borders.
    panel_border,
    /// The border of the visible mode's panel column.
    panel_border_active,
    /// Mode panel titles.
    panel_title,
    /// The title of the visible mode's panel column.
    panel_title_active,
    /// Labels in the mode panel.
    panel_label,
    /// Values in the mode panel.
    panel_value,
    /// Values that signal trouble (drops, failures).
    warning,
    /// Sparkline of events per second.
    sparkline_events,
    /// Sparkline of p99 lag.
    sparkline_lag,
    /// Error messages (filter errors, failed modes).
    error,
    /// Keys in the footer and the help.
    key,
    /// Footer text.
    footer,
    /// Popup borders (help, detail, column picker).
    popup_border,
    /// Popup titles.
    popup_title,
    /// Popup text.
    popup_text,
    /// The filter prompt.
    prompt,
}

/// A theme file: a name and its styles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    styles: StylesFile,
}

impl Theme {
    /// The `default` theme.
    pub fn default_theme() -> Theme {
        Theme::built_in("default").expect("the default theme is built in and valid")
    }

    /// A built-in theme by name.
    pub fn built_in(name: &str) -> Option<Theme> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        let base = (name != "default").then(Theme::default_theme);
        Some(
            Theme::parse(Path::new(name), text, base.as_ref())
                .expect("built-in themes are valid (checked by tests)"),
        )
    }

    /// All built-in themes, in cycling order.
    pub fn all_built_in() -> Vec<Theme> {
        built_in_names()
            .into_iter()
            .filter_map(Theme::built_in)
            .collect()
    }

    /// A built-in name or a path to a theme file; a relative path is taken relative to
    /// `base_dir` first, then to the current directory.
    pub fn resolve(name_or_path: &str, base_dir: &Path) -> Result<Theme, ThemeError> {
        if let Some(theme) = Theme::built_in(name_or_path) {
            return Ok(theme);
        }
        let given = PathBuf::from(name_or_path);
        let candidates = [base_dir.join(&given), given];
        // Anything that exists is read as a theme file, so a directory, FIFO or device gets the
        // file reader's precise refusal instead of "unknown theme".
        match candidates.iter().find(|p| p.exists()) {
            Some(path) => Theme::load(path).map_err(ThemeError::File),
            None => Err(ThemeError::Unknown(format!(
                "unknown theme `{name_or_path}` (built-in: {}; or a path to a .toml theme file)",
                built_in_names().join(", ")
            ))),
        }
    }

    /// Loads a theme file; missing styles come from the `default` theme.
    pub fn load(path: &Path) -> Result<Theme, FileError> {
        let text = read_bounded(path, "theme file")?;
        Theme::parse(path, &text, Some(&Theme::default_theme()))
    }

    /// Parses theme `text` (read from `path`, for messages and the fallback name).
    fn parse(path: &Path, text: &str, base: Option<&Theme>) -> Result<Theme, FileError> {
        let file: ThemeFile =
            toml::from_str(text).map_err(|e| FileError::from_toml(path, text, &e))?;
        let name = file.name.unwrap_or_else(|| {
            path.file_stem()
                .map_or("custom".into(), |s| s.to_string_lossy().into_owned())
        });
        file.styles
            .resolve(name, file.description.unwrap_or_default(), base)
            .map_err(|message| FileError::whole(path, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_are_complete_and_distinct() {
        // The default theme must define every style itself (it is the base of the others).
        let default_text = BUILT_IN[0].1;
        Theme::parse(Path::new("default"), default_text, None).expect("default is complete");
        let themes = Theme::all_built_in();
        assert_eq!(themes.len(), 5);
        for (i, a) in themes.iter().enumerate() {
            assert_eq!(a.name, BUILT_IN[i].0);
            for b in &themes[i + 1..] {
                assert_ne!(a, b, "{} and {} look the same", a.name, b.name);
            }
        }
    }

    #[test]
    fn colours_parse() {
        assert_eq!(parse_color("reset"), Ok(Color::Reset));
        assert_eq!(parse_color("Light_Blue"), Ok(Color::LightBlue));
        assert_eq!(parse_color("#ff8000"), Ok(Color::Rgb(255, 128, 0)));
        assert_eq!(parse_color("42"), Ok(Color::Indexed(42)));
        let error = parse_color("purple").unwrap_err();
        assert!(error.contains("unknown colour `purple`"), "{error}");
        assert!(error.contains("dark-gray"), "{error}");
    }

    #[test]
    fn partial_theme_inherits_from_default() {
        let text = "name = \"mine\"\n[styles]\nerror = { fg = \"#ff0000\", bold = true }\n";
        let theme =
            Theme::parse(Path::new("mine.toml"), text, Some(&Theme::default_theme())).unwrap();
        assert_eq!(theme.name, "mine");
        assert_eq!(
            theme.error,
            Style::default()
                .fg(Color::Rgb(255, 0, 0))
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(theme.row_selected, Theme::default_theme().row_selected);
    }

    #[test]
    fn unknown_theme_lists_the_built_ins() {
        let error = Theme::resolve("solarised", Path::new("/nonexistent")).unwrap_err();
        assert!(error.to_string().contains("built-in: default, light"));
    }
}
