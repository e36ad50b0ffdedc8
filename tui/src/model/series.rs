//! Bounded sample series and the CPU-percentage rule every CPU figure on screen uses.

use std::collections::VecDeque;

/// Points kept in every history (one per second for mode histories, one per refresh for
/// process CPU): a minute at the default interval.
pub const HISTORY_POINTS: usize = 60;

/// A bounded series of samples, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series<T> {
    values: VecDeque<T>,
}

impl<T: Copy> Series<T> {
    /// Appends a sample, dropping the oldest beyond [`HISTORY_POINTS`].
    pub fn push(&mut self, value: T) {
        if self.values.len() == HISTORY_POINTS {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = T> + ExactSizeIterator + '_ {
        self.values.iter().copied()
    }

    /// The newest sample.
    pub fn last(&self) -> Option<T> {
        self.values.back().copied()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no sample was taken yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// CPU time as a percentage of one core over a window; 0 for an empty window.
pub fn cpu_percent(cpu_delta_ns: u64, window_ns: u64) -> f64 {
    if window_ns == 0 {
        0.0
    } else {
        cpu_delta_ns as f64 * 100.0 / window_ns as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn series_is_bounded() {
        let mut s = Series::default();
        for i in 0..100u64 {
            s.push(i);
        }
        assert_eq!(s.len(), HISTORY_POINTS);
        assert_eq!(s.iter().next(), Some(40));
        assert_eq!(s.last(), Some(99));
    }

    #[test]
    fn cpu_percent_of_one_core() {
        assert_eq!(cpu_percent(500_000_000, S), 50.0);
        assert_eq!(cpu_percent(2 * S, S), 200.0);
        assert_eq!(cpu_percent(5, 0), 0.0);
    }
}
