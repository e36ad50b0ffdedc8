//! What the headless commands (`dump`, `bench`) share: starting a session the CLI way.

use bridge::session::{Session, SessionConfig};

/// Starts a session, printing the probes' notes to stderr. On failure the error is printed and
/// the contract's exit code returned (3: privileges / kernel support, else 1).
pub fn start_session(config: SessionConfig) -> Result<Session, i32> {
    match Session::start(config) {
        Ok(session) => {
            for note in session.notes() {
                eprintln!("bpftop-ordered: note: {note}");
            }
            Ok(session)
        }
        Err(e) => {
            eprintln!("bpftop-ordered: {e}");
            Err(e.exit_code())
        }
    }
}
