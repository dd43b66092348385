//! Once a second, what the stack is doing: the proxies' and functions' metrics from
//! `/_spillway/metrics` (Prometheus text), each database server's connections and CPU from
//! /proc, and the generator's own CPU, so a saturated generator is visible in the report.
//!
//! Counters become per-second rates and the borrow-latency histogram a per-second mean from
//! the differences between two readings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::procfs::{self, FoundServer};

/// The metric families we chart, summed over their labels (every proxy, target, function).
const CLIENT_CONNECTIONS: &str = "spillway_proxy_ClientConnections";
const DATABASE_CONNECTIONS: &str = "spillway_proxy_DatabaseConnections";
const BORROWED: &str = "spillway_proxy_DatabaseConnectionsCurrentlyBorrowed";
const BORROW_TIMEOUTS: &str = "spillway_proxy_DatabaseConnectionsBorrowTimeouts";
const BORROW_SUM: &str = "spillway_proxy_DatabaseConnectionsBorrowLatency_sum";
const BORROW_COUNT: &str = "spillway_proxy_DatabaseConnectionsBorrowLatency_count";
const FN_CONCURRENCY: &str = "spillway_function_concurrent_executions";
const FN_ERRORS: &str = "spillway_function_errors_total";
const FN_THROTTLES: &str = "spillway_function_throttles_total";
const FN_INVOCATIONS: &str = "spillway_function_invocations_total";

/// Sums each family's samples over all label sets. Lines that do not parse are skipped: the
/// endpoint is another program's output, not ours to reject.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(i) => match line[i..].rfind('}') {
                Some(j) => (&line[..i], &line[i + j + 1..]),
                None => continue,
            },
            None => match line.split_once(char::is_whitespace) {
                Some((n, r)) => (n, r),
                None => continue,
            },
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        *out.entry(name.to_owned()).or_insert(0.0) += value;
    }
    out
}

/// One second's readings; absent fields were not available.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sample {
    pub elapsed_s: f64,
    pub proxy_client_connections: Option<f64>,
    pub proxy_database_connections: Option<f64>,
    pub proxy_borrowed: Option<f64>,
    /// Mean borrow wait during the last second, in milliseconds.
    pub proxy_borrow_latency_ms: Option<f64>,
    pub proxy_borrow_timeouts_per_s: Option<f64>,
    pub function_concurrency: Option<f64>,
    pub function_invocations_per_s: Option<f64>,
    pub function_errors_per_s: Option<f64>,
    pub function_throttles_per_s: Option<f64>,
    /// Per database server (by name): connections and CPU percent of one core.
    pub servers: Vec<ServerSample>,
    /// The generator's CPU, percent of one core.
    pub generator_cpu_pct: f64,
    pub metrics_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerSample {
    pub name: String,
    pub pid: u32,
    pub connections: Option<u64>,
    pub cpu_pct: Option<f64>,
}

pub struct Sampler {
    metrics_url: Option<String>,
    servers: Vec<FoundServer>,
    started: Instant,
    last_at: Instant,
    last_metrics: Option<BTreeMap<String, f64>>,
    last_server_cpu: Vec<Option<Duration>>,
    last_own_cpu: Duration,
}

impl Sampler {
    pub fn new(metrics_url: Option<String>, servers: Vec<FoundServer>, started: Instant) -> Self {
        let last_server_cpu = servers
            .iter()
            .map(|s| {
                let r = procfs::read_server(s.pid);
                r.alive.then_some(r.cpu)
            })
            .collect();
        Self {
            metrics_url,
            servers,
            started,
            last_at: Instant::now(),
            last_metrics: None,
            last_server_cpu,
            last_own_cpu: procfs::own_cpu(),
        }
    }

    pub fn servers(&self) -> &[FoundServer] {
        &self.servers
    }

    pub async fn sample(&mut self) -> Sample {
        let now = Instant::now();
        let dt = (now - self.last_at).as_secs_f64().max(1e-6);
        self.last_at = now;
        let mut s = Sample {
            elapsed_s: (now - self.started).as_secs_f64(),
            ..Sample::default()
        };
        let own = procfs::own_cpu();
        s.generator_cpu_pct = (own.saturating_sub(self.last_own_cpu)).as_secs_f64() / dt * 100.0;
        self.last_own_cpu = own;

        if let Some(url) = self.metrics_url.clone() {
            match crate::client::get_text(&url, Duration::from_millis(800)).await {
                Ok(text) => {
                    let m = parse_prometheus(&text);
                    self.fill_metrics(&mut s, &m, dt);
                    self.last_metrics = Some(m);
                }
                Err(e) => s.metrics_error = Some(e),
            }
        }

        for (i, server) in self.servers.iter().enumerate() {
            let r = procfs::read_server(server.pid);
            let prev = self.last_server_cpu.get(i).copied().flatten();
            let cpu_pct = match (r.alive, prev) {
                (true, Some(p)) => Some(r.cpu.saturating_sub(p).as_secs_f64() / dt * 100.0),
                _ => None,
            };
            if let Some(slot) = self.last_server_cpu.get_mut(i) {
                *slot = r.alive.then_some(r.cpu);
            }
            s.servers.push(ServerSample {
                name: server.name.clone(),
                pid: server.pid,
                connections: if r.alive { r.connections } else { None },
                cpu_pct,
            });
        }
        s
    }

    fn fill_metrics(&self, s: &mut Sample, m: &BTreeMap<String, f64>, dt: f64) {
        let get = |k: &str| m.get(k).copied();
        let rate = |k: &str| {
            let prev = self.last_metrics.as_ref()?.get(k)?;
            Some(((get(k)? - prev) / dt).max(0.0))
        };
        s.proxy_client_connections = get(CLIENT_CONNECTIONS);
        s.proxy_database_connections = get(DATABASE_CONNECTIONS);
        s.proxy_borrowed = get(BORROWED);
        s.proxy_borrow_timeouts_per_s = rate(BORROW_TIMEOUTS);
        s.proxy_borrow_latency_ms = (|| {
            let prev = self.last_metrics.as_ref()?;
            let dsum = get(BORROW_SUM)? - prev.get(BORROW_SUM)?;
            let dcount = get(BORROW_COUNT)? - prev.get(BORROW_COUNT)?;
            (dcount > 0.0).then(|| dsum / dcount * 1000.0)
        })();
        s.function_concurrency = get(FN_CONCURRENCY);
        s.function_invocations_per_s = rate(FN_INVOCATIONS);
        s.function_errors_per_s = rate(FN_ERRORS);
        s.function_throttles_per_s = rate(FN_THROTTLES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_families_over_labels() {
        let text = "# TYPE spillway_proxy_ClientConnections gauge\n\
            spillway_proxy_ClientConnections{engine=\"postgres\",proxy=\"a\",endpoint=\"x}\"} 3\n\
            spillway_proxy_ClientConnections{engine=\"mysql\",proxy=\"b\",endpoint=\"y\"} 4\n\
            spillway_function_errors_total 2\n\
            garbage line here\n";
        let m = parse_prometheus(text);
        assert_eq!(m.get(CLIENT_CONNECTIONS), Some(&7.0));
        assert_eq!(m.get(FN_ERRORS), Some(&2.0));
    }
}
