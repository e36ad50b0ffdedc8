//! A viewer that stays attached: a thread that runs a [`Replica`] and, when the collector is
//! gone, says so and reconnects every second (resuming from its last position when the
//! collector still holds it, else taking a new snapshot). The dashboard reads its events and
//! sends its requests through channels; the thread ends when the events' receiver is dropped.

use std::{io, path::PathBuf, thread, time::Duration};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::{
    protocol::{Position, ViewerMessage},
    replica::{CollectorInfo, LinkCounters, Replica, ReplicaEvent},
};

/// A reconnect is tried this often while the collector is gone.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the feed tells the dashboard.
#[derive(Debug)]
pub enum FeedEvent {
    /// Data or an answer from the collector.
    Data(ReplicaEvent),
    /// Connected (again) to this collector.
    Connected(CollectorInfo),
    /// The collector is gone (why); the feed retries every [`RETRY_EVERY`].
    Gone(String),
    /// The link's counters changed.
    Counters(LinkCounters),
}

/// Starts the feed on a connected `replica`; returns its events and where requests
/// ([`ViewerMessage::Signal`]) go.
pub fn spawn(replica: Replica) -> io::Result<(Receiver<FeedEvent>, Sender<ViewerMessage>)> {
    let (events, receiver) = crossbeam_channel::bounded(1024);
    let (requests, request_receiver) = crossbeam_channel::bounded(16);
    thread::Builder::new()
        .name("attach-feed".into())
        .spawn(move || run(replica, &events, &request_receiver))?;
    Ok((receiver, requests))
}

fn run(first: Replica, events: &Sender<FeedEvent>, requests: &Receiver<ViewerMessage>) {
    let path: PathBuf = first.path().to_path_buf();
    let mut position: Option<Position> = None;
    let mut replica = Some(first);
    let mut counters = LinkCounters::default();
    loop {
        let Some(link) = replica.as_mut() else {
            // Requests made while the collector is gone are answered at once.
            while let Ok(request) = requests.try_recv() {
                if matches!(request, ViewerMessage::Signal { .. }) {
                    let text = "not sent: the collector is gone".to_string();
                    if events
                        .send(FeedEvent::Data(ReplicaEvent::SignalResult(text)))
                        .is_err()
                    {
                        return;
                    }
                }
            }
            thread::sleep(RETRY_EVERY);
            match Replica::connect(&path, position) {
                Ok(link) => {
                    if events
                        .send(FeedEvent::Connected(link.info().clone()))
                        .is_err()
                    {
                        return;
                    }
                    replica = Some(link);
                }
                Err(error) => {
                    if events.send(FeedEvent::Gone(error.to_string())).is_err() {
                        return;
                    }
                }
            }
            continue;
        };
        let step = (|| -> Result<bool, super::replica::LinkError> {
            loop {
                match requests.try_recv() {
                    Ok(request) => link.request(&request)?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(false),
                }
            }
            let event = link.next_event()?;
            let now = link.counters();
            let mut alive = true;
            if let Some(event) = event {
                alive &= events.send(FeedEvent::Data(event)).is_ok();
            }
            if now.snapshots != counters.snapshots || now.resyncs != counters.resyncs {
                alive &= events.send(FeedEvent::Counters(now)).is_ok();
            }
            counters = now;
            Ok(alive)
        })();
        match step {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                position = link.position();
                replica = None;
                // A new link counts from zero again.
                counters = LinkCounters::default();
                if events.send(FeedEvent::Gone(format!("{error}"))).is_err() {
                    return;
                }
            }
        }
    }
}
