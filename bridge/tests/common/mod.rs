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
