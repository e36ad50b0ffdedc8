//! `TestBackend` tests of every view, fed by the bridge's synthetic source (no kernel): the
//! visible text, the sort markers, the highlighted mode, popups, the filter prompt with an
//! error, and the tiny-terminal message.

mod support;

use bpftop_ordered::{
    dashboard::app::Tab, model::columns::PROCESS_COLUMNS, theme::Theme, view::help::help_lines,
};
use bridge::contract::{
    ModeBatch, ModeCounters, ModeKind, ModeMessage, ProcessRow, RowChange, RowOrigin,
};
use crossterm::event::{Event, KeyCode};
use probe_common::{ProcKey, ProcState};
use ratatui::style::Modifier;
use support::{assert_shows, find, find_below, screen_text, Harness, SECOND};

#[test]
fn processes_view_shows_header_tabs_columns_and_rows() {
    let mut h = Harness::new();
    let screen = h.screen();
    assert_shows(
        &screen,
        &[
            "bpftop-ordered",
            "host testhost",
            "kernel 6.18.0-test",
            "mode ring",
            "Processes",
            "Connections",
            "PID",
            "PPID",
            "USER",
            "COMM",
            " S ",
            "CPU TIME",
            "START",
            "EXIT",
        ],
    );
    // Sorted by CPU% high to low: the marker sits before the right-aligned title.
    assert!(screen.contains("▼CPU%"), "{screen}");
    // The footer lists the keys.
    assert!(screen.contains("?/F1 help"), "{screen}");
    assert!(screen.contains("q/F10 quit"), "{screen}");
}

#[test]
fn connections_view_shows_endpoints_states_and_bytes() {
    let mut h = Harness::new();
    h.press(KeyCode::Tab);
    assert_eq!(h.app.tab(), Tab::Connections);
    let screen = h.screen();
    assert_shows(
        &screen,
        &[
            "PROTO",
            "LOCAL",
            "REMOTE",
            "STATE",
            "SENT",
            "RECV",
            "AGE",
            "10.0.0.5:",
            "LISTEN",
            "ESTABLISHED",
            "MiB",
        ],
    );
    // Default sort: youngest first.
    assert!(screen.contains("▲AGE"), "{screen}");
}

#[test]
fn sort_marker_follows_invert_and_column_changes() {
    let mut h = Harness::new();
    h.press(KeyCode::Char('I'));
    assert!(h.screen().contains("▲CPU%"));
    h.press(KeyCode::Char('<'));
    let screen = h.screen();
    assert!(screen.contains("S▲"), "{screen}");
    assert!(!screen.contains("CPU%▲") && !screen.contains("▲CPU%"));
}

#[test]
fn mode_panel_shows_three_modes_with_the_visible_one_highlighted() {
    let mut h = Harness::new();
    let buffer = h.draw();
    let screen = screen_text(&buffer);
    assert_shows(
        &screen,
        &[
            " 1 ring ◆ shown ",
            " 2 perf ",
            " 3 poll ",
            "events/s",
            "lag p50·p99·max",
            "drops·resyncs",
            "mem kernel·user",
            "cpu",
            "ev/s",
            "p99",
            "MiB",
        ],
    );
    let active = Theme::default_theme().panel_title_active;
    let is_active = |buffer: &ratatui::buffer::Buffer, title: &str| {
        let (x, y) = find(buffer, title).unwrap_or_else(|| panic!("{title} on screen"));
        buffer[(x + 1, y)].modifier.contains(Modifier::REVERSED)
            && buffer[(x + 1, y)].fg == active.fg.unwrap()
    };
    assert!(is_active(&buffer, " 1 ring"));
    assert!(!is_active(&buffer, " 2 perf"));

    h.press(KeyCode::Char('2'));
    let buffer = h.draw();
    assert!(is_active(&buffer, " 2 perf"));
    assert!(!is_active(&buffer, " 1 ring"));
    assert!(screen_text(&buffer).contains("mode perf"));
}

#[test]
fn failed_and_stopped_modes_say_so() {
    let mut h = Harness::new();
    h.app.apply(ModeMessage::Failed {
        mode: ModeKind::Poll,
        error: "map read failed: EPERM".into(),
    });
    h.app.on_second(h.source.now_ns() + 1);
    let screen = h.screen();
    assert!(screen.contains("FAILED"), "{screen}");
    assert!(screen.contains("map read failed"), "{screen}");
}

