//! The embedded probes load, attach and accept their config on the running kernel.
mod common;

use bridge::{
    contract::ModeKind,
    probe::{self, ProbeSettings},
};

#[test]
fn probes_load_attach_and_take_config() {
    if !common::privileged_or_skip("probes_load_attach_and_take_config") {
        return;
    }
    let settings = ProbeSettings {
        modes: vec![ModeKind::Ring, ModeKind::Poll],
        ring_bytes: 1 << 20,
        ring_wakeup_every: 1,
        use_lru_maps: false,
        filter_tgid: 0,
        filter_port: 0,
        proc_map_entries: 4096,
        conn_map_entries: 4096,
        capture_cmdline: true,
    };
    let loaded = probe::load(&settings).expect("probes load");
    let probes = &loaded.controls;
    let config = probes.read_config().unwrap();
    assert_eq!(config.modes_enabled, 0b101);
    assert!(loaded.notes.is_empty(), "notes: {:?}", loaded.notes);
    // Some scheduling happens within 200 ms: sequence counters move for enabled modes only.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = std::process::Command::new("true").status();
    assert!(
        probes
            .sequence(ModeKind::Ring, probe_common::table::PROCESSES)
            .unwrap()
            > 0
    );
    assert!(
        probes
            .sequence(ModeKind::Poll, probe_common::table::PROCESSES)
            .unwrap()
            > 0
    );
    assert_eq!(
        probes
            .sequence(ModeKind::Perf, probe_common::table::PROCESSES)
            .unwrap(),
        0
    );
    let mut scratch = bridge::map_batch::MapDump::new();
    let (procs, _) = loaded.state_maps.read_processes(&mut scratch).unwrap();
    assert!(!procs.is_empty());
    assert!(loaded.ring.kernel_bytes >= 1 << 20);
}

#[test]
fn a_tracepoint_the_kernel_lacks_is_named_in_the_error() {
    if !common::privileged_or_skip("a_tracepoint_the_kernel_lacks_is_named_in_the_error") {
        return;
    }
    bridge::probe::check_tracepoint("sched_switch", "sched_switch")
        .expect("a real tracepoint attaches");
    let error = bridge::probe::check_tracepoint("sched_switch", "no_such_tracepoint_xyz")
        .expect_err("a missing tracepoint cannot attach");
    assert!(
        matches!(
            error,
            bridge::probe::LoadError::MissingTracepoint {
                tracepoint: "no_such_tracepoint_xyz",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_privilege_or_support(), "maps to exit code 3");
    let message = error.to_string();
    assert!(
        message.contains("tracepoint `no_such_tracepoint_xyz`") && message.contains("Linux"),
        "{message}"
    );
    eprintln!("message: {message}");
}

/// Every program passes this kernel's verifier with room to spare: at most half the 1M
/// instruction budget each. Kernels differ in how well the verifier prunes (6.18.44-fc-v1252
/// refused the flush at 1M and four tracepoints' 512-byte stack, which -v669 had accepted):
/// this names the program and prints every count, so a program drifting towards the limit
/// shows before a kernel update turns it into a refusal.
#[test]
fn every_program_verifies_within_half_the_instruction_budget() {
    if !common::privileged_or_skip("every_program_verifies_within_half_the_instruction_budget") {
        return;
    }
    let counts = probe::object::test_support::verified_instruction_counts()
        .unwrap_or_else(|e| panic!("a program does not load on this kernel: {e}"));
    for (name, count) in &counts {
        println!("{name:24} {count:>9} instructions verified");
    }
    let names: Vec<&str> = counts.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["flush_dirty", "sched_switch", "inet_sock_set_state"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for (name, count) in &counts {
        assert!(
            *count > 0,
            "{name}: the kernel reported no verified instructions"
        );
        assert!(
            *count <= 500_000,
            "{name}: {count} instructions verified, over half the kernel's 1,000,000 budget"
        );
    }
}
