//! The load generator of bench/tables.sh: DynamoDB's JSON 1.0 API, SigV4-signed, over
//! HTTP/1.1 keep-alive connections (one per worker), on a tokio runtime of `--threads`
//! threads. It prints one JSON line per run, with its own CPU time, so a run where the
//! generator rather than the target was the limit is visible.
//!
//!   tables_load MODE --endpoint http://HOST:PORT --table NAME [options]
//!
//! Modes:
//!   put      PutItem of fresh items (~250 bytes) in partitions of their own
//!   get      GetItem of a random loaded item
//!   query    Query `pk = :p` of a random loaded partition, Limit 100
//!   load     BatchWriteItem (25 a request) of --items items, --concurrency at a time
//!   create   CreateTable (pk S, sk S, on demand), waits until ACTIVE
//! Options:
//!   --rate R            open model: R requests/s at fixed intervals, latency from each
//!                       request's scheduled time (default: closed model)
//!   --concurrency C     closed model: C workers back to back (default 16)
//!   --connections N     open model's connections (default 64)
//!   --duration S        seconds (default 5)
//!   --items N           items in the loaded table (default 1000), --per-partition P (100)
//!   --threads T         runtime threads (default 1: the generator shares the cores)
//!   --access-key, --secret-key, --region   credentials to sign with
//!
//! The root of an example looks for its modules beside it, hence the `#[path]`s: the parts
//! live in examples/tables_load/ so that Cargo does not take them for examples.

#[path = "tables_load/conn.rs"]
mod conn;
#[path = "tables_load/requests.rs"]
mod requests;
#[path = "tables_load/run.rs"]
mod run;
#[path = "tables_load/setup.rs"]
mod setup;
#[path = "tables_load/sign.rs"]
mod sign;
#[path = "tables_load/stats.rs"]
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use run::{Op, Target};

type Error = Box<dyn std::error::Error + Send + Sync>;

const DEFAULT_ACCESS_KEY: &str = "AKIASPILLWAYBENCH001";
const DEFAULT_SECRET_KEY: &str = "YmVuY2gtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJjZA";

struct Args {
    mode: String,
    flags: HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Args, Error> {
        let mut it = std::env::args().skip(1);
        let mode = it
            .next()
            .ok_or("usage: tables_load MODE --endpoint URL --table NAME [options]")?;
        let mut flags = HashMap::new();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("expected a --flag, got {flag:?}"))?;
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            flags.insert(name.to_owned(), value);
        }
        Ok(Args { mode, flags })
    }

    fn text(&self, name: &str, default: Option<&str>) -> Result<String, Error> {
        match (self.flags.get(name), default) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(d)) => Ok(d.to_owned()),
            (None, None) => Err(format!("--{name} is required").into()),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.flags.get(name) {
            Some(v) => v.parse().map_err(|e| format!("--{name} {v}: {e}").into()),
            None => Ok(default),
        }
    }
}

fn main() {
    if let Err(e) = main_result() {
        eprintln!("tables_load: {e}");
        std::process::exit(2);
    }
}

fn main_result() -> Result<(), Error> {
    let args = Args::parse()?;
    let threads: usize = args.number("threads", 1)?;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let line = runtime.block_on(execute(&args))?;
    println!("{line}");
    Ok(())
}