#[test]
fn help_overlay_lists_every_key() {
    let (mut h, screen) = after_key(KeyCode::Char('?'));
    assert!(screen.contains("Help — bpftop-ordered"), "{screen}");
    assert_shows(
        &screen,
        &["quit", "Tab", "Space", "follow the selected entity"],
    );
    // The full text (all of it, even what needs scrolling on small screens).
    let all: String = help_lines(&h.app)
        .iter()
        .map(|l| l.to_string() + "\n")
        .collect();
    for text in [
        "Mouse",
        "Shift-Tab",
        "column picker",
        "comm state addr family pid port",
        "cpu (%), cpu_time and age (durations)",
        "sent and recv (bytes)",
        "K M G T are 1024-based",
        "AND binds tighter",
        "regex (comm~^py)",
        "next row matching the search",
        "n / N",
        "seeded from /proc",
    ] {
        assert!(all.contains(text), "missing {text:?} in help");
    }
    h.press(KeyCode::Esc);
    assert!(!h.screen().contains("Help — bpftop-ordered"));
}

#[test]
fn filter_prompt_shows_the_error_in_red_and_keeps_the_last_good_filter() {
    let mut h = Harness::new();
    h.press(KeyCode::Char('/'));
    h.type_text("comm:sleep");
    let shown = h.app.process_view().order().len();
    assert!(shown > 0);
    // Pasted at once: every intermediate state would be a valid plain-text term.
    h.app.handle_event(&Event::Paste(" pid:abc".into()));
    let buffer = h.draw();
    let screen = screen_text(&buffer);
    assert!(screen.contains("/ comm:sleep pid:abc"), "{screen}");
    assert!(
        screen.contains("✗ pid must be a number, not `abc`"),
        "{screen}"
    );
    let (x, y) = find(&buffer, "pid:abc").unwrap();
    let error = Theme::default_theme().error;
    assert_eq!(buffer[(x, y)].fg, error.fg.unwrap(), "the bad term is red");
    // The table still shows the comm:sleep rows.
    assert_eq!(h.app.process_view().order().len(), shown);
    assert!(screen.contains("match `comm:sleep`"), "{screen}");
}

#[test]
fn tiny_terminal_shows_one_line() {
    let mut h = Harness::with_shape(Default::default(), 40, 10);
    let screen = h.screen();
    assert!(
        screen.contains("Terminal too small: 40x10 (needs 60x15)"),
        "{screen}"
    );
    assert!(!screen.contains("PID"));
    // At exactly the minimum the dashboard draws.
    let mut h = Harness::with_shape(Default::default(), 60, 15);
    let screen = h.screen();
    assert!(
        screen.contains("PID") && screen.contains("1 ring"),
        "{screen}"
    );
}

#[test]
fn resize_relayouts() {
    let mut h = Harness::new();
    assert!(h.screen().contains("EXIT"));
    h.terminal.backend_mut().resize(60, 20);
    let screen = h.screen();
    assert_eq!(screen.lines().count(), 20);
    assert!(
        screen.contains("PID") && !screen.contains("EXIT"),
        "{screen}"
    );
}

#[test]
fn detail_pane_shows_every_field_and_cpu_history() {
    let mut h = Harness::new();
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert_shows(
        &screen,
        &[
            "Process ",
            "parent",
            "user",
            "command",
            "state",
            "started",
            "cpu time",
            "cpu now",
            "last change",
            "origin",
            "CPU% over the last",
        ],
    );
    h.press(KeyCode::Esc);
    h.press(KeyCode::Tab);
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert_shows(
        &screen,
        &[
            "Connection ",
            "protocol",
            "states seen",
            "owner",
            "received",
        ],
    );
}

#[test]
fn column_picker_lists_columns_with_visibility_and_sort() {
    let (mut h, screen) = after_key(KeyCode::Char('s'));
    assert!(screen.contains("Columns — Processes"), "{screen}");
    assert!(screen.contains("[x] ▼ CPU%"), "{screen}");
    assert!(screen.contains("on-CPU time of all threads"), "{screen}");
    // Hide the highlighted column (CPU%) and sort by PID instead.
    h.press(KeyCode::Char(' '));
    for _ in 0..5 {
        h.press(KeyCode::Up);
    }
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert!(!screen.contains("CPU%"), "{screen}");
    assert!(screen.contains("▲PID"), "{screen}");
}

