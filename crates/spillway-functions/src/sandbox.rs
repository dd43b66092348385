//! What keeps a function away from spillway, from other functions and from the rest of the
//! machine, as close to Lambda's sandbox as Linux allows without containers. Layers, each used
//! where the kernel and spillway's privileges allow it (the host logs which at start):
//!
//! - **Landlock** (unprivileged, kernel ≥ 5.13): the function may read and execute only the
//!   system's directories (`/usr`, `/etc`, ...), its own code, its runtime and `/proc`, and
//!   write only `/tmp` and a few devices. Everything else (`.spillway/`, the stack file, other
//!   functions' code) is refused with EACCES. A Landlock domain also cannot ptrace or read the
//!   memory or environment of processes outside it, and (kernel ≥ 6.12) cannot signal them or
//!   reach their abstract Unix sockets.
//! - **A mount namespace** (when spillway runs as root): a private tmpfs `/tmp` (512 MB, like
//!   Lambda's default ephemeral storage), a procfs with `hidepid=invisible` (other users'
//!   processes do not exist), and tmpfs over every directory on the way to the function's
//!   files that others may not enter (`/root`, `.spillway/`), with only the function's own
//!   files bound back, read-only.
//! - **Its own user** (when spillway runs as root): uid and gid derived from the state directory
//!   and the function's name, in 1,900,000,000–1,989,999,999 (no passwd entry; nothing else
//!   on the machine uses that range), no supplementary groups, so ordinary permissions keep
//!   functions from spillway's files and from each other.
//! - `no_new_privs`, always: nothing the function executes can gain privileges.
//!
//! Everything is decided and allocated before the fork: [`Plan::apply`] runs between fork and
//! exec, where only async-signal-safe system calls on prepared memory are allowed. That is also
//! why the Landlock calls are raw system calls here rather than the `landlock` crate's builder,
//! which allocates while it adds rules.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::libc;

/// A private /tmp of Lambda's default ephemeral storage size, writable by the function's user.
const TMP_OPTIONS: &std::ffi::CStr = c"size=512m,mode=1777";
/// Lambda's limit on open files per execution environment.
const MAX_FILES: libc::rlim_t = 1024;
/// The first uid (and gid) functions run as under a root spillway.
const UID_BASE: u32 = 1_900_000_000;
const UID_SPAN: u32 = 90_000_000;

// Landlock's ABI (include/uapi/linux/landlock.h).
const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
const FS_TRUNCATE: u64 = 1 << 14;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Every filesystem right the given Landlock ABI knows (so all are refused unless a rule grants
/// them).
fn handled_fs(abi: i32) -> u64 {
    let mut all = (1u64 << 13) - 1; // EXECUTE ..= MAKE_SYM (ABI 1)
    if abi >= 2 {
        all |= 1 << 13; // REFER
    }
    if abi >= 3 {
        all |= FS_TRUNCATE;
    }
    if abi >= 5 {
        all |= 1 << 15; // IOCTL_DEV
    }
    all
}

/// Rights that Landlock accepts on a rule for a file rather than a directory.
const FILE_RIGHTS: u64 = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | (1 << 15);
const READ_EXEC: u64 = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;

/// What the machine allows, found once when the host starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Isolation {
    /// Landlock's ABI version, 0 without Landlock.
    pub landlock: i32,
    /// Mount namespaces and a user of its own per function (spillway is root and may mount).
    pub namespaces: bool,
}

impl Isolation {
    pub fn detect() -> Self {
        // SAFETY: landlock_create_ruleset with a null attribute and the VERSION flag only
        // returns the ABI version (or an error); it touches no memory.
        #[allow(unsafe_code)]
        let abi = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        let mut found = Self {
            landlock: i32::try_from(abi).unwrap_or(0).max(0),
            namespaces: nix::unistd::geteuid().is_root(),
        };
        // Whether each layer really works here (a container may refuse mounts to root, or an
        // LSM stack may leave Landlock out): a trial child with nothing but the system's dirs.
        if found.namespaces && !found.probe() {
            found.namespaces = false;
        }
        if found.landlock > 0 && !found.probe() {
            found.landlock = 0;
        }
        found
    }