async fn execute(args: &Args) -> Result<Value, Error> {
    let endpoint = args.text("endpoint", None)?;
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or("--endpoint must be http://HOST:PORT")?
        .trim_end_matches('/')
        .to_owned();
    let target = Arc::new(Target {
        addr,
        table: args.text("table", None)?,
        signer: sign::Signer::new(
            &args.text("access-key", Some(DEFAULT_ACCESS_KEY))?,
            &args.text("secret-key", Some(DEFAULT_SECRET_KEY))?,
            &args.text("region", Some("us-east-1"))?,
        ),
        items: args.number("items", 1000)?,
        per_partition: args.number::<u64>("per-partition", 100)?.max(1),
        tag: format!("{}", std::process::id()),
    });
    let concurrency: usize = args.number::<usize>("concurrency", 16)?.max(1);
    let duration = Duration::from_secs_f64(args.number("duration", 5.0)?);
    let op = match args.mode.as_str() {
        "put" => Op::Put,
        "get" => Op::Get,
        "query" => Op::Query,
        "create" => {
            setup::create(&target).await?;
            return Ok(json!({"mode": "create", "table": target.table, "ok": true}));
        }
        "load" => {
            let v = load(target, concurrency).await;
            // A table left short would skew every later run against it.
            if v["errors"].as_u64().unwrap_or(0) > 0 {
                return Err(format!("load failed: {v}").into());
            }
            return Ok(v);
        }
        other => return Err(format!("unknown mode {other:?}").into()),
    };
    let cpu0 = stats::cpu_time();
    let started = Instant::now();
    let (tally, open, model) = match args.flags.get("rate") {
        Some(_) => {
            let rate: f64 = args.number("rate", 0.0)?;
            if rate <= 0.0 {
                return Err("--rate must be positive".into());
            }
            let connections = args.number::<usize>("connections", 64)?.max(1);
            let o = run::open(target.clone(), op, rate, connections, duration).await;
            let extra = json!({"target_rate": rate, "connections": connections,
                "scheduled": o.scheduled, "unsent": o.unsent});
            (o.tally, extra, "open")
        }
        None => {
            let t = run::closed(target.clone(), op, concurrency, duration).await;
            (t, json!({"concurrency": concurrency}), "closed")
        }
    };
    Ok(summary(&args.mode, model, tally, started, cpu0, open))
}

async fn load(target: Arc<Target>, concurrency: usize) -> Value {
    let cpu0 = stats::cpu_time();
    let started = Instant::now();
    let tally = setup::load(target.clone(), concurrency).await;
    let secs = started.elapsed().as_secs_f64();
    let mut v = summary(
        "load",
        "closed",
        tally,
        started,
        cpu0,
        json!({"concurrency": concurrency}),
    );
    v["items"] = json!(target.items);
    v["items_per_s"] = json!(round(target.items as f64 / secs, 1));
    v
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn summary(
    mode: &str,
    model: &str,
    mut tally: stats::Tally,
    started: Instant,
    cpu0: Duration,
    extra: Value,
) -> Value {
    let secs = started.elapsed().as_secs_f64();
    let cpu = stats::cpu_time().saturating_sub(cpu0);
    for s in &tally.samples {
        eprintln!("error: {s}");
    }
    let ok = tally.sent - tally.errors;
    tally.latencies_us.sort_unstable();
    let l = &tally.latencies_us;
    let mut v = json!({
        "mode": mode,
        "model": model,
        "secs": round(secs, 3),
        "sent": tally.sent,
        "ok": ok,
        "errors": tally.errors,
        "short": tally.short,
        "rate": round(ok as f64 / secs, 1),
        "p50_ms": round(stats::quantile_ms(l, 0.50), 3),
        "p90_ms": round(stats::quantile_ms(l, 0.90), 3),
        "p99_ms": round(stats::quantile_ms(l, 0.99), 3),
        "p999_ms": round(stats::quantile_ms(l, 0.999), 3),
        "max_ms": round(stats::quantile_ms(l, 1.0), 3),
        "cpu_ms": round(cpu.as_secs_f64() * 1000.0, 1),
        "cpu_us_per_req": round(cpu.as_secs_f64() * 1e6 / (tally.sent.max(1) as f64), 1),
        "cpu_pct": round(cpu.as_secs_f64() * 100.0 / secs, 1),
    });
    if !tally.lags_us.is_empty() {
        tally.lags_us.sort_unstable();
        let g = &tally.lags_us;
        v["send_lag_p50_ms"] = json!(round(stats::quantile_ms(g, 0.50), 3));
        v["send_lag_p99_ms"] = json!(round(stats::quantile_ms(g, 0.99), 3));
    }
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}
