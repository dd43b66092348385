//! The stack file's model: every resource kind a stack can declare.
//!
//! Field names follow the AWS/CDK names users already know, in snake_case. Later services read
//! these types; they do not invent their own configuration. Every struct denies unknown fields so
//! that a typo is an error with a location, not a silently ignored setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::template::Template;

/// A whole `spillway.toml`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Settings of the stack as a whole.
    #[serde(default)]
    pub stack: StackSettings,
    /// PostgreSQL and MySQL databases: managed by spillway (no `url`) or external (`url`).
    #[serde(default)]
    pub databases: BTreeMap<String, Database>,
    /// Secrets Manager secrets, created when the stack starts.
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    /// RDS-Proxy-class connection poolers in front of databases.
    #[serde(default)]
    pub proxies: BTreeMap<String, Proxy>,
    /// SQS-compatible queues.
    #[serde(default)]
    pub queues: BTreeMap<String, Queue>,
    /// Lambda-compatible functions.
    #[serde(default)]
    pub functions: BTreeMap<String, Function>,
    /// API Gateway HTTP APIs (v2) and REST APIs (v1).
    #[serde(default)]
    pub apis: BTreeMap<String, Api>,
    /// DynamoDB-compatible tables.
    #[serde(default)]
    pub tables: BTreeMap<String, Table>,
    /// IAM users: long-lived access keys with policies.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// IAM roles: assumed through STS; every function runs as one.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
}

/// `[stack]`: names, region, account and the shared AWS endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackSettings {
    /// The stack's name; defaults to the name of the directory holding the file.
    #[serde(default)]
    pub name: Option<String>,
    /// The region that ARNs and signatures use.
    #[serde(default = "default_region")]
    pub region: String,
    /// The 12-digit account id that ARNs and queue URLs use.
    #[serde(default = "default_account")]
    pub account: String,
    /// Where the AWS-compatible endpoint (SQS, Secrets Manager, STS, DynamoDB, Lambda) listens.
    #[serde(default = "default_endpoint")]
    pub endpoint: SocketAddr,
    /// Serve the endpoint over https: `{ cert, key }` (PEM files) or `{ self_signed = true }`.
    /// Without it the endpoint speaks plain HTTP, which is logged as a warning when it is not on
    /// loopback.
    #[serde(default)]
    pub endpoint_tls: Option<EndpointTls>,
    /// A bearer token (`Authorization: Bearer TOKEN`, as Prometheus sends it) that opens
    /// `/_spillway/metrics` and `/_spillway/pools` when the endpoint is not on loopback; a SigV4
    /// signature of any stack principal opens them too. Write it as `${env:NAME}` to keep it
    /// out of the file.
    #[serde(default)]
    pub metrics_token: Option<String>,
    /// Where spillway keeps its state (data directories, logs, generated secrets), relative to
    /// the stack file's directory.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Identity settings.
    #[serde(default)]
    pub identity: IdentitySettings,
    /// Where the queues keep their messages: `embedded` (in the state directory, for this
    /// stack alone) or `nats://HOST:PORT`, a NATS server with JetStream that every stack naming
    /// it and the same `queue_namespace` shares queues through.
    #[serde(default = "default_queue_backend")]
    pub queue_backend: String,
    /// With a `nats://` queue_backend: the prefix of the streams, KV buckets and subjects the
    /// queues use there (`A-Z a-z 0-9 _ -`, at most 32). Stacks with the same server and
    /// namespace serve the same queues; defaults to `spillway`.
    #[serde(default)]
    pub queue_namespace: Option<String>,
}

/// The `queue_backend` value that keeps queues in the state directory.
pub const EMBEDDED_QUEUE_BACKEND: &str = "embedded";
/// The namespace of a JetStream queue backend when `queue_namespace` is not given.
pub const DEFAULT_QUEUE_NAMESPACE: &str = "spillway";

impl StackSettings {
    /// The NATS URL of a JetStream queue backend, None for the embedded one.
    pub fn queue_nats_url(&self) -> Option<&str> {
        (self.queue_backend != EMBEDDED_QUEUE_BACKEND).then_some(self.queue_backend.as_str())
    }

