//! `serve --record` / `record` and `dump --replay` end to end on the real kernel (root; a
//! skip is a failure under `CI=true`): a scripted workload recorded, the recorder killed
//! with SIGKILL, the replay at and around known times compared with the live rows; a
//! damaged journal; a full disk.

mod kernel_support;
mod serve_support;

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant, SystemTime},
};

use kernel_support::{num, privileged, text, HeldConnections, TempDir, BIN};
use serde_json::Value;
use serve_support::{attached_dump, Collector};

/// Fields of a row that live and replayed dumps of one collector must report alike: every
/// field (the replay rebuilds the collector's rows bit for bit); none is read from a clock at
/// print time.
fn same_row(live: &Value, replayed: &Value, what: &str) {
    assert_eq!(
        live, replayed,
        "{what}: live and replayed rows differ\n live:     {live}\n replayed: {replayed}"
    );
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_nanos(time).to_string()
}

/// `dump --replay DIR --table TABLE --format json ARGS`; (exit code, JSON lines, stderr).
fn replay(dir: &Path, table: &str, args: &[&str]) -> (i32, Vec<Value>, String) {
    let output = Command::new(BIN)
        .args(["dump", "--replay"])
        .arg(dir)
        .args(["--table", table, "--format", "json", "--mode", "ring"])
        .args(args)
        .output()
        .expect("dump --replay");
    lines(output)
}

fn lines(output: Output) -> (i32, Vec<Value>, String) {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let rows = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{stderr}")))
        .collect();
    (output.status.code().unwrap_or(-1), rows, stderr)
}

fn rows_where<'a>(rows: &'a [Value], pick: impl Fn(&Value) -> bool + 'a) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| {
            r.get("stats").is_none() && r.get("replay").is_none() && r.get("attach").is_none()
        })
        .filter(|r| pick(r))
        .collect()
}

fn replay_line(rows: &[Value]) -> &Value {
    rows.iter()
        .find_map(|r| r.get("replay"))
        .expect("a replay line")
}

