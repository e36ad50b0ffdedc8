//! Key and mouse handling on the app state (synthetic data, no kernel): sort cycling and
//! inversion, filter parse errors keeping the last good filter, selection following its entity
//! across re-sorts, follow keeping it in view, pause freezing the view while the store changes,
//! mode and tab switching, quitting; and the event loop itself driven through channels.

mod support;

use std::time::Duration;

use bpftop_ordered::{
    dashboard::{
        app::{Control, Overlay, Tab},
        event_loop::{self, LoopInputs},
    },
    model::columns::{column_index, PROCESS_COLUMNS},
};
use bridge::{
    contract::{ModeKind, ModeMessage},
    synthetic::SyntheticShape,
};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use probe_common::ProcKey;
use support::{Harness, SECOND};

fn column(name: &str) -> usize {
    column_index(PROCESS_COLUMNS, name).unwrap()
}

/// Presses `>` until the processes sort by PID (wrapping around past the last column), as
/// many times as there are columns after the current one.
fn next_until_pid(h: &mut Harness) {
    for _ in 0..PROCESS_COLUMNS.len() {
        if h.app.process_view().sort.column == column("pid") {
            return;
        }
        h.press(KeyCode::Char('>'));
    }
}

/// Pids of the rows in view order.
fn pids(h: &Harness) -> Vec<u32> {
    h.app
        .process_view()
        .order()
        .iter()
        .map(|k| k.tgid)
        .collect()
}

#[test]
fn sort_cycles_through_visible_columns_and_inverts() {
    let mut h = Harness::new();
    assert_eq!(h.app.process_view().sort.column, column("cpu"));
    assert!(h.app.process_view().sort.descending);
    h.press(KeyCode::Char('>'));
    assert_eq!(h.app.process_view().sort.column, column("cpu_time"));
    assert!(
        h.app.process_view().sort.descending,
        "numbers start high→low"
    );
    next_until_pid(&mut h);
    // Wrapped around to the first column, which starts low→high.
    assert_eq!(h.app.process_view().sort.column, column("pid"));
    assert!(!h.app.process_view().sort.descending);
    let ascending = pids(&h);
    assert!(ascending.windows(2).all(|w| w[0] <= w[1]), "{ascending:?}");
    h.press(KeyCode::Char('I'));
    let descending = pids(&h);
    assert!(descending.windows(2).all(|w| w[0] >= w[1]));
    h.press(KeyCode::Char('<'));
    // Back from the first column to the last.
    assert_eq!(h.app.process_view().sort.column, PROCESS_COLUMNS.len() - 1);
}

#[test]
fn filter_errors_keep_the_last_good_filter_and_esc_clears() {
    let mut h = Harness::new();
    let all = pids(&h).len();
    h.press(KeyCode::Char('/'));
    assert!(h.app.prompt().is_some());
    h.type_text("comm:sleep");
    let filtered = pids(&h);
    assert!(!filtered.is_empty() && filtered.len() < all);
    let comms: Vec<String> = h
        .app
        .process_view()
        .order()
        .iter()
        .map(|k| h.app.processes_table().get(k).unwrap().comm())
        .collect();
    assert!(comms.iter().all(|c| c.contains("sleep")), "{comms:?}");
    // `q` is text inside the prompt, not quit.
    assert_eq!(h.press(KeyCode::Char('q')), Control::Redraw);
    h.press(KeyCode::Backspace);
    h.app.handle_event(&Event::Paste(" pid:x".into()));
    h.draw();
    assert!(h.app.process_view().filter.error.is_some());
    assert_eq!(pids(&h), filtered, "the last good filter stays in force");
    // Enter closes the prompt and drops the invalid text.
    h.press(KeyCode::Enter);
    assert!(h.app.prompt().is_none());
    assert_eq!(h.app.process_view().filter.text, "comm:sleep");
    assert!(h.screen().contains("last good filter stays"));
    // Esc in the prompt clears the filter.
    h.press(KeyCode::Char('/'));
    h.press(KeyCode::Esc);
    assert_eq!(pids(&h).len(), all);
    assert!(h.app.process_view().filter.applied_text.is_empty());
    // Esc outside the prompt clears the filter too.
    h.press(KeyCode::Char('/'));
    h.type_text("comm:sleep");
    h.press(KeyCode::Enter);
    // Let the earlier status message expire: it takes footer space.
    h.app.on_second(h.source.now_ns() + 10 * SECOND);
    let screen = h.screen();
    assert!(screen.contains("Esc clear filter"), "{screen}");
    assert_eq!(h.press(KeyCode::Esc), Control::Redraw);
    assert_eq!(pids(&h).len(), all);
    assert_eq!(h.press(KeyCode::Esc), Control::Unchanged);
}