#[test]
fn finished_rows_are_dimmed_and_seeded_rows_marked() {
    let mut h = Harness::new();
    // A /proc-seeded process, and make sure at least one exited process is in view.
    let seeded = ProcessRow::from_procfs(
        ProcKey::new(999_999, 1),
        ProcState {
            start_ns: 1,
            comm: *b"seeded-proc\0\0\0\0\0",
            ..Default::default()
        },
    );
    h.app.store_mut().seed(&[seeded], &[]);
    h.app.apply(ModeMessage::Batch(ModeBatch {
        mode: ModeKind::Ring,
        changes: Vec::<RowChange>::new(),
        resync: None,
        counters: ModeCounters::default(),
    }));
    // Filter to show exited processes and the seeded one.
    h.press(KeyCode::Char('/'));
    h.type_text("state:exited");
    h.press(KeyCode::Enter);
    let buffer = h.draw();
    let screen = screen_text(&buffer);
    // Rows start at y = 3 (header, tabs, column titles); y = 3 holds the cursor, whose
    // reverse video wins, so look at the second row.
    let second_row: String = screen.lines().nth(4).unwrap().to_string();
    // Exited and reaped: the S column shows X (dead).
    assert!(second_row.contains(" X "), "{screen}");
    let x = second_row.find(" X ").unwrap() as u16 + 1;
    assert!(
        buffer[(x, 4)].modifier.contains(Modifier::DIM),
        "exited rows are dimmed"
    );
    h.press(KeyCode::Char('/'));
    h.press(KeyCode::Esc);
    h.press(KeyCode::Char('/'));
    h.type_text("pid:999999");
    h.press(KeyCode::Enter);
    let buffer = h.draw();
    let (x, y) = find_below(&buffer, "999999", 3).unwrap();
    let line: String = (0..x).map(|i| buffer[(i, y)].symbol()).collect();
    assert!(line.starts_with('·'), "seeded marker in {line:?}");
}

#[test]
fn pause_shows_the_badge() {
    let (mut h, screen) = after_key(KeyCode::Char(' '));
    assert!(
        screen.lines().next().unwrap().contains("PAUSED"),
        "{screen}"
    );
    assert!(screen.contains("Space resume"), "{screen}");
    h.press(KeyCode::Char('F'));
    assert!(h.screen().lines().next().unwrap().contains("FOLLOW"));
}

#[test]
fn every_built_in_theme_draws() {
    let mut h = Harness::new();
    let mut names = Vec::new();
    for _ in 0..5 {
        names.push(h.app.theme().name.clone());
        let screen = h.screen();
        assert!(screen.contains("PID"));
        h.press(KeyCode::Char('t'));
    }
    assert_eq!(
        names,
        ["default", "light", "high-contrast", "monochrome", "nord"]
    );
    assert_eq!(h.app.theme().name, "default", "the cycle wraps");
    assert!(h.screen().contains("theme: default"));
    assert_eq!(PROCESS_COLUMNS.len(), 20);
}

#[test]
fn probe_notes_stay_visible_in_the_footer() {
    let mut h = Harness::new();
    h.app.set_notes(vec![
        "optional tracepoint `sock_send_length` unavailable: byte counts will stay 0".into(),
    ]);
    let screen = h.screen();
    assert!(
        screen.contains("⚠ optional tracepoint `sock_send_length` unavailable"),
        "{screen}"
    );
    // A key press (and its transient status) does not hide the note.
    h.press(KeyCode::Char('t'));
    assert!(screen_text(&h.draw()).contains("⚠ optional tracepoint"));
}

#[test]
fn status_messages_expire_on_the_app_clock() {
    use bpftop_ordered::dashboard::app::{Control, STATUS_NS};
    let mut h = Harness::new();
    let t0 = h.source.now_ns();
    h.app.set_now(t0);
    h.press(KeyCode::Char('t'));
    assert!(h.screen().contains("theme: light"), "{}", h.screen());
    // Still there just before its time (clock moved by the app, no sleeping).
    h.app.set_now(t0 + STATUS_NS - 1);
    assert!(h.screen().contains("theme: light"));
    // Gone once the clock passes it, also before the once-a-second tick ran.
    h.app.set_now(t0 + STATUS_NS);
    assert!(!h.screen().contains("theme: light"), "{}", h.screen());
    // The tick that drops it asks for a redraw (the loop draws only on ticks it is told of);
    // a tick with nothing to drop does not.
    h.press(KeyCode::Char('t'));
    let shown_at = t0 + STATUS_NS;
    assert!(h.screen().contains("theme: high-contrast"));
    assert_eq!(h.app.on_second(shown_at + SECOND), Control::Unchanged);
    assert!(h.screen().contains("theme: high-contrast"));
    assert_eq!(h.app.on_second(shown_at + STATUS_NS), Control::Redraw);
    assert!(!h.screen().contains("theme: high-contrast"));
    assert_eq!(
        h.app.on_second(shown_at + STATUS_NS + SECOND),
        Control::Unchanged
    );
}

/// A connection row as the probes would report it.
fn connection_row(
    key: probe_common::ConnKey,
    state: probe_common::ConnState,
) -> bridge::contract::ConnectionRow {
    bridge::contract::ConnectionRow {
        key,
        state: bridge::contract::KernelState::info(&state),
        seq: 0,
        changed_ns: 0,
        origin: RowOrigin::Kernel,
    }
}

