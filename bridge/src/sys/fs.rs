//! Files read relative to an open directory (`openat(2)` through rustix), so that a process
//! directory of `/proc` is resolved once and its files are read without a path walk each.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;

use rustix::fs::{openat, Mode, OFlags};

/// The whole content of the file `name` inside the open directory `dir` (opened read-only,
/// close-on-exec, and closed again before returning). Errors are the kernel's, as
/// [`io::Error`]s with their raw errno (`ENOENT`, `ESRCH` for a process that exited, ...).
pub fn read_at(dir: impl AsFd, name: &CStr) -> io::Result<Vec<u8>> {
    let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut file = File::from(fd);
    let mut buf = Vec::with_capacity(1024);
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

/// At most `limit` bytes from the start of the file `name` inside `dir` (as [`read_at`]), for
/// files that can be huge (`/proc/PID/cmdline` holds up to the argument limit).
pub fn read_prefix_at(dir: impl AsFd, name: &CStr, limit: usize) -> io::Result<Vec<u8>> {
    let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut buf = Vec::with_capacity(limit.min(4096));
    File::from(fd).take(limit as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_of_a_directory_and_reports_missing_ones() {
        let dir = File::open("/proc/self").unwrap();
        let stat = read_at(&dir, c"stat").unwrap();
        assert!(stat.starts_with(std::process::id().to_string().as_bytes()));
        let missing = read_at(&dir, c"no-such-file").unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(super::super::errno::ENOENT));
        let head = read_prefix_at(&dir, c"stat", 3).unwrap();
        assert_eq!(head, stat[..3]);
    }
}
