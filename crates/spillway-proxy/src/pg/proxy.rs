//! One PostgreSQL proxy's runtime settings and shared state, built from the stack (or the
//! one-line command) and swapped whole on reload, so a session sees one consistent version.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use spillway_stack::model::{IamAuth, PoolMode};

use super::pinning::Filters;
use super::scram::Verifier;
use crate::cancel::CancelRegistry;
use crate::pool::{PoolKey, Target};

/// A login the proxy accepts (one per secret), with the verifier derived once.
pub struct User {
    pub name: String,
    pub password: String,
    pub verifier: Verifier,
    pub iam: IamAuth,
}

impl User {
    pub fn new(name: &str, password: &str, iam: IamAuth) -> Self {
        Self {
            name: name.into(),
            password: password.into(),
            verifier: Verifier::new(password),
            iam,
        }
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User({})", self.name)
    }
}

/// How clients prove their password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    ScramSha256,
    Md5,
}

pub use crate::access::{IamVerifier, in_network};

#[derive(Clone, Debug)]
pub struct Settings {
    pub proxy: String,
    /// The server (with replicas: the primary as configured; the pool's route picks the writer).
    pub server: super::backend::ServerAddr,
    /// TLS towards the server(s), from the database URL's `sslmode`.
    pub server_tls: Option<Arc<crate::tls::ClientTls>>,
    /// The database clients get when they do not name one (else the user name, as PostgreSQL).
    pub default_database: Option<String>,
    pub users: HashMap<String, Arc<User>>,
    pub mode: PoolMode,
    pub filters: Filters,
    pub idle_client_timeout: Duration,
    pub init_query: Option<String>,
    pub client_auth: ClientAuth,
    pub allow_from: Vec<(IpAddr, u8)>,
    pub connect_timeout: Duration,
    /// Certificate for clients that ask for TLS.
    pub tls: Option<crate::tls::ServerTls>,
    /// Refuse clients that do not use TLS (RDS Proxy's RequireTLS).
    pub require_tls: bool,
    /// Log every statement (RDS Proxy's DebugLogging).
    pub debug_logging: bool,
}

/// ParameterStatus name/value pairs.
pub type ServerParams = Vec<(Vec<u8>, Vec<u8>)>;

pub struct PgProxy {
    settings: RwLock<Arc<Settings>>,
    pub target: Arc<Target>,
    pub cancel: Arc<CancelRegistry>,
    pub iam: Option<Arc<dyn IamVerifier>>,
    /// Per pool: the server's ParameterStatus values (replayed to clients at login) and the
    /// startup parameter values the server has accepted.
    pools: Mutex<HashMap<PoolKey, PoolParams>>,
    /// Clients' startup parameter sets, shared between the sessions that sent the same.
    pub param_sets: super::param_sets::ParamSets,
}

#[derive(Default)]
struct PoolParams {
    server: Option<ServerParams>,
    /// (name, value as a client gave it) → the value as the server reports it.
    accepted: HashMap<(String, String), String>,
    /// Statements (by content hash, `prepared.rs`) the server has parsed without error.
    parsed: std::collections::HashSet<u64>,
}

/// Parsed statements remembered per pool (an application has tens or hundreds).
const PARSED_STATEMENTS: usize = 10_000;

/// Accepted values remembered per pool; past this, logins with new values are checked each time
/// (a client sending endless distinct values costs itself round trips, not the proxy memory).
const ACCEPTED_VALUES: usize = 1024;

impl PgProxy {
    pub fn new(
        settings: Settings,
        target: Arc<Target>,
        iam: Option<Arc<dyn IamVerifier>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            settings: RwLock::new(Arc::new(settings)),
            target,
            cancel: Arc::new(CancelRegistry::default()),
            iam,
            pools: Mutex::new(HashMap::new()),
            param_sets: Default::default(),
        })
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, PoolParams>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pool_params(&self, key: &PoolKey) -> Option<ServerParams> {
        self.pools().get(key).and_then(|p| p.server.clone())
    }

    pub fn remember_server_params(&self, key: &PoolKey, params: ServerParams) {
        self.pools().entry(key.clone()).or_default().server = Some(params);
    }

    /// The normalized form of a startup parameter value the server accepted before.
    pub fn accepted_value(&self, key: &PoolKey, name: &str, value: &str) -> Option<String> {
        self.pools()
            .get(key)?
            .accepted
            .get(&(name.to_owned(), value.to_owned()))
            .cloned()
    }

    pub fn accept_value(&self, key: &PoolKey, name: &str, value: &str, normal: &str) {
        let mut pools = self.pools();
        let accepted = &mut pools.entry(key.clone()).or_default().accepted;
        if accepted.len() < ACCEPTED_VALUES {
            accepted.insert((name.to_owned(), value.to_owned()), normal.to_owned());
        }
    }

    /// Statements the pool's server parsed without error (see `Session::parse_without_server`).
    pub fn remember_parsed(&self, key: &PoolKey, hashes: &[u64]) {
        let mut pools = self.pools();
        let parsed = &mut pools.entry(key.clone()).or_default().parsed;
        for h in hashes {
            if parsed.len() < PARSED_STATEMENTS {
                parsed.insert(*h);
            }
        }
    }

    pub fn was_parsed(&self, key: &PoolKey, hash: u64) -> bool {
        self.pools()
            .get(key)
            .is_some_and(|p| p.parsed.contains(&hash))
    }

    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Swaps in new settings; sessions already running keep the version they started with.
    pub fn reload(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
    }

    /// A user's password changed (a rotated secret): clients log in with the new one, and new
    /// server connections use it; connections already open stay as they are. False if the
    /// proxy has no such user.
    pub fn rotate_password(&self, user: &str, password: &str) -> bool {
        let mut settings = (*self.settings()).clone();
        let Some(old) = settings.users.get(user) else {
            return false;
        };
        if old.password == password {
            return true;
        }
        let iam = old.iam;
        settings
            .users
            .insert(user.to_owned(), Arc::new(User::new(user, password, iam)));
        self.reload(settings);
        self.target.update_password(user, password);
        true
    }

    /// Whether a peer may connect (empty `allow_from` allows everyone).
    pub fn allowed(&self, ip: IpAddr) -> bool {
        crate::access::allows(&self.settings().allow_from, ip)
    }
}