    fn probe(&self) -> bool {
        let Some(program) = ["/usr/bin/true", "/bin/true"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            return false;
        };
        let Ok(plan) = self.plan("probe", &[], Path::new("/"), Path::new("/nonexistent")) else {
            return false;
        };
        let mut plan = plan.for_child();
        let mut cmd = std::process::Command::new(program);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        #[allow(unsafe_code)]
        // SAFETY: `apply` makes only async-signal-safe system calls on memory prepared before
        // the fork (see its comment).
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || plan.apply());
        }
        cmd.status().is_ok_and(|s| s.success())
    }

    /// One line for the log: which layers hold here, and what is missing.
    pub fn describe(&self) -> String {
        let mut held = vec!["no_new_privs"];
        let mut missing = Vec::new();
        match self.landlock {
            0 => missing.push("Landlock (kernel ≥ 5.13 with landlock in its LSM list): functions may read and write whatever spillway's user may"),
            1..=5 => {
                held.push("Landlock filesystem rules");
                missing.push("Landlock signal scoping (kernel ≥ 6.12): a function may signal processes of spillway's user");
            }
            _ => held.push("Landlock filesystem rules and signal scoping"),
        }
        if self.namespaces {
            held.push("a user of its own per function, private /tmp, hidden processes");
        } else {
            missing.push("a user of its own, private /tmp and hidden processes (need root): functions share spillway's user and /tmp and see other processes");
        }
        let mut line = format!("function isolation: {}", held.join(", "));
        if !missing.is_empty() {
            line.push_str("; missing: ");
            line.push_str(&missing.join("; "));
        }
        line
    }

    /// The sandbox of function `name`: `readable` lists the paths its instances need to read
    /// and execute (code, program, runtime, bootstrap), `task_root` is where they start.
    pub fn plan(
        &self,
        name: &str,
        readable: &[PathBuf],
        task_root: &Path,
        state_dir: &Path,
    ) -> Result<Plan, String> {
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| format!("{} contains a NUL byte", p.display()))
        };
        let mut read: Vec<PathBuf> = [
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/etc",
            "/proc",
            "/sys/devices/system/cpu",
            "/sys/fs/cgroup",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        // Files in /etc that a distribution makes links to elsewhere (systemd-resolved's
        // /etc/resolv.conf points into /run): what they point at is readable too.
        for link in ["/etc/resolv.conf", "/etc/hosts", "/etc/localtime"] {
            if let Ok(target) = std::fs::canonicalize(link)
                && !read.iter().any(|r| target.starts_with(r))
            {
                read.push(target);
            }
        }
        let own: Vec<PathBuf> = readable
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        read.extend(own.iter().cloned());
        let devices = [
            "/dev/null",
            "/dev/zero",
            "/dev/full",
            "/dev/random",
            "/dev/urandom",
        ];
        let mut rules = Vec::new();
        if self.landlock > 0 {
            let handled = handled_fs(self.landlock);
            let mut add = |p: &Path, access: u64| -> Result<(), String> {
                let Ok(meta) = std::fs::metadata(p) else {
                    return Ok(()); // not on this machine (e.g. /lib32)
                };
                let access = access & handled;
                let access = if meta.is_dir() {
                    access
                } else {
                    access & FILE_RIGHTS
                };
                rules.push((c(p)?, access));
                Ok(())
            };
            for p in &read {
                add(p, READ_EXEC)?;
            }
            for d in devices {
                add(Path::new(d), FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE)?;
            }
            add(Path::new("/tmp"), handled)?;
        }
        let mut mounts = None;
        let mut user = None;
        if self.namespaces {
            let uid = function_uid(state_dir, name);
            user = Some(uid);
            mounts = Some(MountPlan::new(&own, uid).and_then(|m| m.to_c())?);
        }
        let handled_net_and_scope = if self.landlock >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        };
        Ok(Plan {
            landlock: self.landlock,
            handled: handled_fs(self.landlock),
            scoped: handled_net_and_scope,
            rules,
            mounts,
            user,
            chdir: c(task_root)?,
            fds: Vec::with_capacity(0),
        })
    }
}