#[test]
fn a_recording_killed_with_sigkill_replays_what_the_live_view_showed() {
    let _test = privileged!("a_recording_killed_with_sigkill_replays_what_the_live_view_showed");
    let dir = TempDir::new("record");
    let store = dir.path().join("rec");
    let store_text = store.to_str().unwrap().to_string();
    let mut collector = Collector::start(
        "record-serve",
        &[
            "--modes",
            "ring",
            "--record",
            &store_text,
            "--record-keyframe-every",
            "2s",
        ],
    );
    collector.wait_for_log("recording to", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    let before = SystemTime::now();
    std::thread::sleep(Duration::from_millis(100));
    let mut child = Command::new("/bin/sh")
        .args(["-c", "sleep 0.3; exit 7"])
        .spawn()
        .expect("sh");
    let pid = child.id() as u64;
    std::thread::sleep(Duration::from_millis(150));
    let while_running = SystemTime::now();
    let status = child.wait().expect("wait sh");
    assert_eq!(status.code(), Some(7));
    let held = HeldConnections::open(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, "bto-rcli", "bto-rsrv");
    let port = held.port() as u64;
    // The exit and the connection reach the tables within the flush period.
    std::thread::sleep(Duration::from_millis(1500));
    let gid = collector.group.gid;
    let live_processes = attached_dump(&collector.socket, gid, "processes", &["--duration", "0s"]);
    let live_connections =
        attached_dump(&collector.socket, gid, "connections", &["--duration", "0s"]);
    let live_at = SystemTime::now();
    // Past the writer's batch wait.
    std::thread::sleep(Duration::from_millis(300));
    // While the recorder holds the store: through its socket.
    let at = rfc3339(live_at);
    let (code, through_socket, stderr) = replay(&store, "processes", &["--at", &at]);
    assert_eq!(code, 0, "{stderr}");
    let via = &replay_line(&through_socket)["via_socket"];
    assert_eq!(via.as_str(), collector.socket.to_str(), "{via}");
    // Then SIGKILL mid-recording.
    std::thread::sleep(Duration::from_millis(900));
    collector.kill9();

    let is_sh = |r: &Value| num(r, "pid") == pid;
    let client = |r: &Value| num(r, "dport") == port && text(r, "saddr") == "127.0.0.1";
    let live_sh = rows_where(&live_processes, is_sh);
    assert_eq!(live_sh.len(), 1, "live: {live_sh:?}");
    assert_eq!(num(live_sh[0], "exit_code"), 7);
    let live_client = rows_where(&live_connections, client);
    assert_eq!(live_client.len(), 1, "live: {live_client:?}");
    assert_eq!(num(live_client[0], "bytes_sent"), 4);

    same_row(
        live_sh[0],
        rows_where(&through_socket, is_sh)[0],
        "the exited sh through the socket",
    );
    // At the moment of the live dumps: the same rows, field for field.
    let (code, rows, stderr) = replay(&store, "processes", &["--at", &at]);
    assert_eq!(code, 0, "{stderr}");
    let replayed = rows_where(&rows, is_sh);
    assert_eq!(replayed.len(), 1, "replayed at {at}: {stderr}");
    same_row(live_sh[0], replayed[0], "the exited sh");
    let line = replay_line(&rows);
    assert!(line["damaged"].as_array().unwrap().is_empty(), "{line}");
    let (code, rows, stderr) = replay(&store, "connections", &["--at", &at]);
    assert_eq!(code, 0, "{stderr}");
    let replayed = rows_where(&rows, client);
    assert_eq!(replayed.len(), 1, "replayed at {at}: {stderr}");
    same_row(live_client[0], replayed[0], "the loopback client");

    // Around it: before the sh started it is not there; while it ran it had not exited.
    let (_, rows, stderr) = replay(&store, "processes", &["--at", &rfc3339(before)]);
    assert!(
        rows_where(&rows, is_sh).is_empty(),
        "sh before it started: {stderr}"
    );
    let (_, rows, stderr) = replay(&store, "processes", &["--at", &rfc3339(while_running)]);
    let running = rows_where(&rows, is_sh);
    assert_eq!(running.len(), 1, "sh 150 ms after its start: {stderr}");
    assert!(running[0]["exit_code"].is_null(), "{}", running[0]);
    assert_ne!(text(running[0], "state"), "exited", "{}", running[0]);
    // The range: the sh with its last state in it, once.
    let (code, rows, stderr) = replay(
        &store,
        "processes",
        &["--from", &rfc3339(before), "--to", &at],
    );
    assert_eq!(code, 0, "{stderr}");
    let ranged = rows_where(&rows, is_sh);
    assert_eq!(ranged.len(), 1, "{stderr}");
    same_row(live_sh[0], ranged[0], "the sh over the range");

    // At most the last second is lost: the last record is within 1 s of the kill.
    let (_, rows, _) = replay(&store, "processes", &[]);
    let last =
        humantime::parse_rfc3339(replay_line(&rows)["last_record"].as_str().unwrap()).unwrap();
    let killed = live_at + Duration::from_millis(1200);
    let lost = killed.duration_since(last).unwrap_or_default();
    println!("last record {:?} before the kill", lost);
    assert!(lost <= Duration::from_secs(1), "lost {lost:?} of recording");

    // Reopening after the kill: the recorder continues the same store.
    collector.restart();
    collector.wait_for_log("recording to", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    collector.kill9();
    let (code, rows, stderr) = replay(&store, "processes", &["--at", &at]);
    assert_eq!(code, 0, "{stderr}");
    same_row(
        live_sh[0],
        rows_where(&rows, is_sh)[0],
        "the sh after a restart",
    );
    drop(held);
}

#[test]
fn a_damaged_journal_is_named_and_the_readable_part_replays() {
    let _test = privileged!("a_damaged_journal_is_named_and_the_readable_part_replays");
    let dir = TempDir::new("record-damage");
    let store = dir.path().join("rec");
    let mut recorder = Command::new(BIN)
        .arg("record")
        .arg(&store)
        .args(["--modes", "ring", "--record-keyframe-every", "1s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("record");
    let limit = Instant::now() + Duration::from_secs(30);
    while !store.join("0.jnl").exists() {
        assert!(Instant::now() < limit, "no journal after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(3500));
    let (code, whole, stderr) = replay(&store, "processes", &[]);
    assert_eq!(code, 1, "the store is held: {stderr}");
    assert!(stderr.contains("open in another process"), "{stderr}");
    let _ = recorder.kill();
    let _ = recorder.wait();
    let _ = whole;
    let (code, whole, stderr) = replay(&store, "processes", &[]);
    assert_eq!(code, 0, "{stderr}");
    let whole_last = replay_line(&whole)["last_record"]
        .as_str()
        .unwrap()
        .to_string();

    // Overwrite bytes in the middle of the journal.
    let journal = store.join("0.jnl");
    let mut bytes = std::fs::read(&journal).unwrap();
    // The middle of what was written (the file may be preallocated: zeros after it).
    let written = bytes.iter().rposition(|b| *b != 0).unwrap_or(0);
    let middle = written / 2;
    println!(
        "journal {} bytes, written {written}, damaging at {middle}",
        bytes.len()
    );
    bytes[middle..middle + 64].fill(0xa5);
    std::fs::write(&journal, &bytes).unwrap();
    let (code, rows, stderr) = replay(&store, "processes", &[]);
    println!("{stderr}");
    assert_eq!(code, 1, "damage is an error: {stderr}");
    // Either fjall's recovery reads the damage as a torn batch and cuts the journal there,
    // or it refuses the journal and the reader cuts a copy: both are named.
    assert!(
        stderr.contains("journal 0.jnl is damaged") || stderr.contains("journal 0.jnl was cut"),
        "{stderr}"
    );
    let line = replay_line(&rows);
    let last = line["last_record"].as_str().unwrap();
    assert!(last < whole_last.as_str(), "{last} vs {whole_last}");
    assert!(
        !rows_where(&rows, |_| true).is_empty(),
        "the readable part has rows"
    );
    println!("damaged: {}", line["damaged"]);
    // The cut is named again by a later replay.
    let (code, _, again) = replay(&store, "processes", &[]);
    assert_eq!(code, 1, "{again}");
    assert!(again.contains("0.jnl"), "{again}");
    if !stderr.contains("is damaged") {
        // fjall took it for a torn batch: the journal is cut and whole again.
        return;
    }
    // A journal fjall refuses: the reader worked on a copy, and a recorder refuses it too.
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        bytes,
        "the recording was written"
    );
    let refused = Command::new(BIN)
        .arg("record")
        .arg(&store)
        .args(["--modes", "ring"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot record"), "{stderr}");
    assert_eq!(std::fs::read(&journal).unwrap(), bytes);
}

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_recording_not_the_viewers() {
    let _test = privileged!("a_full_disk_stops_the_recording_not_the_viewers");
    let dir = TempDir::new("record-full");
    let mount = dir.path().join("small");
    std::fs::create_dir_all(&mount).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount");
    assert!(status.success(), "mount tmpfs: {status}");
    let _tmpfs = Tmpfs(mount.clone());
    let store = mount.join("rec");
    let collector = Collector::start(
        "record-full-serve",
        &[
            "--modes",
            "ring",
            "--record",
            store.to_str().unwrap(),
            "--record-keyframe-every",
            "1s",
        ],
    );
    // Keyframes of every process, once a second, fill 512 KiB within seconds.
    collector.wait_for_log("WARNING: recording to", Duration::from_secs(60));
    assert!(
        collector.log_text().contains("stopped"),
        "{}",
        collector.log_text()
    );
    // The collector and its viewers go on: a new process is still seen.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "exit 5"])
        .spawn()
        .unwrap();
    let pid = child.id() as u64;
    assert_eq!(child.wait().unwrap().code(), Some(5));
    std::thread::sleep(Duration::from_millis(1500));
    let rows = attached_dump(
        &collector.socket,
        collector.group.gid,
        "processes",
        &["--duration", "0s"],
    );
    let seen = rows_where(&rows, |r| num(r, "pid") == pid);
    assert_eq!(seen.len(), 1, "the live view after the disk filled");
    assert_eq!(num(seen[0], "exit_code"), 5);
    println!("{}", collector.log_text());
}