/// The command line, memory and cgroup fields of a process: the COMMAND and VIRT/MEM% cells,
/// and the detail pane's command line, virtual size and share of memory; a kernel thread's
/// command is its name in brackets; an unknown line is `?`.
#[test]
fn command_line_and_memory_columns_and_detail() {
    use bridge::contract::ModeMessage;
    use probe_common::{proc_flags, Cmdline};
    let mut h = Harness::with_shape(bridge::synthetic::SyntheticShape::default(), 200, 50);
    let key = ProcKey::new(4321, 77);
    let mut comm = [0u8; 16];
    comm[..6].copy_from_slice(b"server");
    let state = ProcState {
        start_ns: 77,
        rss_bytes: 512 << 20,
        virt_bytes: 2 << 30,
        threads: 4,
        flags: proc_flags::RSS_KNOWN | proc_flags::FIRST_SEEN_RUNNING,
        comm,
        ..Default::default()
    };
    let mut kthread = state;
    kthread.flags = proc_flags::KERNEL_THREAD | proc_flags::FIRST_SEEN_RUNNING;
    kthread.comm[..6].copy_from_slice(b"kwork\0");
    let mut unknown = state;
    unknown.comm[..6].copy_from_slice(b"orphan");
    h.app.store_mut().seed(
        &[
            bridge::contract::Row::from_procfs(key, state),
            bridge::contract::Row::from_procfs(ProcKey::new(4322, 78), kthread),
            bridge::contract::Row::from_procfs(ProcKey::new(4323, 79), unknown),
        ],
        &[],
    );
    let mut args = Cmdline::default();
    let text = b"/usr/sbin/server --port 8080\0";
    args.bytes[..text.len()].copy_from_slice(text);
    args.len = text.len() as u32;
    h.app.apply(ModeMessage::CommandLines(vec![(key, args)]));
    h.press(KeyCode::Char('/'));
    h.type_text("pid>=4321 pid<=4323");
    h.press(KeyCode::Enter);
    let screen = h.screen();
    let line = |pid: &str| {
        screen
            .lines()
            .find(|l| l.trim_start_matches(['·', ' ']).starts_with(pid))
            .unwrap_or_else(|| panic!("no row {pid}:\n{screen}"))
            .to_string()
    };
    let server = line("4321");
    assert!(server.contains("/usr/sbin/server --port 8080"), "{server}");
    assert!(
        server.contains("512.0 MiB") && server.contains("2.00 GiB"),
        "{server}"
    );
    // 512 MiB of the harness host's 8 GiB.
    assert!(server.contains(" 6.2 "), "MEM%: {server}");
    assert!(line("4322").contains("[kwork]"), "{screen}");
    assert!(line("4323").trim_end().ends_with('?'), "{screen}");
    h.press(KeyCode::Char('/'));
    h.type_text("cmd:--port");
    h.press(KeyCode::Enter);
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert_shows(
        &screen,
        &[
            "command line",
            "/usr/sbin/server --port 8080",
            "virtual",
            "2147483648 bytes, VmSize",
            "6.2% of memory",
            "cgroup",
        ],
    );
}

#[test]
fn endpoints_read_as_ss_writes_them_in_the_table_and_the_detail_pane() {
    use probe_common::{conn_flags, ConnKey, ConnState};
    let mut h = Harness::new();
    // An IPv6 loopback connection whose owner is unknown, and an IPv4 one.
    let v6 = ConnKey::ipv6(
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        47020,
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        8080,
    );
    let v4 = ConnKey::ipv4([127, 0, 0, 1], 47021, [127, 0, 0, 1], 8080);
    let established = ConnState {
        tcp_state: 1,
        flags: conn_flags::BYTES_UNKNOWN,
        ..Default::default()
    };
    h.app.store_mut().seed(
        &[],
        &[
            connection_row(v6, established),
            connection_row(v4, established),
        ],
    );
    h.press(KeyCode::Tab);
    h.press(KeyCode::Char('/'));
    h.type_text("port:8080");
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert_shows(&screen, &["[::1]:47020", "[::1]:8080", "127.0.0.1:47021"]);
    let v6_line = screen.lines().find(|l| l.contains("[::1]:47020")).unwrap();
    assert!(v6_line.contains(" ? "), "unknown owner is ?: {v6_line}");
    // The detail pane of the IPv6 row: the same rendering.
    while h
        .app
        .cursor_connection()
        .is_some_and(|c| c.key.sport != 47020)
    {
        h.press(KeyCode::Down);
    }
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert_shows(
        &screen,
        &[
            "Connection [::1]:47020 → [::1]:8080",
            "[::1]:47020",
            "? (never seen in process context)",
        ],
    );
    h.press(KeyCode::Esc);
    // A listener's remote is `*:*`, as dump --format table prints it.
    h.press(KeyCode::Char('/'));
    h.press(KeyCode::Esc);
    h.press(KeyCode::Char('/'));
    h.type_text("state:LISTEN");
    h.press(KeyCode::Enter);
    let screen = h.screen();
    let listeners: Vec<&str> = screen.lines().filter(|l| l.contains("LISTEN ")).collect();
    assert!(!listeners.is_empty(), "{screen}");
    for line in listeners {
        assert!(line.contains(" *:* "), "{line}");
    }
}