/// The uid (and gid) function `name` of the stack in `state_dir` runs as under a root spillway:
/// stable across restarts (files it leaves in a bound directory stay its own) and different
/// for every function.
pub(crate) fn function_uid(state_dir: &Path, name: &str) -> u32 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in state_dir
        .as_os_str()
        .as_bytes()
        .iter()
        .chain(b"\0")
        .chain(name.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    UID_BASE + (h % u64::from(UID_SPAN)) as u32
}

/// Directories covered with an empty tmpfs in the function's mount namespace, and the paths
/// bound back into them.
struct MountPlan {
    /// Covered, outermost first (`/tmp` always: a private one per instance).
    hide: Vec<PathBuf>,
    /// Made inside the covering tmpfs, parents first.
    mkdirs: Vec<PathBuf>,
    /// Empty files made as mount points for bound files.
    touch: Vec<PathBuf>,
    /// Bound back, read-only, at the same path.
    binds: Vec<PathBuf>,
}

impl MountPlan {
    /// `own` are the function's paths (canonical). A directory on the way to one of them that
    /// `uid` may not enter is covered, so that the function can reach its own files and nothing
    /// else that was behind it.
    fn new(own: &[PathBuf], uid: u32) -> Result<Self, String> {
        let mut hide: Vec<PathBuf> = vec![PathBuf::from("/tmp")];
        for p in own {
            for a in p.ancestors().skip(1).collect::<Vec<_>>().into_iter().rev() {
                if a == Path::new("/") {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(a) else {
                    break;
                };
                let others_enter =
                    meta.mode() & 0o001 != 0 || (meta.uid() == uid && meta.mode() & 0o100 != 0);
                if !others_enter {
                    hide.push(a.to_path_buf());
                    break;
                }
            }
        }
        hide.sort_by_key(|h| h.components().count());
        hide.dedup();
        // A covered directory inside another covered one is already hidden.
        let mut outer: Vec<PathBuf> = Vec::new();
        for h in hide {
            if !outer.iter().any(|o| h.starts_with(o)) {
                outer.push(h);
            }
        }
        let mut binds: Vec<PathBuf> = Vec::new();
        let mut sorted: Vec<&PathBuf> = own.iter().collect();
        sorted.sort_by_key(|p| p.components().count());
        for p in sorted {
            let covered = outer.iter().any(|h| p.starts_with(h) && p != h);
            if covered && !binds.iter().any(|b| p.starts_with(b)) {
                binds.push(p.clone());
            }
            if outer.iter().any(|h| h == p) {
                return Err(format!(
                    "{} is a function's code but only root may enter it",
                    p.display()
                ));
            }
        }
        let mut mkdirs = Vec::new();
        let mut touch = Vec::new();
        for b in &binds {
            let Some(h) = outer.iter().find(|h| b.starts_with(h)) else {
                continue;
            };
            let mut parents: Vec<&Path> = b
                .ancestors()
                .skip(1)
                .take_while(|a| a.starts_with(h) && *a != h.as_path())
                .collect();
            parents.reverse();
            for d in parents {
                if !mkdirs.iter().any(|m: &PathBuf| m == d) {
                    mkdirs.push(d.to_path_buf());
                }
            }
            if b.is_dir() {
                mkdirs.push(b.clone());
            } else {
                touch.push(b.clone());
            }
        }
        Ok(Self {
            hide: outer,
            mkdirs,
            touch,
            binds,
        })
    }

    fn to_c(&self) -> Result<CMounts, String> {
        let c = |p: &PathBuf| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| format!("{} contains a NUL byte", p.display()))
        };
        let all = |v: &[PathBuf]| v.iter().map(c).collect::<Result<Vec<_>, _>>();
        Ok(CMounts {
            hide: all(&self.hide)?,
            mkdirs: all(&self.mkdirs)?,
            touch: all(&self.touch)?,
            binds: all(&self.binds)?,
        })
    }
}

#[derive(Clone)]
struct CMounts {
    hide: Vec<CString>,
    mkdirs: Vec<CString>,
    touch: Vec<CString>,
    binds: Vec<CString>,
}

