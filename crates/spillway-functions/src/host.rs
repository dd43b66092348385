//! The function host: for each function a set of warm instances, a concurrency limit, and the
//! invoke path (acquire an instance or throttle, deliver the event through the Runtime API,
//! wait for the answer, a crash or the timeout, log START/END/REPORT).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot, watch};

use crate::cgroup::{Cgroup, Cgroups};
use crate::error::{FunctionsError, InvokeError};
use crate::events::EventJournal;
use crate::instance::{Exit, Instance, SpawnContext};
use crate::invoke::{
    FunctionError, InvokeOutcome, InvokeRequest, MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD,
};
use crate::logs::{InstanceLog, LogSink};
use crate::package::{self, Launch};
use crate::runtime_api::{Delivery, Phase, Reply, error_document};
use crate::sandbox::Isolation;
use crate::spec::{FunctionSpec, HostConfig};

/// Every instance the host started and has not seen exit (its pid and its cgroup), so shutdown
/// can leave no process behind.
#[derive(Default)]
pub(crate) struct LivePids(Mutex<HashMap<u32, Option<Arc<Cgroup>>>>);

impl LivePids {
    pub fn add(&self, pid: u32, cgroup: Option<Arc<Cgroup>>) {
        if let Ok(mut s) = self.0.lock() {
            s.insert(pid, cgroup);
        }
    }
    pub fn remove(&self, pid: u32) {
        if let Ok(mut s) = self.0.lock() {
            s.remove(&pid);
        }
    }
    fn kill_all(&self) {
        let live: Vec<(u32, Option<Arc<Cgroup>>)> = self
            .0
            .lock()
            .map(|s| s.iter().map(|(p, g)| (*p, g.clone())).collect())
            .unwrap_or_default();
        for (pid, group) in live {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            if let Some(g) = group {
                g.kill();
            }
        }
    }
    fn count(&self) -> usize {
        self.0.lock().map(|s| s.len()).unwrap_or(0)
    }
}

pub(crate) struct HostShared {
    pub config: HostConfig,
    cgroups: Cgroups,
    isolation: Isolation,
    pub live: Arc<LivePids>,
    runtimes: PathBuf,
    closing: AtomicBool,
}

impl HostShared {
    /// What runs `spec`, built if it is a Cargo package, with the sandbox its instances get.
    async fn prepare(&self, spec: &FunctionSpec) -> Result<Launch, FunctionsError> {
        let launch = package::prepare(spec, &self.runtimes, self.config.release_builds).await?;
        package::sandboxed(launch, spec, &self.isolation, &self.config.state_dir)
    }
}

/// Counters named after Lambda's CloudWatch metrics.
#[derive(Default)]
pub struct FunctionMetrics {
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub throttles: AtomicU64,
    pub cold_starts: AtomicU64,
    pub timeouts: AtomicU64,
    /// Sum of durations, microseconds.
    pub duration_us: AtomicU64,
}

/// One function: its spec, how to launch it, and its instances.
pub struct Function {
    pub spec: FunctionSpec,
    launch: RwLock<Arc<Launch>>,
    generation: AtomicU64,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Instance>>,
    logs: Arc<LogSink>,
    shared: Arc<HostShared>,
    pub metrics: FunctionMetrics,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A request id in Lambda's shape (a random UUID).
pub fn new_request_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        8 + (r >> 60 & 3),
        &h[17..20],
        &h[20..32]
    )
}

/// An X-Ray trace header: `Root=1-<epoch hex>-<96 random bits>;Parent=<64 bits>;Sampled=0`.
fn trace_id() -> String {
    let secs = now_ms() / 1000;
    let root: u128 = rand::random();
    let parent: u64 = rand::random();
    format!(
        "Root=1-{secs:08x}-{:024x};Parent={parent:016x};Sampled=0",
        root >> 32
    )
}

/// Lambda's log stream names: `YYYY/MM/DD/[$LATEST]<32 hex>`.
fn stream_name() -> String {
    let d = spillway_identity::time::format_amz_date(spillway_identity::time::now());
    let r: u128 = rand::random();
    format!("{}/{}/{}/[$LATEST]{r:032x}", &d[0..4], &d[4..6], &d[6..8])
}