    pub fn queue_namespace(&self) -> &str {
        self.queue_namespace
            .as_deref()
            .unwrap_or(DEFAULT_QUEUE_NAMESPACE)
    }
}

impl Default for StackSettings {
    fn default() -> Self {
        Self {
            name: None,
            region: default_region(),
            account: default_account(),
            endpoint: default_endpoint(),
            endpoint_tls: None,
            metrics_token: None,
            state_dir: default_state_dir(),
            identity: IdentitySettings::default(),
            queue_backend: default_queue_backend(),
            queue_namespace: None,
        }
    }
}

fn default_queue_backend() -> String {
    EMBEDDED_QUEUE_BACKEND.into()
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_account() -> String {
    "000000000000".into()
}
fn default_endpoint() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4566))
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(".spillway")
}
fn default_true() -> bool {
    true
}

/// `[stack] endpoint_tls`: https on the AWS endpoint. Either a certificate and key (PEM,
/// relative to the stack file) or `self_signed = true`, which generates a pair for
/// `localhost`, `127.0.0.1`, `::1` and the endpoint's address into the state directory
/// (`endpoint-tls/cert.pem`, `key.pem`, mode 0600) on first start and keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointTls {
    /// PEM certificate chain.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Generate (once) and use a self-signed certificate.
    #[serde(default)]
    pub self_signed: bool,
}

/// `[stack.identity]`
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// Require SigV4 signatures and enforce IAM policies. May be `false` only while every
    /// listener is on a loopback address (a logged development mode).
    #[serde(default = "default_true")]
    pub enforce: bool,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self { enforce: true }
    }
}

/// The database engines spillway can manage and proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// PostgreSQL (managed with the system's `initdb` and `postgres`).
    Postgres,
    /// MySQL protocol (managed with the system's MariaDB: `mariadb-install-db` and `mariadbd`).
    Mysql,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    /// The port a proxy for this engine listens on unless told otherwise.
    pub fn default_proxy_port(self) -> u16 {
        match self {
            Engine::Postgres => 6432,
            Engine::Mysql => 6033,
        }
    }
}

/// `[databases.NAME]`: a database server and one database in it.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The engine.
    pub engine: Engine,
    /// An external server (`postgres://user:pass@host:port/db` or `mysql://...`). Without it,
    /// spillway starts and manages a private server for this database.
    #[serde(default)]
    pub url: Option<Template>,
    /// Read replicas of an external server (URLs), for read-only proxy endpoints (a managed
    /// server has `readers` instead).
    #[serde(default)]
    pub replicas: Vec<Template>,
    /// The database to create in a managed server; defaults to the resource name.
    #[serde(default)]
    pub name: Option<String>,
    /// SQL files (relative to the stack file) applied once, when the managed server is created,
    /// with `psql` or `mariadb` so that files written for those tools work as they are.
    #[serde(default)]
    pub init: Vec<PathBuf>,
    /// Apply `init` to an external (`url`) database too. Off by default: spillway never writes
    /// to a database it does not own unless asked.
    #[serde(default)]
    pub apply_init: bool,
    /// Secrets whose `username`/`password` become login users of this database (created on
    /// start, password kept in step with the secret), like RDS Proxy's one secret per user.
    #[serde(default)]
    pub users: Vec<String>,
    /// Let a managed server listen on a loopback TCP port too (`port`, or a free one chosen on
    /// first start and kept). Off by default: like an RDS instance in a private subnet, a
    /// managed server is reachable only through its Unix socket and the stack's proxies.
    #[serde(default)]
    pub tcp: bool,
    /// Loopback TCP port of a managed server (implies `tcp = true`).
    #[serde(default)]
    pub port: Option<u16>,
    /// `max_connections` of a managed server.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Read replicas of a managed server (0-15, as an Aurora cluster has up to 15 readers),
    /// started and stopped with it and fed by the engine's own replication (MariaDB: GTID
    /// replication; PostgreSQL: streaming replication, hot standby). Read-only proxy endpoints
    /// spread connections over them. External servers list theirs in `replicas`.
    #[serde(default)]
    pub readers: u32,
}

