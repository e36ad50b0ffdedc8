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
    /// The kernel refused the object or a program (verifier, unsupported map type).
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
            LoadError::Privilege { .. } | LoadError::MissingTracepoint { .. } | LoadError::Btf(_)
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
    match errno_in_chain(error) {
        Some(errno) if is_permission_denied(errno) => LoadError::Privilege {
            what: what.to_string(),
            capability,
            detail: describe(error),
        },
        _ => LoadError::Refused(format!("{what}: {}", describe(error))),
    }
}
