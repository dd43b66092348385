//! The load generator: a closed model (a fixed population of users, each sending a request,
//! waiting, and repeating, as Locust does) and an open model (requests arrive at a fixed rate
//! whether or not earlier ones have finished).
//!
//! In the open model latency is measured from each request's *intended* send time, not from when
//! it was actually sent: when the server is slow and every in-flight slot is busy, arrivals
//! queue, and the queueing is part of what a user would have felt. Measuring from the actual
//! send would hide it (coordinated omission).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Mutex, Semaphore, watch};
use tokio::time::Instant;

use crate::client::{Connection, Prepared, Target};
use crate::stats::{Outcome, Recorder};
use crate::tasks::TaskSet;

/// The wait between one user's tasks: uniform in [min, max] (Locust's `between`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wait {
    pub min: Duration,
    pub max: Duration,
}

impl Wait {
    pub const NONE: Wait = Wait {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// "5s..9s" (a range) or "2s" (constant).
    pub fn parse(s: &str) -> Result<Self, String> {
        let parse =
            |p: &str| humantime::parse_duration(p.trim()).map_err(|e| format!("{p:?}: {e}"));
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let d = parse(s)?;
                (d, d)
            }
        };
        if min > max {
            return Err(format!("{s:?}: the minimum is above the maximum"));
        }
        Ok(Self { min, max })
    }

    fn sample(&self, rng: &mut impl Rng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let span = (self.max - self.min).as_secs_f64();
        self.min + Duration::from_secs_f64(rng.gen_range(0.0..=span))
    }
}

#[derive(Clone, Debug)]
pub enum Model {
    /// Locust's model: `users` users, `spawn_rate` new users per second until all run.
    Closed {
        users: u32,
        spawn_rate: f64,
        wait: Wait,
    },
    /// `rate` requests per second; at most `max_in_flight` at once, the rest queue.
    Open { rate: f64, max_in_flight: usize },
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub model: Model,
    pub run_time: Duration,
    /// After the run time, how long requests already sent may take to finish (Locust's
    /// --stop-timeout); the rest are abandoned and not counted.
    pub stop_timeout: Duration,
    pub request_timeout: Duration,
    pub seed: u64,
}

/// Shared by every user.
struct Shared {
    tasks: Arc<TaskSet>,
    target: Target,
    recorder: Arc<Recorder>,
    plan: Plan,
}

fn prepare(tasks: &TaskSet, index: usize, rng: &mut impl Rng) -> Option<Prepared> {
    let t = tasks.tasks.get(index)?;
    Some(Prepared {
        method: t.method.clone(),
        path_and_query: t.path_and_query(rng),
        body: t.body.clone(),
        headers: t.headers.clone(),
    })
}

fn judge(tasks: &TaskSet, index: usize, result: Result<crate::client::Answer, String>) -> Outcome {
    let expect = tasks.tasks.get(index).map(|t| t.expect).unwrap_or(200);
    match result {
        Ok(a) if a.status == expect => Outcome::Ok { bytes: a.bytes },
        Ok(a) => Outcome::Failed {
            error: format!("HTTP {} (expected {expect})", a.status),
            bytes: a.bytes,
        },
        Err(e) => Outcome::Failed { error: e, bytes: 0 },
    }
}

/// Resolves once the run is told to stop (the run time is up, or Ctrl-C).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Resolves `grace` after the stop: how long a request already sent may still take.
async fn past_grace(mut rx: watch::Receiver<bool>, grace: Duration) {
    stopped(&mut rx).await;
    tokio::time::sleep(grace).await;
}

/// Runs the plan until its run time is up or `stop` turns true (Ctrl-C); returns when every
/// user has stopped.
pub async fn run(
    tasks: Arc<TaskSet>,
    target: Target,
    recorder: Arc<Recorder>,
    plan: Plan,
    stop: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        tasks,
        target,
        recorder,
        plan,
    });
    let start = Instant::now();
    // The run time ends the run through the same signal as Ctrl-C: one way to stop.
    let (timer_tx, timer_rx) = watch::channel(false);
    let run_time = shared.plan.run_time;
    let mut outer = stop;
    let timer = tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(run_time) => {},
            _ = stopped(&mut outer) => {},
        }
        let _ = timer_tx.send(true);
    });
    match shared.plan.model.clone() {
        Model::Closed {
            users,
            spawn_rate,
            wait,
        } => closed(shared, users, spawn_rate, wait, start, timer_rx).await,
        Model::Open {
            rate,
            max_in_flight,
        } => open(shared, rate, max_in_flight, start, timer_rx).await,
    }
    timer.abort();
}

