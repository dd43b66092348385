//! The load generator of bench/queue.sh: SQS over its JSON 1.0 protocol (SigV4-signed with the
//! aws-sigv4 crate, HTTP/1.1 keep-alive through hyper), a `FOR UPDATE SKIP LOCKED` table on
//! PostgreSQL, and JetStream, each driven the same way by many tokio tasks on one thread pool.
//!
//!   queue_load MODE key=value...
//!
//! Modes (every one prints a single line of `key=value` fields, always with `cpu_ms`, this
//! process's own user+system CPU time, so the report can show the generator is not the
//! bottleneck):
//!   send      target= queue= conc= batch= secs=       closed loop: each task sends and waits
//!   rate      target= queue= rate= secs=              fixed-rate single sends, latency from
//!                                                     each send's scheduled start (no
//!                                                     coordinated omission)
//!   consume   target= queue= conc= secs= [max=]       ReceiveMessage(10) + DeleteMessageBatch
//!                                                     until secs pass, max are consumed, or
//!                                                     the queue answers empty
//!   fill      target= queue= count= conc=             batches of 10 until count are sent
//!   post      url= rate= count=                       fixed-rate HTTP POSTs (the spike)
//!   create    target=sqs:... name=                    CreateQueue; prints the queue URL
//!   js-setup  target=nats:... queue=                  (re)creates a file-storage stream
//! `target` is `sqs:http://host:port` (queue= is the queue URL), `pg:DSN` (queue= a table) or
//! `nats:URL` (queue= a stream; its subject is the stream's name). Loops end on time or count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const BODY_BYTES: usize = 200;
const ACCESS_KEY: &str = "AKIASPILLWAYBENCH001";
const SECRET_KEY: &str = "YmVuY2gtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJjZA";

fn args() -> Result<(String, std::collections::HashMap<String, String>)> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("usage: queue_load MODE key=value...")?;
    let mut map = std::collections::HashMap::new();
    for a in it {
        let (k, v) = a.split_once('=').ok_or_else(|| format!("not key=value: {a}"))?;
        map.insert(k.to_string(), v.to_string());
    }
    Ok((mode, map))
}

fn get<T: std::str::FromStr>(map: &std::collections::HashMap<String, String>, key: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let v = map.get(key).ok_or_else(|| format!("missing {key}="))?;
    v.parse().map_err(|e| format!("{key}={v}: {e}").into())
}

/// This process's user+system CPU in milliseconds (/proc reports it in USER_HZ, 100 on Linux).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<f64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) * 10.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latencies in milliseconds, kept whole (a run holds at most a few hundred thousand).
#[derive(Default)]
struct Latencies(std::sync::Mutex<Vec<f64>>);

impl Latencies {
    fn push(&self, ms: f64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(ms);
    }
    fn summary(&self) -> String {
        let mut v = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        v.sort_by(f64::total_cmp);
        format!(
            "p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            percentile(&v, 0.999),
            v.last().copied().unwrap_or(f64::NAN)
        )
    }
}

// --- SQS ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Sqs {
    http: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
    identity: aws_smithy_runtime_api::client::identity::Identity,
}

impl Sqs {
    fn new(endpoint: &str) -> Sqs {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        let credentials = aws_credential_types::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "bench",
        );
        Sqs {
            http,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            identity: credentials.into(),
        }
    }

    async fn call(&self, action: &str, body: serde_json::Value) -> Result<serde_json::Value> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let body = serde_json::to_vec(&body)?;
        let uri = format!("{}/", self.endpoint);
        let target = format!("AmazonSQS.{action}");
        let mut request = hyper::Request::post(&uri)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", &target)
            .body(Full::new(Bytes::from(body.clone())))?;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region("us-east-1")
            .name("sqs")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", &target),
        ];
        let signable = SignableRequest::new("POST", &uri, headers.into_iter(), SignableBody::Bytes(&body))?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let response = self.http.request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("{action}: {status}: {}", String::from_utf8_lossy(&bytes)).into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn send(&self, queue: &str, batch: usize, n: u64) -> Result<usize> {
        let body = "x".repeat(BODY_BYTES);
        if batch == 1 {
            self.call("SendMessage", serde_json::json!({"QueueUrl": queue, "MessageBody": format!("{n}-{body}")}))
                .await?;
            return Ok(1);
        }
        let entries: Vec<_> = (0..batch)
            .map(|i| serde_json::json!({"Id": format!("e{i}"), "MessageBody": format!("{n}-{i}-{body}")}))
            .collect();
        let out = self
            .call("SendMessageBatch", serde_json::json!({"QueueUrl": queue, "Entries": entries}))
            .await?;
        let failed = out.get("Failed").and_then(|f| f.as_array()).map_or(0, Vec::len);
        if failed > 0 {
            return Err(format!("{failed} batch entries failed").into());
        }
        Ok(batch)
    }

    /// One receive of up to 10 and the delete of what it got; how many were consumed.
    async fn consume(&self, queue: &str) -> Result<usize> {
        let out = self
            .call(
                "ReceiveMessage",
                serde_json::json!({"QueueUrl": queue, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0, "VisibilityTimeout": 60}),
            )
            .await?;
        let messages = out.get("Messages").and_then(|m| m.as_array()).cloned().unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let entries: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| serde_json::json!({"Id": i.to_string(), "ReceiptHandle": m["ReceiptHandle"]}))
            .collect();
        let out = self
            .call("DeleteMessageBatch", serde_json::json!({"QueueUrl": queue, "Entries": entries}))
            .await?;
        let failed = out.get("Failed").and_then(|f| f.as_array()).map_or(0, Vec::len);
        if failed > 0 {
            return Err(format!("{failed} deletes failed").into());
        }
        Ok(messages.len())
    }
}

