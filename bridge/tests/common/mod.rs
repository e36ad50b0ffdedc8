//! Shared helpers for the real-kernel integration tests.
#![allow(dead_code)]

/// True when the tests may load probes. Without privileges they skip with a printed reason,
/// except under `CI=true`, where a skip is a failure.
pub fn privileged_or_skip(test: &str) -> bool {
    match bridge::probe::check_capabilities() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: cannot run under CI=true: {e}");
            }
            eprintln!("SKIP {test}: {e}");
            false
        }
    }
}

use std::time::{Duration, Instant};

use bridge::{contract::ModeMessage, session::Session, store::TableStore};

/// Applies a message as `dump` does; a mode failure fails the test.
fn apply(store: &mut TableStore, message: ModeMessage) {
    match message {
        ModeMessage::Failed { mode, error } => {
            panic!("{mode} mode failed: {error}");
        }
        other => store.handle(other),
    }
}

/// Applies the session's messages (as `dump` does) until `done` or `limit` passes.
pub fn pump_until(
    session: &Session,
    store: &mut TableStore,
    limit: Duration,
    mut done: impl FnMut(&TableStore) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    loop {
        if done(store) {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        let wait = (end - now).min(Duration::from_millis(20));
        if let Ok(message) = session.messages().recv_timeout(wait) {
            apply(store, message);
        }
        while let Ok(message) = session.messages().try_recv() {
            apply(store, message);
        }
    }
}
