//! Proxy metrics, named after RDS Proxy's CloudWatch metrics so that dashboards and alarms
//! translate one to one: `spillway_proxy_ClientConnections` is CloudWatch's ClientConnections.
//! Rendered in the Prometheus text format on `/_spillway/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Default, Debug)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub fn set(&self, n: i64) {
        self.0.store(n, Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000, 1_000_000, 10_000_000,
];

#[derive(Default, Debug)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Client-side metrics of one proxy endpoint.
#[derive(Debug, Default)]
pub struct EndpointMetrics {
    /// `postgres` or `mysql`: one label tells the engines' series apart on one dashboard.
    pub engine: &'static str,
    pub proxy: String,
    pub endpoint: String,
    pub client_connections: Gauge,
    pub client_connections_received: Counter,
    pub client_connections_setup_succeeded: Counter,
    pub client_connections_setup_failed_auth: Counter,
    pub client_connections_no_tls: Counter,
    pub client_connections_refused: Counter,
    pub query_requests: Counter,
    pub query_database_response_latency: Histogram,
    pub pinned_sessions: Counter,
}

/// Server-side metrics of one proxy target.
#[derive(Debug, Default)]
pub struct TargetMetrics {
    pub engine: &'static str,
    pub proxy: String,
    pub target: String,
    pub connections: Gauge,
    pub borrowed: Gauge,
    pub pinned: Gauge,
    pub in_transaction: Gauge,
    pub max_allowed: Gauge,
    pub connects: Counter,
    pub connect_failures: Counter,
    pub borrow_timeouts: Counter,
    /// Server connections handed to a session on another proxy worker (`workers` > 1).
    pub moved_between_workers: Counter,
    pub borrow_latency: Histogram,
}

