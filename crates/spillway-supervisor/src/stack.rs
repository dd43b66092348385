//! Starting and stopping a whole stack in dependency order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spillway_proxy::metrics::Registry;
use spillway_stack::model::{EndpointRole, SecretPassword};
use spillway_stack::template::Reference;
use spillway_stack::{Kind, LoadedStack, attrs, listeners};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::databases::{self, DbUser, ManagedSpec, RunningDatabase};
use crate::error::SupervisorError;
use crate::http;
use crate::proxies::{self, RunningProxy};
use crate::state::{GeneratedSecrets, StateLock};
use spillway_identity::principals::KeyRing;

/// One row of the table `spillway up` prints.
#[derive(Clone, Debug)]
pub struct Row {
    pub resource: String,
    pub endpoint: String,
    pub credentials: String,
}

pub(crate) type Values = HashMap<(Kind, String, String), String>;

/// A started stack. Dropping it without [`Running::shutdown`] still stops the children (their
/// parent-death signal fires when spillway exits), but not in order.
pub struct Running {
    _lock: StateLock,
    databases: Vec<RunningDatabase>,
    functions: Option<Arc<spillway_functions::FunctionHost>>,
    proxies: Vec<RunningProxy>,
    apis: Vec<crate::apis::RunningApi>,
    http: Option<(SocketAddr, JoinHandle<()>)>,
    shutdown: watch::Sender<bool>,
    rows: Vec<Row>,
    /// Resources declared in the stack that this build does not serve yet.
    pub not_served: Vec<String>,
    /// Values known at run time, for resolving `${...}` references.
    values: Values,
    stack: spillway_stack::Stack,
    pub registry: Arc<Registry>,
    key_ring: Arc<KeyRing>,
    /// STS, whose roles (trust and policies) a reload replaces.
    sts: Option<Arc<spillway_aws::sts::Sts>>,
    /// The queue service, closed last (its store's files are released then).
    queues: Option<Arc<spillway_queue::QueueService>>,
    /// The event source mappings' pollers.
    pollers: Vec<JoinHandle<()>>,
    /// The DynamoDB tables, closed last with the queues.
    tables: Option<Arc<spillway_tables::Tables>>,
}

impl Running {
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn databases(&self) -> impl Iterator<Item = &databases::DatabaseEndpoint> {
        self.databases.iter().map(|d| &d.endpoint)
    }

    /// The address a proxy listens on (useful when the stack asked for port 0).
    pub fn proxy_addr(&self, name: &str) -> Option<SocketAddr> {
        self.proxies.iter().find(|p| p.name == name).map(|p| p.addr)
    }

    /// The address of one of a proxy's extra endpoints.
    pub fn proxy_endpoint_addr(&self, name: &str, endpoint: &str) -> Option<SocketAddr> {
        let p = self.proxies.iter().find(|p| p.name == name)?;
        p.endpoints
            .iter()
            .find(|(e, _, _)| e == endpoint)
            .map(|(_, _, a)| *a)
    }

    /// The address an API listens on (useful when the stack asked for port 0).
    pub fn api_addr(&self, name: &str) -> Option<SocketAddr> {
        self.apis.iter().find(|a| a.name == name).map(|a| a.addr)
    }