#[test]
fn a_half_typed_term_is_not_applied() {
    let mut h = Harness::new();
    h.press(KeyCode::Char('/'));
    h.type_text("comm:sleep");
    let sleeping = pids(&h);
    assert!(!sleeping.is_empty());
    // ` pid` alone would be plain text matching nothing; once `pid:` shows it is a field
    // term, the filter in force is `comm:sleep` again, with the error in the prompt.
    h.type_text(" pid:abc");
    assert_eq!(h.app.process_view().filter.text, "comm:sleep pid:abc");
    assert!(h.app.process_view().filter.error.is_some());
    assert_eq!(
        pids(&h),
        sleeping,
        "no partial filter: `comm:sleep pid` is not in force"
    );
    assert_eq!(
        h.app.process_view().filter.applied_text.trim(),
        "comm:sleep"
    );
    let buffer = h.draw();
    let screen = support::screen_text(&buffer);
    support::assert_shows(&screen, &["✗ pid must be a number", "comm:sleep"]);
    assert!(!screen.contains("0 of"), "{screen}");
    // The bad term is drawn in the error style.
    let (x, y) = support::find_below(&buffer, "pid:abc", 39).expect("prompt line");
    assert_eq!(buffer[(x, y)].fg, h.app.theme().error.fg.unwrap());
    // Fixing it applies it.
    for _ in 0..3 {
        h.press(KeyCode::Backspace);
    }
    let first = sleeping[0];
    h.type_text(&first.to_string());
    assert!(h.app.process_view().filter.error.is_none());
    assert_eq!(pids(&h), vec![first]);
}

/// Index of the selected row in the processes view.
fn cursor_index(h: &Harness) -> usize {
    h.app.process_view().cursor_index().unwrap()
}

