//! The test harness every integration test uses: real servers, real clients, free ports, and
//! spillway itself either in-process or as a child process. Nothing here mocks a server.
//!
//! - [`PrivatePostgres`] / [`PrivateMariadb`]: a server of one's own for one test, started by
//!   spillway's own supervisor in a temporary directory (so it also exercises that code);
//! - [`SharedServer`]: a unique database on the machine's PostgreSQL or MariaDB, dropped at the
//!   end (cheaper when a test only needs a database, not a server);
//! - [`Spillway`]: `spillway` run as a process, with its output captured line by line;
//! - [`free_port`], [`unique`], [`require_tool`], [`processes_mentioning`].

mod private;
mod process;
mod shared;

pub use private::{PrivateMariadb, PrivatePostgres};
pub use process::Spillway;
pub use shared::SharedServer;

use std::path::PathBuf;

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// A name no other test run uses (for databases, users, directories).
pub fn unique(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().r#gen();
    format!("{prefix}_{}_{n:016x}", std::process::id())
}

/// The path of a client program the test needs. Tests never skip silently: the test command
/// installs these, and a missing one fails the test with the package to install.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    spillway_supervisor::process::find_program(name, &[]).unwrap_or_else(|| {
        panic!("{name} is not installed; `apt-get install {package}` (scripts/test does this)")
    })
}

/// Pids of processes whose command line mentions `needle` (e.g. a data directory), so a test
/// can prove that no child outlived spillway.
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        // Zombies have an empty cmdline and are not running.
        if cmd.contains(needle) && pid != std::process::id() {
            out.push(pid);
        }
    }
    out
}

/// Polls `f` until it returns true or `timeout` passes; returns whether it did.
pub fn eventually(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Loads the stack in `dir` and starts it in this process, as `spillway up` would (without the
/// signal handling). Stop it with [`spillway_supervisor::Running::shutdown`].
pub async fn up_in_process(dir: &std::path::Path) -> spillway_supervisor::Running {
    let loaded = spillway_stack::load(dir).unwrap_or_else(|e| panic!("{e}"));
    spillway_supervisor::start(&loaded, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