#[test]
fn local_and_remote_are_as_wide_as_the_widest_endpoint_in_view() {
    use bpftop_ordered::model::columns::endpoint;
    let mut h = Harness::with_shape(Default::default(), 200, 40);
    h.press(KeyCode::Tab);
    let buffer = h.draw();
    let screen = screen_text(&buffer);
    let range = h.app.connection_view().visible_range();
    let in_view: Vec<_> = h.app.connection_view().order()[range]
        .iter()
        .map(|k| h.app.connections_table().get(k).unwrap().clone())
        .collect();
    let widest = |f: &dyn Fn(&bridge::contract::ConnectionRow) -> String| {
        in_view.iter().map(|r| f(r).len()).max().unwrap() as u16
    };
    let local = widest(&|r| endpoint(r.saddr(), r.key.sport));
    let remote = widest(&|r| endpoint(r.daddr(), r.key.dport));
    // The synthetic world has IPv6 rows, so the widest is not the IPv4 width.
    assert!(local < 30 && remote < 30, "{local} {remote}");
    let (local_x, y) = find(&buffer, "LOCAL").unwrap();
    let (remote_x, _) = find(&buffer, "REMOTE").unwrap();
    let (state_x, _) = find_below(&buffer, "STATE", y).unwrap();
    assert_eq!(remote_x - local_x, local.max(9) + 1, "{screen}");
    assert_eq!(state_x - remote_x, remote.max(9) + 1, "{screen}");
    // Every endpoint in view is shown whole (no ellipsis in those columns).
    for row in &in_view {
        assert!(
            screen.contains(&endpoint(row.saddr(), row.key.sport)),
            "{screen}"
        );
    }
    // A click on the REMOTE title sorts by REMOTE: hit-testing uses the drawn widths.
    h.app
        .handle_event(&Event::Mouse(crossterm::event::MouseEvent {
            kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
            column: remote_x + 1,
            row: y,
            modifiers: crossterm::event::KeyModifiers::NONE,
        }));
    assert!(h.screen().contains("REMOTE▲"), "{}", h.screen());
}

#[test]
fn the_light_theme_paints_its_own_background_everywhere() {
    use ratatui::style::Color;
    let mut h = Harness::new();
    h.press(KeyCode::Char('t'));
    assert_eq!(h.app.theme().name, "light");
    // On a dark terminal, a cell left at the terminal's default background would show the
    // light theme's dark text on dark: every cell must carry a background of its own, also
    // inside a popup (help).
    for overlay in [None, Some(KeyCode::Char('?'))] {
        if let Some(key) = overlay {
            h.press(key);
        }
        let buffer = h.draw();
        let area = buffer.area;
        let unpainted: Vec<(u16, u16)> = (area.y..area.bottom())
            .flat_map(|y| (area.x..area.right()).map(move |x| (x, y)))
            .filter(|&(x, y)| matches!(buffer[(x, y)].bg, Color::Reset))
            .collect();
        assert!(
            unpainted.is_empty(),
            "{} cells without a background (first {:?}) with overlay {overlay:?}:\n{}",
            unpainted.len(),
            unpainted.first(),
            screen_text(&buffer)
        );
    }
}

