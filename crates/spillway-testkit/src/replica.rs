//! A streaming replica of a [`PrivatePostgres`], made with `pg_basebackup -R` the way a standby
//! is made in production, for tests of read-only endpoints and writer failover.

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use spillway_supervisor::databases::postgres::{self, ADMIN_USER};
use spillway_supervisor::process::{self, RunAs, Spec, Supervised};

use crate::PrivatePostgres;

pub struct PgReplica {
    process: Option<Supervised>,
    pub port: u16,
    bindir: PathBuf,
    admin_password: String,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.spec_dir().join("data")
    }

    /// Runs SQL as the administrator (over TCP, with psql); panics if it fails.
    pub fn admin_sql(&self, sql: &str) -> String {
        admin_psql(self.port(), &self.admin_password, sql)
    }
}

fn bindir() -> PathBuf {
    postgres::server_bindir().unwrap_or_else(|e| panic!("no PostgreSQL binaries: {e}"))
}

fn admin_psql(port: u16, password: &str, sql: &str) -> String {
    let out = std::process::Command::new(bindir().join("psql"))
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-U",
            ADMIN_USER,
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password)
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    assert!(
        out.status.success(),
        "psql {sql:?} on port {port}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl PgReplica {
    /// Allows replication on `primary`, copies it with pg_basebackup and starts the copy as a
    /// hot standby on a free port.
    pub async fn start(primary: &PrivatePostgres) -> Self {
        let hba = primary.data_dir().join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).unwrap_or_else(|e| panic!("{e}"));
        if !text.contains("host replication") {
            text.push_str("host replication all 127.0.0.1/32 scram-sha-256\n");
            std::fs::write(&hba, text).unwrap_or_else(|e| panic!("{e}"));
            primary.admin_sql("SELECT pg_reload_conf()");
        }
        let bindir = bindir();
        let dir = tempfile::Builder::new()
            .prefix("spillway-replica-")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let run_as = RunAs::for_service("postgres");
        run_as.own(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        let log = dir.path().join("replica.log");
        let spec = |what: &str, program: PathBuf, args: Vec<String>, stop: Signal| Spec {
            what: what.into(),
            program,
            args,
            env: vec![("PGPASSWORD".into(), primary.admin_password.clone())],
            run_as: run_as.clone(),
            log: log.clone(),
            stop_signal: stop,
            cwd: Some(dir.path().to_path_buf()),
        };
        let backup: Vec<String> = [
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port().to_string(),
            "-U",
            ADMIN_USER,
            "-D",
            &data.display().to_string(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ]
        .map(String::from)
        .to_vec();
        process::run(
            &spec(
                "pg_basebackup",
                bindir.join("pg_basebackup"),
                backup,
                Signal::SIGTERM,
            ),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("pg_basebackup: {e}: {}", process::tail(&log, 20)));
        let port = crate::free_port();
        let args: Vec<String> = [
            "-D",
            &data.display().to_string(),
            "-p",
            &port.to_string(),
            "-k",
            &dir.path().display().to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
        ]
        .map(String::from)
        .to_vec();
        let process = Supervised::spawn(&spec(
            "replica postgres",
            bindir.join("postgres"),
            args,
            Signal::SIGINT,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let replica = Self {
            process: Some(process),
            port,
            bindir,
            admin_password: primary.admin_password.clone(),
            _dir: dir,
        };
        let ready = crate::eventually(Duration::from_secs(60), || {
            replica.try_sql("SELECT 1").is_some()
        });
        assert!(
            ready,
            "the replica did not start: {}",
            process::tail(&log, 30)
        );
        replica
    }

    fn try_sql(&self, sql: &str) -> Option<String> {
        let out = std::process::Command::new(self.bindir.join("psql"))
            .args(["-X", "-At", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", ADMIN_USER, "-d", "test", "-c", sql])
            .env("PGPASSWORD", &self.admin_password)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Runs SQL as the administrator; panics if it fails.
    pub fn admin_sql(&self, sql: &str) -> String {
        admin_psql(self.port, &self.admin_password, sql)
    }

    /// Promotes the standby to a primary and waits until it accepts writes.
    pub fn promote(&self) {
        self.admin_sql("SELECT pg_promote(true, 60)");
        let promoted = crate::eventually(Duration::from_secs(60), || {
            self.try_sql("SELECT pg_is_in_recovery()").as_deref() == Some("f")
        });
        assert!(promoted, "the replica was not promoted");
    }

    /// Waits until the replica has replayed everything the primary had written when called.
    pub fn catch_up(&self, primary: &PrivatePostgres) {
        let lsn = primary.admin_sql("SELECT pg_current_wal_lsn()");
        let caught_up = crate::eventually(Duration::from_secs(60), || {
            self.try_sql(&format!(
                "SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"
            ))
            .as_deref()
                == Some("t")
        });
        assert!(caught_up, "the replica did not catch up");
    }

    pub async fn stop(mut self) {
        if let Some(p) = self.process.take() {
            p.stop(Duration::from_secs(30)).await;
        }
    }
}

impl Drop for PgReplica {
    fn drop(&mut self) {
        if let Some(pid) = self.process.as_ref().and_then(Supervised::pid) {
            let _ =
                nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}
