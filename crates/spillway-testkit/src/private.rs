//! A private server for one test, made by spillway's supervisor in a temporary directory and
//! stopped (with its directory removed) when the value is dropped.

use spillway_supervisor::databases::{
    DatabaseEndpoint, DbUser, ManagedSpec, RunningDatabase, mysql, postgres,
};

/// A private PostgreSQL with a database `test` and a login `test` / `test-password`.
pub struct PrivatePostgres {
    running: Option<RunningDatabase>,
    spec: ManagedSpec,
    pub admin_password: String,
    _dir: tempfile::TempDir,
}

/// A private MariaDB with a database `test` and a login `test` / `test-password`.
pub struct PrivateMariadb {
    running: Option<RunningDatabase>,
    spec: ManagedSpec,
    pub admin_password: String,
    _dir: tempfile::TempDir,
}

pub const USER: &str = "test";
pub const PASSWORD: &str = "test-password";

fn spec(dir: &std::path::Path, init: Vec<std::path::PathBuf>) -> ManagedSpec {
    ManagedSpec {
        resource: "test".into(),
        dbname: "test".into(),
        dir: dir.join("db"),
        // Tests reach these servers over loopback TCP, as an external database.
        tcp: true,
        port: None,
        max_connections: 100,
        init,
        users: vec![DbUser {
            name: USER.into(),
            password: PASSWORD.into(),
        }],
        readers: 0,
    }
}

fn tempdir() -> tempfile::TempDir {
    // In the system temp directory (sticky and world-searchable), which the server's own
    // account can reach when spillway runs as root and switches to it.
    tempfile::Builder::new()
        .prefix("spillway-test-")
        .tempdir()
        .unwrap_or_else(|e| panic!("tempdir: {e}"))
}

macro_rules! private_server {
    ($ty:ident, $module:ident) => {
        impl $ty {
            pub async fn start() -> Self {
                Self::start_with_init(Vec::new()).await
            }

            /// Starts the server and applies `init` files once, as a stack's `init` would.
            pub async fn start_with_init(init: Vec<std::path::PathBuf>) -> Self {
                let dir = tempdir();
                let spec = spec(dir.path(), init);
                let running = $module::start(&spec, &|_| {})
                    .await
                    .unwrap_or_else(|e| panic!("cannot start a private server: {e}"));
                let admin_password = running
                    .endpoint
                    .admin_password_file
                    .as_ref()
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                Self {
                    running: Some(running),
                    admin_password,
                    spec,
                    _dir: dir,
                }
            }

            /// Stops the server (a clean, fast shutdown) and starts it again on the same data
            /// directory and port, as a database restart would.
            pub async fn restart(&mut self) {
                if let Some(p) = self.running.take().and_then(|r| r.process) {
                    p.stop(std::time::Duration::from_secs(30)).await;
                }
                let running = $module::start(&self.spec, &|_| {})
                    .await
                    .unwrap_or_else(|e| panic!("cannot restart the private server: {e}"));
                self.running = Some(running);
            }

            pub fn endpoint(&self) -> &DatabaseEndpoint {
                match &self.running {
                    Some(r) => &r.endpoint,
                    None => panic!("server already stopped"),
                }
            }

            /// The server's state directory (its data directory is `data` in it).
            pub fn spec_dir(&self) -> &std::path::Path {
                &self.spec.dir
            }

            pub fn port(&self) -> u16 {
                self.endpoint().port
            }

            /// A URL for the `test` login.
            pub fn url(&self) -> String {
                let scheme = if stringify!($module) == "postgres" {
                    "postgres"
                } else {
                    "mysql"
                };
                format!(
                    "{scheme}://{USER}:{PASSWORD}@127.0.0.1:{}/test",
                    self.port()
                )
            }

            /// A URL for the administrative login.
            pub fn admin_url(&self) -> String {
                let e = self.endpoint();
                let scheme = if stringify!($module) == "postgres" {
                    "postgres"
                } else {
                    "mysql"
                };
                format!(
                    "{scheme}://{}:{}@127.0.0.1:{}/test",
                    e.admin_user, self.admin_password, e.port
                )
            }

            pub async fn stop(mut self) {
                if let Some(p) = self.running.take().and_then(|r| r.process) {
                    p.stop(std::time::Duration::from_secs(30)).await;
                }
            }
        }

        impl Drop for $ty {
            fn drop(&mut self) {
                // Not stopped explicitly: kill the server's process group so nothing outlives the
                // test (the data directory is removed with the temp dir).
                if let Some(pid) = self
                    .running
                    .as_ref()
                    .and_then(|r| r.process.as_ref())
                    .and_then(|p| p.pid())
                {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    };
}

private_server!(PrivatePostgres, postgres);
private_server!(PrivateMariadb, mysql);