fn default_max_connections() -> u32 {
    100
}

/// A password that is either written out (usually as `${env:...}`) or generated once and kept.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretPassword {
    /// The password itself.
    Value(Template),
    /// Generate a password on first start and keep it in the state directory.
    Generate(GeneratePassword),
}

/// `password = { generate = true }`: Secrets Manager's GetRandomPassword semantics.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratePassword {
    /// Must be `true`.
    pub generate: bool,
    /// Length of the password (AWS default 32).
    #[serde(default = "default_password_length")]
    pub length: u32,
    /// Leave out punctuation (useful for passwords that go into URLs).
    #[serde(default)]
    pub exclude_punctuation: bool,
    /// Characters never to use.
    #[serde(default)]
    pub exclude_characters: String,
}

fn default_password_length() -> u32 {
    32
}

/// `[secrets.NAME]`: a Secrets Manager secret, in the JSON shape RDS uses
/// (`username`, `password`, `engine`, `host`, `port`, `dbname`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// Shown by DescribeSecret.
    #[serde(default)]
    pub description: Option<String>,
    /// The database user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The password.
    #[serde(default)]
    pub password: Option<SecretPassword>,
    /// Fill `engine`, `host`, `port` and `dbname` from this database's proxy-less endpoint.
    #[serde(default)]
    pub database: Option<String>,
    /// More keys of the secret's JSON value.
    #[serde(default)]
    pub extra: BTreeMap<String, Template>,
}

/// How a proxy accepts RDS IAM authentication tokens for a user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IamAuth {
    /// Only the secret's password is accepted.
    #[default]
    Disabled,
    /// An IAM token or the password.
    Optional,
    /// Only an IAM token (RDS Proxy's `IAMAuth = REQUIRED`).
    Required,
}

/// `auth = [{ secret = "...", iam = "required" }]`: one entry per database user.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyAuth {
    /// The secret holding this user's name and password.
    pub secret: String,
    /// IAM token authentication for this user.
    #[serde(default)]
    pub iam: IamAuth,
    /// How clients prove the password (RDS Proxy's ClientPasswordAuthType).
    #[serde(default)]
    pub client_password_auth: Option<ClientPasswordAuth>,
}

/// RDS Proxy's ClientPasswordAuthType, spelled in lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientPasswordAuth {
    PostgresScramSha256,
    PostgresMd5,
    MysqlNativePassword,
    MysqlCachingSha2Password,
}

/// Transaction pooling shares server connections between clients at transaction boundaries;
/// session pooling gives each client its own server connection until it leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    #[default]
    Transaction,
    Session,
}

/// RDS Proxy's session pinning filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PinningFilter {
    /// Do not pin on `SET` of session variables.
    ExcludeVariableSets,
}

/// The role of a proxy endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointRole {
    #[default]
    ReadWrite,
    ReadOnly,
}

/// `[proxies.NAME.endpoints.E]`: an additional listener of a proxy.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyEndpoint {
    /// Where it listens.
    pub listen: SocketAddr,
    /// `read-only` endpoints spread connections over the database's replicas.
    #[serde(default)]
    pub role: EndpointRole,
}

/// A proxy's certificate for client TLS: `{ cert, key }` (PEM files, relative to the stack
/// file) or `{ self_signed = true }`, which generates a pair for `localhost` and the loopback
/// addresses into the state directory (`proxy-tls/NAME/cert.pem`, `key.pem`, mode 0600) on
/// first start and keeps it. Clients of a generated certificate encrypt without verifying it
/// (`--ssl --skip-ssl-verify-server-cert`, mysql2's `rejectUnauthorized: false`) or trust that
/// file.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Generate (once) and use a self-signed certificate.
    #[serde(default)]
    pub self_signed: bool,
}

