//! `bpftop-ordered --attach`: the same dashboard, fed from a collector's socket instead of a
//! local session. The replica's store replaces the app's at every snapshot, deltas apply as a
//! session's messages would, signals go to the collector as requests (it checks the viewer's
//! credentials), and the link's state is a footer note: "collector gone, retrying" while it
//! is down, the resync count once the queue has overflowed.

use std::path::Path;

use bridge::stats::monotonic_ns;

use super::{app::App, checked_settings, show, DashboardOptions};
use crate::remote::{
    feed::{self, FeedEvent},
    replica::{apply_to, Replica, ReplicaEvent},
};

/// Runs the attached dashboard until the user quits. Exit codes as for [`super::run`], with 3
/// for no access to the socket and 1 when no collector answers at start.
pub fn run(options: DashboardOptions, path: &Path) -> anyhow::Result<i32> {
    let mut settings = match checked_settings(&options) {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    let replica = match Replica::connect(path, None) {
        Ok(replica) => replica,
        Err(error) => {
            eprintln!("bpftop-ordered: {error}");
            return Ok(match &error {
                crate::remote::replica::LinkError::Connect(e) => e.exit_code(),
                crate::remote::replica::LinkError::Lost(_) => 1,
            });
        }
    };
    let info = replica.info().clone();
    settings.app.running_modes = info.modes.clone();
    if !info.modes.contains(&settings.app.mode) {
        settings.app.mode = info.modes.first().copied().unwrap_or(settings.app.mode);
    }
    let store = bridge::store::TableStore::new(0, bridge::table::Retention::default());
    let mut app = App::new(
        store,
        settings.app,
        super::app::HostInfo::detect(),
        monotonic_ns(),
    );
    let (events, requests) = feed::spawn(replica)?;
    app.attach_to(path, requests);
    app.apply_feed(FeedEvent::Connected(info));
    show(&mut app, crossbeam_channel::never(), events)
}

impl App {
    /// Applies one event of an attached viewer's feed.
    pub fn apply_feed(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Data(ReplicaEvent::SignalResult(text)) => self.set_status(text),
            FeedEvent::Data(event) => {
                let store = self.store_for_feed();
                apply_to(store, event);
                self.data_changed();
            }
            FeedEvent::Connected(info) => {
                let path = self.attached_path().unwrap_or_default();
                self.set_notes(info.notes.clone());
                self.set_status(format!("attached to {path}: collector pid {}", info.pid));
            }
            FeedEvent::Gone(reason) => {
                self.set_notes(vec![format!("collector gone, retrying ({reason})")]);
            }
            FeedEvent::Counters(counters) if counters.resyncs > 0 => {
                self.set_notes(vec![format!(
                    "resynced {}× (this viewer fell behind the collector)",
                    counters.resyncs
                )]);
            }
            FeedEvent::Counters(_) => {}
        }
    }
}
