//! htop's keys: the F-keys that map onto this dashboard's actions work (F4 filter, F6 sort
//! picker, F9 signal, F10 quit, F5 tree, F3 search), `T` sorts by CPU time, and the ones with
//! no counterpart (`H`, `c`, F2, F7/F8) say what to use instead.

mod support;

use bpftop_ordered::{
    dashboard::app::{Control, Overlay},
    model::columns::{column_index, PROCESS_COLUMNS},
};
use crossterm::event::KeyCode;
use support::Harness;

#[test]
fn htop_keys_work_or_explain_themselves() {
    let mut h = Harness::new();
    h.press(KeyCode::Char('T'));
    assert_eq!(
        h.app.process_view().sort.column,
        column_index(PROCESS_COLUMNS, "cpu_time").unwrap()
    );
    h.press(KeyCode::F(6));
    assert!(matches!(h.app.overlay(), Overlay::ColumnPicker { .. }));
    h.press(KeyCode::Esc);
    h.press(KeyCode::F(4));
    assert!(h.app.prompt().is_some(), "F4 opens the filter as in htop");
    h.press(KeyCode::Esc);
    for (key, hint) in [
        (KeyCode::Char('H'), "each row is a process"),
        (KeyCode::Char('c'), "tagging is not supported"),
        (KeyCode::F(2), "settings live in the config file"),
        (KeyCode::F(7), "renice is not supported"),
    ] {
        h.press(key);
        let status = h.app.status().unwrap_or_default().to_string();
        assert!(status.contains(hint), "{key:?}: {status}");
    }
    assert_eq!(h.press(KeyCode::F(10)), Control::Quit);
}