    /// The address of spillway's own HTTP endpoint (health, metrics, pools).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(a, _)| *a)
    }

    /// The function host (the internal invoke path), when the stack has functions.
    pub fn functions(&self) -> Option<&Arc<spillway_functions::FunctionHost>> {
        self.functions.as_ref()
    }

    /// The value of a reference, for services started later (functions' environments and so on).
    pub fn lookup(&self, r: Reference<'_>) -> Option<String> {
        lookup_value(&self.values, &self.stack, r)
    }

    /// Resolves when a managed server exits on its own; says which and how.
    pub async fn unexpected_exit(&mut self) -> String {
        loop {
            for db in &mut self.databases {
                // A reader is supervised like its primary: if it dies, so does the stack (it
                // is not restarted behind the user's back; see docs/stack-file.md).
                for p in db.process.iter_mut().chain(db.readers.iter_mut()) {
                    let Some(status) = p.try_exited() else {
                        continue;
                    };
                    return format!(
                        "{} exited unexpectedly ({status}); see {}",
                        p.what,
                        p.log.display()
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Applies a changed stack file to what runs: proxies take new users, pool sizes and
    /// timeouts without dropping their clients. Returns notes on changes that need a restart.
    pub fn reload(&mut self, loaded: &LoadedStack) -> Result<Vec<String>, SupervisorError> {
        let mut values = self.values.clone();
        let mut generated = GeneratedSecrets::open(&loaded.state_dir())?;
        fill_secret_values(&loaded.stack, &mut generated, &mut values)?;
        crate::identity::fill_user_values(&loaded.stack, &mut generated, &mut values)?;
        self.key_ring.replace_long_term(
            crate::identity::keys(loaded, &values)?,
            spillway_identity::time::now(),
        );
        // Roles after keys: sessions already issued take their role's current policies.
        if let Some(sts) = &self.sts {
            sts.replace_roles(crate::identity::roles(loaded, &values)?);
        }
        let mut notes = Vec::new();
        for p in &self.proxies {
            notes.extend(p.reload(loaded, &values)?);
        }
        for name in loaded.stack.proxies.keys() {
            if !self.proxies.iter().any(|p| &p.name == name)
                && !self.stack.proxies.contains_key(name)
            {
                notes.push(format!(
                    "proxies.{name} is new; it starts at the next start"
                ));
            }
        }
        if serde_json::to_string(&loaded.stack.functions).ok()
            != serde_json::to_string(&self.stack.functions).ok()
        {
            notes.push(
                "functions changed; they apply at the next start (code changes: `spillway up --watch`)"
                    .into(),
            );
        }
        if serde_json::to_string(&loaded.stack.apis).ok()
            != serde_json::to_string(&self.stack.apis).ok()
        {
            notes.push("apis changed; they apply at the next start".into());
        }
        let readers_changed = loaded.stack.databases.iter().any(|(name, db)| {
            self.stack
                .databases
                .get(name)
                .is_some_and(|then| then.readers != db.readers)
        });
        if loaded.stack.databases.len() != self.stack.databases.len() || readers_changed {
            notes.push("databases changed; they apply at the next start".into());
        }
        self.values = values;
        self.stack = loaded.stack.clone();
        Ok(notes)
    }

    /// Stops everything in the reverse of the start order, then releases the state lock.
    pub async fn shutdown(self) {
        crate::state::forget_endpoint(&self._lock.dir);
        // Functions first: they are the database's clients.
        if let Some(f) = &self.functions {
            f.shutdown().await;
        }
        let _ = self.shutdown.send(true);
        for p in self.proxies.into_iter().rev() {
            for task in p.tasks {
                let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
            }
        }
        for api in self.apis {
            let _ = tokio::time::timeout(Duration::from_secs(10), api.task).await;
        }
        for task in self.pollers {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some((_, task)) = self.http {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if let Some(q) = &self.queues {
            q.close();
        }
        if let Some(t) = &self.tables {
            t.close();
        }
        stop_databases(self.databases).await;
    }
}

async fn stop_databases(databases: Vec<RunningDatabase>) {
    for db in databases.into_iter().rev() {
        // Readers first, so none is left replicating from a primary that is gone.
        for (r, p) in db.endpoint.readers.iter().zip(db.readers).rev() {
            tracing::info!(database = %r.resource, "stopping");
            p.stop(Duration::from_secs(60)).await;
        }
        if let Some(p) = db.process {
            tracing::info!(database = %db.endpoint.resource, "stopping");
            p.stop(Duration::from_secs(60)).await;
        }
    }
}

pub(crate) fn lookup_value(
    values: &Values,
    stack: &spillway_stack::Stack,
    r: Reference<'_>,
) -> Option<String> {
    if let Some(kind) = Kind::from_key(r.kind)
        && let Some(v) = values.get(&(kind, r.name.to_owned(), r.attr.to_owned()))
    {
        return Some(v.clone());
    }
    attrs::derived(stack, r.kind, r.name, r.attr)
}

fn show(path: &std::path::Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every user's (access key id, secret access key), as the running stack of `loaded` knows
/// them, for a client beside it (`spillway queue`). Reads generated keys without writing.
pub fn user_keys(
    loaded: &LoadedStack,
) -> Result<std::collections::BTreeMap<String, (String, String)>, SupervisorError> {
    let stack = &loaded.stack;
    let mut generated = GeneratedSecrets::open_read_only(&loaded.state_dir())?;
    let mut values: Values = HashMap::new();
    fill_secret_values(stack, &mut generated, &mut values)?;
    crate::identity::fill_user_values(stack, &mut generated, &mut values)?;
    let mut keys = std::collections::BTreeMap::new();
    for name in stack.users.keys() {
        let get = |field: &str| {
            values
                .get(&(Kind::User, name.clone(), field.to_owned()))
                .cloned()
                .unwrap_or_default()
        };
        keys.insert(
            name.clone(),
            (get("access_key_id"), get("secret_access_key")),
        );
    }
    Ok(keys)
}

/// Puts every secret's username and (resolved or generated) password into `values`.
fn fill_secret_values(
    stack: &spillway_stack::Stack,
    generated: &mut GeneratedSecrets,
    values: &mut Values,
) -> Result<(), SupervisorError> {
    for (name, s) in &stack.secrets {
        if let Some(u) = &s.username {
            values.insert((Kind::Secret, name.clone(), "username".into()), u.clone());
        }
        let password = match &s.password {
            Some(SecretPassword::Generate(g)) => {
                Some(generated.get_or_generate(&format!("secrets/{name}"), g)?)
            }
            Some(SecretPassword::Value(t)) => Some(
                t.resolve(&mut |r| lookup_value(values, stack, r))
                    .map_err(|e| SupervisorError::Command {
                        what: format!("secrets.{name}.password"),
                        detail: e.to_string(),
                    })?,
            ),
            None => None,
        };
        if let Some(p) = password {
            values.insert((Kind::Secret, name.clone(), "password".into()), p);
        }
    }
    Ok(())
}

/// Starts every resource of `loaded` that this build serves, in dependency order.
/// `progress` receives one line per long step (first-time database creation).
pub async fn start(
    loaded: &LoadedStack,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Running, SupervisorError> {
    let state = loaded.state_dir();
    let lock = StateLock::acquire(&state)?;
    let stack = &loaded.stack;
    let mut values: Values = HashMap::new();
    let mut generated = GeneratedSecrets::open(&state)?;
    let mut rows = Vec::new();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let registry = Arc::new(Registry::default());
    // Each client-facing listener's share of the process's descriptors.
    let share = crate::descriptors::budget(listeners::all(stack).len());

    // Secrets first: database users are made from them, and their values depend on nothing
    // that runs.
    fill_secret_values(stack, &mut generated, &mut values)?;
    crate::identity::fill_user_values(stack, &mut generated, &mut values)?;
    // One key ring for the AWS endpoint and the proxies' token checks, so STS credentials work
    // in both.
    let key_ring = KeyRing::new(crate::identity::keys(loaded, &values)?);
    for (name, u) in &stack.users {
        rows.push(Row {
            resource: format!("users.{name}"),
            endpoint: attrs::derived(stack, "users", name, "arn").unwrap_or_default(),
            credentials: if u.access_key_id.is_some() && u.secret_access_key.is_some() {
                "from the stack file".into()
            } else {
                format!("{} (keys \"users/{name}/...\")", show(generated.path()))
            },
        });
    }
    for (name, s) in &stack.secrets {
        rows.push(Row {
            resource: format!("secrets.{name}"),
            endpoint: attrs::secret_arn(stack, name),
            credentials: match &s.password {
                Some(SecretPassword::Generate(_)) => {
                    format!("{} (key \"secrets/{name}\")", show(generated.path()))
                }
                Some(SecretPassword::Value(_)) => "from the stack file".into(),
                None => "-".into(),
            },
        });
    }

    let mut running = Started {
        databases: Vec::new(),
        proxies: Vec::new(),
    };
    let mut not_served = Vec::new();
    for id in &loaded.order {
        let result = match id.kind {
            Kind::Database => start_database(loaded, &id.name, &values, progress)
                .await
                .map(|db| {
                    record_database(&mut values, &mut rows, id, &db);
                    running.databases.push(db);
                }),
            Kind::Proxy => {
                let p = &stack.proxies[&id.name];
                let db = running
                    .databases
                    .iter()
                    .find(|d| d.endpoint.resource == p.database)
                    .map(|d| d.endpoint.clone());
                match db {
                    Some(db) => proxies::start(
                        loaded,
                        &id.name,
                        &db,
                        &values,
                        &registry,
                        &key_ring,
                        shutdown_rx.clone(),
                    )
                    .await
                    .map(|rp| match rp {
                        Some(rp) => {
                            rows.push(Row {
                                resource: id.to_string(),
                                endpoint: format!(
                                    "{}://{}/{} ({} pooling)",
                                    db.engine.as_str(),
                                    rp.addr,
                                    db.dbname,
                                    format!("{:?}", p.pool_mode).to_lowercase()
                                ),
                                credentials: p
                                    .auth
                                    .iter()
                                    .map(|a| format!("secrets.{}", a.secret))
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            });
                            for (endpoint, role, addr) in &rp.endpoints {
                                rows.push(Row {
                                    resource: format!("{id}.endpoints.{endpoint}"),
                                    endpoint: format!(
                                        "{}://{addr}/{} ({})",
                                        db.engine.as_str(),
                                        db.dbname,
                                        match role {
                                            EndpointRole::ReadWrite => "read-write",
                                            EndpointRole::ReadOnly => "read-only",
                                        }
                                    ),
                                    credentials: "as the proxy".into(),
                                });
                            }
                            values.insert(
                                (Kind::Proxy, id.name.clone(), "port".into()),
                                rp.addr.port().to_string(),
                            );
                            values.insert(
                                (Kind::Proxy, id.name.clone(), "endpoint".into()),
                                rp.addr.to_string(),
                            );
                            running.proxies.push(rp);
                        }
                        None => not_served.push(format!("{id} (MySQL proxies are not built yet)")),
                    }),
                    None => {
                        not_served.push(id.to_string());
                        Ok(())
                    }
                }
            }
            // Functions start once the endpoint they call exists, queues with that endpoint,
            // and APIs after the functions and queues they call (below).
            Kind::Secret
            | Kind::Function
            | Kind::User
            | Kind::Role
            | Kind::Api
            | Kind::Queue
            | Kind::Table => {
                continue;
            }
        };
        if let Err(e) = result {
            let _ = shutdown.send(true);
            stop_databases(running.databases).await;
            return Err(e);
        }
    }

    // spillway's own endpoint, once something is worth observing or an AWS API is served.
    let mut function_host = None;
    let mut apis = Vec::new();
    let mut sts_handle = None;
    let mut queue_service = None;
    let mut table_service = None;
    let mut pollers = Vec::new();
    let http = if running.proxies.is_empty()
        && stack.users.is_empty()
        && stack.secrets.is_empty()
        && stack.functions.is_empty()
        && stack.apis.is_empty()
        && stack.queues.is_empty()
        && stack.tables.is_empty()
    {
        None
    } else {
        let listener = match proxies::bind(stack.stack.endpoint, "stack.endpoint").await {
            Ok(l) => l,
            Err(e) => {
                let _ = shutdown.send(true);
                stop_databases(running.databases).await;
                return Err(e);
            }
        };
        let addr = listener
            .local_addr()
            .map_err(SupervisorError::io("stack.endpoint"))?;
        let endpoint_tls = match crate::endpoint_tls::acceptor(loaded, addr) {
            Ok(t) => t,
            Err(e) => {
                let _ = shutdown.send(true);
                stop_databases(running.databases).await;
                return Err(e);
            }
        };
        let endpoint_scheme = if endpoint_tls.is_some() {
            "https"
        } else {
            "http"
        };
        // Remembered for `spillway queue` and other clients on this machine: with port 0 in
        // the stack file, nothing else says where the endpoint is. Loopback when it listens
        // on every address, as functions call it.
        let reachable = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        if let Err(e) =
            crate::state::remember_endpoint(&state, &format!("{endpoint_scheme}://{reachable}"))
        {
            tracing::warn!("spillway queue will not find this stack: {e}");
        }
        let sts = Arc::new(spillway_aws::sts::Sts::new(
            &stack.stack.account,
            crate::identity::roles(loaded, &values)?,
            Arc::clone(&key_ring),
        ));
        sts_handle = Some(Arc::clone(&sts));
        // Queues before functions: a function's on-failure queue must exist before the host
        // resumes asynchronous events a previous run left unfinished.
        let queues = match crate::queues::start(loaded).await {
            Ok(q) => q,
            Err(e) => {
                let _ = shutdown.send(true);
                stop_databases(running.databases).await;
                return Err(e);
            }
        };
        let tables = match crate::tables::start(loaded).await {
            Ok(t) => t,
            Err(e) => {
                queues.close();
                let _ = shutdown.send(true);
                stop_databases(running.databases).await;
                return Err(e);
            }
        };
        table_service = Some(Arc::clone(&tables));
        for name in stack.tables.keys() {
            rows.push(Row {
                resource: format!("tables.{name}"),
                endpoint: format!("{endpoint_scheme}://{addr} (DynamoDB)"),
                credentials: "users' access keys".into(),
            });
        }
        let lambda = if stack.functions.is_empty() {
            None
        } else {
            // Functions call the endpoint on loopback even when it listens on every address.
            let local = if addr.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], addr.port()))
            } else {
                addr
            };
            let started = crate::functions::start(
                loaded,
                &values,
                Some(format!("http://{local}")),
                Arc::clone(&sts),
                Arc::new(crate::queues::FailureQueue {
                    service: Arc::clone(&queues),
                }),
            )
            .await;
            let host = match started {
                Ok(h) => h,
                Err(e) => {
                    queues.close();
                    let _ = shutdown.send(true);
                    stop_databases(running.databases).await;
                    return Err(e);
                }
            };
            for f in host.functions() {
                rows.push(Row {
                    resource: format!("functions.{}", f.spec.name),
                    endpoint: f.spec.arn.clone(),
                    credentials: format!("role {}", f.spec.role),
                });
            }
            function_host = Some(Arc::clone(&host));
            Some(spillway_aws::lambda::Lambda {
                host,
                region: stack.stack.region.clone(),
                account: stack.stack.account.clone(),
            })
        };
        if let Some(host) = &function_host {
            pollers = crate::queues::start_mappings(stack, &queues, host, &shutdown_rx);
        }
        queue_service = Some(Arc::clone(&queues));
        for name in stack.queues.keys() {
            rows.push(Row {
                resource: format!("queues.{name}"),
                endpoint: format!("{endpoint_scheme}://{addr}/{}/{name}", stack.stack.account),
                credentials: "users' access keys".into(),
            });
        }
        let services = spillway_gateway::Services {
            functions: function_host.clone(),
            keys: Some(Arc::clone(&key_ring)),
            queues: Some(Arc::new(crate::queues::GatewaySink {
                service: Arc::clone(&queues),
            })),
        };
        for name in stack.apis.keys() {
            match crate::apis::start(
                loaded,
                name,
                &values,
                services.clone(),
                share,
                shutdown_rx.clone(),
            )
            .await
            {
                Ok(api) => {
                    let scheme = if api.https { "https" } else { "http" };
                    let stages: Vec<&String> = stack.apis[name]
                        .stages
                        .keys()
                        .filter(|s| *s != "$default")
                        .collect();
                    rows.push(Row {
                        resource: format!("apis.{name}"),
                        endpoint: match stages.first() {
                            Some(s) => format!("{scheme}://{}/{s}/", api.addr),
                            None => format!("{scheme}://{}/", api.addr),
                        },
                        credentials: format!(
                            "{} API, {} routes",
                            match stack.apis[name].protocol {
                                spillway_stack::model::ApiProtocol::Http => "HTTP",
                                spillway_stack::model::ApiProtocol::Rest => "REST",
                            },
                            stack.apis[name].routes.len()
                        ),
                    });
                    values.insert(
                        (Kind::Api, name.clone(), "endpoint".into()),
                        api.addr.to_string(),
                    );
                    values.insert(
                        (Kind::Api, name.clone(), "url".into()),
                        format!("{scheme}://{}", api.addr),
                    );
                    apis.push(api);
                }
                Err(e) => {
                    if let Some(f) = &function_host {
                        f.shutdown().await;
                    }
                    let _ = shutdown.send(true);
                    stop_databases(running.databases).await;
                    return Err(e);
                }
            }
        }
        let observed = Arc::new(http::Observed {
            guard: (!addr.ip().is_loopback()).then(|| crate::observe_auth::ObserverGuard {
                token: stack.stack.metrics_token.clone(),
            }),
            apis: apis.iter().map(|a| Arc::clone(&a.gateway)).collect(),
            queues: Some(Arc::clone(&queues)),
            tables: Some(Arc::clone(&tables)),
            functions: function_host.clone(),
            registry: Arc::clone(&registry),
            targets: running
                .proxies
                .iter()
                .flat_map(|p| p.targets.iter().cloned())
                .collect(),
            aws: Some(Arc::new(spillway_aws::Endpoint {
                secrets: {
                    let sm = crate::identity::secrets_manager(loaded, &values)?;
                    let rotation: Vec<_> = running
                        .proxies
                        .iter()
                        .map(RunningProxy::rotation_hook)
                        .collect();
                    sm.watch(Box::new(move |name, value| {
                        for hook in &rotation {
                            hook(name, value);
                        }
                    }));
                    sm
                },
                sts,
                lambda,
                services: vec![
                    Arc::new(spillway_queue::api::SqsApi {
                        service: Arc::clone(&queues),
                    }),
                    Arc::new(spillway_tables::api::DynamoDbApi {
                        tables: Arc::clone(&tables),
                    }),
                ],
                auth: spillway_aws::auth::Authenticator::new(
                    Arc::clone(&key_ring),
                    &stack.stack.region,
                    &stack.stack.account,
                    stack.stack.identity.enforce,
                ),
            })),
        });
        rows.push(Row {
            resource: "aws endpoint".into(),
            endpoint: format!("{endpoint_scheme}://{addr}"),
            credentials: "users' access keys".into(),
        });
        rows.push(Row {
            resource: "metrics".into(),
            endpoint: format!("{endpoint_scheme}://{addr}/_spillway/metrics"),
            credentials: "-".into(),
        });
        Some((
            addr,
            tokio::spawn(http::serve(
                listener,
                observed,
                endpoint_tls,
                share,
                shutdown_rx.clone(),
            )),
        ))
    };

    Ok(Running {
        _lock: lock,
        databases: running.databases,
        functions: function_host,
        proxies: running.proxies,
        apis,
        http,
        shutdown,
        rows,
        not_served,
        values,
        stack: stack.clone(),
        registry,
        key_ring,
        sts: sts_handle,
        queues: queue_service,
        pollers,
        tables: table_service,
    })
}

struct Started {
    databases: Vec<RunningDatabase>,
    proxies: Vec<RunningProxy>,
}

fn record_database(
    values: &mut Values,
    rows: &mut Vec<Row>,
    id: &spillway_stack::ResourceId,
    db: &RunningDatabase,
) {
    let e = &db.endpoint;
    for (attr, v) in [
        ("engine", e.engine.as_str().to_owned()),
        ("host", e.host.clone()),
        ("port", e.port.to_string()),
        (
            "socket",
            e.socket
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default(),
        ),
        ("url", e.url()),
        ("name", e.dbname.clone()),
        ("endpoint", e.address()),
    ] {
        values.insert((Kind::Database, id.name.clone(), attr.into()), v);
    }
    let mut endpoint = e.url();
    if let (Some(s), true) = (&e.socket, e.tcp) {
        endpoint.push_str(&format!(" (socket {})", show(s)));
    }
    rows.push(Row {
        resource: id.to_string(),
        endpoint,
        credentials: e
            .admin_password_file
            .as_deref()
            .map_or_else(|| "from its url".to_owned(), show),
    });
    for r in &e.readers {
        rows.push(Row {
            resource: format!("databases.{}", r.resource),
            endpoint: format!("{} (read-only replica)", r.url()),
            credentials: r
                .admin_password_file
                .as_deref()
                .map_or_else(|| "as the primary".to_owned(), show),
        });
    }
}

async fn start_database(
    loaded: &LoadedStack,
    name: &str,
    values: &Values,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunningDatabase, SupervisorError> {
    let stack = &loaded.stack;
    let db = &stack.databases[name];
    let dir = loaded.state_dir().join("databases").join(name);
    let init: Vec<PathBuf> = db.init.iter().map(|p| loaded.path(p)).collect();
    if let Some(url) = &db.url {
        let url = url
            .resolve(&mut |r| lookup_value(values, stack, r))
            .map_err(|e| SupervisorError::External {
                name: name.into(),
                detail: format!("url: {e}"),
            })?;
        return databases::external::check(name, db.engine, &url, &dir, &init, db.apply_init).await;
    }
    // Logins: the database's own `users`, and every secret a proxy in front of it logs in with
    // (RDS Proxy's model: the proxy uses the secret's credentials against the database).
    let mut secrets: Vec<&String> = db.users.iter().collect();
    for p in stack.proxies.values().filter(|p| p.database == name) {
        secrets.extend(p.auth.iter().map(|a| &a.secret));
    }
    secrets.sort();
    secrets.dedup();
    let users = secrets
        .into_iter()
        .filter_map(|secret| {
            let get = |attr: &str| {
                values
                    .get(&(Kind::Secret, secret.clone(), attr.to_owned()))
                    .cloned()
            };
            Some(DbUser {
                name: get("username")?,
                password: get("password")?,
            })
        })
        .collect();
    let spec = ManagedSpec {
        resource: name.into(),
        dbname: db.name.clone().unwrap_or_else(|| name.to_owned()),
        dir,
        tcp: db.tcp,
        port: db.port,
        max_connections: db.max_connections,
        init,
        users,
        readers: db.readers,
    };
    match db.engine {
        spillway_stack::model::Engine::Postgres => {
            databases::postgres::start(&spec, progress).await
        }
        spillway_stack::model::Engine::Mysql => databases::mysql::start(&spec, progress).await,
    }
}
