//! The state of one table tab, generic over the row key: visible columns, sort, filter, the
//! filtered-and-sorted order (cached until its inputs change), the selection and the scroll
//! position.
//!
//! Selection rules:
//! - until the user picks a row, the cursor is a *position* (row 0 at start), as in htop;
//! - once the user moves or clicks, the selection is an *entity* (its key): it stays on that
//!   entity across re-sorts and updates, while the viewport stays put (the row may move out of
//!   view);
//! - with follow on (`F`), the viewport also scrolls to keep the selected entity in view;
//! - when the selected entity disappears (reaped or filtered out), the cursor falls back to a
//!   position, the same index, and follow ends.

use std::ops::Range;

use bridge::contract::ModeKind;

use super::filter::{self, Filter, FilterError, FilterTable};

/// Sort column (index into the table's full column list) and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortState {
    /// Column index in the table's column list.
    pub column: usize,
    /// High to low.
    pub descending: bool,
}

/// The filter of one tab: the text as typed, the last filter that parsed, and the current
/// parse error if the text does not parse (the table keeps the last good filter meanwhile).
///
/// "The last good filter" leaves out the half-typed term: typing `pid:1` passes through
/// `p`, `pi`, `pid`, which parse as plain text, then `pid:`, which does not. While the text
/// does not parse, the filter in force is the last one that parsed *before the erroneous
/// term's field name was being typed*, so `comm:python pid:abc` filters by `comm:python`, not
/// by `comm:python pid`. A valid value being edited (`pid:12` → `pid:12x`) stays in force.
#[derive(Clone, Debug)]
pub struct FilterState {
    table: FilterTable,
    /// The text as typed.
    pub text: String,
    /// The text of the filter in force.
    pub applied_text: String,
    /// The filter in force.
    pub active: Filter,
    /// Why `text` does not parse, if it does not.
    pub error: Option<FilterError>,
    /// Bumped whenever `active` changes.
    pub generation: u64,
    /// Texts that parsed, oldest first (at most [`HISTORY`]): where an error falls back to.
    history: Vec<String>,
}

/// How many valid texts a filter remembers for falling back.
const HISTORY: usize = 256;

/// Characters that end a field name: once one is typed, the term is a field term.
const OPERATOR_CHARS: &[char] = &[':', '=', '<', '>', '!', '~'];

impl FilterState {
    /// No filter, for `table`'s fields.
    pub fn new(table: FilterTable) -> FilterState {
        FilterState {
            table,
            text: String::new(),
            applied_text: String::new(),
            active: Filter::default(),
            error: None,
            generation: 0,
            history: Vec::new(),
        }
    }

    /// Replaces the text and re-parses it: on success the filter takes effect; otherwise the
    /// error is kept and the last good filter without the half-typed term is in force.
    pub fn set_text(&mut self, text: String) {
        match filter::parse(&text, self.table) {
            Ok(parsed) => {
                self.apply(text.clone(), parsed);
                if self.history.last() != Some(&text) {
                    if self.history.len() == HISTORY {
                        self.history.remove(0);
                    }
                    self.history.push(text.clone());
                }
                self.error = None;
            }
            Err(error) => {
                let fallback = self
                    .history
                    .iter()
                    .rev()
                    .find(|old| !is_partial_of(old, &text, &error.span))
                    .cloned()
                    .unwrap_or_default();
                if fallback != self.applied_text {
                    let parsed = filter::parse(&fallback, self.table).unwrap_or_default();
                    self.apply(fallback, parsed);
                }
                self.error = Some(error);
            }
        }
        self.text = text;
    }

    fn apply(&mut self, text: String, parsed: Filter) {
        if parsed != self.active {
            self.generation += 1;
        }
        self.active = parsed;
        self.applied_text = text;
    }

    /// Drops the filter.
    pub fn clear(&mut self) {
        self.set_text(String::new());
    }

    /// Makes the text show the filter in force again (after an abandoned invalid edit).
    pub fn revert_to_applied(&mut self) {
        self.text = self.applied_text.clone();
        self.error = None;
    }
}

