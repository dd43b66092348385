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
use spillway_proxy::mysql::backend::MyConn;
use spillway_proxy::mysql::proxy::{MyProxy, MySettings, MyUser, PasswordPlugin};
use spillway_proxy::pg::backend::{ServerAddr, ServerConn, ServerTarget};
use spillway_proxy::pg::pinning::Filters;
use spillway_proxy::pg::proxy::IamVerifier;
use spillway_proxy::pg::proxy::{ClientAuth, PgProxy, Settings, User};
use spillway_proxy::pg::topology::Topology;
use spillway_proxy::pool::{PoolSettings, PoolView, Route, Target};
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
/// Where `tls = { self_signed = true }` keeps each proxy's generated pair, under the state
/// directory (`proxy-tls/NAME/`).
pub const GENERATED_TLS_DIR: &str = "proxy-tls";

pub struct RunningProxy {
    pub name: String,
    /// The default (read-write) endpoint.
    pub addr: SocketAddr,
    /// The stack's extra endpoints: name, role, address.
    pub endpoints: Vec<(String, EndpointRole, SocketAddr)>,
    /// The read-write target, and the read-only one if an endpoint needs it, named for the
    /// admin view.
    pub targets: Vec<(String, Arc<dyn PoolView>)>,
    pub tasks: Vec<JoinHandle<()>>,
    /// The read-write proxy, and the read-only one if any.
    proxies: Vec<(EndpointRole, Proxied)>,
    db: DatabaseEndpoint,
    replicas: Vec<ServerAddr>,
    /// The secrets its users log in with, each with the user it named when the stack was
    /// (re)loaded. A rotation may change that user's password, never which user it is.
    auth_secrets: Arc<RwLock<HashMap<String, String>>>,
    /// RDS IAM token verification, when any of the proxy's users allows it.
    iam: Option<Arc<crate::identity::ProxyTokens>>,
    /// The server's max_connections as read at start (the base of the percentages).
    server_max: u32,
    /// Proxy threads serving each of its listeners (`workers`).
    workers: usize,
}

/// A running proxy of either engine.
#[derive(Clone)]
enum Proxied {
    Pg(Arc<PgProxy>),
    My(Arc<MyProxy>),
}

impl Proxied {
    fn rotate_password(&self, user: &str, password: &str) {
        match self {
            Proxied::Pg(p) => {
                p.rotate_password(user, password);
            }
            Proxied::My(p) => {
                p.rotate_password(user, password);
            }
        }
    }
}

fn verifier(iam: &Option<Arc<crate::identity::ProxyTokens>>) -> Option<Arc<dyn IamVerifier>> {
    iam.as_ref().map(|t| Arc::clone(t) as Arc<dyn IamVerifier>)
}

