//! Starting a stack's proxies: each gets the credentials of its secrets, a pool cap derived from
//! the server's `max_connections`, and its listeners (the default read-write endpoint and the
//! stack's extra ones). A database with replicas is watched by a `Topology`: read-write
//! endpoints follow its writer, read-only endpoints share one reader target. Reloading applies
//! a changed stack file's users, pool sizes and timeouts to running proxies without dropping
//! their clients.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use spillway_proxy::metrics::Registry;
use spillway_proxy::pg::backend::{ServerAddr, ServerConn, ServerTarget};
use spillway_proxy::pg::pinning::Filters;
use spillway_proxy::pg::proxy::IamVerifier;
use spillway_proxy::pg::proxy::{ClientAuth, PgProxy, Settings, User};
use spillway_proxy::pg::topology::Topology;
use spillway_proxy::pool::{PoolSettings, Route, Target};
use spillway_proxy::tls::ServerTls;
use spillway_stack::model::{
    ClientPasswordAuth, EndpointRole, Engine, IamAuth, PinningFilter, Proxy,
};
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
    /// The default (read-write) endpoint.
    pub addr: SocketAddr,
    /// The stack's extra endpoints: name, role, address.
    pub endpoints: Vec<(String, EndpointRole, SocketAddr)>,
    /// The read-write target, and the read-only one if an endpoint needs it, named for the
    /// admin view.
    pub targets: Vec<(String, Arc<Target>)>,
    pub tasks: Vec<JoinHandle<()>>,
    /// The read-write proxy, and the read-only one if any.
    proxies: Vec<(EndpointRole, Arc<PgProxy>)>,
    db: DatabaseEndpoint,
    replicas: Vec<ServerAddr>,
    /// The secrets its users log in with, each with the user it named when the stack was
    /// (re)loaded. A rotation may change that user's password, never which user it is.
    auth_secrets: Arc<RwLock<HashMap<String, String>>>,
    /// RDS IAM token verification, when any of the proxy's users allows it.
    iam: Option<Arc<crate::identity::ProxyTokens>>,
    /// The server's max_connections as read at start (the base of the percentages).
    server_max: u32,
}

fn verifier(iam: &Option<Arc<crate::identity::ProxyTokens>>) -> Option<Arc<dyn IamVerifier>> {
    iam.as_ref().map(|t| Arc::clone(t) as Arc<dyn IamVerifier>)
}

/// How the proxy reaches a database: a managed PostgreSQL through its Unix socket (it may
/// listen on no port at all), anything else over TCP.
pub fn server_addr(db: &DatabaseEndpoint) -> ServerAddr {
    match (&db.socket, db.engine) {
        (Some(dir), Engine::Postgres) => {
            ServerAddr::Unix(dir.join(format!(".s.PGSQL.{}", db.port)))
        }
        _ => server_at(&db.host, db.port),
    }
}

/// A PostgreSQL server named by a URL's host and port: a host that is a directory (libpq's
/// `?host=/var/run/postgresql`) means the Unix socket `.s.PGSQL.PORT` in it.
pub fn server_at(host: &str, port: u16) -> ServerAddr {
    if crate::databases::external::is_socket_dir(host) {
        ServerAddr::Unix(std::path::Path::new(host).join(format!(".s.PGSQL.{port}")))
    } else {
        ServerAddr::tcp(host, port)
    }
}

/// TLS towards an external database, from its URL's `sslmode` (and `sslrootcert`, relative to
/// the stack file): `require` encrypts without checking the certificate, `verify-ca` and
/// `verify-full` check it against the CA and the host name (spillway does not offer the weaker
/// `verify-ca`). `disable`, `allow`, `prefer` and no sslmode mean plaintext.
fn server_tls(
    loaded: &LoadedStack,
    name: &str,
    values: &Values,
) -> Result<Option<Arc<spillway_proxy::tls::ClientTls>>, SupervisorError> {
    use spillway_proxy::tls::{ClientTls, ServerTlsMode};
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
    let Some(url) = stack
        .databases
        .get(&p.database)
        .and_then(|d| d.url.as_ref())
    else {
        return Ok(None);
    };
    let field = format!("databases.{}.url", p.database);
    let fail = |detail: String| SupervisorError::Command {
        what: field.clone(),
        detail,
    };
    let raw = url
        .resolve(&mut |r| crate::stack::lookup_value(values, stack, r))
        .map_err(|e| fail(e.to_string()))?;
    let parsed = crate::databases::external::parse_libpq_url(&raw).map_err(fail)?;
    let param = |k: &str| {
        parsed
            .query_pairs()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.into_owned())
    };
    let mode = match param("sslmode").as_deref() {
        None | Some("disable" | "allow" | "prefer") => return Ok(None),
        Some("require") => ServerTlsMode::Require,
        Some("verify-ca" | "verify-full") => ServerTlsMode::VerifyFull,
        Some(other) => return Err(fail(format!("unknown sslmode {other:?}"))),
    };
    let ca = param("sslrootcert").map(|c| loaded.path(std::path::Path::new(&c)));
    ClientTls::new(mode, ca.as_deref())
        .map(|t| Some(Arc::new(t)))
        .map_err(|e| fail(e.to_string()))
}

