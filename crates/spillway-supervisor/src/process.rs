//! Child processes that never outlive spillway.
//!
//! Each child gets its own process group (so a terminal's Ctrl-C reaches spillway only, and
//! spillway stops children in order) and a parent-death signal (so `kill -9` of spillway still
//! stops them). The death signal is bound to the *thread* that spawned the child, so children are
//! spawned from long-lived runtime threads only, never from `spawn_blocking`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};
use tokio::process::{Child, Command};

use crate::error::SupervisorError;

/// The account a managed database server runs as: the current user, or (when spillway runs as
/// root, which PostgreSQL refuses) the distribution's service account.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Whether this differs from the current user (then files must be chowned to it).
    pub switch: bool,
}

impl RunAs {
    pub fn for_service(service_user: &str) -> Self {
        if nix::unistd::geteuid().is_root()
            && let Ok(Some(u)) = User::from_name(service_user)
        {
            return Self {
                name: u.name,
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                switch: true,
            };
        }
        Self::current()
    }

    /// The user spillway itself runs as (for client tools such as psql).
    pub fn current() -> Self {
        let euid = nix::unistd::geteuid();
        let name = User::from_uid(euid)
            .ok()
            .flatten()
            .map_or_else(|| euid.to_string(), |u| u.name);
        Self {
            name,
            uid: euid.as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            switch: false,
        }
    }

    /// Makes `path` itself (not what is under it) belong to this account. Only directories and
    /// files spillway just created need this; walking an existing data directory on every start
    /// would cost time proportional to the database's size.
    pub fn own(&self, path: &Path) -> Result<(), SupervisorError> {
        if !self.switch {
            return Ok(());
        }
        let (uid, gid) = (
            Some(nix::unistd::Uid::from_raw(self.uid)),
            Some(nix::unistd::Gid::from_raw(self.gid)),
        );
        nix::unistd::chown(path, uid, gid)
            .map_err(|e| SupervisorError::io(path)(std::io::Error::from(e)))
    }