/// Builds a failed outcome: (error type, message, the instance's log, keep the instance).
type FailWith<'a> = dyn Fn(&str, String, &InstanceLog, bool) -> (InvokeOutcome, bool) + 'a;

/// A Prometheus family: name, type, and how to read it off a function.
type MetricFamily = (&'static str, &'static str, fn(&Function) -> u64);

/// What became of an event handed to an instance.
enum Ran {
    /// It ran (or failed); the outcome, and whether the instance may serve again.
    Done(InvokeOutcome, bool),
    /// A warm instance exited before it took the event.
    NotTaken,
}

/// A fresh instance reports its exit as an error instead of `NotTaken`; this is never built.
fn unreachable_outcome(instance: &Instance) -> (InvokeOutcome, bool) {
    tracing::error!(pid = instance.pid, "a new instance was reported as warm");
    (
        InvokeOutcome {
            request_id: String::new(),
            payload: error_document("Runtime.ExitError", b"the instance exited"),
            error: Some(FunctionError::Unhandled),
            error_type: Some("Runtime.ExitError".into()),
            log_tail: String::new(),
            cold: true,
        },
        false,
    )
}

/// How an invocation ended without an answer from the runtime.
enum Ended {
    Exit(Exit),
    Timeout,
}

async fn exited(mut rx: watch::Receiver<Option<Exit>>) -> Exit {
    loop {
        if let Some(e) = rx.borrow_and_update().clone() {
            return e;
        }
        if rx.changed().await.is_err() {
            return Exit {
                description: "the instance was lost".into(),
                killed: false,
            };
        }
    }
}

