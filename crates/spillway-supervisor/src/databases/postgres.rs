//! A managed PostgreSQL: `initdb` once into a private data directory, then `postgres` on a Unix
//! socket and a loopback port with SCRAM authentication everywhere.
//!
//! First start is done in `data.partial/` (initdb, create the database and users, apply the init
//! files, stop) and only then renamed to `data/`: a crash at any point of the first start leaves
//! nothing half-made that a later start would mistake for a database.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use spillway_stack::model::Engine;

use super::sql::{pg_ident, pg_literal};
use super::{DatabaseEndpoint, ManagedSpec, RunningDatabase, postgres_readers, wait_for_stale};
use super::{Layout, prepare_layout};
use crate::error::SupervisorError;
use crate::process::{RunAs, Spec, Supervised, find_program, run};
use crate::state::{admin_password, write_private};

/// The superuser spillway creates in every managed PostgreSQL.
pub const ADMIN_USER: &str = "spillway";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub(super) const STOP_GRACE: Duration = Duration::from_secs(30);

pub(super) struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
    psql: PathBuf,
}

impl Binaries {
    /// A tool of the same installation as the server (pg_basebackup).
    pub(super) fn beside_server(&self, name: &str) -> PathBuf {
        self.postgres
            .parent()
            .map(|d| d.join(name))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(name))
    }
}

/// Debian installs server binaries under /usr/lib/postgresql/VERSION/bin; prefer the newest.
fn debian_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            Some((
                e.file_name().to_str()?.parse::<u32>().ok()?,
                e.path().join("bin"),
            ))
        })
        .collect();
    versions.sort();
    versions.into_iter().rev().map(|(_, p)| p).collect()
}

/// `SPILLWAY_PG_BINDIR` picks the server binaries (like PGBIN for pg_upgrade), e.g. when several
/// PostgreSQL versions are installed; then only that directory is searched for initdb/postgres.
pub const BINDIR_VAR: &str = "SPILLWAY_PG_BINDIR";

/// The directory of the server binaries spillway would use (tests take pg_basebackup from it).
pub fn server_bindir() -> Result<PathBuf, SupervisorError> {
    let bins = binaries()?;
    // Through symlinks (some installations link the server into /usr/local/bin): the real
    // directory holds the matching client tools too.
    let postgres = std::fs::canonicalize(&bins.postgres).unwrap_or(bins.postgres);
    Ok(postgres.parent().map(Path::to_path_buf).unwrap_or_default())
}

fn binaries() -> Result<Binaries, SupervisorError> {
    if let Some(dir) = std::env::var_os(BINDIR_VAR) {
        let dir = PathBuf::from(dir);
        let find = |name: &'static str| {
            let p = dir.join(name);
            p.exists()
                .then_some(p)
                .ok_or_else(|| SupervisorError::MissingBinary {
                    what: name,
                    package: "postgresql",
                    searched: format!("{BINDIR_VAR}={}", dir.display()),
                })
        };
        let psql = find_program("psql", std::slice::from_ref(&dir)).ok_or_else(|| {
            SupervisorError::MissingBinary {
                what: "psql",
                package: "postgresql-client",
                searched: "PATH".into(),
            }
        })?;
        return Ok(Binaries {
            initdb: find("initdb")?,
            postgres: find("postgres")?,
            psql,
        });
    }
    let dirs = debian_dirs();
    let searched = || {
        let mut s = vec!["PATH".to_owned()];
        s.extend(dirs.iter().map(|d| d.display().to_string()));
        if dirs.is_empty() {
            s.push("/usr/lib/postgresql/*/bin".into());
        }
        s.join(", ")
    };
    let find = |name: &'static str, package: &'static str| {
        find_program(name, &dirs).ok_or_else(|| SupervisorError::MissingBinary {
            what: name,
            package,
            searched: searched(),
        })
    };
    // Prefer initdb and postgres from the same directory, so versions match.
    let initdb = find("initdb", "postgresql")?;
    let postgres = initdb
        .parent()
        .map(|d| d.join("postgres"))
        .filter(|p| p.exists())
        .map_or_else(|| find("postgres", "postgresql"), Ok)?;
    let psql = find("psql", "postgresql-client")?;
    Ok(Binaries {
        initdb,
        postgres,
        psql,
    })
}

/// Which server of a database this is.
#[derive(Clone, Copy)]
pub(super) enum Role {
    Primary,
    /// Reader `index` (from 1): a hot standby streaming from the primary.
    Reader {
        index: u32,
    },
}

pub(super) struct Server<'a> {
    pub(super) spec: &'a ManagedSpec,
    pub(super) bins: &'a Binaries,
    pub(super) run_as: &'a RunAs,
    pub(super) port: u16,
    pub(super) sockets: PathBuf,
    pub(super) log: PathBuf,
    /// The server's own state directory (the database's, or its reader's).
    pub(super) dir: PathBuf,
    pub(super) role: Role,
    /// Extra `-c` settings (a reader's `primary_conninfo`).
    pub(super) settings: Vec<String>,
}

