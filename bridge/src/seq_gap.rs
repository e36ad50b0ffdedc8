//! Loss detection from per-mode sequence numbers.
//!
//! The kernel advances a mode's counter for every record offered to that mode, before the
//! transport is tried, so a record that the transport dropped leaves a hole. Records may arrive
//! slightly out of order (two CPUs take numbers and reserve space in different orders; perf
//! buffers are per CPU), so a hole is only declared lost once it has survived `settle_drains`
//! further drains of the transport *and* `settle_ns` of time.

use std::collections::BTreeMap;

/// Tracks which sequence numbers of one (mode, table) have been seen.
#[derive(Clone, Debug)]
pub struct SeqTracker {
    /// Every seq below this has been seen or declared lost.
    next_expected: u64,
    /// Holes above the watermark: start → (end exclusive, drain generation, ns when opened).
    holes: BTreeMap<u64, (u64, u64, u64)>,
    /// Seqs seen beyond `next_expected` while holes are open are implied by `holes`; this
    /// is the highest seq seen so far.
    highest_seen: u64,
    drain_generation: u64,
    lost: u64,
    duplicates: u64,
    settle_drains: u64,
    settle_ns: u64,
}

impl SeqTracker {
    /// A tracker expecting seq 1 first. A hole must outlive `settle_drains` drains and
    /// `settle_ns` nanoseconds before it counts as lost.
    pub fn new(settle_drains: u64, settle_ns: u64) -> Self {
        SeqTracker {
            next_expected: 1,
            holes: BTreeMap::new(),
            highest_seen: 0,
            drain_generation: 0,
            lost: 0,
            duplicates: 0,
            settle_drains,
            settle_ns,
        }
    }

    /// Records that `seq` arrived at `now_ns`. Returns false for a duplicate or a seq that was
    /// already declared lost (a very late arrival); true otherwise.
    pub fn observe(&mut self, seq: u64, now_ns: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.highest_seen {
            let gap_start = self.highest_seen.max(self.next_expected - 1) + 1;
            if seq > gap_start {
                self.holes
                    .insert(gap_start, (seq, self.drain_generation, now_ns));
            }
            self.highest_seen = seq;
            self.advance_watermark();
            return true;
        }
        // At or below the highest seen: either fills a hole or is a duplicate.
        let Some((&start, &(end, generation, opened))) = self.holes.range(..=seq).next_back()
        else {
            self.duplicates += 1;
            return false;
        };
        if seq >= end {
            self.duplicates += 1;
            return false;
        }
        self.holes.remove(&start);
        if start < seq {
            self.holes.insert(start, (seq, generation, opened));
        }
        if seq + 1 < end {
            self.holes.insert(seq + 1, (end, generation, opened));
        }
        self.advance_watermark();
        true
    }

    fn advance_watermark(&mut self) {
        self.next_expected = match self.holes.keys().next() {
            Some(&first_hole) => first_hole,
            None => self.highest_seen + 1,
        };
    }

    /// Marks the end of one drain of the transport (it was read until empty) and declares holes
    /// that have settled lost. Returns the number of newly lost records.
    pub fn end_drain(&mut self, now_ns: u64) -> u64 {
        self.drain_generation += 1;
        let generation = self.drain_generation;
        let (settle_drains, settle_ns) = (self.settle_drains, self.settle_ns);
        let mut newly_lost = 0;
        self.holes.retain(|start, (end, opened_gen, opened_ns)| {
            let settled = generation.saturating_sub(*opened_gen) >= settle_drains
                && now_ns.saturating_sub(*opened_ns) >= settle_ns;
            if settled {
                newly_lost += *end - *start;
            }
            !settled
        });
        self.lost += newly_lost;
        self.advance_watermark();
        newly_lost
    }

    /// The kernel says `offered` records exist so far: any above the highest seen become a
    /// hole (filled by late arrivals, declared lost once settled like any other). Without this
    /// a loss of the *last* records before a quiet spell would never show as a gap, since no
    /// later record reveals it. Returns true when a hole was opened.
    pub fn expect_up_to(&mut self, offered: u64, now_ns: u64) -> bool {
        if offered <= self.highest_seen {
            return false;
        }
        let gap_start = self.highest_seen.max(self.next_expected - 1) + 1;
        self.holes
            .insert(gap_start, (offered + 1, self.drain_generation, now_ns));
        self.highest_seen = offered;
        true
    }

    /// Records declared lost so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Duplicate or too-late arrivals seen so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Highest seq seen so far (0 before the first).
    pub fn highest_seen(&self) -> u64 {
        self.highest_seen
    }

    /// Records still missing but not yet declared lost.
    pub fn pending_missing(&self) -> u64 {
        self.holes.iter().map(|(s, (e, _, _))| e - s).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lost_after_the_last_arrival_show_once_the_kernel_count_is_known() {
        let mut t = SeqTracker::new(2, 0);
        for seq in 1..=5 {
            assert!(t.observe(seq, 0));
        }
        // The kernel offered 9: 6..=9 are missing though nothing newer arrived.
        assert!(t.expect_up_to(9, 0));
        assert!(!t.expect_up_to(9, 0), "known already");
        // 6 was only late.
        assert!(t.observe(6, 0));
        assert_eq!(t.end_drain(0), 0, "not settled yet");
        assert_eq!(t.end_drain(0), 3, "7, 8 and 9 were lost");
        assert!(t.observe(10, 0));
        assert_eq!(t.end_drain(0), 0);
        assert_eq!(t.lost(), 3);
    }

    #[test]
    fn in_order_stream_has_no_loss() {
        let mut t = SeqTracker::new(1, 0);
        for s in 1..=100 {
            assert!(t.observe(s, 0));
        }
        assert_eq!(t.end_drain(1), 0);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.highest_seen(), 100);
    }

    #[test]
    fn reordering_within_the_settle_window_is_not_loss() {
        let mut t = SeqTracker::new(2, 0);
        for s in [1, 3, 2, 6, 4] {
            t.observe(s, 0);
        }
        assert_eq!(t.end_drain(0), 0);
        t.observe(5, 0);
        assert_eq!(t.end_drain(0), 0);
        assert_eq!(t.end_drain(0), 0);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.pending_missing(), 0);
    }

    #[test]
    fn holes_that_settle_are_counted_exactly() {
        let mut t = SeqTracker::new(1, 10);
        for s in [1, 2, 10, 11, 15] {
            t.observe(s, 0);
        }
        // Missing: 3..=9 (7) and 12..=14 (3).
        assert_eq!(t.pending_missing(), 10);
        assert_eq!(t.end_drain(5), 0, "too young in time");
        assert_eq!(t.end_drain(20), 10);
        assert_eq!(t.lost(), 10);
        // A late arrival of a lost seq is not double counted.
        assert!(!t.observe(4, 30));
        t.observe(16, 30);
        assert_eq!(t.end_drain(100), 0);
    }

    #[test]
    fn duplicates_are_flagged() {
        let mut t = SeqTracker::new(1, 0);
        assert!(t.observe(1, 0));
        assert!(!t.observe(1, 0));
        assert!(t.observe(3, 0));
        assert!(!t.observe(3, 0));
        assert_eq!(t.duplicates(), 2);
        assert!(t.observe(2, 0));
        assert_eq!(t.pending_missing(), 0);
    }
}