/// One function's sandbox, ready to apply in a child.
/// (Its Debug output names the layers only.)
#[derive(Clone)]
pub(crate) struct Plan {
    landlock: i32,
    handled: u64,
    scoped: u64,
    rules: Vec<(CString, u64)>,
    mounts: Option<CMounts>,
    user: Option<u32>,
    chdir: CString,
    /// Room for the bound trees' descriptors, filled in the child (allocated here, so the
    /// child does not allocate).
    fds: Vec<libc::c_int>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("landlock", &self.landlock)
            .field("rules", &self.rules.len())
            .field("mounts", &self.mounts.is_some())
            .field("user", &self.user)
            .finish()
    }
}

impl Plan {
    /// Readies the plan for one child (the descriptor room is sized here, before the fork).
    pub fn for_child(&self) -> Self {
        let mut p = self.clone();
        p.fds = vec![-1; self.mounts.as_ref().map_or(0, |m| m.binds.len())];
        p
    }

    /// Applies the sandbox to the calling process. Runs between fork and exec: it only makes
    /// system calls (unshare, mount, open_tree, move_mount, mkdir, open, close, chdir, setgroups,
    /// setresgid, setresuid, prctl, landlock_*) on memory prepared before the fork.
    pub fn apply(&mut self) -> std::io::Result<()> {
        #[allow(unsafe_code)]
        // SAFETY: every pointer passed is to a CString or a struct owned by `self` that lives
        // for the call; nothing allocates.
        unsafe {
            if let Some(m) = &self.mounts {
                apply_mounts(m, &mut self.fds)?;
            }
            // A session of its own: off spillway's terminal, and no process of another
            // instance can join its process group (setpgid across sessions fails).
            check(libc::setsid())?;
            check(libc::chdir(self.chdir.as_ptr()))?;
            if let Some(id) = self.user {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setresgid(id, id, id))?;
                check(libc::setresuid(id, id, id))?;
            }
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            if self.landlock > 0 {
                self.apply_landlock()?;
            }
            // Lambda's limit on file descriptors; it also bounds what a function can make the
            // host's peer check look through. Set last: until exec the child still holds every
            // descriptor of a busy host (thousands of client sockets), so a descriptor opened
            // above (Landlock's ruleset and paths) would be numbered past the limit and fail
            // with EMFILE; exec then closes all but the function's own.
            let files = libc::rlimit {
                rlim_cur: MAX_FILES,
                rlim_max: MAX_FILES,
            };
            check(libc::setrlimit(libc::RLIMIT_NOFILE, &files))?;
        }
        Ok(())
    }

    #[allow(unsafe_code)]
    unsafe fn apply_landlock(&self) -> std::io::Result<()> {
        let attr = RulesetAttr {
            handled_access_fs: self.handled,
            handled_access_net: 0,
            scoped: self.scoped,
        };
        // ABI 1-3 know only the first field, 4-5 the first two.
        let size = match self.landlock {
            1..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        // SAFETY: `attr` lives for the call and `size` does not exceed it.
        let ruleset = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        } as libc::c_int;
        check(ruleset)?;
        for (path, access) in &self.rules {
            // SAFETY: `path` is a NUL-terminated CString owned by self.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd < 0 {
                continue; // gone since the plan was made, or hidden by a mount: not granted
            }
            let rule = PathBeneathAttr {
                allowed_access: *access,
                parent_fd: fd,
            };
            // SAFETY: `rule` lives for the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset,
                    RULE_PATH_BENEATH,
                    &rule as *const PathBeneathAttr,
                    0u32,
                )
            };
            // SAFETY: fd was opened above.
            unsafe { libc::close(fd) };
            if r < 0 {
                // SAFETY: ruleset was created above.
                unsafe { libc::close(ruleset) };
                return Err(std::io::Error::last_os_error());
            }
        }
        // SAFETY: plain system call on a descriptor opened above.
        let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) };
        // SAFETY: as above.
        unsafe { libc::close(ruleset) };
        check(r as libc::c_int)
    }
}