/// `[proxies.NAME]`: an RDS-Proxy-class pooler.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// The database it fronts.
    pub database: String,
    /// The default (read-write) endpoint; 127.0.0.1:6432 for PostgreSQL, :6033 for MySQL.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// More endpoints, e.g. a read-only one.
    #[serde(default)]
    pub endpoints: BTreeMap<String, ProxyEndpoint>,
    /// Users that may log in, one secret each.
    #[serde(default)]
    pub auth: Vec<ProxyAuth>,
    /// Refuse clients that do not use TLS.
    #[serde(default)]
    pub require_tls: bool,
    /// Certificate for client TLS: `{ cert, key }` or `{ self_signed = true }`.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Close client connections idle this long (RDS Proxy default 30 minutes).
    #[serde(default = "default_idle_client_timeout")]
    pub idle_client_timeout: Duration,
    /// Share of the server's `max_connections` this proxy may open (1-100).
    #[serde(default = "default_max_connections_percent")]
    pub max_connections_percent: u8,
    /// Share of the server's `max_connections` kept open while idle (0 to
    /// max_connections_percent); RDS Proxy's default is half of max_connections_percent.
    #[serde(default)]
    pub max_idle_connections_percent: Option<u8>,
    /// An absolute cap on server connections, applied after the percentage.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// How long a client waits for a server connection before getting an error (RDS default 120s).
    #[serde(default = "default_borrow_timeout")]
    pub connection_borrow_timeout: Duration,
    /// Proxy threads serving this proxy's clients (1-64; default 1). Each has its own listening
    /// socket on the proxy's addresses and serves the clients it accepts; the connection cap,
    /// the queues and their fairness stay shared. One thread handles tens of thousands of
    /// transactions a second: more pay off once that thread is a whole core's worth of work.
    /// Applies at the next start.
    #[serde(default = "default_workers")]
    pub workers: u16,
    /// Transaction (default) or session pooling.
    #[serde(default)]
    pub pool_mode: PoolMode,
    /// Statement kinds that should not pin a client to its server connection.
    #[serde(default)]
    pub session_pinning_filters: Vec<PinningFilter>,
    /// SQL run on every new server connection (RDS Proxy's InitQuery).
    #[serde(default)]
    pub init_query: Option<Template>,
    /// Peer networks allowed to connect (CIDR); empty means any peer.
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Log every statement (RDS Proxy's DebugLogging): leaks data to logs, off by default.
    #[serde(default)]
    pub debug_logging: bool,
    /// MySQL: accept IAM tokens (which travel in clear text, `mysql_clear_password`) without
    /// TLS from loopback peers. For development only: a token is a bearer credential for its
    /// 15 minutes. Elsewhere, IAM logins need TLS.
    #[serde(default)]
    pub allow_cleartext_on_loopback: bool,
    /// MySQL: let clients that ask for it run `LOAD DATA LOCAL INFILE` through the proxy
    /// (the client sends a file the server names). Off by default, as in MySQL 8: a
    /// malicious server could ask a client for any file it can read.
    #[serde(default)]
    pub local_infile: bool,
}

fn default_idle_client_timeout() -> Duration {
    Duration::from_secs(1800)
}
fn default_max_connections_percent() -> u8 {
    100
}
fn default_workers() -> u16 {
    1
}
fn default_borrow_timeout() -> Duration {
    Duration::from_secs(120)
}

/// `dead_letter = { queue = "...", max_receive_count = 3 }`: SQS's RedrivePolicy.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// The dead-letter queue.
    pub queue: String,
    /// Receives before a message moves to the dead-letter queue (1-1000).
    pub max_receive_count: u32,
}

