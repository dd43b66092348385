//! Request statistics: per task totals (an HDR histogram of the whole run) and a per-second
//! window that becomes one history row at each tick, as Locust's stats history.
//!
//! Latencies are recorded in microseconds and reported in milliseconds, as Locust reports them.
//! One lock guards everything: a record is a few additions, far below a request's cost, and one
//! lock keeps a tick's snapshot consistent across tasks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Locust's percentile columns, in its order.
pub const PERCENTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];
/// Locust's column titles for [`PERCENTILES`].
pub const PERCENTILE_TITLES: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];

/// How one request ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Ok { bytes: u64 },
    Failed { error: String, bytes: u64 },
}

/// One series of requests (a task, a group, or everything).
#[derive(Clone)]
pub struct Series {
    pub name: String,
    pub method: String,
    pub requests: u64,
    pub failures: u64,
    pub bytes: u64,
    pub sum_us: u64,
    pub hist: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
    window_requests: u64,
    window_failures: u64,
    window: Histogram<u64>,
}

fn new_hist() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits; larger values are clamped to the top.
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl Series {
    fn new(name: &str, method: &str) -> Self {
        Self {
            name: name.into(),
            method: method.into(),
            requests: 0,
            failures: 0,
            bytes: 0,
            sum_us: 0,
            hist: new_hist(),
            errors: BTreeMap::new(),
            window_requests: 0,
            window_failures: 0,
            window: new_hist(),
        }
    }

    fn record(&mut self, us: u64, outcome: &Outcome) {
        self.requests += 1;
        self.window_requests += 1;
        self.sum_us += us;
        self.hist.saturating_record(us.max(1));
        self.window.saturating_record(us.max(1));
        match outcome {
            Outcome::Ok { bytes } => self.bytes += bytes,
            Outcome::Failed { error, bytes } => {
                self.bytes += bytes;
                self.failures += 1;
                self.window_failures += 1;
                *self.errors.entry(error.clone()).or_default() += 1;
            }
        }
    }

    /// Adds another series' totals (for group and aggregate rows).
    pub fn absorb(&mut self, other: &Series) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.bytes += other.bytes;
        self.sum_us += other.sum_us;
        let _ = self.hist.add(&other.hist);
        for (e, n) in &other.errors {
            *self.errors.entry(e.clone()).or_default() += n;
        }
    }

    pub fn summary(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ms = |us: u64| us as f64 / 1000.0;
        let some = self.requests > 0;
        Summary {
            name: self.name.clone(),
            method: self.method.clone(),
            requests: self.requests,
            failures: self.failures,
            median_ms: if some {
                ms(self.hist.value_at_quantile(0.5))
            } else {
                0.0
            },
            avg_ms: if some {
                ms(self.sum_us) / self.requests as f64
            } else {
                0.0
            },
            min_ms: if some { ms(self.hist.min()) } else { 0.0 },
            max_ms: if some { ms(self.hist.max()) } else { 0.0 },
            avg_bytes: if some {
                self.bytes as f64 / self.requests as f64
            } else {
                0.0
            },
            rps: self.requests as f64 / secs,
            fps: self.failures as f64 / secs,
            percentiles_ms: some.then(|| percentiles(&self.hist)),
        }
    }
}

fn percentiles(h: &Histogram<u64>) -> Vec<f64> {
    PERCENTILES
        .iter()
        .map(|q| h.value_at_quantile(*q) as f64 / 1000.0)
        .collect()
}

/// A series' totals at the end (or at one tick).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub method: String,
    pub requests: u64,
    pub failures: u64,
    pub median_ms: f64,
    pub avg_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub avg_bytes: f64,
    pub rps: f64,
    pub fps: f64,
    /// At [`PERCENTILES`]; absent before the first request.
    pub percentiles_ms: Option<Vec<f64>>,
}

/// One series during one second.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub rps: f64,
    pub fps: f64,
    /// The window's percentiles at [`PERCENTILES`]; absent when the second saw no requests.
    pub percentiles_ms: Option<Vec<f64>>,
    /// The run's totals so far.
    pub total: Summary,
}

/// One tick: every task and the aggregate.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryRow {
    pub elapsed_s: f64,
    pub unix_s: u64,
    pub users: u64,
    pub tasks: Vec<Point>,
    pub aggregated: Point,
}

/// Where engines record and the collector ticks.
pub struct Recorder {
    inner: Mutex<Inner>,
    /// Running users (closed model) or requests in flight (open model).
    pub users: AtomicU64,
    /// Open model: arrivals that were due but not sent before the run ended.
    pub unsent: AtomicU64,
    pub started: Instant,
}

struct Inner {
    tasks: Vec<Series>,
    all: Series,
    last_tick: Instant,
}

impl Recorder {
    pub fn new(tasks: &[(String, String)]) -> Self {
        let now = Instant::now();
        Self {
            inner: Mutex::new(Inner {
                tasks: tasks.iter().map(|(n, m)| Series::new(n, m)).collect(),
                all: Series::new("Aggregated", ""),
                last_tick: now,
            }),
            users: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            started: now,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, task: usize, latency: Duration, outcome: Outcome) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let mut inner = self.lock();
        if let Some(t) = inner.tasks.get_mut(task) {
            t.record(us, &outcome);
        }
        inner.all.record(us, &outcome);
    }

    /// Closes the current second's window and returns its row.
    pub fn tick(&self) -> HistoryRow {
        let now = Instant::now();
        let elapsed = now - self.started;
        let users = self.users.load(Ordering::Relaxed);
        let mut inner = self.lock();
        let dt = (now - inner.last_tick).as_secs_f64().max(1e-9);
        inner.last_tick = now;
        let mut point = |s: &mut Series| {
            let p = Point {
                rps: s.window_requests as f64 / dt,
                fps: s.window_failures as f64 / dt,
                percentiles_ms: (s.window_requests > 0).then(|| percentiles(&s.window)),
                total: s.summary(elapsed),
            };
            s.window_requests = 0;
            s.window_failures = 0;
            s.window.reset();
            p
        };
        let Inner { tasks, all, .. } = &mut *inner;
        let tasks = tasks.iter_mut().map(&mut point).collect();
        let aggregated = point(all);
        HistoryRow {
            elapsed_s: elapsed.as_secs_f64(),
            unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            users,
            tasks,
            aggregated,
        }
    }

    /// Copies of the per-task series and the aggregate.
    pub fn snapshot(&self) -> (Vec<Series>, Series) {
        let inner = self.lock();
        (inner.tasks.clone(), inner.all.clone())
    }
}
