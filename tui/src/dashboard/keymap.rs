//! Key bindings: the dashboard's actions, their default keys (htop/bottom conventions, see
//! README "Keys"), key names as written in the config file, and lookup.
//!
//! Ctrl-C always quits, whatever the bindings say, so a bad config can never trap the user.

use std::{collections::HashMap, fmt};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something a key can do in the normal (no prompt, no popup) state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Leave the dashboard.
    Quit,
    /// Next table tab.
    NextTable,
    /// Previous table tab.
    PrevTable,
    /// Show the ring mode's tables.
    ModeRing,
    /// Show the perf mode's tables.
    ModePerf,
    /// Show the poll mode's tables.
    ModePoll,
    /// Cycle the visible mode.
    NextMode,
    /// Open the column picker (sort by / show / hide).
    ColumnPicker,
    /// Sort by the previous visible column.
    SortPrev,
    /// Sort by the next visible column.
    SortNext,
    /// Invert the sort direction.
    SortInvert,
    /// Open the search prompt (incremental: moves the selection, hides nothing).
    Search,
    /// Select the next row matching the search.
    SearchNext,
    /// Select the previous row matching the search.
    SearchPrev,
    /// Open the filter prompt.
    Filter,
    /// Freeze / unfreeze the display (collection continues).
    Pause,
    /// Cycle the built-in themes.
    NextTheme,
    /// Open the help overlay.
    Help,
    /// Select the previous row.
    Up,
    /// Select the next row.
    Down,
    /// One page up.
    PageUp,
    /// One page down.
    PageDown,
    /// First row.
    Home,
    /// Last row.
    End,
    /// Keep the selected entity in view wherever it moves.
    Follow,
    /// Open the detail pane of the selected row.
    Detail,
    /// Hide / show exited processes and closed connections.
    HideExited,
    /// Hide / show kernel threads (htop's `K`).
    HideKernelThreads,
    /// Send a signal to the selected process (htop's F9 / `k`).
    Signal,
    /// Processes as a tree / flat (htop's F5).
    Tree,
    /// Tree view: hide the selected process's children.
    Collapse,
    /// Tree view: show the selected process's children.
    Expand,
    /// Remote host names instead of addresses, and back.
    HostNames,
    /// The mode panel as one line / whole.
    Panel,
    /// Open this tool's own cost (probes and modes).
    ProbeCost,
}

impl Action {
    /// Every action, in help order.
    pub const ALL: [Action; 35] = [
        Action::Quit,
        Action::Help,
        Action::NextTable,
        Action::PrevTable,
        Action::ModeRing,
        Action::ModePerf,
        Action::ModePoll,
        Action::NextMode,
        Action::ColumnPicker,
        Action::SortPrev,
        Action::SortNext,
        Action::SortInvert,
        Action::Filter,
        Action::Search,
        Action::SearchNext,
        Action::SearchPrev,
        Action::HideExited,
        Action::HideKernelThreads,
        Action::Signal,
        Action::Tree,
        Action::Collapse,
        Action::Expand,
        Action::HostNames,
        Action::Panel,
        Action::ProbeCost,
        Action::Pause,
        Action::Follow,
        Action::Detail,
        Action::NextTheme,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Home,
        Action::End,
    ];

