//! Keys of the log: big-endian CLOCK_REALTIME ns ++ big-endian seq (16 bytes), so the store's
//! byte order is time order. The recorder never lets a key go back (a wall clock stepped back
//! is clamped to the last key's time), as FIFO compaction needs.

use std::time::{Duration, UNIX_EPOCH};

/// Bytes of a key.
pub const KEY_BYTES: usize = 16;

/// A log key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKey {
    /// Wall-clock time of the record, ns since the Unix epoch.
    pub ts_ns: u64,
    /// The recorder's sequence number (grows by one per record, across runs).
    pub seq: u64,
}

impl RecordKey {
    /// The key's bytes.
    pub fn to_bytes(self) -> [u8; KEY_BYTES] {
        let mut bytes = [0; KEY_BYTES];
        bytes[..8].copy_from_slice(&self.ts_ns.to_be_bytes());
        bytes[8..].copy_from_slice(&self.seq.to_be_bytes());
        bytes
    }

    /// The key of these bytes (`None`: not 16 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Option<RecordKey> {
        let bytes: [u8; KEY_BYTES] = bytes.try_into().ok()?;
        Some(RecordKey {
            ts_ns: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            seq: u64::from_be_bytes(bytes[8..].try_into().ok()?),
        })
    }

    /// The last possible key at `ts_ns` (a range bound: everything up to and including then).
    pub fn last_at(ts_ns: u64) -> RecordKey {
        RecordKey {
            ts_ns,
            seq: u64::MAX,
        }
    }

    /// The first possible key at `ts_ns`.
    pub fn first_at(ts_ns: u64) -> RecordKey {
        RecordKey { ts_ns, seq: 0 }
    }
}

impl std::fmt::Display for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (seq {})", format_time(self.ts_ns), self.seq)
    }
}

/// A wall-clock time in RFC 3339 (UTC, ms precision).
pub fn format_time(ts_ns: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(ts_ns)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_then_seq() {
        let a = RecordKey { ts_ns: 1, seq: 9 };
        let b = RecordKey { ts_ns: 2, seq: 0 };
        let c = RecordKey { ts_ns: 2, seq: 1 };
        assert!(a.to_bytes() < b.to_bytes() && b.to_bytes() < c.to_bytes());
        assert_eq!(RecordKey::from_bytes(&c.to_bytes()), Some(c));
        assert_eq!(RecordKey::from_bytes(&[0; 3]), None);
        assert_eq!(format_time(1_500_000_000), "1970-01-01T00:00:01.500Z");
    }
}
