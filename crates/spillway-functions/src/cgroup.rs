//! Each instance in a cgroup of its own, where the machine lets spillway make one: memory limited
//! to the function's `memory` (cgroup v1's memory controller, or v2 with `memory` delegated),
//! processes and threads limited to Lambda's 1,024 per execution environment (`pids`), and the
//! whole group killed when the instance ends, so a child that called `setsid` or double-forked
//! dies with it. Without a memory controller the peak comes from the process's `VmHWM`; without
//! a pids controller only the process group is killed (the host logs which at start).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lambda's limit on processes and threads in one execution environment.
pub const MAX_TASKS: u32 = 1024;

/// One controller's directory for spillway (`.../spillway-<pid>`) and its cgroup version.
struct Hierarchy {
    root: PathBuf,
    v2: bool,
}

/// The directories spillway makes its instances' groups in. On cgroup v2 both controllers
/// share one directory.
pub(crate) struct Cgroups {
    memory: Option<Hierarchy>,
    pids: Option<Hierarchy>,
}

/// One instance's group (one directory per hierarchy it is in).
pub(crate) struct Cgroup {
    memory: Option<PathBuf>,
    pids: Option<PathBuf>,
    v2: bool,
    limit: u64,
    /// `<dir>/cgroup.procs` of each hierarchy, ready for the child to write itself into before
    /// it execs.
    pub procs: Vec<CString>,
}