/// How the proxy reaches a database: a managed server through its Unix socket (it may listen
/// on no port at all), anything else over TCP.
pub fn server_addr(db: &DatabaseEndpoint) -> ServerAddr {
    match (&db.socket, db.engine) {
        (Some(dir), Engine::Postgres) => {
            ServerAddr::Unix(dir.join(format!(".s.PGSQL.{}", db.port)))
        }
        // A managed MariaDB's socket is the file itself.
        (Some(file), Engine::Mysql) => ServerAddr::Unix(file.clone()),
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

/// The database's replicas: an external server's `replicas` from their (resolved) URLs, whose
/// credentials are not used since the proxy logs in with its secrets everywhere, and a managed
/// server's readers on their sockets. Both feed the same topology.
fn replica_addrs(
    loaded: &LoadedStack,
    name: &str,
    values: &Values,
    running: &DatabaseEndpoint,
) -> Result<Vec<ServerAddr>, SupervisorError> {
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
    let readers = running.readers.iter().map(server_addr);
    let Some(db) = stack.databases.get(&p.database) else {
        return Ok(readers.collect());
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
        .chain(readers.map(Ok))
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

/// Each of the proxy's secrets as (user, password, IAM setting), from the stack's values.
fn credentials(
    p: &Proxy,
    name: &str,
    values: &Values,
) -> Result<Vec<(String, String, IamAuth)>, SupervisorError> {
    p.auth
        .iter()
        .map(|a| {
            let get = |attr: &str| {
                values
                    .get(&(Kind::Secret, a.secret.clone(), attr.to_owned()))
                    .cloned()
            };
            match (get("username"), get("password")) {
                (Some(user), Some(password)) => Ok((user, password, a.iam)),
                _ => Err(SupervisorError::Command {
                    what: format!("proxies.{name}"),
                    detail: format!("secret {:?} needs a username and a password", a.secret),
                }),
            }
        })
        .collect()
}

/// What both engines' settings take from the stack alike.
struct Shared {
    init_query: Option<String>,
    allow_from: Vec<(std::net::IpAddr, u8)>,
    tls: Option<ServerTls>,
}

fn settings_shared(
    loaded: &LoadedStack,
    name: &str,
    values: &Values,
) -> Result<Shared, SupervisorError> {
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
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
    let tls = match &p.tls {
        Some(t) => {
            let (cert, key) = match (&t.cert, &t.key) {
                (Some(c), Some(k)) if !t.self_signed => (loaded.path(c), loaded.path(k)),
                _ => crate::self_signed::pair(
                    &loaded.state_dir().join(GENERATED_TLS_DIR).join(name),
                    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
                    &format!("proxies.{name}"),
                )?,
            };
            Some(
                ServerTls::load(&cert, &key).map_err(|e| SupervisorError::Command {
                    what: format!("proxies.{name}.tls"),
                    detail: e.to_string(),
                })?,
            )
        }
        None => None,
    };
    Ok(Shared {
        init_query,
        allow_from: p
            .allow_from
            .iter()
            .filter_map(|c| spillway_stack::parse_cidr(c).ok())
            .collect(),
        tls,
    })
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
    let users = credentials(p, name, values)?
        .into_iter()
        .map(|(user, password, iam)| {
            let u = Arc::new(User::new(&user, &password, iam));
            (user, u)
        })
        .collect();
    let client_auth = match p.auth.iter().find_map(|a| a.client_password_auth) {
        Some(ClientPasswordAuth::PostgresMd5) => ClientAuth::Md5,
        _ => ClientAuth::ScramSha256,
    };
    let shared = settings_shared(loaded, name, values)?;
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
        init_query: shared.init_query,
        client_auth,
        allow_from: shared.allow_from,
        connect_timeout: Duration::from_secs(10),
        tls: shared.tls,
        require_tls: p.require_tls,
        debug_logging: p.debug_logging,
    })
}

/// A MySQL proxy's runtime settings from the stack and the secrets' current values;
/// `server_version` is what clients see (the server's own, read at start).
fn my_settings(
    loaded: &LoadedStack,
    name: &str,
    db: &DatabaseEndpoint,
    values: &Values,
    server_version: String,
) -> Result<MySettings, SupervisorError> {
    let stack = &loaded.stack;
    let p = &stack.proxies[name];
    let users = credentials(p, name, values)?
        .into_iter()
        .map(|(user, password, iam)| {
            let u = Arc::new(MyUser {
                name: user.clone(),
                password,
                iam,
            });
            (user, u)
        })
        .collect();
    let password_plugin = match p.auth.iter().find_map(|a| a.client_password_auth) {
        Some(ClientPasswordAuth::MysqlCachingSha2Password) => PasswordPlugin::CachingSha2,
        _ => PasswordPlugin::Native,
    };
    // The PostgreSQL builder resolves what both engines share (TLS, init_query, allow_from).
    let shared = settings_shared(loaded, name, values)?;
    Ok(MySettings {
        proxy: name.to_owned(),
        server: server_addr(db),
        server_tls: server_tls(loaded, name, values)?,
        users,
        mode: p.pool_mode,
        filters: spillway_proxy::mysql::pinning::Filters {
            exclude_variable_sets: p
                .session_pinning_filters
                .contains(&PinningFilter::ExcludeVariableSets),
        },
        idle_client_timeout: p.idle_client_timeout.get(),
        init_query: shared.init_query,
        password_plugin,
        allow_from: shared.allow_from,
        connect_timeout: Duration::from_secs(10),
        tls: shared.tls,
        require_tls: p.require_tls,
        cleartext_on_loopback: p.allow_cleartext_on_loopback,
        local_infile: p.local_infile,
        debug_logging: p.debug_logging,
        server_version,
        // MySQL 8's default max_allowed_packet; the server applies its own as well.
        max_packet: 64 * 1024 * 1024,
    })
}

/// The first user's login, for reading the server's settings and probing its topology.
pub(crate) fn first_login(
    server: &ServerAddr,
    tls: &Option<Arc<spillway_proxy::tls::ClientTls>>,
    database: &str,
    user: Option<(&str, &str)>,
) -> Option<ServerTarget> {
    user.map(|(name, password)| ServerTarget {
        addr: server.clone(),
        tls: tls.clone(),
        database: database.to_owned(),
        user: name.to_owned(),
        password: password.to_owned(),
        init_query: None,
        connect_timeout: Duration::from_secs(10),
        options: 0,
    })
}

/// The server's max_connections and version string, read with `login` (MySQL's own query);
/// `fallback` and a MySQL 8.0 version if that fails.
pub(crate) async fn mysql_server_facts(
    login: Option<&ServerTarget>,
    fallback: u32,
) -> (u32, String) {
    const VERSION: &str = "8.0.36";
    let Some(login) = login else {
        return (fallback, VERSION.into());
    };
    match MyConn::connect(login).await {
        Ok(mut c) => {
            let max = match c.query("SELECT @@max_connections").await {
                Ok(rows) => rows
                    .first()
                    .and_then(|r| r.first().cloned().flatten())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(fallback),
                Err(_) => fallback,
            };
            let version = c.version.clone();
            c.quit().await;
            (max, version)
        }
        Err(e) => {
            tracing::warn!(
                "cannot read max_connections from the server ({e}); assuming {fallback}"
            );
            (fallback, VERSION.into())
        }
    }
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
    let replicas = replica_addrs(loaded, name, values, db)?;
    let iam = if p.auth.iter().any(|a| a.iam != IamAuth::Disabled) {
        Some(crate::identity::ProxyTokens::new(loaded, name, keys))
    } else {
        None
    };
    let fallback = stack
        .databases
        .get(&p.database)
        .map_or(100, |d| d.max_connections);
    let engine = db.engine.as_str();
    let (rw, writer, server_max, topology): (
        Proxied,
        Arc<dyn PoolView>,
        u32,
        Option<Arc<Topology>>,
    ) = match db.engine {
        Engine::Postgres => {
            let settings = settings(loaded, name, db, values)?;
            let login = first_login(
                &settings.server,
                &settings.server_tls,
                &db.dbname,
                settings
                    .users
                    .values()
                    .next()
                    .map(|u| (u.name.as_str(), u.password.as_str())),
            );
            let server_max = match &login {
                Some(t) => server_max_connections(t, fallback).await,
                None => fallback,
            };
            // With replicas, every server may become the writer; one monitor serves both
            // routes.
            let topology =
                watch_topology::<ServerConn>(&settings.server, &replicas, login, &shutdown);
            let target = Target::<ServerConn>::with_route(
                pool_settings(p, server_max),
                registry.target(engine, name, &p.database),
                route_of(&topology, false),
            );
            let proxy = PgProxy::new(settings, Arc::clone(&target), verifier(&iam));
            (Proxied::Pg(proxy), target, server_max, topology)
        }
        Engine::Mysql => {
            let partial = my_settings(loaded, name, db, values, String::new())?;
            let login = first_login(
                &partial.server,
                &partial.server_tls,
                "",
                partial
                    .users
                    .values()
                    .next()
                    .map(|u| (u.name.as_str(), u.password.as_str())),
            );
            let (server_max, version) = mysql_server_facts(login.as_ref(), fallback).await;
            let settings = MySettings {
                server_version: version,
                ..partial
            };
            let topology = watch_topology::<MyConn>(&settings.server, &replicas, login, &shutdown);
            let target = Target::<MyConn>::with_route(
                pool_settings(p, server_max),
                registry.target(engine, name, &p.database),
                route_of(&topology, false),
            );
            let proxy = MyProxy::new(settings, Arc::clone(&target), verifier(&iam));
            (Proxied::My(proxy), target, server_max, topology)
        }
    };
    let mut running = RunningProxy {
        name: name.to_owned(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        endpoints: Vec::new(),
        targets: vec![(name.to_owned(), writer)],
        tasks: Vec::new(),
        proxies: vec![(EndpointRole::ReadWrite, rw.clone())],
        db: db.clone(),
        replicas,
        auth_secrets: Arc::new(RwLock::new(bindings(p, values))),
        iam,
        server_max,
        workers: usize::from(p.workers),
    };
    let addr = listeners::proxy_listen(stack, name)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], db.engine.default_proxy_port())));
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
            (EndpointRole::ReadWrite, _) => rw.clone(),
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

