//! The interactive dashboard: live ordered tables of the visible mode, the three modes' stats
//! side by side, filter, sort, pause, follow, themes.
//!
//! - [`app`]: the state (owns the table store), built from a store alone for tests;
//! - [`input`]: keys and mouse; [`keymap`]: bindings; [`filter`]: the filter language;
//! - [`table_view`]: per-tab sort/filter/selection; [`metrics`]: windowed rates and histories;
//! - [`layout`]: screen areas; [`frame`]: one frame drawn; [`event_loop`]: the `select!` loop
//!   and its input threads;
//! - [`terminal`]: the terminal guard and panic hook; [`settings`]: command line + config.

pub mod app;
pub mod attached;
pub mod event_loop;
pub mod filter;
pub mod frame;
pub mod frozen;
pub mod ingest;
pub mod input;
pub mod keymap;
pub mod layout;
pub mod metrics;
pub mod probe_cost;
pub mod process_tree;
pub mod replayed;
pub mod row_match;
pub mod search;
pub mod settings;
pub mod signal;
pub mod table_view;
pub mod terminal;

use std::io::IsTerminal;

use bridge::{session::Session, stats::monotonic_ns};

use self::{
    app::{App, HostInfo},
    event_loop::LoopInputs,
    terminal::TerminalGuard,
};
pub use self::{frame::draw_frame, settings::DashboardOptions};

/// Runs the dashboard until the user quits. Returns the process exit code: 0 after `q` /
/// Ctrl-C, 2 for a bad option, config or theme (reported before the terminal is touched),
/// the session's code when the probes cannot start (3: privileges or kernel support), and
/// 128 + N after signal N (SIGTERM, SIGINT, SIGHUP).
pub fn run(options: DashboardOptions) -> anyhow::Result<i32> {
    let settings = match checked_settings(&options) {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    let session = match Session::start(settings.session.clone()) {
        Ok(session) => session,
        Err(error) => {
            eprintln!("bpftop-ordered: {error}");
            return Ok(error.exit_code());
        }
    };
    let mut app = App::new(
        session.new_store(),
        settings.app,
        HostInfo::detect(),
        monotonic_ns(),
    );
    app.set_notes(session.notes().to_vec());
    match session.probe_cost_monitor() {
        Ok(monitor) => app.set_probe_cost_monitor(monitor),
        Err(e) => app.set_notes(
            session
                .notes()
                .iter()
                .cloned()
                .chain([format!("probe cost unavailable: {e}")])
                .collect(),
        ),
    }
    let outcome = show(
        &mut app,
        session.messages().clone(),
        crossbeam_channel::never(),
    );
    drop(session);
    outcome
}

/// The settings, once the options, the config and the terminal are found fine; else the
/// problem is printed and exit code 2 returned.
fn checked_settings(options: &DashboardOptions) -> Result<settings::Settings, i32> {
    let settings = settings::resolve(options).map_err(|message| {
        eprintln!("bpftop-ordered: {message}");
        2
    })?;
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "bpftop-ordered: the dashboard needs a terminal (standard output is not one); \
             use `bpftop-ordered dump` for scripts"
        );
        return Err(2);
    }
    Ok(settings)
}

/// Runs the event loop on the terminal over `app`, fed by `messages` (a local session) or
/// `attached` (a collector), until the user quits or a signal ends it.
fn show(
    app: &mut App,
    messages: crossbeam_channel::Receiver<bridge::contract::ModeMessage>,
    attached: crossbeam_channel::Receiver<crate::remote::feed::FeedEvent>,
) -> anyhow::Result<i32> {
    let interval = app.interval();
    let (signals, signal_handle) = event_loop::spawn_signal_listener()?;
    let outcome = {
        let mut guard = TerminalGuard::enter()?;
        let inputs = LoopInputs {
            terminal: event_loop::spawn_input_reader()?,
            messages,
            signals,
            attached,
            suspend: Some(Box::new(terminal::suspend_until_continued)),
        };
        event_loop::run(guard.terminal(), app, inputs, interval)
        // The guard drops here: the terminal is restored before anything is printed.
    };
    signal_handle.close();
    outcome
}
