//! `spillway proxy --target URL`: a pooler in front of an existing PostgreSQL with no stack file,
//! for people who want only that (PgBouncer's job). Clients log in with the target URL's user and
//! password, or with the users of a PgBouncer-style users file (`"user" "password"` per line).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spillway_proxy::metrics::Registry;
use spillway_proxy::mysql::backend::MyConn;
use spillway_proxy::mysql::proxy::{MyProxy, MySettings, MyUser, PasswordPlugin};
use spillway_proxy::pg::backend::{ServerAddr, ServerConn};
use spillway_proxy::pg::pinning::Filters;
use spillway_proxy::pg::proxy::{ClientAuth, PgProxy, Settings, User};
use spillway_proxy::pool::{PoolSettings, PoolView, Target};
use spillway_stack::model::{Engine, IamAuth, PoolMode};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::databases::external::{DbUrl, parse_url};
use crate::error::SupervisorError;
use crate::proxies::{SERVER_IDLE_TIMEOUT, SERVER_LIFETIME, bind};

#[derive(Clone, Debug)]
pub struct Options {
    pub target: String,
    /// None: the engine's usual proxy port on loopback.
    pub listen: Option<SocketAddr>,
    pub pool_size: usize,
    pub mode: PoolMode,
    pub users_file: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub borrow_timeout: Duration,
    pub idle_client_timeout: Duration,
    /// Proxy threads (`--workers`), each with its own listening socket.
    pub workers: usize,
    pub md5: bool,
}

pub struct Standalone {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    proxy: OneLine,
    target: Arc<dyn PoolView>,
    options: Options,
    url: DbUrl,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Reads a users file: one `"user" "password"` pair per line (PgBouncer's auth_file format with
/// plaintext passwords, which the proxy needs to log in to the server as that user); `;` and
/// `#` start comments. Errors name the line.
pub fn read_users_file(path: &Path) -> Result<Vec<(String, String)>, SupervisorError> {
    let text = std::fs::read_to_string(path).map_err(SupervisorError::io(path))?;
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let fields = quoted_fields(line);
        match fields.as_deref() {
            Some([user, password, ..]) if !user.is_empty() => {
                users.push((user.clone(), password.clone()))
            }
            _ => {
                return Err(SupervisorError::Command {
                    what: format!("{}:{}", path.display(), i + 1),
                    detail: "expected \"user\" \"password\"".into(),
                });
            }
        }
    }
    Ok(users)
}

/// Splits `"a" "b ""c"""` into `a`, `b "c"` (a doubled quote is a quote, as in PgBouncer).
fn quoted_fields(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some('"') => {}
            Some(_) => return None,
        }
        let mut field = String::new();
        loop {
            match chars.next()? {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => break,
                c => field.push(c),
            }
        }
        out.push(field);
    }
}

fn settings(options: &Options, url: &DbUrl) -> Result<Settings, SupervisorError> {
    let pairs = match &options.users_file {
        Some(f) => read_users_file(f)?,
        None => vec![(url.user.clone(), url.password.clone())],
    };
    let users: HashMap<String, Arc<User>> = pairs
        .into_iter()
        .map(|(u, p)| (u.clone(), Arc::new(User::new(&u, &p, IamAuth::Disabled))))
        .collect();
    Ok(Settings {
        proxy: "proxy".into(),
        server: crate::proxies::server_at(&url.host, url.port),
        server_tls: None,
        default_database: (!url.dbname.is_empty()).then(|| url.dbname.clone()),
        users,
        mode: options.mode,
        filters: Filters::default(),
        idle_client_timeout: options.idle_client_timeout,
        init_query: None,
        client_auth: if options.md5 {
            ClientAuth::Md5
        } else {
            ClientAuth::ScramSha256
        },
        allow_from: Vec::new(),
        connect_timeout: Duration::from_secs(10),
        tls: None,
        require_tls: false,
        debug_logging: false,
    })
}

/// The one proxy of either engine.
enum OneLine {
    Pg(Arc<PgProxy>),
    My(Arc<MyProxy>),
}

/// The engine a target URL names by its scheme.
fn engine_of(target: &str) -> Engine {
    if target.starts_with("mysql://") || target.starts_with("mariadb://") {
        Engine::Mysql
    } else {
        Engine::Postgres
    }
}

fn my_settings(
    options: &Options,
    url: &DbUrl,
    server_version: String,
) -> Result<MySettings, SupervisorError> {
    let pairs = match &options.users_file {
        Some(f) => read_users_file(f)?,
        None => vec![(url.user.clone(), url.password.clone())],
    };
    let users = pairs
        .into_iter()
        .map(|(u, p)| {
            (
                u.clone(),
                Arc::new(MyUser {
                    name: u,
                    password: p,
                    iam: IamAuth::Disabled,
                }),
            )
        })
        .collect();
    Ok(MySettings {
        proxy: "proxy".into(),
        server: ServerAddr::tcp(&url.host, url.port),
        server_tls: None,
        users,
        mode: options.mode,
        filters: spillway_proxy::mysql::pinning::Filters::default(),
        idle_client_timeout: options.idle_client_timeout,
        init_query: None,
        password_plugin: PasswordPlugin::Native,
        allow_from: Vec::new(),
        connect_timeout: Duration::from_secs(10),
        tls: None,
        require_tls: false,
        cleartext_on_loopback: false,
        local_infile: false,
        debug_logging: false,
        server_version,
        max_packet: 64 * 1024 * 1024,
    })
}

