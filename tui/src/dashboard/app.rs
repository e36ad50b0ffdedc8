//! The dashboard's state: the table store (this thread is its one owner), the windowed metrics,
//! the two table views, overlays, theme and pause. Built from a [`TableStore`] alone, so tests
//! drive it with synthetic batches and a `TestBackend`, without a kernel.
//!
//! Time is passed in (`now_ns`, CLOCK_MONOTONIC): the event loop passes the real clock, tests
//! pass fixed values.

use std::{collections::HashSet, time::Duration};

use bridge::{
    contract::{ConnectionRow, Entity, ModeKind, ModeMessage, ProcessRow},
    stats::process_cpu_ns,
    store::TableStore,
    table::{OrderedTable, ProcessTable},
};
use probe_common::{ConnKey, ProcKey};

use super::{
    filter::{Filter, FilterTable},
    frozen::FrozenTables,
    keymap::KeyMap,
    layout::ScreenLayout,
    metrics::Metrics,
    process_tree,
    row_match::{ConnectionSubject, ProcessSubject},
    search::{self, SearchFrom, SearchState},
    signal::{SignalStage, SignalTarget},
    table_view::{HideRows, OrderStamp, SortState, TableView},
};
use crate::{
    model::{
        cgroup_names::CgroupNames,
        columns::{
            column_index, ColumnSpec, DisplayRow, RowContext, CONNECTION_COLUMNS, PROCESS_COLUMNS,
        },
        host_names::HostNames,
        user_names::UserNames,
    },
    theme::Theme,
    view::table::content_widths,
};

/// Which table is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Processes.
    Processes,
    /// TCP connections.
    Connections,
}

impl Tab {
    /// The other tab.
    pub fn other(self) -> Tab {
        match self {
            Tab::Processes => Tab::Connections,
            Tab::Connections => Tab::Processes,
        }
    }

    /// Title in the tab bar.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Processes => "Processes",
            Tab::Connections => "Connections",
        }
    }
}

/// A popup over the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlay {
    /// Nothing.
    None,
    /// Key help, scrolled by `scroll` lines.
    Help {
        /// First line shown.
        scroll: u16,
    },
    /// Column picker; `cursor` indexes the current table's full column list.
    ColumnPicker {
        /// Highlighted column.
        cursor: usize,
    },
    /// Every field of the row under the cursor.
    Detail,
    /// The signal dialog for [`App::signal_target`].
    Signal(SignalStage),
    /// This tool's own cost (key `o`): its probes' kernel run-time statistics, on only while
    /// this is open, beside the modes' user-space CPU.
    ProbeCost,
}

/// The filter prompt while it is open: the text edited is the current tab's filter text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterPrompt {
    /// Cursor position, a byte index into the text (always on a char boundary).
    pub cursor: usize,
}

/// What the event loop should do after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Something changed: draw now.
    Redraw,
    /// Nothing visible changed.
    Unchanged,
    /// Leave the dashboard.
    Quit,
    /// Hand the terminal back to the shell and stop (Ctrl-Z); redraw everything on `fg`.
    Suspend,
}

/// Where the monitor runs (for the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Memory of the host (`/proc/meminfo` MemTotal), bytes; `None` when unknown.
    pub mem_total_bytes: Option<u64>,
}

impl HostInfo {
    /// Reads the host name and kernel release of this machine.
    pub fn detect() -> HostInfo {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into())
        };
        HostInfo {
            hostname: read("/proc/sys/kernel/hostname"),
            kernel: read("/proc/sys/kernel/osrelease"),
            mem_total_bytes: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| mem_total_bytes(&m)),
        }
    }
}