/// The database's replicas, from their (resolved) URLs; the URLs' credentials are not used,
/// since the proxy logs in with its secrets everywhere.
fn replica_addrs(
    loaded: &LoadedStack,
    name: &str,
    values: &Values,
) -> Result<Vec<ServerAddr>, SupervisorError> {
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
    let Some(db) = stack.databases.get(&p.database) else {
        return Ok(Vec::new());
    };
    let field = |i: usize| format!("databases.{}.replicas[{i}]", p.database);
    db.replicas
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let raw = t
                .resolve(&mut |r| crate::stack::lookup_value(values, stack, r))
                .map_err(|e| SupervisorError::Command {
                    what: field(i),
                    detail: e.to_string(),
                })?;
            let (host, port) =
                crate::databases::external::parse_server(db.engine, &raw).map_err(|detail| {
                    SupervisorError::Command {
                        what: field(i),
                        detail,
                    }
                })?;
            Ok(server_at(&host, port))
        })
        .collect()
}

use crate::stack::Values;

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

/// Each of the proxy's secrets with the user it names in the stack's values.
fn bindings(p: &Proxy, values: &Values) -> HashMap<String, String> {
    p.auth
        .iter()
        .filter_map(|a| {
            let user = values.get(&(Kind::Secret, a.secret.clone(), "username".to_owned()))?;
            Some((a.secret.clone(), user.clone()))
        })
        .collect()
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
        server: server_addr(db),
        server_tls: server_tls(loaded, name, values)?,
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
        debug_logging: p.debug_logging,
    })
}

