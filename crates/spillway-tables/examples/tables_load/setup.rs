//! Preparing a target: creating the table (peers; spillway's comes from the stack file) and
//! bulk-loading it with BatchWriteItem, 25 items a request, from concurrent workers, resending
//! whatever a target returns as UnprocessedItems.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conn::Conn;
use crate::requests;
use crate::run::Target;
use crate::stats::Tally;

const BATCH: u64 = 25;
/// How often one batch is resent (its unprocessed part, or after an error) before giving up.
const ATTEMPTS: u32 = 10;

/// CreateTable (an existing table is fine), then DescribeTable until it is ACTIVE.
pub async fn create(t: &Target) -> Result<(), String> {
    let mut conn = Conn::new(&t.addr);
    let answer = conn
        .call(&t.signer, "CreateTable", requests::create_table(&t.table))
        .await
        .map_err(|e| format!("CreateTable: {e}"))?;
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    if answer.status != 200 && !text.contains("ResourceInUseException") {
        return Err(format!("CreateTable: HTTP {}: {text}", answer.status));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let answer = conn
            .call(
                &t.signer,
                "DescribeTable",
                requests::describe_table(&t.table),
            )
            .await
            .map_err(|e| format!("DescribeTable: {e}"))?;
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if v["Table"]["TableStatus"] == "ACTIVE" {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "table {} did not become ACTIVE within 60 s",
        t.table
    ))
}

/// Items `[from, to)` of the layout in `requests`.
fn items(t: &Target, from: u64, to: u64) -> Vec<Value> {
    (from..to)
        .map(|i| {
            requests::item(
                &requests::partition_key(i / t.per_partition),
                &requests::sort_key(i % t.per_partition),
                i,
            )
        })
        .collect()
}

/// Writes one batch until nothing is left unprocessed; Err after `ATTEMPTS`.
async fn write_batch(conn: &mut Conn, t: &Target, mut pending: Vec<Value>) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20 << attempt.min(5))).await;
        }
        match conn
            .call(
                &t.signer,
                "BatchWriteItem",
                requests::batch_write(&t.table, &pending),
            )
            .await
        {
            Ok(a) if a.status == 200 => {
                let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                let left = v["UnprocessedItems"][&t.table]
                    .as_array()
                    .map(|puts| {
                        puts.iter()
                            .map(|p| p["PutRequest"]["Item"].clone())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                if left.is_empty() {
                    return Ok(());
                }
                pending = left;
            }
            Ok(a) => {
                last = format!(
                    "BatchWriteItem: HTTP {}: {}",
                    a.status,
                    String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
                )
            }
            Err(e) => last = format!("BatchWriteItem: {e}"),
        }
    }
    Err(last)
}

/// Loads `t.items` items; the tally counts batches (`sent`) and their latencies.
pub async fn load(t: Arc<Target>, concurrency: usize) -> Tally {
    let batches = t.items.div_ceil(BATCH);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (t, next) = (t.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(&t.addr);
            let mut tally = Tally::default();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let batch = items(&t, b * BATCH, ((b + 1) * BATCH).min(t.items));
                let started = Instant::now();
                let outcome = write_batch(&mut conn, &t, batch).await;
                tally.sent += 1;
                match outcome {
                    Ok(()) => tally.ok(started.elapsed()),
                    Err(e) => {
                        tally.errors += 1;
                        tally.note(e);
                    }
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for w in workers {
        match w.await {
            Ok(tally) => all.merge(tally),
            Err(e) => all.note(format!("worker failed: {e}")),
        }
    }
    all
}
