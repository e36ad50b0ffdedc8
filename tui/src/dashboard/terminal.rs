//! Terminal safety as a type: [`TerminalGuard`] puts the terminal into raw mode on the
//! alternate screen with mouse capture, and restores it when dropped — on a normal return, on
//! an error, and (through the panic hook installed on first use) on a panic in any thread.
//! Restoring is idempotent, so the hook and the guard never fight.

use std::{
    io::{self, Stdout},
    sync::{
        atomic::{AtomicBool, Ordering},
        Once,
    },
};

use crossterm::{
    cursor::{Hide, Show},
    event::{DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture},
    execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{backend::CrosstermBackend, Terminal};

/// Whether the terminal is currently in the dashboard's state (raw, alternate screen, ...).
static TERMINAL_TAKEN: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// Owns the terminal while the dashboard runs; dropping it restores the terminal.
pub struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Enters raw mode, the alternate screen, mouse capture and bracketed paste, and hides the
    /// cursor. On failure, whatever was already changed is undone.
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        let setup =
            take_terminal().and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match setup {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(error) => {
                restore_terminal();
                Err(error)
            }
        }
    }

    /// The ratatui terminal.
    pub fn terminal(&mut self) -> &mut Terminal<CrosstermBackend<Stdout>> {
        &mut self.terminal
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Raw mode, alternate screen, mouse capture, bracketed paste, hidden cursor.
fn take_terminal() -> io::Result<()> {
    enable_raw_mode()?;
    TERMINAL_TAKEN.store(true, Ordering::SeqCst);
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste,
        Hide
    )
}

/// Job control (Ctrl-Z, or SIGTSTP from elsewhere): gives the shell a cooked terminal, stops
/// this process as SIGTSTP's default action would, and when the shell continues it (`fg`,
/// SIGCONT) takes the terminal again. The caller must clear and redraw the screen afterwards.
pub fn suspend_until_continued() -> io::Result<()> {
    restore_terminal();
    // The dashboard handles SIGTSTP itself (to restore the terminal first), so the default
    // action — stop — is carried out here; this returns once the process is continued.
    signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGTSTP)?;
    take_terminal()
}

/// Puts the terminal back as the shell expects it: main screen, cooked mode, no mouse
/// reporting, cursor shown. Does nothing when the dashboard does not hold the terminal.
pub fn restore_terminal() {
    if TERMINAL_TAKEN.swap(false, Ordering::SeqCst) {
        let _ = execute!(
            io::stdout(),
            DisableBracketedPaste,
            DisableMouseCapture,
            LeaveAlternateScreen,
            Show
        );
        let _ = disable_raw_mode();
    }
}

/// Restores the terminal before the default panic message is printed, so the message lands on
/// the normal screen where it can be read.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}
