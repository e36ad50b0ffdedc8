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