/// `MemTotal:` of a `/proc/meminfo` text, bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Start-up choices (from the command line and the config file, already validated).
#[derive(Clone, Debug)]
pub struct AppSettings {
    /// Mode whose tables are shown first.
    pub mode: ModeKind,
    /// Refresh interval (CPU% window, redraw on data).
    pub interval: Duration,
    /// Theme at start.
    pub theme: Theme,
    /// Key bindings.
    pub keymap: KeyMap,
    /// Visible process columns, in order.
    pub process_columns: Vec<usize>,
    /// Visible connection columns, in order.
    pub connection_columns: Vec<usize>,
    /// Initial filter text (applied to each tab where it parses).
    pub filter: Option<String>,
    /// Modes that were started (the others show "not running").
    pub running_modes: Vec<ModeKind>,
    /// The session's kernel flush period (`--update-interval`): how stale a process's CPU
    /// time can be (see [`crate::model::process_cpu::ProcessCpu`]).
    pub flush_period: Duration,
    /// Rows hidden at start (config `[view]`).
    pub hide: HideRows,
    /// The config file the `E`/`K` toggles are written back to (`None`: not remembered).
    pub remember_in: Option<std::path::PathBuf>,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            mode: ModeKind::Ring,
            interval: Duration::from_secs(1),
            theme: Theme::default_theme(),
            keymap: KeyMap::default(),
            process_columns: (0..PROCESS_COLUMNS.len()).collect(),
            connection_columns: (0..CONNECTION_COLUMNS.len()).collect(),
            filter: None,
            running_modes: ModeKind::ALL.to_vec(),
            flush_period: Duration::from_millis(100),
            hide: HideRows::default(),
            remember_in: None,
        }
    }
}

/// A transient message in the footer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMessage {
    /// The text.
    pub text: String,
    /// When it disappears, CLOCK_MONOTONIC ns.
    pub until_ns: u64,
}

/// How long a status message stays, ns of the app's clock (`set_now` / `on_second`).
pub const STATUS_NS: u64 = 3_000_000_000;

/// The frozen picture shown while paused.
#[derive(Debug)]
struct Frozen {
    tables: FrozenTables,
    metrics: Metrics,
    now_ns: u64,
    generation: u64,
}

/// The dashboard state.
pub struct App {
    pub(super) store: TableStore,
    pub(super) metrics: Metrics,
    frozen: Option<Box<Frozen>>,
    pub(super) tab: Tab,
    pub(super) mode: ModeKind,
    pub(super) processes: TableView<ProcKey>,
    pub(super) connections: TableView<ConnKey>,
    pub(super) overlay: Overlay,
    pub(super) prompt: Option<FilterPrompt>,
    pub(super) search: SearchState,
    hide: HideRows,
    remember_in: Option<std::path::PathBuf>,
    themes: Vec<Theme>,
    theme_index: usize,
    pub(super) keymap: KeyMap,
    users: UserNames,
    cgroups: CgroupNames,
    host: HostInfo,
    started_ns: u64,
    now_ns: u64,
    /// The clock status messages expire by (this process's CLOCK_MONOTONIC, also in a
    /// replay, whose `now_ns` is the recording's).
    status_now_ns: u64,
    data_generation: u64,
    running_modes: Vec<ModeKind>,
    interval: Duration,
    status: Option<StatusMessage>,
    signal_target: Option<SignalTarget>,
    /// Remote host names (key `r`): the resolver, started on first use, and whether names
    /// are shown.
    host_names: (Option<HostNames>, bool),
    /// The mode panel collapsed to one line (`p`).
    panel_collapsed: bool,
    /// Processes shown as a tree (F5).
    tree: bool,
    /// Processes whose children the tree leaves out, and a generation that changes with it.
    collapsed: (HashSet<ProcKey>, u64),
    /// Lasting notes from the probes (e.g. an optional tracepoint this kernel lacks).
    notes: Vec<String>,
    /// `--attach`: the socket, and where signal requests go.
    attached: Option<(
        String,
        crossbeam_channel::Sender<crate::remote::protocol::ViewerMessage>,
    )>,
    pub(super) layout: Option<ScreenLayout>,
    /// The probes' cost: the monitor (absent in tests without a kernel) and its last report.
    pub(super) probe_cost: super::probe_cost::ProbeCostView,
    /// Whether ingestion keeps up (the `BEHIND` badge).
    ingest: super::ingest::IngestLoad,
    /// `replay DIR`: the recording shown and its time.
    pub(super) replay: Option<Box<super::replayed::ReplayState>>,
}

fn default_sort<R>(columns: &[ColumnSpec<R>], name: &str) -> SortState {
    let column = column_index(columns, name).expect("default sort column exists");
    SortState {
        column,
        descending: columns[column].descending_first,
    }
}

