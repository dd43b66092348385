//! External databases (`url = ...`): spillway connects once to check that the server answers and
//! to learn its version, and changes nothing unless `apply_init = true`.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use spillway_stack::model::Engine;

use super::{DatabaseEndpoint, RunningDatabase};
use crate::error::SupervisorError;
use crate::process::{RunAs, Spec, find_program, run};

/// The parts of a database URL spillway needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
}

/// The host and port of a `postgres://` or `mysql://` URL (a replica's URL needs no user).
pub fn parse_server(engine: Engine, raw: &str) -> Result<(String, u16), String> {
    let u = parse_libpq_url(raw)?;
    let default_port = match engine {
        Engine::Postgres => 5432,
        Engine::Mysql => 3306,
    };
    // libpq's ways of naming a Unix socket directory: `?host=/dir`, or the directory
    // percent-encoded as the host (`postgres://%2Fvar%2Frun%2Fpostgresql/db`). The port then
    // names the socket file (`.s.PGSQL.PORT`), as it does for libpq.
    let query_host = match engine {
        Engine::Postgres => u
            .query_pairs()
            .find(|(k, v)| k == "host" && v.starts_with('/'))
            .map(|(_, v)| v.into_owned()),
        Engine::Mysql => None,
    };
    let host = match query_host {
        Some(dir) => dir,
        None => {
            let raw_host = u
                .host_str()
                .filter(|h| !h.is_empty() && *h != NO_HOST)
                .ok_or("the URL has no host (a Unix socket directory is named with ?host=/dir)")?
                .trim_matches(['[', ']']);
            percent_decode(raw_host)
        }
    };
    // libpq also takes the port as a parameter (`?port=5433`); it wins, as there.
    let query_port = match u.query_pairs().find(|(k, _)| k == "port") {
        Some((_, v)) => Some(
            v.parse::<u16>()
                .map_err(|_| format!("the URL's port parameter {v:?} is not a port"))?,
        ),
        None => None,
    };
    Ok((host, query_port.or(u.port()).unwrap_or(default_port)))
}

/// Stands in for the empty host of `postgres://user:pw@/db?host=/dir`: libpq accepts it, the
/// URL standard (and so the `url` crate) refuses credentials without a host. Not a valid host
/// name, so it can never be mistaken for one.
const NO_HOST: &str = "spillway-no-host.invalid";

