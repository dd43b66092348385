//! A managed MariaDB (the MySQL-protocol engine Debian ships): `mariadb-install-db` once into a
//! private data directory, then `mariadbd` on a Unix socket and a loopback port, with
//! `mysql_native_password` logins. Reads no system option files (`--no-defaults`), so the
//! machine's own MariaDB configuration never leaks in.
//!
//! As with PostgreSQL, the first start happens in `data.partial/` and is renamed when complete.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use spillway_stack::model::Engine;
use tokio::io::AsyncReadExt;

use super::sql::{my_ident, my_literal};
use super::{DatabaseEndpoint, ManagedSpec, RunningDatabase, mysql_readers, wait_for_stale};
use super::{Layout, prepare_layout};
use crate::error::SupervisorError;
use crate::process::{RunAs, Spec, Supervised, find_program, run};
use crate::state::{admin_password, write_private};

/// The administrative user of a managed MariaDB (socket logins only).
pub const ADMIN_USER: &str = "root";
const READY_TIMEOUT: Duration = Duration::from_secs(90);
pub(super) const STOP_GRACE: Duration = Duration::from_secs(60);

pub(super) struct Binaries {
    install_db: PathBuf,
    server: PathBuf,
    pub(super) client: PathBuf,
}

/// `SPILLWAY_MARIADB_BINDIR` picks the server binaries (e.g. one of several installed
/// versions); then only that directory is searched for mariadb-install-db and mariadbd.
pub const BINDIR_VAR: &str = "SPILLWAY_MARIADB_BINDIR";

pub(super) fn binaries() -> Result<Binaries, SupervisorError> {
    let pinned = std::env::var_os(BINDIR_VAR).map(PathBuf::from);
    let extra = [
        PathBuf::from("/usr/sbin"),
        PathBuf::from("/usr/bin"),
        PathBuf::from("/usr/local/mysql/bin"),
    ];
    let searched = match &pinned {
        Some(d) => format!("{BINDIR_VAR}={}", d.display()),
        None => "PATH, /usr/sbin, /usr/bin, /usr/local/mysql/bin".to_owned(),
    };
    let find = |names: &[&'static str], package: &'static str, server: bool| {
        names
            .iter()
            .find_map(|n| match (&pinned, server) {
                (Some(d), true) => Some(d.join(n)).filter(|p| p.exists()),
                _ => find_program(n, &extra),
            })
            .ok_or_else(|| SupervisorError::MissingBinary {
                what: names[0],
                package,
                searched: searched.clone(),
            })
    };
    Ok(Binaries {
        install_db: find(
            &["mariadb-install-db", "mysql_install_db"],
            "mariadb-server",
            true,
        )?,
        server: find(&["mariadbd", "mysqld"], "mariadb-server", true)?,
        client: find(&["mariadb", "mysql"], "mariadb-client", false)?,
    })
}

/// Which server of a database this is.
#[derive(Clone, Copy)]
pub(super) enum Role {
    /// The primary; `replicated` when it has readers: it then keeps a binary log and listens
    /// on its loopback port, because MariaDB replicas reach their primary over TCP only.
    Primary { replicated: bool },
    /// Reader `index` (from 1): a read-only replica of the primary.
    Reader { index: u32 },
}

pub(super) struct Server<'a> {
    pub(super) spec: &'a ManagedSpec,
    pub(super) bins: &'a Binaries,
    pub(super) run_as: &'a RunAs,
    pub(super) port: u16,
    pub(super) socket: PathBuf,
    pub(super) log: PathBuf,
    /// The server's own state directory (the database's, or its reader's).
    pub(super) dir: PathBuf,
    pub(super) role: Role,
}