fn pool_settings(options: &Options) -> PoolSettings {
    PoolSettings {
        max_connections: options.pool_size.max(1),
        max_idle: options.pool_size.max(1),
        borrow_timeout: options.borrow_timeout,
        idle_timeout: SERVER_IDLE_TIMEOUT,
        lifetime: SERVER_LIFETIME,
    }
}

pub async fn start(options: Options) -> Result<Standalone, SupervisorError> {
    let engine = engine_of(&options.target);
    let url = parse_url(engine, &options.target).map_err(|detail| SupervisorError::Command {
        what: "--target".into(),
        detail,
    })?;
    let registry = Arc::new(Registry::default());
    let label = format!("{}:{}", url.host, url.port);
    let metrics = registry.target(engine.as_str(), "proxy", &label);
    let (proxy, target): (OneLine, Arc<dyn PoolView>) = match engine {
        Engine::Postgres => {
            let target = Target::<ServerConn>::new(pool_settings(&options), metrics);
            let proxy = PgProxy::new(settings(&options, &url)?, Arc::clone(&target), None);
            (OneLine::Pg(proxy), target)
        }
        Engine::Mysql => {
            let target = Target::<MyConn>::new(pool_settings(&options), metrics);
            let login = crate::proxies::first_login(
                &ServerAddr::tcp(&url.host, url.port),
                &None,
                &url.dbname,
                Some((url.user.as_str(), url.password.as_str())),
            );
            let (_, version) = crate::proxies::mysql_server_facts(login.as_ref(), 151).await;
            let proxy = MyProxy::new(
                my_settings(&options, &url, version)?,
                Arc::clone(&target),
                None,
            );
            (OneLine::My(proxy), target)
        }
    };
    let listen = options
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], engine.default_proxy_port())));
    let listener = crate::proxies::bind_proxy(listen, "--listen", options.workers)?;
    let addr = listener.local_addr();
    let (shutdown, rx) = watch::channel(false);
    let share = crate::descriptors::budget(1 + usize::from(options.metrics.is_some()));
    let endpoint = registry.endpoint(engine.as_str(), "proxy", "default");
    let listening = match &proxy {
        OneLine::Pg(p) => {
            spillway_proxy::listener::spawn(listener, Arc::clone(p), endpoint, rx.clone())
        }
        OneLine::My(p) => {
            spillway_proxy::listener::spawn(listener, Arc::clone(p), endpoint, rx.clone())
        }
    };
    let mut tasks = vec![listening.map_err(SupervisorError::io("--listen"))?];
    let mut metrics_addr = None;
    if let Some(m) = options.metrics {
        let l = bind(m, "--metrics").await?;
        metrics_addr = l.local_addr().ok();
        let observed = Arc::new(crate::http::Observed {
            apis: Vec::new(),
            queues: None,
            tables: None,
            functions: None,
            registry,
            targets: vec![("proxy".into(), Arc::clone(&target))],
            aws: None,
            // The one-line proxy's --metrics address is the operator's explicit choice and has
            // no stack principals to check against.
            guard: None,
        });
        tasks.push(tokio::spawn(crate::http::serve(
            l, observed, None, share, rx,
        )));
    }
    Ok(Standalone {
        addr,
        metrics_addr,
        proxy,
        target,
        options,
        url,
        shutdown,
        tasks,
    })
}

impl Standalone {
    /// Re-reads the users file and applies it; connected clients stay connected.
    pub fn reload(&self) -> Result<usize, SupervisorError> {
        let n = match &self.proxy {
            OneLine::Pg(p) => {
                let s = settings(&self.options, &self.url)?;
                let n = s.users.len();
                p.reload(s);
                n
            }
            OneLine::My(p) => {
                let version = p.settings().server_version.clone();
                let s = my_settings(&self.options, &self.url, version)?;
                let n = s.users.len();
                p.reload(s);
                n
            }
        };
        self.target.update_settings(pool_settings(&self.options));
        Ok(n)
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_files_in_pgbouncer_format() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let f = dir.path().join("users.txt");
        std::fs::write(
            &f,
            "; comment\n\"app\" \"pa ss\"\n\n\"odd\"\"name\" \"x\"\"y\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let users = read_users_file(&f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            users,
            vec![
                ("app".into(), "pa ss".into()),
                ("odd\"name".into(), "x\"y".into())
            ]
        );
        std::fs::write(&f, "\"app\" \"ok\"\napp nopass\n").unwrap_or_else(|e| panic!("{e}"));
        let err = read_users_file(&f)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("users.txt:2") && err.contains("expected \"user\" \"password\""),
            "{err}"
        );
    }
}