/// `[queues.NAME]`: an SQS queue (standard, or FIFO when the name ends in `.fifo`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// A FIFO queue; its name must end in `.fifo`.
    #[serde(default)]
    pub fifo: bool,
    /// FIFO only: deduplicate by a SHA-256 of the body.
    #[serde(default)]
    pub content_based_deduplication: bool,
    /// 0s-12h, default 30s.
    #[serde(default = "default_visibility_timeout")]
    pub visibility_timeout: Duration,
    /// 60s-14d, default 4d.
    #[serde(default = "default_retention")]
    pub message_retention: Duration,
    /// 0s-15m, default 0s.
    #[serde(default)]
    pub delay: Duration,
    /// Long-polling wait when ReceiveMessage does not say; 0s-20s, default 0s.
    #[serde(default)]
    pub receive_wait_time: Duration,
    /// 1,024-262,144 bytes, default 262,144.
    #[serde(default = "default_max_message_size")]
    pub maximum_message_size: u32,
    /// Where messages go after too many receives.
    #[serde(default)]
    pub dead_letter: Option<DeadLetter>,
}

fn default_visibility_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retention() -> Duration {
    Duration::from_secs(4 * 24 * 3600)
}
fn default_max_message_size() -> u32 {
    262_144
}

/// The runtimes a function can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// An executable `bootstrap` (custom runtime), or a Cargo package built on start.
    Provided,
    /// A Node.js handler module (`file.handler`), run by spillway's bootstrap.
    Nodejs,
    /// A Python handler (`module.function`), run by spillway's bootstrap.
    Python,
}

/// An IAM policy for a function, user or role: a shorthand (`allow`/`deny` with `resources`),
/// a JSON file, or full statements.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Actions allowed on `resources` (shorthand for one Allow statement).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Actions denied on `resources` (shorthand for one Deny statement).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Resources of the shorthand statement (ARNs, may use references and wildcards).
    #[serde(default)]
    pub resources: Vec<Template>,
    /// A condition block for the shorthand statement, as in IAM JSON.
    #[serde(default)]
    pub condition: Option<BTreeMap<String, BTreeMap<String, StringOrList>>>,
    /// An IAM policy document in a JSON file, relative to the stack file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// IAM statements written inline.
    #[serde(default)]
    pub statement: Vec<Statement>,
}

/// A string or a list of strings, as IAM allows in most places.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StringOrList {
    One(Template),
    Many(Vec<Template>),
}

impl StringOrList {
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        match self {
            StringOrList::One(t) => std::slice::from_ref(t).iter(),
            StringOrList::Many(v) => v.iter(),
        }
    }
}

/// An IAM policy document (the JSON of `file = ...`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(rename = "Version", default)]
    pub version: Option<String>,
    #[serde(rename = "Id", default)]
    pub id: Option<String>,
    #[serde(rename = "Statement")]
    pub statement: StatementList,
}

/// IAM allows one statement object or a list of them.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StatementList {
    One(Box<Statement>),
    Many(Vec<Statement>),
}

/// IAM's Effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Effect {
    Allow,
    Deny,
}

/// One IAM statement, with IAM's own key names.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "Sid", default)]
    pub sid: Option<String>,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    #[serde(rename = "Action", default)]
    pub action: Option<StringOrList>,
    #[serde(rename = "NotAction", default)]
    pub not_action: Option<StringOrList>,
    #[serde(rename = "Resource", default)]
    pub resource: Option<StringOrList>,
    #[serde(rename = "NotResource", default)]
    pub not_resource: Option<StringOrList>,
    #[serde(rename = "Principal", default)]
    pub principal: Option<serde_json::Value>,
    #[serde(rename = "Condition", default)]
    pub condition: Option<BTreeMap<String, BTreeMap<String, StringOrList>>>,
}

/// `events = [{ queue = "...", batch_size = 10 }]`: an SQS event source mapping.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSource {
    /// The queue to poll.
    pub queue: String,
    /// Messages per invocation (1-10,000; above 10 needs a batching window). Default 10.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// How long to gather a batch (0s-5m).
    #[serde(default)]
    pub maximum_batching_window: Duration,
    /// The function returns `batchItemFailures` for partial success.
    #[serde(default)]
    pub report_batch_item_failures: bool,
    /// Most concurrent invocations this mapping makes (2-1000).
    #[serde(default)]
    pub maximum_concurrency: Option<u32>,
    /// Disabled mappings do not poll.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_batch_size() -> u32 {
    10
}