fn check(r: libc::c_int) -> std::io::Result<()> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `struct mount_attr` (linux/mount.h), for mount_setattr.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The mount namespace: private propagation, clones of the trees to bind back (taken before
/// anything covers them), tmpfs over the hidden directories, the mount points, the binds made
/// read-only, and a procfs that shows only processes the function may see.
#[allow(unsafe_code)]
unsafe fn apply_mounts(m: &CMounts, fds: &mut [libc::c_int]) -> std::io::Result<()> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;
    let empty = c"";
    let tmpfs = c"tmpfs";
    // SAFETY (whole function): every pointer is to a CString owned by the plan or a literal.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for (i, b) in m.binds.iter().enumerate() {
            let fd = libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                b.as_ptr(),
                OPEN_TREE_CLONE
                    | libc::AT_RECURSIVE as libc::c_uint
                    | libc::O_CLOEXEC as libc::c_uint,
            ) as libc::c_int;
            check(fd)?;
            // Read-only, nosuid, nodev for the whole cloned tree (mounts inside it included),
            // before it is attached anywhere.
            let attr = MountAttr {
                attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            check(libc::syscall(
                libc::SYS_mount_setattr,
                fd,
                empty.as_ptr(),
                libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            ) as libc::c_int)?;
            if let Some(slot) = fds.get_mut(i) {
                *slot = fd;
            }
        }
        for h in &m.hide {
            let options = if h.as_bytes() == b"/tmp" {
                TMP_OPTIONS.as_ptr()
            } else {
                c"size=1m,mode=0755".as_ptr()
            };
            check(libc::mount(
                tmpfs.as_ptr(),
                h.as_ptr(),
                tmpfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.cast(),
            ))?;
        }
        for d in &m.mkdirs {
            if libc::mkdir(d.as_ptr(), 0o755) < 0
                && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        for f in &m.touch {
            let fd = libc::open(
                f.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o644,
            );
            check(fd)?;
            libc::close(fd);
        }
        for (i, b) in m.binds.iter().enumerate() {
            let fd = fds.get(i).copied().unwrap_or(-1);
            check(libc::syscall(
                libc::SYS_move_mount,
                fd,
                empty.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ) as libc::c_int)?;
            libc::close(fd);
        }
        check(libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"hidepid=invisible".as_ptr().cast(),
        ))?;
    }
    Ok(())
}

/// The absolute path of `program` as the function's PATH finds it.
pub(crate) fn resolve_program(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}

/// The installations a language runtime belongs to (`/opt/node/bin/node` → `/opt/node`), which
/// its instances must be able to read (libraries, standard modules): the one of the path `PATH`
/// found and of every link on the way to the real binary, since a virtualenv's `bin/python3` is
/// a link into another installation and is only a virtualenv by its own path. Nothing for what
/// is under a system directory every function may read anyway.
pub(crate) fn runtime_prefixes(program: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut hop = program.to_path_buf();
    for _ in 0..16 {
        if let Some(prefix) = prefix_of(&hop)
            && !out.contains(&prefix)
        {
            out.push(prefix);
        }
        match std::fs::read_link(&hop) {
            Ok(target) if target.is_absolute() => hop = target,
            Ok(target) => match hop.parent() {
                Some(dir) => hop = dir.join(target),
                None => break,
            },
            Err(_) => break,
        }
    }
    if let Some(real) = std::fs::canonicalize(program)
        .ok()
        .and_then(|r| prefix_of(&r))
        && !out.contains(&real)
    {
        out.push(real);
    }
    out
}

/// `<prefix>/bin/<program>` → `<prefix>` (a shim, pyenv's `<root>/shims/python3`, has its root
/// there too), unless it is a system directory.
fn prefix_of(program: &Path) -> Option<PathBuf> {
    let prefix = program.parent()?.parent()?;
    let system = ["/usr", "/bin", "/sbin", "/lib", "/lib64"];
    if prefix == Path::new("/") || system.iter().any(|s| prefix.starts_with(s)) {
        return None;
    }
    // Only what looks like an installation: `~/bin/python3` linking to the system's does not
    // make the home directory one (its `lib/` or a venv's `pyvenv.cfg`, pyenv's `versions/`).
    let installation = prefix.join("lib").is_dir()
        || prefix.join("pyvenv.cfg").is_file()
        || prefix.join("versions").is_dir();
    installation.then(|| prefix.to_path_buf())
}

