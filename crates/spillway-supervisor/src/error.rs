//! What can stop a stack from starting. Each variant is one line a user can act on; the CLI
//! prints it and exits with status 2.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(
        "{what} was not found on PATH or in {searched}; install the Debian package {package} (apt-get install {package})"
    )]
    MissingBinary {
        what: &'static str,
        package: &'static str,
        searched: String,
    },
    #[error("{addr} ({field}) is already in use by another program")]
    PortInUse { addr: SocketAddr, field: String },
    #[error("another spillway (pid {pid}) is already running this stack; its state is in {dir}")]
    AlreadyRunning { pid: String, dir: PathBuf },
    #[error(
        "{path} belongs to uid {owner}, not to the user spillway runs {service} as (uid {expected}); refusing to touch it"
    )]
    WrongOwner {
        path: PathBuf,
        owner: u32,
        expected: u32,
        service: &'static str,
    },
    #[error(
        "the {user} user cannot reach {path}: a parent directory is not searchable by it (chmod o+x the parents, or move the stack / set [stack] state_dir)"
    )]
    Unreachable { user: String, path: PathBuf },
    #[error(
        "{path} is {what}, not a directory of spillway's own; refusing to keep a database's files or socket there (remove it)"
    )]
    NotADirectory { path: PathBuf, what: &'static str },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{what} did not become ready within {secs}s; last lines of {log}:\n{tail}")]
    NotReady {
        what: String,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} exited during start ({status}); last lines of {log}:\n{tail}")]
    Exited {
        what: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("databases.{name}: {detail}")]
    External { name: String, detail: String },
    /// The queue service could not open its store, or a `[queues.*]` section was refused.
    #[error("{what}: {detail}")]
    Queues { what: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SupervisorError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SupervisorError::Io { path, source }
    }
}