#[test]
fn help_text_is_never_cut_at_the_box_edge() {
    // 80 columns: narrower than the longest help line, so lines wrap instead of being cut;
    // every word of the help is on screen somewhere while scrolling through it.
    let mut h = Harness::with_shape(bridge::synthetic::SyntheticShape::default(), 80, 30);
    h.press(KeyCode::Char('?'));
    let words: Vec<String> = help_lines(&h.app)
        .iter()
        .flat_map(|l| {
            l.to_string()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut seen = String::new();
    for _ in 0..120 {
        seen.push_str(&h.screen());
        h.press(KeyCode::Down);
    }
    let missing: Vec<&String> = words
        .iter()
        .filter(|w| !seen.contains(w.as_str()))
        .collect();
    assert!(missing.is_empty(), "cut or unreachable: {missing:?}");
}

#[test]
fn p_collapses_the_mode_panel_to_one_line_and_back() {
    let mut h = Harness::new();
    let rows_before = h
        .screen()
        .lines()
        .filter(|l| l.contains("root") || l.contains("www-data"))
        .count();
    assert!(h.screen().contains("┌ 1 ring ◆ shown"));
    h.press(KeyCode::Char('p'));
    let screen = h.screen();
    assert!(!screen.contains("┌ 1 ring"), "{screen}");
    let summary = screen
        .lines()
        .find(|l| l.contains("1 ring◆"))
        .unwrap_or_else(|| panic!("{screen}"));
    for text in ["ev/s", "p99", "drops", "2 perf", "3 poll"] {
        assert!(summary.contains(text), "{text} in {summary}");
    }
    let rows_after = screen
        .lines()
        .filter(|l| l.contains("root") || l.contains("www-data"))
        .count();
    assert!(
        rows_after > rows_before,
        "the table gets the rows: {rows_before} → {rows_after}"
    );
    h.press(KeyCode::Char('p'));
    assert!(h.screen().contains("┌ 1 ring ◆ shown"));
}

/// Issue 10: the network columns. A process (pid 777001) with two open connections and a
/// closed one, and an earlier process with the same pid whose connection must not count for
/// it; one refresh to see them, one more after 10 MiB were sent and 5 MiB received.
#[test]
fn network_rates_and_per_process_totals_show_and_sort() {
    use bpftop_ordered::model::net::ProcessTraffic;
    use probe_common::{conn_flags, ConnKey};
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    let mut h = Harness::with_shape(Default::default(), 220, 40);
    let t0 = h.source.now_ns() + SECOND;
    let process = |start_ns: u64, exit_ns: Option<u64>| {
        ProcessRow::from_record(
            ProcKey::new(777_001, start_ns),
            ProcState {
                start_ns,
                exit_ns: exit_ns.unwrap_or(0),
                flags: exit_ns.map_or(0, |_| probe_common::proc_flags::EXITED),
                comm: *b"netproc\0\0\0\0\0\0\0\0\0",
                ..Default::default()
            },
            1 << 40,
            start_ns,
        )
    };
    let earlier = process(t0 - 60 * SECOND, Some(t0 - 40 * SECOND));
    let current = process(t0 - 30 * SECOND, None);
    let conn = |sport: u16, start_ns: u64, bytes: (u64, u64), closed: bool, at: u64, seq: u64| {
        let key = ConnKey::ipv4([127, 0, 0, 1], sport, [127, 0, 0, 1], 39_999);
        RowChange::Connection(bridge::contract::ConnectionRow {
            key,
            state: bridge::contract::ConnInfo {
                pid: 777_001,
                tcp_state: if closed { 7 } else { 1 },
                flags: conn_flags::OWNER_KNOWN | if closed { conn_flags::CLOSED } else { 0 },
                bytes_sent: bytes.0,
                bytes_received: bytes.1,
                start_ns,
                end_ns: if closed { at } else { 0 },
                ..Default::default()
            },
            seq,
            changed_ns: at,
            origin: RowOrigin::Kernel,
        })
    };
    let ring = |changes| {
        ModeMessage::Batch(ModeBatch {
            mode: ModeKind::Ring,
            changes,
            resync: None,
            counters: ModeCounters::default(),
        })
    };
    let started = t0 - 20 * SECOND;
    h.app.apply(ring(vec![
        RowChange::Process(earlier.clone()),
        RowChange::Process(current.clone()),
        // The earlier process's connection: 40 GiB that are not the current one's.
        conn(
            50_000,
            t0 - 50 * SECOND,
            (40 * GIB, 0),
            true,
            t0 - 45 * SECOND,
            1 << 40,
        ),
        conn(
            50_001,
            started,
            (50 * GIB, 0),
            false,
            t0 - SECOND / 2,
            1 << 40,
        ),
        conn(50_002, started, (0, GIB), false, t0 - SECOND / 2, 1 << 40),
        conn(50_003, started, (MIB, 0), true, t0 - 5 * SECOND, 1 << 40),
    ]));
    h.app.on_refresh(t0);
    let net = |h: &Harness| -> ProcessTraffic {
        h.app
            .metrics()
            .net(ModeKind::Ring)
            .processes
            .get(&current.key)
    };
    assert_eq!(net(&h).connections, 3);
    assert_eq!(net(&h).bytes, Some((50 * GIB + MIB, GIB)));
    assert_eq!(net(&h).rates, None, "first sight: no rate yet");
    // The filter shows only the process (PID 777001: both rows, the earlier one exited).
    h.press(KeyCode::Char('/'));
    h.type_text("pid:777001");
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert_shows(
        &screen,
        &["NET SENT", "NET RECV", "SENT/S", "RECV/S", "50.00 GiB"],
    );
    let line = |screen: &str, needle: &str| {
        screen
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in\n{screen}"))
            .to_string()
    };
    // The live process's row (the earlier one with the same pid has its own 40 GiB).
    let live_row = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains("netproc") && !l.contains("40.00 GiB"))
            .unwrap_or_else(|| panic!("the live netproc row in\n{screen}"))
            .to_string()
    };
    let row = live_row(&screen);
    assert!(
        row.contains("50.00 GiB") && row.contains("1.00 GiB"),
        "{row}"
    );
    assert!(
        row.trim_end().ends_with('?'),
        "rates unknown on first sight: {row}"
    );
    // The earlier process (exited, EXIT 0) with the same pid.
    let old = screen
        .lines()
        .find(|l| l.contains("netproc") && l != &row)
        .unwrap_or_else(|| panic!("the earlier netproc row in\n{screen}"));
    assert!(
        old.contains("40.00 GiB"),
        "the earlier process keeps its own: {old}"
    );
    // 10 MiB sent on one, 5 MiB received on the other, recorded at t0 + 0.9 s; the window
    // runs from t0 − 0.1 s (the horizon: refresh − flush period) to t0 + 0.9 s.
    h.app.apply(ring(vec![
        conn(
            50_001,
            started,
            (50 * GIB + 10 * MIB, 0),
            false,
            t0 + 9 * SECOND / 10,
            1 << 41,
        ),
        conn(
            50_002,
            started,
            (0, GIB + 5 * MIB),
            false,
            t0 + 9 * SECOND / 10,
            1 << 41,
        ),
    ]));
    h.app.on_refresh(t0 + SECOND);
    let rates = net(&h).rates.unwrap();
    assert!(
        (rates.0 - (10 * MIB) as f64).abs() < 1.0 && (rates.1 - (5 * MIB) as f64).abs() < 1.0,
        "{rates:?}"
    );
    assert_eq!(net(&h).bytes, Some((50 * GIB + 11 * MIB, GIB + 5 * MIB)));
    let screen = h.screen();
    let row = live_row(&screen);
    assert!(row.contains("10.0 MiB") && row.contains("5.0 MiB"), "{row}");
    // Sort by NET SENT, then by SENT/S: the process is on top (its 50 GiB and 10 MiB/s beat
    // the synthetic world's) once the filter is gone.
    h.press(KeyCode::Char('/'));
    h.press(KeyCode::Esc);
    for (title, top) in [("NET SENT", "50.01 GiB"), ("SENT/S", "10.0 MiB")] {
        let screen = sorted_by(&mut h, title);
        let first = screen.lines().nth(3).unwrap();
        assert!(
            first.contains("netproc") && first.contains(top),
            "sorted by {title}: {first}\n{screen}"
        );
    }
    // The detail pane has the totals and the rates.
    h.press(KeyCode::Enter);
    assert_shows(
        &h.screen(),
        &[
            "net sent",
            &format!("({} bytes), 3 connections", 50 * GIB + 11 * MIB),
            "net received",
            "net now",
            "10.0 MiB/s sent, 5.0 MiB/s received",
        ],
    );
    h.press(KeyCode::Esc);
    // Connections: SENT/S and RECV/S beside the totals; the closed one reads 0 B.
    h.press(KeyCode::Tab);
    h.press(KeyCode::Char('/'));
    h.type_text("port:39999");
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert_shows(&screen, &["SENT/S", "RECV/S"]);
    let titles = screen.lines().nth(2).unwrap();
    let recv_x = titles.find("RECV ").unwrap();
    let rate_x = titles.find("SENT/S").unwrap();
    assert!(
        rate_x > recv_x,
        "rates after the totals (and AGE): {titles}"
    );
    assert!(line(&screen, ":50001").contains("10.0 MiB"));
    assert!(line(&screen, ":50002").contains("5.0 MiB"));
    assert!(
        line(&screen, ":50003").contains("0 B        0 B"),
        "{screen}"
    );
    for (title, top) in [("SENT/S", ":50001"), ("RECV/S", ":50002")] {
        let screen = sorted_by(&mut h, title);
        let first = screen.lines().nth(3).unwrap();
        assert!(first.contains(top), "sorted by {title}: {first}\n{screen}");
    }
}

