//! Why the probes could not be loaded or used, classified for the CLI contract (exit 3 for
//! missing privileges or kernel support).

use std::error::Error as StdError;

use super::offsets::OffsetsError;
use crate::sys::errno::is_permission_denied;

/// Why the probes could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The process lacks a capability.
    #[error(
        "missing privileges: {what} needs {capability} (or CAP_SYS_ADMIN); run as root or grant \
         it, e.g. `sudo setcap cap_bpf,cap_perfmon+ep $(which bpftop-ordered)` ({detail})"
    )]
    Privilege {
        /// The operation that failed.
        what: String,
        /// The capability to grant.
        capability: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// A required tracepoint does not exist on this kernel.
    #[error("kernel support missing: tracepoint `{tracepoint}` could not be attached ({detail}); it needs Linux >= 5.8 with CONFIG_TRACEPOINTS")]
    MissingTracepoint {
        /// The tracepoint.
        tracepoint: &'static str,
        /// The underlying error.
        detail: String,
    },
    /// The kernel BTF is missing or lacks a needed struct member.
    #[error("kernel support missing: {0}")]
    Btf(#[from] OffsetsError),
    /// This kernel's verifier rejected a program (its budget of instructions or of stack,
    /// or a check the program does not pass here): kernel support, exit code 3.
    #[error(
        "kernel support missing: this kernel's verifier rejected {what}: {reason} (please \
         report it with the output of `uname -r`)"
    )]
    Verifier {
        /// The operation that failed (names the program).
        what: String,
        /// The verifier's own reason, e.g. `combined stack size of 2 calls is 560. Too large`.
        reason: String,
    },
    /// The kernel refused the object or a program (unsupported map type, other errors).
    #[error("the kernel refused the probes: {0}")]
    Refused(String),
    /// A map operation failed at run time.
    #[error("map `{map}`: {detail}")]
    Map {
        /// The map.
        map: &'static str,
        /// The underlying error.
        detail: String,
    },
}

impl LoadError {
    /// True for errors the CLI reports with exit code 3 (privileges, kernel support).
    pub fn is_privilege_or_support(&self) -> bool {
        matches!(
            self,
            LoadError::Privilege { .. }
                | LoadError::MissingTracepoint { .. }
                | LoadError::Btf(_)
                | LoadError::Verifier { .. }
        )
    }
}

/// First OS error number in an error's source chain.
pub(crate) fn errno_in_chain(error: &(dyn StdError + 'static)) -> Option<i32> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        current = e.source();
    }
    None
}

pub(crate) fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    text
}

/// Maps an aya error to a [`LoadError`], recognising EPERM/EACCES as missing privileges.
pub(crate) fn classify(
    what: &str,
    capability: &'static str,
    error: &(dyn StdError + 'static),
) -> LoadError {
    if let Some(reason) = verifier_rejection(error) {
        return LoadError::Verifier {
            what: what.to_string(),
            reason,
        };
    }
    match errno_in_chain(error) {
        Some(errno) if is_permission_denied(errno) => LoadError::Privilege {
            what: what.to_string(),
            capability,
            detail: describe(error),
        },
        _ => LoadError::Refused(format!("{what}: {}", describe(error))),
    }
}

/// The verifier's reason when `error` is a program load the verifier rejected (a load error
/// with a verifier log, and not EPERM: a process without CAP_BPF gets EPERM before any
/// verification; EACCES with a log is the verifier saying no).
fn verifier_rejection(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        }) = e.downcast_ref::<aya::programs::ProgramError>()
        {
            if io_error.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()) {
                return None;
            }
            return verifier_reason(&verifier_log.to_string());
        }
        current = e.source();
    }
    None
}

/// The line of a verifier log that says why: the last line before the statistics
/// (`verification time …`) that is not an instruction dump or a source line.
pub(crate) fn verifier_reason(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with("verification time"))
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .rev()
        .find(|l| {
            let numbered = l
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok());
            !l.is_empty() && !l.starts_with(';') && !numbered
        })
        .map(|l| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_reason_is_the_line_before_the_statistics() {
        let stack = "0: R1=ctx() R10=fp0\n; let cfg = config()?; @ main.rs:123\n12: (61) r8 = *(u32 *)(r1 +0)\ncombined stack size of 2 calls is 560. Too large\nverification time 102425 usec\nstack depth 368+0+32+184+8\nprocessed 11601 insns (limit 1000000)";
        assert_eq!(
            verifier_reason(stack).as_deref(),
            Some("combined stack size of 2 calls is 560. Too large")
        );
        let budget = "1995: (07) r2 += -48\n; fun(map, key) @ helpers.rs:10\n1996: (18) r1 = 0xffff\nBPF program is too large. Processed 1000001 insn\nverification time 10514994 usec\n";
        assert_eq!(
            verifier_reason(budget).as_deref(),
            Some("BPF program is too large. Processed 1000001 insn")
        );
        assert_eq!(verifier_reason(""), None);
        assert_eq!(verifier_reason("12: (95) exit\n; x @ a.rs:1\n"), None);
    }
}