impl Server<'_> {
    /// `databases.NAME`, or `databases.NAME.readers.N` for a reader.
    pub(super) fn label(&self) -> String {
        match self.role {
            Role::Primary => format!("databases.{}", self.spec.resource),
            Role::Reader { index } => {
                format!(
                    "databases.{}",
                    super::readers::name(&self.spec.resource, index)
                )
            }
        }
    }

    pub(super) fn spawn(&self, data: &Path) -> Result<Supervised, SupervisorError> {
        let tcp = matches!(self.role, Role::Primary) && self.spec.listens_on_tcp();
        let mut args = vec![
            "-D".into(),
            data.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-k".into(),
            self.sockets.display().to_string(),
            "-c".into(),
            // Empty: the Unix socket only.
            format!("listen_addresses={}", if tcp { "127.0.0.1" } else { "" }),
            "-c".into(),
            format!("max_connections={}", self.spec.max_connections),
            "-c".into(),
            "logging_collector=off".into(),
            "-c".into(),
            "password_encryption=scram-sha-256".into(),
        ];
        if self.spec.readers > 0 {
            // A standby needs at least its primary's max_wal_senders, so both get the same
            // value; the kept WAL covers readers stopped a little before their primary.
            args.extend([
                "-c".into(),
                format!("max_wal_senders={}", (self.spec.readers + 2).max(10)),
                "-c".into(),
                "wal_keep_size=128MB".into(),
            ]);
        }
        for setting in &self.settings {
            args.extend(["-c".into(), setting.clone()]);
        }
        Supervised::spawn(&Spec {
            what: format!("postgres for {}", self.label()),
            program: self.bins.postgres.clone(),
            args,
            env: vec![("LC_ALL".into(), "C".into())],
            run_as: self.run_as.clone(),
            log: self.log.clone(),
            // SIGINT is PostgreSQL's "fast shutdown": roll back, checkpoint, exit cleanly.
            stop_signal: Signal::SIGINT,
            cwd: Some(self.dir.clone()),
        })
    }

    /// PostgreSQL writes "ready" into line 8 of postmaster.pid once it accepts connections
    /// ("standby" for a hot standby that does).
    pub(super) async fn wait_ready(
        &self,
        data: &Path,
        process: &mut Supervised,
    ) -> Result<(), SupervisorError> {
        let pid_file = data.join("postmaster.pid");
        process
            .wait_until_ready(READY_TIMEOUT, Duration::from_millis(25), || {
                let ready = std::fs::read_to_string(&pid_file).ok().is_some_and(|s| {
                    s.lines()
                        .nth(7)
                        .is_some_and(|l| matches!(l.trim(), "ready" | "standby"))
                });
                std::future::ready(ready)
            })
            .await
    }

    /// Runs SQL as the superuser with psql (so init files written for psql work as they are).
    pub(super) async fn psql(
        &self,
        password: &str,
        db: &str,
        input: PsqlInput<'_>,
    ) -> Result<(), SupervisorError> {
        let mut args = vec![
            "-X".into(),
            "-q".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-h".into(),
            self.sockets.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            ADMIN_USER.into(),
            "-d".into(),
            db.into(),
        ];
        let (what, stdin) = match input {
            PsqlInput::Sql(what, sql) => (what.to_owned(), Some(sql.to_owned())),
            PsqlInput::File(f) => {
                args.extend(["-f".into(), f.display().to_string()]);
                (format!("init file {}", f.display()), None)
            }
        };
        let spec = Spec {
            what: format!("{}: {what}", self.label()),
            program: self.bins.psql.clone(),
            args,
            env: vec![
                ("PGPASSWORD".into(), password.into()),
                ("PGCONNECT_TIMEOUT".into(), "10".into()),
            ],
            run_as: RunAs::current(),
            log: self.dir.join("setup.log"),
            stop_signal: Signal::SIGTERM,
            cwd: None,
        };
        run(&spec, stdin).await
    }

    /// Creates missing users and sets every user's password to its secret's current value.
    async fn sync_users(&self, password: &str) -> Result<(), SupervisorError> {
        if self.spec.users.is_empty() {
            return Ok(());
        }
        let db = pg_ident(&self.spec.dbname);
        let mut sql = String::new();
        for u in &self.spec.users {
            let (id, lit) = (pg_ident(&u.name), pg_literal(&u.name));
            sql.push_str(&format!(
                "DO $spillway$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {lit}) THEN CREATE ROLE {id} LOGIN; END IF; END $spillway$;\n\
                 ALTER ROLE {id} WITH LOGIN PASSWORD {};\n\
                 GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {id};\n\
                 GRANT USAGE, CREATE ON SCHEMA public TO {id};\n",
                pg_literal(&u.password)
            ));
        }
        self.psql(
            password,
            &self.spec.dbname,
            PsqlInput::Sql("setting up users", &sql),
        )
        .await
    }
}

pub(super) enum PsqlInput<'a> {
    /// What it does, and the SQL.
    Sql(&'a str, &'a str),
    File(&'a Path),
}

