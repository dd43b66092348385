//! One execution environment: a native process speaking the Runtime API on its own listener,
//! its output captured line by line, its memory in a cgroup where one can be made. Dropping an
//! instance kills its whole process group.

use std::ffi::CString;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cgroup::{self, Cgroup};
use crate::logs::{InstanceLog, MAX_LINE};
use crate::package::Launch;
use crate::peer::Owner;
use crate::runtime_api::{Delivery, RuntimeApi};
use crate::spec::{Credentials, FunctionSpec};

/// How an instance's process ended, once it has.
#[derive(Clone, Debug)]
pub(crate) struct Exit {
    pub description: String,
    pub killed: bool,
}

pub(crate) struct Instance {
    pub api: Arc<RuntimeApi>,
    pub deliveries: mpsc::Sender<Delivery>,
    server: tokio::task::JoinHandle<()>,
    pub pid: u32,
    pub exit: watch::Receiver<Option<Exit>>,
    pub spawned: Instant,
    /// Set when the first event is taken: the Init Duration, reported once.
    pub init: Option<Duration>,
    pub init_reported: bool,
    pub last_used: Instant,
    /// When the instance's credentials expire (Unix seconds); it is retired before.
    pub expires: Option<i64>,
    pub cgroup: Option<Arc<Cgroup>>,
    pub log: Arc<InstanceLog>,
    /// The build it runs (a rebuild under `--watch` retires older instances).
    pub generation: u64,
    /// Asks the readers of its stdout and stderr to log everything written so far.
    output: Vec<mpsc::UnboundedSender<oneshot::Sender<()>>>,
}

/// What a new instance needs besides its function's spec.
pub(crate) struct SpawnContext<'a> {
    pub region: &'a str,
    pub endpoint_url: Option<&'a str>,
    pub credentials: Option<Credentials>,
    pub cgroup: Option<Cgroup>,
    pub log: Arc<InstanceLog>,
    pub generation: u64,
    pub live: Arc<crate::host::LivePids>,
}

