//! Durable throughput of the queue service over an embedded store, for choosing the engine.
//!
//! Usage: store_bench ENGINE DIR [SENDS] [BACKLOG] [BIG]
//! ENGINE is `redb` (the default store) or, built with `--features bench-engines`, `sqlite`
//! or `fjall`. Each line of output is one measure, `name value unit`:
//! 1. SENDS single-message sends from 32 concurrent tasks (group commit);
//! 2. SENDS messages in SendMessageBatch calls of 10 from 32 concurrent tasks;
//! 3. a BACKLOG of waiting messages, then ReceiveMessage(10) + DeleteMessageBatch from 4
//!    concurrent consumers until 20,000 are consumed;
//! 4. the same consumption from a queue holding only those 20,000 (empty once they are
//!    consumed) and from one with BIG more waiting behind them: a receive must not slow down
//!    with the backlog;
//! 5. the process's resident memory (now and peak) and the store's size on disk with BIG
//!    messages waiting.
//!
//! Every commit is fsync'd; run it on the disk the stack uses. The service is the one the
//! stack runs (validation, MD5s, receipt handles and all): only the store differs.

#[cfg(feature = "bench-engines")]
mod fjall;
#[cfg(feature = "bench-engines")]
mod sqlite;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use spillway_queue::store::Store;
use spillway_queue::store::redb::RedbStore;
use spillway_queue::{
    CreateQueueRequest, DeleteMessageBatchRequestEntry, QueueService, ReceiveMessageRequest,
    SendMessageBatchRequest, SendMessageBatchRequestEntry, SendMessageRequest,
};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SENDERS: usize = 32;
const CONSUMERS: usize = 4;
const CONSUMED: usize = 20_000;

fn open_store(engine: &str, dir: &Path) -> BenchResult<Arc<dyn Store>> {
    Ok(match engine {
        "redb" => Arc::new(RedbStore::open(dir)?),
        #[cfg(feature = "bench-engines")]
        "sqlite" => Arc::new(sqlite::SqliteStore::open(dir)?),
        #[cfg(feature = "bench-engines")]
        "fjall" => Arc::new(fjall::FjallStore::open(dir)?),
        other => {
            return Err(format!(
                "unknown engine {other} (sqlite and fjall need --features bench-engines)"
            )
            .into());
        }
    })
}

fn report(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.0} {unit}");
}

