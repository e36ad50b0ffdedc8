//! The command-line map's lifecycle (issue 10): a process's line captured at exec reaches the
//! store through the housekeeping thread; when the kernel reaper deletes the exited process's
//! state entry, its PROC_CMDLINE entry goes too (the map holds live and recent processes), and
//! the store keeps the line for the row.
mod common;

use common::pump_until;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use bridge::{
    contract::ModeKind,
    map_batch::MapDump,
    session::{Session, SessionConfig},
    store::TableStore,
};

#[test]
fn a_reaped_process_leaves_the_kernel_map_and_stays_in_the_store() {
    let test = "a_reaped_process_leaves_the_kernel_map_and_stays_in_the_store";
    if !common::privileged_or_skip(test) {
        return;
    }
    let mut config = SessionConfig::with_modes(&[ModeKind::Ring]);
    config.kernel_retention = Duration::from_secs(1);
    config.poll_interval = Duration::from_millis(100);
    let session = Session::start(config).expect("session starts");
    let mut store = session.new_store();
    let status = Command::new("/bin/true")
        .args(["bto-cmdline-marker", "42"])
        .status()
        .expect("true runs");
    assert!(status.success());
    let line = "/bin/true bto-cmdline-marker 42";
    let row_of = |store: &TableStore| {
        store
            .mode(ModeKind::Ring)
            .processes
            .rows()
            .iter()
            .find(|r| store.cmdline(r).is_some_and(|c| &*c.text == line))
            .map(|r| r.key)
    };
    pump_until(&session, &mut store, Duration::from_secs(5), |s| {
        row_of(s).is_some()
    });
    let key = row_of(&store).unwrap_or_else(|| panic!("{test}: no row with {line:?} in the store"));
    let in_map = |session: &Session| {
        session
            .state_maps()
            .read_cmdlines(&mut MapDump::new())
            .unwrap()
            .iter()
            .any(|(k, _)| *k == key)
    };
    // Exited at once; the reaper (every 500 ms, retention 1 s) deletes it within ~2 s.
    let deadline = Instant::now() + Duration::from_secs(6);
    while in_map(&session) {
        assert!(
            Instant::now() < deadline,
            "{test}: {key:?} still in PROC_CMDLINE after 6 s"
        );
        pump_until(&session, &mut store, Duration::from_millis(200), |_| false);
    }
    assert_eq!(
        row_of(&store),
        Some(key),
        "{test}: the store keeps the line"
    );
    eprintln!("{test}: {key:?} left PROC_CMDLINE after the reap; the store keeps {line:?}");
    session.stop();
}
