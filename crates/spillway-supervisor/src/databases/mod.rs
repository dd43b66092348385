//! Databases of a stack: managed servers spillway starts from the system's binaries, and
//! external servers it only checks.

pub mod external;
pub mod mysql;
mod mysql_readers;
pub mod postgres;
mod postgres_readers;
mod private_dir;
pub mod readers;
mod sql;

use std::path::{Path, PathBuf};

use spillway_stack::model::Engine;

use crate::error::SupervisorError;
use crate::process::Supervised;

/// A login a managed database should have (from a secret).
#[derive(Clone, Debug)]
pub struct DbUser {
    pub name: String,
    pub password: String,
}

/// What a managed server needs to know.
#[derive(Clone, Debug)]
pub struct ManagedSpec {
    /// The resource name (`databases.NAME`).
    pub resource: String,
    /// The database to create.
    pub dbname: String,
    /// Its state directory (`.spillway/databases/NAME`).
    pub dir: PathBuf,
    /// Listen on loopback TCP too (else only on the Unix socket).
    pub tcp: bool,
    pub port: Option<u16>,
    pub max_connections: u32,
    /// Absolute paths of init SQL files.
    pub init: Vec<PathBuf>,
    pub users: Vec<DbUser>,
    /// How many read replicas to run beside it (`readers`).
    pub readers: u32,
}

/// Where and how to reach a database.
#[derive(Clone, Debug)]
pub struct DatabaseEndpoint {
    pub resource: String,
    pub engine: Engine,
    /// For a managed server without TCP: PostgreSQL's socket directory (libpq takes a
    /// directory as host) or `localhost` for MariaDB (its clients' word for the socket).
    pub host: String,
    /// For PostgreSQL without TCP, the number in the socket's name (`.s.PGSQL.5432`).
    pub port: u16,
    /// Whether the server listens on TCP (external servers always do).
    pub tcp: bool,
    /// The Unix socket (managed servers only): the directory for PostgreSQL, the file for MariaDB.
    pub socket: Option<PathBuf>,
    pub dbname: String,
    /// The administrative user and where its password is kept.
    pub admin_user: String,
    pub admin_password_file: Option<PathBuf>,
    pub server_version: String,
    pub log: Option<PathBuf>,
    /// A managed server's read replicas (`readers = N`), in order; each is reached like a
    /// managed server without TCP (its own Unix socket).
    pub readers: Vec<DatabaseEndpoint>,
}

impl DatabaseEndpoint {
    /// A URL without the password.
    pub fn url(&self) -> String {
        let scheme = match self.engine {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        };
        match (&self.socket, self.tcp) {
            // libpq's URI form for a socket directory, and the MySQL clients' equivalent.
            (Some(socket), false) => {
                let key = match self.engine {
                    Engine::Postgres => "host",
                    Engine::Mysql => "socket",
                };
                format!(
                    "{scheme}://{}@localhost/{}?{key}={}",
                    self.admin_user,
                    self.dbname,
                    query_value(&socket.to_string_lossy())
                )
            }
            // An external server named by its socket directory, written as libpq reads it.
            _ if external::is_socket_dir(&self.host) => format!(
                "{scheme}://{}@localhost:{}/{}?host={}",
                self.admin_user,
                self.port,
                self.dbname,
                query_value(&self.host)
            ),
            _ => format!(
                "{scheme}://{}@{}:{}/{}",
                self.admin_user, self.host, self.port, self.dbname
            ),
        }
    }

