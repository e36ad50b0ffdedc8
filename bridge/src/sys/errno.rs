//! The errno values the bridge tells apart, as the positive `i32`s of
//! [`std::io::Error::raw_os_error`] and [`bpf::BpfError::errno`](super::bpf::BpfError).

use rustix::io::Errno;

/// `EPERM`: operation not permitted (a capability is missing).
pub const EPERM: i32 = Errno::PERM.raw_os_error();
/// `EACCES`: permission denied.
pub const EACCES: i32 = Errno::ACCESS.raw_os_error();
/// `ENOENT`: no such entry (a map key, a procfs file of an exited process).
pub const ENOENT: i32 = Errno::NOENT.raw_os_error();
/// `ESRCH`: no such process (procfs files of a process that is exiting).
pub const ESRCH: i32 = Errno::SRCH.raw_os_error();
/// `ENOSPC`: no space (a `BPF_MAP_LOOKUP_BATCH` chunk smaller than a hash bucket).
pub const ENOSPC: i32 = Errno::NOSPC.raw_os_error();
/// `EINVAL`: invalid argument (also: a `bpf(2)` command this kernel does not know).
pub const EINVAL: i32 = Errno::INVAL.raw_os_error();
/// `EOPNOTSUPP`: operation not supported (a map type without batch operations).
pub const EOPNOTSUPP: i32 = Errno::OPNOTSUPP.raw_os_error();
/// `EEXIST`: the entry exists (`BPF_NOEXIST` update of a present key).
pub const EEXIST: i32 = Errno::EXIST.raw_os_error();
/// `EINTR`: interrupted by a signal.
pub const EINTR: i32 = Errno::INTR.raw_os_error();
/// `EIO`: I/O error (used when a failed call left no errno).
pub const EIO: i32 = Errno::IO.raw_os_error();
/// Kernel-internal `ENOTSUPP` (524), which leaks to user space from some BPF commands.
pub const ENOTSUPP: i32 = 524;

/// True for `EPERM` and `EACCES`: the kernel refused for lack of privilege.
pub fn is_permission_denied(errno: i32) -> bool {
    errno == EPERM || errno == EACCES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_linux_ones() {
        assert_eq!((EPERM, ENOENT, ESRCH, EINTR, EIO), (1, 2, 3, 4, 5));
        assert_eq!((EACCES, EINVAL, ENOSPC, EOPNOTSUPP), (13, 22, 28, 95));
        assert!(is_permission_denied(EPERM) && is_permission_denied(EACCES));
        assert!(!is_permission_denied(ENOENT));
    }
}
