//! Remote host names on demand (key `r`): the REMOTE column shows `name:port` once the
//! background lookup answered (127.0.0.1 is `localhost` in every /etc/hosts), the address
//! until then, and the address again after a second `r`.

mod support;

use std::time::{Duration, Instant};

use bridge::contract::{ConnectionRow, RowOrigin};
use crossterm::event::KeyCode;
use probe_common::{conn_flags, ConnKey, ConnState, AF_INET};
use support::Harness;

#[test]
fn r_shows_remote_host_names_looked_up_in_the_background() {
    let mut h = Harness::new();
    let mut key = ConnKey {
        family: AF_INET,
        sport: 40404,
        dport: 5432,
        ..Default::default()
    };
    key.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
    key.daddr[..4].copy_from_slice(&[127, 0, 0, 1]);
    let row = ConnectionRow {
        key,
        state: ConnState {
            tcp_state: 1,
            states_seen_mask: 1 << 1,
            flags: conn_flags::START_UNKNOWN | conn_flags::BYTES_UNKNOWN,
            ..Default::default()
        },
        seq: 0,
        changed_ns: 0,
        origin: RowOrigin::Procfs,
    };
    h.app.store_mut().seed(&[], &[row]);
    h.press(KeyCode::Tab);
    h.press(KeyCode::Char('/'));
    h.type_text("port:40404");
    h.press(KeyCode::Enter);
    assert!(h.screen().contains("127.0.0.1:5432"), "{}", h.screen());
    h.press(KeyCode::Char('r'));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut screen = h.screen();
    while !screen.contains("localhost:5432") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        screen = h.screen();
    }
    assert!(screen.contains("localhost:5432"), "{screen}");
    // The local column keeps the address; `r` again shows the remote address.
    assert!(screen.contains("127.0.0.1:40404"), "{screen}");
    h.press(KeyCode::Char('r'));
    assert!(h.screen().contains("127.0.0.1:5432"), "{}", h.screen());
}

#[test]
fn the_detail_pane_is_as_wide_as_its_title_and_text() {
    let mut h = Harness::with_shape(bridge::synthetic::SyntheticShape::default(), 100, 40);
    let ip = |last: u8| {
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&[0xfd, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]);
        a[15] = last;
        a
    };
    let row = ConnectionRow {
        key: ConnKey {
            family: probe_common::AF_INET6,
            sport: 44321,
            dport: 8443,
            saddr: ip(0x10),
            daddr: ip(0x20),
            ..Default::default()
        },
        state: ConnState {
            tcp_state: 1,
            states_seen_mask: 1 << 1,
            flags: conn_flags::START_UNKNOWN | conn_flags::BYTES_UNKNOWN,
            ..Default::default()
        },
        seq: 0,
        changed_ns: 0,
        origin: RowOrigin::Procfs,
    };
    h.app.store_mut().seed(&[], &[row]);
    h.press(KeyCode::Tab);
    h.press(KeyCode::Char('/'));
    h.type_text("port:44321");
    h.press(KeyCode::Enter);
    h.press(KeyCode::Enter);
    let screen = h.screen();
    // Longer than the 72 columns the pane used to have: now the title is whole.
    assert!(
        screen.contains(
            "Connection [fd00:1234:5678:9abc::10]:44321 → [fd00:1234:5678:9abc::20]:8443"
        ),
        "{screen}"
    );
}