/// Indices of the rows whose comm contains `needle`, in view order.
fn rows_with_comm(h: &Harness, needle: &str) -> Vec<usize> {
    let view = h.app.process_view();
    view.order()
        .iter()
        .enumerate()
        .filter(|(_, k)| {
            h.app
                .processes_table()
                .get(k)
                .is_some_and(|r| r.comm().contains(needle))
        })
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn search_moves_the_selection_without_hiding_rows_and_wraps() {
    let mut h = Harness::with_shape(SyntheticShape::default(), 120, 60);
    h.app.toggle_pause(); // a still picture: the synthetic world does not move under the test
    h.draw();
    let order = h.app.process_view().order().to_vec();
    let matches = rows_with_comm(&h, "nginx");
    assert!(
        matches.len() >= 2,
        "the synthetic world has several nginx: {matches:?}"
    );
    assert_eq!(cursor_index(&h), 0);
    // F3 opens the prompt; typing searches from the selected row on.
    h.press(KeyCode::F(3));
    assert!(h.app.search().open);
    support::assert_shows(&h.screen(), &["search: "]);
    h.type_text("NGI");
    assert_eq!(
        cursor_index(&h),
        matches[0],
        "case-insensitive, first match"
    );
    // `n` is text in the prompt; F3 and ↓ go to the next match.
    h.press(KeyCode::F(3));
    assert_eq!(cursor_index(&h), matches[1]);
    h.press(KeyCode::Up);
    assert_eq!(cursor_index(&h), matches[0]);
    h.press(KeyCode::Enter);
    assert!(!h.app.search().open);
    assert_eq!(
        h.app.process_view().order(),
        order,
        "no row hidden or moved"
    );
    let screen = h.screen();
    assert!(
        screen.contains("next/prev match"),
        "footer offers n/N: {screen}"
    );
    // `n` / `N` outside the prompt: next, previous, wrapping at both ends.
    for expected in matches.iter().skip(1) {
        h.press(KeyCode::Char('n'));
        assert_eq!(cursor_index(&h), *expected);
    }
    h.press(KeyCode::Char('n'));
    assert_eq!(cursor_index(&h), matches[0], "wrapped to the first match");
    assert!(h.screen().contains("search wrapped around: NGI"));
    h.press(KeyCode::Char('N'));
    assert_eq!(
        cursor_index(&h),
        *matches.last().unwrap(),
        "wrapped backwards"
    );
    assert_eq!(h.app.process_view().order(), order);
    // The selected row is drawn in view.
    let comm = h.app.cursor_process().unwrap().comm();
    assert_eq!(comm, "nginx");
    // Not found: the prompt says so and the selection stays.
    let before = cursor_index(&h);
    h.press(KeyCode::Char('f'));
    h.type_text("qq-no-such-row");
    assert!(h.app.search().not_found);
    support::assert_shows(&h.screen(), &["search: qq-no-such-row", "✗ not found"]);
    assert_eq!(cursor_index(&h), before);
    h.press(KeyCode::Esc);
    h.press(KeyCode::Char('n'));
    assert!(h.screen().contains("not found: qq-no-such-row"));
    assert_eq!(cursor_index(&h), before);
    assert_eq!(h.app.process_view().order(), order);
}

#[test]
fn search_keys_rebind_and_show_in_help() {
    let settings = bpftop_ordered::dashboard::app::AppSettings {
        keymap: bpftop_ordered::dashboard::keymap::KeyMap::with_overrides(&[(
            bpftop_ordered::dashboard::keymap::Action::Search,
            vec![bpftop_ordered::dashboard::keymap::KeyChord::parse("ctrl-f").unwrap()],
        )])
        .unwrap(),
        ..Default::default()
    };
    let mut h = Harness::with_settings(SyntheticShape::default(), 120, 80, settings);
    h.press(KeyCode::Char('f'));
    assert!(!h.app.search().open, "`f` is no longer bound");
    h.app
        .handle_key(&KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL));
    assert!(h.app.search().open);
    h.press(KeyCode::Esc);
    // `n` before any search says how to start one.
    h.app.on_second(h.source.now_ns() + 10 * SECOND);
    h.press(KeyCode::Char('n'));
    assert!(h
        .screen()
        .contains("nothing to search for yet: Ctrl-F searches"));
    h.press(KeyCode::Char('?'));
    let screen = h.screen();
    support::assert_shows(
        &screen,
        &[
            "Ctrl-F",
            "search: select the next row showing the text",
            "n / N",
        ],
    );
}

