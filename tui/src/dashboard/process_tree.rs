//! The process tree (htop's F5): the sorted, filtered process order rearranged so that every
//! process follows its parent, children in the sort order among their siblings, with the
//! branch glyphs the COMM column shows. Collapsed processes keep their children out of the
//! order.
//!
//! A process's parent is the row with its `ppid` that started last before it (so a reused pid
//! never adopts older processes); a process whose parent is not in the order (filtered out,
//! hidden, reaped, or outside the tool's view) is a root. Parent links come from the kernel's
//! `real_parent`, so reparented processes move under their new parent.

use std::collections::{HashMap, HashSet};

use bridge::{contract::ProcessRow, table::OrderedTable};
use probe_common::ProcKey;

/// The order a tree view shows and what its COMM cells are prefixed with.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TreeOrder {
    /// Every process of the input that is not under a collapsed one, parents before children.
    pub order: Vec<ProcKey>,
    /// Branch glyphs per process (`├─ `, `│  └─ `, `+ ` when collapsed with children).
    pub prefix: HashMap<ProcKey, String>,
}

/// Arranges `sorted` (keys of `table`, already filtered and sorted) as a tree.
pub fn arrange(
    sorted: &[ProcKey],
    table: &OrderedTable<ProcessRow>,
    collapsed: &HashSet<ProcKey>,
) -> TreeOrder {
    let in_order: HashSet<ProcKey> = sorted.iter().copied().collect();
    // tgid -> the keys with that tgid in the order, oldest first (pid reuse).
    let mut by_tgid: HashMap<u32, Vec<ProcKey>> = HashMap::new();
    for key in sorted {
        by_tgid.entry(key.tgid).or_default().push(*key);
    }
    for keys in by_tgid.values_mut() {
        keys.sort_by_key(|k| k.start_ns);
    }
    let parent_of = |key: &ProcKey| -> Option<ProcKey> {
        let row = table.get(key)?;
        let candidates = by_tgid.get(&row.state.ppid)?;
        candidates
            .iter()
            .rev()
            .find(|p| p.start_ns <= key.start_ns && *p != key)
            .copied()
    };
    let mut children: HashMap<ProcKey, Vec<ProcKey>> = HashMap::new();
    let mut roots = Vec::new();
    for key in sorted {
        match parent_of(key).filter(|p| in_order.contains(p)) {
            Some(parent) => children.entry(parent).or_default().push(*key),
            None => roots.push(*key),
        }
    }
    let mut tree = TreeOrder::default();
    let mut placed: HashSet<ProcKey> = HashSet::with_capacity(sorted.len());
    for root in &roots {
        place(
            *root,
            "",
            None,
            &children,
            collapsed,
            &mut placed,
            &mut tree,
        );
    }
    // Rows on a parent cycle (equal start times can make one) were reached from no root:
    // show them as roots rather than lose them.
    for key in sorted {
        if !placed.contains(key) {
            place(*key, "", None, &children, collapsed, &mut placed, &mut tree);
        }
    }
    tree
}