impl App {
    /// A dashboard over `store`, started at `now_ns`.
    pub fn new(store: TableStore, settings: AppSettings, host: HostInfo, now_ns: u64) -> App {
        let mut themes = Theme::all_built_in();
        let theme_index = match themes.iter().position(|t| *t == settings.theme) {
            Some(index) => index,
            None => {
                themes.insert(0, settings.theme.clone());
                0
            }
        };
        let mut processes = TableView::new(
            settings.process_columns.clone(),
            default_sort(PROCESS_COLUMNS, "cpu"),
            FilterTable::Processes,
        );
        let mut connections = TableView::new(
            settings.connection_columns.clone(),
            default_sort(CONNECTION_COLUMNS, "age"),
            FilterTable::Connections,
        );
        if let Some(text) = &settings.filter {
            processes.filter.set_text(text.clone());
            if processes.filter.error.is_some() {
                processes.filter.clear();
            }
            connections.filter.set_text(text.clone());
            if connections.filter.error.is_some() {
                connections.filter.clear();
            }
        }
        let mut app = App {
            store,
            metrics: Metrics::new(settings.flush_period.as_nanos() as u64),
            frozen: None,
            tab: Tab::Processes,
            mode: settings.mode,
            processes,
            connections,
            overlay: Overlay::None,
            prompt: None,
            search: SearchState::default(),
            hide: settings.hide,
            remember_in: settings.remember_in,
            themes,
            theme_index,
            keymap: settings.keymap,
            users: UserNames::from_system(),
            cgroups: CgroupNames::for_host(),
            host,
            started_ns: now_ns,
            now_ns,
            status_now_ns: now_ns,
            data_generation: 0,
            running_modes: settings.running_modes,
            interval: settings.interval,
            status: None,
            signal_target: None,
            tree: false,
            panel_collapsed: false,
            collapsed: (HashSet::new(), 0),
            host_names: (None, false),
            notes: Vec::new(),
            attached: None,
            replay: None,
            layout: None,
            probe_cost: Default::default(),
            ingest: Default::default(),
        };
        app.metrics.sample_modes(&app.store, now_ns);
        app.metrics.sample_processes(&app.store, app.mode, now_ns);
        app.metrics.program_cpu.sample(process_cpu_ns(), now_ns);
        app
    }

    /// Replaces the user-name table (tests use a fixed one).
    pub fn set_user_names(&mut self, users: UserNames) {
        self.users = users;
        self.data_generation += 1;
    }

    // ----- data in -----

    /// Applies a message from a mode thread. Applying goes on while paused.
    pub fn apply(&mut self, message: ModeMessage) {
        self.store.handle(message);
        self.data_generation += 1;
    }

    /// Makes this an attached viewer of the collector on `path`: signals become requests sent
    /// to `requests` ([`crate::remote::feed`]).
    pub fn attach_to(
        &mut self,
        path: &std::path::Path,
        requests: crossbeam_channel::Sender<crate::remote::protocol::ViewerMessage>,
    ) {
        self.attached = Some((path.display().to_string(), requests));
    }

    /// The socket of an attached viewer.
    pub fn attached_path(&self) -> Option<String> {
        self.attached.as_ref().map(|(path, _)| path.clone())
    }

    /// Where an attached viewer's signal requests go.
    pub(super) fn signal_requests(
        &self,
    ) -> Option<&crossbeam_channel::Sender<crate::remote::protocol::ViewerMessage>> {
        self.attached.as_ref().map(|(_, requests)| requests)
    }

    /// The store, for the attached feed to apply its data to (followed by
    /// [`App::data_changed`]).
    pub(super) fn store_for_feed(&mut self) -> &mut TableStore {
        &mut self.store
    }

    /// The tables changed (redraw what depends on them).
    pub(super) fn data_changed(&mut self) {
        self.data_generation += 1;
    }

    /// The once-a-second work: reap finished rows past retention, sample the panel figures
    /// (events/s, lag window, thread CPU) and this program's CPU, refresh user names, expire
    /// the status message. Returns [`Control::Redraw`] when the status message expired (the
    /// screen must lose it now, not at the next refresh, which may be an hour away).
    pub fn on_second(&mut self, real_now_ns: u64) -> Control {
        let now_ns = self.clock(real_now_ns);
        if self.store.reap(now_ns) > 0 {
            self.data_generation += 1;
        }
        self.metrics.sample_modes(&self.store, now_ns);
        self.metrics.program_cpu.sample(process_cpu_ns(), now_ns);
        let cost_changed = self.probe_cost.refresh(self.overlay == Overlay::ProbeCost);
        let behind_changed = self.ingest.on_second();
        self.users.refresh();
        self.set_now(real_now_ns);
        if self
            .status
            .as_ref()
            .is_some_and(|s| s.until_ns <= real_now_ns)
        {
            self.status = None;
            Control::Redraw
        } else if cost_changed || behind_changed {
            Control::Redraw
        } else {
            Control::Unchanged
        }
    }