/// Presses `>` until the table is sorted by the column titled `title` (high to low); returns
/// the screen.
fn sorted_by(h: &mut Harness, title: &str) -> String {
    let marked = format!("▼{title}");
    for _ in 0..20 {
        if h.screen().contains(&marked) {
            break;
        }
        h.press(KeyCode::Char('>'));
    }
    let screen = h.screen();
    assert!(screen.contains(&marked), "{screen}");
    screen
}

/// A harness of the default synthetic world after one key press, and its screen.
fn after_key(key: KeyCode) -> (Harness, String) {
    let mut h = Harness::new();
    h.press(key);
    let screen = h.screen();
    (h, screen)
}

#[test]
fn probe_cost_overlay_shows_each_program_and_the_modes_cpu() {
    use bridge::probe_cost::{CostReport, ProgramCost};
    let mut h = Harness::new();
    h.press(KeyCode::Char('o'));
    // Without a session there is no monitor: the overlay says so instead of inventing figures.
    let screen = h.screen();
    assert_shows(
        &screen,
        &[
            "Own cost",
            "PROGRAM",
            "RUNS/S",
            "AVG NS",
            "no probes in this view",
        ],
    );
    h.app.set_probe_cost_report(CostReport {
        programs: vec![
            ProgramCost {
                name: "sched_switch".into(),
                runs_per_s: Some(12_000.0),
                avg_ns_per_run: Some(410.0),
                cpu_percent: Some(0.49),
            },
            ProgramCost {
                name: "task_rename".into(),
                runs_per_s: None,
                avg_ns_per_run: None,
                cpu_percent: None,
            },
        ],
        window_ns: 1_000_000_000,
        error: None,
        stats_on: true,
    });
    let screen = h.screen();
    let switch = screen
        .lines()
        .find(|l| l.contains("sched_switch"))
        .unwrap_or_else(|| panic!("{screen}"));
    let cells: Vec<&str> = switch.split_whitespace().collect();
    assert!(
        cells.windows(3).any(|w| w == ["12k", "410", "0.49"]),
        "{switch}"
    );
    let rename = screen.lines().find(|l| l.contains("task_rename")).unwrap();
    assert_eq!(
        rename.matches('–').count(),
        3,
        "unknown stays unknown: {rename}"
    );
    // The total is unknown as soon as one program's figure is.
    let total = screen.lines().find(|l| l.contains("all probes")).unwrap();
    assert!(total.contains('–'), "{total}");
    assert_shows(&screen, &["ring ", "perf ", "poll ", "whole program"]);
    // Any key closes it.
    h.press(KeyCode::Char('x'));
    assert!(!h.screen().contains("Own cost"));
}