/// Starts (creating on first use) the managed PostgreSQL of `spec`.
pub async fn start(
    spec: &ManagedSpec,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunningDatabase, SupervisorError> {
    let bins = binaries()?;
    let Layout {
        run_as,
        data,
        port,
        sockets,
        password_file,
    } = prepare_layout(
        spec,
        "postgres",
        "postgres",
        ".s.PGSQL.65535.lock",
        5432,
        false,
    )?;
    let log = spec.dir.join("postgres.log");
    let server = Server {
        spec,
        bins: &bins,
        run_as: &run_as,
        port,
        sockets: sockets.clone(),
        log: log.clone(),
        dir: spec.dir.clone(),
        role: Role::Primary,
        settings: Vec::new(),
    };

    if !data.exists() {
        bootstrap(&server, &data, &password_file, progress).await?;
    }
    let password =
        std::fs::read_to_string(&password_file).map_err(SupervisorError::io(&password_file))?;
    let password = password.trim().to_owned();
    wait_for_stale(
        &data.join("postmaster.pid"),
        &format!("databases.{}", spec.resource),
    )
    .await?;
    let mut process = server.spawn(&data)?;
    if let Err(e) = server.wait_ready(&data, &mut process).await {
        process.stop(STOP_GRACE).await;
        return Err(e);
    }
    if let Err(e) = server.sync_users(&password).await {
        process.stop(STOP_GRACE).await;
        return Err(e);
    }
    if let Err(e) = super::readers::remove_surplus(spec) {
        process.stop(STOP_GRACE).await;
        return Err(e);
    }
    let version = std::fs::read_to_string(data.join("PG_VERSION"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut endpoint = DatabaseEndpoint {
        resource: spec.resource.clone(),
        engine: Engine::Postgres,
        host: if spec.listens_on_tcp() {
            "127.0.0.1".into()
        } else {
            sockets.display().to_string()
        },
        port,
        tcp: spec.listens_on_tcp(),
        socket: Some(sockets),
        dbname: spec.dbname.clone(),
        admin_user: ADMIN_USER.into(),
        admin_password_file: Some(password_file),
        server_version: version,
        log: Some(log),
        readers: Vec::new(),
    };
    let readers = match postgres_readers::start_all(&server, &endpoint, &password, progress).await {
        Ok(r) => r,
        Err(e) => {
            process.stop(STOP_GRACE).await;
            return Err(e);
        }
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
    let spec = server.spec;
    // Readers left from an earlier primary copy a database that is about to be replaced.
    super::readers::remove_all(spec)?;
    let partial = spec.dir.join("data.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(SupervisorError::io(&partial))?;
    }
    let started = Instant::now();
    progress(&format!(
        "databases.{}: creating a PostgreSQL data directory (first start only)...",
        spec.resource
    ));
    let password = admin_password();
    write_private(password_file, &password)?;
    // initdb reads the password from a file the server's account can read; remove it afterwards.
    let pwfile = spec.dir.join("initdb-pwfile");
    write_private(&pwfile, &password)?;
    server.run_as.own(&pwfile)?;
    let initdb = Spec {
        what: format!("initdb for databases.{}", spec.resource),
        program: server.bins.initdb.clone(),
        args: vec![
            "-D".into(),
            partial.display().to_string(),
            "-U".into(),
            ADMIN_USER.into(),
            format!("--pwfile={}", pwfile.display()),
            "--auth-local=scram-sha-256".into(),
            "--auth-host=scram-sha-256".into(),
            "-E".into(),
            "UTF8".into(),
            "--locale=C".into(),
            "--no-instructions".into(),
        ],
        env: vec![("LC_ALL".into(), "C".into())],
        run_as: server.run_as.clone(),
        log: spec.dir.join("initdb.log"),
        stop_signal: Signal::SIGTERM,
        cwd: Some(spec.dir.clone()),
    };
    let result = run(&initdb, None).await;
    let _ = std::fs::remove_file(&pwfile);
    result?;

    let mut process = server.spawn(&partial)?;
    let setup = async {
        server.wait_ready(&partial, &mut process).await?;
        progress(&format!(
            "databases.{}: creating database {:?} and applying {} init file(s)...",
            spec.resource,
            spec.dbname,
            spec.init.len()
        ));
        server
            .psql(
                &password,
                "postgres",
                PsqlInput::Sql(
                    "creating the database",
                    &format!("CREATE DATABASE {};\n", pg_ident(&spec.dbname)),
                ),
            )
            .await?;
        server.sync_users(&password).await?;
        for f in &spec.init {
            server
                .psql(&password, &spec.dbname, PsqlInput::File(f))
                .await?;
        }
        Ok::<(), SupervisorError>(())
    }
    .await;
    process.stop(STOP_GRACE).await;
    setup?;
    std::fs::rename(&partial, data).map_err(SupervisorError::io(data))?;
    progress(&format!(
        "databases.{}: PostgreSQL ready for first use in {:.1}s",
        spec.resource,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
