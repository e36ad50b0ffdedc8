//! The bridge's one syscall layer: every call below aya that the bridge makes itself.
//!
//! Built on `rustix` wherever it offers the call (clocks, `poll(2)`, `openat(2)`, `mmap(2)`,
//! page size and clock tick). Two syscalls rustix does not wrap are made raw, each in its own
//! file with `// SAFETY:` comments: `bpf(2)` ([`bpf`], the commands aya 0.14 lacks) and
//! `perf_event_open(2)` ([`perf`]). No other file of the bridge names `libc`.
//!
//! This module imports nothing else from the bridge: callers turn its errors into their own.

pub mod bpf;
pub mod clock;
pub mod errno;
pub mod fs;
pub mod perf;
pub mod poll;
