//! cgroup v2 (the unified hierarchy): where it is mounted, the id of a cgroup path, and the
//! path of a cgroup id.
//!
//! The probes record a process's cgroup as an id (`task->cgroups->dfl_cgrp->kn->id`); on a
//! 64-bit kernel that id is the inode number of the cgroup's directory in the cgroup2 mount,
//! which is how an id is turned back into a path here. `/proc/PID/cgroup`'s `0::` line gives
//! the same path for a live process.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// Where the cgroup2 filesystem is mounted (`/sys/fs/cgroup` on a unified host,
/// `/sys/fs/cgroup/unified` on a hybrid one), from `/proc/self/mountinfo`. `None` without one.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup2_mount_in(&mountinfo)
}

/// The first cgroup2 mount point listed in `mountinfo` (the format of `/proc/self/mountinfo`:
/// field 5 the mount point, the file system type after the ` - ` separator).
pub fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        let mount_point = before.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(unescape_octal(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path in a `/proc/PID/cgroup` file: the `0::/path` line's path. `None` when
/// there is no such line (no cgroup2 on the host).
pub fn v2_path_in_proc_cgroup(content: &str) -> Option<&str> {
    content.lines().find_map(|l| l.strip_prefix("0::"))
}

/// The id of the cgroup at `path` (as `/proc/PID/cgroup` shows it, starting with `/`) under
/// the cgroup2 mount `root`: its directory's inode number.
pub fn id_of_path(root: &Path, path: &str) -> Option<u64> {
    let relative = path.trim_start_matches('/');
    std::fs::metadata(root.join(relative)).ok().map(|m| m.ino())
}

/// The most directories [`CgroupPaths`] visits in one walk of the hierarchy (a host with more
/// cgroups shows the rest as unknown rather than stalling).
const WALK_LIMIT: usize = 100_000;

/// cgroup id → path (`/system.slice/ssh.service`, `/` for the root), from a walk of the cgroup2
/// mount, cached. An id not found is looked for again only after `rescan_every_ns` (a walk
/// costs one `stat` per cgroup), so a stream of unknown ids never walks per frame.
#[derive(Debug)]
pub struct CgroupPaths {
    root: Option<PathBuf>,
    paths: HashMap<u64, String>,
    last_walk_ns: Option<u64>,
    rescan_every_ns: u64,
}

impl CgroupPaths {
    /// A resolver for the host's cgroup2 mount (none: every id is unknown).
    pub fn for_host(rescan_every_ns: u64) -> Self {
        Self::under(cgroup2_mount(), rescan_every_ns)
    }

    /// A resolver for the cgroup2 hierarchy mounted at `root`.
    pub fn under(root: Option<PathBuf>, rescan_every_ns: u64) -> Self {
        CgroupPaths {
            root,
            paths: HashMap::new(),
            last_walk_ns: None,
            rescan_every_ns,
        }
    }

    /// The path of cgroup `id`, walking the hierarchy again (at most once per
    /// `rescan_every_ns`, measured with `now_ns`) when the id is not known yet.
    pub fn path(&mut self, id: u64, now_ns: u64) -> Option<&str> {
        if !self.paths.contains_key(&id) {
            let due = self
                .last_walk_ns
                .is_none_or(|t| now_ns.saturating_sub(t) >= self.rescan_every_ns);
            if due {
                self.walk();
                self.last_walk_ns = Some(now_ns);
            }
        }
        self.paths.get(&id).map(String::as_str)
    }

    fn walk(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut pending = vec![(root, String::from("/"))];
        let mut visited = 0;
        while let Some((dir, path)) = pending.pop() {
            visited += 1;
            if visited > WALK_LIMIT {
                break;
            }
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            self.paths.insert(meta.ino(), path.clone());
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let child = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    pending.push((entry.path(), child));
                }
            }
        }
    }
}

/// The name people know a cgroup by: a container id for container scopes
/// (`docker-<64 hex>.scope`, `cri-containerd-…`, `libpod-…` → the first 12 hex digits), the
/// unit for systemd units (`ssh.service`, `session-3.scope`, `user@1000.service`), the last
/// path component otherwise, and `/` for the root.
pub fn display_name(path: &str) -> &str {
    let last = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("/");
    let stem = last.strip_suffix(".scope").unwrap_or(last);
    for prefix in ["docker-", "cri-containerd-", "crio-", "libpod-"] {
        if let Some(id) = stem.strip_prefix(prefix) {
            if id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return &id[..12];
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_on_unified_and_hybrid_hosts() {
        let unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_in(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let hybrid = "30 25 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                      31 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      32 30 0:29 / /sys/fs/cgroup/un\\040ified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/un ified"))
        );
        assert_eq!(
            cgroup2_mount_in("1 2 0:3 / / rw - ext4 /dev/vda rw\n"),
            None
        );
        assert_eq!(cgroup2_mount_in("garbage\n\n - \n"), None);
    }

    #[test]
    fn reads_the_v2_line_of_proc_cgroup() {
        let hybrid = "4:memory:/x\n0::/system.slice/ssh.service\n";
        assert_eq!(
            v2_path_in_proc_cgroup(hybrid),
            Some("/system.slice/ssh.service")
        );
        assert_eq!(v2_path_in_proc_cgroup("4:memory:/x\n"), None);
    }

    #[test]
    fn display_names_say_unit_or_container() {
        assert_eq!(display_name("/"), "/");
        assert_eq!(display_name("/system.slice/ssh.service"), "ssh.service");
        let docker = format!(
            "/system.slice/docker-{}.scope",
            "0123456789abcdef".repeat(4)
        );
        assert_eq!(display_name(&docker), "0123456789ab");
        assert_eq!(
            display_name("/user.slice/user-1000.slice/session-3.scope"),
            "session-3.scope"
        );
        assert_eq!(display_name("/docker-short.scope"), "docker-short.scope");
        assert_eq!(display_name("/kubepods/burstable/"), "burstable");
    }

    #[test]
    fn ids_resolve_to_paths_under_a_hierarchy() {
        let root = std::env::temp_dir().join(format!("bto-cgroups-{}", std::process::id()));
        std::fs::create_dir_all(root.join("a.slice/b.service")).unwrap();
        let id = id_of_path(&root, "/a.slice/b.service").unwrap();
        let root_id = id_of_path(&root, "/").unwrap();
        let mut paths = CgroupPaths::under(Some(root.clone()), 1_000);
        assert_eq!(paths.path(id, 0), Some("/a.slice/b.service"));
        assert_eq!(paths.path(root_id, 0), Some("/"));
        // Unknown: one walk per rescan period at most.
        std::fs::create_dir_all(root.join("late")).unwrap();
        let late = id_of_path(&root, "/late").unwrap();
        assert_eq!(
            paths.path(late, 500),
            None,
            "walked 500 ns after the last walk"
        );
        assert_eq!(paths.path(late, 1_000), Some("/late"));
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(CgroupPaths::under(None, 0).path(1, 0), None);
    }
}
