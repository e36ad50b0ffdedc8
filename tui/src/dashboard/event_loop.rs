//! The event loop: one thread (this one) owns the app and the store; an input thread turns
//! terminal events into messages; a signal thread turns SIGTERM/SIGINT/SIGHUP into a message.
//! The loop blocks in `select!` on input, mode messages, a 1 s stats tick and the refresh tick:
//! it redraws at once on input, and on data at most once per refresh interval. It never polls.

use std::{
    io, thread,
    time::{Duration, Instant},
};

use anyhow::Context;
use bridge::{contract::ModeMessage, stats::monotonic_ns};
use crossbeam_channel::{never, select, tick, Receiver};
use crossterm::event::Event;
use ratatui::{backend::Backend, Terminal};

use super::{
    app::{App, Control},
    ingest::APPLY_BUDGET,
};
use crate::remote::feed::FeedEvent;

/// Fault injection for the end-to-end test of the panic path: when this variable is set, the
/// loop panics right after drawing its first frame, so the test can check that the panic hook
/// and the terminal guard give the shell back a usable terminal. Compiled into test builds only
/// (feature `test-support`, enabled by this crate's dev-dependency on itself).
#[cfg(feature = "test-support")]
pub const TEST_PANIC_VARIABLE: &str = "BPFTOP_ORDERED_TEST_PANIC";

/// Where the loop's events come from.
pub struct LoopInputs {
    /// Terminal events (from [`spawn_input_reader`] or a test).
    pub terminal: Receiver<io::Result<Event>>,
    /// Mode messages (from the session or a test).
    pub messages: Receiver<ModeMessage>,
    /// Signal numbers: [`EXIT_SIGNALS`] end the program, [`SUSPEND_SIGNAL`] suspends it.
    pub signals: Receiver<i32>,
    /// An attached viewer's feed (`--attach`; `never()` for a local session).
    pub attached: Receiver<FeedEvent>,
    /// What Ctrl-Z and SIGTSTP do: hand the terminal back and stop until continued
    /// ([`super::terminal::suspend_until_continued`] in the product). `None` ignores them.
    pub suspend: Option<Box<dyn FnMut() -> io::Result<()>>>,
}

/// Runs until the user quits (exit code 0) or a signal arrives (exit code 128 + signal).
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    inputs: LoopInputs,
    interval: Duration,
) -> anyhow::Result<i32> {
    let LoopInputs {
        terminal: input,
        mut messages,
        signals,
        mut attached,
        mut suspend,
    } = inputs;
    let mut suspend_and_redraw = |terminal: &mut Terminal<B>, app: &mut App| {
        if let Some(suspend) = suspend.as_mut() {
            suspend().context("suspending the dashboard")?;
            // The shell drew over the screen meanwhile: repaint all of it.
            terminal.clear().context("clearing the screen after fg")?;
            redraw(terminal, app)?;
        }
        anyhow::Ok(())
    };
    let second = tick(Duration::from_secs(1));
    let refresh = tick(interval);
    redraw(terminal, app)?;
    #[cfg(feature = "test-support")]
    if std::env::var_os(TEST_PANIC_VARIABLE).is_some() {
        panic!("{TEST_PANIC_VARIABLE} is set: panicking after the first frame, as asked");
    }
    loop {
        select! {
            recv(input) -> event => {
                let event = event
                    .map_err(|_| anyhow::anyhow!("the terminal input reader stopped"))?
                    .context("reading terminal input")?;
                // A status message the key sets lasts from now, not from the last frame.
                app.set_now(monotonic_ns());
                match app.handle_event(&event) {
                    Control::Quit => return Ok(0),
                    Control::Suspend => suspend_and_redraw(terminal, app)?,
                    Control::Redraw => redraw(terminal, app)?,
                    Control::Unchanged => {}
                }
            }
            recv(messages) -> message => match message {
                Ok(message) => {
                    // Bounded work: stop at a waiting key or after the budget, whatever is
                    // queued (the rest is applied on the next wake-ups).
                    let started = Instant::now();
                    app.apply(message);
                    let mut out_of_budget = false;
                    while input.is_empty() {
                        if started.elapsed() >= APPLY_BUDGET {
                            out_of_budget = true;
                            break;
                        }
                        match messages.try_recv() {
                            Ok(message) => app.apply(message),
                            Err(_) => break,
                        }
                    }
                    app.record_ingest_pass(out_of_budget, messages.len());
                }
                // Every mode thread ended: keep showing what there is.
                Err(_) => messages = never(),
            },
            recv(attached) -> event => match event {
                Ok(event) => {
                    app.set_now(monotonic_ns());
                    app.apply_feed(event);
                }
                Err(_) => attached = never(),
            },
            recv(second) -> _ => {
                if app.on_second(monotonic_ns()) == Control::Redraw {
                    redraw(terminal, app)?;
                }
            }
            recv(refresh) -> _ => {
                app.on_refresh(monotonic_ns());
                redraw(terminal, app)?;
            }
            recv(signals) -> signal => match signal {
                Ok(SUSPEND_SIGNAL) => suspend_and_redraw(terminal, app)?,
                signal => return Ok(128 + signal.unwrap_or(libc::SIGTERM)),
            },
        }
    }
}

fn redraw<B: Backend>(terminal: &mut Terminal<B>, app: &mut App) -> anyhow::Result<()> {
    app.set_now(monotonic_ns());
    terminal
        .draw(|frame| super::frame::draw_frame(frame, app))
        .context("drawing the dashboard")?;
    Ok(())
}

/// Starts the thread that blocks on terminal input and forwards every event. It ends when the
/// receiver is dropped (at the next event) or reading fails.
pub fn spawn_input_reader() -> io::Result<Receiver<io::Result<Event>>> {
    let (sender, receiver) = crossbeam_channel::bounded(256);
    thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || loop {
            let event = crossterm::event::read();
            let failed = event.is_err();
            if sender.send(event).is_err() || failed {
                break;
            }
        })?;
    Ok(receiver)
}

/// Signals that end the dashboard cleanly (the terminal is restored on the way out).
pub const EXIT_SIGNALS: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Job control's stop signal (`kill -TSTP`, or Ctrl-Z where the terminal is not raw): the
/// dashboard restores the terminal, then stops.
pub const SUSPEND_SIGNAL: i32 = libc::SIGTSTP;

/// Starts the thread that forwards [`EXIT_SIGNALS`] and [`SUSPEND_SIGNAL`]; the handle stops
/// it.
pub fn spawn_signal_listener() -> io::Result<(Receiver<i32>, signal_hook::iterator::Handle)> {
    let mut signals: Vec<i32> = EXIT_SIGNALS.to_vec();
    signals.push(SUSPEND_SIGNAL);
    forward_signals(&signals)
}

/// Starts a thread that forwards each of `signals` as a message; the handle stops it.
pub fn forward_signals(
    signals: &[i32],
) -> io::Result<(Receiver<i32>, signal_hook::iterator::Handle)> {
    let mut signals = signal_hook::iterator::Signals::new(signals)?;
    let handle = signals.handle();
    let (sender, receiver) = crossbeam_channel::bounded(4);
    thread::Builder::new()
        .name("tui-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if sender.send(signal).is_err() {
                    break;
                }
            }
        })?;
    Ok((receiver, handle))
}
