//! `spillway loadtest`: report 004's Locust run as a built-in command.
//!
//! No maintained Rust engine fit: goose's HTML report loads its charts from a CDN (the report
//! must open offline) and its CSVs are not Locust's. So the engine is small and lives in
//! `engine.rs`; each other module has one job:
//!
//! - `tasks`: the tasks file (weighted requests, query parameters drawn from ranges);
//! - `client`: one keep-alive HTTP/1.1 connection per user;
//! - `engine`: the closed (users) and open (arrival rate) models;
//! - `stats`: HDR histograms per task, a per-second history;
//! - `sampler` + `procfs`: the stack's metrics, database servers' connections and CPU, own CPU;
//! - `display`: the live view (terminal or plain lines);
//! - `report`: Locust CSVs, the offline HTML report, JSON.

pub mod client;
pub mod display;
pub mod engine;
pub mod procfs;
pub mod report;
pub mod results;
pub mod sampler;
pub mod stats;
pub mod tasks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use engine::{Model, Plan, Wait};
pub use results::Results;
pub use tasks::TaskSet;

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error(transparent)]
    Tasks(#[from] tasks::TasksError),
    #[error(transparent)]
    Target(#[from] client::ClientError),
    #[error("--compare {0}: no task has group {1:?}")]
    UnknownGroup(String, String),
    #[error(transparent)]
    Report(#[from] report::ReportError),
}

/// Everything one run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub tasks: TaskSet,
    pub plan: Plan,
    /// GET this every second for the stack's Prometheus metrics.
    pub metrics_url: Option<String>,
    /// Database server processes to watch (by name, pid).
    pub servers: Vec<procfs::FoundServer>,
    /// Groups to put side by side (`--compare proxy,no_proxy`).
    pub compare: Vec<String>,
    pub csv_prefix: Option<String>,
    pub csv_full_history: bool,
    pub html: Option<PathBuf>,
    /// Show the live view (false with --only-summary or --json and no terminal).
    pub live: bool,
    /// Draw the live view for a terminal.
    pub tty: bool,
    /// Turns true to end the run early (Ctrl-C); reports are still written.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

fn describe(plan: &Plan) -> String {
    match &plan.model {
        Model::Closed {
            users,
            spawn_rate,
            wait,
        } => format!(
            "closed model: {users} users, spawn rate {spawn_rate}/s, wait {}..{}",
            humantime::format_duration(wait.min),
            humantime::format_duration(wait.max)
        ),
        Model::Open {
            rate,
            max_in_flight,
        } => format!(
            "open model: {rate} requests/s, at most {max_in_flight} in flight, latency from the intended send time"
        ),
    }
}

/// Runs the load, sampling and displaying every second, then writes the CSVs and HTML asked
/// for and returns the results.
pub async fn run(config: Config) -> Result<Results, LoadtestError> {
    let target = client::Target::parse(&config.host)?;
    let known = config.tasks.groups();
    for g in &config.compare {
        if !known.contains(g) {
            return Err(LoadtestError::UnknownGroup(
                config.compare.join(","),
                g.clone(),
            ));
        }
    }
    let tasks = Arc::new(config.tasks.clone());
    let meta: Vec<(String, String)> = tasks
        .tasks
        .iter()
        .map(|t| (t.name.clone(), t.method.to_string()))
        .collect();
    let recorder = Arc::new(stats::Recorder::new(&meta));
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cpu_before = procfs::own_cpu();
    let mut sampler = sampler::Sampler::new(
        config.metrics_url.clone(),
        config.servers.clone(),
        recorder.started,
    );
    let mut display =
        display::Display::new(config.tty, meta.iter().map(|(n, _)| n.clone()).collect());

    // Without a stop signal from the caller, one that never fires (its sender lives here).
    let (_never, never_rx) = tokio::sync::watch::channel(false);
    let stop = config.stop.clone().unwrap_or(never_rx);
    let mut load = tokio::spawn(engine::run(
        Arc::clone(&tasks),
        target,
        Arc::clone(&recorder),
        config.plan.clone(),
        stop,
    ));
    let mut history = Vec::new();
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = &mut load => break,
            _ = ticker.tick() => {
                let row = recorder.tick();
                let sample = sampler.sample().await;
                if config.live {
                    display.show(&row, &sample);
                }
                history.push(row);
                samples.push(sample);
            }
        }
    }
    // The last partial second.
    let row = recorder.tick();
    if row.aggregated.rps > 0.0 || history.is_empty() {
        history.push(row);
        samples.push(sampler.sample().await);
    }
    let elapsed = recorder.started.elapsed();

    let (series, all) = recorder.snapshot();
    let groups = if config.compare.is_empty() {
        known
    } else {
        config.compare.clone()
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let peak = samples
        .iter()
        .map(|s| s.generator_cpu_pct)
        .fold(0.0f64, f64::max);
    let mut failures = Vec::new();
    for s in &series {
        for (error, n) in &s.errors {
            failures.push(results::FailureRow {
                method: s.method.clone(),
                name: s.name.clone(),
                error: error.clone(),
                occurrences: *n,
            });
        }
    }
    failures.sort_by_key(|f| std::cmp::Reverse(f.occurrences));
    let results = Results {
        host: config.host.clone(),
        model: describe(&config.plan),
        started_unix_s,
        duration_s: elapsed.as_secs_f64(),
        task_info: tasks
            .tasks
            .iter()
            .map(|t| results::TaskInfo {
                name: t.name.clone(),
                method: t.method.to_string(),
                path: t.path.clone(),
                weight: t.weight,
                group: t.group.clone(),
            })
            .collect(),
        tasks: series.iter().map(|s| s.summary(elapsed)).collect(),
        aggregated: all.summary(elapsed),
        groups: results::group_summaries(&tasks, &series, &groups, elapsed),
        failures,
        history,
        samples,
        generator: results::Generator {
            cpu_seconds: procfs::own_cpu().saturating_sub(cpu_before).as_secs_f64(),
            cores,
            peak_cpu_pct: peak,
            saturated: peak > 90.0 * cores as f64,
        },
        unsent: recorder.unsent.load(std::sync::atomic::Ordering::Relaxed),
    };
    if let Some(prefix) = &config.csv_prefix {
        report::csv::write_all(&results, prefix, config.csv_full_history)?;
    }
    if let Some(path) = &config.html {
        report::write(path, &report::html::render(&results))?;
    }
    Ok(results)
}

/// A short end-of-run table (Locust prints one at the end of a headless run).
pub fn summary_table(r: &Results) -> String {
    let mut out = format!(
        "{:<8} {:<28} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}\n",
        "Type", "Name", "# reqs", "# fails", "Avg", "Med", "95%ile", "99%ile", "req/s"
    );
    for s in r.tasks.iter().chain(std::iter::once(&r.aggregated)) {
        let p = |i: usize| {
            s.percentiles_ms
                .as_ref()
                .and_then(|v| v.get(i))
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "N/A".into())
        };
        out.push_str(&format!(
            "{:<8} {:<28} {:>9} {:>8} {:>8.1} {:>8.0} {:>8} {:>8} {:>9.1}\n",
            s.method,
            s.name,
            s.requests,
            s.failures,
            s.avg_ms,
            s.median_ms,
            p(5),
            p(7),
            s.rps
        ));
    }
    out.push_str(&format!(
        "generator: {:.1} CPU s, peak {:.0}% of one core of {}{}\n",
        r.generator.cpu_seconds,
        r.generator.peak_cpu_pct,
        r.generator.cores,
        if r.generator.saturated {
            " — SATURATED"
        } else {
            ""
        }
    ));
    out
}