impl Cgroups {
    /// Finds a place for groups; either controller may be missing (the caller logs which).
    pub fn detect() -> Self {
        let me = std::process::id();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut memory = None;
        let mut pids = None;
        // v1: lines `N:controller[,controller]:/path`.
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            for (name, slot) in [("memory", &mut memory), ("pids", &mut pids)] {
                if slot.is_none() && controllers.split(',').any(|c| c == name) {
                    let parent = Path::new("/sys/fs/cgroup")
                        .join(name)
                        .join(path.trim_start_matches('/'));
                    remove_stale(&parent);
                    let root = parent.join(format!("spillway-{me}"));
                    if std::fs::create_dir_all(&root).is_ok() && root.join("cgroup.procs").exists()
                    {
                        *slot = Some(Hierarchy { root, v2: false });
                    }
                }
            }
        }
        if memory.is_none() && pids.is_none() {
            // v2: `0::/path`; spillway may make children only with controllers delegated to it.
            if let Some(path) = own.lines().find_map(|l| l.strip_prefix("0::")) {
                let base = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
                let delegated = std::fs::read_to_string(base.join("cgroup.subtree_control"))
                    .unwrap_or_default();
                let has = |c: &str| delegated.split_whitespace().any(|d| d == c);
                if has("memory") || has("pids") {
                    remove_stale(&base);
                    let root = base.join(format!("spillway-{me}"));
                    if std::fs::create_dir_all(&root).is_ok() {
                        for c in ["memory", "pids"] {
                            if has(c)
                                && std::fs::write(
                                    root.join("cgroup.subtree_control"),
                                    format!("+{c}"),
                                )
                                .is_ok()
                            {
                                let h = Hierarchy {
                                    root: root.clone(),
                                    v2: true,
                                };
                                if c == "memory" {
                                    memory = Some(h);
                                } else {
                                    pids = Some(h);
                                }
                            }
                        }
                    }
                }
            }
        }
        Self { memory, pids }
    }

    pub fn limits_memory(&self) -> bool {
        self.memory.is_some()
    }

    pub fn limits_tasks(&self) -> bool {
        self.pids.is_some()
    }

    /// A group named `name`, memory limited to `limit_mb`, tasks to [`MAX_TASKS`]. `None` when
    /// neither controller is usable.
    pub fn make(&self, name: &str, limit_mb: u32) -> Option<Cgroup> {
        let limit = u64::from(limit_mb) * 1024 * 1024;
        let mut group = Cgroup {
            memory: None,
            pids: None,
            v2: false,
            limit,
            procs: Vec::new(),
        };
        if let Some(h) = &self.memory {
            let dir = h.root.join(name);
            let file = if h.v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            if std::fs::create_dir(&dir).is_ok() {
                if std::fs::write(dir.join(file), limit.to_string()).is_ok() {
                    group.v2 = h.v2;
                    group.memory = Some(dir);
                } else {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        if let Some(h) = &self.pids {
            let dir = h.root.join(name);
            // On v2 the directory is the memory group's own.
            let made = (h.v2 && group.memory.as_deref() == Some(dir.as_path()))
                || std::fs::create_dir(&dir).is_ok();
            if made {
                if std::fs::write(dir.join("pids.max"), MAX_TASKS.to_string()).is_ok() {
                    group.v2 = h.v2;
                    group.pids = Some(dir);
                } else if group.memory.as_deref() != Some(dir.as_path()) {
                    let _ = std::fs::remove_dir(&dir);
                }
            }
        }
        let mut dirs: Vec<&PathBuf> = group.memory.iter().chain(group.pids.iter()).collect();
        dirs.dedup();
        for d in dirs {
            group
                .procs
                .push(CString::new(d.join("cgroup.procs").as_os_str().as_encoded_bytes()).ok()?);
        }
        (!group.procs.is_empty()).then_some(group)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for h in self.memory.iter().chain(self.pids.iter()) {
            let _ = std::fs::remove_dir(&h.root);
        }
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
        std::fs::read_to_string(self.memory.as_ref()?.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the group reached its memory limit (so a SIGKILL was the OOM killer's).
    pub fn hit_limit(&self) -> bool {
        let Some(dir) = &self.memory else {
            return false;
        };
        if self.v2 {
            std::fs::read_to_string(dir.join("memory.events"))
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("oom_kill "))
                        .and_then(|n| n.trim().parse::<u64>().ok())
                })
                .is_some_and(|n| n > 0)
        } else {
            std::fs::read_to_string(dir.join("memory.failcnt"))
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
                || self.peak().is_some_and(|p| p >= self.limit)
        }
    }

    /// The `cgroup.procs` file that lists every process of the instance.
    pub fn procs_file(&self) -> Option<PathBuf> {
        self.pids
            .as_ref()
            .or(self.memory.as_ref())
            .map(|d| d.join("cgroup.procs"))
    }

    /// Kills every process in the group and waits (briefly) until none is left. Blocking, but
    /// only for as long as the kernel takes to deliver SIGKILL.
    pub fn kill(&self) {
        if let Some(dir) = self.pids.as_ref().or(self.memory.as_ref()) {
            kill_members(dir, self.v2);
        }
    }

    /// Kills what is left in the group, then removes it.
    pub fn remove(&self) {
        self.kill();
        let mut dirs: Vec<&PathBuf> = self.memory.iter().chain(self.pids.iter()).collect();
        dirs.dedup();
        for dir in dirs {
            for _ in 0..20 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// The last holder of a group (the instance, its exit watcher, the host's list of live
/// instances) removes it.
impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

fn read_pids(procs: &Path) -> Vec<u32> {
    std::fs::read_to_string(procs)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// SIGKILL to every member of `dir` until it is empty. v2's `cgroup.kill` does it atomically;
/// on v1 a member may fork between the read and the kill, so it repeats (bounded: a killed
/// process cannot fork, and `pids.max` bounds how many there can be).
fn kill_members(dir: &Path, v2: bool) {
    if v2 && std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let procs = dir.join("cgroup.procs");
    for _ in 0..200 {
        let pids = read_pids(&procs);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Removes the groups of spillway processes that are gone, killing what is still in them: a
/// spillway killed with SIGKILL cannot clean up after itself, its instances' `setsid` children
/// may still run, and cgroupfs keeps empty directories forever.
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
        let v2 = e.path().join("cgroup.controllers").exists();
        if let Ok(groups) = std::fs::read_dir(e.path()) {
            for g in groups.flatten() {
                if g.path().is_dir() {
                    kill_members(&g.path(), v2);
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
