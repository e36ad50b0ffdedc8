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
    // start, exit, nice, rss, then wrapped around.
    for _ in 0..5 {
        h.press(KeyCode::Char('>'));
    }
    // Wrapped around to the first column, which starts low→high.
    assert_eq!(h.app.process_view().sort.column, column("pid"));
    assert!(!h.app.process_view().sort.descending);
    let ascending = pids(&h);
    assert!(ascending.windows(2).all(|w| w[0] <= w[1]), "{ascending:?}");
    h.press(KeyCode::Char('I'));
    let descending = pids(&h);
    assert!(descending.windows(2).all(|w| w[0] >= w[1]));
    h.press(KeyCode::Char('<'));
    assert_eq!(h.app.process_view().sort.column, column("rss"));
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
    for _ in 0..6 {
        h.press(KeyCode::Char('>'));
    }
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
    for _ in 0..6 {
        h.press(KeyCode::Char('>'));
    }
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
    // Switching modes shows that mode's frozen table.
    h.press(KeyCode::Char('3'));
    assert_eq!(h.app.processes_table().len(), frozen_len);
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
    let (key_sender, keys) = crossbeam_channel::unbounded();
    let (message_sender, messages) = crossbeam_channel::unbounded();
    let (_signal_sender, signals) = crossbeam_channel::unbounded::<i32>();
    let changes = h.source.step(SECOND);
    message_sender
        .send(ModeMessage::Batch(h.source.batch(ModeKind::Perf, &changes)))
        .unwrap();
    for code in [KeyCode::Char('2'), KeyCode::Tab, KeyCode::Char('q')] {
        key_sender
            .send(Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))))
            .unwrap();
    }
    let inputs = LoopInputs {
        terminal: keys,
        messages,
        signals,
    };
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
    let (_keys_sender, keys) = crossbeam_channel::unbounded();
    let (_messages_sender, messages) = crossbeam_channel::unbounded();
    let (signal_sender, signals) = crossbeam_channel::unbounded();
    signal_sender.send(libc::SIGTERM).unwrap();
    let code = event_loop::run(
        &mut h.terminal,
        &mut h.app,
        LoopInputs {
            terminal: keys,
            messages,
            signals,
        },
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(code, 128 + libc::SIGTERM);
}

/// A running kernel thread, as the probes report one.
fn kernel_thread(tgid: u32, name: &str) -> bridge::contract::ProcessRow {
    let mut comm = [0u8; probe_common::COMM_LEN];
    comm[..name.len()].copy_from_slice(name.as_bytes());
    bridge::contract::ProcessRow {
        key: ProcKey {
            tgid,
            pad: 0,
            start_ns: 1,
        },
        state: probe_common::ProcState {
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
    assert!(tab_bar(&mut h).contains(&format!("{total} rows · ring")));

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
    for _ in 0..6 {
        h.press(KeyCode::Char('>'));
    }
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
