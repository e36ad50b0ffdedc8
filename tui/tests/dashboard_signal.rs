//! The signal dialog (F9) against real processes: a chosen and confirmed signal reaches the
//! selected process (checked with waitpid), a pid now used by another process is refused,
//! pid 1 needs a second confirmation (and is never signalled here), a cancelled dialog
//! sends nothing, and a signal the kernel refuses (EPERM) is shown as such.

mod support;

use std::{
    os::unix::process::ExitStatusExt,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bpftop_ordered::dashboard::{app::Overlay, signal::SignalStage};
use bridge::{
    contract::{ProcessRow, RowOrigin},
    procfs_seed,
};
use crossterm::event::KeyCode;
use probe_common::ProcKey;
use support::Harness;

/// A row for `pid` as the /proc seed would make it (start time converted to CLOCK_MONOTONIC),
/// shifted by `start_shift_ns` to pretend another process had the pid.
fn row_of(pid: u32, start_shift_ns: u64) -> ProcessRow {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
    let fields = procfs_seed::parse_stat_line(&stat).unwrap();
    let start_ns = procfs_seed::start_ticks_to_monotonic_ns(
        fields.starttime,
        procfs_seed::clock_tick_ns(),
        procfs_seed::boottime_minus_monotonic_ns(),
    ) + start_shift_ns;
    ProcessRow {
        key: ProcKey::new(pid, start_ns),
        state: bridge::contract::ProcInfo {
            start_ns,
            ppid: fields.ppid,
            comm: fields.comm,
            ..Default::default()
        },
        seq: 0,
        changed_ns: 0,
        origin: RowOrigin::Procfs,
    }
}

/// A harness showing only `row` (seeded into every mode, filtered by its pid).
fn showing(row: ProcessRow) -> Harness {
    let mut h = Harness::new();
    let pid = row.key.tgid;
    h.app.store_mut().seed(&[row], &[]);
    h.press(KeyCode::Char('/'));
    h.type_text(&format!("pid:{pid}"));
    h.press(KeyCode::Enter);
    let screen = h.screen();
    assert!(screen.contains(&pid.to_string()), "{screen}");
    h
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("300")
        .stdout(Stdio::null())
        .spawn()
        .expect("sleep starts")
}

/// The child's wait status within 5 s, or `None` while it runs.
fn wait_status(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_confirmed_signal_reaches_the_selected_process() {
    let mut child = sleeper();
    let mut h = showing(row_of(child.id(), 0));
    h.press(KeyCode::F(9));
    assert_eq!(
        h.app.overlay(),
        Overlay::Signal(SignalStage::Choose { cursor: 0 })
    );
    assert!(h.screen().contains("SIGTERM"), "{}", h.screen());
    // Down to SIGINT, then back up to SIGTERM; Enter asks, `y` sends.
    h.press(KeyCode::Down);
    h.press(KeyCode::Up);
    h.press(KeyCode::Enter);
    assert!(
        h.screen().contains("Send SIGTERM to sleep"),
        "{}",
        h.screen()
    );
    assert!(child.try_wait().unwrap().is_none(), "nothing sent before y");
    h.press(KeyCode::Char('y'));
    let status = wait_status(&mut child).expect("the sleeper ended");
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    let pid = child.id();
    assert_eq!(
        h.app.status(),
        Some(format!("sent SIGTERM to sleep (pid {pid})").as_str())
    );
    assert_eq!(h.app.overlay(), Overlay::None);
}

/// Without CAP_KILL, root may not signal another user's process: the kernel says EPERM and the
/// status line shows it; the process lives on. (Capabilities are per thread: the dialog runs
/// in a thread that dropped CAP_KILL from its effective set.)
#[test]
fn a_refused_signal_shows_eperm_and_sends_nothing() {
    use rustix::thread::{capabilities, set_capabilities, CapabilityFlags};
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "300",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("setpriv starts");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| s.contains("Uid:\t65534") && s.contains("Name:\tsleep"))
    {
        assert!(Instant::now() < deadline, "the sleeper never ran as nobody");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, screen) = std::thread::spawn(move || {
        // Without CAP_KILL already (not root), the kernel refuses all the same.
        let mut caps = capabilities(None).expect("capget");
        caps.effective.remove(CapabilityFlags::KILL);
        set_capabilities(None, caps).expect("capset");
        let mut h = showing(row_of(pid, 0));
        h.press(KeyCode::F(9));
        h.press(KeyCode::Enter);
        h.press(KeyCode::Char('y'));
        (h.app.status().map(str::to_string), h.screen())
    })
    .join()
    .unwrap();
    let status = status.unwrap_or_default();
    assert!(
        status.contains("EPERM") && status.contains(&pid.to_string()),
        "{status:?}\n{screen}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sleeper must live on"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_reused_pid_and_a_cancelled_dialog_send_nothing() {
    let mut child = sleeper();
    let pid = child.id();
    // The row says the process started 5 s later than the one that has the pid now.
    let mut h = showing(row_of(pid, 5_000_000_000));
    h.press(KeyCode::F(9));
    h.press(KeyCode::Enter);
    h.press(KeyCode::Char('y'));
    assert_eq!(
        h.app.status(),
        Some(format!("not sent: pid {pid} now belongs to another process than sleep").as_str())
    );
    // A cancelled dialog (any key but y at the question) sends nothing either.
    let mut h = showing(row_of(pid, 0));
    h.press(KeyCode::F(9));
    h.press(KeyCode::Enter);
    h.press(KeyCode::Char('n'));
    assert_eq!(h.app.status(), Some("no signal sent"));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sleeper still runs"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn pid_one_needs_a_second_confirmation() {
    let mut h = showing(row_of(1, 0));
    h.press(KeyCode::F(9));
    h.press(KeyCode::Enter);
    h.press(KeyCode::Char('y'));
    assert_eq!(
        h.app.overlay(),
        Overlay::Signal(SignalStage::ConfirmAgain { signal: 0 })
    );
    let screen = h.screen();
    assert!(screen.contains("pid 1 (init)"), "{screen}");
    assert!(screen.contains("Really send SIGTERM?"), "{screen}");
    // Esc: nothing is sent to init.
    h.press(KeyCode::Esc);
    assert_eq!(h.app.status(), Some("no signal sent"));
    assert_eq!(h.app.overlay(), Overlay::None);
}

#[test]
fn the_connections_table_points_to_the_processes_table() {
    let mut h = Harness::new();
    h.press(KeyCode::Tab);
    h.press(KeyCode::F(9));
    assert_eq!(h.app.overlay(), Overlay::None);
    assert_eq!(
        h.app.status(),
        Some("signals go to processes: switch to the Processes table (Tab)")
    );
}

/// Attached (`--attach`): the confirmed signal is not sent here but asked of the collector,
/// with the row's identity; the collector's answer becomes the status line.
#[test]
fn an_attached_dashboard_asks_the_collector_and_shows_its_answer() {
    use bpftop_ordered::remote::{feed::FeedEvent, protocol::ViewerMessage, replica::ReplicaEvent};
    let mut child = sleeper();
    let row = row_of(child.id(), 0);
    let key = row.key;
    let mut h = showing(row);
    let (requests, asked) = crossbeam_channel::bounded(4);
    h.app
        .attach_to(std::path::Path::new("/run/test.sock"), requests);
    h.press(KeyCode::F(9));
    h.press(KeyCode::Enter);
    h.press(KeyCode::Char('y'));
    assert_eq!(
        asked.try_recv().unwrap(),
        ViewerMessage::Signal {
            request: 0,
            tgid: key.tgid,
            start_ns: key.start_ns,
            signal: libc::SIGTERM,
            comm: "sleep".into(),
        }
    );
    assert_eq!(h.app.status(), Some("asked the collector to send SIGTERM"));
    assert!(
        wait_status(&mut child).is_none(),
        "nothing was sent locally"
    );
    h.app.apply_feed(FeedEvent::Data(ReplicaEvent::SignalResult(
        "not sent: uid 1000 may not signal sleep".into(),
    )));
    assert_eq!(
        h.app.status(),
        Some("not sent: uid 1000 may not signal sleep")
    );
    h.app.apply_feed(FeedEvent::Gone("connection lost".into()));
    assert!(
        h.screen().contains("collector gone, retrying"),
        "{}",
        h.screen()
    );
    let _ = child.kill();
    let _ = child.wait();
}
