//! The internal-path half of bench/functions.sh: cold starts (process spawn to first
//! response), warm invoke latency and invocations per second at concurrency 1 and 10, for the
//! quickstart's Rust function and a Node.js hello world, through `FunctionHost::invoke` with no
//! HTTP hop. Prints one Markdown table row per measure.
//!
//!   cargo run --release -p spillway-functions --example functions_bench -- [SECONDS] [COLD_SAMPLES]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spillway_functions::{FunctionHost, FunctionSpec, HostConfig, InvokeRequest, Runtime};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn spec(name: &str, runtime: Runtime, code: PathBuf, handler: Option<&str>) -> FunctionSpec {
    FunctionSpec {
        name: name.into(),
        arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
        runtime,
        code,
        handler: handler.map(str::to_owned),
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        reserved_concurrency: Some(10),
        environment: Vec::new(),
        keep_warm: Duration::from_secs(600),
        role: "bench".into(),
        maximum_retry_attempts: 0,
        on_failure: None,
    }
}

async fn invoke(host: &FunctionHost, name: &str) -> (Duration, bool) {
    let started = Instant::now();
    let o = host
        .invoke(name, InvokeRequest::new(r#"{"name":"bench"}"#))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        o.error.is_none() && o.payload.as_ref() == br#"{"hello":"bench"}"#,
        "{name}: {}",
        String::from_utf8_lossy(&o.payload)
    );
    (started.elapsed(), o.cold)
}

async fn throughput(host: &Arc<FunctionHost>, name: &str, concurrency: usize, secs: u64) -> f64 {
    let until = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let host = Arc::clone(host);
            let name = name.to_owned();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    invoke(&host, &name).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap_or(0);
    }
    total as f64 / secs as f64
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let cold_samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = HostConfig::new("us-east-1", state.path().to_path_buf());
    let host = FunctionHost::start(
        config,
        vec![
            spec(
                "rust",
                Runtime::Provided,
                root.join("examples/quickstart/functions/hello"),
                None,
            ),
            spec(
                "node",
                Runtime::Nodejs,
                root.join("bench/functions/node-hello"),
                Some("index.handler"),
            ),
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    println!("| function | measure | p50 | p99 | n |");
    println!("|---|---|---|---|---|");
    for name in ["rust", "node"] {
        let f = Arc::clone(host.get(name).unwrap_or_else(|| panic!("no {name}")));
        let mut cold = Vec::new();
        for _ in 0..cold_samples {
            f.retire_idle();
            let (d, was_cold) = invoke(&host, name).await;
            assert!(was_cold);
            cold.push(d);
        }
        cold.sort();
        println!(
            "| {name} | cold start (spawn to first response), ms | {:.2} | {:.2} | {} |",
            percentile(&cold, 0.5),
            percentile(&cold, 0.99),
            cold.len()
        );
        let mut warm = Vec::new();
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            let (d, was_cold) = invoke(&host, name).await;
            if !was_cold {
                warm.push(d);
            }
        }
        warm.sort();
        println!(
            "| {name} | warm invoke, ms | {:.3} | {:.3} | {} |",
            percentile(&warm, 0.5),
            percentile(&warm, 0.99),
            warm.len()
        );
        for c in [1, 10] {
            let rate = throughput(&host, name, c, secs).await;
            println!("| {name} | invocations/s at concurrency {c} | {rate:.0} | | |");
        }
    }
    host.shutdown().await;
}