/// A topology monitor over the primary and its replicas (none without replicas or a login).
fn watch_topology<C: spillway_proxy::pg::topology::Probe>(
    primary: &ServerAddr,
    replicas: &[ServerAddr],
    login: Option<ServerTarget>,
    shutdown: &watch::Receiver<bool>,
) -> Option<Arc<Topology>> {
    let login = login?;
    if replicas.is_empty() {
        return None;
    }
    let mut servers = vec![primary.clone()];
    servers.extend(replicas.iter().cloned());
    let t = Topology::new(servers);
    t.spawn_monitor::<C>(login, shutdown.clone());
    Some(t)
}

fn route_of(topology: &Option<Arc<Topology>>, readers: bool) -> Route {
    match (topology, readers) {
        (None, _) => Route::Fixed,
        (Some(t), false) => Route::Writer(Arc::clone(t)),
        (Some(t), true) => Route::Readers(Arc::clone(t)),
    }
}

impl RunningProxy {
    /// What to do when a secret gets a new value through Secrets Manager: if this proxy logs
    /// in with it, new client logins and new server connections use the new password (as RDS
    /// Proxy picks up a rotated secret); connections already open are left alone.
    pub fn rotation_hook(&self) -> spillway_aws::secrets::Watcher {
        let proxies: Vec<Proxied> = self.proxies.iter().map(|(_, p)| p.clone()).collect();
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
        proxy: &Proxied,
        addr: SocketAddr,
        field: &str,
        endpoint: &str,
        registry: &Arc<Registry>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<SocketAddr, SupervisorError> {
        let listener = bind_proxy(addr, field, self.workers)?;
        let bound = listener.local_addr();
        if let Some(iam) = &self.iam {
            iam.add_listener(bound);
        }
        let metrics = registry.endpoint(self.db.engine.as_str(), &self.name, endpoint);
        let task = match proxy {
            Proxied::Pg(p) => {
                spillway_proxy::listener::spawn(listener, Arc::clone(p), metrics, shutdown.clone())
            }
            Proxied::My(p) => {
                spillway_proxy::listener::spawn(listener, Arc::clone(p), metrics, shutdown.clone())
            }
        };
        self.tasks
            .push(task.map_err(SupervisorError::io(addr.to_string()))?);
        Ok(bound)
    }

    /// The read-only proxy (made by the first read-only endpoint, shared by the rest).
    fn reader(
        &mut self,
        loaded: &LoadedStack,
        values: &Values,
        registry: &Arc<Registry>,
        topology: &Arc<Topology>,
    ) -> Result<Proxied, SupervisorError> {
        if let Some((_, p)) = self
            .proxies
            .iter()
            .find(|(r, _)| *r == EndpointRole::ReadOnly)
        {
            return Ok(p.clone());
        }
        let p = &loaded.stack.proxies[&self.name];
        let label = format!("{}:read-only", p.database);
        let metrics = registry.target(self.db.engine.as_str(), &self.name, &label);
        let route = route_of(&Some(Arc::clone(topology)), true);
        let (proxy, target): (Proxied, Arc<dyn PoolView>) = match &self.proxies[0].1 {
            Proxied::Pg(_) => {
                let target = Target::<ServerConn>::with_route(
                    pool_settings(p, self.server_max),
                    metrics,
                    route,
                );
                let proxy = PgProxy::new(
                    settings(loaded, &self.name, &self.db, values)?,
                    Arc::clone(&target),
                    verifier(&self.iam),
                );
                (Proxied::Pg(proxy), target)
            }
            Proxied::My(rw) => {
                let target =
                    Target::<MyConn>::with_route(pool_settings(p, self.server_max), metrics, route);
                let version = rw.settings().server_version.clone();
                let proxy = MyProxy::new(
                    my_settings(loaded, &self.name, &self.db, values, version)?,
                    Arc::clone(&target),
                    verifier(&self.iam),
                );
                (Proxied::My(proxy), target)
            }
        };
        self.targets
            .push((format!("{}:read-only", self.name), target));
        self.proxies.push((EndpointRole::ReadOnly, proxy.clone()));
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
        if usize::from(p.workers) != self.workers {
            notes.push(format!(
                "proxies.{}.workers changed; it applies at the next start",
                self.name
            ));
        }
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
            || replica_addrs(loaded, &self.name, values, &self.db)? != self.replicas
        {
            notes.push(format!(
                "proxies.{}: endpoints or replicas changed; they apply at the next start",
                self.name
            ));
        }
        for (_, proxy) in &self.proxies {
            match proxy {
                Proxied::Pg(p) => p.reload(settings(loaded, &self.name, &self.db, values)?),
                Proxied::My(p) => {
                    let version = p.settings().server_version.clone();
                    p.reload(my_settings(loaded, &self.name, &self.db, values, version)?);
                }
            }
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

/// Binds a proxy's listening sockets, one per worker (see `spillway_proxy::listener::bind`).
pub fn bind_proxy(
    addr: SocketAddr,
    field: &str,
    workers: usize,
) -> Result<spillway_proxy::listener::Listeners, SupervisorError> {
    spillway_proxy::listener::bind(addr, workers).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => SupervisorError::PortInUse {
            addr,
            field: field.to_owned(),
        },
        _ => SupervisorError::io(addr.to_string())(e),
    })
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
