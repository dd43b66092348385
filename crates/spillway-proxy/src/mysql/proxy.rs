//! One MySQL proxy's runtime settings and shared state, built from the stack (or the one-line
//! command) and swapped whole on reload, as `pg::proxy` is for PostgreSQL. It shares the pool
//! (`crate::pool`), the IAM token check and `allow_from` with that side.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use spillway_stack::model::{IamAuth, PoolMode};

use super::backend::MyConn;
use super::pinning::Filters;
use super::threads::Threads;
use crate::access::IamVerifier;
use crate::pool::{PoolKey, Target};
use crate::server::ServerAddr;

/// A login the proxy accepts (one per secret).
pub struct MyUser {
    pub name: String,
    pub password: String,
    pub iam: IamAuth,
}

impl std::fmt::Debug for MyUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MyUser({})", self.name)
    }
}

/// The plugin the proxy's greeting names for password logins (RDS Proxy's
/// ClientPasswordAuthType MYSQL_NATIVE_PASSWORD or MYSQL_CACHING_SHA2_PASSWORD). Clients that
/// answer with the other one are accepted too: the challenge is the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordPlugin {
    Native,
    CachingSha2,
}

impl PasswordPlugin {
    pub fn name(self) -> &'static str {
        match self {
            PasswordPlugin::Native => super::scramble::NATIVE,
            PasswordPlugin::CachingSha2 => super::scramble::CACHING_SHA2,
        }
    }
}

#[derive(Clone, Debug)]
pub struct MySettings {
    pub proxy: String,
    pub server: ServerAddr,
    pub server_tls: Option<Arc<crate::tls::ClientTls>>,
    pub users: HashMap<String, Arc<MyUser>>,
    pub mode: PoolMode,
    pub filters: Filters,
    pub idle_client_timeout: Duration,
    pub init_query: Option<String>,
    pub password_plugin: PasswordPlugin,
    pub allow_from: Vec<(IpAddr, u8)>,
    pub connect_timeout: Duration,
    pub tls: Option<crate::tls::ServerTls>,
    pub require_tls: bool,
    /// Accept IAM tokens (sent in clear text) without TLS from loopback peers: development
    /// only, since a token is a bearer credential for its lifetime.
    pub cleartext_on_loopback: bool,
    /// Offer LOCAL_FILES: clients that ask may run LOAD DATA LOCAL INFILE.
    pub local_infile: bool,
    pub debug_logging: bool,
    /// The version string clients see: the server's own (drivers choose features by it).
    pub server_version: String,
    /// The longest command a client may send.
    pub max_packet: usize,
}

/// A prepared statement's answer to COM_STMT_PREPARE, as the server sent it (with the
/// server's statement id and in DEPRECATE_EOF form): replayed to later clients of the same
/// pool without a round trip.
#[derive(Debug)]
pub struct PreparedMeta {
    /// The statement's text (a hit by hash is checked against it).
    pub sql: bytes::Bytes,
    pub params: u16,
    pub columns: u16,
    /// The packets' payloads: the prepare OK, then parameter and column definitions.
    pub packets: Vec<bytes::Bytes>,
}

/// Prepared answers remembered per pool (an application has tens or hundreds of statements).
const PREPARED_PER_POOL: usize = 10_000;

pub struct MyProxy {
    settings: RwLock<Arc<MySettings>>,
    pub target: Arc<Target<MyConn>>,
    pub iam: Option<Arc<dyn IamVerifier>>,
    pub threads: Arc<Threads>,
    next_connection_id: AtomicU32,
    /// Pools whose database and credentials a server has accepted.
    verified: Mutex<HashSet<PoolKey>>,
    prepared: Mutex<HashMap<PoolKey, HashMap<u64, Arc<PreparedMeta>>>>,
}

impl MyProxy {
    pub fn new(
        settings: MySettings,
        target: Arc<Target<MyConn>>,
        iam: Option<Arc<dyn IamVerifier>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            settings: RwLock::new(Arc::new(settings)),
            target,
            iam,
            threads: Arc::new(Threads::default()),
            // Connection ids clients see are the proxy's, never a server thread's.
            next_connection_id: AtomicU32::new(rand::random::<u32>() >> 8 | 1),
            verified: Mutex::new(HashSet::new()),
            prepared: Mutex::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> Arc<MySettings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn reload(&self, settings: MySettings) {
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
    }

    pub fn next_connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn is_verified(&self, key: &PoolKey) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    pub fn set_verified(&self, key: &PoolKey) {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
    }

    pub fn prepared(&self, key: &PoolKey, hash: u64) -> Option<Arc<PreparedMeta>> {
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)?
            .get(&hash)
            .cloned()
    }

    pub fn remember_prepared(&self, key: &PoolKey, hash: u64, meta: Arc<PreparedMeta>) {
        let mut all = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        let pool = all.entry(key.clone()).or_default();
        if pool.len() < PREPARED_PER_POOL {
            pool.insert(hash, meta);
        }
    }

    /// A rotated secret: new logins and new server connections use the new password.
    pub fn rotate_password(&self, user: &str, password: &str) -> bool {
        let mut settings = (*self.settings()).clone();
        let Some(old) = settings.users.get(user) else {
            return false;
        };
        if old.password == password {
            return true;
        }
        let iam = old.iam;
        settings.users.insert(
            user.to_owned(),
            Arc::new(MyUser {
                name: user.to_owned(),
                password: password.to_owned(),
                iam,
            }),
        );
        self.reload(settings);
        self.target.update_password(user, password);
        true
    }

    pub fn allowed(&self, ip: IpAddr) -> bool {
        crate::access::allows(&self.settings().allow_from, ip)
    }
}