    /// The once-per-refresh work: per-process CPU% over the window just closed.
    pub fn on_refresh(&mut self, real_now_ns: u64) {
        self.play_step();
        let now_ns = self.clock(real_now_ns);
        // While paused the per-row trackers are the frozen picture's (Metrics::pause_rows).
        if self.frozen.is_none() {
            self.metrics
                .sample_processes(&self.store, self.mode, now_ns);
        }
        self.data_generation += 1;
        self.set_now(real_now_ns);
    }

    /// Advances the clock used for ages and the uptime. While paused, the frozen picture
    /// keeps the time it was frozen at (see [`App::display_now_ns`]).
    pub fn set_now(&mut self, now_ns: u64) {
        self.status_now_ns = now_ns;
        self.now_ns = self.clock(now_ns);
    }

    /// Mutable access to the store (tests that change data directly). Test builds only.
    #[cfg(feature = "test-support")]
    pub fn store_mut(&mut self) -> &mut TableStore {
        self.data_generation += 1;
        &mut self.store
    }

    // ----- what the view reads -----

    /// The store (live data, whatever the pause state).
    pub fn store(&self) -> &TableStore {
        &self.store
    }

    /// The visible tab.
    pub fn tab(&self) -> Tab {
        self.tab
    }

    /// The visible mode.
    pub fn mode(&self) -> ModeKind {
        self.mode
    }

    /// Whether the mode was started.
    pub fn is_running(&self, mode: ModeKind) -> bool {
        self.running_modes.contains(&mode)
    }

    /// The open popup.
    pub fn overlay(&self) -> Overlay {
        self.overlay
    }

    /// Which rows the tables leave out.
    pub fn hide(&self) -> HideRows {
        self.hide
    }

