//! A tiny HTTP server for the tests, on 127.0.0.1:0: /ok answers 200, /fail 500, /slow 200
//! after 50 ms, /_spillway/metrics a fixed Prometheus text. It counts what it answered, so
//! tests compare the generator's counts with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub const SLOW: Duration = Duration::from_millis(50);

/// The shape of the stack's metrics (spillway-proxy's metrics.rs, spillway-functions' host.rs).
const METRICS: &str = "# TYPE spillway_proxy_ClientConnections gauge
spillway_proxy_ClientConnections{engine=\"postgres\",proxy=\"p\",endpoint=\"default\"} 5
spillway_proxy_ClientConnections{engine=\"mysql\",proxy=\"m\",endpoint=\"default\"} 2
spillway_proxy_DatabaseConnections{engine=\"postgres\",proxy=\"p\",target=\"db\"} 3
spillway_proxy_DatabaseConnectionsBorrowLatency_sum{engine=\"postgres\",proxy=\"p\",target=\"db\"} 0.5
spillway_proxy_DatabaseConnectionsBorrowLatency_count{engine=\"postgres\",proxy=\"p\",target=\"db\"} 10
# TYPE spillway_function_concurrent_executions gauge
spillway_function_concurrent_executions{function=\"tenant\"} 2
# TYPE spillway_function_errors_total counter
spillway_function_errors_total{function=\"tenant\"} 4
";

#[derive(Default)]
pub struct Counts {
    by_path: Mutex<HashMap<String, u64>>,
    pub total: AtomicU64,
}

impl Counts {
    #[allow(dead_code)] // used by engine.rs, not by reports.rs
    pub fn get(&self, path: &str) -> u64 {
        self.by_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

pub async fn serve() -> (String, Arc<Counts>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let counts = Arc::new(Counts::default());
    let c = Arc::clone(&counts);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let c = Arc::clone(&c);
                    async move {
                        let path = req.uri().path().to_owned();
                        if path == "/_spillway/metrics" {
                            return hyper::Response::builder()
                                .status(200)
                                .body(Full::new(Bytes::from_static(METRICS.as_bytes())));
                        }
                        let status = match path.as_str() {
                            "/ok" | "/" => 200,
                            "/fail" => 500,
                            "/slow" => {
                                tokio::time::sleep(SLOW).await;
                                200
                            }
                            _ => 404,
                        };
                        *c.by_path
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(path)
                            .or_default() += 1;
                        c.total.fetch_add(1, Ordering::Relaxed);
                        hyper::Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(b"hello")))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), counts)
}

pub fn config(
    host: &str,
    tasks: &str,
    model: spillway_loadtest::Model,
    secs: u64,
) -> spillway_loadtest::Config {
    spillway_loadtest::Config {
        host: host.into(),
        tasks: spillway_loadtest::TaskSet::parse(tasks, "tasks.toml")
            .unwrap_or_else(|e| panic!("{e}")),
        plan: spillway_loadtest::Plan {
            model,
            run_time: Duration::from_secs(secs),
            stop_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            seed: 7,
        },
        metrics_url: None,
        servers: Vec::new(),
        compare: Vec::new(),
        csv_prefix: None,
        csv_full_history: false,
        html: None,
        live: false,
        tty: false,
        stop: None,
    }
}

pub fn closed(users: u32) -> spillway_loadtest::Model {
    spillway_loadtest::Model::Closed {
        users,
        spawn_rate: 1000.0,
        wait: spillway_loadtest::Wait::parse("5ms..10ms").unwrap_or_else(|e| panic!("{e}")),
    }
}