/// `[functions.NAME]`: a Lambda function.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// The runtime.
    pub runtime: Runtime,
    /// The code: a directory (relative to the stack file) with a `bootstrap`, a handler module,
    /// or a Cargo package.
    pub code: PathBuf,
    /// `file.function` for nodejs and python.
    #[serde(default)]
    pub handler: Option<String>,
    /// 1s-15m, default 3s.
    #[serde(default = "default_function_timeout")]
    pub timeout: Duration,
    /// Memory in MB, 128-10,240, default 128.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// Most instances at once; more synchronous calls are throttled.
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// Environment variables; values may reference other resources.
    #[serde(default)]
    pub environment: BTreeMap<String, Template>,
    /// The role the function runs as; without it, a role with `policies` is made for it.
    #[serde(default)]
    pub role: Option<String>,
    /// Policies of the function's own role.
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
    /// Queues that invoke it.
    #[serde(default)]
    pub events: Vec<EventSource>,
    /// Where asynchronous invocations that failed every retry go (a queue).
    #[serde(default)]
    pub on_failure: Option<String>,
    /// How long an idle instance is kept warm.
    #[serde(default = "default_keep_warm")]
    pub keep_warm: Duration,
    /// Retries of a failed asynchronous invocation, 0-2 (Lambda's MaximumRetryAttempts).
    #[serde(default = "default_retry_attempts")]
    pub maximum_retry_attempts: u32,
}

fn default_retry_attempts() -> u32 {
    2
}
fn default_function_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_memory() -> u32 {
    128
}
fn default_keep_warm() -> Duration {
    Duration::from_secs(300)
}

/// HTTP APIs (API Gateway v2) or REST APIs (v1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiProtocol {
    #[default]
    Http,
    Rest,
}

/// How a route is authorized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Authorization {
    #[default]
    None,
    /// SigV4-signed, `execute-api:Invoke` checked against the caller's policies.
    Iam,
    /// A JWT or function authorizer named by `authorizer`.
    Custom,
}

/// `[[apis.NAME.routes]]`: one route and its integration (exactly one of `function`, `queue`,
/// `http`, `mock`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `METHOD /path` (with `{param}`, `{proxy+}`, `ANY`) or `$default`.
    pub route: String,
    /// Invoke this function.
    #[serde(default)]
    pub function: Option<String>,
    /// Send the request to this queue (HTTP API SQS-SendMessage integration).
    #[serde(default)]
    pub queue: Option<String>,
    /// Proxy to this URL.
    #[serde(default)]
    pub http: Option<Template>,
    /// Answer with a fixed response.
    #[serde(default)]
    pub mock: Option<MockResponse>,
    /// Payload format for function integrations: "2.0" (HTTP API default) or "1.0".
    #[serde(default)]
    pub payload_format: Option<String>,
    /// Request parameter mapping, e.g. `{ MessageBody = "$request.body" }` for queues.
    #[serde(default)]
    pub parameters: BTreeMap<String, Template>,
    /// Authorization of this route.
    #[serde(default)]
    pub authorization: Authorization,
    /// The authorizer for `authorization = "custom"`.
    #[serde(default)]
    pub authorizer: Option<String>,
    /// Scopes a JWT must carry.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Integration timeout (HTTP API max and default 30s, REST 29s).
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// REST APIs: require an API key.
    #[serde(default)]
    pub api_key_required: bool,
}

/// A fixed response for a mock integration.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MockResponse {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

fn default_status() -> u16 {
    200
}

/// Kinds of authorizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizerKind {
    Jwt,
    Function,
}