impl Instance {
    pub async fn spawn(
        spec: &FunctionSpec,
        launch: &Launch,
        cx: SpawnContext<'_>,
    ) -> Result<Self, String> {
        let (owner_tx, owner) = watch::channel(None);
        let (api, addr, deliveries, server) =
            RuntimeApi::start(&spec.arn, Arc::clone(&cx.log), owner)
                .await
                .map_err(|e| format!("cannot listen for the Runtime API: {e}"))?;
        let mut cmd = tokio::process::Command::new(&launch.program);
        cmd.args(&launch.args)
            .current_dir(&launch.task_root)
            .env_clear()
            .envs(environment(spec, launch, addr, &cx))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // No `process_group(0)`: the sandbox calls setsid(), which also makes the instance
            // a process group of its own (and fails for a group leader).
            .kill_on_drop(true);
        let procs: Vec<CString> = cx
            .cgroup
            .as_ref()
            .map(|c| c.procs.clone())
            .unwrap_or_default();
        let mut sandbox = launch.sandbox.as_ref().map(|p| p.for_child());
        let parent = nix::unistd::getpid();
        #[allow(unsafe_code)]
        // SAFETY: the closure runs between fork and exec and makes only async-signal-safe
        // system calls (open, write, close, the sandbox's, prctl, getppid, _exit) on memory
        // prepared before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // Into the instance's groups first: the files are root's, and the sandbox may
                // give up root.
                for procs in &procs {
                    // "0" moves the writing process: the child joins its group before it runs
                    // a single instruction of the function. A child that cannot join does not
                    // run: its limits, its kill and its Runtime API check all rest on it.
                    let fd = nix::libc::open(procs.as_ptr(), nix::libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let written = nix::libc::write(fd, b"0".as_ptr().cast(), 1);
                    nix::libc::close(fd);
                    if written != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(plan) = sandbox.as_mut() {
                    plan.apply()?;
                } else if nix::libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // After the credential change, which clears it.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
                if nix::unistd::getppid() != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            });
        }
        let spawned = Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            server.abort();
            format!("fork/exec {}: {e}", launch.program.display())
        })?;
        let pid = child.id().unwrap_or(0);
        let cgroup = cx.cgroup.map(Arc::new);
        cx.live.add(pid, cgroup.clone());
        owner_tx.send_replace(Some(Owner {
            pid,
            procs: cgroup.as_ref().and_then(|c| c.procs_file()),
        }));
        let mut output = Vec::new();
        let pipes = [
            child.stdout.take().and_then(|o| o.into_owned_fd().ok()),
            child.stderr.take().and_then(|e| e.into_owned_fd().ok()),
        ];
        for fd in pipes.into_iter().flatten() {
            match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                Ok(pipe) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(pump(pipe, rx, Arc::clone(&cx.log)));
                    output.push(tx);
                }
                Err(e) => tracing::warn!(function = %spec.name, "cannot read its output: {e}"),
            }
        }
        let (exit_tx, exit) = watch::channel(None);
        let group = cgroup.clone();
        let live = Arc::clone(&cx.live);
        tokio::spawn(async move {
            let status = child.wait().await;
            live.remove(pid);
            let exit = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (s.code(), s.signal()) {
                        (Some(code), _) => Exit {
                            description: format!("exit status {code}"),
                            killed: false,
                        },
                        (None, Some(sig)) => Exit {
                            description: format!(
                                "signal: {}",
                                Signal::try_from(sig).map_or_else(|_| sig.to_string(), signal_name)
                            ),
                            killed: sig == nix::libc::SIGKILL,
                        },
                        _ => Exit {
                            description: s.to_string(),
                            killed: false,
                        },
                    }
                }
                Err(e) => Exit {
                    description: e.to_string(),
                    killed: false,
                },
            };
            let _ = exit_tx.send(Some(exit));
            // The function's main process is gone: whatever it left running (a `setsid` child,
            // a daemon) goes with it, as when Lambda tears down an execution environment.
            // The group itself stays until the instance is dropped: its memory counters say
            // whether this was the OOM killer.
            let _ = tokio::task::spawn_blocking(move || {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                if let Some(g) = group {
                    g.kill();
                }
            })
            .await;
        });
        Ok(Self {
            api,
            deliveries,
            server,
            pid,
            exit,
            spawned,
            init: None,
            init_reported: false,
            last_used: Instant::now(),
            expires: cx.credentials.as_ref().map(|c| c.expires),
            cgroup,
            log: cx.log,
            generation: cx.generation,
            output,
        })
    }

    /// The instance's peak memory in MB (cgroup peak, or the process's high-water mark).
    pub fn max_memory_mb(&self) -> u64 {
        // The larger of the group's charged peak and the process's resident high-water mark:
        // the group misses pages another process faulted in first (the binary's own text).
        let bytes = self
            .cgroup
            .as_ref()
            .and_then(|c| c.peak())
            .unwrap_or(0)
            .max(cgroup::process_peak(self.pid).unwrap_or(0));
        bytes.div_ceil(1024 * 1024)
    }

    pub fn exited(&self) -> bool {
        self.exit.borrow().is_some()
    }
}

fn signal_name(s: Signal) -> String {
    match s {
        Signal::SIGKILL => "killed".into(),
        Signal::SIGSEGV => "segmentation fault".into(),
        Signal::SIGABRT => "aborted".into(),
        Signal::SIGTERM => "terminated".into(),
        other => other.as_str().to_lowercase(),
    }
}

impl Instance {
    /// Waits until everything the function wrote to stdout and stderr so far is in the log
    /// (so its last lines come before END and are in `LogType=Tail`). Bounded: a reader that
    /// does not answer within 250 ms is not waited for.
    pub async fn drain_output(&self) {
        let mut acks = Vec::with_capacity(self.output.len());
        for tx in &self.output {
            let (done, ack) = oneshot::channel();
            if tx.send(done).is_ok() {
                acks.push(ack);
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), async {
            for ack in acks {
                let _ = ack.await;
            }
        })
        .await;
    }

