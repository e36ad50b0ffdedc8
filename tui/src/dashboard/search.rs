//! Incremental search (htop's F3): moves the selection to the next row whose *visible* text
//! (the cells of the shown columns, case-insensitive) contains the search text, without hiding
//! any row; `n` / `N` repeat it forwards / backwards, wrapping around at the ends.

/// The search of the dashboard: the text, whether its prompt is open, and what the last
/// search found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchState {
    /// The text searched for, as typed.
    pub text: String,
    /// Whether the search prompt is open (it takes every key).
    pub open: bool,
    /// The last search found no row.
    pub not_found: bool,
    /// The last search wrapped around an end of the table.
    pub wrapped: bool,
}

/// Where a search starts, relative to the selected row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchFrom {
    /// The selected row itself, then down (typing: the selection stays while it matches).
    Here,
    /// The row after the selected one, then down (`n`).
    Next,
    /// The row before the selected one, then up (`N`).
    Previous,
}

/// The index of the first of `len` rows, from `cursor` as `from` says and wrapping around,
/// for which `matches` holds; with whether the search wrapped past an end.
pub fn find(
    len: usize,
    cursor: usize,
    from: SearchFrom,
    matches: impl Fn(usize) -> bool,
) -> Option<(usize, bool)> {
    if len == 0 {
        return None;
    }
    let cursor = cursor.min(len - 1);
    (0..len).find_map(|step| {
        let (index, wrapped) = match from {
            SearchFrom::Here => {
                let i = cursor + step;
                (i % len, i >= len)
            }
            SearchFrom::Next => {
                let i = cursor + 1 + step;
                (i % len, i >= len)
            }
            SearchFrom::Previous => {
                let back = step + 1;
                if back <= cursor {
                    (cursor - back, false)
                } else {
                    (cursor + len - back, true)
                }
            }
        };
        matches(index).then_some((index, wrapped))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: [&str; 5] = ["init", "bash", "python", "sleep", "python3"];

    fn search(cursor: usize, from: SearchFrom, needle: &str) -> Option<(usize, bool)> {
        find(ROWS.len(), cursor, from, |i| ROWS[i].contains(needle))
    }

    #[test]
    fn finds_forward_backward_and_wraps() {
        assert_eq!(search(0, SearchFrom::Here, "py"), Some((2, false)));
        assert_eq!(search(2, SearchFrom::Here, "py"), Some((2, false)));
        assert_eq!(search(2, SearchFrom::Next, "py"), Some((4, false)));
        assert_eq!(search(4, SearchFrom::Next, "py"), Some((2, true)));
        assert_eq!(search(4, SearchFrom::Previous, "py"), Some((2, false)));
        assert_eq!(search(2, SearchFrom::Previous, "py"), Some((4, true)));
        // The only match is the cursor row: next wraps onto it.
        assert_eq!(search(1, SearchFrom::Next, "bash"), Some((1, true)));
        assert_eq!(search(1, SearchFrom::Previous, "bash"), Some((1, true)));
        assert_eq!(search(0, SearchFrom::Here, "nginx"), None);
        assert_eq!(find(0, 0, SearchFrom::Here, |_| true), None);
    }
}