// --- PostgreSQL: a FOR UPDATE SKIP LOCKED table ------------------------------------------------

/// The same two durable steps as SQS: a receive hides up to 10 rows for 60 s (one UPDATE,
/// committed), the delete removes them (one DELETE, committed). synchronous_commit stays on.
struct Pg {
    client: tokio_postgres::Client,
    table: String,
}

impl Pg {
    async fn connect(dsn: &str, table: &str) -> Result<Pg> {
        let (client, connection) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(Pg { client, table: table.to_string() })
    }

    async fn send(&self, batch: usize, n: u64) -> Result<usize> {
        let bodies: Vec<String> = (0..batch).map(|i| format!("{n}-{i}-{}", "x".repeat(BODY_BYTES))).collect();
        let sql = format!("INSERT INTO {} (body) SELECT unnest($1::text[])", self.table);
        self.client.execute(&sql, &[&bodies]).await?;
        Ok(batch)
    }

    async fn consume(&self) -> Result<usize> {
        let sql = format!(
            "UPDATE {t} SET visible_at = now() + interval '60 seconds', receive_count = receive_count + 1
             WHERE id IN (SELECT id FROM {t} WHERE visible_at <= now() ORDER BY visible_at, id
                          LIMIT 10 FOR UPDATE SKIP LOCKED)
             RETURNING id, body",
            t = self.table
        );
        let rows = self.client.query(&sql, &[]).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let sql = format!("DELETE FROM {} WHERE id = ANY($1)", self.table);
        self.client.execute(&sql, &[&ids]).await?;
        Ok(ids.len())
    }
}

// --- JetStream ---------------------------------------------------------------------------------

/// Publish waits for the stream's ack; a consume fetches up to 10 from a durable pull consumer
/// (explicit acks, ack wait 60 s as a visibility timeout) and double-acks each, so the server
/// has confirmed the ack before the call counts it.
struct Js {
    js: async_nats::jetstream::Context,
    subject: String,
    consumer: Option<async_nats::jetstream::consumer::PullConsumer>,
}