/// Whether `old` is `text` with its erroneous term (at `span`) cut to a shorter start that
/// has no operator yet: the term's field name (or `-`) as it was being typed.
fn is_partial_of(old: &str, text: &str, span: &Range<usize>) -> bool {
    let (Some(before), Some(term), Some(after)) = (
        text.get(..span.start),
        text.get(span.clone()),
        text.get(span.end..),
    ) else {
        return false;
    };
    let Some(middle) = old
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
    else {
        return false;
    };
    !middle.is_empty()
        && middle.len() < term.len()
        && term.starts_with(middle)
        && !middle.contains(OPERATOR_CHARS)
}

/// Which rows the tables leave out, whatever the filter (keys `E` and `K`, config `[view]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HideRows {
    /// Exited processes and closed connections.
    pub exited: bool,
    /// Kernel threads (processes table only).
    pub kernel_threads: bool,
}

/// What the cached order was computed from; any change recomputes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderStamp {
    /// Store data generation (or the frozen snapshot's).
    pub data: u64,
    /// Sort in force.
    pub sort: SortState,
    /// Filter generation.
    pub filter: u64,
    /// Mode whose table is shown.
    pub mode: ModeKind,
    /// Whether the view is paused (the frozen copy is a different table).
    pub paused: bool,
    /// Rows left out by the hide toggles.
    pub hide: HideRows,
    /// Tree view: `Some(generation of the collapsed set)`; `None` for the flat view.
    pub tree: Option<u64>,
}

/// One tab's view state.
#[derive(Clone, Debug)]
pub struct TableView<K> {
    /// Visible columns (indices into the full column list), in display order.
    pub columns: Vec<usize>,
    /// Sort in force.
    pub sort: SortState,
    /// Filter.
    pub filter: FilterState,
    /// Rows of the table the hide toggles left out of `order` (counted before the filter).
    pub hidden: usize,
    /// Widest cell in view of each content-sized column (indexed like the full column list),
    /// as of the last prepared frame: the drawing and the mouse place columns with it.
    pub content_widths: Vec<u16>,
    /// Tree view: the branch glyphs before each row's COMM (empty in the flat view).
    pub tree_prefix: std::collections::HashMap<K, String>,
    order: Vec<K>,
    stamp: Option<OrderStamp>,
    selected: Option<K>,
    selected_index: usize,
    offset: usize,
    follow: bool,
    page_rows: usize,
}

impl<K: Copy + Eq> TableView<K> {
    /// A view with these visible columns and sort, no filter, cursor at the top.
    pub fn new(columns: Vec<usize>, sort: SortState, table: FilterTable) -> Self {
        TableView {
            columns,
            sort,
            filter: FilterState::new(table),
            hidden: 0,
            content_widths: Vec::new(),
            tree_prefix: std::collections::HashMap::new(),
            order: Vec::new(),
            stamp: None,
            selected: None,
            selected_index: 0,
            offset: 0,
            follow: false,
            page_rows: 1,
        }
    }

    /// Whether the cached order was computed from exactly these inputs.
    pub fn order_is_current(&self, stamp: &OrderStamp) -> bool {
        self.stamp.as_ref() == Some(stamp)
    }

    /// Installs a freshly computed order and re-finds the selection in it.
    pub fn set_order(&mut self, order: Vec<K>, stamp: OrderStamp) {
        self.order = order;
        self.stamp = Some(stamp);
        self.reconcile();
    }

    /// Forgets the cached order (forces a recomputation).
    pub fn invalidate(&mut self) {
        self.stamp = None;
    }

    /// Frees the order of a view that is not shown (a key per row: 4 MB for 100k
    /// connections), and the tree prefixes that go with it. The selection is kept by key and found again in the order computed when
    /// the view is shown next; until then [`TableView::order`] is empty.
    pub fn release_order(&mut self) {
        if self.order.capacity() > 0 || !self.tree_prefix.is_empty() {
            self.order = Vec::new();
            self.tree_prefix = Default::default();
            self.stamp = None;
        }
    }