#[test]
fn prompt_editing_keys() {
    let mut h = Harness::new();
    h.press(KeyCode::Char('/'));
    h.type_text("comm:sh");
    h.press(KeyCode::Left);
    h.press(KeyCode::Left);
    h.press(KeyCode::Char('b'));
    h.press(KeyCode::Char('a'));
    assert_eq!(h.app.process_view().filter.text, "comm:bash");
    h.press(KeyCode::Home);
    h.press(KeyCode::Delete);
    assert_eq!(h.app.process_view().filter.text, "omm:bash");
    h.app
        .handle_key(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!(h.app.process_view().filter.text, "");
}

#[test]
fn selection_follows_the_entity_across_a_resort() {
    let mut h = Harness::new();
    h.press(KeyCode::Down);
    h.press(KeyCode::Down);
    let picked: ProcKey = h.app.process_view().selected_key().unwrap();
    assert_eq!(h.app.process_view().cursor_index(), Some(2));
    // Re-sort by PID: the same process stays selected wherever it lands.
    next_until_pid(&mut h);
    assert_eq!(h.app.process_view().sort.column, column("pid"));
    assert_eq!(h.app.process_view().selected_key(), Some(picked));
    let index = h.app.process_view().cursor_index().unwrap();
    assert_eq!(h.app.process_view().order()[index], picked);
    // New data arrives and re-sorts by CPU: still the same process.
    h.press(KeyCode::Char('<'));
    h.step();
    h.draw();
    assert_eq!(h.app.process_view().selected_key(), Some(picked));
}

#[test]
fn follow_keeps_the_selected_entity_in_view() {
    let shape = SyntheticShape {
        processes: 300,
        ..SyntheticShape::default()
    };
    let mut h = Harness::with_shape(shape, 100, 30);
    let page = h.app.process_view().visible_range().len();
    // Sort by PID and select the lowest pid (pid 1, long-lived).
    next_until_pid(&mut h);
    h.press(KeyCode::Home);
    let picked = h.app.process_view().selected_key().unwrap();
    assert_eq!(picked.tgid, 1);
    h.press(KeyCode::Char('F'));
    assert!(h.app.following());
    // Invert: pid 1 is now the last row, far below the first page; follow scrolls there.
    h.press(KeyCode::Char('I'));
    let range = h.app.process_view().visible_range();
    let index = h.app.process_view().cursor_index().unwrap();
    assert_eq!(h.app.process_view().selected_key(), Some(picked));
    assert!(range.contains(&index), "{range:?} holds {index}");
    assert!(range.start > page);
    // Without follow the viewport stays where it was.
    h.press(KeyCode::Char('F'));
    assert!(!h.app.following());
    h.press(KeyCode::Char('I'));
    assert_eq!(h.app.process_view().cursor_index(), Some(0));
    assert_eq!(h.app.process_view().visible_range().start, range.start);
    assert!(h.screen().contains("follow off"));
}

#[test]
fn pause_freezes_the_view_while_the_store_changes() {
    let mut h = Harness::new();
    let poll_at_pause: Vec<_> = h
        .app
        .store()
        .mode(ModeKind::Poll)
        .processes
        .rows()
        .iter()
        .cloned()
        .collect();
    h.press(KeyCode::Char(' '));
    assert!(h.app.paused());
    let frozen_order = pids(&h);
    let frozen_len = h.app.processes_table().len();
    let frozen_screen = h.screen();
    for _ in 0..5 {
        h.step();
    }
    let live_len = h.app.store().mode(ModeKind::Ring).processes.rows().len();
    assert_ne!(live_len, frozen_len, "the store moved on");
    assert_eq!(h.app.processes_table().len(), frozen_len);
    assert_eq!(pids(&h), frozen_order);
    // The table part of the screen is identical (uptime in the header moves: it is the clock).
    let table = |s: &str| s.lines().skip(1).take(20).collect::<Vec<_>>().join("\n");
    assert_eq!(table(&h.screen()), table(&frozen_screen));
    // Scrolling still works while paused.
    h.press(KeyCode::Down);
    assert_eq!(h.app.process_view().cursor_index(), Some(1));
    // Switching modes shows that mode's frozen table (rebuilt from what the pause kept of
    // it: every row as poll had it at the pause), and back again the first one, figures and all.
    h.press(KeyCode::Char('3'));
    assert_eq!(h.app.processes_table().len(), frozen_len);
    let poll_shown: Vec<_> = h.app.processes_table().iter().cloned().collect();
    assert_eq!(poll_shown, poll_at_pause);
    h.press(KeyCode::Char('1'));
    h.press(KeyCode::Up);
    assert_eq!(table(&h.screen()), table(&frozen_screen));
    h.press(KeyCode::Char(' '));
    assert!(!h.app.paused());
    assert_eq!(h.app.processes_table().len(), live_len);
}

#[test]
fn modes_and_tabs_switch_instantly() {
    let mut h = Harness::new();
    assert_eq!(h.app.mode(), ModeKind::Ring);
    h.press(KeyCode::Char('2'));
    assert_eq!(h.app.mode(), ModeKind::Perf);
    h.press(KeyCode::Char('3'));
    assert_eq!(h.app.mode(), ModeKind::Poll);
    h.press(KeyCode::Char('m'));
    assert_eq!(h.app.mode(), ModeKind::Ring);
    h.press(KeyCode::Char('1'));
    assert_eq!(h.app.mode(), ModeKind::Ring);
    h.press(KeyCode::Tab);
    assert_eq!(h.app.tab(), Tab::Connections);
    h.press(KeyCode::BackTab);
    assert_eq!(h.app.tab(), Tab::Processes);
}

#[test]
fn quit_keys() {
    let mut h = Harness::new();
    assert_eq!(h.press(KeyCode::Char('q')), Control::Quit);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(h.app.handle_key(&ctrl_c), Control::Quit);
    // Ctrl-C quits from inside the prompt and popups too.
    h.press(KeyCode::Char('/'));
    assert_eq!(h.app.handle_key(&ctrl_c), Control::Quit);
    // In the help overlay, `q` closes the overlay.
    h.press(KeyCode::Esc);
    h.press(KeyCode::Char('?'));
    assert_eq!(h.press(KeyCode::Char('q')), Control::Redraw);
    assert_eq!(h.app.overlay(), Overlay::None);
}

fn click(column: u16, row: u16) -> Event {
    Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    })
}

