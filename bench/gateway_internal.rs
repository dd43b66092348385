//! The baseline of bench/gateway.sh: the same `lambda_http` function the gateway's `GET /fn`
//! route calls, invoked through `FunctionHost::invoke` (the internal path the gateway itself
//! uses; no HTTP, no routing, no event building, no response mapping), driven the way oha
//! drives an HTTP target, so the two can be subtracted:
//!
//! - RATE > 0 is `oha -q RATE --latency-correction -c WORKERS -z SECONDS`: a ticker wakes for
//!   request `i` at `start + i / RATE` and stamps the time it woke; WORKERS tasks (oha's
//!   connections) take the stamps in turn and invoke; a request's latency runs from its stamp
//!   to the answer, so time spent queued behind busy workers counts (coordinated omission).
//!   Stamping the wake-up rather than the ideal tick is what oha does: tokio's timer fires on
//!   millisecond ticks, so both send small bursts and neither counts the timer's lateness.
//! - RATE = 0 is `oha -c WORKERS -z SECONDS`: every worker invokes back to back.
//! - At the deadline no new request starts and answers still outstanding are not counted, as
//!   oha aborts its in-flight requests at `-z`.
//!
//! bench/gateway.sh builds this file as a throwaway package outside the workspace. Arguments:
//! CODE RATE SECONDS WARMUP_SECONDS WORKERS, where CODE is the function's code as in a stack
//! file (here a directory with the built `bootstrap`). Prints one line:
//! `p50_ms p99_ms p999_ms completed failed self_ticks children_ticks`, the last two the CPU
//! time (user + system, clock ticks) of this process (driver and function host) and of its
//! children (the function instances) during the measured run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spillway_functions::{FunctionHost, FunctionSpec, HostConfig, InvokeRequest, Runtime};
use tokio::sync::{Mutex, mpsc};

/// An HTTP API 2.0 event as the gateway builds it for oha's `GET /fn` (oha's headers, no
/// query, no body), so the function does the same work on both paths.
const EVENT: &str = r#"{"version":"2.0","routeKey":"GET /fn","rawPath":"/fn","rawQueryString":"","headers":{"user-agent":"oha/1.16.0","accept":"*/*","host":"127.0.0.1","x-forwarded-for":"127.0.0.1","x-forwarded-proto":"http"},"requestContext":{"accountId":"000000000000","apiId":"benchapi01","domainName":"127.0.0.1","domainPrefix":"127","http":{"method":"GET","path":"/fn","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"oha/1.16.0"},"requestId":"Vx3kLmQ2NfPa8g==","routeKey":"GET /fn","stage":"$default","time":"22/Nov/2026:12:00:00 +0000","timeEpoch":1795348800000},"isBase64Encoded":false}"#;

struct Run {
    latencies: Vec<Duration>,
    failed: usize,
}

/// Invokes `fn` for `secs` seconds from `workers` tasks: at `rate` per second, or back to back
/// when `rate` is 0.
async fn run(host: &Arc<FunctionHost>, rate: f64, secs: f64, workers: usize) -> Run {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let (tx, rx) = mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));
    let ticker = (rate > 0.0).then(|| {
        tokio::spawn(async move {
            for i in 0u64.. {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let now = Instant::now();
                if now > deadline || tx.send(now).is_err() {
                    break;
                }
            }
        })
    });
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let rx = Arc::clone(&rx);
            let host = Arc::clone(host);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failed = 0;
                loop {
                    let stamp = if rate > 0.0 {
                        // The ticker's sender goes away at the deadline; stamps still queued
                        // then are requests oha would never have sent.
                        let next = rx.lock().await.recv().await;
                        match next {
                            Some(s) if Instant::now() <= deadline => s,
                            _ => break,
                        }
                    } else {
                        Instant::now()
                    };
                    if stamp > deadline {
                        break;
                    }
                    let o = host.invoke("fn", InvokeRequest::new(EVENT.as_bytes())).await;
                    if Instant::now() > deadline {
                        break;
                    }
                    match o {
                        Ok(o) if o.error.is_none() => latencies.push(stamp.elapsed()),
                        _ => failed += 1,
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    if let Some(t) = ticker {
        let _ = t.await;
    }
    let mut out = Run {
        latencies: Vec::new(),
        failed: 0,
    };
    for t in tasks {
        match t.await {
            Ok((l, f)) => {
                out.latencies.extend(l);
                out.failed += f;
            }
            Err(_) => out.failed += 1,
        }
    }
    out
}

/// utime + stime of a process from `/proc/PID/stat`, in clock ticks (0 if it is gone).
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may hold spaces; the fields after it are fixed.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let get = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(14) + get(15)
}

/// CPU ticks of this process, and the sum over its live children (the function instances).
fn cpu_now() -> (u64, u64) {
    let me = std::process::id().to_string();
    let mut children = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(me.as_str()) {
                children += cpu_ticks(&name);
            }
        }
    }
    (cpu_ticks("self"), children)
}

/// The value at quantile `q` (nearest rank), in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    match args.get(i).and_then(|a| a.parse().ok()) {
        Some(v) => v,
        None => {
            eprintln!(
                "usage: gateway_internal CODE RATE SECONDS WARMUP_SECONDS WORKERS ({what}?)"
            );
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code: PathBuf = arg(&args, 1, "CODE");
    let rate: f64 = arg(&args, 2, "RATE");
    let secs: f64 = arg(&args, 3, "SECONDS");
    let warmup: f64 = arg(&args, 4, "WARMUP_SECONDS");
    let workers: usize = arg(&args, 5, "WORKERS");
    let state = std::env::temp_dir().join(format!(
        "spillway-bench-gateway-internal-{}",
        std::process::id()
    ));
    if let Err(e) = std::fs::create_dir_all(&state) {
        eprintln!("{}: {e}", state.display());
        std::process::exit(1);
    }
    // As `spillway up` makes it for `[functions.fn]` (runtime "provided", keep_warm "10m",
    // reserved_concurrency unset).
    let spec = FunctionSpec {
        name: "fn".into(),
        arn: "arn:aws:lambda:us-east-1:000000000000:function:fn".into(),
        runtime: Runtime::Provided,
        code,
        handler: None,
        timeout: Duration::from_secs(10),
        memory_mb: 128,
        reserved_concurrency: None,
        environment: Vec::new(),
        keep_warm: Duration::from_secs(600),
        role: "bench".into(),
        maximum_retry_attempts: 0,
    };
    let host = match FunctionHost::start(HostConfig::new("us-east-1", state.clone()), vec![spec])
        .await
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("function host: {e}");
            std::process::exit(1);
        }
    };
    // Warm up at the measured rate, so instances are started and the count has settled, as
    // the gateway's are by its own warm-up round.
    if warmup > 0.0 {
        let _ = run(&host, rate, warmup, workers).await;
    }
    let cpu_before = cpu_now();
    let mut r = run(&host, rate, secs, workers).await;
    let cpu_after = cpu_now();
    host.shutdown().await;
    let _ = std::fs::remove_dir_all(&state);
    r.latencies.sort();
    println!(
        "{:.3} {:.3} {:.3} {} {} {} {}",
        quantile_ms(&r.latencies, 0.5),
        quantile_ms(&r.latencies, 0.99),
        quantile_ms(&r.latencies, 0.999),
        r.latencies.len(),
        r.failed,
        cpu_after.0.saturating_sub(cpu_before.0),
        cpu_after.1.saturating_sub(cpu_before.1)
    );
}
