//! Keys and mouse → state changes. Modal: the filter prompt takes every key while open, then
//! the open popup, then the key map.

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Position;

use super::{
    app::{App, Control, FilterPrompt, Overlay, Tab},
    keymap::Action,
    search::{SearchFrom, SearchState},
    signal::{SignalStage, SIGNALS},
};
use crate::{
    model::columns::{column_index, CONNECTION_COLUMNS, PROCESS_COLUMNS},
    view::{table::column_at, tabs::tab_at},
};

/// Rows moved per mouse-wheel notch.
const WHEEL_ROWS: isize = 3;

impl App {
    /// Handles one terminal event.
    pub fn handle_event(&mut self, event: &Event) -> Control {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.handle_key(key),
            Event::Mouse(mouse) => self.handle_mouse(mouse),
            Event::Paste(text) if self.prompt.is_some() => {
                let clean: String = text.chars().filter(|c| !c.is_control()).collect();
                self.edit_filter(|t, cursor| {
                    t.insert_str(cursor, &clean);
                    cursor + clean.len()
                });
                Control::Redraw
            }
            Event::Paste(text) if self.search.open => {
                let clean: String = text.chars().filter(|c| !c.is_control()).collect();
                self.search.text.push_str(&clean);
                self.search_rows(SearchFrom::Here);
                Control::Redraw
            }
            Event::Resize(..) => Control::Redraw,
            _ => Control::Unchanged,
        }
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, key: &KeyEvent) -> Control {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Control::Quit;
        }
        // Ctrl-Z suspends, as in every terminal program, whatever the bindings say.
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('z') {
            return Control::Suspend;
        }
        if self.prompt.is_none() && !self.search.open && self.overlay == Overlay::None {
            if let Some(control) = self.replay_key(key) {
                return control;
            }
        }
        if self.prompt.is_some() {
            return self.prompt_key(key);
        }
        if self.search.open {
            return self.search_key(key);
        }
        match self.overlay {
            Overlay::None => {}
            Overlay::Help { scroll } => {
                self.overlay = match key.code {
                    KeyCode::Up | KeyCode::Char('k') => Overlay::Help {
                        scroll: scroll.saturating_sub(1),
                    },
                    KeyCode::Down | KeyCode::Char('j') => Overlay::Help {
                        scroll: (scroll + 1).min(self.help_scroll_limit()),
                    },
                    KeyCode::PageUp => Overlay::Help {
                        scroll: scroll.saturating_sub(10),
                    },
                    KeyCode::PageDown => Overlay::Help {
                        scroll: (scroll + 10).min(self.help_scroll_limit()),
                    },
                    _ => Overlay::None,
                };
                return Control::Redraw;
            }
            Overlay::ColumnPicker { cursor } => return self.picker_key(key, cursor),
            Overlay::Detail => return self.detail_key(key),
            Overlay::ProbeCost => {
                self.overlay = Overlay::None;
                self.probe_cost.refresh(false);
                return Control::Redraw;
            }
            Overlay::Signal(stage) => return self.signal_key(key, stage),
        }
        match self.keymap.action(key) {
            Some(action) => self.perform(action),
            None if key.code == KeyCode::Esc => self.clear_filter(),
            None => self.htop_key(key),
        }
    }

    /// htop keys this dashboard has no binding for: `T` sorts by CPU time as in htop; the
    /// others say in one line what to use instead, rather than doing nothing.
    fn htop_key(&mut self, key: &KeyEvent) -> Control {
        let hint = match key.code {
            KeyCode::Char('T') if self.tab == Tab::Processes => {
                if let Some(column) = column_index(PROCESS_COLUMNS, "cpu_time") {
                    self.sort_by_column(column);
                }
                return Control::Redraw;
            }
            KeyCode::Char('H') => {
                "each row is a process (all its threads); the thread count is in the detail pane (Enter)"
            }
            KeyCode::Char('c') => {
                "tagging is not supported: F9 signals the selected process"
            }
            KeyCode::F(2) => "settings live in the config file (see --help for its path)",
            KeyCode::F(7) | KeyCode::F(8) => "renice is not supported here; use renice(1)",
            _ => return Control::Unchanged,
        };
        self.set_status(hint);
        Control::Redraw
    }

    /// Esc outside the prompt: drops the visible tab's filter, if there is one.
    fn clear_filter(&mut self) -> Control {
        let filter = match self.tab {
            Tab::Processes => &mut self.processes.filter,
            Tab::Connections => &mut self.connections.filter,
        };
        if filter.applied_text.is_empty() {
            return Control::Unchanged;
        }
        filter.clear();
        self.set_status("filter cleared");
        Control::Redraw
    }

    /// Last useful help scroll position: the help's length less what fits on screen.
    fn help_scroll_limit(&self) -> u16 {
        self.layout
            .map_or(0, |l| crate::view::help::scroll_limit(self, l.area))
    }

    /// Carries out an action of the key map.
    pub fn perform(&mut self, action: Action) -> Control {
        use bridge::contract::ModeKind;
        match action {
            Action::Quit => return Control::Quit,
            Action::Signal => self.open_signal_dialog(),
            Action::Tree => self.toggle_tree(),
            Action::Collapse => self.fold_selected(false),
            Action::Expand => self.fold_selected(true),
            Action::HostNames => self.toggle_host_names(),
            Action::Panel => self.toggle_panel(),
            Action::ProbeCost => {
                self.overlay = Overlay::ProbeCost;
                self.probe_cost.refresh(true);
            }
            Action::NextTable | Action::PrevTable => self.show_tab(self.tab.other()),
            Action::ModeRing => self.set_mode(ModeKind::Ring),
            Action::ModePerf => self.set_mode(ModeKind::Perf),
            Action::ModePoll => self.set_mode(ModeKind::Poll),
            Action::NextMode => {
                let next = (self.mode.index() + 1) % ModeKind::ALL.len();
                self.set_mode(ModeKind::ALL[next]);
            }
            Action::ColumnPicker => {
                let cursor = match self.tab {
                    Tab::Processes => self.processes.sort.column,
                    Tab::Connections => self.connections.sort.column,
                };
                self.overlay = Overlay::ColumnPicker { cursor };
            }
            Action::SortPrev | Action::SortNext => {
                let forward = action == Action::SortNext;
                match self.tab {
                    Tab::Processes => self
                        .processes
                        .cycle_sort(forward, |c| PROCESS_COLUMNS[c].descending_first),
                    Tab::Connections => self
                        .connections
                        .cycle_sort(forward, |c| CONNECTION_COLUMNS[c].descending_first),
                }
            }
            Action::SortInvert => match self.tab {
                Tab::Processes => self.processes.invert_sort(),
                Tab::Connections => self.connections.invert_sort(),
            },
            Action::Filter => {
                let cursor = self.filter_text().len();
                self.prompt = Some(FilterPrompt { cursor });
            }
            Action::Search => {
                self.search = SearchState {
                    open: true,
                    ..SearchState::default()
                };
            }
            Action::SearchNext | Action::SearchPrev => {
                if self.search.text.is_empty() {
                    let keys = self.keymap.label(Action::Search);
                    self.set_status(format!("nothing to search for yet: {keys} searches"));
                } else {
                    let from = if action == Action::SearchNext {
                        SearchFrom::Next
                    } else {
                        SearchFrom::Previous
                    };
                    self.search_rows(from);
                    if self.search.not_found {
                        self.set_status(format!("not found: {}", self.search.text));
                    } else if self.search.wrapped {
                        self.set_status(format!("search wrapped around: {}", self.search.text));
                    }
                }
            }
            Action::Pause => self.toggle_pause(),
            Action::HideExited => self.toggle_hide_exited(),
            Action::HideKernelThreads => self.toggle_hide_kernel_threads(),
            Action::NextTheme => self.next_theme(),
            Action::Help => self.overlay = Overlay::Help { scroll: 0 },
            Action::Up => self.move_cursor(-1),
            Action::Down => self.move_cursor(1),
            Action::PageUp => self.with_view(|v| v.page(false)),
            Action::PageDown => self.with_view(|v| v.page(true)),
            Action::Home => self.with_view(|v| v.home()),
            Action::End => self.with_view(|v| v.end()),
            Action::Follow => {
                self.with_view(|v| v.toggle_follow());
                let message = if self.following() {
                    "follow on: the selected row stays in view"
                } else {
                    "follow off"
                };
                self.set_status(message);
            }
            Action::Detail => {
                let has_row = match self.tab {
                    Tab::Processes => self.cursor_process().is_some(),
                    Tab::Connections => self.cursor_connection().is_some(),
                };
                if has_row {
                    self.overlay = Overlay::Detail;
                }
            }
        }
        Control::Redraw
    }

    /// Runs `f` on the visible tab's view (navigation is the same for both key types).
    fn with_view(&mut self, f: impl Fn(&mut dyn ViewNavigation)) {
        match self.tab {
            Tab::Processes => f(&mut self.processes),
            Tab::Connections => f(&mut self.connections),
        }
    }

    fn move_cursor(&mut self, delta: isize) {
        self.with_view(|v| v.move_by(delta));
    }

    fn filter_text(&self) -> &str {
        match self.tab {
            Tab::Processes => &self.processes.filter.text,
            Tab::Connections => &self.connections.filter.text,
        }
    }

    /// Edits the visible tab's filter text: `edit` changes the text and returns the new cursor.
    fn edit_filter(&mut self, edit: impl FnOnce(&mut String, usize) -> usize) {
        let Some(prompt) = self.prompt else { return };
        let filter = match self.tab {
            Tab::Processes => &mut self.processes.filter,
            Tab::Connections => &mut self.connections.filter,
        };
        let mut text = filter.text.clone();
        let at = prompt.cursor.min(text.len());
        let cursor = edit(&mut text, at);
        filter.set_text(text);
        self.prompt = Some(FilterPrompt { cursor });
    }

    fn prompt_key(&mut self, key: &KeyEvent) -> Control {
        let Some(prompt) = self.prompt else {
            return Control::Unchanged;
        };
        let text = self.filter_text().to_string();
        let cursor = prompt.cursor.min(text.len());
        let previous_char = text[..cursor].chars().next_back().map_or(0, char::len_utf8);
        let next_char = text[cursor..].chars().next().map_or(0, char::len_utf8);
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => {
                self.prompt = None;
                let filter = match self.tab {
                    Tab::Processes => &mut self.processes.filter,
                    Tab::Connections => &mut self.connections.filter,
                };
                if filter.error.is_some() {
                    filter.revert_to_applied();
                    self.set_status("invalid filter not applied: the last good filter stays");
                }
            }
            KeyCode::Esc => {
                self.prompt = None;
                match self.tab {
                    Tab::Processes => self.processes.filter.clear(),
                    Tab::Connections => self.connections.filter.clear(),
                }
            }
            KeyCode::Char('u') if ctrl => self.edit_filter(|t, _| {
                t.clear();
                0
            }),
            KeyCode::Char(c) if !ctrl => self.edit_filter(|t, at| {
                t.insert(at, c);
                at + c.len_utf8()
            }),
            KeyCode::Backspace if previous_char > 0 => self.edit_filter(|t, at| {
                t.replace_range(at - previous_char..at, "");
                at - previous_char
            }),
            KeyCode::Delete if next_char > 0 => self.edit_filter(|t, at| {
                t.replace_range(at..at + next_char, "");
                at
            }),
            KeyCode::Left => {
                self.prompt = Some(FilterPrompt {
                    cursor: cursor - previous_char,
                })
            }
            KeyCode::Right => {
                self.prompt = Some(FilterPrompt {
                    cursor: cursor + next_char,
                })
            }
            KeyCode::Home => self.prompt = Some(FilterPrompt { cursor: 0 }),
            KeyCode::End => self.prompt = Some(FilterPrompt { cursor: text.len() }),
            _ => return Control::Unchanged,
        }
        Control::Redraw
    }

    /// Keys while the search prompt is open: typing searches from the selected row on (it stays
    /// while it matches), F3 / ↓ find the next match, ↑ the previous; Enter and Esc close the
    /// prompt and leave the selection where the search put it.
    fn search_key(&mut self, key: &KeyEvent) -> Control {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter | KeyCode::Esc => self.search.open = false,
            KeyCode::Char('u') if ctrl => {
                self.search.text.clear();
                self.search_rows(SearchFrom::Here);
            }
            KeyCode::Char(c) if !ctrl => {
                self.search.text.push(c);
                self.search_rows(SearchFrom::Here);
            }
            KeyCode::Backspace => {
                self.search.text.pop();
                self.search_rows(SearchFrom::Here);
            }
            KeyCode::F(3) | KeyCode::Down => self.search_rows(SearchFrom::Next),
            KeyCode::Up => self.search_rows(SearchFrom::Previous),
            _ => return Control::Unchanged,
        }
        Control::Redraw
    }

    fn picker_len(&self) -> usize {
        match self.tab {
            Tab::Processes => PROCESS_COLUMNS.len(),
            Tab::Connections => CONNECTION_COLUMNS.len(),
        }
    }

    fn picker_key(&mut self, key: &KeyEvent, cursor: usize) -> Control {
        let len = self.picker_len();
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.overlay = Overlay::ColumnPicker {
                    cursor: (cursor + len - 1) % len,
                }
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.overlay = Overlay::ColumnPicker {
                    cursor: (cursor + 1) % len,
                }
            }
            KeyCode::Enter => {
                self.sort_by_column(cursor);
                self.overlay = Overlay::None;
            }
            KeyCode::Char(' ') => match self.tab {
                Tab::Processes => self
                    .processes
                    .toggle_column(cursor, &(0..PROCESS_COLUMNS.len()).collect::<Vec<_>>()),
                Tab::Connections => self
                    .connections
                    .toggle_column(cursor, &(0..CONNECTION_COLUMNS.len()).collect::<Vec<_>>()),
            },
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('s') => self.overlay = Overlay::None,
            _ => return Control::Unchanged,
        }
        Control::Redraw
    }

    /// Sorts the visible table by a column (index into its full list); inverts when it is
    /// already the sort column.
    pub fn sort_by_column(&mut self, column: usize) {
        match self.tab {
            Tab::Processes => self
                .processes
                .sort_by(column, PROCESS_COLUMNS[column].descending_first),
            Tab::Connections => self
                .connections
                .sort_by(column, CONNECTION_COLUMNS[column].descending_first),
        }
    }

    /// Keys of the signal dialog: choose (↑↓, Enter), then confirm with `y` (twice for pid 1
    /// and kernel threads); any other key cancels.
    fn signal_key(&mut self, key: &KeyEvent, stage: SignalStage) -> Control {
        let len = SIGNALS.len();
        let next = match (stage, key.code) {
            (SignalStage::Choose { cursor }, KeyCode::Up | KeyCode::Char('k')) => {
                SignalStage::Choose {
                    cursor: (cursor + len - 1) % len,
                }
            }
            (SignalStage::Choose { cursor }, KeyCode::Down | KeyCode::Char('j')) => {
                SignalStage::Choose {
                    cursor: (cursor + 1) % len,
                }
            }
            (SignalStage::Choose { cursor }, KeyCode::Enter) => {
                SignalStage::Confirm { signal: cursor }
            }
            (SignalStage::Confirm { signal }, KeyCode::Char('y')) => {
                match self.signal_target().and_then(|t| t.guarded) {
                    Some(_) => SignalStage::ConfirmAgain { signal },
                    None => return self.send_signal(signal),
                }
            }
            (SignalStage::ConfirmAgain { signal }, KeyCode::Char('y')) => {
                return self.send_signal(signal)
            }
            (SignalStage::Choose { .. }, KeyCode::Esc | KeyCode::Char('q')) => {
                return self.cancel_signal()
            }
            (SignalStage::Choose { .. }, _) => return Control::Unchanged,
            // Anything but `y` at a confirmation cancels.
            _ => return self.cancel_signal(),
        };
        self.overlay = Overlay::Signal(next);
        Control::Redraw
    }

    fn cancel_signal(&mut self) -> Control {
        self.close_signal_dialog();
        self.set_status("no signal sent");
        Control::Redraw
    }

    fn send_signal(&mut self, signal: usize) -> Control {
        let result = match self.signal_requests() {
            // Attached: the collector sends it, if this viewer's uid may (its answer comes
            // as a status message).
            Some(requests) => self.signal_target().map(|target| {
                let choice = &SIGNALS[signal];
                let request = crate::remote::protocol::ViewerMessage::Signal {
                    request: 0,
                    tgid: target.key.tgid,
                    start_ns: target.key.start_ns,
                    signal: choice.number,
                    comm: target.comm.clone(),
                };
                match requests.try_send(request) {
                    Ok(()) => format!("asked the collector to send SIG{}", choice.name),
                    Err(_) => "not sent: the link to the collector is busy or gone".into(),
                }
            }),
            None => self
                .signal_target()
                .map(|target| target.send(&SIGNALS[signal])),
        };
        self.close_signal_dialog();
        if let Some(text) = result {
            self.set_status(text);
        }
        Control::Redraw
    }

    fn detail_key(&mut self, key: &KeyEvent) -> Control {
        match self.keymap.action(key) {
            Some(Action::Up) => self.move_cursor(-1),
            Some(Action::Down) => self.move_cursor(1),
            Some(Action::PageUp) => self.with_view(|v| v.page(false)),
            Some(Action::PageDown) => self.with_view(|v| v.page(true)),
            Some(Action::Pause) => self.toggle_pause(),
            _ if matches!(key.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) => {
                self.overlay = Overlay::None
            }
            _ => return Control::Unchanged,
        }
        Control::Redraw
    }

    /// Handles one mouse event, hit-testing against the last drawn layout.
    pub fn handle_mouse(&mut self, mouse: &MouseEvent) -> Control {
        let Some(layout) = self.layout else {
            return Control::Unchanged;
        };
        if layout.too_small {
            return Control::Unchanged;
        }
        let at = Position::new(mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::ScrollDown if self.overlay == Overlay::None => {
                self.move_cursor(WHEEL_ROWS)
            }
            MouseEventKind::ScrollUp if self.overlay == Overlay::None => {
                self.move_cursor(-WHEEL_ROWS)
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if self.overlay != Overlay::None {
                    // A click anywhere closes the popup (keys do the rest).
                    self.overlay = Overlay::None;
                    return Control::Redraw;
                }
                if layout.table.contains(at) {
                    if at.y == layout.table.y {
                        let hit = match self.tab {
                            Tab::Processes => column_at(
                                PROCESS_COLUMNS,
                                &self.processes.columns,
                                &self.processes.content_widths,
                                layout.table,
                                at.x,
                            ),
                            Tab::Connections => column_at(
                                CONNECTION_COLUMNS,
                                &self.connections.columns,
                                &self.connections.content_widths,
                                layout.table,
                                at.x,
                            ),
                        };
                        match hit {
                            Some(column) => self.sort_by_column(column),
                            None => return Control::Unchanged,
                        }
                    } else {
                        let row = (at.y - layout.table.y - 1) as usize;
                        self.with_view(|v| {
                            let index = v.offset() + row;
                            if index < v.len() {
                                v.select_index(index);
                            }
                        });
                    }
                } else if layout.tabs.contains(at) {
                    match tab_at(self, layout.tabs, at.x) {
                        Some(tab) => self.show_tab(tab),
                        None => return Control::Unchanged,
                    }
                } else if layout.panel.contains(at) {
                    let third = (at.x - layout.panel.x) as usize * 3 / layout.panel.width as usize;
                    self.set_mode(bridge::contract::ModeKind::ALL[third.min(2)]);
                } else {
                    return Control::Unchanged;
                }
            }
            _ => return Control::Unchanged,
        }
        Control::Redraw
    }
}

/// The navigation both tab views offer (object-safe, so one closure serves both key types).
pub(super) trait ViewNavigation {
    fn move_by(&mut self, delta: isize);
    fn page(&mut self, down: bool);
    fn home(&mut self);
    fn end(&mut self);
    fn toggle_follow(&mut self);
    fn select_index(&mut self, index: usize);
    fn offset(&self) -> usize;
    fn len(&self) -> usize;
}

impl<K: Copy + Eq> ViewNavigation for super::table_view::TableView<K> {
    fn move_by(&mut self, delta: isize) {
        super::table_view::TableView::move_by(self, delta)
    }
    fn page(&mut self, down: bool) {
        super::table_view::TableView::page(self, down)
    }
    fn home(&mut self) {
        super::table_view::TableView::home(self)
    }
    fn end(&mut self) {
        super::table_view::TableView::end(self)
    }
    fn toggle_follow(&mut self) {
        super::table_view::TableView::toggle_follow(self)
    }
    fn select_index(&mut self, index: usize) {
        super::table_view::TableView::select_index(self, index)
    }
    fn offset(&self) -> usize {
        super::table_view::TableView::offset(self)
    }
    fn len(&self) -> usize {
        self.order().len()
    }
}
