//! Starting and stopping a whole stack in dependency order.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use spillway_stack::model::SecretPassword;
use spillway_stack::template::Reference;
use spillway_stack::{Kind, LoadedStack, attrs};

use crate::databases::{self, DbUser, ManagedSpec, RunningDatabase};
use crate::error::SupervisorError;
use crate::state::{GeneratedSecrets, StateLock};

/// One row of the table `spillway up` prints.
#[derive(Clone, Debug)]
pub struct Row {
    pub resource: String,
    pub endpoint: String,
    pub credentials: String,
}

/// A started stack. Dropping it without [`Running::shutdown`] still stops the children (their
/// parent-death signal fires when spillway exits), but not in order.
pub struct Running {
    _lock: StateLock,
    databases: Vec<RunningDatabase>,
    rows: Vec<Row>,
    /// Resources declared in the stack that this build does not serve yet.
    pub not_served: Vec<String>,
    /// Values known at run time, for resolving `${...}` references.
    values: HashMap<(Kind, String, String), String>,
    stack: spillway_stack::Stack,
}

impl Running {
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn databases(&self) -> impl Iterator<Item = &databases::DatabaseEndpoint> {
        self.databases.iter().map(|d| &d.endpoint)
    }

    /// The value of a reference, for services started later (functions' environments and so on).
    pub fn lookup(&self, r: Reference<'_>) -> Option<String> {
        lookup(&self.values, &self.stack, r)
    }

    /// Resolves when a managed server exits on its own; says which and how.
    pub async fn unexpected_exit(&mut self) -> String {
        loop {
            for db in &mut self.databases {
                if let Some(p) = db.process.as_mut()
                    && let Some(status) = p.try_exited()
                {
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

    /// Stops everything in the reverse of the start order, then releases the state lock.
    pub async fn shutdown(self) {
        stop_all(self.databases).await;
    }
}

async fn stop_all(databases: Vec<RunningDatabase>) {
    for db in databases.into_iter().rev() {
        if let Some(p) = db.process {
            tracing::info!(database = %db.endpoint.resource, "stopping");
            p.stop(Duration::from_secs(60)).await;
        }
    }
}

fn lookup(
    values: &HashMap<(Kind, String, String), String>,
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

/// Starts every resource of `loaded` that this build serves, in dependency order.
/// `progress` receives one line per long step (first-time database creation).
pub async fn start(
    loaded: &LoadedStack,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Running, SupervisorError> {
    let state = loaded.state_dir();
    let lock = StateLock::acquire(&state)?;
    let stack = &loaded.stack;
    let mut values: HashMap<(Kind, String, String), String> = HashMap::new();
    let mut generated = GeneratedSecrets::open(&state)?;
    let mut rows = Vec::new();

    // Secrets first: database users are made from them, and their values depend on nothing
    // that runs.
    for (name, s) in &stack.secrets {
        if let Some(u) = &s.username {
            values.insert((Kind::Secret, name.clone(), "username".into()), u.clone());
        }
        let password = match &s.password {
            Some(SecretPassword::Generate(g)) => {
                Some(generated.get_or_generate(&format!("secrets/{name}"), g)?)
            }
            Some(SecretPassword::Value(t)) => {
                Some(t.resolve(&mut |r| lookup(&values, stack, r)).map_err(|e| {
                    SupervisorError::Command {
                        what: format!("secrets.{name}.password"),
                        detail: e.to_string(),
                    }
                })?)
            }
            None => None,
        };
        if let Some(p) = password {
            values.insert((Kind::Secret, name.clone(), "password".into()), p);
        }
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

    let mut running: Vec<RunningDatabase> = Vec::new();
    let mut not_served = Vec::new();
    for id in &loaded.order {
        let result = match id.kind {
            Kind::Database => start_database(loaded, &id.name, &values, progress).await,
            Kind::Secret => continue,
            _ => {
                not_served.push(id.to_string());
                continue;
            }
        };
        match result {
            Ok(db) => {
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
                    ("endpoint", format!("{}:{}", e.host, e.port)),
                ] {
                    values.insert((Kind::Database, id.name.clone(), attr.into()), v);
                }
                let mut endpoint = e.url();
                if let Some(s) = &e.socket {
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
                running.push(db);
            }
            Err(e) => {
                stop_all(running).await;
                return Err(e);
            }
        }
    }
    Ok(Running {
        _lock: lock,
        databases: running,
        rows,
        not_served,
        values,
        stack: stack.clone(),
    })
}

async fn start_database(
    loaded: &LoadedStack,
    name: &str,
    values: &HashMap<(Kind, String, String), String>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RunningDatabase, SupervisorError> {
    let stack = &loaded.stack;
    let db = &stack.databases[name];
    let dir = loaded.state_dir().join("databases").join(name);
    let init: Vec<PathBuf> = db.init.iter().map(|p| loaded.path(p)).collect();
    if let Some(url) = &db.url {
        let url = url
            .resolve(&mut |r| lookup(values, stack, r))
            .map_err(|e| SupervisorError::External {
                name: name.into(),
                detail: format!("url: {e}"),
            })?;
        return databases::external::check(name, db.engine, &url, &dir, &init, db.apply_init).await;
    }
    let users = db
        .users
        .iter()
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
        port: db.port,
        max_connections: db.max_connections,
        init,
        users,
    };
    match db.engine {
        spillway_stack::model::Engine::Postgres => {
            databases::postgres::start(&spec, progress).await
        }
        spillway_stack::model::Engine::Mysql => databases::mysql::start(&spec, progress).await,
    }
}