impl Server<'_> {
    /// `databases.NAME`, or `databases.NAME.readers.N` for a reader.
    pub(super) fn label(&self) -> String {
        match self.role {
            Role::Primary { .. } => format!("databases.{}", self.spec.resource),
            Role::Reader { index } => {
                format!(
                    "databases.{}",
                    super::readers::name(&self.spec.resource, index)
                )
            }
        }
    }

    /// A temporary directory of the server's own: servers sharing /tmp (two stacks, parallel
    /// first starts) remove each other's temporary tables, and a first start then fails with
    /// "Unknown table 'mysql.tmp_user_sys'".
    fn tmp_dir(&self) -> Result<PathBuf, SupervisorError> {
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(SupervisorError::io(&tmp))?;
        self.run_as.own(&tmp)?;
        Ok(tmp)
    }

    /// A server on a TCP port offers TLS, as every RDS instance does (clients choose; nothing
    /// is required), with a self-signed certificate generated on first start and kept in
    /// `tls/`. The socket needs none: it never leaves the machine.
    fn tls_args(&self) -> Result<Vec<String>, SupervisorError> {
        let dir = self.dir.join("tls");
        let (cert, key) = crate::self_signed::pair(
            &dir,
            vec!["localhost".into(), "127.0.0.1".into()],
            &self.label(),
        )?;
        // mariadbd runs as the service account under root and must read its key.
        for p in [&dir, &cert, &key] {
            self.run_as.own(p)?;
        }
        Ok(vec![
            format!("--ssl-cert={}", cert.display()),
            format!("--ssl-key={}", key.display()),
        ])
    }

    pub(super) fn spawn(&self, data: &Path) -> Result<Supervised, SupervisorError> {
        let tmp = self.tmp_dir()?;
        let mut args = vec![
            "--no-defaults".into(),
            format!("--datadir={}", data.display()),
            format!("--socket={}", self.socket.display()),
        ];
        let tcp = match self.role {
            Role::Primary { replicated } => self.spec.listens_on_tcp() || replicated,
            Role::Reader { .. } => false,
        };
        if tcp {
            args.extend([
                format!("--port={}", self.port),
                "--bind-address=127.0.0.1".into(),
            ]);
            args.extend(self.tls_args()?);
        } else {
            args.push("--skip-networking".into());
        }
        match self.role {
            Role::Primary { replicated: false } => {}
            // GTID replication needs the binary log (row-based: replicas apply exactly what
            // changed). Two days of it cover replicas that were stopped with the stack.
            Role::Primary { replicated: true } => args.extend([
                "--server-id=1".into(),
                "--log-bin=binlog".into(),
                "--binlog-format=ROW".into(),
                "--expire-logs-days=2".into(),
            ]),
            // A reader keeps a binary log too: its first start reads the primary's position
            // from the copied one (`gtid_binlog_pos`). Replication starts only once spillway
            // has pointed it at the primary's current port.
            Role::Reader { index } => args.extend([
                format!("--server-id={}", 100 + index),
                "--log-bin=binlog".into(),
                "--relay-log=relay-bin".into(),
                "--binlog-format=ROW".into(),
                "--read-only=ON".into(),
                "--skip-slave-start".into(),
            ]),
        }
        args.extend([
            format!("--pid-file={}", self.dir.join("mariadbd.pid").display()),
            format!("--tmpdir={}", tmp.display()),
            format!("--max-connections={}", self.spec.max_connections),
            "--skip-name-resolve".into(),
            "--innodb-buffer-pool-size=64M".into(),
            "--character-set-server=utf8mb4".into(),
        ]);
        Supervised::spawn(&Spec {
            what: format!("mariadbd for {}", self.label()),
            program: self.bins.server.clone(),
            args,
            env: vec![],
            run_as: self.run_as.clone(),
            log: self.log.clone(),
            // SIGTERM is mariadbd's normal, clean shutdown.
            stop_signal: Signal::SIGTERM,
            cwd: Some(self.dir.clone()),
        })
    }

    /// Ready means the server sends its handshake (protocol version 10) on its socket.
    pub(super) async fn wait_ready(&self, process: &mut Supervised) -> Result<(), SupervisorError> {
        process
            .wait_until_ready(READY_TIMEOUT, Duration::from_millis(50), || {
                handshake(&self.socket)
            })
            .await
    }

    /// Runs SQL as root over the socket with the `mariadb` client (so init files written for it,
    /// DELIMITER and all, work as they are).
    pub(super) async fn client(
        &self,
        password: Option<&str>,
        db: Option<&str>,
        sql: Option<&str>,
        file: Option<&Path>,
        what: &str,
    ) -> Result<(), SupervisorError> {
        let mut args = vec![
            "--no-defaults".into(),
            format!("--socket={}", self.socket.display()),
            "-u".into(),
            ADMIN_USER.into(),
            "--batch".into(),
        ];
        if let Some(db) = db {
            args.push(format!("--database={db}"));
        }
        let mut env = Vec::new();
        if let Some(pw) = password {
            env.push(("MYSQL_PWD".to_owned(), pw.to_owned()));
        }
        let stdin = match (sql, file) {
            (Some(sql), _) => Some(sql.to_owned()),
            (None, Some(f)) => Some(std::fs::read_to_string(f).map_err(SupervisorError::io(f))?),
            (None, None) => None,
        };
        let spec = Spec {
            what: format!("{}: {what}", self.label()),
            program: self.bins.client.clone(),
            args,
            env,
            run_as: RunAs::current(),
            log: self.dir.join("setup.log"),
            stop_signal: Signal::SIGTERM,
            cwd: None,
        };
        run(&spec, stdin).await
    }

    /// The stack's logins, with their passwords from the secrets. On each server of its own
    /// (primary and readers) and outside the binary log: a logged `IDENTIFIED BY` would keep the
    /// password in plain text in the primary's binlog and the readers' relay logs, which the
    /// replication login can stream.
    pub(super) async fn sync_users(&self, password: &str) -> Result<(), SupervisorError> {
        if self.spec.users.is_empty() {
            return Ok(());
        }
        let db = my_ident(&self.spec.dbname);
        let mut sql = String::from("SET SESSION sql_log_bin = 0;\n");
        // The grant on the stack's database comes with the user's creation only: a later
        // REVOKE (an init file's, as examples/tenants keeps each tenant to its own database,
        // or an operator's) is not undone at the next start. The password follows the secret
        // on every start.
        for u in &self.spec.users {
            let (name, pw) = (my_literal(&u.name), my_literal(&u.password));
            let grant = my_literal(&format!("GRANT ALL PRIVILEGES ON {db}.* TO {name}@'%'"));
            sql.push_str(&format!(
                "SET @spillway_new = NOT EXISTS (SELECT 1 FROM mysql.global_priv WHERE User = {name} AND Host = '%');\n\
                 CREATE USER IF NOT EXISTS {name}@'%' IDENTIFIED BY {pw};\n\
                 ALTER USER {name}@'%' IDENTIFIED BY {pw};\n\
                 SET @spillway_grant = IF(@spillway_new, {grant}, 'DO 0');\n\
                 PREPARE spillway_grant FROM @spillway_grant;\n\
                 EXECUTE spillway_grant;\n\
                 DEALLOCATE PREPARE spillway_grant;\n"
            ));
        }
        self.client(Some(password), None, Some(&sql), None, "setting up users")
            .await
    }
}

