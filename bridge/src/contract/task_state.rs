//! The one-letter process state, as `ps` and `/proc/PID/stat` show it.
//!
//! The probes carry the group leader's raw `__state` and `exit_state`; [`letter`] reduces them
//! the way the kernel's `task_state_index()` (fs/proc/array.c) does, so the letter is the one
//! `/proc/PID/stat` field 3 would show at the same moment.

/// `TASK_INTERRUPTIBLE`.
const TASK_INTERRUPTIBLE: u32 = 0x1;
/// `TASK_UNINTERRUPTIBLE`.
const TASK_UNINTERRUPTIBLE: u32 = 0x2;
/// `__TASK_STOPPED`.
const TASK_STOPPED: u32 = 0x4;
/// `__TASK_TRACED`.
const TASK_TRACED: u32 = 0x8;
/// `EXIT_DEAD`.
const EXIT_DEAD: u32 = 0x10;
/// `EXIT_ZOMBIE`.
const EXIT_ZOMBIE: u32 = 0x20;
/// `TASK_PARKED`.
const TASK_PARKED: u32 = 0x40;
/// `TASK_NOLOAD`: with UNINTERRUPTIBLE it makes `TASK_IDLE`.
const TASK_NOLOAD: u32 = 0x400;
/// `TASK_RTLOCK_WAIT` (reported as uninterruptible).
const TASK_RTLOCK_WAIT: u32 = 0x1000;
/// `TASK_FROZEN` (reported as uninterruptible).
const TASK_FROZEN: u32 = 0x8000;
/// `TASK_REPORT`: the bits user space ever sees.
const TASK_REPORT: u32 = 0x7f;
/// `TASK_IDLE`.
const TASK_IDLE: u32 = TASK_UNINTERRUPTIBLE | TASK_NOLOAD;

/// Letters by `task_state_index()`: running, sleeping, disk sleep, stopped, tracing stop, dead,
/// zombie, parked, idle.
const LETTERS: &[u8; 9] = b"RSDTtXZPI";

/// The `ps` letter of a task whose `__state` is `state` and `exit_state` is `exit_state`.
pub fn letter(state: u32, exit_state: u32) -> char {
    let mut reported = (state | exit_state) & TASK_REPORT;
    if state & TASK_IDLE == TASK_IDLE {
        reported = TASK_REPORT + 1; // TASK_REPORT_IDLE
    }
    if state & TASK_RTLOCK_WAIT != 0 || state & TASK_FROZEN != 0 {
        reported = TASK_UNINTERRUPTIBLE;
    }
    // fls(): index of the highest set bit, 1-based; 0 when none (running).
    let index = (u32::BITS - reported.leading_zeros()) as usize;
    LETTERS.get(index).map_or('?', |b| *b as char)
}

/// The raw (`__state`, `exit_state`) pair that [`letter`] maps to `letter`, for states read from
/// `/proc/PID/stat` (the /proc seed). Unknown letters read as running.
pub fn raw_from_letter(letter: u8) -> (u32, u32) {
    match letter {
        b'S' => (TASK_INTERRUPTIBLE, 0),
        b'D' => (TASK_UNINTERRUPTIBLE, 0),
        b'T' => (TASK_STOPPED, 0),
        b't' => (TASK_TRACED, 0),
        b'X' => (0, EXIT_DEAD),
        b'Z' => (0, EXIT_ZOMBIE),
        b'P' => (TASK_PARKED, 0),
        b'I' => (TASK_IDLE, 0),
        _ => (0, 0),
    }
}

/// A word for the letter, as `/proc/PID/status` spells it.
pub fn describe(letter: char) -> &'static str {
    match letter {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' => "stopped",
        't' => "tracing stop",
        'X' => "dead",
        'Z' => "zombie",
        'P' => "parked",
        'I' => "idle",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_task_state_index() {
        assert_eq!(letter(0, 0), 'R');
        assert_eq!(letter(TASK_INTERRUPTIBLE, 0), 'S');
        assert_eq!(letter(TASK_UNINTERRUPTIBLE, 0), 'D');
        assert_eq!(letter(TASK_IDLE, 0), 'I');
        assert_eq!(letter(TASK_STOPPED, 0), 'T');
        assert_eq!(letter(TASK_TRACED, 0), 't');
        // __TASK_TRACED with TASK_WAKEKILL etc. still reports the highest reported bit.
        assert_eq!(letter(TASK_TRACED | 0x100, 0), 't');
        assert_eq!(letter(0, EXIT_ZOMBIE), 'Z');
        assert_eq!(letter(0, EXIT_DEAD), 'X');
        // A dying task (TASK_DEAD is not reported) that is a zombie.
        assert_eq!(letter(0x80, EXIT_ZOMBIE), 'Z');
        assert_eq!(letter(TASK_PARKED, 0), 'P');
        assert_eq!(letter(TASK_UNINTERRUPTIBLE | TASK_FROZEN, 0), 'D');
        assert_eq!(letter(TASK_RTLOCK_WAIT, 0), 'D');
        // New tasks (TASK_NEW 0x800) are not reported: running.
        assert_eq!(letter(0x800, 0), 'R');
    }

    #[test]
    fn proc_letters_round_trip() {
        for l in *b"RSDTtXZPI" {
            let (state, exit_state) = raw_from_letter(l);
            assert_eq!(letter(state, exit_state), l as char, "{}", l as char);
        }
        assert_eq!(describe('Z'), "zombie");
    }
}
