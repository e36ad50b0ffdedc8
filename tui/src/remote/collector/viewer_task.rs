//! One viewer's task: handshake, then its subscription's frames, a heartbeat each second, and
//! its requests. A viewer that sends something that is not a frame of the protocol, stays
//! silent past the read timeout, or does not take a frame within the write timeout is
//! disconnected (and logged); nothing it does blocks the collector or another viewer.

use std::{
    sync::{atomic::Ordering, Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::{
    io::AsyncWriteExt,
    net::UnixStream,
    time::{interval, sleep_until, timeout, Instant, MissedTickBehavior},
};
use tokio_util::codec::FramedRead;

use super::hub::Hub;
use crate::remote::{
    frame::{decode, encode, ViewerFrame, ViewerFrames},
    protocol::{CollectorMessage, ViewerMessage, PROTOCOL_VERSION, TABLES},
};

/// What a viewer task needs besides its socket.
#[derive(Clone)]
pub struct ViewerContext {
    /// The shared state.
    pub hub: Arc<Mutex<Hub>>,
    /// The handshake's fixed part.
    pub hello: CollectorMessage,
    /// A viewer silent this long is disconnected; a frame not taken this long disconnects.
    pub timeout: Duration,
}

/// A replay's answer: the replayed tables' snapshot frames, then the summary.
fn replay_frames(
    store: crate::recording::store::RecordStore,
    at_ns: Option<u64>,
    from_ns: Option<u64>,
    to_ns: Option<u64>,
) -> Result<Vec<Bytes>, String> {
    let recording = crate::recording::reader::Recording::from_store(store);
    let (first, last) = recording.span().ok_or("the recording is empty")?;
    let replayed = match from_ns {
        Some(from) => recording.rows_between(from, to_ns.unwrap_or(last.ts_ns)),
        None => recording.state_at(at_ns.unwrap_or(last.ts_ns)),
    }
    .map_err(|e| e.to_string())?;
    let position = crate::remote::protocol::Position {
        epoch: replayed.run.epoch,
        seq: 0,
    };
    let mut frames =
        super::hub::snapshot_frames(&replayed.store, &replayed.run.modes, position, "replay")
            .map_err(|e| e.to_string())?;
    let summary = crate::remote::protocol::ReplaySummary {
        run: replayed.run.clone(),
        keyframe: (replayed.keyframe.ts_ns, replayed.keyframe.seq),
        last: (replayed.last.ts_ns, replayed.last.seq),
        span_ns: (first.ts_ns, last.ts_ns),
        records: replayed.records,
        damage: replayed.damage.iter().map(ToString::to_string).collect(),
    };
    frames.push(encode(&CollectorMessage::ReplayDone(summary)).map_err(|e| e.to_string())?);
    Ok(frames)
}

/// Why a viewer's connection ended.
type Outcome = Result<(), String>;

/// Serves one viewer until it leaves or is disconnected; logs why.
pub async fn serve_viewer(stream: UnixStream, context: ViewerContext) {
    let peer = match stream.peer_cred() {
        Ok(cred) => format!(
            "viewer pid {} uid {} gid {}",
            cred.pid().unwrap_or(0),
            cred.uid(),
            cred.gid()
        ),
        Err(_) => "viewer (no credentials)".to_string(),
    };
    let uid = stream.peer_cred().map(|c| c.uid()).unwrap_or(u32::MAX);
    eprintln!("bpftop-ordered serve: {peer} connected");
    let (read, write) = stream.into_split();
    let mut connection = Connection {
        reader: FramedRead::new(read, ViewerFrames::default()),
        writer: write,
        context,
        uid,
        resyncs: 0,
    };
    match connection.run().await {
        Ok(()) => eprintln!("bpftop-ordered serve: {peer} left"),
        Err(reason) => eprintln!("bpftop-ordered serve: {peer} disconnected: {reason}"),
    }
}

struct Connection {
    reader: FramedRead<tokio::net::unix::OwnedReadHalf, ViewerFrames>,
    /// Frames are written as their length and the shared payload, without a copy into a
    /// per-viewer buffer (a codec's write buffer would keep the size of the largest frame).
    writer: tokio::net::unix::OwnedWriteHalf,
    context: ViewerContext,
    uid: u32,
    resyncs: u64,
}

enum Wake {
    Frame(Option<Result<ViewerFrame, std::io::Error>>),
    Delta(Option<Bytes>),
    Heartbeat,
    Silent,
}

impl Connection {
    async fn run(&mut self) -> Outcome {
        match self.read_message().await? {
            ViewerMessage::Hello { proto } if proto == PROTOCOL_VERSION => {}
            ViewerMessage::Hello { proto } => {
                let message = format!(
                    "speaks protocol {PROTOCOL_VERSION}, the viewer {proto}: use the same \
                     bpftop-ordered version on both sides"
                );
                let _ = self
                    .send_message(&CollectorMessage::Refused {
                        message: message.clone(),
                    })
                    .await;
                return Err(message);
            }
            other => return Err(format!("expected Hello, got {other:?}")),
        }
        let hello = self.context.hello.clone();
        self.send_message(&hello).await?;
        let since = match self.read_message().await? {
            ViewerMessage::Watch { since } => since,
            ViewerMessage::Replay {
                at_ns,
                from_ns,
                to_ns,
            } => return self.replay(at_ns, from_ns, to_ns).await,
            other => return Err(format!("expected Watch, got {other:?}")),
        };
        let mut subscription = self.subscribe(since, "watch")?;
        let mut heartbeat = interval(Duration::from_secs(1));
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            for frame in std::mem::take(&mut subscription.first) {
                self.send(frame).await?;
            }
            let wake = tokio::select! {
                frame = self.reader.next() => Wake::Frame(frame),
                delta = subscription.queue.recv() => Wake::Delta(delta),
                _ = heartbeat.tick() => Wake::Heartbeat,
                _ = sleep_until(last_heard + self.context.timeout) => Wake::Silent,
            };
            match wake {
                Wake::Frame(None) => return Ok(()),
                Wake::Frame(Some(Err(e))) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(())
                }
                Wake::Frame(Some(frame)) => {
                    last_heard = Instant::now();
                    let frame = frame.map_err(|e| format!("bad frame: {e}"))?;
                    let message = frame.message::<ViewerMessage>()?;
                    self.answer(message).await?;
                }
                Wake::Delta(Some(frame)) => self.send(frame).await?,
                Wake::Delta(None) if subscription.overflowed.load(Ordering::Acquire) => {
                    self.resyncs += 1;
                    eprintln!(
                        "bpftop-ordered serve: a viewer's queue overflowed: resync #{} by snapshot",
                        self.resyncs
                    );
                    subscription = self.subscribe(None, "queue overflow")?;
                }
                // The hub is gone: the collector is stopping.
                Wake::Delta(None) => return Ok(()),
                Wake::Heartbeat => {
                    let (seq, viewers) = {
                        let hub = super::lock(&self.context.hub);
                        (hub.position().seq, hub.viewers() as u32)
                    };
                    self.send_message(&CollectorMessage::Heartbeat {
                        seq,
                        resyncs: self.resyncs,
                        viewers,
                    })
                    .await?;
                }
                Wake::Silent => {
                    return Err(format!(
                        "silent for {:?} (no frame, or half of one)",
                        self.context.timeout
                    ))
                }
            }
        }
    }

    /// Answers a replay from the recording this collector writes, then ends the connection.
    async fn replay(
        &mut self,
        at_ns: Option<u64>,
        from_ns: Option<u64>,
        to_ns: Option<u64>,
    ) -> Outcome {
        let store = super::lock(&self.context.hub).recording();
        let answer = tokio::task::spawn_blocking(move || {
            let store = store.ok_or("this collector does not record (serve --record DIR)")?;
            replay_frames(store, at_ns, from_ns, to_ns)
        })
        .await
        .map_err(|e| e.to_string())?;
        match answer {
            Ok(frames) => {
                for frame in frames {
                    self.send(frame).await?;
                }
                Ok(())
            }
            Err(message) => {
                let message = message.to_string();
                self.send_message(&CollectorMessage::ReplayFailed { message })
                    .await
            }
        }
    }

    fn subscribe(
        &self,
        since: Option<crate::remote::protocol::Position>,
        reason: &str,
    ) -> Result<super::hub::Subscription, String> {
        super::lock(&self.context.hub)
            .subscribe(since, reason)
            .map_err(|e| e.to_string())
    }

    async fn answer(&mut self, message: ViewerMessage) -> Outcome {
        match message {
            ViewerMessage::Ping => Ok(()),
            ViewerMessage::Signal {
                request,
                tgid,
                start_ns,
                signal,
                comm,
            } => {
                let uid = self.uid;
                let text = tokio::task::spawn_blocking(move || {
                    super::signal_request::handle(
                        uid,
                        probe_common::ProcKey::new(tgid, start_ns),
                        signal,
                        &comm,
                    )
                })
                .await
                .map_err(|e| e.to_string())?;
                self.send_message(&CollectorMessage::SignalResult { request, text })
                    .await
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    async fn read_message(&mut self) -> Result<ViewerMessage, String> {
        let frame = timeout(self.context.timeout, self.reader.next())
            .await
            .map_err(|_| format!("silent for {:?} during the handshake", self.context.timeout))?
            .ok_or("left during the handshake")?
            .map_err(|e| format!("bad frame: {e}"))?;
        frame.message()
    }

    /// The viewer speaks the JSON-lines debug encoding.
    fn json(&self) -> bool {
        self.reader.decoder().json() == Some(true)
    }

    async fn send_message(&mut self, message: &CollectorMessage) -> Outcome {
        let frame = encode(message).map_err(|e| e.to_string())?;
        self.send(frame).await
    }

    /// Sends one postcard payload: as a frame, or re-encoded as a JSON line for a viewer of
    /// the debug encoding.
    async fn send(&mut self, frame: Bytes) -> Outcome {
        if self.json() {
            let message: CollectorMessage = decode(&frame).map_err(|e| e.to_string())?;
            let mut line = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
            line.push(b'\n');
            return self.write(&[], Bytes::from(line)).await;
        }
        // The length field (`encode` kept the payload within the frame limit, so it fits in
        // 4 bytes), then the payload.
        let length = (frame.len() as u32).to_be_bytes();
        self.write(&length, frame).await
    }

    /// One vectored write of `head` and `payload`, within the timeout.
    async fn write(&mut self, head: &[u8], payload: Bytes) -> Outcome {
        let mut buffers = bytes::Buf::chain(head, payload);
        let write = self.writer.write_all_buf(&mut buffers);
        match timeout(self.context.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write failed: {e}")),
            Err(_) => Err(format!(
                "took no frame for {:?} (stopped reading)",
                self.context.timeout
            )),
        }
    }
}

/// The fixed part of the handshake for a collector.
pub fn hello(
    epoch: u64,
    modes: Vec<bridge::contract::ModeKind>,
    store: &bridge::store::TableStore,
    notes: Vec<String>,
) -> CollectorMessage {
    let retention = store.retention();
    CollectorMessage::HelloAck {
        proto: PROTOCOL_VERSION,
        epoch,
        tables: TABLES.iter().map(|t| t.to_string()).collect(),
        modes,
        pid: std::process::id(),
        start_tolerance_ns: store
            .mode(bridge::contract::ModeKind::Ring)
            .processes
            .start_tolerance_ns(),
        retention_age_ns: retention.max_age_ns,
        retention_rows: retention.max_finished as u64,
        notes,
    }
}