    /// The name used in the config file's `[keys]` table.
    pub fn config_name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::NextTable => "next_table",
            Action::PrevTable => "prev_table",
            Action::ModeRing => "mode_ring",
            Action::ModePerf => "mode_perf",
            Action::ModePoll => "mode_poll",
            Action::NextMode => "next_mode",
            Action::ColumnPicker => "column_picker",
            Action::SortPrev => "sort_prev",
            Action::SortNext => "sort_next",
            Action::SortInvert => "sort_invert",
            Action::Filter => "filter",
            Action::Search => "search",
            Action::SearchNext => "search_next",
            Action::SearchPrev => "search_prev",
            Action::Pause => "pause",
            Action::NextTheme => "next_theme",
            Action::Help => "help",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Home => "home",
            Action::End => "end",
            Action::Follow => "follow",
            Action::Detail => "detail",
            Action::HideExited => "hide_exited",
            Action::HideKernelThreads => "hide_kernel_threads",
            Action::Signal => "signal",
            Action::Tree => "tree",
            Action::Collapse => "collapse",
            Action::Expand => "expand",
            Action::HostNames => "host_names",
            Action::Panel => "panel",
            Action::ProbeCost => "probe_cost",
        }
    }

    /// The action with this config name.
    pub fn from_config_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.config_name() == name)
    }

    /// One line for the help overlay.
    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "quit (Ctrl-C always quits too)",
            Action::NextTable => "next table (Processes / Connections)",
            Action::PrevTable => "previous table",
            Action::ModeRing => "show the ring mode's tables",
            Action::ModePerf => "show the perf mode's tables",
            Action::ModePoll => "show the poll mode's tables",
            Action::NextMode => "next mode",
            Action::ColumnPicker => "column picker: sort by, show/hide columns",
            Action::SortPrev => "sort by the previous column",
            Action::SortNext => "sort by the next column",
            Action::SortInvert => "invert the sort order",
            Action::Filter => "filter (Esc clears)",
            Action::Search => "search: select the next row showing the text",
            Action::SearchNext => "next row matching the search (wraps around)",
            Action::SearchPrev => "previous row matching the search (wraps around)",
            Action::Pause => "pause the display (collection goes on)",
            Action::NextTheme => "next theme",
            Action::Help => "this help",
            Action::Up => "select the previous row",
            Action::Down => "select the next row",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::Home => "first row",
            Action::End => "last row",
            Action::Follow => "follow the selected entity (keep it in view)",
            Action::Detail => "details of the selected row",
            Action::HideExited => "hide / show exited processes and closed connections",
            Action::HideKernelThreads => "hide / show kernel threads",
            Action::Signal => "send a signal to the selected process (asks first)",
            Action::Tree => "processes as a tree (children under parents) / flat",
            Action::Collapse => "tree: fold the selected process's children",
            Action::Expand => "tree: unfold the selected process's children",
            Action::HostNames => {
                "remote host names / addresses (names looked up in the background)"
            }
            Action::Panel => "collapse the mode panel to one line / show it whole",
            Action::ProbeCost => "this tool's own cost: its probes (kernel bpf_stats) and modes",
        }
    }

    fn default_keys(self) -> &'static [&'static str] {
        match self {
            Action::Quit => &["q", "f10"],
            Action::NextTable => &["tab"],
            Action::PrevTable => &["shift-tab"],
            Action::ModeRing => &["1"],
            Action::ModePerf => &["2"],
            Action::ModePoll => &["3"],
            Action::NextMode => &["m"],
            Action::ColumnPicker => &["s", "f6"],
            Action::SortPrev => &["<"],
            Action::SortNext => &[">"],
            Action::SortInvert => &["I"],
            Action::Filter => &["/", "f4"],
            Action::Search => &["f3", "f"],
            Action::SearchNext => &["n"],
            Action::SearchPrev => &["N"],
            Action::Pause => &["space"],
            Action::NextTheme => &["t"],
            Action::Help => &["?", "f1"],
            Action::Up => &["up", "k"],
            Action::Down => &["down", "j"],
            Action::PageUp => &["pgup"],
            Action::PageDown => &["pgdn"],
            Action::Home => &["home", "g"],
            Action::End => &["end", "G"],
            Action::Follow => &["F"],
            Action::Detail => &["enter"],
            Action::HideExited => &["E"],
            Action::HideKernelThreads => &["K"],
            Action::Signal => &["f9"],
            Action::Tree => &["f5", "v"],
            Action::Collapse => &["-", "left"],
            Action::Expand => &["+", "right"],
            Action::HostNames => &["r"],
            Action::Panel => &["p"],
            Action::ProbeCost => &["o"],
        }
    }
}

