//! Frames: a 4-byte big-endian length, then that many bytes of one postcard-encoded message
//! (tokio-util's `LengthDelimitedCodec`, at most [`MAX_FRAME_BYTES`]). The same codec decodes
//! on the collector's tasks and in a viewer's blocking reader ([`FrameReader`]).

use std::{
    io::{self, Read, Write},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The largest frame either side sends or accepts, bytes (a snapshot is chunked to stay far
/// below it; a delta larger than this resyncs the viewers instead).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Why a frame or message was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame's length field is over [`MAX_FRAME_BYTES`], or the stream is not frames.
    #[error("bad frame: {0}")]
    Frame(io::Error),
    /// The frame's bytes are not a message of the protocol.
    #[error("undecodable message: {0}")]
    Message(#[from] postcard::Error),
    /// A message to send encodes to more than [`MAX_FRAME_BYTES`].
    #[error("message of {0} bytes is over the frame limit")]
    TooLarge(usize),
}

/// The codec both sides use.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// One message's frame payload (without the length field, which the codec adds).
pub fn encode<T: Serialize>(message: &T) -> Result<Bytes, FrameError> {
    let bytes = postcard::to_stdvec(message)?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    Ok(Bytes::from(bytes))
}

/// The message in one frame payload. Trailing bytes after the message are an error.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (message, rest) = postcard::take_from_bytes(payload)?;
    if !rest.is_empty() {
        return Err(FrameError::Message(postcard::Error::DeserializeBadEncoding));
    }
    Ok(message)
}

/// Splits `stream` into frames and decodes each as a `T`, as a reader of the socket would,
/// stopping at the first bad frame. Returns (messages decoded, whether it stopped on an
/// error). Never panics, whatever the bytes: this is the fuzz target of the decoder.
pub fn decode_stream<T: DeserializeOwned>(stream: &[u8]) -> (usize, bool) {
    let mut codec = codec();
    let mut buffer = BytesMut::from(stream);
    let mut decoded = 0;
    loop {
        match codec.decode(&mut buffer) {
            Ok(Some(payload)) => match decode::<T>(&payload) {
                Ok(_) => decoded += 1,
                Err(_) => return (decoded, true),
            },
            // A half frame: a reader would wait for more (and time out).
            Ok(None) => return (decoded, false),
            Err(_) => return (decoded, true),
        }
    }
}

/// The collector's reader of a viewer's messages: length-delimited postcard frames, or — when
/// the first byte the viewer sends is `{` (a length field would have to be over 2 GiB to start
/// so) — the debug encoding, one JSON message per line (readable with `socat`), answered in
/// kind. Lines are limited to [`MAX_FRAME_BYTES`] too.
pub struct ViewerFrames {
    json: Option<bool>,
    frames: LengthDelimitedCodec,
    lines: tokio_util::codec::LinesCodec,
}

impl Default for ViewerFrames {
    fn default() -> Self {
        ViewerFrames {
            json: None,
            frames: codec(),
            lines: tokio_util::codec::LinesCodec::new_with_max_length(MAX_FRAME_BYTES),
        }
    }
}

impl ViewerFrames {
    /// Whether this viewer speaks the JSON-lines debug encoding (`None`: it sent nothing yet).
    pub fn json(&self) -> Option<bool> {
        self.json
    }
}

/// One message's bytes from a viewer, and its encoding.
#[derive(Debug)]
pub enum ViewerFrame {
    /// A postcard payload.
    Postcard(BytesMut),
    /// A JSON line (without its newline).
    Json(String),
}

impl ViewerFrame {
    /// The message it holds.
    pub fn message<T: DeserializeOwned>(&self) -> Result<T, String> {
        match self {
            ViewerFrame::Postcard(payload) => decode(payload).map_err(|e| e.to_string()),
            ViewerFrame::Json(line) => {
                serde_json::from_str(line).map_err(|e| format!("undecodable message: {e}"))
            }
        }
    }
}

impl Decoder for ViewerFrames {
    type Item = ViewerFrame;
    type Error = io::Error;

    fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<ViewerFrame>, io::Error> {
        let json = match self.json {
            Some(json) => json,
            None => match buffer.first() {
                None => return Ok(None),
                Some(first) => *self.json.insert(*first == b'{'),
            },
        };
        if json {
            self.lines
                .decode(buffer)
                .map(|line| line.map(ViewerFrame::Json))
                .map_err(io::Error::other)
        } else {
            Ok(self.frames.decode(buffer)?.map(ViewerFrame::Postcard))
        }
    }
}

/// A blocking reader of frames from a socket (a viewer's side).
pub struct FrameReader<R> {
    source: R,
    buffer: BytesMut,
    codec: LengthDelimitedCodec,
}

impl<R: Read> FrameReader<R> {
    /// Frames from `source`.
    pub fn new(source: R) -> Self {
        FrameReader {
            source,
            buffer: BytesMut::with_capacity(64 * 1024),
            codec: codec(),
        }
    }

    /// The next frame's payload; `Ok(None)` when a read timed out first (the source's own
    /// timeout) with no whole frame buffered. End of stream is `UnexpectedEof`.
    pub fn read_frame(&mut self) -> io::Result<Option<BytesMut>> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer)? {
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.source.read(&mut chunk) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes one message as a frame, blocking.
pub fn write_message<T: Serialize>(sink: &mut impl Write, message: &T) -> io::Result<()> {
    let payload = encode(message).map_err(io::Error::other)?;
    let mut framed = BytesMut::with_capacity(payload.len() + 4);
    codec().encode(payload, &mut framed)?;
    sink.write_all(&framed)
}

/// How long a viewer's blocking reads wait before it looks at its own work (pings, requests).
pub const VIEWER_READ_SLICE: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::protocol::ViewerMessage;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let mut stream = Vec::new();
        write_message(&mut stream, &ViewerMessage::Ping).unwrap();
        write_message(&mut stream, &ViewerMessage::Hello { proto: 1 }).unwrap();
        assert_eq!(decode_stream::<ViewerMessage>(&stream), (2, false));
        let mut reader = FrameReader::new(&stream[..]);
        let first = reader.read_frame().unwrap().unwrap();
        assert_eq!(
            decode::<ViewerMessage>(&first).unwrap(),
            ViewerMessage::Ping
        );
        // Oversized length field.
        let oversized = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
        assert_eq!(decode_stream::<ViewerMessage>(&oversized), (0, true));
        // Garbage payload, trailing bytes, half a frame.
        assert_eq!(
            decode_stream::<ViewerMessage>(&framed(&[0xff; 9])),
            (0, true)
        );
        let mut trailing = postcard::to_stdvec(&ViewerMessage::Ping).unwrap();
        trailing.push(0);
        assert_eq!(
            decode_stream::<ViewerMessage>(&framed(&trailing)),
            (0, true)
        );
        assert_eq!(decode_stream::<ViewerMessage>(&stream[..3]), (0, false));
    }
}
