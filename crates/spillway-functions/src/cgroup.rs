//! Memory limits and peak memory through cgroups, where the machine lets spillway make them
//! (cgroup v1's memory controller, or a v2 subtree with `memory` delegated). Elsewhere the
//! limit is not enforced and the peak comes from the process's `VmHWM`.

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// The directory spillway makes its instances' groups in.
pub(crate) struct Cgroups {
    root: PathBuf,
    v2: bool,
}

/// One instance's group.
pub(crate) struct Cgroup {
    dir: PathBuf,
    v2: bool,
    limit: u64,
    /// `<dir>/cgroup.procs`, ready for the child to write itself into before it execs.
    pub procs: CString,
}

impl Cgroups {
    /// Finds a place for groups, or `None` (logged once by the caller).
    pub fn detect() -> Option<Self> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let me = std::process::id();
        // v1: a line `N:memory:/path` (the controller may share a line with others).
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            if controllers.split(',').any(|c| c == "memory") {
                let base = Path::new("/sys/fs/cgroup/memory");
                let parent = base.join(path.trim_start_matches('/'));
                remove_stale(&parent);
                let root = parent.join(format!("spillway-{me}"));
                if std::fs::create_dir_all(&root).is_ok() && root.join("cgroup.procs").exists() {
                    return Some(Self { root, v2: false });
                }
                return None;
            }
        }
        // v2: `0::/path`; spillway may make a child only if memory is delegated to it.
        let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let base = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        let controllers = std::fs::read_to_string(base.join("cgroup.subtree_control")).ok()?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return None;
        }
        remove_stale(&base);
        let root = base.join(format!("spillway-{me}"));
        std::fs::create_dir_all(&root).ok()?;
        std::fs::write(root.join("cgroup.subtree_control"), "+memory").ok()?;
        Some(Self { root, v2: true })
    }

    /// A group named `name` limited to `limit_mb`.
    pub fn make(&self, name: &str, limit_mb: u32) -> Option<Cgroup> {
        let dir = self.root.join(name);
        std::fs::create_dir(&dir).ok()?;
        let limit = u64::from(limit_mb) * 1024 * 1024;
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        if std::fs::write(dir.join(file), limit.to_string()).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes()).ok()?;
        Some(Cgroup {
            dir,
            v2: self.v2,
            limit,
            procs,
        })
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.root);
    }
}

impl Cgroup {
    /// The most memory the group has used, in bytes.
    pub fn peak(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the group reached its limit (so a SIGKILL was the OOM killer's).
    pub fn hit_limit(&self) -> bool {
        if self.v2 {
            std::fs::read_to_string(self.dir.join("memory.events"))
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("oom_kill "))
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
                .is_some_and(|n| n > 0)
        } else {
            std::fs::read_to_string(self.dir.join("memory.failcnt"))
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
                || self.peak().is_some_and(|p| p >= self.limit)
        }
    }

    /// Removes the group; works once its processes are gone.
    pub fn remove(&self) {
        for _ in 0..20 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Removes the (empty) groups of spillway processes that are gone: a killed spillway cannot
/// clean up after itself, and cgroupfs keeps empty directories forever.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("spillway-") else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        if let Ok(groups) = std::fs::read_dir(e.path()) {
            for g in groups.flatten() {
                if g.path().is_dir() {
                    let _ = std::fs::remove_dir(g.path());
                }
            }
        }
        let _ = std::fs::remove_dir(e.path());
    }
}

/// The peak resident set of a process, from `/proc/<pid>/status` (`VmHWM`), in bytes.
pub(crate) fn process_peak(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}
