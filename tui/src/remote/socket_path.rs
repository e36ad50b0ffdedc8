//! The collector's socket in the file system: its group, directory and modes, the stale-socket
//! check, and what a viewer is told when it cannot connect.
//!
//! `serve` binds only after a test connect to an existing socket fails (a live collector there
//! is reported, with its pid from the peer credentials of that connect). The socket is 0660
//! and its directory 0750, both owned by the collector's user and `--group`.

use std::{
    fs, io,
    os::unix::{
        fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
};

/// Where `serve` listens and viewers connect unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/bpftop-ordered/bpftop-ordered.sock";

/// The group whose members may attach, unless `--group` says otherwise.
pub const DEFAULT_GROUP: &str = "bpftop";

/// Mode of the socket: owner and group read/write (connecting needs write permission).
pub const SOCKET_MODE: u32 = 0o660;

/// Mode of a directory `serve` manages: owner all, group search and list.
pub const DIRECTORY_MODE: u32 = 0o750;

/// Why `serve` could not listen. [`BindError::exit_code`] maps it to the CLI contract.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// `--group` names no group.
    #[error(
        "group `{0}` does not exist: create it (`groupadd {0}`) and add the users who may \
         attach (`usermod -aG {0} USER`), or name another with --group"
    )]
    NoGroup(String),
    /// A collector already answers on the path.
    #[error("already running (pid {pid}) on {path}")]
    AlreadyRunning {
        /// The socket.
        path: PathBuf,
        /// The live collector's pid (0 when the peer credentials had none).
        pid: u32,
    },
    /// Something in the file system failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
}

impl BindError {
    /// 2 for a group that does not exist (a bad option value), 1 otherwise (documented in
    /// `docs/contract.md`).
    pub fn exit_code(&self) -> i32 {
        match self {
            BindError::NoGroup(_) => 2,
            _ => 1,
        }
    }
}

fn io_error(context: String) -> impl FnOnce(io::Error) -> BindError {
    move |source| BindError::Io { context, source }
}

/// The gid of group `name`, from the system's group database (NSS).
pub fn group_id(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `group` is plain data that getgrnam_r fills; `buffer` outlives the call and its
    // length is passed; `result` is checked before `group` is read.
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let status = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut group,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    (status == 0 && !result.is_null()).then_some(group.gr_gid)
}

/// The name of group `gid`, from the system's group database (NSS).
pub fn group_name(gid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: as in `group_id`; `gr_name` points into `buffer`, read before it is dropped.
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let status = unsafe {
        libc::getgrgid_r(
            gid,
            &mut group,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if status != 0 || result.is_null() {
        return None;
    }
    // SAFETY: getgrgid_r succeeded, so gr_name is a NUL-terminated string in `buffer`.
    let name = unsafe { std::ffi::CStr::from_ptr(group.gr_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Binds the socket at `path` for group `gid`: creates its directory when missing (0750,
/// owner:group), refuses when a collector answers there, replaces a stale socket, and sets
/// the socket's mode and group. A directory that already exists is left as it is, except the
/// default one, which is given its mode and group (it is the collector's own).
pub fn bind(path: &Path, gid: u32) -> Result<UnixListener, BindError> {
    let directory = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(directory) = directory {
        let existed = directory.exists();
        if !existed {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIRECTORY_MODE)
                .create(directory)
                .map_err(io_error(format!("creating {}", directory.display())))?;
        }
        if !existed || Some(directory) == Path::new(DEFAULT_SOCKET).parent() {
            set_owner_and_mode(directory, gid, DIRECTORY_MODE)?;
        }
    }
    remove_if_stale(path)?;
    let listener =
        UnixListener::bind(path).map_err(io_error(format!("binding {}", path.display())))?;
    set_owner_and_mode(path, gid, SOCKET_MODE)?;
    Ok(listener)
}

fn set_owner_and_mode(path: &Path, gid: u32, mode: u32) -> Result<(), BindError> {
    std::os::unix::fs::chown(path, None, Some(gid))
        .map_err(io_error(format!("giving {} to gid {gid}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_error(format!("setting the mode of {}", path.display())))
}

/// Removes the socket at `path` when no collector answers on it; refuses to touch anything
/// that is not a socket, and reports a live collector.
fn remove_if_stale(path: &Path) -> Result<(), BindError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(format!("looking at {}", path.display()))(e)),
    };
    if !metadata.file_type().is_socket() {
        return Err(BindError::Io {
            context: format!("{} exists and is not a socket", path.display()),
            source: io::ErrorKind::AlreadyExists.into(),
        });
    }
    match UnixStream::connect(path) {
        Ok(stream) => {
            let pid = rustix::net::sockopt::get_socket_peercred(&stream)
                .map(|cred| cred.pid.as_raw_nonzero().get() as u32)
                .unwrap_or(0);
            Err(BindError::AlreadyRunning {
                path: path.to_path_buf(),
                pid,
            })
        }
        // Nobody listens: the socket of a collector that died.
        Err(_) => fs::remove_file(path).map_err(io_error(format!(
            "removing the stale socket {}",
            path.display()
        ))),
    }
}

/// Why a viewer could not reach the collector. [`ConnectError::exit_code`] maps it to the CLI
/// contract.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The socket (or its directory) refuses this user.
    #[error(
        "no access to the collector's socket {path}: it is for group `{group}`. Join it \
         (`sudo usermod -aG {group} $USER`, then log in again) or run as root"
    )]
    NoAccess {
        /// The socket.
        path: PathBuf,
        /// Its group's name (or gid).
        group: String,
    },
    /// Nothing listens there.
    #[error("no collector on {path} ({reason}): start one with `bpftop-ordered serve`")]
    NoCollector {
        /// The socket.
        path: PathBuf,
        /// The OS's words.
        reason: String,
    },
    /// The collector spoke, but not this protocol, or refused us.
    #[error("the collector on {path} {reason}")]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl ConnectError {
    /// 3 for missing access (as for missing privileges), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConnectError::NoAccess { .. } => 3,
            _ => 1,
        }
    }
}

/// Connects to the collector's socket, telling apart "no access" from "no collector".
pub fn connect(path: &Path) -> Result<UnixStream, ConnectError> {
    UnixStream::connect(path).map_err(|error| match error.kind() {
        io::ErrorKind::PermissionDenied => ConnectError::NoAccess {
            path: path.to_path_buf(),
            group: owner_group(path),
        },
        _ => ConnectError::NoCollector {
            path: path.to_path_buf(),
            reason: error.to_string(),
        },
    })
}

/// The group of the socket, or of its directory when the socket cannot be looked at.
fn owner_group(path: &Path) -> String {
    let gid = fs::metadata(path)
        .or_else(|_| fs::metadata(path.parent().unwrap_or(Path::new("/"))))
        .map(|m| m.gid());
    match gid {
        Ok(gid) => group_name(gid).unwrap_or_else(|| gid.to_string()),
        Err(_) => DEFAULT_GROUP.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_look_up_both_ways() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(group_id("no-such-group-bpftop-test"), None);
        assert_eq!(group_id("nul\0inside"), None);
    }
}