/// Whether granting `path` to a function would give it spillway's own files: the state
/// directory or anything containing it (the stack's directory, a home directory above it), or
/// the home directory of spillway's user.
pub(crate) fn exposes_spillway(path: &Path, state_dir: &Path) -> bool {
    let Ok(path) = std::fs::canonicalize(path) else {
        return false;
    };
    let state = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|h| std::fs::canonicalize(h).ok());
    state.starts_with(&path) || home.is_some_and(|h| h == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_distinct_and_in_range() {
        let a = function_uid(Path::new("/s/.spillway"), "a");
        let b = function_uid(Path::new("/s/.spillway"), "b");
        let other = function_uid(Path::new("/t/.spillway"), "a");
        assert_eq!(a, function_uid(Path::new("/s/.spillway"), "a"));
        assert_ne!(a, b);
        assert_ne!(a, other);
        for u in [a, b, other] {
            assert!((UID_BASE..UID_BASE + UID_SPAN).contains(&u));
        }
    }

    /// A temporary directory outside /tmp: the checkout's when it is not itself under /tmp
    /// (a clone there is common), else /var/tmp's or the home directory's.
    fn tempdir_outside_tmp() -> tempfile::TempDir {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        [
            Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
            Some(PathBuf::from("/var/tmp")),
            home,
        ]
        .into_iter()
        .flatten()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .filter(|p| !p.starts_with("/tmp"))
        .find_map(|p| tempfile::tempdir_in(p).ok())
        .unwrap_or_else(|| panic!("no writable directory outside /tmp"))
    }

    #[test]
    fn a_closed_directory_is_covered_and_the_function_s_files_are_bound_back() {
        // Not under /tmp, which is always covered (and would hide `closed` with it).
        let dir = tempdir_outside_tmp();
        let closed = dir.path().join("closed");
        let code = closed.join("a/code");
        std::fs::create_dir_all(&code).unwrap_or_else(|e| panic!("{e}"));
        let bin = closed.join("b/bootstrap");
        std::fs::create_dir_all(bin.parent().unwrap_or_else(|| panic!("no parent")))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&bin, "").unwrap_or_else(|e| panic!("{e}"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("{e}"));
        let own = vec![
            std::fs::canonicalize(&code).unwrap_or_else(|e| panic!("{e}")),
            std::fs::canonicalize(&bin).unwrap_or_else(|e| panic!("{e}")),
        ];
        let plan = MountPlan::new(&own, 1_900_000_001).unwrap_or_else(|e| panic!("{e}"));
        let closed = std::fs::canonicalize(&closed).unwrap_or_else(|e| panic!("{e}"));
        assert!(plan.hide.contains(&closed), "{:?}", plan.hide);
        assert!(plan.hide.contains(&PathBuf::from("/tmp")));
        assert_eq!(plan.binds, own);
        assert!(plan.mkdirs.contains(&closed.join("a")));
        assert!(plan.touch.contains(&own[1]));
    }

    #[test]
    fn a_virtualenv_s_interpreter_brings_both_installations() {
        let dir =
            tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap_or_else(|e| panic!("{e}"));
        let real = dir.path().join("inst/bin/python3.11");
        std::fs::create_dir_all(real.parent().unwrap_or_else(|| panic!("no parent")))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&real, "").unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(dir.path().join("inst/lib/python3.11"))
            .unwrap_or_else(|e| panic!("{e}"));
        let venv = dir.path().join("venv/bin");
        std::fs::create_dir_all(&venv).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("venv/pyvenv.cfg"), "").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&real, venv.join("python3")).unwrap_or_else(|e| panic!("{e}"));
        // `~/bin/python3` linking to an installation does not make the home directory one.
        let home_bin = dir.path().join("home/bin");
        std::fs::create_dir_all(&home_bin).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&real, home_bin.join("python3"))
            .unwrap_or_else(|e| panic!("{e}"));
        let from_home = runtime_prefixes(&home_bin.join("python3"));
        assert!(
            !from_home.contains(&dir.path().join("home")),
            "{from_home:?}"
        );
        let prefixes = runtime_prefixes(&venv.join("python3"));
        assert!(prefixes.contains(&dir.path().join("venv")), "{prefixes:?}");
        assert!(
            prefixes.contains(
                &std::fs::canonicalize(dir.path().join("inst")).unwrap_or_else(|e| panic!("{e}"))
            ),
            "{prefixes:?}"
        );
        assert!(runtime_prefixes(Path::new("/usr/bin/true")).is_empty());
    }
}