#[test]
fn mouse_sorts_selects_scrolls_and_switches() {
    let mut h = Harness::new();
    let layout = *h.app.layout().unwrap();
    // Click the PID title (right-aligned in cells 1..8 of the title row).
    h.app
        .handle_event(&click(layout.table.x + 5, layout.table.y));
    h.draw();
    assert_eq!(h.app.process_view().sort.column, column("pid"));
    assert!(!h.app.process_view().sort.descending);
    h.app
        .handle_event(&click(layout.table.x + 5, layout.table.y));
    h.draw();
    assert!(h.app.process_view().sort.descending, "second click inverts");
    // Click the fourth row.
    h.app
        .handle_event(&click(layout.table.x + 20, layout.table.y + 4));
    h.draw();
    assert_eq!(h.app.process_view().cursor_index(), Some(3));
    assert!(h.app.process_view().selected_key().is_some());
    // Wheel down moves the selection by three.
    h.app.handle_event(&Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 10,
        row: 10,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(h.app.process_view().cursor_index(), Some(6));
    // Click the Connections tab, then the poll panel column.
    h.app.handle_event(&click(20, layout.tabs.y));
    assert_eq!(h.app.tab(), Tab::Connections);
    h.app
        .handle_event(&click(layout.panel.right() - 3, layout.panel.y + 2));
    assert_eq!(h.app.mode(), ModeKind::Poll);
    // Mouse moves change nothing (no redraw).
    let moved = Event::Mouse(MouseEvent {
        kind: MouseEventKind::Moved,
        column: 1,
        row: 1,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(h.app.handle_event(&moved), Control::Unchanged);
}

#[test]
fn event_loop_applies_data_redraws_on_keys_and_quits() {
    let mut h = Harness::new();
    let (senders, inputs) = loop_channels(None);
    // `senders` lives to the end: a closed signal channel would end the loop.
    let (key_sender, message_sender) = (&senders.keys, &senders.messages);
    let changes = h.source.step(SECOND);
    message_sender
        .send(ModeMessage::Batch(h.source.batch(ModeKind::Perf, &changes)))
        .unwrap();
    for code in [KeyCode::Char('2'), KeyCode::Tab, KeyCode::Char('q')] {
        key_sender
            .send(Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))))
            .unwrap();
    }
    let code =
        event_loop::run(&mut h.terminal, &mut h.app, inputs, Duration::from_secs(1)).unwrap();
    assert_eq!(code, 0);
    assert_eq!(h.app.mode(), ModeKind::Perf);
    assert_eq!(h.app.tab(), Tab::Connections);
    let screen = support::screen_text(h.terminal.backend().buffer());
    assert!(screen.contains("LOCAL"), "{screen}");
}

#[test]
fn event_loop_ends_on_a_signal_with_128_plus_its_number() {
    let mut h = Harness::new();
    let (senders, inputs) = loop_channels(None);
    senders.signals.send(libc::SIGTERM).unwrap();
    let code =
        event_loop::run(&mut h.terminal, &mut h.app, inputs, Duration::from_secs(1)).unwrap();
    assert_eq!(code, 128 + libc::SIGTERM);
}

/// A running kernel thread, as the probes report one.
fn kernel_thread(tgid: u32, name: &str) -> bridge::contract::ProcessRow {
    let mut comm = [0u8; probe_common::COMM_LEN];
    comm[..name.len()].copy_from_slice(name.as_bytes());
    bridge::contract::ProcessRow {
        key: ProcKey::new(tgid, 1),
        state: bridge::contract::ProcInfo {
            ppid: 2,
            start_ns: 1,
            task_state: 0x0402,
            flags: probe_common::proc_flags::KERNEL_THREAD,
            comm,
            ..Default::default()
        },
        seq: 0,
        changed_ns: 0,
        origin: bridge::contract::RowOrigin::Kernel,
    }
}

/// The tab bar line (second screen line).
fn tab_bar(h: &mut Harness) -> String {
    h.screen().lines().nth(1).unwrap().to_string()
}

