//! Values of the log: [`RECORD_FORMAT`], a kind byte, then the payload.
//!
//! - kind 0, [`Record::Run`]: postcard of [`RunInfo`]; the first record of every keyframe;
//! - kind 1, [`Record::Frame`]: one protocol frame's payload (`CollectorMessage`, postcard,
//!   `docs/protocol.md`): the keyframe's snapshot messages, or one `Delta`.

use bridge::contract::ModeKind;
use serde::{Deserialize, Serialize};

use crate::remote::{frame::decode, protocol::CollectorMessage};

/// The value format this build writes and reads.
pub const RECORD_FORMAT: u8 = 2;

const KIND_RUN: u8 = 0;
const KIND_FRAME: u8 = 1;

/// What a keyframe says of the run that recorded it (the collector's handshake, and its
/// clocks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The collector's run (its protocol epoch).
    pub epoch: u64,
    /// The collector's pid.
    pub pid: u32,
    /// The modes recorded, display order.
    pub modes: Vec<ModeKind>,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC at the keyframe, ns: a row's monotonic time plus this
    /// is its wall-clock time.
    pub realtime_offset_ns: u64,
    /// /proc start-time tolerance of the process tables, ns.
    pub start_tolerance_ns: u64,
    /// Retention of finished rows: age, ns.
    pub retention_age_ns: u64,
    /// Retention of finished rows: count per table.
    pub retention_rows: u64,
    /// Notes about optional probes that could not attach.
    pub notes: Vec<String>,
}

/// One record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A keyframe begins: the run's facts.
    Run(RunInfo),
    /// A protocol message (snapshot part or delta).
    Frame(CollectorMessage),
}

/// A value that does not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Written by another format.
    #[error("record format {0} (this build reads {RECORD_FORMAT})")]
    Format(u8),
    /// Unknown kind byte.
    #[error("unknown record kind {0}")]
    Kind(u8),
    /// Too short to hold a header.
    #[error("a record of {0} bytes")]
    Short(usize),
    /// The payload does not decode.
    #[error("undecodable payload: {0}")]
    Payload(String),
}

/// The value of a run record.
pub fn encode_run(run: &RunInfo) -> Vec<u8> {
    let mut value = vec![RECORD_FORMAT, KIND_RUN];
    value.extend(postcard::to_stdvec(run).expect("a run info encodes"));
    value
}

/// The value of a frame record (a frame payload as the collector encoded it).
pub fn encode_frame(frame: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(frame.len() + 2);
    value.extend([RECORD_FORMAT, KIND_FRAME]);
    value.extend_from_slice(frame);
    value
}

/// The record of a value.
pub fn decode_record(value: &[u8]) -> Result<Record, RecordError> {
    let [format, kind, payload @ ..] = value else {
        return Err(RecordError::Short(value.len()));
    };
    if *format != RECORD_FORMAT {
        return Err(RecordError::Format(*format));
    }
    match *kind {
        KIND_RUN => postcard::from_bytes(payload)
            .map(Record::Run)
            .map_err(|e| RecordError::Payload(e.to_string())),
        KIND_FRAME => decode::<CollectorMessage>(payload)
            .map(Record::Frame)
            .map_err(|e| RecordError::Payload(e.to_string())),
        other => Err(RecordError::Kind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{frame::encode, protocol::StoreOp};

    #[test]
    fn records_round_trip_and_damage_is_an_error() {
        let run = RunInfo {
            epoch: 1,
            pid: 2,
            modes: vec![ModeKind::Ring],
            realtime_offset_ns: 3,
            start_tolerance_ns: 4,
            retention_age_ns: 5,
            retention_rows: 6,
            notes: vec!["n".into()],
        };
        assert_eq!(
            decode_record(&encode_run(&run)).unwrap(),
            Record::Run(run.clone())
        );
        let delta = CollectorMessage::Delta {
            seq: 9,
            op: StoreOp::Reap { now_ns: 10 },
        };
        let value = encode_frame(&encode(&delta).unwrap());
        assert_eq!(decode_record(&value).unwrap(), Record::Frame(delta));
        let mut bad = value.clone();
        bad[0] = 9;
        assert_eq!(decode_record(&bad), Err(RecordError::Format(9)));
        bad = value.clone();
        bad[1] = 7;
        assert_eq!(decode_record(&bad), Err(RecordError::Kind(7)));
        bad = value;
        bad.truncate(3);
        assert!(matches!(decode_record(&bad), Err(RecordError::Payload(_))));
        assert_eq!(decode_record(&[1]), Err(RecordError::Short(1)));
    }
}