async fn handshake(socket: &Path) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::UnixStream::connect(socket),
    )
    .await
    else {
        return false;
    };
    let mut buf = [0u8; 5];
    matches!(tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut buf)).await, Ok(Ok(_)) if buf[4] == 10)
}

/// Starts (creating on first use) the managed MariaDB of `spec`.
pub async fn start(
    spec: &ManagedSpec,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunningDatabase, SupervisorError> {
    let bins = binaries()?;
    let replicated = spec.readers > 0;
    let Layout {
        run_as,
        data,
        port,
        sockets,
        password_file,
    } = prepare_layout(
        spec,
        "mysql",
        "mariadbd",
        "mysqld.sock.lock",
        3306,
        replicated,
    )?;
    let log = spec.dir.join("mariadbd.log");
    let server = Server {
        spec,
        bins: &bins,
        run_as: &run_as,
        port,
        socket: sockets.join("mysqld.sock"),
        log: log.clone(),
        dir: spec.dir.clone(),
        role: Role::Primary { replicated },
    };

    if !data.exists() {
        bootstrap(&server, &data, &password_file, progress).await?;
    }
    super::readers::close_data_dir(&data)?;
    let password =
        std::fs::read_to_string(&password_file).map_err(SupervisorError::io(&password_file))?;
    let password = password.trim().to_owned();
    wait_for_stale(
        &spec.dir.join("mariadbd.pid"),
        &format!("databases.{}", spec.resource),
    )
    .await?;
    // Readers are seeded now, while the primary is stopped: a copy of a stopped server's
    // files is consistent without any backup tool.
    mysql_readers::seed(&server, &data, progress).await?;
    let mut process = server.spawn(&data)?;
    let ready = async {
        server.wait_ready(&mut process).await?;
        server.sync_users(&password).await?;
        mysql_readers::sync_primary(&server, &password).await
    }
    .await;
    let replication_password = match ready {
        Ok(p) => p,
        Err(e) => {
            process.stop(STOP_GRACE).await;
            return Err(e);
        }
    };
    let mut endpoint = DatabaseEndpoint {
        resource: spec.resource.clone(),
        engine: Engine::Mysql,
        host: if spec.listens_on_tcp() {
            "127.0.0.1".into()
        } else {
            "localhost".into()
        },
        // Without TCP the port opened for readers is theirs only: the stack sees what it would
        // see without readers.
        port: if spec.listens_on_tcp() {
            port
        } else {
            mysql_readers::SOCKET_ONLY_PORT
        },
        tcp: spec.listens_on_tcp(),
        socket: Some(server.socket.clone()),
        dbname: spec.dbname.clone(),
        admin_user: ADMIN_USER.into(),
        admin_password_file: Some(password_file),
        server_version: std::fs::read_to_string(data.join("mariadb_upgrade_info"))
            .unwrap_or_default()
            .trim()
            .to_owned(),
        log: Some(log),
        readers: Vec::new(),
    };
    let readers = match replication_password {
        Some(repl) => {
            match mysql_readers::start_all(&server, &endpoint, &password, &repl, progress).await {
                Ok(r) => r,
                Err(e) => {
                    process.stop(STOP_GRACE).await;
                    return Err(e);
                }
            }
        }
        None => Vec::new(),
    };
    let (endpoints, processes) = readers.into_iter().unzip();
    endpoint.readers = endpoints;
    Ok(RunningDatabase {
        endpoint,
        process: Some(process),
        readers: processes,
    })
}

async fn bootstrap(
    server: &Server<'_>,
    data: &Path,
    password_file: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), SupervisorError> {
    // The first start keeps no binary log and opens no port: readers are seeded from the
    // finished data directory, not from its making.
    let server = &Server {
        socket: server.socket.clone(),
        log: server.log.clone(),
        dir: server.dir.clone(),
        role: Role::Primary { replicated: false },
        ..*server
    };
    let spec = server.spec;
    // Readers left from an earlier primary copy a database that is about to be replaced.
    super::readers::remove_all(spec)?;
    let partial = spec.dir.join("data.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(SupervisorError::io(&partial))?;
    }
    std::fs::create_dir_all(&partial).map_err(SupervisorError::io(&partial))?;
    server.run_as.own(&partial)?;
    super::readers::close_data_dir(&partial)?;
    let tmp = server.tmp_dir()?;
    let started = Instant::now();
    progress(&format!(
        "databases.{}: creating a MariaDB data directory (first start only)...",
        spec.resource
    ));
    let install = Spec {
        what: format!("mariadb-install-db for databases.{}", spec.resource),
        program: server.bins.install_db.clone(),
        args: vec![
            "--no-defaults".into(),
            format!("--datadir={}", partial.display()),
            format!("--tmpdir={}", tmp.display()),
            "--auth-root-authentication-method=normal".into(),
            "--skip-test-db".into(),
        ],
        env: vec![],
        run_as: server.run_as.clone(),
        log: spec.dir.join("install-db.log"),
        stop_signal: Signal::SIGTERM,
        cwd: Some(spec.dir.clone()),
    };
    run(&install, None).await?;

    let password = admin_password();
    let mut process = server.spawn(&partial)?;
    let setup = async {
        server.wait_ready(&mut process).await?;
        progress(&format!("databases.{}: creating database {:?} and applying {} init file(s)...", spec.resource, spec.dbname, spec.init.len()));
        // A fresh install has password-less root accounts for localhost, 127.0.0.1, ::1 and the
        // host name, and maybe anonymous ones. Keep root on the socket (localhost) and on
        // 127.0.0.1, both with the generated password; drop the rest.
        let pw = my_literal(&password);
        let sql = format!(
            "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD({pw});\n\
             CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY {pw};\n\
             ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD({pw});\n\
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n\
             DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1'));\n\
             FLUSH PRIVILEGES;\n\
             CREATE DATABASE IF NOT EXISTS {};\n",
            my_ident(&spec.dbname)
        );
        server.client(None, None, Some(&sql), None, "securing root").await?;
        server.sync_users(&password).await?;
        for f in &spec.init {
            server.client(Some(&password), Some(&spec.dbname), None, Some(f), &format!("init file {}", f.display())).await?;
        }
        Ok::<(), SupervisorError>(())
    }
    .await;
    process.stop(STOP_GRACE).await;
    setup?;
    mysql_readers::write_primary_id(server, &partial)?;
    write_private(password_file, &password)?;
    std::fs::rename(&partial, data).map_err(SupervisorError::io(data))?;
    progress(&format!(
        "databases.{}: MariaDB ready for first use in {:.1}s",
        spec.resource,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
