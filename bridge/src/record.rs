//! Safe decoding of change records from a transport (ring buffer item, perf sample).
//!
//! A record is accepted only when its length matches its table's layout exactly, its header
//! `len` agrees, its version is known and its kind belongs to its table. Anything else is an
//! [`DecodeError`] for the caller to count and skip; nothing here panics on any input.

use probe_common::{
    kind, table, ConnKey, ConnRecord, ConnState, ProcKey, ProcRecord, ProcState, RecordHeader,
    RECORD_VERSION,
};

use crate::contract::{Plain, Row, RowChange};

/// A decoded, validated change record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A process change.
    Process {
        /// Header (kind, seq, ktime_ns).
        header: RecordHeader,
        /// Identity.
        key: ProcKey,
        /// Full state after the change.
        state: ProcState,
    },
    /// A connection change.
    Connection {
        /// Header (kind, seq, ktime_ns).
        header: RecordHeader,
        /// Identity.
        key: ConnKey,
        /// Full state after the change.
        state: ConnState,
    },
}

impl Record {
    /// The header.
    pub fn header(&self) -> &RecordHeader {
        match self {
            Record::Process { header, .. } | Record::Connection { header, .. } => header,
        }
    }

    /// Which table (see `probe_common::table`).
    pub fn table(&self) -> u8 {
        self.header().table
    }
}

/// Why a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header.
    #[error("record truncated: {len} bytes, a header needs {}", std::mem::size_of::<RecordHeader>())]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The byte count does not match the table's record size or the header's `len`.
    #[error("record length {len} does not match {expected} for table {table} (header says {header_len})")]
    BadLength {
        /// Bytes received.
        len: usize,
        /// Bytes the table's layout needs.
        expected: usize,
        /// The header's `len` field.
        header_len: u32,
        /// The header's table.
        table: u8,
    },
    /// A layout version this build does not know.
    #[error("record version {0} is not supported (expected {RECORD_VERSION})")]
    BadVersion(u8),
    /// A table number this build does not know.
    #[error("unknown table {0}")]
    UnknownTable(u8),
    /// A kind that does not belong to the record's table.
    #[error("unknown event kind {kind} for table {table}")]
    UnknownKind {
        /// The kind.
        kind: u16,
        /// The table.
        table: u8,
    },
}

/// Reads a `T` from the start of `bytes` (any alignment). The callers check the length first.
fn read<T: Plain>(bytes: &[u8]) -> T {
    T::read_from_prefix(bytes)
        .map(|(value, _)| value)
        .expect("length checked by the caller")
}

/// Decodes one record. `bytes` must be exactly one record (perf samples may carry trailing
/// alignment padding: pass [`decode_padded`] for those).
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    decode_inner(bytes, false)
}

/// Like [`decode`] but accepts up to 7 trailing padding bytes (perf samples are padded to 8).
pub fn decode_padded(bytes: &[u8]) -> Result<Record, DecodeError> {
    decode_inner(bytes, true)
}

fn decode_inner(bytes: &[u8], allow_padding: bool) -> Result<Record, DecodeError> {
    if bytes.len() < std::mem::size_of::<RecordHeader>() {
        return Err(DecodeError::Truncated { len: bytes.len() });
    }
    let header: RecordHeader = read(bytes);
    if header.version != RECORD_VERSION {
        return Err(DecodeError::BadVersion(header.version));
    }
    let expected = match header.table {
        table::PROCESSES => std::mem::size_of::<ProcRecord>(),
        table::CONNECTIONS => std::mem::size_of::<ConnRecord>(),
        other => return Err(DecodeError::UnknownTable(other)),
    };
    let len_ok = bytes.len() == expected
        || (allow_padding && bytes.len() > expected && bytes.len() - expected < 8);
    if !len_ok || header.len as usize != expected {
        return Err(DecodeError::BadLength {
            len: bytes.len(),
            expected,
            header_len: header.len,
            table: header.table,
        });
    }
    let kind_ok = match header.table {
        table::PROCESSES => matches!(
            header.kind,
            kind::PROC_FORK
                | kind::PROC_EXEC
                | kind::PROC_EXIT
                | kind::PROC_REFRESH
                | kind::PROC_FIRST_SEEN
        ),
        _ => matches!(header.kind, kind::CONN_STATE | kind::CONN_REFRESH),
    };
    if !kind_ok {
        return Err(DecodeError::UnknownKind {
            kind: header.kind,
            table: header.table,
        });
    }
    Ok(match header.table {
        table::PROCESSES => {
            let r: ProcRecord = read(bytes);
            Record::Process {
                header,
                key: r.key,
                state: r.state,
            }
        }
        _ => {
            let r: ConnRecord = read(bytes);
            Record::Connection {
                header,
                key: r.key,
                state: r.state,
            }
        }
    })
}