    /// Rows that fit in the table area (set from the layout before each draw).
    pub fn set_page_rows(&mut self, rows: usize) {
        self.page_rows = rows.max(1);
        if self.follow {
            self.scroll_to_selection();
        }
        self.clamp_offset();
    }

    /// Filtered and sorted keys.
    pub fn order(&self) -> &[K] {
        &self.order
    }

    /// Index range of the rows in view.
    pub fn visible_range(&self) -> Range<usize> {
        let start = self.offset.min(self.order.len());
        start..(start + self.page_rows).min(self.order.len())
    }

    /// First row in view.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The selected entity, when the user picked one.
    pub fn selected_key(&self) -> Option<K> {
        self.selected
    }

    /// The key under the cursor: the selected entity, or the row at the cursor position.
    pub fn cursor_key(&self) -> Option<K> {
        self.selected
            .or_else(|| self.order.get(self.selected_index).copied())
    }

    /// Index of the cursor in the order.
    pub fn cursor_index(&self) -> Option<usize> {
        (!self.order.is_empty()).then_some(self.selected_index)
    }

    /// Whether follow is on.
    pub fn following(&self) -> bool {
        self.follow
    }

    /// Turns follow on (selecting the row under the cursor) or off.
    pub fn toggle_follow(&mut self) {
        if self.follow {
            self.follow = false;
        } else if let Some(key) = self.cursor_key() {
            self.selected = Some(key);
            self.follow = true;
            self.scroll_to_selection();
        }
    }

    /// Moves the cursor by `delta` rows and selects the entity there.
    pub fn move_by(&mut self, delta: isize) {
        if self.order.is_empty() {
            return;
        }
        let last = self.order.len() - 1;
        let target = self.selected_index.saturating_add_signed(delta).min(last);
        self.select_index(target);
    }

    /// Selects the row at `index` (clamped) and brings it into view.
    pub fn select_index(&mut self, index: usize) {
        if self.order.is_empty() {
            return;
        }
        self.selected_index = index.min(self.order.len() - 1);
        self.selected = Some(self.order[self.selected_index]);
        self.scroll_to_selection();
    }

    /// Moves by one page.
    pub fn page(&mut self, down: bool) {
        let rows = self.page_rows as isize;
        self.move_by(if down { rows } else { -rows });
    }

    /// First row.
    pub fn home(&mut self) {
        self.select_index(0);
    }

    /// Last row.
    pub fn end(&mut self) {
        self.select_index(usize::MAX);
    }

    fn scroll_to_selection(&mut self) {
        if self.selected_index < self.offset {
            self.offset = self.selected_index;
        } else if self.selected_index >= self.offset + self.page_rows {
            self.offset = self.selected_index + 1 - self.page_rows;
        }
    }

    fn clamp_offset(&mut self) {
        self.offset = self
            .offset
            .min(self.order.len().saturating_sub(self.page_rows));
    }

    fn reconcile(&mut self) {
        if self.order.is_empty() {
            self.selected = None;
            self.follow = false;
            self.selected_index = 0;
            self.offset = 0;
            return;
        }
        let found = self
            .selected
            .and_then(|key| self.order.iter().position(|k| *k == key));
        match found {
            Some(index) => {
                self.selected_index = index;
                if self.follow {
                    self.scroll_to_selection();
                }
            }
            None => {
                // Gone (or never picked): back to a cursor position, same place.
                self.selected = None;
                self.follow = false;
                self.selected_index = self.selected_index.min(self.order.len() - 1);
            }
        }
        self.clamp_offset();
    }