    /// What the hide toggles leave out of the visible tab, as the tab bar names it
    /// (`exited`, `kernel threads`, `exited + kernel threads`, `closed`); `None` when nothing.
    pub fn hidden_label(&self) -> Option<&'static str> {
        match (self.tab, self.hide.exited, self.hide.kernel_threads) {
            (Tab::Processes, true, true) => Some("exited + kernel threads"),
            (Tab::Processes, true, false) => Some("exited"),
            (Tab::Processes, false, true) => Some("kernel threads"),
            (Tab::Connections, true, _) => Some("closed"),
            _ => None,
        }
    }

    /// The filter prompt, when open.
    pub fn prompt(&self) -> Option<FilterPrompt> {
        self.prompt
    }

    /// The search: its text, whether its prompt is open, what it last found.
    pub fn search(&self) -> &SearchState {
        &self.search
    }

    /// Moves the visible tab's selection to a row whose visible text contains the search text
    /// (case-insensitive), starting as `from` says and wrapping around; records whether one was
    /// found. Rows are neither hidden nor reordered.
    pub fn search_rows(&mut self, from: SearchFrom) {
        let needle = self.search.text.to_lowercase();
        if needle.is_empty() {
            self.search.not_found = false;
            self.search.wrapped = false;
            return;
        }
        let ctx = self.row_context();
        let found = match self.tab {
            Tab::Processes => find_row(
                &self.processes,
                self.processes_table(),
                PROCESS_COLUMNS,
                &ctx,
                &needle,
                from,
            ),
            Tab::Connections => find_row(
                &self.connections,
                self.connections_table(),
                CONNECTION_COLUMNS,
                &ctx,
                &needle,
                from,
            ),
        };
        self.search.not_found = found.is_none();
        self.search.wrapped = found.is_some_and(|(_, wrapped)| wrapped);
        if let Some((index, _)) = found {
            match self.tab {
                Tab::Processes => self.processes.select_index(index),
                Tab::Connections => self.connections.select_index(index),
            }
        }
    }

    /// The theme in use.
    pub fn theme(&self) -> &Theme {
        &self.themes[self.theme_index]
    }

    /// Key bindings.
    pub fn keymap(&self) -> &KeyMap {
        &self.keymap
    }

    /// Host name and kernel.
    pub fn host(&self) -> &HostInfo {
        &self.host
    }

    /// Time since the dashboard started, ns.
    pub fn uptime_ns(&self) -> u64 {
        self.now_ns.saturating_sub(self.started_ns)
    }

    /// Refresh interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether the display is frozen.
    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// While paused, how many rows the frozen picture holds a copy of: the visible mode's, and
    /// the other modes' rows that differ from them ([`FrozenTables::copied_rows`]).
    pub fn paused_copied_rows(&self) -> Option<usize> {
        self.frozen.as_ref().map(|f| f.tables.copied_rows())
    }

    /// Lasting notes about degraded collection, shown in the footer until the program ends.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Sets the lasting notes (from `Probes::notes`).
    pub fn set_notes(&mut self, notes: Vec<String>) {
        self.notes = notes;
    }

    /// Records one ingestion pass of the event loop (see [`super::ingest::IngestLoad`]).
    pub fn record_ingest_pass(&mut self, out_of_budget: bool, queued: usize) {
        self.ingest.record_pass(out_of_budget, queued);
    }

    /// Messages queued when the dashboard last could not keep up, while that is shown.
    pub fn ingest_behind(&self) -> Option<usize> {
        self.ingest.behind()
    }

    /// Gives the app the session's probe-cost monitor (its statistics stay off until the
    /// cost overlay opens).
    pub fn set_probe_cost_monitor(&mut self, monitor: bridge::probe_cost::ProbeCostMonitor) {
        self.probe_cost.monitor = Some(monitor);
    }

    /// The probes' cost as last measured (empty while the overlay is closed or before the
    /// first one-second window).
    pub fn probe_cost(&self) -> &super::probe_cost::ProbeCostView {
        &self.probe_cost
    }

    /// Replaces the probe-cost report (tests without a kernel). Test builds only.
    #[cfg(feature = "test-support")]
    pub fn set_probe_cost_report(&mut self, report: bridge::probe_cost::CostReport) {
        self.probe_cost.report = report;
    }

    /// The footer's transient message, while it lasts ([`STATUS_NS`] on the app's clock).
    pub fn status(&self) -> Option<&str> {
        self.status
            .as_ref()
            .filter(|s| s.until_ns > self.status_now_ns)
            .map(|s| s.text.as_str())
    }

    /// The process the signal dialog is about (set while it is open).
    pub fn signal_target(&self) -> Option<&SignalTarget> {
        self.signal_target.as_ref()
    }

    /// Opens the signal dialog for the process under the cursor, or says why it cannot.
    pub(super) fn open_signal_dialog(&mut self) {
        let target = match (self.tab, self.cursor_process()) {
            (Tab::Processes, Some(row)) => SignalTarget::for_row(row),
            (Tab::Processes, None) => Err("no process selected".into()),
            (Tab::Connections, _) => {
                Err("signals go to processes: switch to the Processes table (Tab)".into())
            }
        };
        match target {
            Ok(target) => {
                self.signal_target = Some(target);
                self.overlay = Overlay::Signal(SignalStage::Choose { cursor: 0 });
            }
            Err(why) => self.set_status(why),
        }
    }

    /// Switches between the flat and the tree view of processes (F5).
    pub(super) fn toggle_tree(&mut self) {
        self.tree = !self.tree;
        self.set_status(if self.tree {
            "tree view: children under their parents (- / + fold, F5 flat)"
        } else {
            "flat view"
        });
    }

    /// Whether the mode panel is collapsed to one line.
    pub fn panel_collapsed(&self) -> bool {
        self.panel_collapsed
    }

    /// Collapses the mode panel to one line, or shows it whole (`p`).
    pub(super) fn toggle_panel(&mut self) {
        self.panel_collapsed = !self.panel_collapsed;
    }

    /// Whether processes are shown as a tree.
    pub fn tree(&self) -> bool {
        self.tree
    }

    /// Folds (`expand` false) or unfolds the selected process's children in the tree view.
    pub(super) fn fold_selected(&mut self, expand: bool) {
        if !self.tree || self.tab != Tab::Processes {
            self.set_status("folding works in the tree view of processes (F5)");
            return;
        }
        let Some(key) = self.cursor_process().map(|r| r.key) else {
            return;
        };
        let changed = if expand {
            self.collapsed.0.remove(&key)
        } else {
            self.collapsed.0.insert(key)
        };
        if changed {
            self.collapsed.1 += 1;
        }
    }

    /// Closes the signal dialog.
    pub(super) fn close_signal_dialog(&mut self) {
        self.signal_target = None;
        self.overlay = Overlay::None;
    }

    /// Shows a transient message in the footer for [`STATUS_NS`] from the app's "now".
    pub fn set_status(&mut self, text: impl Into<String>) {
        self.status = Some(StatusMessage {
            text: text.into(),
            until_ns: self.status_now_ns + STATUS_NS,
        });
    }

    /// "Now" for the displayed picture (frozen while paused).
    pub fn display_now_ns(&self) -> u64 {
        self.frozen.as_ref().map_or(self.now_ns, |f| f.now_ns)
    }

    /// Metrics as displayed (frozen while paused).
    pub fn metrics(&self) -> &Metrics {
        self.frozen.as_ref().map_or(&self.metrics, |f| &f.metrics)
    }

    /// The visible mode's processes, as displayed.
    pub fn processes_table(&self) -> &OrderedTable<ProcessRow> {
        self.process_table().rows()
    }

    /// The visible mode's processes table (with its indexes), as displayed.
    pub fn process_table(&self) -> &ProcessTable {
        match &self.frozen {
            Some(f) => f.tables.processes(),
            None => &self.store.mode(self.mode).processes,
        }
    }

    /// The visible mode's connections, as displayed.
    pub fn connections_table(&self) -> &OrderedTable<ConnectionRow> {
        match &self.frozen {
            Some(f) => f.tables.connections(),
            None => &self.store.mode(self.mode).connections,
        }
    }

    /// Formatting context of the visible mode.
    pub fn row_context(&self) -> RowContext<'_> {
        RowContext {
            now_ns: self.display_now_ns(),
            cpu: self.metrics().process_cpu(self.mode),
            users: &self.users,
            processes: Some(self.process_table()),
            hosts: self.host_names.0.as_ref().filter(|_| self.host_names.1),
            net: Some(self.metrics().net(self.mode)),
            cmdlines: Some(self.store.cmdlines()),
            cgroups: Some(&self.cgroups),
            mem_total_bytes: self.host.mem_total_bytes,
        }
    }

    /// Shows remote host names instead of addresses, or addresses again (key `r`). Names are
    /// looked up off this thread; an address shows until its name arrives.
    pub(super) fn toggle_host_names(&mut self) {
        let (resolver, shown) = &mut self.host_names;
        *shown = !*shown;
        if *shown && resolver.is_none() {
            *resolver = Some(HostNames::default());
        }
        let text = if *shown {
            "remote host names on (looked up in the background; r: addresses)"
        } else {
            "remote addresses"
        };
        self.set_status(text);
    }

    /// The processes tab's view state.
    pub fn process_view(&self) -> &TableView<ProcKey> {
        &self.processes
    }

    /// The connections tab's view state.
    pub fn connection_view(&self) -> &TableView<ConnKey> {
        &self.connections
    }

    /// The process under the cursor.
    pub fn cursor_process(&self) -> Option<&ProcessRow> {
        self.processes
            .cursor_key()
            .and_then(|k| self.processes_table().get(&k))
    }

    /// The connection under the cursor.
    pub fn cursor_connection(&self) -> Option<&ConnectionRow> {
        self.connections
            .cursor_key()
            .and_then(|k| self.connections_table().get(&k))
    }

    /// Whether the visible tab follows its selection.
    pub fn following(&self) -> bool {
        match self.tab {
            Tab::Processes => self.processes.following(),
            Tab::Connections => self.connections.following(),
        }
    }

    /// The layout of the last prepared frame.
    pub fn layout(&self) -> Option<&ScreenLayout> {
        self.layout.as_ref()
    }

    // ----- state changes shared by keys and mouse -----

    /// Shows another mode's tables (instant: all modes are live). Per-row figures (CPU%,
    /// rates) are kept for the visible mode only: the new mode's start from a sample taken
    /// now and are unknown until the next refresh (a paused view keeps its own copy).
    pub fn set_mode(&mut self, mode: ModeKind) {
        self.mode = mode;
        if let Some(frozen) = &mut self.frozen {
            frozen.tables.show(mode);
        }
        if self.frozen.is_none() && self.metrics.sampled_mode() != Some(mode) {
            self.metrics
                .sample_processes(&self.store, mode, self.now_ns);
            self.data_generation += 1;
        }
    }

    /// Freezes or unfreezes the display. Collection and applying continue underneath.
    pub fn toggle_pause(&mut self) {
        match self.frozen.take() {
            Some(frozen) => self.metrics.resume_rows(frozen.metrics),
            None => {
                // One whole copy of tables (the visible mode's) and the other modes' differing
                // rows; the per-row figures are moved, not copied.
                let modes = ModeKind::ALL.map(|m| self.store.mode(m));
                let tables = FrozenTables::capture(modes, self.mode);
                self.frozen = Some(Box::new(Frozen {
                    tables,
                    metrics: self.metrics.pause_rows(),
                    now_ns: self.now_ns,
                    generation: self.data_generation,
                }));
            }
        }
        self.processes.invalidate();
        self.connections.invalidate();
    }

    /// Hides or shows exited processes and closed connections (both tables).
    pub fn toggle_hide_exited(&mut self) {
        self.hide.exited = !self.hide.exited;
        self.remember_hide(self.hide.exited, "exited processes and closed connections");
    }

    /// Hides or shows kernel threads (the processes table).
    pub fn toggle_hide_kernel_threads(&mut self) {
        self.hide.kernel_threads = !self.hide.kernel_threads;
        self.remember_hide(self.hide.kernel_threads, "kernel threads");
    }

    /// Writes the toggles into the config file (`[view]`), and says in the status line that
    /// `rows` are now hidden or shown, and where that was saved (or why not).
    fn remember_hide(&mut self, hidden: bool, rows: &str) {
        let what = format!("{rows} {}", if hidden { "hidden" } else { "shown" });
        let text = match &self.remember_in {
            None => what,
            Some(path) => match crate::config_view::remember_view(path, self.hide) {
                Ok(()) => format!("{what} (saved in {})", path.display()),
                Err(e) => format!("{what}; not saved: {e}"),
            },
        };
        self.set_status(text);
    }

    /// Next built-in theme (a theme loaded from a file is first in the cycle).
    pub fn next_theme(&mut self) {
        self.theme_index = (self.theme_index + 1) % self.themes.len();
        let theme = self.theme();
        let text = if theme.description.is_empty() {
            format!("theme: {}", theme.name)
        } else {
            format!("theme: {} — {}", theme.name, theme.description)
        };
        self.set_status(text);
    }

    // ----- before each draw -----

    /// Fits the views to `layout` and brings the visible tab's order up to date (sorting and
    /// filtering only when data, sort, filter, mode or pause changed since the last frame).
    pub fn prepare(&mut self, layout: ScreenLayout) {
        self.layout = Some(layout);
        self.prepare_order(layout);
        // The detail pane closes when its row is gone (reaped, or filtered out).
        let has_row = match self.tab {
            Tab::Processes => self.cursor_process().is_some(),
            Tab::Connections => self.cursor_connection().is_some(),
        };
        if self.overlay == Overlay::Detail && !has_row {
            self.overlay = Overlay::None;
        }
    }

    /// Shows `tab`, with its order computed at once (the hidden tab's order is freed, so keys
    /// typed before the next frame act on the new tab's rows).
    pub(super) fn show_tab(&mut self, tab: Tab) {
        self.tab = tab;
        if let Some(layout) = self.layout {
            self.prepare_order(layout);
        }
    }

    fn prepare_order(&mut self, layout: ScreenLayout) {
        let rows = layout.table_rows();
        match self.tab {
            Tab::Processes => {
                self.connections.release_order();
                let fresh = self.stale_order(
                    &self.processes,
                    self.processes_table(),
                    PROCESS_COLUMNS,
                    |row, ctx, filter| filter.matches(&ProcessSubject { row, ctx }),
                );
                if let Some((order, hidden, stamp)) = fresh {
                    let order = if self.tree {
                        let tree = process_tree::arrange(
                            &order,
                            self.processes_table(),
                            &self.collapsed.0,
                        );
                        self.processes.tree_prefix = tree.prefix;
                        tree.order
                    } else {
                        self.processes.tree_prefix.clear();
                        order
                    };
                    self.processes.set_order(order, stamp);
                    self.processes.hidden = hidden;
                }
                self.processes.set_page_rows(rows);
                self.processes.content_widths =
                    self.widths_in_view(&self.processes, self.processes_table(), PROCESS_COLUMNS);
            }
            Tab::Connections => {
                self.processes.release_order();
                let fresh = self.stale_order(
                    &self.connections,
                    self.connections_table(),
                    CONNECTION_COLUMNS,
                    |row, ctx, filter| filter.matches(&ConnectionSubject { row, ctx }),
                );
                if let Some((order, hidden, stamp)) = fresh {
                    self.connections.set_order(order, stamp);
                    self.connections.hidden = hidden;
                }
                self.connections.set_page_rows(rows);
                self.connections.content_widths = self.widths_in_view(
                    &self.connections,
                    self.connections_table(),
                    CONNECTION_COLUMNS,
                );
            }
        }
    }

    /// The widest cell of each content-sized column over the rows `view` has in view.
    fn widths_in_view<R: Entity>(
        &self,
        view: &TableView<R::Key>,
        table: &OrderedTable<R>,
        columns: &[ColumnSpec<R>],
    ) -> Vec<u16> {
        let rows: Vec<&R> = view.order()[view.visible_range()]
            .iter()
            .filter_map(|key| table.get(key))
            .collect();
        content_widths(columns, &rows, &self.row_context())
    }

    /// A new order for `view` over `table` (with the number of rows the hide toggles left out
    /// and the stamp it answers to), or `None` when the view's order is current for the data,
    /// sort, filter, mode, pause and hide state.
    fn stale_order<R: Entity + DisplayRow>(
        &self,
        view: &TableView<R::Key>,
        table: &OrderedTable<R>,
        columns: &[ColumnSpec<R>],
        matches: impl Fn(&R, &RowContext, &Filter) -> bool,
    ) -> Option<(Vec<R::Key>, usize, OrderStamp)> {
        let stamp = OrderStamp {
            data: self
                .frozen
                .as_ref()
                .map_or(self.data_generation, |f| f.generation),
            sort: view.sort,
            filter: view.filter.generation,
            mode: self.mode,
            paused: self.frozen.is_some(),
            hide: self.hide,
            tree: self.tree.then_some(self.collapsed.1),
        };
        if view.order_is_current(&stamp) {
            return None;
        }
        let ctx = self.row_context();
        let (order, hidden) = sorted_filtered(
            table,
            columns,
            stamp.sort,
            stamp.hide,
            &view.filter.active,
            &ctx,
            matches,
        );
        Some((order, hidden, stamp))
    }
}