#[test]
fn exited_rows_hide_and_come_back_with_counts_that_say_so() {
    let mut h = Harness::new();
    let table = |h: &Harness| h.app.processes_table().len();
    let exited = |h: &Harness| {
        h.app
            .processes_table()
            .iter()
            .filter(|r| r.is_exited())
            .count()
    };
    let total = table(&h);
    let gone = exited(&h);
    assert!(gone > 0, "the synthetic churn leaves exited rows");
    let bar = tab_bar(&mut h);
    assert!(bar.contains("all shown · ring"), "{bar}");
    assert_eq!(
        bar.matches(&total.to_string()).count(),
        1,
        "the row count appears once: {bar}"
    );

    assert_eq!(h.press(KeyCode::Char('E')), Control::Redraw);
    let shown = h.app.process_view().order();
    assert_eq!(shown.len(), total - gone);
    assert!(shown
        .iter()
        .all(|k| !h.app.processes_table().get(k).unwrap().is_exited()));
    let bar = tab_bar(&mut h);
    assert!(
        bar.contains(&format!(
            "{} of {total} · {gone} exited hidden · ring",
            total - gone
        )),
        "{bar}"
    );
    assert!(h
        .screen()
        .contains("exited processes and closed connections hidden"));

    // The filter narrows further; the counts keep both apart.
    h.press(KeyCode::Char('/'));
    h.type_text("comm:sleep");
    h.press(KeyCode::Enter);
    let matching = h.app.process_view().order().len();
    let bar = tab_bar(&mut h);
    assert!(
        bar.contains(&format!(
            "{matching} of {total} match `comm:sleep` · {gone} exited hidden"
        )),
        "{bar}"
    );
    h.press(KeyCode::Esc);

    // Closed connections hide with the same key.
    h.press(KeyCode::Tab);
    let closed = h
        .app
        .connections_table()
        .iter()
        .filter(|c| c.is_closed())
        .count();
    let connections = h.app.connections_table().len();
    assert_eq!(h.app.connection_view().order().len(), connections - closed);
    assert!(
        tab_bar(&mut h).contains(&format!("{closed} closed hidden")),
        "{}",
        tab_bar(&mut h)
    );
    h.press(KeyCode::Tab);

    // Again: everything is back, and the bar says only the total.
    h.press(KeyCode::Char('E'));
    assert_eq!(h.app.process_view().order().len(), table(&h));
    assert!(!tab_bar(&mut h).contains("hidden"));
    assert!(h
        .screen()
        .contains("exited processes and closed connections shown"));
}

#[test]
fn kernel_threads_hide_with_k_as_in_htop() {
    let mut h = Harness::new();
    h.app.store_mut().seed(
        &[kernel_thread(2, "kthreadd"), kernel_thread(77, "kdamond.0")],
        &[],
    );
    h.draw();
    let total = h.app.processes_table().len();
    let is_kthread =
        |h: &Harness, k: &ProcKey| h.app.processes_table().get(k).unwrap().is_kernel_thread();
    assert_eq!(
        h.app
            .process_view()
            .order()
            .iter()
            .filter(|k| is_kthread(&h, k))
            .count(),
        2
    );
    h.press(KeyCode::Char('K'));
    assert!(h.app.hide().kernel_threads);
    let order = h.app.process_view().order().to_vec();
    assert_eq!(order.len(), total - 2);
    assert!(order.iter().all(|k| !is_kthread(&h, k)));
    let bar = tab_bar(&mut h);
    assert!(
        bar.contains(&format!(
            "{} of {total} · 2 kernel threads hidden",
            total - 2
        )),
        "{bar}"
    );
    // Both toggles: one count of what is left out, both named.
    h.press(KeyCode::Char('E'));
    let hidden = total - h.app.process_view().order().len();
    assert!(
        tab_bar(&mut h).contains(&format!("{hidden} exited + kernel threads hidden")),
        "{}",
        tab_bar(&mut h)
    );
    h.press(KeyCode::Char('K'));
    h.press(KeyCode::Char('E'));
    assert_eq!(h.app.process_view().order().len(), total);
}