/// Places `key` and (unless collapsed) its subtree, depth first. `indent` is the glyphs of the
/// ancestors' columns; `last` whether `key` is its parent's last child (`None` for a root).
fn place(
    key: ProcKey,
    indent: &str,
    last: Option<bool>,
    children: &HashMap<ProcKey, Vec<ProcKey>>,
    collapsed: &HashSet<ProcKey>,
    placed: &mut HashSet<ProcKey>,
    tree: &mut TreeOrder,
) {
    if !placed.insert(key) {
        return;
    }
    let kids = children.get(&key).map(Vec::as_slice).unwrap_or(&[]);
    let folded = !kids.is_empty() && collapsed.contains(&key);
    let branch = match last {
        None => "",
        Some(false) => "├─ ",
        Some(true) => "└─ ",
    };
    let marker = if folded { "+ " } else { "" };
    tree.order.push(key);
    tree.prefix.insert(key, format!("{indent}{branch}{marker}"));
    if folded {
        // Out of the order, but reached: not to be mistaken for rows on a cycle.
        let mut stack: Vec<ProcKey> = kids.to_vec();
        while let Some(hidden) = stack.pop() {
            if placed.insert(hidden) {
                stack.extend(children.get(&hidden).into_iter().flatten().copied());
            }
        }
        return;
    }
    let child_indent = match last {
        None => indent.to_string(),
        Some(false) => format!("{indent}│  "),
        Some(true) => format!("{indent}   "),
    };
    for (i, child) in kids.iter().enumerate() {
        let is_last = i + 1 == kids.len();
        place(
            *child,
            &child_indent,
            Some(is_last),
            children,
            collapsed,
            placed,
            tree,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use probe_common::ProcState;

    fn key(tgid: u32, start_ns: u64) -> ProcKey {
        ProcKey {
            tgid,
            pad: 0,
            start_ns,
        }
    }

    fn table(rows: &[(u32, u64, u32)]) -> OrderedTable<ProcessRow> {
        let mut table = OrderedTable::new();
        for &(tgid, start_ns, ppid) in rows {
            table.upsert(ProcessRow::from_record(
                key(tgid, start_ns),
                ProcState {
                    ppid,
                    start_ns,
                    ..Default::default()
                },
                1,
                1,
            ));
        }
        table
    }

    #[test]
    fn children_follow_parents_in_sort_order_with_glyphs() {
        // 1 ─┬─ 10 ─── 100
        //    └─ 20
        let t = table(&[(1, 1, 0), (10, 5, 1), (20, 6, 1), (100, 9, 10)]);
        // Sorted: 20 before 10 (e.g. by CPU), 100 first overall.
        let sorted = [key(100, 9), key(20, 6), key(1, 1), key(10, 5)];
        let tree = arrange(&sorted, &t, &HashSet::new());
        assert_eq!(
            tree.order,
            vec![key(1, 1), key(20, 6), key(10, 5), key(100, 9)]
        );
        let prefix = |k| tree.prefix[&k].as_str();
        assert_eq!(prefix(key(1, 1)), "");
        assert_eq!(prefix(key(20, 6)), "├─ ");
        assert_eq!(prefix(key(10, 5)), "└─ ");
        assert_eq!(prefix(key(100, 9)), "   └─ ");
    }

    #[test]
    fn collapsed_subtrees_and_reused_pids() {
        // Pid 10 was reused: the old 10 (start 2) is not the parent of 100 (start 9) when a
        // newer 10 (start 5) started before 100.
        let t = table(&[
            (1, 1, 0),
            (10, 2, 1),
            (10, 5, 1),
            (100, 9, 10),
            (200, 3, 10),
        ]);
        let sorted = [key(1, 1), key(10, 2), key(10, 5), key(100, 9), key(200, 3)];
        let tree = arrange(&sorted, &t, &HashSet::new());
        assert_eq!(
            tree.order,
            vec![key(1, 1), key(10, 2), key(200, 3), key(10, 5), key(100, 9)]
        );
        let collapsed: HashSet<ProcKey> = [key(10, 5)].into_iter().collect();
        let tree = arrange(&sorted, &t, &collapsed);
        assert!(
            !tree.order.contains(&key(100, 9)),
            "hidden under its collapsed parent"
        );
        assert_eq!(tree.prefix[&key(10, 5)], "└─ + ");
    }

    #[test]
    fn missing_parents_make_roots_and_cycles_lose_nothing() {
        // 30's parent 99 is not in the order; 40 and 41 name each other with equal starts.
        let t = table(&[(30, 1, 99), (40, 7, 41), (41, 7, 40)]);
        let sorted = [key(30, 1), key(40, 7), key(41, 7)];
        let tree = arrange(&sorted, &t, &HashSet::new());
        assert_eq!(tree.order.len(), 3);
        assert_eq!(tree.prefix[&key(30, 1)], "");
    }
}
