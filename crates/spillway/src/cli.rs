//! The command line: every command and flag, with the help text users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// spillway runs the serverless database stack (API Gateway, Lambda, SQS, IAM, Secrets Manager,
/// DynamoDB, RDS Proxy in front of PostgreSQL and MySQL) as one binary, with no Docker and no
/// account.
#[derive(Parser, Debug)]
#[command(name = "spillway", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SPILLWAY_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter, e.g. "info" or "spillway_supervisor=debug".
    #[arg(long, global = true, default_value = "info", env = "SPILLWAY_LOG")]
    pub log: String,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the stack in DIR (default: the current directory) and run until Ctrl-C or SIGTERM.
    ///
    /// Managed databases are created on first start under the stack's state directory
    /// (.spillway/) and kept between runs. A table of endpoints and credential locations is
    /// printed once everything is up. Everything is stopped in reverse order on exit.
    Up(UpArgs),
    /// Check a stack file and print every problem as FILE:LINE:COLUMN: FIELD: MESSAGE.
    ///
    /// Exits 0 when the stack is valid and 2 when it is not.
    Validate(DirArgs),
    /// Print the JSON schema of spillway.toml (for editor completion).
    Schema,
    /// Write the quickstart stack (a PostgreSQL database with a users table) into DIR.
    Init(InitArgs),
    /// Run only a pooler in front of an existing PostgreSQL or MySQL/MariaDB database, like
    /// PgBouncer (or ProxySQL).
    ///
    /// With --target, no stack file is needed: clients log in with the target URL's user and
    /// password (or the users of --users), and the proxy logs in to the server as them.
    /// With --config, the stack file's proxies (and what they need) run, as `spillway up` would.
    /// SIGHUP re-reads the users file.
    Proxy(ProxyArgs),
    /// IAM tools for the stack's users and roles.
    #[command(subcommand)]
    Iam(IamCommand),
    /// Print a function's log: its output and Lambda's START/END/REPORT lines, as
    /// `aws logs tail` prints them (TIME STREAM MESSAGE).
    ///
    /// Example: spillway logs hello --since 1h --follow
    Logs(LogsArgs),
    /// The running stack's queues: list, peek, purge and redrive, through its AWS endpoint.
    ///
    /// Requests are signed as one of the stack's users (--user, or the only one), so that
    /// user's policies apply as to any SQS client. The stack must be running (`spillway up`).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The running stack's DynamoDB tables, through its AWS endpoint.
    ///
    /// Requests are signed as one of the stack's users (--user, or the only one), so that
    /// user's policies apply as to any DynamoDB client. The stack must be running.
    #[command(subcommand)]
    Tables(TablesCommand),
    /// Load-test an HTTP endpoint as Locust does (users, spawn rate, run time, weighted tasks),
    /// sampling the stack while it runs; writes Locust-format CSVs and an offline HTML report.
    ///
    /// Always headless: a live table on a terminal (plain lines otherwise) on stderr, a summary
    /// at the end. Exits 0 when no request failed, 1 when some did, 2 on bad input.
    /// Example: spillway loadtest -H http://127.0.0.1:4566 -f tasks.toml -u 1000 -r 10 -t 10m
    ///          --wait 5s..9s --compare proxy,no_proxy --html report.html --csv run
    Loadtest(LoadtestArgs),
}