/// A key as bound: a key code plus Ctrl / Alt. Shift is folded into the character (`G`) or the
/// code (`BackTab`), since terminals report it inconsistently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyChord {
    /// The key.
    pub code: KeyCode,
    /// Ctrl held.
    pub ctrl: bool,
    /// Alt held.
    pub alt: bool,
}

impl KeyChord {
    /// The chord of a terminal key event.
    pub fn from_event(event: &KeyEvent) -> KeyChord {
        KeyChord {
            code: event.code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        }
    }

    /// Parses a key name as written in the config file: a single character (`q`, `G`, `?`), a
    /// named key (`tab`, `shift-tab`, `enter`, `esc`, `space`, `backspace`, `up`, `down`,
    /// `left`, `right`, `pgup`, `pgdn`, `home`, `end`, `delete`, `insert`, `f1`..`f12`),
    /// optionally after `ctrl-` and/or `alt-`.
    pub fn parse(text: &str) -> Result<KeyChord, String> {
        let mut rest = text;
        let (mut ctrl, mut alt) = (false, false);
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1 && lower.starts_with("ctrl-") {
                ctrl = true;
                rest = &rest[5..];
            } else if rest.chars().count() > 1 && lower.starts_with("alt-") {
                alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => KeyCode::Char(c),
            _ => match rest.to_ascii_lowercase().as_str() {
                "tab" => KeyCode::Tab,
                "shift-tab" | "backtab" => KeyCode::BackTab,
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                name => match name.strip_prefix('f').and_then(|n| n.parse::<u8>().ok()) {
                    Some(n @ 1..=12) => KeyCode::F(n),
                    _ => {
                        return Err(format!(
                            "unknown key `{text}`: use one character, or one of tab, \
                             shift-tab, enter, esc, space, backspace, up, down, left, right, \
                             pgup, pgdn, home, end, delete, insert, f1..f12, optionally \
                             after ctrl- or alt-"
                        ))
                    }
                },
            },
        };
        // Ctrl + letter arrives as the lower-case letter with CONTROL.
        let code = match code {
            KeyCode::Char(c) if ctrl => KeyCode::Char(c.to_ascii_lowercase()),
            other => other,
        };
        Ok(KeyChord { code, ctrl, alt })
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Insert => f.write_str("Ins"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Keys → actions, plus each action's keys for the help and the footer.
#[derive(Clone, Debug)]
pub struct KeyMap {
    by_chord: HashMap<KeyChord, Action>,
    by_action: HashMap<Action, Vec<KeyChord>>,
}

/// Two actions claim the same key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyConflict {
    /// The key.
    pub key: KeyChord,
    /// The action that had it first.
    pub first: Action,
    /// The action that claimed it too.
    pub second: Action,
}

impl fmt::Display for KeyConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key `{}` is bound to both `{}` and `{}`",
            self.key,
            self.first.config_name(),
            self.second.config_name()
        )
    }
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap::with_overrides(&[]).expect("the default bindings have no conflicts")
    }
}

impl KeyMap {
    /// The default bindings, with the keys of some actions replaced.
    pub fn with_overrides(overrides: &[(Action, Vec<KeyChord>)]) -> Result<KeyMap, KeyConflict> {
        let mut by_action: HashMap<Action, Vec<KeyChord>> = Action::ALL
            .into_iter()
            .map(|action| {
                let keys = action
                    .default_keys()
                    .iter()
                    .map(|k| KeyChord::parse(k).expect("default key names parse"))
                    .collect();
                (action, keys)
            })
            .collect();
        for (action, keys) in overrides {
            by_action.insert(*action, keys.clone());
        }
        // A key the config gives to an action is taken from the defaults of the others, so a
        // default key added in a later version never turns a working config into a conflict;
        // only two actions the config binds to the same key are one.
        let overridden: HashMap<KeyChord, Action> = overrides
            .iter()
            .flat_map(|(action, keys)| keys.iter().map(move |k| (*k, *action)))
            .collect();
        for (action, keys) in by_action.iter_mut() {
            if !overrides.iter().any(|(a, _)| a == action) {
                keys.retain(|k| !overridden.contains_key(k));
            }
        }
        let mut by_chord = HashMap::new();
        for action in Action::ALL {
            for key in &by_action[&action] {
                if let Some(first) = by_chord.insert(*key, action) {
                    return Err(KeyConflict {
                        key: *key,
                        first,
                        second: action,
                    });
                }
            }
        }
        Ok(KeyMap {
            by_chord,
            by_action,
        })
    }