/// `calls` SendMessage (batch 1) or SendMessageBatch (batch 10) calls spread over 32 tasks.
async fn send(
    service: &QueueService,
    queue: &str,
    calls: usize,
    batch: usize,
    body: &str,
) -> BenchResult<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..SENDERS {
        let service = service.clone();
        let queue = queue.to_string();
        let body = body.to_string();
        let mine = calls / SENDERS + usize::from(task < calls % SENDERS);
        tasks.push(tokio::spawn(async move {
            for call in 0..mine {
                if batch == 1 {
                    service
                        .send_message(SendMessageRequest {
                            queue_name: queue.clone(),
                            message_body: body.clone(),
                            sender_id: "bench".into(),
                            ..Default::default()
                        })
                        .await?;
                } else {
                    let entries = (0..batch)
                        .map(|i| SendMessageBatchRequestEntry {
                            id: format!("e{i}"),
                            message_body: format!("{task}-{call}-{i}-{body}"),
                            ..Default::default()
                        })
                        .collect();
                    let result = service
                        .send_message_batch(SendMessageBatchRequest {
                            queue_name: queue.clone(),
                            entries,
                            sender_id: "bench".into(),
                        })
                        .await?;
                    if !result.failed.is_empty() {
                        return Err(format!("{} entries failed", result.failed.len()).into());
                    }
                }
            }
            BenchResult::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((calls * batch) as f64 / started.elapsed().as_secs_f64())
}

/// Receives (10 at a time) and deletes `count` messages from 4 tasks; messages/s.
async fn consume(service: &QueueService, queue: &str, count: usize) -> BenchResult<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONSUMERS {
        let service = service.clone();
        let queue = queue.to_string();
        tasks.push(tokio::spawn(async move {
            let mut consumed = 0;
            while consumed < count / CONSUMERS {
                let messages = service
                    .receive_message(ReceiveMessageRequest {
                        queue_name: queue.clone(),
                        max_number_of_messages: Some(10),
                        ..Default::default()
                    })
                    .await?
                    .messages;
                if messages.is_empty() {
                    return Err("the queue ran dry before the count was consumed".into());
                }
                consumed += messages.len();
                let entries = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| DeleteMessageBatchRequestEntry {
                        id: i.to_string(),
                        receipt_handle: m.receipt_handle.clone(),
                    })
                    .collect();
                let result = service.delete_message_batch(&queue, entries).await?;
                if !result.failed.is_empty() {
                    return Err(format!("{} deletes failed", result.failed.len()).into());
                }
            }
            BenchResult::Ok(consumed)
        }));
    }
    let mut consumed = 0;
    for task in tasks {
        consumed += task.await??;
    }
    Ok(consumed as f64 / started.elapsed().as_secs_f64())
}

/// The queue's ApproximateNumberOfMessages, to check that the store counted what it was given.
async fn waiting(service: &QueueService, queue: &str) -> BenchResult<u64> {
    let attributes = service
        .get_queue_attributes(queue, &["ApproximateNumberOfMessages".to_string()])
        .await?;
    Ok(attributes
        .get("ApproximateNumberOfMessages")
        .ok_or("no ApproximateNumberOfMessages")?
        .parse()?)
}

async fn expect_waiting(service: &QueueService, queue: &str, expected: usize) -> BenchResult<()> {
    let found = waiting(service, queue).await?;
    if found != expected as u64 {
        return Err(format!("{queue}: {found} messages waiting, expected {expected}").into());
    }
    Ok(())
}

/// Kilobytes from a `/proc/self/status` line such as `VmHWM:   123 kB`.
fn status_kb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: store_bench ENGINE DIR [SENDS] [BACKLOG] [BIG]";
    let engine = args.get(1).ok_or(usage)?;
    let dir = Path::new(args.get(2).ok_or(usage)?);
    let sends: usize = args.get(3).map_or(Ok(20_000), |s| s.parse())?;
    let backlog: usize = args.get(4).map_or(Ok(100_000), |s| s.parse())?;
    let big: usize = args.get(5).map_or(Ok(1_000_000), |s| s.parse())?;
    let store = {
        let (engine, dir) = (engine.clone(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || open_store(&engine, &dir)).await??
    };
    let service = QueueService::open_with_store(store, "us-east-1", "000000000000").await?;
    for name in ["single", "batched", "backlog", "small", "big"] {
        service
            .create_queue(CreateQueueRequest {
                queue_name: name.into(),
                ..Default::default()
            })
            .await?;
    }
    let body = "x".repeat(200);

    report(
        "send_batch1",
        send(&service, "single", sends, 1, &body).await?,
        "msg/s",
    );
    report(
        "send_batch10",
        send(&service, "batched", sends / 10, 10, &body).await?,
        "msg/s",
    );
    expect_waiting(&service, "single", sends).await?;
    expect_waiting(&service, "batched", sends / 10 * 10).await?;

    send(&service, "backlog", backlog / 10, 10, &body).await?;
    report(
        "receive_delete_backlog",
        consume(&service, "backlog", CONSUMED).await?,
        "msg/s",
    );
    expect_waiting(&service, "backlog", backlog - CONSUMED).await?;

    // The small queue holds only what is consumed; the big one holds BIG, of which the same
    // number is consumed (the oldest first, as the visibility index orders them).
    send(&service, "small", CONSUMED / 10, 10, &body).await?;
    let fill = send(&service, "big", big / 10, 10, &body).await?;
    report("fill_big_batch10", fill, "msg/s");
    report("rss_now", status_kb("VmRSS:") / 1024.0, "MiB");
    report("rss_peak", status_kb("VmHWM:") / 1024.0, "MiB");
    report("disk", disk_bytes(dir) as f64 / 1048576.0, "MiB");
    report(
        "receive_delete_empty",
        consume(&service, "small", CONSUMED).await?,
        "msg/s",
    );
    report(
        "receive_delete_1m",
        consume(&service, "big", CONSUMED).await?,
        "msg/s",
    );
    expect_waiting(&service, "small", 0).await?;
    expect_waiting(&service, "big", big / 10 * 10 - CONSUMED).await?;
    service.close();
    Ok(())
}
