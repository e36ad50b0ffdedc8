//! The measurement behind the socket's encoding (`docs/protocol.md`, BENCHMARKS.md): a
//! 10,000-row snapshot (5,000 processes, 5,000 connections, as `SnapshotRows` frames of the
//! collector's chunk size) encoded and decoded with postcard and with serde_json, bytes and
//! ns. `cargo bench -p bpftop-ordered --bench wire_encoding`.

use std::time::{Duration, Instant};

use bpftop_ordered::remote::{
    collector::hub::SNAPSHOT_CHUNK_ROWS,
    protocol::{CollectorMessage, WireRow, WireTables},
    wire_rows::{row_to_wire, rows_from_wire},
};
use bridge::contract::{ConnectionRow, ModeKind, ProcessRow};
use probe_common::{conn_flags, proc_flags, ConnKey, ConnState, ProcKey, ProcState, COMM_LEN};

const ROWS_PER_TABLE: usize = 5_000;
const RUNS: usize = 15;

fn comm(name: &str) -> [u8; COMM_LEN] {
    let mut bytes = [0u8; COMM_LEN];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    bytes
}

/// Rows like a busy host's: real-looking pids, times, counters and names.
fn snapshot() -> Vec<CollectorMessage> {
    let processes: Vec<WireRow> = (0..ROWS_PER_TABLE as u32)
        .map(|i| {
            let state = ProcState {
                ppid: 1 + i / 7,
                uid: 1000 + i % 5,
                cpu_ns: 123_456_789 * (i as u64 % 97),
                start_ns: 5_000_000_000 + i as u64 * 1_234_567,
                flags: if i % 3 == 0 { proc_flags::EXITED } else { 0 },
                exit_code: ((i % 3 == 0) as u32 * 7) << 8,
                comm: comm(["sshd", "postgres", "nginx", "python3"][i as usize % 4]),
                ..Default::default()
            };
            row_to_wire(&ProcessRow::from_record(
                ProcKey::new(10_000 + i, state.start_ns),
                state,
                i as u64 * 3,
                9_000_000_000 + i as u64,
            ))
        })
        .collect();
    let connections: Vec<WireRow> = (0..ROWS_PER_TABLE as u32)
        .map(|i| {
            let state = ConnState {
                tcp_state: 1,
                pid: 10_000 + i,
                comm: comm("nginx"),
                bytes_sent: 1_000 * i as u64,
                bytes_received: 77 * i as u64,
                flags: conn_flags::OWNER_KNOWN,
                ..Default::default()
            };
            let key = ConnKey::ipv4(
                [10, 0, (i >> 8) as u8, i as u8],
                443,
                [192, 0, 2, 9],
                30_000 + i as u16,
            );
            row_to_wire(&ConnectionRow::from_record(
                key,
                state,
                i as u64,
                9_000_000_000,
            ))
        })
        .collect();
    processes
        .chunks(SNAPSHOT_CHUNK_ROWS)
        .zip(connections.chunks(SNAPSHOT_CHUNK_ROWS))
        .map(|(p, c)| CollectorMessage::SnapshotRows {
            mode: ModeKind::Ring,
            rows: WireTables {
                processes: p.to_vec(),
                connections: c.to_vec(),
            },
        })
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(
    name: &str,
    frames: &[CollectorMessage],
    encode: impl Fn(&CollectorMessage) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> CollectorMessage,
) {
    let mut bytes = 0;
    let mut encode_times = Vec::new();
    let mut decode_times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let encoded: Vec<Vec<u8>> = frames.iter().map(&encode).collect();
        encode_times.push(started.elapsed());
        bytes = encoded.iter().map(Vec::len).sum::<usize>();
        let started = Instant::now();
        let decoded: Vec<CollectorMessage> = encoded.iter().map(|f| decode(f)).collect();
        // The replica's part too: wire rows back to rows.
        for message in &decoded {
            if let CollectorMessage::SnapshotRows { rows, .. } = message {
                let (processes, connections) = (&rows.processes, &rows.connections);
                let p: Vec<ProcessRow> = rows_from_wire(processes).unwrap();
                let c: Vec<ConnectionRow> = rows_from_wire(connections).unwrap();
                assert_eq!(p.len() + c.len(), processes.len() + connections.len());
            }
        }
        decode_times.push(started.elapsed());
        assert_eq!(&decoded, frames);
    }
    let rows = 2 * ROWS_PER_TABLE;
    let (encode, decode) = (median(encode_times), median(decode_times));
    println!(
        "{name:<10} rows={rows} bytes={bytes} bytes/row={:.1} encode_ns={} ({:.0} ns/row) decode_ns={} ({:.0} ns/row)",
        bytes as f64 / rows as f64,
        encode.as_nanos(),
        encode.as_nanos() as f64 / rows as f64,
        decode.as_nanos(),
        decode.as_nanos() as f64 / rows as f64,
    );
}

fn main() {
    let frames = snapshot();
    measure(
        "postcard",
        &frames,
        |m| postcard::to_stdvec(m).unwrap(),
        |b| postcard::from_bytes(b).unwrap(),
    );
    measure(
        "serde_json",
        &frames,
        |m| {
            let mut line = serde_json::to_vec(m).unwrap();
            line.push(b'\n');
            line
        },
        |b| serde_json::from_slice(b).unwrap(),
    );
}
