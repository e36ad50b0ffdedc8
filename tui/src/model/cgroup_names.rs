//! cgroup ids (what the probes record) as the paths and names people know, resolved through
//! the cgroup2 mount ([`bridge::cgroups::CgroupPaths`]) on the UI thread, cached.

use std::cell::RefCell;

use bridge::cgroups::{display_name, CgroupPaths};

/// How long an id that is not in the cgroup2 mount waits before the mount is walked again (a
/// walk is one `stat` per cgroup; a frame never pays for more than one).
const RESCAN_EVERY_NS: u64 = 5_000_000_000;

/// cgroup id → path, cached. Interior mutability because cells are formatted through shared
/// references; the dashboard uses it from its one thread only.
#[derive(Debug)]
pub struct CgroupNames {
    paths: RefCell<CgroupPaths>,
}

impl CgroupNames {
    /// Names from this host's cgroup2 mount (none: every id is unknown).
    pub fn for_host() -> Self {
        CgroupNames {
            paths: RefCell::new(CgroupPaths::for_host(RESCAN_EVERY_NS)),
        }
    }

    /// Names from the cgroup2 hierarchy at `root` (tests).
    pub fn under(root: Option<std::path::PathBuf>) -> Self {
        CgroupNames {
            paths: RefCell::new(CgroupPaths::under(root, RESCAN_EVERY_NS)),
        }
    }

    /// The path of cgroup `id` (`/system.slice/ssh.service`), if found.
    pub fn path(&self, id: u64, now_ns: u64) -> Option<String> {
        self.paths.borrow_mut().path(id, now_ns).map(str::to_string)
    }

    /// The short name of cgroup `id` (the unit, or a container's 12-digit id; see
    /// [`display_name`]), if found.
    pub fn name(&self, id: u64, now_ns: u64) -> Option<String> {
        let mut paths = self.paths.borrow_mut();
        paths.path(id, now_ns).map(|p| display_name(p).to_string())
    }
}