async fn closed(
    shared: Arc<Shared>,
    users: u32,
    spawn_rate: f64,
    wait: Wait,
    start: Instant,
    stop: watch::Receiver<bool>,
) {
    let mut handles = Vec::with_capacity(users as usize);
    let spawn_gap = Duration::from_secs_f64(1.0 / spawn_rate.max(1e-6));
    let mut rx = stop.clone();
    for id in 0..users {
        let due = start + spawn_gap.mul_f64(f64::from(id));
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {},
            _ = stopped(&mut rx) => break,
        }
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            shared.recorder.users.fetch_add(1, Ordering::Relaxed);
            user(&shared, id, wait, stop).await;
            shared.recorder.users.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

async fn user(shared: &Shared, id: u32, wait: Wait, mut stop: watch::Receiver<bool>) {
    // A seed per user derived from the run's seed: a run is reproducible, users differ.
    let mut rng = StdRng::seed_from_u64(
        shared
            .plan
            .seed
            .wrapping_add(u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    );
    let mut conn = Connection::default();
    while !*stop.borrow() {
        let index = shared.tasks.pick(&mut rng);
        let Some(req) = prepare(&shared.tasks, index, &mut rng) else {
            return;
        };
        let sent = Instant::now();
        let result = tokio::select! {
            r = conn.send(&shared.target, &req, shared.plan.request_timeout) => r,
            // Locust's --stop-timeout: a request still running after it is abandoned.
            _ = past_grace(stop.clone(), shared.plan.stop_timeout) => return,
        };
        let latency = sent.elapsed();
        shared
            .recorder
            .record(index, latency, judge(&shared.tasks, index, result));
        let pause = wait.sample(&mut rng);
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {},
                _ = stopped(&mut stop) => return,
            }
        }
    }
}

async fn open(
    shared: Arc<Shared>,
    rate: f64,
    max_in_flight: usize,
    start: Instant,
    stop: watch::Receiver<bool>,
) {
    let mut rng = StdRng::seed_from_u64(shared.plan.seed);
    let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
    // Idle kept-alive connections, reused by whichever arrival comes next.
    let idle: Arc<Mutex<Vec<Connection>>> = Arc::new(Mutex::new(Vec::new()));
    let gap = 1.0 / rate.max(1e-6);
    let intended_at = |n: u64| start + Duration::from_secs_f64(gap * n as f64);
    let mut rx = stop.clone();
    let mut handles = Vec::new();
    let mut n: u64 = 0;
    let mut unsent: u64 = 0;
    loop {
        let intended = intended_at(n);
        tokio::select! {
            _ = tokio::time::sleep_until(intended) => {},
            _ = stopped(&mut rx) => break,
        }
        n += 1;
        // Waiting here for a slot delays later arrivals too; their intended times do not move,
        // so the wait shows in their latency.
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stopped(&mut rx) => {
                unsent += 1;
                break;
            }
        };
        let index = shared.tasks.pick(&mut rng);
        let Some(req) = prepare(&shared.tasks, index, &mut rng) else {
            break;
        };
        let shared = Arc::clone(&shared);
        let idle = Arc::clone(&idle);
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            shared.recorder.users.fetch_add(1, Ordering::Relaxed);
            let job = async {
                let mut conn = idle.lock().await.pop().unwrap_or_default();
                let result = conn
                    .send(&shared.target, &req, shared.plan.request_timeout)
                    .await;
                shared.recorder.record(
                    index,
                    intended.elapsed(),
                    judge(&shared.tasks, index, result),
                );
                idle.lock().await.push(conn);
            };
            tokio::select! {
                _ = job => {},
                _ = past_grace(stop, shared.plan.stop_timeout) => {},
            }
            shared.recorder.users.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        }));
        // Finished handles are dropped as we go so a long run does not keep millions.
        if handles.len() > 4096 {
            handles.retain(|h: &tokio::task::JoinHandle<()>| !h.is_finished());
        }
    }
    // Arrivals that were due before the stop but never got a slot (the loop stopped at the
    // one it was waiting for), counted with the same arithmetic as their intended times.
    let end = Instant::now().min(start + shared.plan.run_time);
    while intended_at(n) < end {
        n += 1;
        unsent += 1;
    }
    shared.recorder.unsent.fetch_add(unsent, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
}