impl Js {
    async fn connect(url: &str, stream: &str, consuming: bool) -> Result<Js> {
        let client = async_nats::connect(url).await?;
        let js = async_nats::jetstream::new(client);
        let consumer = if consuming {
            let s = js.get_stream(stream).await?;
            Some(
                s.get_or_create_consumer(
                    "bench",
                    async_nats::jetstream::consumer::pull::Config {
                        durable_name: Some("bench".into()),
                        ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(60),
                        max_ack_pending: 100_000,
                        ..Default::default()
                    },
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Js { js, subject: stream.to_string(), consumer })
    }

    async fn send(&self, batch: usize, n: u64) -> Result<usize> {
        let mut acks = Vec::with_capacity(batch);
        for i in 0..batch {
            let payload = Bytes::from(format!("{n}-{i}-{}", "x".repeat(BODY_BYTES)));
            acks.push(self.js.publish(self.subject.clone(), payload).await?);
        }
        for ack in acks {
            ack.await?;
        }
        Ok(batch)
    }

    async fn consume(&self) -> Result<usize> {
        use futures::StreamExt;
        let consumer = self.consumer.as_ref().ok_or("not a consumer")?;
        let mut batch = consumer
            .fetch()
            .max_messages(10)
            .expires(Duration::from_millis(200))
            .messages()
            .await?;
        let mut got = Vec::new();
        while let Some(m) = batch.next().await {
            got.push(m?);
        }
        let n = got.len();
        let acks = got.iter().map(|m| m.double_ack());
        for r in futures::future::join_all(acks).await {
            r?;
        }
        Ok(n)
    }
}

// --- One interface over the three --------------------------------------------------------------

enum Target {
    Sqs(Sqs, String),
    Pg(Pg),
    Js(Js),
}

impl Target {
    async fn open(spec: &str, queue: &str, consuming: bool) -> Result<Target> {
        if let Some(endpoint) = spec.strip_prefix("sqs:") {
            Ok(Target::Sqs(Sqs::new(endpoint), queue.to_string()))
        } else if let Some(dsn) = spec.strip_prefix("pg:") {
            Ok(Target::Pg(Pg::connect(dsn, queue).await?))
        } else if let Some(url) = spec.strip_prefix("nats:") {
            Ok(Target::Js(Js::connect(url, queue, consuming).await?))
        } else {
            Err(format!("unknown target {spec}").into())
        }
    }

    async fn send(&self, batch: usize, n: u64) -> Result<usize> {
        match self {
            Target::Sqs(s, q) => s.send(q, batch, n).await,
            Target::Pg(p) => p.send(batch, n).await,
            Target::Js(j) => j.send(batch, n).await,
        }
    }

    async fn consume(&self) -> Result<usize> {
        match self {
            Target::Sqs(s, q) => s.consume(q).await,
            Target::Pg(p) => p.consume().await,
            Target::Js(j) => j.consume().await,
        }
    }
}

/// One connection per task for PostgreSQL and NATS (a PostgreSQL connection runs one statement
/// at a time); SQS tasks share the HTTP pool, which opens a connection per concurrent call.
async fn targets(spec: &str, queue: &str, n: usize, consuming: bool) -> Result<Vec<Arc<Target>>> {
    let mut out = Vec::new();
    if spec.starts_with("sqs:") {
        let one = Arc::new(Target::open(spec, queue, consuming).await?);
        out.resize(n, one);
    } else {
        for _ in 0..n {
            out.push(Arc::new(Target::open(spec, queue, consuming).await?));
        }
    }
    Ok(out)
}

// --- Modes -------------------------------------------------------------------------------------

async fn closed_loop(
    spec: &str,
    queue: &str,
    conc: usize,
    secs: f64,
    max: u64,
    work: fn(Arc<Target>, u64) -> futures::future::BoxFuture<'static, Result<usize>>,
    consuming: bool,
) -> Result<String> {
    let targets = targets(spec, queue, conc, consuming).await?;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let dry = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Latencies::default());
    let cpu0 = cpu_ms();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (t, target) in targets.into_iter().enumerate() {
        let (done, errors, dry, latencies) = (done.clone(), errors.clone(), dry.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = (t as u64) << 32;
            while Instant::now() < deadline && done.load(Ordering::Relaxed) < max && !dry.load(Ordering::Relaxed) {
                let began = Instant::now();
                match work(target.clone(), n).await {
                    Ok(0) => dry.store(true, Ordering::Relaxed),
                    Ok(k) => {
                        done.fetch_add(k as u64, Ordering::Relaxed);
                        latencies.push(began.elapsed().as_secs_f64() * 1000.0);
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {e}");
                        }
                    }
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    Ok(format!(
        "rate={:.0} count={done} errors={} secs={elapsed:.2} {} cpu_ms={:.0}",
        done as f64 / elapsed,
        errors.load(Ordering::Relaxed),
        latencies.summary(),
        cpu_ms() - cpu0
    ))
}

/// Fixed-rate single sends: send i is due at start + i/rate; its latency counts from then, so a
/// stall shows as latency of every send that waited behind it.
async fn fixed_rate(
    rate: f64,
    count: u64,
    send: impl Fn(u64) -> futures::future::BoxFuture<'static, Result<bool>>,
) -> Result<String> {
    let latencies = Arc::new(Latencies::default());
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    // At most this many in flight: a server that stops answering cannot make the generator
    // open sockets without bound (the sends that wait still count their wait as latency).
    let slots = Arc::new(tokio::sync::Semaphore::new(2048));
    let cpu0 = cpu_ms();
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let permit = slots.clone().acquire_owned().await?;
        let call = send(i);
        let (latencies, ok, failed) = (latencies.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let result = call.await;
            latencies.push(due.elapsed().as_secs_f64() * 1000.0);
            match result {
                Ok(true) => ok.fetch_add(1, Ordering::Relaxed),
                Ok(false) => failed.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("error: {e}");
                    }
                    0
                }
            };
            drop(permit);
        }));
    }
    let scheduled = started.elapsed().as_secs_f64();
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(format!(
        "rate={:.0} count={} errors={} secs={elapsed:.2} offered_secs={scheduled:.2} {} cpu_ms={:.0}",
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        latencies.summary(),
        cpu_ms() - cpu0
    ))
}