    /// Whether this account can reach `path` (every parent searchable). Only meaningful when
    /// switching users; spillway's own user reached it already.
    pub fn check_reachable(&self, path: &Path) -> Result<(), SupervisorError> {
        use std::os::unix::fs::MetadataExt;
        if !self.switch {
            return Ok(());
        }
        for dir in path.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(dir) else {
                continue;
            };
            let mode = meta.mode();
            let searchable = if meta.uid() == self.uid {
                mode & 0o100 != 0
            } else if meta.gid() == self.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            };
            if !searchable {
                return Err(SupervisorError::Unreachable {
                    user: self.name.clone(),
                    path: path.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// A command to run as a supervised child.
pub struct Spec {
    pub what: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub run_as: RunAs,
    pub log: PathBuf,
    /// Sent by the kernel if spillway dies; also what [`Supervised::stop`] sends first.
    pub stop_signal: Signal,
    pub cwd: Option<PathBuf>,
}

fn command(spec: &Spec, stdin: Stdio) -> Result<Command, SupervisorError> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(SupervisorError::io(&spec.log))?;
    let log2 = log.try_clone().map_err(SupervisorError::io(&spec.log))?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .kill_on_drop(false);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    if spec.run_as.switch {
        cmd.uid(spec.run_as.uid).gid(spec.run_as.gid);
    }
    let death_signal = spec.stop_signal;
    let parent = nix::unistd::getpid();
    #[allow(unsafe_code)]
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions
    // (prctl, getppid, _exit). std applies uid/gid before running it, which matters because a
    // credential change clears the parent-death signal.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(death_signal).map_err(std::io::Error::from)?;
            // If spillway died before prctl took effect, the signal will never come.
            if nix::unistd::getppid() != parent {
                nix::libc::_exit(1);
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// Runs a command to completion (initdb, psql, ...), its output appended to the log.
pub async fn run(spec: &Spec, stdin_data: Option<String>) -> Result<(), SupervisorError> {
    use tokio::io::AsyncWriteExt;
    let stdin = if stdin_data.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = command(spec, stdin)?
        .spawn()
        .map_err(|e| SupervisorError::Command {
            what: spec.what.clone(),
            detail: format!("cannot start {}: {e}", spec.program.display()),
        })?;
    if let (Some(data), Some(mut pipe)) = (stdin_data, child.stdin.take()) {
        // A failed write shows up as the command's own error below.
        let _ = pipe.write_all(data.as_bytes()).await;
        drop(pipe);
    }
    let status = child
        .wait()
        .await
        .map_err(SupervisorError::io(&spec.program))?;
    if status.success() {
        Ok(())
    } else {
        Err(SupervisorError::Command {
            what: spec.what.clone(),
            detail: format!("{status}; {}", failure_excerpt(&spec.log, 15)),
        })
    }
}

/// A long-running child (a database server).
pub struct Supervised {
    pub what: String,
    child: Child,
    stop_signal: Signal,
    pub log: PathBuf,
}

impl Supervised {
    pub fn spawn(spec: &Spec) -> Result<Self, SupervisorError> {
        let child =
            command(spec, Stdio::null())?
                .spawn()
                .map_err(|e| SupervisorError::Command {
                    what: spec.what.clone(),
                    detail: format!("cannot start {}: {e}", spec.program.display()),
                })?;
        Ok(Self {
            what: spec.what.clone(),
            child,
            stop_signal: spec.stop_signal,
            log: spec.log.clone(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `Some(status)` once the child has exited.
    pub fn try_exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Polls `ready` every `every` until it says yes; fails with the log's last lines if the
    /// child exits first or `timeout` passes.
    pub async fn wait_until_ready<F, Fut>(
        &mut self,
        timeout: Duration,
        every: Duration,
        mut ready: F,
    ) -> Result<(), SupervisorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.try_exited() {
                return Err(SupervisorError::Exited {
                    what: self.what.clone(),
                    status,
                    log: self.log.clone(),
                    tail: tail(&self.log, 15),
                });
            }
            if ready().await {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(SupervisorError::NotReady {
                    what: self.what.clone(),
                    secs: timeout.as_secs(),
                    log: self.log.clone(),
                    tail: tail(&self.log, 15),
                });
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits until the child exits.
    pub async fn wait(&mut self) -> String {
        match self.child.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        }
    }

    /// Asks the child to stop with its stop signal, then kills its whole process group if it has
    /// not exited within `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let Some(pid) = self.child.id() else { return };
        let pid = Pid::from_raw(pid as i32);
        let _ = kill(pid, self.stop_signal);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(what = %self.what, "did not stop within {grace:?}; killing its process group");
            let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
    }
}

/// The last `n` lines of a log file, for error messages.
/// A failed command's log, as an error shows it: the lines that report errors (tools such as
/// mariadb-install-db print theirs early, then a page of advice), then the last `n` lines.
pub fn failure_excerpt(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[ERROR]") || l.starts_with("ERROR") || l.contains("FATAL"))
        .take(10)
        .collect();
    let mut out = String::new();
    if !errors.is_empty() {
        out.push_str(&format!(
            "errors in {}:\n{}\n",
            path.display(),
            errors.join("\n")
        ));
    }
    out.push_str(&format!(
        "last lines of {}:\n{}",
        path.display(),
        tail(path, n)
    ));
    out
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Finds a program on PATH or in the given directories (Debian keeps PostgreSQL's server
/// binaries in /usr/lib/postgresql/VERSION/bin, off PATH).
pub fn find_program(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, script: &str) -> Spec {
        Spec {
            what: "test child".into(),
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            run_as: RunAs::current(),
            log: dir.join("child.log"),
            stop_signal: Signal::SIGTERM,
            cwd: None,
        }
    }

    #[tokio::test]
    async fn readiness_fails_with_the_log_when_the_child_exits_or_time_runs_out() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut dies = Supervised::spawn(&spec(dir.path(), "echo cannot bind; exit 3"))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = dies
            .wait_until_ready(Duration::from_secs(10), Duration::from_millis(10), || {
                std::future::ready(false)
            })
            .await;
        match err {
            Err(SupervisorError::Exited { status, tail, .. }) => {
                assert!(status.contains('3'), "{status}");
                assert!(tail.contains("cannot bind"), "{tail}");
            }
            other => panic!("expected Exited, got {:?}", other.err()),
        }
        let mut slow =
            Supervised::spawn(&spec(dir.path(), "sleep 30")).unwrap_or_else(|e| panic!("{e}"));
        let err = slow
            .wait_until_ready(
                Duration::from_millis(100),
                Duration::from_millis(10),
                || std::future::ready(false),
            )
            .await;
        assert!(
            matches!(err, Err(SupervisorError::NotReady { .. })),
            "{:?}",
            err.err()
        );
        slow.stop(Duration::from_secs(5)).await;
        let mut ok =
            Supervised::spawn(&spec(dir.path(), "sleep 30")).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            ok.wait_until_ready(Duration::from_secs(5), Duration::from_millis(10), || {
                std::future::ready(true)
            })
            .await
            .is_ok()
        );
        ok.stop(Duration::from_secs(5)).await;
    }
}
