//! Starting a stack's proxies: each gets the credentials of its secrets, a pool cap derived from
//! the server's `max_connections`, and a listener. Reloading applies a changed stack file's
//! users, pool sizes and timeouts to running proxies without dropping their clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use spillway_proxy::metrics::Registry;
use spillway_proxy::pg::backend::{ServerConn, ServerTarget};
use spillway_proxy::pg::pinning::Filters;
use spillway_proxy::pg::proxy::{ClientAuth, PgProxy, Settings, User};
use spillway_proxy::pool::{PoolSettings, Target};
use spillway_proxy::tls::ServerTls;
use spillway_stack::model::{ClientPasswordAuth, Engine, PinningFilter, Proxy};
use spillway_stack::{Kind, LoadedStack, listeners};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::databases::DatabaseEndpoint;
use crate::error::SupervisorError;

/// How long an unused server connection stays open, and how long any lives. RDS Proxy does not
/// expose these; these values keep connections warm through bursts without holding them forever.
pub const SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const SERVER_LIFETIME: Duration = Duration::from_secs(3600);

pub struct RunningProxy {
    pub name: String,
    pub addr: SocketAddr,
    pub target: Arc<Target>,
    pub task: JoinHandle<()>,
    proxy: Arc<PgProxy>,
    db: DatabaseEndpoint,
    /// The server's max_connections as read at start (the base of the percentages).
    server_max: u32,
}

type Values = HashMap<(Kind, String, String), String>;

/// The server's max_connections, read with the first user's login; the stack's value for a
/// managed database (or PostgreSQL's default) if that fails.
async fn server_max_connections(server: &ServerTarget, fallback: u32) -> u32 {
    match ServerConn::connect(server).await {
        Ok(mut c) => match c.simple_query("SHOW max_connections").await {
            Ok(rows) => rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|v| v.parse().ok())
                .unwrap_or(fallback),
            Err(_) => fallback,
        },
        Err(e) => {
            tracing::warn!(
                "cannot read max_connections from the server ({e}); assuming {fallback}"
            );
            fallback
        }
    }
}

pub fn pool_settings(p: &Proxy, server_max: u32) -> PoolSettings {
    let pct = |v: u8| (u64::from(server_max) * u64::from(v) / 100) as usize;
    let mut max = pct(p.max_connections_percent).max(1);
    if let Some(abs) = p.max_connections {
        max = max.min(abs as usize);
    }
    PoolSettings {
        max_connections: max,
        max_idle: pct(p.idle_connections_percent()).min(max),
        borrow_timeout: p.connection_borrow_timeout.get(),
        idle_timeout: SERVER_IDLE_TIMEOUT,
        lifetime: SERVER_LIFETIME,
    }
}

/// A proxy's runtime settings from the stack and the secrets' current values.
fn settings(
    loaded: &LoadedStack,
    name: &str,
    db: &DatabaseEndpoint,
    values: &Values,
) -> Result<Settings, SupervisorError> {
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
    let mut users = HashMap::new();
    for a in &p.auth {
        let get = |attr: &str| {
            values
                .get(&(Kind::Secret, a.secret.clone(), attr.to_owned()))
                .cloned()
        };
        let (Some(user), Some(password)) = (get("username"), get("password")) else {
            return Err(SupervisorError::Command {
                what: format!("proxies.{name}"),
                detail: format!("secret {:?} needs a username and a password", a.secret),
            });
        };
        users.insert(user.clone(), Arc::new(User::new(&user, &password, a.iam)));
    }
    let client_auth = match p.auth.iter().find_map(|a| a.client_password_auth) {
        Some(ClientPasswordAuth::PostgresMd5) => ClientAuth::Md5,
        _ => ClientAuth::ScramSha256,
    };
    let init_query = match &p.init_query {
        Some(t) => Some(
            t.resolve(&mut |r| crate::stack::lookup_value(values, stack, r))
                .map_err(|e| SupervisorError::Command {
                    what: format!("proxies.{name}.init_query"),
                    detail: e.to_string(),
                })?,
        ),
        None => None,
    };
    Ok(Settings {
        proxy: name.to_owned(),
        server_host: db.host.clone(),
        server_port: db.port,
        default_database: Some(db.dbname.clone()),
        users,
        mode: p.pool_mode,
        filters: Filters {
            exclude_variable_sets: p
                .session_pinning_filters
                .contains(&PinningFilter::ExcludeVariableSets),
        },
        idle_client_timeout: p.idle_client_timeout.get(),
        init_query,
        client_auth,
        allow_from: p
            .allow_from
            .iter()
            .filter_map(|c| spillway_stack::parse_cidr(c).ok())
            .collect(),
        connect_timeout: Duration::from_secs(10),
        tls: match &p.tls {
            Some(t) => Some(
                ServerTls::load(&loaded.path(&t.cert), &loaded.path(&t.key)).map_err(|e| {
                    SupervisorError::Command {
                        what: format!("proxies.{name}.tls"),
                        detail: e.to_string(),
                    }
                })?,
            ),
            None => None,
        },
        require_tls: p.require_tls,
    })
}