pub async fn start(
    loaded: &LoadedStack,
    name: &str,
    db: &DatabaseEndpoint,
    values: &Values,
    registry: &Arc<Registry>,
    keys: &Arc<spillway_identity::principals::KeyRing>,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<RunningProxy>, SupervisorError> {
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
    if db.engine != Engine::Postgres {
        return Ok(None);
    }
    let settings = settings(loaded, name, db, values)?;
    let replicas = replica_addrs(loaded, name, values)?;
    let iam = if p.auth.iter().any(|a| a.iam != IamAuth::Disabled) {
        Some(crate::identity::ProxyTokens::new(loaded, name, keys))
    } else {
        None
    };
    let login = settings.users.values().next().map(|u| ServerTarget {
        addr: settings.server.clone(),
        tls: settings.server_tls.clone(),
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
    let server_max = match &login {
        Some(t) => server_max_connections(t, fallback).await,
        None => fallback,
    };
    // With replicas, every server may become the writer; one monitor serves both routes.
    let topology = match (&login, replicas.is_empty()) {
        (Some(login), false) => {
            let mut servers = vec![settings.server.clone()];
            servers.extend(replicas.iter().cloned());
            let t = Topology::new(servers);
            t.spawn_monitor(login.clone(), shutdown.clone());
            Some(t)
        }
        _ => None,
    };
    let pools = pool_settings(p, server_max);
    let writer = Target::with_route(
        pools.clone(),
        registry.target(name, &p.database),
        topology
            .as_ref()
            .map_or(Route::Fixed, |t| Route::Writer(Arc::clone(t))),
    );
    let rw = PgProxy::new(settings, Arc::clone(&writer), verifier(&iam));
    let mut running = RunningProxy {
        name: name.to_owned(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        endpoints: Vec::new(),
        targets: vec![(name.to_owned(), writer)],
        tasks: Vec::new(),
        proxies: vec![(EndpointRole::ReadWrite, Arc::clone(&rw))],
        db: db.clone(),
        replicas,
        auth_secrets: Arc::new(RwLock::new(bindings(p, values))),
        iam,
        server_max,
    };
    let addr = listeners::proxy_listen(stack, name)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 6432)));
    running.addr = running
        .listen(
            &rw,
            addr,
            &format!("proxies.{name}.listen"),
            "default",
            registry,
            &shutdown,
        )
        .await?;
    for (endpoint, e) in &p.endpoints {
        let proxy = match (e.role, &topology) {
            (EndpointRole::ReadWrite, _) => Arc::clone(&rw),
            (EndpointRole::ReadOnly, Some(t)) => running.reader(loaded, values, registry, t)?,
            // Validation requires replicas for a read-only endpoint; without a login there is
            // nobody to serve anyway.
            (EndpointRole::ReadOnly, None) => continue,
        };
        let field = format!("proxies.{name}.endpoints.{endpoint}.listen");
        let addr = running
            .listen(&proxy, e.listen, &field, endpoint, registry, &shutdown)
            .await?;
        running.endpoints.push((endpoint.clone(), e.role, addr));
    }
    Ok(Some(running))
}

impl RunningProxy {
    /// What to do when a secret gets a new value through Secrets Manager: if this proxy logs
    /// in with it, new client logins and new server connections use the new password (as RDS
    /// Proxy picks up a rotated secret); connections already open are left alone.
    pub fn rotation_hook(&self) -> spillway_aws::secrets::Watcher {
        let proxies: Vec<Arc<PgProxy>> = self.proxies.iter().map(|(_, p)| Arc::clone(p)).collect();
        let secrets = Arc::clone(&self.auth_secrets);
        let name = self.name.clone();
        Box::new(move |secret, value| {
            let Some(bound) = secrets
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(secret)
                .cloned()
            else {
                return;
            };
            let parsed: Option<(String, String)> = serde_json::from_str::<serde_json::Value>(value)
                .ok()
                .and_then(|v| {
                    Some((
                        v.get("username")?.as_str()?.to_owned(),
                        v.get("password")?.as_str()?.to_owned(),
                    ))
                });
            let Some((user, password)) = parsed else {
                tracing::warn!(proxy = %name, secret, "the secret's new value has no username and password; the proxy keeps the old ones");
                return;
            };
            // Whoever may write this secret may change its user's password, not take over
            // another user of the proxy (RDS Proxy ties a secret to one user as well).
            if user != bound {
                tracing::warn!(proxy = %name, secret, user = %bound, named = %user, "the secret's new value names another user; the proxy ignores it (a secret's user changes only in the stack file)");
                return;
            }
            for p in &proxies {
                p.rotate_password(&user, &password);
            }
            tracing::info!(proxy = %name, secret, user = %user, "picked up a rotated password");
        })
    }

    /// Binds `addr` and serves `proxy`'s clients there; returns the bound address.
    async fn listen(
        &mut self,
        proxy: &Arc<PgProxy>,
        addr: SocketAddr,
        field: &str,
        endpoint: &str,
        registry: &Arc<Registry>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<SocketAddr, SupervisorError> {
        let listener = bind(addr, field).await?;
        let bound = listener
            .local_addr()
            .map_err(SupervisorError::io(addr.to_string()))?;
        if let Some(iam) = &self.iam {
            iam.add_listener(bound);
        }
        self.tasks.push(
            spillway_proxy::listener::spawn(
                listener,
                Arc::clone(proxy),
                registry.endpoint(&self.name, endpoint),
                shutdown.clone(),
            )
            .map_err(SupervisorError::io(addr.to_string()))?,
        );
        Ok(bound)
    }

    /// The read-only proxy (made by the first read-only endpoint, shared by the rest).
    fn reader(
        &mut self,
        loaded: &LoadedStack,
        values: &Values,
        registry: &Arc<Registry>,
        topology: &Arc<Topology>,
    ) -> Result<Arc<PgProxy>, SupervisorError> {
        if let Some((_, p)) = self
            .proxies
            .iter()
            .find(|(r, _)| *r == EndpointRole::ReadOnly)
        {
            return Ok(Arc::clone(p));
        }
        let p = &loaded.stack.proxies[&self.name];
        let label = format!("{}:read-only", p.database);
        let target = Target::with_route(
            pool_settings(p, self.server_max),
            registry.target(&self.name, &label),
            Route::Readers(Arc::clone(topology)),
        );
        let proxy = PgProxy::new(
            settings(loaded, &self.name, &self.db, values)?,
            Arc::clone(&target),
            verifier(&self.iam),
        );
        self.targets
            .push((format!("{}:read-only", self.name), target));
        self.proxies
            .push((EndpointRole::ReadOnly, Arc::clone(&proxy)));
        Ok(proxy)
    }

    /// Applies the proxy's settings from a newly loaded stack. Clients already connected keep
    /// their sessions; what needs a restart (listeners, the database, replicas) is reported
    /// instead.
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
        let endpoints_now: Vec<(&String, EndpointRole)> =
            p.endpoints.iter().map(|(n, e)| (n, e.role)).collect();
        let endpoints_then: Vec<(&String, EndpointRole)> =
            self.endpoints.iter().map(|(n, r, _)| (n, *r)).collect();
        if endpoints_now != endpoints_then
            || replica_addrs(loaded, &self.name, values)? != self.replicas
        {
            notes.push(format!(
                "proxies.{}: endpoints or replicas changed; they apply at the next start",
                self.name
            ));
        }
        for (_, proxy) in &self.proxies {
            proxy.reload(settings(loaded, &self.name, &self.db, values)?);
        }
        // The stack file, not a secret's value, says which user a secret stands for.
        *self.auth_secrets.write().unwrap_or_else(|p| p.into_inner()) = bindings(p, values);
        // Keys and policies reach the token check through the shared key ring.
        match &self.iam {
            Some(_) => {}
            None if p.auth.iter().any(|a| a.iam != IamAuth::Disabled) => notes.push(format!(
                "proxies.{}: IAM authentication was turned on; it applies at the next start",
                self.name
            )),
            None => {}
        }
        for (_, target) in &self.targets {
            target.update_settings(pool_settings(p, self.server_max));
        }
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