/// Everything the metrics endpoint shows.
#[derive(Default)]
pub struct Registry {
    endpoints: Mutex<Vec<Arc<EndpointMetrics>>>,
    targets: Mutex<Vec<Arc<TargetMetrics>>>,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Registry {
    pub fn endpoint(
        &self,
        engine: &'static str,
        proxy: &str,
        endpoint: &str,
    ) -> Arc<EndpointMetrics> {
        let m = Arc::new(EndpointMetrics {
            engine,
            proxy: proxy.into(),
            endpoint: endpoint.into(),
            ..Default::default()
        });
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&m));
        m
    }

    pub fn target(&self, engine: &'static str, proxy: &str, target: &str) -> Arc<TargetMetrics> {
        let m = Arc::new(TargetMetrics {
            engine,
            proxy: proxy.into(),
            target: target.into(),
            ..Default::default()
        });
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&m));
        m
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let targets = self
            .targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        type E = fn(&EndpointMetrics) -> i64;
        let client: [(&str, &str, &str, E); 8] = [
            (
                "ClientConnections",
                "gauge",
                "Client connections open now.",
                |m| m.client_connections.get(),
            ),
            (
                "ClientConnectionsReceived",
                "counter",
                "Client connection requests received.",
                |m| m.client_connections_received.get() as i64,
            ),
            (
                "ClientConnectionsSetupSucceeded",
                "counter",
                "Client connections that logged in.",
                |m| m.client_connections_setup_succeeded.get() as i64,
            ),
            (
                "ClientConnectionsSetupFailedAuth",
                "counter",
                "Client logins refused for bad credentials.",
                |m| m.client_connections_setup_failed_auth.get() as i64,
            ),
            (
                "ClientConnectionsNoTLS",
                "counter",
                "Client connections without TLS.",
                |m| m.client_connections_no_tls.get() as i64,
            ),
            (
                "ClientConnectionsRefused",
                "counter",
                "Client connections refused by allow_from.",
                |m| m.client_connections_refused.get() as i64,
            ),
            (
                "QueryRequests",
                "counter",
                "Queries received from clients.",
                |m| m.query_requests.get() as i64,
            ),
            (
                "DatabaseConnectionsPinnedTotal",
                "counter",
                "Client sessions that became pinned.",
                |m| m.pinned_sessions.get() as i64,
            ),
        ];
        for (name, kind, help, get) in client {
            let _ = writeln!(
                out,
                "# HELP spillway_proxy_{name} {help}\n# TYPE spillway_proxy_{name} {kind}"
            );
            for m in &endpoints {
                let _ = writeln!(
                    out,
                    "spillway_proxy_{name}{{engine=\"{}\",proxy=\"{}\",endpoint=\"{}\"}} {}",
                    m.engine,
                    esc(&m.proxy),
                    esc(&m.endpoint),
                    get(m)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP spillway_proxy_QueryDatabaseResponseLatency Seconds from a query reaching the proxy to the database's first response byte.\n# TYPE spillway_proxy_QueryDatabaseResponseLatency histogram"
        );
        for m in &endpoints {
            let labels = format!(
                "engine=\"{}\",proxy=\"{}\",endpoint=\"{}\"",
                m.engine,
                esc(&m.proxy),
                esc(&m.endpoint)
            );
            m.query_database_response_latency.render(
                &mut out,
                "spillway_proxy_QueryDatabaseResponseLatency",
                &labels,
            );
        }
        type T = fn(&TargetMetrics) -> i64;
        let server: [(&str, &str, &str, T); 9] = [
            (
                "DatabaseConnections",
                "gauge",
                "Server connections open now.",
                |m| m.connections.get(),
            ),
            (
                "DatabaseConnectionsCurrentlyBorrowed",
                "gauge",
                "Server connections borrowed by clients now.",
                |m| m.borrowed.get(),
            ),
            (
                "DatabaseConnectionsCurrentlySessionPinned",
                "gauge",
                "Server connections pinned to one client now.",
                |m| m.pinned.get(),
            ),
            (
                "DatabaseConnectionsCurrentlyInTransaction",
                "gauge",
                "Server connections inside a transaction now.",
                |m| m.in_transaction.get(),
            ),
            (
                "MaxDatabaseConnectionsAllowed",
                "gauge",
                "The cap on server connections.",
                |m| m.max_allowed.get(),
            ),
            (
                "DatabaseConnectionRequests",
                "counter",
                "Server connections opened.",
                |m| m.connects.get() as i64,
            ),
            (
                "DatabaseConnectionRequestsFailed",
                "counter",
                "Server connections that failed to open.",
                |m| m.connect_failures.get() as i64,
            ),
            (
                "DatabaseConnectionsBorrowTimeouts",
                "counter",
                "Clients that gave up waiting for a connection.",
                |m| m.borrow_timeouts.get() as i64,
            ),
            (
                "DatabaseConnectionsMovedBetweenWorkers",
                "counter",
                "Server connections handed to a session on another proxy worker (spillway's own; RDS Proxy has no such metric).",
                |m| m.moved_between_workers.get() as i64,
            ),
        ];
        for (name, kind, help, get) in server {
            let _ = writeln!(
                out,
                "# HELP spillway_proxy_{name} {help}\n# TYPE spillway_proxy_{name} {kind}"
            );
            for m in &targets {
                let _ = writeln!(
                    out,
                    "spillway_proxy_{name}{{engine=\"{}\",proxy=\"{}\",target=\"{}\"}} {}",
                    m.engine,
                    esc(&m.proxy),
                    esc(&m.target),
                    get(m)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP spillway_proxy_DatabaseConnectionsBorrowLatency Seconds a client waited to borrow a server connection.\n# TYPE spillway_proxy_DatabaseConnectionsBorrowLatency histogram"
        );
        for m in &targets {
            let labels = format!(
                "engine=\"{}\",proxy=\"{}\",target=\"{}\"",
                m.engine,
                esc(&m.proxy),
                esc(&m.target)
            );
            m.borrow_latency.render(
                &mut out,
                "spillway_proxy_DatabaseConnectionsBorrowLatency",
                &labels,
            );
        }
        out
    }
}