#[derive(Args, Debug)]
pub struct LoadtestArgs {
    /// Host to load test, in the format http://HOST[:PORT][/PREFIX]; task paths are appended.
    #[arg(short = 'H', long)]
    pub host: String,
    /// The tasks file (TOML, [[task]] entries; see docs/loadtest.md) [default: one task, GET /].
    #[arg(
        short = 'f',
        long = "tasks",
        visible_alias = "locustfile",
        value_name = "FILE"
    )]
    pub tasks: Option<PathBuf>,
    /// Peak number of concurrent users (closed model).
    #[arg(short = 'u', long, default_value_t = 1, conflicts_with = "arrival_rate",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// Rate to start users at (users per second) until --users run.
    #[arg(
        short = 'r',
        long,
        default_value_t = 1.0,
        conflicts_with = "arrival_rate"
    )]
    pub spawn_rate: f64,
    /// Stop after this long, e.g. 300s, 20m, 1h30m [default: run until Ctrl-C].
    #[arg(short = 't', long, value_parser = humantime::parse_duration)]
    pub run_time: Option<std::time::Duration>,
    /// Each user's wait after every task: MIN..MAX drawn uniformly (Locust's between), or one
    /// constant duration.
    #[arg(long, default_value = "0s", conflicts_with = "arrival_rate")]
    pub wait: String,
    /// Open model instead of users: start this many requests per second whatever the answers'
    /// pace; latency is measured from each request's intended send time.
    #[arg(long, value_name = "PER_SECOND")]
    pub arrival_rate: Option<f64>,
    /// Open model: most requests in flight at once; later arrivals queue (and their queueing
    /// counts in their latency).
    #[arg(long, default_value_t = 1000, requires = "arrival_rate")]
    pub max_in_flight: usize,
    /// How long a request still running at the end may take to finish before it is abandoned
    /// (not counted).
    #[arg(short = 's', long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub stop_timeout: std::time::Duration,
    /// Give up on a request after this long (a failure).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Seed of the random choices (tasks, query ranges, waits) [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Store request stats in CSV files: PREFIX_stats.csv, PREFIX_stats_history.csv and
    /// PREFIX_failures.csv, in Locust's columns.
    #[arg(
        help_heading = "Request statistics options",
        long,
        value_name = "PREFIX"
    )]
    pub csv: Option<String>,
    /// Also write every task's row, not only the aggregate, to PREFIX_stats_history.csv.
    #[arg(help_heading = "Request statistics options", long, requires = "csv")]
    pub csv_full_history: bool,
    /// Store the HTML report (one self-contained file, opens offline) at this path.
    #[arg(help_heading = "Request statistics options", long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print the final results as JSON on stdout (and nothing else there).
    #[arg(help_heading = "Request statistics options", long)]
    pub json: bool,
    /// No live statistics while running; only the summary at the end.
    #[arg(help_heading = "Request statistics options", long)]
    pub only_summary: bool,
    /// Accepted for Locust compatibility: spillway has no web UI, every run is headless.
    #[arg(long, hide = true)]
    pub headless: bool,
    /// Put task groups side by side in the report, e.g. proxy,no_proxy (tasks' `group`).
    #[arg(
        help_heading = "Request statistics options",
        long,
        value_delimiter = ',',
        value_name = "GROUP,GROUP"
    )]
    pub compare: Vec<String>,
    /// Sample the stack's Prometheus metrics from this URL every second
    /// [default with --stack: the running stack's /_spillway/metrics].
    #[arg(help_heading = "Stack sampling options", long, value_name = "URL")]
    pub metrics: Option<String>,
    /// A stack directory (or file): watch its managed database servers and read its metrics.
    #[arg(help_heading = "Stack sampling options", long, value_name = "DIR")]
    pub stack: Option<PathBuf>,
    /// Also watch this database server process (connections and CPU); repeatable.
    #[arg(
        help_heading = "Stack sampling options",
        long = "db-pid",
        value_name = "PID"
    )]
    pub db_pid: Vec<u32>,
}

#[derive(Subcommand, Debug)]
pub enum TablesCommand {
    /// Every table with its key, item count and size.
    List(QueueListArgs),
    /// Print a table's items, one JSON object per line (Scan, page after page).
    ///
    /// Example: spillway tables scan EventLog --limit 20
    Scan(TablesScanArgs),
}

#[derive(Args, Debug)]
pub struct TablesScanArgs {
    /// The table's name.
    pub table: String,
    #[command(flatten)]
    pub target: QueueTarget,
    /// Stop after this many items (default: the whole table).
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
    /// Scan this index of the table instead.
    #[arg(long)]
    pub index: Option<String>,
    /// Items in DynamoDB's JSON ({"S": "..."}) instead of plain JSON.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Every queue with its approximate counts (visible, in flight, delayed) and its
    /// dead-letter queue.
    List(QueueListArgs),
    /// Show up to N messages without deleting them.
    ///
    /// SQS has no peek: this is ReceiveMessage with VisibilityTimeout=0, so the messages stay
    /// visible but each one's ApproximateReceiveCount goes up by one, which can move it to the
    /// dead-letter queue sooner. On a queue with a RedrivePolicy it refuses unless --force.
    Peek(QueuePeekArgs),
    /// Delete every message in a queue (PurgeQueue: once per queue every 60 seconds).
    Purge(QueueNameArgs),
    /// Move a dead-letter queue's messages back (StartMessageMoveTask), printing progress
    /// every second until the task ends; Ctrl-C cancels the task.
    ///
    /// Exits 0 when the task completed, 1 when it failed or was cancelled by someone else,
    /// 130 after Ctrl-C cancelled it.
    Redrive(QueueRedriveArgs),
}