/// The index in `view`'s order of the row the search finds (see [`App::search_rows`]).
fn find_row<R: Entity>(
    view: &TableView<R::Key>,
    table: &OrderedTable<R>,
    columns: &[ColumnSpec<R>],
    ctx: &RowContext,
    needle: &str,
    from: SearchFrom,
) -> Option<(usize, bool)> {
    let order = view.order();
    let cursor = view.cursor_index().unwrap_or(0);
    search::find(order.len(), cursor, from, |index| {
        table.get(&order[index]).is_some_and(|row| {
            view.columns
                .iter()
                .filter_map(|c| columns.get(*c))
                .any(|c| (c.text)(row, ctx).to_lowercase().contains(needle))
        })
    })
}

/// Keys of the rows of `table` not hidden by `hide` and accepted by `filter`, ordered by the
/// sort column (ties keep first-seen order, in both directions); and how many rows `hide` left
/// out (whether or not the filter would have taken them).
fn sorted_filtered<R: Entity + DisplayRow>(
    table: &OrderedTable<R>,
    columns: &[ColumnSpec<R>],
    sort: SortState,
    hide: HideRows,
    filter: &Filter,
    ctx: &RowContext,
    matches: impl Fn(&R, &RowContext, &Filter) -> bool,
) -> (Vec<R::Key>, usize) {
    let spec = &columns[sort.column];
    let hidden = std::cell::Cell::new(0usize);
    let order = table.sorted_keys(
        |row| {
            if (hide.exited && DisplayRow::is_finished(row))
                || (hide.kernel_threads && DisplayRow::is_kernel_thread(row))
            {
                hidden.set(hidden.get() + 1);
                return false;
            }
            filter.is_empty() || matches(row, ctx, filter)
        },
        |a, b| {
            let order = (spec.compare)(a, b, ctx);
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        },
    );
    (order, hidden.get())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_total_is_read_from_meminfo() {
        let meminfo = "MemTotal:       24594532 kB\nMemFree:        1000 kB\n";
        assert_eq!(super::mem_total_bytes(meminfo), Some(24_594_532 * 1024));
        assert_eq!(super::mem_total_bytes("MemFree: 1 kB\n"), None);
        assert_eq!(super::mem_total_bytes("MemTotal: lots\n"), None);
    }
}