/// `[apis.NAME.authorizers.A]`
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authorizer {
    pub kind: AuthorizerKind,
    /// JWT: the `iss` to accept.
    #[serde(default)]
    pub issuer: Option<String>,
    /// JWT: accepted `aud` values.
    #[serde(default)]
    pub audience: Vec<String>,
    /// JWT: a JWKS file (relative to the stack file) or URL.
    #[serde(default)]
    pub jwks: Option<String>,
    /// Function authorizer: the function.
    #[serde(default)]
    pub function: Option<String>,
    /// Function authorizer: answer with `{"isAuthorized": bool}` instead of an IAM policy.
    #[serde(default)]
    pub simple_responses: bool,
    /// Where the identity comes from, e.g. `$request.header.Authorization`.
    #[serde(default)]
    pub identity_sources: Vec<String>,
    /// How long a function authorizer's answer is cached (0s-1h).
    #[serde(default)]
    pub result_ttl: Duration,
}

/// `[apis.NAME.cors]`: HTTP API CORS configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    #[serde(default)]
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub max_age: Option<Duration>,
    #[serde(default)]
    pub allow_credentials: bool,
}

/// Rate and burst of a token bucket.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Requests per second (API Gateway default 10,000).
    #[serde(default = "default_rate")]
    pub rate_limit: f64,
    /// Bucket size (API Gateway default 5,000).
    #[serde(default = "default_burst")]
    pub burst_limit: u32,
}

fn default_rate() -> f64 {
    10_000.0
}
fn default_burst() -> u32 {
    5_000
}

/// `[apis.NAME.stages.S]`
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Stage variables.
    #[serde(default)]
    pub variables: BTreeMap<String, Template>,
    /// Stage-wide throttling.
    #[serde(default)]
    pub throttle: Option<Throttle>,
    /// Per-route throttling, keyed by route (`"GET /users"`).
    #[serde(default)]
    pub route_throttle: BTreeMap<String, Throttle>,
}

/// Access log formats.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// A format with `$context` variables (JSON or CLF text).
    pub format: String,
    /// `stdout` or a file path relative to the stack file.
    #[serde(default = "default_log_destination")]
    pub destination: String,
}

fn default_log_destination() -> String {
    "stdout".into()
}

/// A custom domain with TLS.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// The host name (SNI).
    pub name: String,
    /// Certificate and key, or a generated self-signed pair.
    pub tls: DomainTls,
    /// Base path mapped to this API.
    #[serde(default)]
    pub base_path: Option<String>,
    /// Stage mapped to the base path.
    #[serde(default)]
    pub stage: Option<String>,
}

/// A custom domain's certificate: `{ cert, key }` (PEM, relative to the stack file) or
/// `{ self_signed = true }`, which generates a pair for the domain's name, `localhost`,
/// `127.0.0.1` and `::1` into the state directory (`domain-tls/NAME/cert.pem`, `key.pem`,
/// mode 0600) on first start and keeps it, so clients trust it once (`curl --cacert`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainTls {
    /// PEM certificate chain.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Generate (once) and use a self-signed certificate for the domain.
    #[serde(default)]
    pub self_signed: bool,
}

/// `[apis.NAME.api_keys.KEY]`: a REST API key, sent by clients in `x-api-key`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The key itself (20 to 128 characters, as API Gateway requires of imported keys).
    pub value: Template,
    /// A disabled key is refused like an unknown one.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// Quota periods of a usage plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

/// A usage plan's quota: at most `limit` requests per key per period.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
}

/// `[apis.NAME.usage_plans.PLAN]`: throttling and a quota for the keys it names.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    /// Keys of `api_keys` under this plan.
    pub keys: Vec<String>,
    /// Per-key token bucket.
    #[serde(default)]
    pub throttle: Option<Throttle>,
    #[serde(default)]
    pub quota: Option<Quota>,
}