/// Parses a database URL as libpq reads it (an empty host is allowed, see [`NO_HOST`]).
pub fn parse_libpq_url(raw: &str) -> Result<url::Url, String> {
    let patched;
    let mut text = raw;
    if let Some((scheme, rest)) = raw.split_once("://") {
        // The authority ends at the first '/', '?' or '#'; the host starts after its last '@'.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host_start = rest[..authority_end].rfind('@').map_or(0, |at| at + 1);
        let host_and_port = &rest[host_start..authority_end];
        if host_and_port.is_empty() || host_and_port.starts_with(':') {
            patched = format!(
                "{scheme}://{}{NO_HOST}{}",
                &rest[..host_start],
                &rest[host_start..]
            );
            text = &patched;
        }
    }
    url::Url::parse(text).map_err(|e| format!("not a URL ({e})"))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether a URL's host names a Unix socket directory rather than a machine.
pub fn is_socket_dir(host: &str) -> bool {
    host.starts_with('/')
}

/// Parses `postgres://user:pass@host:port/db` or `mysql://...`, percent-decoding user and password.
pub fn parse_url(engine: Engine, raw: &str) -> Result<DbUrl, String> {
    let (host, port) = parse_server(engine, raw)?;
    let u = parse_libpq_url(raw)?;
    let decode = |s: &str| percent_decode(s);
    let user = decode(u.username());
    if user.is_empty() {
        return Err("the URL has no user name".into());
    }
    Ok(DbUrl {
        host,
        port,
        user,
        password: u.password().map(decode).unwrap_or_default(),
        dbname: u.path().trim_start_matches('/').to_owned(),
    })
}

fn client_spec(
    name: &str,
    engine: Engine,
    url: &DbUrl,
    log: &Path,
    extra: &[String],
) -> Result<Spec, SupervisorError> {
    let (program, package, mut args, env) = match engine {
        Engine::Postgres => {
            let args = vec![
                "-X".into(),
                "-q".into(),
                "-A".into(),
                "-t".into(),
                "-v".into(),
                "ON_ERROR_STOP=1".into(),
                "-h".into(),
                url.host.clone(),
                "-p".into(),
                url.port.to_string(),
                "-U".into(),
                url.user.clone(),
                "-d".into(),
                if url.dbname.is_empty() {
                    url.user.clone()
                } else {
                    url.dbname.clone()
                },
            ];
            (
                "psql",
                "postgresql-client",
                args,
                vec![
                    ("PGPASSWORD".to_owned(), url.password.clone()),
                    ("PGCONNECT_TIMEOUT".into(), "10".into()),
                ],
            )
        }
        Engine::Mysql => {
            let mut args = vec![
                "--no-defaults".into(),
                "--batch".into(),
                "--skip-column-names".into(),
                "--connect-timeout=10".into(),
                "-h".into(),
                url.host.clone(),
                "-P".into(),
                url.port.to_string(),
                "-u".into(),
                url.user.clone(),
            ];
            if !url.dbname.is_empty() {
                args.push(format!("--database={}", url.dbname));
            }
            (
                "mariadb",
                "mariadb-client",
                args,
                vec![("MYSQL_PWD".to_owned(), url.password.clone())],
            )
        }
    };
    args.extend(extra.iter().cloned());
    let program = find_program(program, &[]).ok_or_else(|| SupervisorError::MissingBinary {
        what: program,
        package,
        searched: "PATH".into(),
    })?;
    Ok(Spec {
        what: format!("databases.{name}: connecting to {}:{}", url.host, url.port),
        program,
        args,
        env,
        run_as: RunAs::current(),
        log: log.to_owned(),
        stop_signal: Signal::SIGTERM,
        cwd: None,
    })
}

/// Checks an external database and applies its init files once if asked to.
pub async fn check(
    name: &str,
    engine: Engine,
    raw_url: &str,
    state_dir: &Path,
    init: &[PathBuf],
    apply_init: bool,
) -> Result<RunningDatabase, SupervisorError> {
    let url = parse_url(engine, raw_url).map_err(|detail| SupervisorError::External {
        name: name.into(),
        detail,
    })?;
    std::fs::create_dir_all(state_dir).map_err(SupervisorError::io(state_dir))?;
    let log = state_dir.join("external.log");
    let query = match engine {
        Engine::Postgres => "SHOW server_version",
        Engine::Mysql => "SELECT VERSION()",
    };
    let version_file = state_dir.join("server-version");
    let flag = if engine == Engine::Postgres {
        "-c"
    } else {
        "-e"
    };
    let spec = client_spec(
        name,
        engine,
        &url,
        &log,
        &[flag.to_owned(), query.to_owned()],
    )?;
    // The version goes to the log; keep a copy to show.
    let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    run(&spec, None).await?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let version = text
        .get(before as usize..)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let _ = std::fs::write(&version_file, &version);

    if apply_init && !init.is_empty() {
        let marker = state_dir.join("init-applied");
        if !marker.exists() {
            for f in init {
                let (spec, stdin) = match engine {
                    Engine::Postgres => (
                        client_spec(
                            name,
                            engine,
                            &url,
                            &log,
                            &["-f".into(), f.display().to_string()],
                        )?,
                        None,
                    ),
                    Engine::Mysql => {
                        let sql = std::fs::read_to_string(f).map_err(SupervisorError::io(f))?;
                        (client_spec(name, engine, &url, &log, &[])?, Some(sql))
                    }
                };
                run(&spec, stdin).await?;
            }
            std::fs::write(&marker, "applied\n").map_err(SupervisorError::io(&marker))?;
        }
    }
    Ok(RunningDatabase {
        endpoint: DatabaseEndpoint {
            tcp: true,
            resource: name.into(),
            engine,
            host: url.host.clone(),
            port: url.port,
            socket: None,
            dbname: url.dbname.clone(),
            admin_user: url.user.clone(),
            admin_password_file: None,
            server_version: version,
            log: None,
            readers: Vec::new(),
        },
        process: None,
        readers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_decoded_and_defaulted() {
        let u = parse_url(
            Engine::Postgres,
            "postgres://app:p%40ss%2Fw@db.internal/main",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u,
            DbUrl {
                host: "db.internal".into(),
                port: 5432,
                user: "app".into(),
                password: "p@ss/w".into(),
                dbname: "main".into()
            }
        );
        let u = parse_url(Engine::Mysql, "mysql://root@127.0.0.1:3307/")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (u.port, u.password.as_str(), u.dbname.as_str()),
            (3307, "", "")
        );
        assert!(parse_url(Engine::Mysql, "mysql:///x").is_err());
        assert!(parse_url(Engine::Postgres, "postgres://host/db").is_err());
        let u =
            parse_url(Engine::Postgres, "postgres://u:a+b@h/db").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.password, "a+b",
            "a plus sign in a password is not a space"
        );
    }

    #[test]
    fn unix_socket_directories_as_libpq_names_them() {
        for raw in [
            "postgres://app:pw@%2Fvar%2Frun%2Fpostgresql:5433/main",
            "postgres://app:pw@localhost:5433/main?host=/var/run/postgresql",
            "postgres://app:pw@:5433/main?host=/var/run/postgresql",
            "postgres://app:pw@/main?host=/var/run/postgresql&port=5433",
        ] {
            let u = parse_url(Engine::Postgres, raw).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (u.host.as_str(), u.port),
                ("/var/run/postgresql", 5433),
                "{raw}"
            );
            assert!(is_socket_dir(&u.host));
            assert_eq!(u.dbname, "main");
        }
        // An empty host needs the directory named: there is no default socket to assume.
        assert!(parse_url(Engine::Postgres, "postgres://app:pw@/main").is_err());
        let u = parse_url(Engine::Postgres, "postgres://app@db:5432/main")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!is_socket_dir(&u.host));
    }
}
