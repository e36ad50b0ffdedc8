//! Remote host names on demand (key `r`): the REMOTE column shows `name:port` once the
//! background lookup answered (127.0.0.1 is `localhost` in every /etc/hosts), the address
//! until then, and the address again after a second `r`.

mod support;

use std::time::{Duration, Instant};

use bridge::contract::ConnectionRow;
use crossterm::event::KeyCode;
use probe_common::{conn_flags, ConnKey, ConnState};
use support::Harness;

#[test]
fn r_shows_remote_host_names_looked_up_in_the_background() {
    let mut h = Harness::new();
    let key = ConnKey::ipv4([127, 0, 0, 1], 40404, [127, 0, 0, 1], 5432);
    show_only(&mut h, key);
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
    show_only(&mut h, ConnKey::ipv6(ip(0x10), 44321, ip(0x20), 8443));
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

/// Seeds an established connection found at start-up (owner, bytes and start unknown) and
/// shows only it, on the Connections tab.
fn show_only(h: &mut Harness, key: ConnKey) {
    let row = ConnectionRow::from_procfs(
        key,
        ConnState {
            tcp_state: 1,
            states_seen_mask: 1 << 1,
            flags: conn_flags::START_UNKNOWN | conn_flags::BYTES_UNKNOWN,
            ..Default::default()
        },
    );
    h.app.store_mut().seed(&[], &[row]);
    h.press(KeyCode::Tab);
    h.press(KeyCode::Char('/'));
    h.type_text(&format!("port:{}", key.sport));
    h.press(KeyCode::Enter);
}