    /// The action bound to a key event, if any. Ctrl-C is always `Quit`.
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        let chord = KeyChord::from_event(event);
        if chord.ctrl && chord.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        self.by_chord.get(&chord).copied()
    }

    /// The keys of an action (may be empty when the config unbinds it).
    pub fn keys(&self, action: Action) -> &[KeyChord] {
        self.by_action.get(&action).map_or(&[], Vec::as_slice)
    }

    /// The keys of an action as text, `a/b`; `(unbound)` when none.
    pub fn label(&self, action: Action) -> String {
        let keys = self.keys(action);
        if keys.is_empty() {
            "(unbound)".into()
        } else {
            keys.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("/")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn defaults_follow_design() {
        let map = KeyMap::default();
        let none = KeyModifiers::NONE;
        assert_eq!(
            map.action(&key(KeyCode::Char('q'), none)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&key(KeyCode::Tab, none)),
            Some(Action::NextTable)
        );
        assert_eq!(
            map.action(&key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevTable)
        );
        // Terminals report shifted characters with SHIFT set; it is ignored.
        assert_eq!(
            map.action(&key(KeyCode::Char('I'), KeyModifiers::SHIFT)),
            Some(Action::SortInvert)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('<'), KeyModifiers::SHIFT)),
            Some(Action::SortPrev)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char(' '), none)),
            Some(Action::Pause)
        );
        assert_eq!(map.label(Action::Help), "?/F1");
    }

    #[test]
    fn key_names_parse_and_print() {
        for (text, shown) in [
            ("ctrl-x", "Ctrl-X"),
            ("Ctrl-X", "Ctrl-X"),
            ("alt-enter", "Alt-Enter"),
            ("shift-tab", "Shift-Tab"),
            ("pgdn", "PgDn"),
            ("f5", "F5"),
            ("-", "-"),
            ("space", "Space"),
        ] {
            assert_eq!(KeyChord::parse(text).unwrap().to_string(), shown, "{text}");
        }
        let err = KeyChord::parse("hyper-x").unwrap_err();
        assert!(err.contains("unknown key `hyper-x`"), "{err}");
        assert!(KeyChord::parse("f13").is_err());
        assert!(KeyChord::parse("").is_err());
    }

    #[test]
    fn overrides_replace_and_conflicts_are_reported() {
        let map = KeyMap::with_overrides(&[(
            Action::Quit,
            vec![
                KeyChord::parse("x").unwrap(),
                KeyChord::parse("ctrl-q").unwrap(),
            ],
        )])
        .unwrap();
        assert_eq!(
            map.action(&key(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&key(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
        // A key the config gives to one action leaves the others' defaults: `q` for help
        // takes `q` from quit, which keeps F10 (and Ctrl-C) — a new default key never breaks a
        // config that worked.
        let map =
            KeyMap::with_overrides(&[(Action::Help, vec![KeyChord::parse("q").unwrap()])]).unwrap();
        assert_eq!(
            map.action(&key(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Help)
        );
        assert_eq!(map.keys(Action::Quit), [KeyChord::parse("f10").unwrap()]);
        // Two actions the config binds to one key are a conflict.
        let x = KeyChord::parse("x").unwrap();
        let conflict = KeyMap::with_overrides(&[(Action::Help, vec![x]), (Action::Quit, vec![x])])
            .unwrap_err();
        assert_eq!(
            conflict.to_string(),
            "key `x` is bound to both `quit` and `help`"
        );
    }
}
