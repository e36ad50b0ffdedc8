//! The frame decoder under 1,000,000+ random and mutated inputs (seeded, so a failure
//! reproduces): no input panics, whichever side decodes it, and a decoded collector message
//! that carries rows goes through the replica's row decoding too.

use bpftop_ordered::remote::{
    frame::{decode, decode_stream, encode},
    protocol::{CollectorMessage, StoreOp, ViewerMessage, WireChange, WireRow, PROTOCOL_VERSION},
    wire_rows::op_from_wire,
};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// xorshift64*: small, seeded, good enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Valid frames (length field and payload) to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let row = WireRow {
        key: vec![1; 16],
        state: vec![2; 64],
        seq: 3,
        changed_ns: 4,
        procfs: false,
    };
    let payloads = [
        encode(&ViewerMessage::Hello {
            proto: PROTOCOL_VERSION,
        })
        .unwrap(),
        encode(&ViewerMessage::Watch { since: None }).unwrap(),
        encode(&CollectorMessage::Heartbeat {
            seq: 9,
            resyncs: 1,
            viewers: 2,
        })
        .unwrap(),
        encode(&CollectorMessage::Delta {
            seq: 1,
            op: StoreOp::Batch {
                mode: bridge::contract::ModeKind::Ring,
                changes: vec![
                    WireChange::Process(row.clone()),
                    WireChange::Connection(row),
                ],
                resync: None,
                counters: Default::default(),
            },
        })
        .unwrap(),
    ];
    payloads
        .iter()
        .map(|p| {
            let mut frame = (p.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(p);
            frame
        })
        .collect()
}

/// Decodes `bytes` as both sides would, and the rows of any delta it holds.
fn decode_everything(bytes: &[u8]) -> usize {
    let (viewer, _) = decode_stream::<ViewerMessage>(bytes);
    let (collector, _) = decode_stream::<CollectorMessage>(bytes);
    let mut buffer = BytesMut::from(bytes);
    let mut codec = bpftop_ordered::remote::frame::codec();
    while let Ok(Some(frame)) = codec.decode(&mut buffer) {
        if let Ok(CollectorMessage::Delta { op, .. }) = decode::<CollectorMessage>(&frame) {
            let _ = op_from_wire(op);
        }
    }
    viewer + collector
}

#[test]
fn a_million_random_inputs_never_panic() {
    const INPUTS: usize = 1_000_000;
    let mut rng = Rng(0x5eed_b10c_0000_0012);
    let seeds = seeds();
    let mut decoded = 0;
    let started = std::time::Instant::now();
    for i in 0..INPUTS {
        let input: Vec<u8> = if i % 2 == 0 {
            // Random bytes behind a plausible small length field.
            let len = rng.below(48);
            let mut bytes = (len as u32).to_be_bytes().to_vec();
            bytes.extend((0..len).map(|_| rng.next() as u8));
            if rng.below(8) == 0 {
                bytes.truncate(rng.below(bytes.len() + 1));
            }
            bytes
        } else {
            // A valid frame with a few bytes flipped, cut or appended.
            let mut bytes = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            match rng.below(4) {
                0 => bytes.truncate(rng.below(bytes.len() + 1)),
                1 => bytes.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
                _ => {}
            }
            bytes
        };
        decoded += decode_everything(&input);
    }
    // Some mutations stay valid messages: the decoder was really exercised on both paths.
    assert!(decoded > 1000, "only {decoded} inputs decoded");
    eprintln!(
        "{INPUTS} inputs, {decoded} messages decoded, {:?}",
        started.elapsed()
    );
}
