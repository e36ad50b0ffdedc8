//! Byte counters of the TCP sockets that exist at start-up, from the kernel's `sock_diag`
//! netlink interface (`INET_DIAG_INFO` → `struct tcp_info`), the source `ss -ti` uses.
//!
//! The probes read the same kernel counters (`tcp_sock.bytes_acked`, `bytes_received`) whenever
//! they see a connection, so a seeded row shows the same lifetime totals a kernel row would.
//! `/proc/net/tcp` has no byte counts.

use std::collections::HashMap;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{nlas::Nla, ExtensionFlags, InetRequest, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use probe_common::ConnKey;

/// `(payload bytes sent once, payload bytes received)` of one socket: `tcpi_bytes_sent −
/// tcpi_bytes_retrans`, and `tcpi_bytes_received` less the FIN when the peer closed (the
/// probes' definition, see `probe_common::ConnState`).
pub type ByteCounters = (u64, u64);

/// Reads the byte counters of every TCP socket (IPv4 and IPv6) in this network namespace,
/// keyed like the probes key connections (family, addresses in network order, ports in host
/// order). Sockets without a `tcp_info` (TIME-WAIT, request sockets) are absent.
pub fn tcp_byte_counters() -> std::io::Result<HashMap<ConnKey, ByteCounters>> {
    let mut out = HashMap::new();
    for family in [AF_INET, AF_INET6] {
        dump_family(family, &mut out)?;
    }
    Ok(out)
}

fn dump_family(family: u8, out: &mut HashMap<ConnKey, ByteCounters>) -> std::io::Result<()> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::INFO,
            states: StateFlags::all(),
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    packet.finalize();
    let mut request = vec![0; packet.buffer_len()];
    packet.serialize(&mut request);
    socket.send(&request, 0)?;

    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut buffer[..], 0)?;
        if size == 0 {
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
                .map_err(|e| std::io::Error::other(format!("sock_diag reply: {e}")))?;
            let length = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    let peer_closed = matches!(response.header.state, 8 | 9 | 11);
                    let counters = response.nlas.iter().find_map(|nla| match nla {
                        Nla::TcpInfo(info) => counters_of(info, peer_closed),
                        _ => None,
                    });
                    if let Some(counters) = counters {
                        out.insert(key_of(family, &response.header.socket_id), counters);
                    }
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    return Err(std::io::Error::other(format!("sock_diag: {e:?}")));
                }
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

/// The payload counters from a raw `struct tcp_info`: `tcpi_bytes_received` (offset 128),
/// `tcpi_bytes_sent` (200) and `tcpi_bytes_retrans` (208), the uapi's fixed offsets (fields are
/// only ever appended to `tcp_info`, so the raw bytes are read instead of the crate's
/// fixed-length parse, which newer kernels outgrow). `peer_closed` (CLOSE-WAIT, LAST-ACK,
/// CLOSING): the peer's FIN is in the received count.
fn counters_of(info: &[u8], peer_closed: bool) -> Option<ByteCounters> {
    let u64_at = |at: usize| {
        info.get(at..at + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    let received = u64_at(128)?;
    let received = if peer_closed {
        received.saturating_sub(1)
    } else {
        received
    };
    Some((u64_at(200)?.saturating_sub(u64_at(208)?), received))
}

fn key_of(family: u8, id: &SocketId) -> ConnKey {
    let mut key = ConnKey {
        family: if family == AF_INET {
            probe_common::AF_INET
        } else {
            probe_common::AF_INET6
        },
        sport: id.source_port,
        dport: id.destination_port,
        pad: 0,
        saddr: [0; 16],
        daddr: [0; 16],
    };
    let put = |addr: &std::net::IpAddr, out: &mut [u8; 16]| match addr {
        std::net::IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => *out = a.octets(),
    };
    put(&id.source_address, &mut key.saddr);
    put(&id.destination_address, &mut key.daddr);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn counters_of_a_loopback_connection_match_what_was_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(&[7u8; 12_345]).unwrap();
        let mut got = vec![0u8; 12_345];
        server.read_exact(&mut got).unwrap();
        server.write_all(b"ok").unwrap();
        let mut ok = [0u8; 2];
        client.read_exact(&mut ok).unwrap();
        // ACKs on loopback are immediate, but give them a moment.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let counters = match tcp_byte_counters() {
            Ok(c) => c,
            Err(e) => {
                // No NETLINK_SOCK_DIAG here (e.g. a sandbox without inet_diag).
                eprintln!("skipped: sock_diag unavailable: {e}");
                return;
            }
        };
        let local = client.local_addr().unwrap();
        let peer = client.peer_addr().unwrap();
        let (acked, received) = counters
            .iter()
            .find(|(k, _)| k.sport == local.port() && k.dport == peer.port())
            .map(|(_, c)| *c)
            .expect("the client socket is listed");
        assert_eq!((acked, received), (12_345, 2));
    }
}