async fn init_failure(mut rx: watch::Receiver<Phase>) -> (String, Bytes) {
    loop {
        if let Phase::InitFailed { error_type, body } = &*rx.borrow_and_update() {
            return (error_type.clone(), body.clone());
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Function {
    fn new(spec: FunctionSpec, launch: Launch, shared: Arc<HostShared>) -> Self {
        let logs = LogSink::open(&shared.config.state_dir, &spec.name);
        Self {
            permits: Arc::new(Semaphore::new(spec.concurrency() as usize)),
            spec,
            launch: RwLock::new(Arc::new(launch)),
            generation: AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
            logs,
            shared,
            metrics: FunctionMetrics::default(),
        }
    }

    /// The function's log file.
    pub fn log_path(&self) -> &Path {
        self.logs.path()
    }

    /// Instances kept warm right now.
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// Invocations running right now.
    pub fn concurrent_executions(&self) -> usize {
        (self.spec.concurrency() as usize).saturating_sub(self.permits.available_permits())
    }

    /// Runs one invocation. `wait` queues for a free instance (asynchronous callers); without
    /// it a function at its concurrency limit throttles, as Lambda does for synchronous calls.
    pub async fn invoke(
        &self,
        req: InvokeRequest,
        wait: bool,
    ) -> Result<InvokeOutcome, InvokeError> {
        if self.shared.closing.load(Ordering::Relaxed) {
            return Err(InvokeError::ShuttingDown);
        }
        let reserved = self.spec.reserved_concurrency.is_some();
        let permit: OwnedSemaphorePermit = if wait && self.spec.concurrency() > 0 {
            Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| InvokeError::ShuttingDown)?
        } else {
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(p) => p,
                Err(TryAcquireError::Closed) => return Err(InvokeError::ShuttingDown),
                Err(TryAcquireError::NoPermits) => {
                    self.metrics.throttles.fetch_add(1, Ordering::Relaxed);
                    return Err(InvokeError::Throttled { reserved });
                }
            }
        };
        self.metrics.invocations.fetch_add(1, Ordering::Relaxed);
        let request_id = req.request_id.clone().unwrap_or_else(new_request_id);
        let generation = self.generation.load(Ordering::Acquire);
        let (mut instance, mut cold) = match self.take_idle(generation) {
            Some(i) => (i, false),
            None => match self.spawn(generation).await {
                Ok(i) => (i, true),
                Err(detail) => {
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    return Ok(self.spawn_failure(&request_id, &detail));
                }
            },
        };
        let (mut outcome, keep) = match self
            .run(&mut instance, req.clone(), request_id.clone())
            .await
        {
            Ran::Done(outcome, keep) => (outcome, keep),
            // A warm instance that died after its last answer (a runtime that exits after
            // reporting an error does) never saw this event: run it on a new instance.
            Ran::NotTaken => {
                drop(instance);
                cold = true;
                instance = match self.spawn(generation).await {
                    Ok(i) => i,
                    Err(detail) => {
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        return Ok(self.spawn_failure(&request_id, &detail));
                    }
                };
                match self.run(&mut instance, req, request_id).await {
                    Ran::Done(outcome, keep) => (outcome, keep),
                    Ran::NotTaken => unreachable_outcome(&instance),
                }
            }
        };
        if cold {
            self.metrics.cold_starts.fetch_add(1, Ordering::Relaxed);
        }
        outcome.cold = cold;
        if outcome.is_error() {
            self.metrics.errors.fetch_add(1, Ordering::Relaxed);
        }
        if keep && !instance.exited() && !self.shared.closing.load(Ordering::Relaxed) {
            instance.last_used = Instant::now();
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(instance);
            }
        }
        drop(permit);
        Ok(outcome)
    }

    /// An idle instance of the current build that will outlive this invocation's timeout;
    /// the most recently used first (it is the warmest).
    fn take_idle(&self, generation: u64) -> Option<Instance> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(i) = idle.pop() {
            if self.usable(&i, generation) {
                return Some(i);
            }
        }
        None
    }

    fn usable(&self, i: &Instance, generation: u64) -> bool {
        let margin = self.spec.timeout.as_secs() as i64 + 60;
        !i.exited()
            && i.generation == generation
            && i.expires
                .is_none_or(|e| e - spillway_identity::time::now() > margin)
    }

    async fn spawn(&self, generation: u64) -> Result<Instance, String> {
        let log = InstanceLog::new(Arc::clone(&self.logs), stream_name());
        let credentials = self
            .shared
            .config
            .credentials
            .as_ref()
            .and_then(|c| c.issue(&self.spec.role, &self.spec.name));
        let cgroup = Some(&self.shared.cgroups).and_then(|g| {
            g.make(
                &format!("{}-{:x}", self.spec.name, rand::random::<u64>()),
                self.spec.memory_mb,
            )
        });
        let launch = self
            .launch
            .read()
            .map(|l| Arc::clone(&l))
            .map_err(|_| "the function's launch settings are unavailable".to_owned())?;
        Instance::spawn(
            &self.spec,
            &launch,
            SpawnContext {
                region: &self.shared.config.region,
                endpoint_url: self.shared.config.endpoint_url.as_deref(),
                credentials,
                cgroup,
                log,
                generation,
                live: Arc::clone(&self.shared.live),
            },
        )
        .await
    }

    fn spawn_failure(&self, request_id: &str, detail: &str) -> InvokeOutcome {
        let message = format!("RequestId: {request_id} Error: {detail}");
        let stream = stream_name();
        self.logs.write(&stream, &message, false);
        self.logs.write(&stream, "Runtime.InvalidEntrypoint", false);
        InvokeOutcome {
            request_id: request_id.to_owned(),
            payload: error_document("Runtime.InvalidEntrypoint", message.as_bytes()),
            error: Some(FunctionError::Unhandled),
            error_type: Some("Runtime.InvalidEntrypoint".into()),
            log_tail: format!("{message}\nRuntime.InvalidEntrypoint\n"),
            cold: true,
        }
    }

    /// Delivers the event to `instance` and waits for its answer. Returns the outcome and
    /// whether the instance may serve again.
    async fn run(&self, instance: &mut Instance, req: InvokeRequest, request_id: String) -> Ran {
        let timeout = self.spec.timeout;
        let (delivered_tx, delivered_rx) = oneshot::channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        let fail = |error_type: &str, message: String, log: &InstanceLog, keep: bool| {
            log.line(&message);
            log.line(error_type);
            let outcome = InvokeOutcome {
                request_id: request_id.clone(),
                payload: error_document(error_type, message.as_bytes()),
                error: Some(FunctionError::Unhandled),
                error_type: Some(error_type.to_owned()),
                log_tail: String::new(),
                cold: false,
            };
            (outcome, keep)
        };
        let delivery = Delivery {
            request_id: request_id.clone(),
            // Lambda hands a function `{}` when it was invoked without a payload.
            payload: if req.payload.is_empty() {
                Bytes::from_static(b"{}")
            } else {
                req.payload
            },
            client_context: req.client_context,
            cognito_identity: req.cognito_identity,
            trace_id: trace_id(),
            timeout,
            delivered: delivered_tx,
            reply: reply_tx,
        };
        if instance.deliveries.try_send(delivery).is_err() {
            let mut r = fail(
                "Runtime.ExitError",
                format!("RequestId: {request_id} Error: the instance stopped taking events"),
                &instance.log,
                false,
            );
            r.0.log_tail = instance.log.end();
            return Ran::Done(r.0, r.1);
        }
        instance.log.begin();
        // Phase 1: the runtime takes the event. A new instance has the Init phase's limit to
        // get there; a warm one, which should be waiting in `next` already, the timeout.
        let budget = if instance.init.is_none() {
            self.shared.config.init_limit
        } else {
            timeout
        };
        let taken = tokio::select! {
            biased;
            d = delivered_rx => d.ok(),
            (error_type, body) = init_failure(instance.api.phase.subscribe()) => {
                instance.log.platform(&format!(
                    "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}",
                    ms(instance.spawned.elapsed())
                ));
                let outcome = InvokeOutcome {
                    request_id: request_id.clone(),
                    payload: body,
                    error: Some(FunctionError::Unhandled),
                    error_type: Some(error_type),
                    log_tail: instance.log.end(),
                    cold: false,
                };
                return Ran::Done(outcome, false);
            }
            e = exited(instance.exit.clone()) => {
                if instance.init.is_some() {
                    instance.log.end();
                    return Ran::NotTaken;
                }
                let mut r = self.exit_outcome(instance, &request_id, &e, &fail);
                r.0.log_tail = instance.log.end();
                return Ran::Done(r.0, r.1);
            }
            _ = tokio::time::sleep(budget) => None,
        };
        if taken.is_none() {
            let phase = if instance.init.is_none() {
                "init"
            } else {
                "invoke"
            };
            instance.log.platform(&format!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: {phase}\tStatus: timeout",
                ms(budget)
            ));
            let mut r = fail(
                "Sandbox.Timedout",
                format!(
                    "RequestId: {request_id} Error: the runtime did not ask for the event within {:.2} seconds",
                    budget.as_secs_f64()
                ),
                &instance.log,
                false,
            );
            self.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
            r.0.log_tail = instance.log.end();
            return Ran::Done(r.0, r.1);
        }
        let delivered_at = Instant::now();
        if instance.init.is_none() {
            instance.init = Some(delivered_at - instance.spawned);
        }
        // Phase 2: the answer, a crash, or the timeout.
        let answer = tokio::select! {
            biased;
            r = reply_rx => Ok(r),
            e = exited(instance.exit.clone()) => Err(Ended::Exit(e)),
            _ = tokio::time::sleep(timeout) => Err(Ended::Timeout),
        };
        let duration = delivered_at.elapsed();
        self.metrics
            .duration_us
            .fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
        let (mut outcome, keep) = match answer {
            Ok(Ok(Reply::Response(payload))) => (
                InvokeOutcome {
                    request_id: request_id.clone(),
                    payload,
                    error: None,
                    error_type: None,
                    log_tail: String::new(),
                    cold: false,
                },
                true,
            ),
            Ok(Ok(Reply::Error { error_type, body })) => (
                InvokeOutcome {
                    request_id: request_id.clone(),
                    payload: body,
                    error: Some(FunctionError::Unhandled),
                    error_type: Some(error_type),
                    log_tail: String::new(),
                    cold: false,
                },
                true,
            ),
            Ok(Ok(Reply::TooLarge { limit })) => fail(
                "Function.ResponseSizeTooLarge",
                format!(
                    "Response payload size exceeded maximum allowed payload size ({limit} bytes)."
                ),
                &instance.log,
                true,
            ),
            Ok(Err(_)) => fail(
                "Runtime.InvalidResponse",
                format!(
                    "RequestId: {request_id} Error: the runtime asked for the next event without answering this one"
                ),
                &instance.log,
                true,
            ),
            Err(Ended::Exit(e)) => self.exit_outcome(instance, &request_id, &e, &fail),
            Err(Ended::Timeout) => {
                self.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                let secs = timeout.as_secs_f64();
                instance.log.line(&format!(
                    "{} {request_id} Task timed out after {secs:.2} seconds",
                    crate::logs::timestamp()
                ));
                // Kill now, every process of it, so the instance cannot answer late or keep
                // working (a child it started with `setsid` included).
                instance.kill();
                let message = format!(
                    "RequestId: {request_id} Error: Task timed out after {secs:.2} seconds"
                );
                (
                    InvokeOutcome {
                        request_id: request_id.clone(),
                        payload: error_document("Sandbox.Timedout", message.as_bytes()),
                        error: Some(FunctionError::Unhandled),
                        error_type: Some("Sandbox.Timedout".into()),
                        log_tail: String::new(),
                        cold: false,
                    },
                    false,
                )
            }
        };
        // What the function printed before it answered belongs to this invocation.
        instance.drain_output().await;
        instance
            .log
            .platform(&format!("END RequestId: {request_id}"));
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            ms(duration),
            duration.as_micros().div_ceil(1000).max(1),
            self.spec.memory_mb,
            instance.max_memory_mb(),
        );
        if !instance.init_reported
            && let Some(init) = instance.init
        {
            report.push_str(&format!("Init Duration: {:.2} ms\t", ms(init)));
            instance.init_reported = true;
        }
        instance.log.platform(&report);
        outcome.log_tail = instance.log.end();
        Ran::Done(outcome, keep)
    }

    fn exit_outcome(
        &self,
        instance: &Instance,
        request_id: &str,
        e: &Exit,
        fail: &FailWith<'_>,
    ) -> (InvokeOutcome, bool) {
        let oom = e.killed && instance.cgroup.as_ref().is_some_and(|c| c.hit_limit());
        let error_type = if oom {
            "Runtime.OutOfMemory"
        } else {
            "Runtime.ExitError"
        };
        let message = if e.description == "exit status 0" {
            format!("RequestId: {request_id} Error: Runtime exited without providing a reason")
        } else {
            format!(
                "RequestId: {request_id} Error: Runtime exited with error: {}",
                e.description
            )
        };
        fail(error_type, message, &instance.log, false)
    }

    /// Drops idle instances that are past their keep-warm period, of an old build, or whose
    /// credentials are about to expire.
    fn reap(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        let keep_warm = self.spec.keep_warm;
        let retired: Vec<Instance> = match self.idle.lock() {
            Ok(mut idle) => {
                let (keep, retire): (Vec<_>, Vec<_>) = idle
                    .drain(..)
                    .partition(|i| self.usable(i, generation) && i.last_used.elapsed() < keep_warm);
                *idle = keep;
                retire
            }
            Err(_) => Vec::new(),
        };
        if !retired.is_empty() {
            tracing::debug!(function = %self.spec.name, count = retired.len(), "idle instances reaped");
        }
    }

    /// Drops every warm instance, so the next call starts cold (benchmarks measure cold
    /// starts with it).
    pub fn retire_idle(&self) {
        let retired: Vec<Instance> = self
            .idle
            .lock()
            .map(|mut i| i.drain(..).collect())
            .unwrap_or_default();
        drop(retired);
    }

    /// Builds the code again (under `--watch`) and retires instances of the old build.
    pub async fn rebuild(&self) -> Result<(), FunctionsError> {
        let launch = self.shared.prepare(&self.spec).await?;
        if let Ok(mut l) = self.launch.write() {
            *l = Arc::new(launch);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.reap();
        tracing::info!(function = %self.spec.name, "rebuilt; new instances run the new build");
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every function of a stack.
pub struct FunctionHost {
    functions: BTreeMap<String, Arc<Function>>,
    shared: Arc<HostShared>,
    journal: Arc<EventJournal>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl FunctionHost {
    /// Prepares every function (building Cargo packages), then starts the idle reaper and
    /// re-queues asynchronous events a previous run accepted but did not finish.
    pub async fn start(
        config: HostConfig,
        specs: Vec<FunctionSpec>,
    ) -> Result<Arc<Self>, FunctionsError> {
        let runtimes = package::install_runtimes(&config.state_dir)?;
        let cgroups = Cgroups::detect();
        let isolation = Isolation::detect();
        if !specs.is_empty() {
            if !cgroups.limits_memory() {
                tracing::info!(
                    "no cgroup for function memory limits here: memory is measured, not enforced"
                );
            }
            if !cgroups.limits_tasks() {
                tracing::info!(
                    "no pids cgroup here: a function's processes are not limited to 1,024, and a child that leaves its process group may outlive it"
                );
            }
            tracing::info!("{}", isolation.describe());
        }
        let journal = Arc::new(EventJournal::open(&config.state_dir)?);
        let shared = Arc::new(HostShared {
            config,
            cgroups,
            isolation,
            live: Arc::new(LivePids::default()),
            runtimes,
            closing: AtomicBool::new(false),
        });
        let mut functions = BTreeMap::new();
        for spec in specs {
            let spec = spec.resolved();
            let launch = shared.prepare(&spec).await?;
            functions.insert(
                spec.name.clone(),
                Arc::new(Function::new(spec, launch, Arc::clone(&shared))),
            );
        }
        let host = Arc::new(Self {
            functions,
            shared,
            journal,
            tasks: Mutex::new(Vec::new()),
        });
        let reaper = {
            let fns: Vec<Arc<Function>> = host.functions.values().cloned().collect();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    for f in &fns {
                        f.reap();
                    }
                }
            })
        };
        host.push_task(reaper);
        for (function, id, payload) in host.journal.pending() {
            if host.functions.contains_key(&function) {
                tracing::info!(function, request_id = %id, "resuming an asynchronous invocation accepted before a restart");
                host.run_event(&function, id, payload, 0);
            }
        }
        Ok(host)
    }

    fn push_task(&self, t: tokio::task::JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(t);
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Function>> {
        self.functions.get(name)
    }

    pub fn functions(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.functions.values()
    }

    /// A synchronous invocation (`RequestResponse`): the internal path the Invoke API, the
    /// gateway and event sources share.
    pub async fn invoke(
        &self,
        name: &str,
        req: InvokeRequest,
    ) -> Result<InvokeOutcome, InvokeError> {
        let f = self
            .functions
            .get(name)
            .ok_or_else(|| InvokeError::NotFound(name.to_owned()))?;
        if req.payload.len() > MAX_SYNC_PAYLOAD {
            return Err(InvokeError::TooLarge(format!(
                "Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"
            )));
        }
        check_json(&req.payload)?;
        // The invocation runs on its own task: a caller that goes away (a client that hangs
        // up) does not kill a function part-way through its work, as on Lambda.
        let f = Arc::clone(f);
        tokio::spawn(async move { f.invoke(req, false).await })
            .await
            .map_err(|e| InvokeError::Internal(format!("the invocation task failed: {e}")))?
    }

    /// An asynchronous invocation (`Event`): written to the journal before it is acknowledged,
    /// run when an instance is free, retried `maximum_retry_attempts` times after errors, and
    /// sent to the function's on-failure queue if every attempt failed (recorded under
    /// `functions/failures/` when it has none, or the queue refuses). Returns the request id.
    pub async fn invoke_async(&self, name: &str, payload: Bytes) -> Result<String, InvokeError> {
        if !self.functions.contains_key(name) {
            return Err(InvokeError::NotFound(name.to_owned()));
        }
        if payload.len() > MAX_ASYNC_PAYLOAD {
            return Err(InvokeError::TooLarge(format!(
                "Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the InvokeFunction operation"
            )));
        }
        check_json(&payload)?;
        if self.shared.closing.load(Ordering::Relaxed) {
            return Err(InvokeError::ShuttingDown);
        }
        let id = new_request_id();
        // The write and its fsyncs block; they run off the async workers.
        let (journal, function, event_id, event) = (
            Arc::clone(&self.journal),
            name.to_owned(),
            id.clone(),
            payload.clone(),
        );
        tokio::task::spawn_blocking(move || journal.accept(&function, &event_id, &event))
            .await
            .map_err(|e| InvokeError::Internal(format!("the journal task failed: {e}")))?
            .map_err(|e| InvokeError::Internal(format!("the event could not be stored: {e}")))?;
        self.run_event(name, id.clone(), payload, 0);
        Ok(id)
    }

    fn run_event(&self, name: &str, id: String, payload: Bytes, first_attempt: u32) {
        let Some(f) = self.functions.get(name).cloned() else {
            return;
        };
        let journal = Arc::clone(&self.journal);
        let destination = self.shared.config.failure_destination.clone();
        let delays = self.shared.config.retry_delays;
        let task = tokio::spawn(async move {
            let attempts = f.spec.maximum_retry_attempts.min(2) + 1;
            let mut last: Option<InvokeOutcome> = None;
            for attempt in first_attempt..attempts {
                if attempt > 0 {
                    tokio::time::sleep(delays[(attempt as usize - 1).min(1)]).await;
                }
                let req = InvokeRequest {
                    payload: payload.clone(),
                    request_id: Some(id.clone()),
                    ..InvokeRequest::default()
                };
                match f.invoke(req, true).await {
                    Ok(o) if !o.is_error() => {
                        journal.done(&f.spec.name, &id);
                        return;
                    }
                    Ok(o) => last = Some(o),
                    // Shutting down: the journal keeps the event for the next start.
                    Err(InvokeError::ShuttingDown) => return,
                    Err(e) => {
                        tracing::info!(function = %f.spec.name, request_id = %id, "asynchronous attempt refused: {e}");
                    }
                }
            }
            let record =
                EventJournal::failure_record(&f.spec, &id, &payload, last.as_ref(), attempts);
            let why = match (&f.spec.on_failure, &destination) {
                (Some(queue), Some(destination)) => {
                    match destination.deliver(queue, record.to_string()).await {
                        Ok(()) => {
                            tracing::warn!(function = %f.spec.name, request_id = %id, queue = %queue, "an asynchronous invocation failed every attempt; sent to its on-failure queue");
                            journal.done(&f.spec.name, &id);
                            return;
                        }
                        // The event is not lost: the file keeps it, and the log says why.
                        Err(e) => format!(" because its on-failure queue {queue} refused it: {e}"),
                    }
                }
                (Some(queue), None) => format!(" (no queue service to deliver to {queue})"),
                (None, _) => String::new(),
            };
            journal.record_failure(&f.spec, &id, &record, &why);
            journal.done(&f.spec.name, &id);
        });
        self.push_task(task);
    }

    /// Prometheus text for every function.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let families: [MetricFamily; 6] = [
            ("spillway_function_invocations_total", "counter", |f| {
                f.metrics.invocations.load(Ordering::Relaxed)
            }),
            ("spillway_function_errors_total", "counter", |f| {
                f.metrics.errors.load(Ordering::Relaxed)
            }),
            ("spillway_function_throttles_total", "counter", |f| {
                f.metrics.throttles.load(Ordering::Relaxed)
            }),
            ("spillway_function_cold_starts_total", "counter", |f| {
                f.metrics.cold_starts.load(Ordering::Relaxed)
            }),
            ("spillway_function_concurrent_executions", "gauge", |f| {
                f.concurrent_executions() as u64
            }),
            ("spillway_function_idle_instances", "gauge", |f| {
                f.idle_instances() as u64
            }),
        ];
        for (name, kind, get) in families {
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            for f in self.functions.values() {
                out.push_str(&format!(
                    "{name}{{function=\"{}\"}} {}\n",
                    f.spec.name,
                    get(f)
                ));
            }
        }
        out
    }

    /// Rebuilds Cargo-package functions whose sources change (`spillway up --watch`).
    pub fn watch(self: &Arc<Self>) {
        for f in self.functions.values() {
            if f.spec.runtime != crate::spec::Runtime::Provided
                || !package::is_cargo_package(&f.spec.code)
            {
                continue;
            }
            let f = Arc::clone(f);
            // Taken now, not in the task, so an edit made right after this call is a change.
            let mut seen = crate::watch::fingerprint(&f.spec.code);
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let now = crate::watch::fingerprint(&f.spec.code);
                    if now != seen {
                        seen = now;
                        if let Err(e) = f.rebuild().await {
                            tracing::warn!("{e}; instances keep running the previous build");
                        }
                    }
                }
            });
            self.push_task(task);
        }
    }

    /// Stops taking invocations and kills every instance. Asynchronous events not yet done
    /// stay in the journal for the next start.
    pub async fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        for f in self.functions.values() {
            f.permits.close();
            if let Ok(mut idle) = f.idle.lock() {
                idle.clear();
            }
        }
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
        self.shared.live.kill_all();
        for _ in 0..100 {
            if self.shared.live.count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn check_json(payload: &[u8]) -> Result<(), InvokeError> {
    if payload.is_empty() {
        return Ok(());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(payload)
        .map(|_| ())
        .map_err(|e| InvokeError::InvalidContent(e.to_string()))
}
