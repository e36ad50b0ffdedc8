//! The tree view (F5) on the TestBackend: children under their parents with branch glyphs,
//! siblings in the sort order, folding with `-` / `+`, the selection following its process,
//! and F5 back to the flat view.

mod support;

use bridge::contract::{ProcessRow, RowOrigin};
use crossterm::event::KeyCode;
use probe_common::ProcKey;
use support::Harness;

fn row(tgid: u32, ppid: u32, start_ns: u64, name: &str) -> ProcessRow {
    let mut comm = [0u8; probe_common::COMM_LEN];
    comm[..name.len()].copy_from_slice(name.as_bytes());
    ProcessRow {
        key: ProcKey::new(tgid, start_ns),
        state: bridge::contract::ProcInfo {
            ppid,
            start_ns,
            comm,
            ..Default::default()
        },
        seq: 0,
        changed_ns: 0,
        origin: RowOrigin::Procfs,
    }
}

/// The table rows on screen that belong to the test family, top to bottom, trimmed.
fn family_lines(h: &mut Harness) -> Vec<String> {
    h.screen()
        .lines()
        .filter(|l| l.contains(" 9000"))
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[test]
fn children_sit_under_parents_and_fold() {
    let mut h = Harness::new();
    // tt-root ─┬─ tt-a ─── tt-a1
    //          └─ tt-b
    h.app.store_mut().seed(
        &[
            row(900_001, 1, 10, "tt-root"),
            row(900_002, 900_001, 20, "tt-a"),
            row(900_003, 900_001, 30, "tt-b"),
            row(900_004, 900_002, 40, "tt-a1"),
        ],
        &[],
    );
    h.press(KeyCode::Char('/'));
    h.type_text("comm:tt-");
    h.press(KeyCode::Enter);
    // Sort by PID ascending so the flat order is known.
    h.app.sort_by_column(0);
    let flat = family_lines(&mut h);
    assert_eq!(flat.len(), 4, "{flat:?}");
    h.press(KeyCode::F(5));
    assert!(h.app.tree());
    let tree = family_lines(&mut h);
    let names: Vec<&str> = tree
        .iter()
        .map(|l| {
            // From the COMM cell on: the glyphs (if any) and the name.
            let start = l.find(['├', '│', '└']).or_else(|| l.find("tt-")).unwrap();
            &l[start..]
        })
        .collect();
    assert!(names[0].starts_with("tt-root"), "{tree:#?}");
    assert!(names[1].starts_with("├─ tt-a "), "{tree:#?}");
    assert!(names[2].starts_with("│  └─ tt-a1"), "{tree:#?}");
    assert!(names[3].starts_with("└─ tt-b"), "{tree:#?}");
    // Select tt-a (second row of the family) and fold it: tt-a1 disappears, tt-a shows `+`.
    h.press(KeyCode::Home);
    while h.app.cursor_process().map(|r| r.key.tgid) != Some(900_002) {
        h.press(KeyCode::Down);
    }
    h.press(KeyCode::Char('-'));
    let folded = family_lines(&mut h);
    assert_eq!(folded.len(), 3, "{folded:#?}");
    assert!(
        folded.iter().any(|l| l.contains("├─ + tt-a")),
        "{folded:#?}"
    );
    assert_eq!(
        h.app.cursor_process().map(|r| r.key.tgid),
        Some(900_002),
        "the selection stays on the folded process"
    );
    h.press(KeyCode::Char('+'));
    assert_eq!(family_lines(&mut h).len(), 4);
    // Back to the flat view.
    h.press(KeyCode::F(5));
    assert!(!h.app.tree());
    assert_eq!(family_lines(&mut h), flat);
}