#[tokio::main]
async fn main() -> Result<()> {
    let (mode, a) = args()?;
    let line = match mode.as_str() {
        "send" => {
            let batch: usize = get(&a, "batch")?;
            let work = match batch {
                1 => (|t: Arc<Target>, n| Box::pin(async move { t.send(1, n).await }) as _) as fn(_, _) -> _,
                _ => |t: Arc<Target>, n| Box::pin(async move { t.send(10, n).await }) as _,
            };
            closed_loop(&get::<String>(&a, "target")?, &get::<String>(&a, "queue")?, get(&a, "conc")?, get(&a, "secs")?, u64::MAX, work, false).await?
        }
        "consume" => {
            let max = a.get("max").map_or(Ok(u64::MAX), |m| m.parse())?;
            let work = |t: Arc<Target>, _| Box::pin(async move { t.consume().await }) as _;
            closed_loop(&get::<String>(&a, "target")?, &get::<String>(&a, "queue")?, get(&a, "conc")?, get(&a, "secs")?, max, work, true).await?
        }
        "fill" => {
            let count: u64 = get(&a, "count")?;
            let work = |t: Arc<Target>, n| Box::pin(async move { t.send(10, n).await }) as _;
            closed_loop(&get::<String>(&a, "target")?, &get::<String>(&a, "queue")?, get(&a, "conc")?, 3600.0, count, work, false).await?
        }
        "rate" => {
            let rate: f64 = get(&a, "rate")?;
            let secs: f64 = get(&a, "secs")?;
            let target = Arc::new(Target::open(&get::<String>(&a, "target")?, &get::<String>(&a, "queue")?, false).await?);
            fixed_rate(rate, (rate * secs) as u64, move |n| {
                let t = target.clone();
                Box::pin(async move { t.send(1, n).await.map(|k| k == 1) })
            })
            .await?
        }
        "post" => {
            let url: String = get(&a, "url")?;
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let http: Client<HttpConnector, Full<Bytes>> =
                Client::builder(TokioExecutor::new()).pool_max_idle_per_host(4096).build(connector);
            fixed_rate(get(&a, "rate")?, get(&a, "count")?, move |n| {
                let (http, url) = (http.clone(), url.clone());
                Box::pin(async move {
                    let request = hyper::Request::post(url)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(format!("{{\"order\":{n}}}"))))?;
                    let response = http.request(request).await?;
                    let status = response.status();
                    let body = response.into_body().collect().await?.to_bytes();
                    if status != hyper::StatusCode::OK {
                        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into());
                    }
                    Ok(true)
                })
            })
            .await?
        }
        "create" => {
            let target: String = get(&a, "target")?;
            let endpoint = target.strip_prefix("sqs:").ok_or("create needs target=sqs:URL")?;
            let out = Sqs::new(endpoint)
                .call("CreateQueue", serde_json::json!({"QueueName": get::<String>(&a, "name")?}))
                .await?;
            out.get("QueueUrl").and_then(|u| u.as_str()).ok_or("no QueueUrl")?.to_string()
        }
        "js-setup" => {
            let target: String = get(&a, "target")?;
            let url = target.strip_prefix("nats:").ok_or("js-setup needs target=nats:URL")?;
            let name: String = get(&a, "queue")?;
            let js = async_nats::jetstream::new(async_nats::connect(url).await?);
            // A leftover of an earlier run is replaced, never appended to.
            let _ = js.delete_stream(&name).await;
            js.create_stream(async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![name.clone()],
                storage: async_nats::jetstream::stream::StorageType::File,
                retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
                ..Default::default()
            })
            .await?;
            format!("stream={name}")
        }
        "js-delete" => {
            let target: String = get(&a, "target")?;
            let url = target.strip_prefix("nats:").ok_or("js-delete needs target=nats:URL")?;
            let js = async_nats::jetstream::new(async_nats::connect(url).await?);
            let _ = js.delete_stream(get::<String>(&a, "queue")?).await;
            "deleted".to_string()
        }
        other => return Err(format!("unknown mode {other}").into()),
    };
    println!("{line}");
    Ok(())
}