    /// `host:port`, or the socket for a server without TCP.
    pub fn address(&self) -> String {
        match (&self.socket, self.tcp) {
            (Some(socket), false) => socket.display().to_string(),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// `s` as a URL query value: a path stays readable ('/' and the other characters libpq and the
/// MySQL clients take as they are), while '&', '#', '%', '+', spaces and anything non-ASCII are
/// percent-encoded, so a socket directory named with them survives the round trip.
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~:@,".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A database the stack is using.
pub struct RunningDatabase {
    pub endpoint: DatabaseEndpoint,
    /// The server process, for managed databases.
    pub process: Option<Supervised>,
    /// The readers' server processes, in the order of `endpoint.readers`.
    pub readers: Vec<Supervised>,
}

/// A socket path must fit in `sun_path` (108 bytes with the NUL). Deep stack directories get a
/// short directory under /tmp instead, named after the state directory so it stays the same.
pub(crate) fn socket_dir(dir: &Path, longest_name: &str) -> PathBuf {
    let preferred = dir.join("run");
    if preferred.join(longest_name).as_os_str().len() < 100 {
        return preferred;
    }
    let h = dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    PathBuf::from(format!("/tmp/spillway-{h:016x}"))
}

/// Refuses a data directory that belongs to somebody else (it may be another installation's).
pub(crate) fn check_owner(
    path: &Path,
    expected: u32,
    service: &'static str,
) -> Result<(), SupervisorError> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.uid() != expected
    {
        return Err(SupervisorError::WrongOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            expected,
            service,
        });
    }
    Ok(())
}

/// Waits for a process that still holds a data directory (say, the server of a spillway that was
/// just killed, still shutting down) to go away.
pub(crate) async fn wait_for_stale(pid_file: &Path, what: &str) -> Result<(), SupervisorError> {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
    else {
        return Ok(());
    };
    let alive = || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while alive() {
        if tokio::time::Instant::now() > deadline {
            return Err(SupervisorError::Command {
                what: what.to_owned(),
                detail: format!(
                    "process {pid} still holds {} after 30s; stop it first",
                    pid_file.display()
                ),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Where a managed server lives and as whom it runs, prepared the same way for every engine:
/// its directory (reachable by and owned by the server's account), its data directory (refused
/// if another account owns it), its loopback port and its socket directory.
pub(crate) struct Layout {
    pub run_as: crate::process::RunAs,
    pub data: PathBuf,
    pub port: u16,
    pub sockets: PathBuf,
    pub password_file: PathBuf,
}

pub(crate) fn prepare_layout(
    spec: &ManagedSpec,
    service_user: &str,
    service: &'static str,
    longest_socket_name: &str,
    socket_only_port: u16,
    needs_port: bool,
) -> Result<Layout, SupervisorError> {
    let run_as = crate::process::RunAs::for_service(service_user);
    // The server's files (its log included) are nobody else's to read.
    private_dir::make_private(&spec.dir, &run_as, service)?;
    run_as.check_reachable(&spec.dir)?;
    let data = spec.dir.join("data");
    check_owner(&data, run_as.uid, service)?;
    let port = if spec.listens_on_tcp() || needs_port {
        crate::state::managed_port(
            &spec.dir,
            spec.port,
            &format!("databases.{}.port", spec.resource),
        )?
    } else {
        socket_only_port
    };
    let sockets = private_socket_dir(&spec.dir, longest_socket_name, &run_as, service)?;
    Ok(Layout {
        run_as,
        data,
        port,
        sockets,
        password_file: spec.dir.join("admin-password"),
    })
}

/// The socket directory of a server whose state directory is `dir`, made private to its
/// account (`private_dir.rs`). Only that account (and root) may enter it: a function running
/// under a user of its own must not reach the database's socket, and MariaDB makes its socket
/// 0777.
pub(crate) fn private_socket_dir(
    dir: &Path,
    longest_socket_name: &str,
    run_as: &crate::process::RunAs,
    service: &'static str,
) -> Result<PathBuf, SupervisorError> {
    let sockets = socket_dir(dir, longest_socket_name);
    private_dir::make_private(&sockets, run_as, service)?;
    Ok(sockets)
}

impl ManagedSpec {
    /// TCP is opt-in: `tcp = true`, or a `port` (which makes no sense without it).
    pub fn listens_on_tcp(&self) -> bool {
        self.tcp || self.port.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, socket: Option<&str>, tcp: bool) -> DatabaseEndpoint {
        DatabaseEndpoint {
            resource: "db".into(),
            engine: Engine::Postgres,
            host: host.into(),
            port: 5433,
            tcp,
            socket: socket.map(PathBuf::from),
            dbname: "main".into(),
            admin_user: "spillway".into(),
            admin_password_file: None,
            server_version: "15".into(),
            log: None,
            readers: Vec::new(),
        }
    }

    #[test]
    fn a_managed_servers_directory_and_socket_directory_are_closed_to_other_users() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // Under root the server's account must pass through the parents, as in a real stack.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let spec = ManagedSpec {
            resource: "main".into(),
            dbname: "main".into(),
            dir: tmp.path().join("databases/main"),
            tcp: false,
            port: None,
            max_connections: 10,
            init: vec![],
            users: vec![],
            readers: 0,
        };
        let layout = prepare_layout(
            &spec,
            "postgres",
            "postgres",
            ".s.PGSQL.65535.lock",
            5432,
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(layout.sockets, spec.dir.join("run"));
        for dir in [&spec.dir, &layout.sockets] {
            let meta = std::fs::metadata(dir).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
            assert_eq!(meta.uid(), layout.run_as.uid, "{}", dir.display());
        }
    }

    #[test]
    fn socket_directories_survive_the_url() {
        // An external server named by an odd directory, and a managed one without TCP.
        let odd = "/tmp/a dir&x=1#frag%+ü";
        let url = endpoint(odd, None, true).url();
        assert_eq!(
            external::parse_server(Engine::Postgres, &url),
            Ok((odd.to_owned(), 5433)),
            "{url}"
        );
        let url = endpoint("/unused", Some(odd), false).url();
        assert_eq!(
            external::parse_server(Engine::Postgres, &url).map(|(h, _)| h),
            Ok(odd.to_owned()),
            "{url}"
        );
        // Ordinary paths stay readable.
        assert_eq!(
            endpoint("/var/run/postgresql", None, true).url(),
            "postgres://spillway@localhost:5433/main?host=/var/run/postgresql"
        );
    }
}
