//! Real-kernel tests of the connections table in ring mode, through the real binary:
//! a loopback TCP connection with known byte counts each way, over IPv4 and IPv6 (issue 2).
mod kernel_support;

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream},
    time::Duration,
};

use kernel_support::{
    accept_within, num, privileged_or_skip, run_dumps, skip_or_fail, text, DumpSpec,
};
use serde_json::Value;

const CLIENT_TO_SERVER: usize = 100_000;
const SERVER_TO_CLIENT: usize = 5_000;

/// What the workload observed: the listener's port and the client's local port.
struct Transfer {
    listen_port: u16,
    client_port: u16,
}

/// One connection: the client (thread `bto-client`) connects, writes 100,000 bytes, reads
/// 5,000, closes; the server (thread `bto-server`) accepts, reads exactly 100,000, writes
/// 5,000, closes.
fn transfer(listener: TcpListener) -> Transfer {
    let addr = listener.local_addr().unwrap();
    let server = std::thread::Builder::new()
        .name("bto-server".into())
        .spawn(move || -> std::io::Result<()> {
            let mut stream = accept_within(&listener, Duration::from_secs(10))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut buf = vec![0u8; CLIENT_TO_SERVER];
            stream.read_exact(&mut buf)?;
            stream.write_all(&vec![0x5a; SERVER_TO_CLIENT])?;
            Ok(())
        })
        .unwrap();
    let client = std::thread::Builder::new()
        .name("bto-client".into())
        .spawn(move || -> std::io::Result<u16> {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            let port = stream.local_addr()?.port();
            stream.write_all(&vec![0xa5; CLIENT_TO_SERVER])?;
            let mut buf = vec![0u8; SERVER_TO_CLIENT];
            stream.read_exact(&mut buf)?;
            Ok(port)
        })
        .unwrap();
    let client_port = client.join().unwrap().expect("client");
    server.join().unwrap().expect("server");
    Transfer {
        listen_port: addr.port(),
        client_port,
    }
}

/// The test of one address family (skipped without the privileges to load probes).
fn check_transfer(test: &str, ip: IpAddr) {
    if !privileged_or_skip(test) {
        return;
    }
    let listener = match TcpListener::bind((ip, 0)) {
        Ok(l) => l,
        Err(e) => {
            skip_or_fail(test, &format!("cannot listen on {ip}: {e}"));
            return;
        }
    };
    let spec = DumpSpec::json("connections", &["--mode", "ring"]);
    let mut listener = Some(listener);
    let (outputs, t) = run_dumps(
        &[spec],
        Duration::from_secs(3),
        Duration::from_millis(500),
        || {
            let listener = listener
                .take()
                .unwrap_or_else(|| TcpListener::bind((ip, 0)).expect("listen"));
            transfer(listener)
        },
    );
    let out = &outputs[0];
    let family = if ip.is_ipv4() { 4 } else { 6 };
    let ip_text = ip.to_string();
    let find = |sport: u16, dport: u16| -> Vec<&Value> {
        out.rows_of("ring")
            .filter(|r| {
                num(r, "family") == family
                    && text(r, "saddr") == ip_text
                    && text(r, "daddr") == ip_text
                    && num(r, "sport") == sport as u64
                    && num(r, "dport") == dport as u64
            })
            .collect()
    };
    let client = find(t.client_port, t.listen_port);
    let server = find(t.listen_port, t.client_port);
    println!("{test}: client row {client:?}");
    println!("{test}: server row {server:?}");
    assert_eq!(client.len(), 1, "client rows: {client:?}");
    assert_eq!(server.len(), 1, "server rows: {server:?}");
    let me = std::process::id() as u64;
    // The owner is the process, named as `ss -p` names it: its leader's comm (not the name of
    // the thread that connected or accepted).
    let process_comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    for (row, sent, received) in [
        (client[0], CLIENT_TO_SERVER, SERVER_TO_CLIENT),
        (server[0], SERVER_TO_CLIENT, CLIENT_TO_SERVER),
    ] {
        assert_eq!(num(row, "pid"), me, "{row}");
        assert_eq!(text(row, "comm"), process_comm.trim(), "{row}");
        assert_eq!(text(row, "state"), "CLOSE", "{row}");
        let seen: Vec<&str> = row["states_seen"]
            .as_array()
            .expect("states_seen")
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(
            seen.contains(&"ESTABLISHED") && seen.contains(&"CLOSE"),
            "{row}"
        );
        assert_eq!(num(row, "bytes_sent"), sent as u64, "{row}");
        assert_eq!(num(row, "bytes_received"), received as u64, "{row}");
        assert!(row["end_ns"].as_u64().is_some(), "{row}");
        assert_eq!(text(row, "origin"), "kernel", "{row}");
    }
    // The client went through SYN-SENT (it connected).
    assert!(
        client[0]["states_seen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "SYN-SENT"),
        "{}",
        client[0]
    );
}

#[test]
fn loopback_ipv4_connection_has_tuple_owner_states_and_exact_bytes() {
    check_transfer(
        "loopback_ipv4_connection_has_tuple_owner_states_and_exact_bytes",
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
}

#[test]
fn loopback_ipv6_connection_has_tuple_owner_states_and_exact_bytes() {
    check_transfer(
        "loopback_ipv6_connection_has_tuple_owner_states_and_exact_bytes",
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    );
}