impl From<Record> for RowChange {
    fn from(record: Record) -> Self {
        match record {
            Record::Process { header, key, state } => {
                RowChange::Process(Row::from_record(key, state, header.seq, header.ktime_ns))
            }
            Record::Connection { header, key, state } => {
                RowChange::Connection(Row::from_record(key, state, header.seq, header.ktime_ns))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    fn encode_proc(record: &ProcRecord) -> Vec<u8> {
        record.as_bytes().to_vec()
    }

    fn encode_conn(record: &ConnRecord) -> Vec<u8> {
        record.as_bytes().to_vec()
    }

    fn proc_record(kind: u16) -> ProcRecord {
        ProcRecord {
            header: RecordHeader {
                kind,
                table: table::PROCESSES,
                version: RECORD_VERSION,
                len: std::mem::size_of::<ProcRecord>() as u32,
                seq: 9,
                ktime_ns: 1234,
            },
            key: ProcKey {
                tgid: 5,
                pad: 0,
                start_ns: 77,
            },
            state: ProcState {
                ppid: 1,
                ..Default::default()
            },
        }
    }

    #[test]
    fn decodes_a_valid_process_record() {
        let bytes = encode_proc(&proc_record(kind::PROC_EXIT));
        match decode(&bytes).unwrap() {
            Record::Process { header, key, state } => {
                assert_eq!(header.seq, 9);
                assert_eq!(key.tgid, 5);
                assert_eq!(state.ppid, 1);
            }
            other => panic!("wrong record {other:?}"),
        }
    }

    #[test]
    fn decodes_a_valid_connection_record_at_odd_alignment() {
        let record = ConnRecord {
            header: RecordHeader {
                kind: kind::CONN_STATE,
                table: table::CONNECTIONS,
                version: RECORD_VERSION,
                len: std::mem::size_of::<ConnRecord>() as u32,
                seq: 3,
                ktime_ns: 1,
            },
            key: ConnKey {
                family: 2,
                sport: 80,
                ..Default::default()
            },
            state: ConnState::default(),
        };
        let mut buf = vec![0u8];
        buf.extend(encode_conn(&record));
        assert!(matches!(decode(&buf[1..]), Ok(Record::Connection { key, .. }) if key.sport == 80));
    }

    #[test]
    fn rejects_truncated_records() {
        let bytes = encode_proc(&proc_record(kind::PROC_FORK));
        assert_eq!(
            decode(&bytes[..10]),
            Err(DecodeError::Truncated { len: 10 })
        );
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::BadLength { .. })
        ));
        assert!(matches!(
            decode(&[]),
            Err(DecodeError::Truncated { len: 0 })
        ));
    }

    #[test]
    fn rejects_oversized_records_unless_padding() {
        let mut bytes = encode_proc(&proc_record(kind::PROC_FORK));
        bytes.extend([0u8; 4]);
        assert!(matches!(decode(&bytes), Err(DecodeError::BadLength { .. })));
        assert!(decode_padded(&bytes).is_ok());
        bytes.extend([0u8; 64]);
        assert!(matches!(
            decode_padded(&bytes),
            Err(DecodeError::BadLength { .. })
        ));
    }

    #[test]
    fn rejects_lying_header_length() {
        let mut record = proc_record(kind::PROC_FORK);
        record.header.len = 4096;
        assert!(matches!(
            decode(&encode_proc(&record)),
            Err(DecodeError::BadLength {
                header_len: 4096,
                ..
            })
        ));
    }

    #[test]
    fn rejects_unknown_kinds_tables_and_versions() {
        assert_eq!(
            decode(&encode_proc(&proc_record(999))),
            Err(DecodeError::UnknownKind {
                kind: 999,
                table: table::PROCESSES
            })
        );
        // A connection kind in a process record is unknown for that table.
        assert!(matches!(
            decode(&encode_proc(&proc_record(kind::CONN_STATE))),
            Err(DecodeError::UnknownKind { .. })
        ));
        let mut bad_table = proc_record(kind::PROC_FORK);
        bad_table.header.table = 7;
        assert_eq!(
            decode(&encode_proc(&bad_table)),
            Err(DecodeError::UnknownTable(7))
        );
        let mut bad_version = proc_record(kind::PROC_FORK);
        bad_version.header.version = 200;
        assert_eq!(
            decode(&encode_proc(&bad_version)),
            Err(DecodeError::BadVersion(200))
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep: every length up to two records, several fill patterns.
        for fill in [0u8, 1, 0xff, 0x5a] {
            for len in 0..300 {
                let bytes = vec![fill; len];
                let _ = decode(&bytes);
                let _ = decode_padded(&bytes);
            }
        }
    }
}