    /// Kills every process of the instance: its cgroup (children that left the process group
    /// included), else its process group.
    pub fn kill(&self) {
        if self.pid != 0 {
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
        if let Some(g) = &self.cgroup {
            g.kill();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
        if self.pid != 0 && !self.exited() {
            self.kill();
        }
    }
}

/// Lambda's environment for an instance, then the function's own variables (which the stack
/// validator keeps off the reserved names).
fn environment(
    spec: &FunctionSpec,
    launch: &Launch,
    addr: SocketAddr,
    cx: &SpawnContext<'_>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    // The host's PATH rather than Lambda's fixed one, so `node` and `python3` are found where
    // the machine has them.
    set(
        "PATH",
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    );
    set("LANG", "C.UTF-8".into());
    set("TZ", ":UTC".into());
    set("AWS_LAMBDA_RUNTIME_API", addr.to_string());
    set("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone());
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into());
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        spec.memory_mb.to_string(),
    );
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        format!("/aws/lambda/{}", spec.name),
    );
    set("AWS_LAMBDA_LOG_STREAM_NAME", cx.log.stream.clone());
    set("AWS_REGION", cx.region.to_owned());
    set("AWS_DEFAULT_REGION", cx.region.to_owned());
    set("LAMBDA_TASK_ROOT", launch.task_root.display().to_string());
    set(
        "LAMBDA_RUNTIME_DIR",
        launch
            .args
            .first()
            .and_then(|a| a.parent())
            .unwrap_or(&launch.task_root)
            .display()
            .to_string(),
    );
    if let Some(h) = &spec.handler {
        set("_HANDLER", h.clone());
    }
    if let Some(url) = cx.endpoint_url {
        set("AWS_ENDPOINT_URL", url.to_owned());
    }
    if let Some(c) = &cx.credentials {
        set("AWS_ACCESS_KEY_ID", c.access_key_id.clone());
        set("AWS_ACCESS_KEY", c.access_key_id.clone());
        set("AWS_SECRET_ACCESS_KEY", c.secret_access_key.clone());
        set("AWS_SESSION_TOKEN", c.session_token.clone());
    }
    for (k, v) in &launch.env {
        set(k, v.clone());
    }
    for (k, v) in &spec.environment {
        set(k, v.clone());
    }
    env
}

/// Reads a pipe line by line into the log. Bytes that are not UTF-8 are replaced, and a "line"
/// that never ends is cut every [`MAX_LINE`] bytes, so neither garbage nor a flood can stall the
/// host or grow its memory. A drain request logs everything in the pipe at that moment — the
/// output a function wrote before it answered — partial last line included, then acknowledges.
async fn pump(
    pipe: tokio::net::unix::pipe::Receiver,
    mut drains: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    log: Arc<InstanceLog>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 8192];
    loop {
        tokio::select! {
            biased;
            Some(done) = drains.recv() => {
                // Exactly what is in the pipe now: a function printing without pause cannot
                // keep the invocation from ending.
                let mut pending = pending_bytes(&pipe);
                while pending > 0 {
                    match pipe.try_read(&mut chunk[..pending.min(8192)]) {
                        Ok(0) => break,
                        Ok(n) => {
                            pending -= n.min(pending);
                            take_lines(&mut buf, &chunk[..n], &log);
                        }
                        Err(_) => break,
                    }
                }
                if !buf.is_empty() {
                    emit(&log, &std::mem::take(&mut buf));
                }
                let _ = done.send(());
            }
            ready = pipe.readable() => {
                if ready.is_err() {
                    break;
                }
                match pipe.try_read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => take_lines(&mut buf, &chunk[..n], &log),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
        }
    }
    if !buf.is_empty() {
        emit(&log, &buf);
    }
}

fn take_lines(buf: &mut Vec<u8>, data: &[u8], log: &InstanceLog) {
    buf.extend_from_slice(data);
    while let Some(end) = buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = buf.drain(..=end).collect();
        emit(log, &line[..line.len() - 1]);
    }
    while buf.len() >= MAX_LINE {
        let piece: Vec<u8> = buf.drain(..MAX_LINE).collect();
        emit(log, &piece);
    }
}

/// How many bytes wait in a pipe (FIONREAD).
fn pending_bytes(pipe: &tokio::net::unix::pipe::Receiver) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: nix::libc::c_int = 0;
    #[allow(unsafe_code)]
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at `n`.
    let r = unsafe { nix::libc::ioctl(pipe.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    if r < 0 {
        0
    } else {
        usize::try_from(n).unwrap_or(0)
    }
}

fn emit(log: &InstanceLog, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    // Control characters other than tab would corrupt a terminal or the log file's lines.
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    log.line(&clean);
}
