//! A unique database on the machine's own server, dropped when the value is dropped.
//!
//! The servers are reached with a test login that `scripts/test` creates (idempotently) on the
//! machine's PostgreSQL and MariaDB; `SPILLWAY_TEST_PG_URL` and `SPILLWAY_TEST_MYSQL_URL`
//! point elsewhere.

use std::process::Command;

use crate::{require_tool, unique};

pub const DEFAULT_PG_URL: &str = "postgres://spillway_test:spillway_test@127.0.0.1:5432/postgres";
pub const DEFAULT_MYSQL_URL: &str = "mysql://spillway_test:spillway_test@127.0.0.1:3306/";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
}

pub struct SharedServer {
    pub engine: Engine,
    pub dbname: String,
    base: url::Url,
}

impl SharedServer {
    pub fn postgres() -> Self {
        Self::create(Engine::Postgres)
    }

    pub fn mysql() -> Self {
        Self::create(Engine::Mysql)
    }

    fn create(engine: Engine) -> Self {
        let (var, default) = match engine {
            Engine::Postgres => ("SPILLWAY_TEST_PG_URL", DEFAULT_PG_URL),
            Engine::Mysql => ("SPILLWAY_TEST_MYSQL_URL", DEFAULT_MYSQL_URL),
        };
        let raw = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        let base = url::Url::parse(&raw).unwrap_or_else(|e| panic!("{var}: {e}"));
        let s = Self {
            engine,
            dbname: unique("spw"),
            base,
        };
        s.admin_sql(&format!("CREATE DATABASE {}", s.dbname));
        s
    }

    /// A URL for the new database.
    pub fn url(&self) -> String {
        let mut u = self.base.clone();
        u.set_path(&format!("/{}", self.dbname));
        u.to_string()
    }

    /// Runs SQL in the new database with the engine's own CLI; returns its output.
    pub fn sql(&self, sql: &str) -> String {
        self.run(sql, Some(&self.dbname))
    }

    fn admin_sql(&self, sql: &str) -> String {
        self.run(sql, None)
    }

    fn run(&self, sql: &str, db: Option<&str>) -> String {
        let host = self.base.host_str().unwrap_or("127.0.0.1").to_owned();
        let user = self.base.username().to_owned();
        let password = self.base.password().unwrap_or_default().to_owned();
        let out = match self.engine {
            Engine::Postgres => {
                let port = self.base.port().unwrap_or(5432).to_string();
                let base_db = self.base.path().trim_start_matches('/').to_owned();
                let db = db.map_or(base_db, str::to_owned);
                Command::new(require_tool("psql", "postgresql-client"))
                    .args([
                        "-X",
                        "-A",
                        "-t",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-h",
                        &host,
                        "-p",
                        &port,
                        "-U",
                        &user,
                        "-d",
                        &db,
                        "-c",
                        sql,
                    ])
                    .env("PGPASSWORD", password)
                    .output()
            }
            Engine::Mysql => {
                let port = self.base.port().unwrap_or(3306).to_string();
                let mut args = vec![
                    "--no-defaults".to_owned(),
                    "-N".into(),
                    "-B".into(),
                    "-h".into(),
                    host,
                    "-P".into(),
                    port,
                    "-u".into(),
                    user,
                ];
                if let Some(db) = db {
                    args.push(format!("--database={db}"));
                }
                args.extend(["-e".to_owned(), sql.to_owned()]);
                Command::new(require_tool("mariadb", "mariadb-client"))
                    .args(args)
                    .env("MYSQL_PWD", password)
                    .output()
            }
        }
        .unwrap_or_else(|e| panic!("cannot run the database client: {e}"));
        assert!(
            out.status.success(),
            "{sql:?} failed on the machine's {:?} server: {}\n(scripts/test creates the spillway_test login)",
            self.engine,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for SharedServer {
    fn drop(&mut self) {
        let sql = match self.engine {
            Engine::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.dbname),
            Engine::Mysql => format!("DROP DATABASE IF EXISTS {}", self.dbname),
        };
        if !std::thread::panicking() {
            self.admin_sql(&sql);
        }
    }
}