    /// Sorts by the next (or previous) visible column, in its natural first direction.
    pub fn cycle_sort(&mut self, forward: bool, descending_first: impl Fn(usize) -> bool) {
        if self.columns.is_empty() {
            return;
        }
        let position = self.columns.iter().position(|c| *c == self.sort.column);
        let n = self.columns.len();
        let next = match (position, forward) {
            (Some(p), true) => (p + 1) % n,
            (Some(p), false) => (p + n - 1) % n,
            (None, _) => 0,
        };
        let column = self.columns[next];
        self.sort = SortState {
            column,
            descending: descending_first(column),
        };
    }

    /// Sorts by `column`: inverts when it is already the sort column, else its first direction.
    pub fn sort_by(&mut self, column: usize, descending_first: bool) {
        if self.sort.column == column {
            self.sort.descending = !self.sort.descending;
        } else {
            self.sort = SortState {
                column,
                descending: descending_first,
            };
        }
    }

    /// Inverts the sort direction.
    pub fn invert_sort(&mut self) {
        self.sort.descending = !self.sort.descending;
    }

    /// Shows or hides a column (the last visible column cannot be hidden).
    pub fn toggle_column(&mut self, column: usize, default_order: &[usize]) {
        if let Some(position) = self.columns.iter().position(|c| *c == column) {
            if self.columns.len() > 1 {
                self.columns.remove(position);
            }
        } else {
            // Re-insert at its place in the default order.
            let rank = |c: usize| default_order.iter().position(|d| *d == c).unwrap_or(c);
            let at = self
                .columns
                .iter()
                .position(|c| rank(*c) > rank(column))
                .unwrap_or(self.columns.len());
            self.columns.insert(at, column);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Types `text` one character at a time, as the prompt does.
    fn typed(text: &str) -> FilterState {
        let mut state = FilterState::new(FilterTable::Processes);
        for end in 1..=text.len() {
            state.set_text(text[..end].to_string());
        }
        state
    }

    #[test]
    fn a_half_typed_term_is_not_applied() {
        let state = typed("comm:python pid:abc");
        assert!(state.error.is_some());
        assert_eq!(state.applied_text, "comm:python ");
        assert_eq!(
            state.active,
            filter::parse("comm:python", FilterTable::Processes).unwrap()
        );
        // Negation and a field name that does not exist fall back the same way.
        assert_eq!(typed("comm:python -pid:").applied_text, "comm:python ");
        assert_eq!(typed("comm:sh bogus>1").applied_text, "comm:sh ");
        assert_eq!(typed("comm:sh rss>1").applied_text, "comm:sh rss>1");
        assert_eq!(typed("comm:sh |").applied_text, "comm:sh ");
        // From the start: nothing was in force.
        assert_eq!(typed("pid:").applied_text, "");
        // A valid value being edited stays in force: `pid:12` was a whole term.
        assert_eq!(typed("pid:12x").applied_text, "pid:12");
        assert_eq!(typed("comm~^(").applied_text, "comm~^");
        // Fixing the term applies it.
        let mut state = typed("comm:python pid:abc");
        state.set_text("comm:python pid:1".into());
        assert!(state.error.is_none());
        assert_eq!(state.applied_text, "comm:python pid:1");
    }

    fn stamp(data: u64) -> OrderStamp {
        OrderStamp {
            data,
            sort: SortState {
                column: 0,
                descending: false,
            },
            filter: 0,
            mode: ModeKind::Ring,
            paused: false,
            hide: HideRows::default(),
            tree: None,
        }
    }

    fn view(order: Vec<u32>, page: usize) -> TableView<u32> {
        let mut v = TableView::new(
            vec![0, 1, 2],
            SortState {
                column: 0,
                descending: false,
            },
            FilterTable::Processes,
        );
        v.set_order(order, stamp(0));
        v.set_page_rows(page);
        v
    }

    #[test]
    fn cursor_is_a_position_until_the_user_picks() {
        let mut v = view(vec![10, 20, 30], 2);
        assert_eq!(v.cursor_key(), Some(10));
        assert_eq!(v.selected_key(), None);
        v.set_order(vec![30, 10, 20], stamp(1));
        assert_eq!(v.cursor_key(), Some(30), "position, not entity");
        v.move_by(1);
        assert_eq!(v.selected_key(), Some(10));
    }

    #[test]
    fn selection_follows_the_entity_and_follow_scrolls() {
        let mut v = view((0..10).collect(), 3);
        v.move_by(1);
        assert_eq!(v.selected_key(), Some(1));
        // Re-sorted: entity 1 moves to the bottom; without follow the viewport stays.
        v.set_order((0..10).rev().collect(), stamp(1));
        assert_eq!(v.selected_key(), Some(1));
        assert_eq!(v.cursor_index(), Some(8));
        assert_eq!(v.visible_range(), 0..3);
        // With follow, it is kept in view.
        v.toggle_follow();
        assert!(v.following());
        assert_eq!(v.visible_range(), 6..9);
        v.set_order((0..10).collect(), stamp(2));
        assert_eq!(v.cursor_index(), Some(1));
        assert_eq!(v.visible_range(), 1..4);
    }

    #[test]
    fn a_vanished_entity_leaves_the_cursor_in_place() {
        let mut v = view(vec![1, 2, 3, 4], 4);
        v.move_by(2);
        v.toggle_follow();
        v.set_order(vec![1, 2, 4], stamp(1));
        assert_eq!(v.selected_key(), None);
        assert!(!v.following());
        assert_eq!(v.cursor_key(), Some(4));
        v.set_order(vec![], stamp(2));
        assert_eq!(v.cursor_key(), None);
    }

    #[test]
    fn paging_and_ends_clamp() {
        let mut v = view((0..100).collect(), 10);
        v.page(true);
        assert_eq!(v.cursor_index(), Some(10));
        assert_eq!(v.visible_range(), 1..11);
        v.end();
        assert_eq!(v.cursor_key(), Some(99));
        assert_eq!(v.visible_range(), 90..100);
        v.move_by(5);
        assert_eq!(v.cursor_key(), Some(99));
        v.home();
        assert_eq!(v.visible_range(), 0..10);
        v.move_by(-3);
        assert_eq!(v.cursor_key(), Some(0));
    }

    #[test]
    fn sort_cycles_over_visible_columns() {
        let mut v = view(vec![], 1);
        let desc = |c: usize| c == 2;
        v.cycle_sort(true, desc);
        assert_eq!(v.sort.column, 1);
        v.cycle_sort(true, desc);
        assert_eq!(
            v.sort,
            SortState {
                column: 2,
                descending: true
            }
        );
        v.cycle_sort(true, desc);
        assert_eq!(v.sort.column, 0);
        v.cycle_sort(false, desc);
        assert_eq!(v.sort.column, 2);
        v.invert_sort();
        assert!(!v.sort.descending);
        v.sort_by(2, true);
        assert!(v.sort.descending, "same column inverts");
        v.sort_by(0, false);
        assert_eq!(
            v.sort,
            SortState {
                column: 0,
                descending: false
            }
        );
    }

    #[test]
    fn columns_hide_and_come_back_in_place() {
        let mut v = view(vec![], 1);
        v.toggle_column(1, &[0, 1, 2]);
        assert_eq!(v.columns, vec![0, 2]);
        v.toggle_column(1, &[0, 1, 2]);
        assert_eq!(v.columns, vec![0, 1, 2]);
        v.columns = vec![0];
        v.toggle_column(0, &[0, 1, 2]);
        assert_eq!(v.columns, vec![0], "the last column stays");
    }

    #[test]
    fn filter_errors_keep_the_last_good_filter() {
        let mut f = FilterState::new(FilterTable::Processes);
        f.set_text("comm:sleep".into());
        let good = f.active.clone();
        assert_eq!(f.generation, 1);
        f.set_text("comm:sleep pid:x".into());
        assert!(f.error.is_some());
        assert_eq!(f.active, good);
        assert_eq!(f.generation, 1);
        f.revert_to_applied();
        assert_eq!(f.text, "comm:sleep");
        f.clear();
        assert!(f.active.is_empty());
    }
}