#[test]
fn the_header_says_when_ingestion_falls_behind() {
    let mut h = Harness::new();
    assert!(!h.screen().contains("BEHIND"));
    // An event-loop pass that used its whole budget and left 37 batches queued.
    h.app.record_ingest_pass(true, 37);
    h.app.on_second(100 * SECOND);
    assert!(h.screen().contains("BEHIND: 37 queued"), "{}", h.screen());
    // A second in which every pass drained the queue clears it.
    h.app.record_ingest_pass(false, 0);
    h.app.on_second(101 * SECOND);
    assert!(!h.screen().contains("BEHIND"));
}

/// Per-row figures (CPU%, connection rates) are kept for the visible mode only (issue 11's
/// memory bound): switching mode empties the others, and the new mode's CPU% is unknown —
/// never 0 — until its second sample.
#[test]
fn per_row_figures_are_kept_for_the_visible_mode_only() {
    let mut h = Harness::new();
    let metrics = h.app.metrics();
    let (ring, perf) = (ModeKind::Ring, ModeKind::Perf);
    assert_eq!(h.app.mode(), ring);
    assert!(metrics.process_cpu(ring).tracked() > 0);
    assert!(metrics.net(ring).connections.tracked() > 0);
    assert_eq!(metrics.process_cpu(perf).tracked(), 0);
    assert_eq!(metrics.net(perf).connections.tracked(), 0);
    let busy = |h: &Harness, mode: ModeKind| {
        let cpu = h.app.metrics().process_cpu(mode);
        h.app
            .store()
            .mode(mode)
            .processes
            .rows()
            .iter()
            .filter(|r| cpu.percent(&r.key).is_some_and(|p| p > 0.0))
            .count()
    };
    assert!(busy(&h, ring) > 0, "ring has CPU% figures");

    h.press(KeyCode::Char('2'));
    assert_eq!(h.app.mode(), perf);
    let metrics = h.app.metrics();
    assert_eq!(metrics.process_cpu(ring).tracked(), 0, "ring emptied");
    assert_eq!(metrics.net(ring).connections.tracked(), 0);
    let rows = h.app.store().mode(perf).processes.rows().len();
    assert_eq!(
        metrics.process_cpu(perf).tracked(),
        rows,
        "perf has a baseline"
    );
    let known = h
        .app
        .store()
        .mode(perf)
        .processes
        .rows()
        .iter()
        .filter(|r| metrics.process_cpu(perf).percent(&r.key).is_some())
        .count();
    assert_eq!(known, 0, "one sample: every CPU% is unknown");

    h.step();
    assert!(
        busy(&h, perf) > 0,
        "perf's CPU% known after its second sample"
    );
}