#[derive(Args, Debug)]
pub struct QueueTarget {
    /// A stack directory, or a stack file.
    #[arg(long, default_value = ".")]
    pub stack: PathBuf,
    /// Sign as this user of the stack (default: its only user).
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Args, Debug)]
pub struct QueueListArgs {
    #[command(flatten)]
    pub target: QueueTarget,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct QueuePeekArgs {
    /// The queue's name.
    pub queue: String,
    #[command(flatten)]
    pub target: QueueTarget,
    /// At most this many messages.
    #[arg(short = 'n', long = "count", default_value_t = 10)]
    pub count: usize,
    /// Peek even though the queue has a RedrivePolicy (each peek counts as a receive).
    #[arg(long)]
    pub force: bool,
    /// The messages as ReceiveMessage returned them, as one JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct QueueNameArgs {
    /// The queue's name.
    pub queue: String,
    #[command(flatten)]
    pub target: QueueTarget,
}

#[derive(Args, Debug)]
pub struct QueueRedriveArgs {
    /// The dead-letter queue's name.
    pub dlq: String,
    #[command(flatten)]
    pub target: QueueTarget,
    /// Move to this queue (default: back to the queues each message came from).
    #[arg(long)]
    pub to: Option<String>,
    /// At most this many messages per second (MaxNumberOfMessagesPerSecond, 1 to 500).
    #[arg(long)]
    pub rate: Option<u32>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The function's name in the stack.
    pub function: String,
    /// A stack directory, or a stack file.
    #[arg(long, default_value = ".")]
    pub stack: PathBuf,
    /// Keep printing lines as they are written, until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines newer than this (e.g. 30s, 10m, 2h; `aws logs tail`'s default is 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub since: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// The database: postgres://USER:PASSWORD@HOST:PORT/DATABASE, or mysql:// (mariadb://)
    /// for MySQL and MariaDB.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    pub target: Option<String>,
    /// A stack file (or directory) with [proxies], [databases] and [secrets].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where clients connect [default: 127.0.0.1:6432 for PostgreSQL, 127.0.0.1:6033 for
    /// MySQL].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Most server connections.
    #[arg(long, default_value_t = 20)]
    pub pool_size: usize,
    /// Pooling mode.
    #[arg(long, value_enum, default_value_t = Mode::Transaction)]
    pub mode: Mode,
    /// A users file: one "user" "password" pair per line (PgBouncer's format, plaintext).
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Serve /_spillway/metrics, /_spillway/pools and /_spillway/health here.
    #[arg(long)]
    pub metrics: Option<std::net::SocketAddr>,
    /// How long a client waits for a server connection before an error.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub borrow_timeout: std::time::Duration,
    /// Close clients idle this long.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub idle_client_timeout: std::time::Duration,
    /// Ask clients for MD5 passwords instead of SCRAM-SHA-256 (PostgreSQL).
    #[arg(long)]
    pub md5: bool,
    /// Proxy threads, each accepting clients on its own socket on the same address
    /// (SO_REUSEPORT) and sharing the connection cap. One thread serves tens of thousands of
    /// transactions a second; add one per core the proxy should use once it is busy.
    // 64: spillway_proxy::runtime::MAX_WORKERS (this crate does not link the proxy directly).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Mode {
    /// Share server connections between clients at transaction boundaries.
    Transaction,
    /// Give each client its own server connection until it leaves.
    Session,
}

#[derive(Subcommand, Debug)]
pub enum IamCommand {
    /// Decide whether a user or role may perform an action on a resource, as spillway's
    /// endpoint and proxies would, and name the deciding statement.
    ///
    /// Exits 0 when allowed, 1 when denied (explicitly or by default), 2 on bad input.
    /// Example: spillway iam simulate --principal users/app --action rds-db:connect
    ///          --resource arn:aws:rds-db:us-east-1:000000000000:dbuser:prx-.../app
    Simulate(SimulateArgs),
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// A stack directory, or a stack file.
    #[arg(long, default_value = ".")]
    pub stack: PathBuf,
    /// users/NAME or roles/NAME.
    #[arg(long)]
    pub principal: String,
    /// The action, e.g. secretsmanager:GetSecretValue.
    #[arg(long)]
    pub action: String,
    /// The resource ARN (default "*").
    #[arg(long, default_value = "*")]
    pub resource: String,
    /// A session policy (JSON text or @FILE) applied as STS AssumeRole would.
    #[arg(long)]
    pub session_policy: Option<String>,
    /// Condition keys, KEY=VALUE (repeatable), e.g. aws:SecureTransport=true.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DirArgs {
    /// A stack directory, or a stack file.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    /// A stack directory, or a stack file.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// If DIR has no spillway.toml, write the quickstart stack there without asking.
    #[arg(long)]
    pub init: bool,
    /// Rebuild functions that are Cargo packages when their sources change; new instances run
    /// the new build, running invocations finish on the old one.
    #[arg(long)]
    pub watch: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to write the stack (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

pub fn init_logging(g: &Global) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&g.log).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal; never in files, pipes or CI logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match g.log_format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
