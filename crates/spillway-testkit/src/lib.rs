//! The test harness every integration test uses: real servers, real clients, free ports, and
//! spillway itself either in-process or as a child process. Nothing here mocks a server.
//!
//! - [`PrivatePostgres`] / [`PrivateMariadb`]: a server of one's own for one test, started by
//!   spillway's own supervisor in a temporary directory (so it also exercises that code);
//! - [`SharedServer`]: a unique database on the machine's PostgreSQL or MariaDB, dropped at the
//!   end (cheaper when a test only needs a database, not a server);
//! - [`Spillway`]: `spillway` run as a process, with its output captured line by line;
//! - [`free_port`], [`unique`], [`require_tool`], [`processes_mentioning`].

pub mod pgwire;
mod private;
mod process;
mod replica;
mod shared;

pub use private::{PrivateMariadb, PrivatePostgres};
pub use process::Spillway;
pub use replica::PgReplica;
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

/// A managed PostgreSQL (`databases.main`) behind a proxy (`proxies.main`), started in-process,
/// with a login `app` / `app-password`. `proxy_settings` adds lines to `[proxies.main]`.
pub struct ProxyStack {
    pub running: Option<spillway_supervisor::Running>,
    pub dir: tempfile::TempDir,
}

impl ProxyStack {
    pub async fn start(proxy_settings: &str) -> Self {
        Self::start_with_database(
            "engine = \"postgres\"",
            "app",
            "app-password",
            proxy_settings,
        )
        .await
    }

    /// Like [`ProxyStack::start`] with `database` as the body of `[databases.main]` (e.g. a
    /// `url` to a [`PrivatePostgres`]) and the proxy's login `user` / `password`.
    pub async fn start_with_database(
        database: &str,
        user: &str,
        password: &str,
        proxy_settings: &str,
    ) -> Self {
        let text = format!(
            "[stack]\nendpoint = \"127.0.0.1:0\"\n\n[databases.main]\n{database}\n\n\
             [secrets.app]\nusername = \"{user}\"\npassword = \"{password}\"\n\n\
             [proxies.main]\ndatabase = \"main\"\nlisten = \"127.0.0.1:0\"\nauth = [{{ secret = \"app\" }}]\n{proxy_settings}\n"
        );
        Self::from_toml(&text).await
    }

    /// A stack written out whole; it must have `[proxies.main]` and a `[stack]` endpoint.
    pub async fn from_toml(text: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("spillway-proxy-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("spillway.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        let running = up_in_process(dir.path()).await;
        Self {
            running: Some(running),
            dir,
        }
    }

    fn running(&self) -> &spillway_supervisor::Running {
        match &self.running {
            Some(r) => r,
            None => panic!("stack already stopped"),
        }
    }

    pub fn port(&self) -> u16 {
        self.running()
            .proxy_addr("main")
            .map(|a| a.port())
            .unwrap_or_else(|| panic!("no proxy"))
    }

    /// The port of one of the proxy's extra endpoints.
    pub fn endpoint_port(&self, endpoint: &str) -> u16 {
        self.running()
            .proxy_endpoint_addr("main", endpoint)
            .map(|a| a.port())
            .unwrap_or_else(|| panic!("no endpoint {endpoint}"))
    }

    /// The admin view of the pools (`/_spillway/pools`).
    pub async fn pools(&self) -> String {
        let addr = self
            .running()
            .http_addr()
            .unwrap_or_else(|| panic!("no http endpoint"));
        http_get(addr, "/_spillway/pools").await
    }

    /// A libpq-style connection string for the app user through the proxy.
    pub fn conn_str(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=app password=app-password dbname=main",
            self.port()
        )
    }

    /// The same, straight to the database (bypassing the proxy), as the administrator.
    pub fn direct_admin_conn_str(&self) -> String {
        let db = self
            .running()
            .databases()
            .next()
            .unwrap_or_else(|| panic!("no database"));
        let pw = db
            .admin_password_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default();
        // A managed server listens on its socket only; libpq takes the directory as host.
        format!(
            "host={} port={} user={} password={} dbname=main",
            db.host,
            db.port,
            db.admin_user,
            pw.trim()
        )
    }

    /// One metric's value from the Prometheus endpoint (summed over label sets).
    pub async fn metric(&self, name: &str) -> f64 {
        let addr = self
            .running()
            .http_addr()
            .unwrap_or_else(|| panic!("no http endpoint"));
        let text = http_get(addr, "/_spillway/metrics").await;
        text.lines()
            .filter(|l| l.starts_with(&format!("spillway_proxy_{name}{{")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Gives an AWS client (CLI, boto3, the JavaScript SDK) these credentials and nothing else of
/// the machine's: no profile, no config or credentials file, no instance metadata, one attempt.
pub fn aws_client_env<'a>(
    cmd: &'a mut std::process::Command,
    access_key_id: &str,
    secret_access_key: &str,
) -> &'a mut std::process::Command {
    cmd.env("AWS_ACCESS_KEY_ID", access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret_access_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
}

/// Runs a Python `script` (boto3, as a client would use it) with `key`'s credentials and
/// `endpoint` as `sys.argv[1]`; its standard output. A script that fails fails the test with
/// what it printed on stderr.
pub fn run_python(endpoint: &str, key: (&str, &str), script: &str) -> String {
    let out = aws_client_env(
        std::process::Command::new("python3").args(["-c", script, endpoint]),
        key.0,
        key.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A minimal HTTP/1.1 GET (the tests' own client for spillway's endpoint).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or(out)
}

/// Like [`eventually`], for async conditions.
pub async fn eventually_async<F, Fut>(timeout: std::time::Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
