//! What the host is told about each function and about itself. The supervisor builds these from
//! the stack file; tests and benchmarks build them directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How a function's code is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// An executable `bootstrap` (or a Cargo package built into one) that speaks the Runtime API.
    Provided,
    /// `file.function` loaded by spillway's Node.js bootstrap.
    Nodejs,
    /// `module.function` loaded by spillway's Python bootstrap.
    Python,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provided => "provided",
            Self::Nodejs => "nodejs",
            Self::Python => "python",
        }
    }
}

/// Lambda's default account concurrency, used as a function's limit when it reserves none.
pub const UNRESERVED_CONCURRENCY: u32 = 1000;

/// One function.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    pub name: String,
    pub arn: String,
    pub runtime: Runtime,
    /// The code: a directory with a `bootstrap` or handler files, a Cargo package, or (for
    /// `provided`) an executable file. Absolute.
    pub code: PathBuf,
    /// `file.function` / `module.function` (nodejs, python).
    pub handler: Option<String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Most instances at once; `None` means [`UNRESERVED_CONCURRENCY`].
    pub reserved_concurrency: Option<u32>,
    /// The stack's `environment`, references already resolved.
    pub environment: Vec<(String, String)>,
    /// How long an idle instance is kept.
    pub keep_warm: Duration,
    /// The role whose temporary credentials the function receives.
    pub role: String,
    /// Retries of a failed asynchronous invocation (Lambda's MaximumRetryAttempts, 0-2).
    pub maximum_retry_attempts: u32,
    /// The queue failed asynchronous invocations go to (Lambda's OnFailure destination).
    pub on_failure: Option<String>,
}

impl FunctionSpec {
    pub fn concurrency(&self) -> u32 {
        self.reserved_concurrency.unwrap_or(UNRESERVED_CONCURRENCY)
    }

    /// The spec with its paths resolved (`..` and symlinks): an instance runs in a mount
    /// namespace that shows only the resolved paths bound back into it, so a code path such
    /// as `code = "../api"` in a stack under /tmp would not resolve inside it. The code and
    /// the module directories the stack names (`NODE_PATH`, `PYTHONPATH`) are resolved; a
    /// path that does not exist yet is kept as given.
    pub fn resolved(mut self) -> FunctionSpec {
        if let Ok(code) = std::fs::canonicalize(&self.code) {
            self.code = code;
        }
        for (k, v) in &mut self.environment {
            if k == "NODE_PATH" || k == "PYTHONPATH" {
                let resolved = std::env::split_paths(v)
                    .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
                    .collect::<Vec<_>>();
                if let Some(joined) = std::env::join_paths(resolved)
                    .ok()
                    .and_then(|j| j.into_string().ok())
                {
                    *v = joined;
                }
            }
        }
        self
    }
}

/// Temporary credentials handed to an instance (Lambda's execution-role session).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Unix seconds.
    pub expires: i64,
}

/// Where instances get their credentials (the STS service; kept behind a trait so this crate
/// does not depend on the endpoint).
pub trait CredentialSource: Send + Sync {
    fn issue(&self, role: &str, function: &str) -> Option<Credentials>;
}

/// Where asynchronous invocations that failed every attempt go when their function names an
/// on-failure queue (Lambda's OnFailure destination). The supervisor implements it over the
/// queue service; the host knows nothing of queues.
pub trait FailureDestination: Send + Sync {
    /// Sends `record` (Lambda's destination record, JSON) to `queue`. `Ok` only once the queue
    /// has durably accepted it: the host forgets the event then, not before.
    fn deliver<'a>(
        &'a self,
        queue: &'a str,
        record: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
}

/// The host's own settings.
#[derive(Clone)]
pub struct HostConfig {
    pub region: String,
    /// Logs, the shipped runtimes and the asynchronous-event journal live here.
    pub state_dir: PathBuf,
    /// `AWS_ENDPOINT_URL` for the functions (spillway's AWS endpoint).
    pub endpoint_url: Option<String>,
    pub credentials: Option<Arc<dyn CredentialSource>>,
    /// Delivers failed asynchronous invocations to on-failure queues; without it (or when it
    /// fails) they are recorded under `functions/failures/`.
    pub failure_destination: Option<Arc<dyn FailureDestination>>,
    /// Waits before the retries of a failed asynchronous invocation. Lambda waits one minute,
    /// then two; tests shorten them.
    pub retry_delays: [Duration; 2],
    /// Lambda's Init phase limit.
    pub init_limit: Duration,
    /// Build Cargo packages in release mode (what Lambda runs; tests may use debug builds).
    pub release_builds: bool,
}

impl HostConfig {
    pub fn new(region: &str, state_dir: PathBuf) -> Self {
        Self {
            region: region.to_owned(),
            state_dir,
            endpoint_url: None,
            credentials: None,
            failure_destination: None,
            retry_delays: [Duration::from_secs(60), Duration::from_secs(120)],
            init_limit: Duration::from_secs(10),
            release_builds: true,
        }
    }
}