#[test]
fn the_selection_follows_its_entity_when_rows_hide() {
    let mut h = Harness::new();
    // Sort by PID so exited rows sit among the live ones, then pick a live row below some
    // exited ones.
    next_until_pid(&mut h);
    let order = h.app.process_view().order().to_vec();
    let live_after_exited = order
        .iter()
        .enumerate()
        .skip_while(|(_, k)| !h.app.processes_table().get(k).unwrap().is_exited())
        .find(|(_, k)| !h.app.processes_table().get(k).unwrap().is_exited())
        .map(|(i, _)| i)
        .expect("a live row after an exited one");
    h.press(KeyCode::Home);
    for _ in 0..live_after_exited {
        h.press(KeyCode::Down);
    }
    let picked = h.app.process_view().selected_key().unwrap();
    h.press(KeyCode::Char('E'));
    assert_eq!(h.app.process_view().selected_key(), Some(picked));
    let index = h.app.process_view().cursor_index().unwrap();
    assert!(
        index < live_after_exited,
        "it moved up as rows above it hid"
    );
    assert_eq!(h.app.process_view().order()[index], picked);
    h.press(KeyCode::Char('E'));
    assert_eq!(h.app.process_view().selected_key(), Some(picked));
    assert_eq!(h.app.process_view().cursor_index(), Some(live_after_exited));
}

#[test]
fn hide_toggles_start_from_the_config_and_rebind_like_other_keys() {
    use bpftop_ordered::{
        config::Config,
        dashboard::{settings::resolve_with, DashboardOptions},
        view::help::help_lines,
    };
    let config = Config::parse(
        std::path::Path::new("c.toml"),
        "[view]\nhide_exited = true\nhide_kernel_threads = true\n[keys]\nhide_exited = \"x\"\n",
    )
    .unwrap();
    let settings = resolve_with(&DashboardOptions::default(), config).unwrap();
    let mut h = Harness::with_settings(SyntheticShape::default(), 120, 40, settings.app);
    assert!(h.app.hide().exited && h.app.hide().kernel_threads);
    assert!(h.app.process_view().order().iter().all(|k| !h
        .app
        .processes_table()
        .get(k)
        .unwrap()
        .is_exited()));
    assert!(tab_bar(&mut h).contains("exited + kernel threads hidden"));
    // `E` no longer toggles; `x` does.
    assert_eq!(h.press(KeyCode::Char('E')), Control::Unchanged);
    h.press(KeyCode::Char('x'));
    assert!(!h.app.hide().exited);
    // The help shows the keys as bound.
    let help: String = help_lines(&h.app)
        .iter()
        .map(|l| l.to_string() + "\n")
        .collect();
    let line = |what: &str| help.lines().find(|l| l.contains(what)).unwrap().to_string();
    assert!(line("hide / show exited processes and closed connections").contains(" x "));
    assert!(line("hide / show kernel threads").contains(" K "));
}

#[test]
fn ctrl_z_and_sigtstp_suspend_then_the_loop_goes_on() {
    use std::{cell::Cell, rc::Rc};
    let mut h = Harness::new();
    let suspended = Rc::new(Cell::new(0));
    let counter = Rc::clone(&suspended);
    let (senders, inputs) = loop_channels(Some(Box::new(move || {
        counter.set(counter.get() + 1);
        Ok(())
    })));
    let key_sender = senders.keys.clone();
    senders.signals.send(libc::SIGTSTP).unwrap();
    let ctrl_z = KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL);
    key_sender.send(Ok(Event::Key(ctrl_z))).unwrap();
    // Quit only once both suspensions were handled, so the loop really went on after them.
    let quit_sender = key_sender.clone();
    let quitter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        quit_sender.send(Ok(Event::Key(q))).unwrap();
    });
    let code =
        event_loop::run(&mut h.terminal, &mut h.app, inputs, Duration::from_secs(1)).unwrap();
    quitter.join().unwrap();
    assert_eq!(code, 0, "q ends the loop after the suspensions");
    assert_eq!(suspended.get(), 2, "Ctrl-Z and SIGTSTP each suspend once");
    let screen = support::screen_text(h.terminal.backend().buffer());
    assert!(
        screen.contains("PID"),
        "the screen is redrawn after fg:\n{screen}"
    );
}