pub async fn start(
    loaded: &LoadedStack,
    name: &str,
    db: &DatabaseEndpoint,
    values: &Values,
    registry: &Arc<Registry>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<RunningProxy>, SupervisorError> {
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
    if db.engine != Engine::Postgres {
        return Ok(None);
    }
    let settings = settings(loaded, name, db, values)?;
    let probe = settings.users.values().next().map(|u| ServerTarget {
        host: db.host.clone(),
        port: db.port,
        database: db.dbname.clone(),
        user: u.name.clone(),
        password: u.password.clone(),
        init_query: None,
        connect_timeout: Duration::from_secs(10),
    });
    let fallback = stack
        .databases
        .get(&p.database)
        .map_or(100, |d| d.max_connections);
    let server_max = match &probe {
        Some(t) => server_max_connections(t, fallback).await,
        None => fallback,
    };
    let target = Target::new(
        pool_settings(p, server_max),
        registry.target(name, &p.database),
    );
    let proxy = PgProxy::new(settings, Arc::clone(&target), None);
    let addr = listeners::proxy_listen(stack, name)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 6432)));
    let listener = bind(addr, &format!("proxies.{name}.listen")).await?;
    let addr = listener
        .local_addr()
        .map_err(SupervisorError::io(addr.to_string()))?;
    let metrics = registry.endpoint(name, "default");
    let task = tokio::spawn(spillway_proxy::listener::serve(
        listener,
        Arc::clone(&proxy),
        metrics,
        shutdown,
    ));
    Ok(Some(RunningProxy {
        name: name.to_owned(),
        addr,
        target,
        task,
        proxy,
        db: db.clone(),
        server_max,
    }))
}

impl RunningProxy {
    /// Applies the proxy's settings from a newly loaded stack. Clients already connected keep
    /// their sessions; what needs a restart (the listener, the database) is reported instead.
    pub fn reload(
        &self,
        loaded: &LoadedStack,
        values: &Values,
    ) -> Result<Vec<String>, SupervisorError> {
        let mut notes = Vec::new();
        let Some(p) = loaded.stack.proxies.get(&self.name) else {
            notes.push(format!(
                "proxies.{} was removed from the stack; it runs until restart",
                self.name
            ));
            return Ok(notes);
        };
        if listeners::proxy_listen(&loaded.stack, &self.name)
            .is_some_and(|a| a.port() != 0 && a != self.addr)
        {
            notes.push(format!(
                "proxies.{}.listen changed; it applies at the next start",
                self.name
            ));
        }
        self.proxy
            .reload(settings(loaded, &self.name, &self.db, values)?);
        self.target
            .update_settings(pool_settings(p, self.server_max));
        Ok(notes)
    }
}

pub async fn bind(addr: SocketAddr, field: &str) -> Result<TcpListener, SupervisorError> {
    TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => SupervisorError::PortInUse {
            addr,
            field: field.to_owned(),
        },
        _ => SupervisorError::io(addr.to_string())(e),
    })
}
