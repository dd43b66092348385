//! The measured loops. Closed model (`--concurrency C`): C workers, each with its connection,
//! send back to back for the duration. Open model (`--rate R`): a ticker schedules requests
//! at fixed intervals and the connection workers take them in order; a request's latency
//! counts from its scheduled time, not from when a connection got free, so a target that
//! falls behind shows its queueing in the percentiles (no coordinated omission); how late each
//! request started against its schedule is kept too (`send_lag_*`). Requests still
//! waiting when the grace period ends are counted as `unsent`, each with the time it had waited
//! as a lower bound of its latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Mutex, mpsc};

use crate::conn::Conn;
use crate::requests;
use crate::sign::Signer;
use crate::stats::Tally;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Put,
    Get,
    Query,
}

pub struct Target {
    pub addr: String,
    pub table: String,
    pub signer: Signer,
    /// Items in the loaded table and per partition (GetItem and Query pick inside them).
    pub items: u64,
    pub per_partition: u64,
    /// Distinguishes this run's PutItem keys from earlier runs'.
    pub tag: String,
}

/// How long the open model keeps sending after the schedule ends.
const GRACE: Duration = Duration::from_secs(2);
/// The Query's Limit (the issue: one partition of 100 items).
const QUERY_LIMIT: u64 = 100;

/// One request of `op`; Ok(false) when it was answered 200 but held fewer items than asked.
async fn once(conn: &mut Conn, t: &Target, op: Op, worker: usize, n: u64) -> Result<bool, String> {
    let (action, body) = match op {
        Op::Put => (
            "PutItem",
            requests::put(&t.table, &format!("w{}-{worker}-{n}", t.tag), "s000", n),
        ),
        Op::Get => {
            let (p, s) = {
                let mut rng = rand::thread_rng();
                (
                    rng.gen_range(0..t.items.div_ceil(t.per_partition).max(1)),
                    rng.gen_range(0..t.per_partition.max(1)),
                )
            };
            let body = requests::get(
                &t.table,
                &requests::partition_key(p),
                &requests::sort_key(s),
            );
            ("GetItem", body)
        }
        Op::Query => {
            // Only whole partitions, so every Query can expect the same count.
            let whole = (t.items / t.per_partition).max(1);
            let p = rand::thread_rng().gen_range(0..whole);
            (
                "Query",
                requests::query(&t.table, &requests::partition_key(p), QUERY_LIMIT),
            )
        }
    };
    let answer = conn
        .call(&t.signer, action, body)
        .await
        .map_err(|e| format!("{action}: {e}"))?;
    if answer.status != 200 {
        return Err(format!(
            "{action}: HTTP {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
        ));
    }
    Ok(match op {
        Op::Put => true,
        Op::Get => requests::has_item(&answer.body),
        Op::Query => requests::count_in(&answer.body) == Some(t.per_partition.min(QUERY_LIMIT)),
    })
}

fn record(tally: &mut Tally, outcome: Result<bool, String>, latency: Duration) {
    match outcome {
        Ok(full) => {
            if !full {
                tally.short += 1;
            }
            tally.ok(latency);
        }
        Err(e) => {
            tally.errors += 1;
            tally.note(e);
        }
    }
}

pub async fn closed(t: Arc<Target>, op: Op, concurrency: usize, duration: Duration) -> Tally {
    let deadline = Instant::now() + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let t = t.clone();
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(&t.addr);
            let mut tally = Tally::default();
            let mut n = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                let outcome = once(&mut conn, &t, op, worker, n).await;
                tally.sent += 1;
                record(&mut tally, outcome, started.elapsed());
                n += 1;
            }
            tally
        }));
    }
    join(workers).await
}

pub struct Open {
    pub tally: Tally,
    pub scheduled: u64,
    pub unsent: u64,
}

pub async fn open(
    t: Arc<Target>,
    op: Op,
    rate: f64,
    connections: usize,
    duration: Duration,
) -> Open {
    let start = Instant::now();
    let stop_sending = start + duration + GRACE;
    let (tx, rx) = mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = Vec::new();
    for worker in 0..connections {
        let (t, rx) = (t.clone(), rx.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(&t.addr);
            let mut tally = Tally::default();
            let mut n = 0;
            loop {
                let next = rx.lock().await.recv().await;
                let Some(intended) = next else { break };
                if Instant::now() >= stop_sending {
                    // Put back the lower bound of its latency and leave the rest to the drain.
                    tally.latencies_us.push(
                        u64::try_from((Instant::now() - intended).as_micros()).unwrap_or(u64::MAX),
                    );
                    break;
                }
                tally.lag(intended.elapsed());
                let outcome = once(&mut conn, &t, op, worker, n).await;
                tally.sent += 1;
                record(&mut tally, outcome, intended.elapsed());
                n += 1;
            }
            tally
        }));
    }
    let total = (rate * duration.as_secs_f64()).round() as u64;
    // The ticker sleeps on an OS thread: nanosleep wakes within tens of microseconds, tokio's
    // timer within a millisecond, which would show as latency against a sub-millisecond target.
    let ticker = tokio::task::spawn_blocking(move || tick(&tx, start, rate, total));
    let scheduled = ticker.await.unwrap_or(0);
    let mut tally = join(workers).await;
    // What no worker took before the grace ended waited at least until now.
    let mut rx = rx.lock().await;
    let now = Instant::now();
    let mut unsent = 0;
    while let Ok(intended) = rx.try_recv() {
        tally
            .latencies_us
            .push(u64::try_from((now - intended).as_micros()).unwrap_or(u64::MAX));
        unsent += 1;
    }
    // Each worker that stopped on the deadline held one more.
    unsent += scheduled.saturating_sub(tally.sent + unsent);
    Open {
        tally,
        scheduled,
        unsent,
    }
}

/// Hands out `total` scheduled times `start + k / rate`; returns how many it handed out.
fn tick(tx: &mpsc::UnboundedSender<Instant>, start: Instant, rate: f64, total: u64) -> u64 {
    // Linux lets a sleeping thread wake up to 50 µs late by default (timer slack), which
    // would be counted as the target's latency; ask for the exact time instead.
    let _ = nix::sys::prctl::set_timerslack(1);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let at = |k: u64| start + interval.mul_f64(k as f64);
    let mut scheduled = 0;
    while scheduled < total {
        let now = Instant::now();
        if at(scheduled) > now {
            std::thread::sleep(at(scheduled) - now);
        }
        // Everything due by now goes out at once, so a late wake-up does not lower the rate.
        let now = Instant::now();
        while scheduled < total && at(scheduled) <= now {
            if tx.send(at(scheduled)).is_err() {
                return scheduled;
            }
            scheduled += 1;
        }
    }
    scheduled
}

async fn join(workers: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut all = Tally::default();
    for w in workers {
        match w.await {
            Ok(t) => all.merge(t),
            Err(e) => all.note(format!("worker failed: {e}")),
        }
    }
    all
}