#[test]
fn comparisons_negation_and_or_through_the_prompt() {
    let mut h = Harness::new();
    h.app.toggle_pause();
    h.draw();
    let comm_of = |h: &Harness| -> Vec<(u32, String)> {
        h.app
            .process_view()
            .order()
            .iter()
            .map(|k| (k.tgid, h.app.processes_table().get(k).unwrap().comm()))
            .collect()
    };
    let all = comm_of(&h);
    let filter = |h: &mut Harness, text: &str| {
        h.press(KeyCode::Char('/'));
        h.app
            .handle_key(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        h.app.handle_event(&Event::Paste(text.into()));
        assert!(
            h.app.process_view().filter.error.is_none(),
            "{text}: {:?}",
            h.app.process_view().filter.error
        );
        h.press(KeyCode::Enter);
    };
    filter(&mut h, "pid<100");
    let rows = comm_of(&h);
    assert!(!rows.is_empty() && rows.iter().all(|(pid, _)| *pid < 100));
    assert_eq!(rows.len(), all.iter().filter(|(p, _)| *p < 100).count());
    filter(&mut h, "-comm:sleep");
    assert_eq!(
        comm_of(&h).len(),
        all.iter().filter(|(_, c)| !c.contains("sleep")).count()
    );
    filter(&mut h, "comm=sleep | comm~^ba");
    let rows = comm_of(&h);
    let expected = all
        .iter()
        .filter(|(_, c)| c == "sleep" || c.starts_with("ba"))
        .count();
    assert!(rows.len() >= 2);
    assert_eq!(rows.len(), expected);
    filter(&mut h, "comm=sleep pid>=100000 | comm:bash");
    assert!(
        comm_of(&h).iter().all(|(_, c)| c == "bash"),
        "AND binds tighter than OR"
    );
    // Connections: ports and bytes.
    h.press(KeyCode::Tab);
    h.press(KeyCode::Char('/'));
    h.app.handle_event(&Event::Paste("sent>=0 port>=0".into()));
    assert!(h.app.connection_view().filter.error.is_none());
    h.app.handle_event(&Event::Paste(" ppid:1".into()));
    let error = h.app.connection_view().filter.error.clone().unwrap();
    assert!(
        error
            .reason
            .contains("unknown field `ppid` for connections (fields: comm, pid, state, port"),
        "{}",
        error.reason
    );
}

/// The sending ends of an event loop's inputs (kept alive for the loop's run).
struct LoopSenders {
    keys: crossbeam_channel::Sender<std::io::Result<Event>>,
    messages: crossbeam_channel::Sender<ModeMessage>,
    signals: crossbeam_channel::Sender<i32>,
}

/// Fresh channels for [`event_loop::run`], with `suspend` as the Ctrl-Z action.
fn loop_channels(
    suspend: Option<Box<dyn FnMut() -> std::io::Result<()>>>,
) -> (LoopSenders, LoopInputs) {
    let (keys, terminal) = crossbeam_channel::unbounded();
    let (messages, message_receiver) = crossbeam_channel::unbounded();
    let (signals, signal_receiver) = crossbeam_channel::unbounded();
    (
        LoopSenders {
            keys,
            messages,
            signals,
        },
        LoopInputs {
            terminal,
            messages: message_receiver,
            signals: signal_receiver,
            attached: crossbeam_channel::never(),
            suspend,
        },
    )
}

/// The tab not shown keeps no sorted keys (memory: a key per row); switching tabs builds the
/// new tab's order at once, so keys typed before the next frame act on its rows, and the
/// selection of a tab survives a round trip through the other.
#[test]
fn the_hidden_tab_frees_its_order_and_keys_before_a_frame_act_on_the_shown_tab() {
    let mut h = Harness::new();
    h.press(KeyCode::Down);
    h.press(KeyCode::Down);
    let selected = h.app.process_view().selected_key().expect("a selection");
    let index = h.app.process_view().cursor_index().expect("a cursor");
    let processes_order = h.app.process_view().order().to_vec();
    assert!(processes_order.len() > index + 1, "room to move down");

    h.press(KeyCode::Tab);
    assert!(
        h.app.process_view().order().is_empty(),
        "hidden tab's order freed"
    );
    assert!(!h.app.connection_view().order().is_empty());

    // Back and down, with no frame drawn in between.
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    h.app.handle_key(&key(KeyCode::Tab));
    assert!(h.app.connection_view().order().is_empty());
    assert_eq!(h.app.process_view().order(), &processes_order[..]);
    assert_eq!(h.app.process_view().selected_key(), Some(selected));
    h.app.handle_key(&key(KeyCode::Down));
    assert_eq!(
        h.app.process_view().selected_key(),
        Some(processes_order[index + 1]),
        "Down moved from the kept selection"
    );
}