/// `[apis.NAME]`
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// `http` (API Gateway v2, default) or `rest` (v1).
    #[serde(default)]
    pub protocol: ApiProtocol,
    /// Where the API listens (first API: 127.0.0.1:3000).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Authorizers, referred to by routes.
    #[serde(default)]
    pub authorizers: BTreeMap<String, Authorizer>,
    /// CORS (HTTP APIs).
    #[serde(default)]
    pub cors: Option<Cors>,
    /// Stages; an HTTP API without any has `$default` (no path prefix).
    #[serde(default)]
    pub stages: BTreeMap<String, Stage>,
    /// Access logging.
    #[serde(default)]
    pub access_log: Option<AccessLog>,
    /// Custom domains. An API with domains serves HTTPS on its listener, choosing the
    /// certificate by SNI.
    #[serde(default)]
    pub domains: Vec<Domain>,
    /// REST APIs: content types (`image/png`, `image/*`, `*/*`) whose request bodies reach
    /// functions base64-encoded.
    #[serde(default)]
    pub binary_media_types: Vec<String>,
    /// REST APIs: keys for routes with `api_key_required`.
    #[serde(default)]
    pub api_keys: BTreeMap<String, ApiKey>,
    /// REST APIs: throttling and quotas per key.
    #[serde(default)]
    pub usage_plans: BTreeMap<String, UsagePlan>,
}

/// DynamoDB attribute types usable in keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KeyType {
    S,
    N,
    B,
}

/// A key attribute: `{ name = "date", type = "S" }`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub key_type: KeyType,
}

/// A global secondary index.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalIndex {
    pub hash_key: KeyAttribute,
    #[serde(default)]
    pub range_key: Option<KeyAttribute>,
}

/// `[tables.NAME]`: a DynamoDB table.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Partition key.
    pub hash_key: KeyAttribute,
    /// Sort key.
    #[serde(default)]
    pub range_key: Option<KeyAttribute>,
    /// Global secondary indexes by name.
    #[serde(default)]
    pub indexes: BTreeMap<String, GlobalIndex>,
    /// Attribute holding an expiry time (epoch seconds).
    #[serde(default)]
    pub ttl_attribute: Option<String>,
}

/// `[users.NAME]`: an IAM user with an access key.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Access key id; generated and kept when absent.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key; generated and kept when absent (usually `${env:...}`).
    #[serde(default)]
    pub secret_access_key: Option<Template>,
    /// The user's policies.
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
}

/// `[roles.NAME]`: an IAM role.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Users and roles that may assume this role with STS, each as `users.NAME`, `roles.NAME`
    /// or an IAM ARN (`arn:aws:iam::ACCOUNT:user/NAME`); a bare name is refused as ambiguous.
    /// A trusted role's sessions may assume it (role chaining). Empty: only spillway itself,
    /// for functions.
    #[serde(default)]
    pub trusted: Vec<String>,
    /// Longest session AssumeRole may grant (15m-12h, default 1h).
    #[serde(default = "default_max_session")]
    pub max_session_duration: Duration,
    /// The role's policies.
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
}

fn default_max_session() -> Duration {
    Duration::from_secs(3600)
}

// Untagged enums would report "data did not match any variant", which tells a user nothing; these
// hand-written impls pick the variant by the value's shape and keep the inner error (with its
// field path) when the shape is right but the content is not.

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use std::fmt;

impl<'de> Deserialize<'de> for SecretPassword {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretPassword;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a password string or { generate = true }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SecretPassword::Value(Template(v.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                GeneratePassword::deserialize(MapAccessDeserializer::new(map))
                    .map(SecretPassword::Generate)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StringOrList::One(Template(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<Template>::deserialize(SeqAccessDeserializer::new(seq))
                    .map(StringOrList::Many)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StatementList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatementList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a statement object or a list of statements")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Statement::deserialize(MapAccessDeserializer::new(map))
                    .map(|s| StatementList::One(Box::new(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<Statement>::deserialize(SeqAccessDeserializer::new(seq))
                    .map(StatementList::Many)
            }
        }
        d.deserialize_any(V)
    }
}

impl StatementList {
    pub fn as_slice(&self) -> &[Statement] {
        match self {
            StatementList::One(s) => std::slice::from_ref(s.as_ref()),
            StatementList::Many(v) => v,
        }
    }
}

impl Proxy {
    /// MaxIdleConnectionsPercent as RDS Proxy applies it: half of MaxConnectionsPercent unless set.
    pub fn idle_connections_percent(&self) -> u8 {
        self.max_idle_connections_percent
            .unwrap_or(self.max_connections_percent / 2)
    }
}
