//! StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask, and the task that
//! moves a dead-letter queue's messages back at its rate.
//!
//! A batch of moves is one commit: the messages leave the source, arrive in their destination
//! as new messages (new id, new send and enqueue time, receive count 0, body and attributes
//! kept, as AWS's redrive does), and the task's record (count moved, scan position) is
//! rewritten, so a crash never loses or doubles a moved message and a restart resumes the task
//! where its last commit left it. A message is claimed as a receive claims it, so a concurrent
//! receive never gets a message that is being moved.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::receive::Claims;
use super::{Embedded, Inner, QueueHandle, lock};
use crate::clock::now_ms;
use crate::error::QueueError;
use crate::fifo;
use crate::move_task::{self, KEPT_PER_QUEUE, MAX_RATE, MoveStatus, MoveTask};
use crate::store::{self, DeliveryState, Mutation, StoreError, StoredMessage};

/// States examined per pass over the source queue. Messages in flight are passed over, so a
/// pass may look at more messages than it moves.
const SCAN: usize = 256;
/// Moves committed together at most. At rate r a batch is r/10 messages, so the rate holds
/// within about a tenth of a second.
const MAX_BATCH: usize = 100;

fn not_found(parameter: &str) -> QueueError {
    QueueError::ResourceNotFound(format!(
        "The resource that you specified for the {parameter} parameter doesn't exist."
    ))
}

/// The metadata mutation that stores a queue's tasks as they are now.
fn persist(queue: u64, moves: &[MoveTask]) -> Result<Mutation, StoreError> {
    Ok(Mutation::PutMeta {
        key: move_task::meta_key(queue),
        value: store::encode(&moves)?,
    })
}

/// What one pass of a task did.
enum Step {
    /// Moved this many (possibly none: every message of the pass was in flight).
    Moved(u64),
    /// Nothing left that was in the queue when the task started.
    Done,
    /// Stopped with this reason (committed as FAILED).
    Failed,
}

impl Embedded {
    /// The queue whose ARN is exactly `queue_arn` (region and account included).
    pub(super) fn queue_by_exact_arn(&self, queue_arn: &str) -> Option<Arc<QueueHandle>> {
        self.queue_by_arn(queue_arn).filter(|q| q.arn == queue_arn)
    }

    /// ARNs of the queues whose RedrivePolicy names `dead_letter_arn`: where a move task with
    /// no DestinationArn may send messages (the API layer authorizes SendMessage on them).
    pub fn dead_letter_source_arns(&self, dead_letter_arn: &str) -> Vec<String> {
        self.all_queues()
            .into_iter()
            .filter(|q| {
                q.config()
                    .redrive_policy
                    .is_some_and(|p| p.dead_letter_target_arn == dead_letter_arn)
            })
            .map(|q| q.arn.clone())
            .collect()
    }

    /// StartMessageMoveTask: the task's handle. It moves the messages in the source queue at
    /// the time of the call, in the background.
    pub async fn start_message_move_task(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
        max_per_second: Option<u32>,
    ) -> Result<String, QueueError> {
        if let Some(rate) = max_per_second
            && !(1..=MAX_RATE).contains(&rate)
        {
            return Err(QueueError::invalid_parameter(
                "MaxNumberOfMessagesPerSecond",
                rate,
                "Must be between 1 and 500.",
            ));
        }
        let source = self
            .queue_by_exact_arn(source_arn)
            .ok_or_else(|| not_found("SourceArn"))?;
        if self.dead_letter_source_arns(&source.arn).is_empty() {
            return Err(QueueError::InvalidParameterValue(
                "Source queue must be configured as a Dead Letter Queue.".into(),
            ));
        }
        if let Some(arn) = destination_arn {
            let destination = self
                .queue_by_exact_arn(arn)
                .ok_or_else(|| not_found("DestinationArn"))?;
            if destination.fifo != source.fifo {
                return Err(QueueError::InvalidParameterValue(
                    "The source queue and destination queue must be of the same queue type.".into(),
                ));
            }
            if destination.id == source.id {
                return Err(QueueError::InvalidParameterValue(
                    "The source queue and destination queue must be different.".into(),
                ));
            }
        }
        let id = source.id;
        let to_move = self.read(move |s| s.counts(id, now_ms())).await?.total;
        let task_id = uuid::Uuid::new_v4().to_string();
        let (started, committed) = self.inner.writer.submit(|seqs| {
            let mut moves = lock(&source.moves);
            if moves.iter().any(|t| t.status.active()) {
                return (
                    Vec::new(),
                    Err(QueueError::InvalidParameterValue(
                        "There is already a task running. Only one active task is allowed for a source queue arn at a given time.".into(),
                    )),
                );
            }
            // A sequence allocated here is above every message committed or being committed
            // (allocation and commit order are the same), and below every later one.
            let task = MoveTask {
                task_id: task_id.clone(),
                source_arn: source.arn.clone(),
                destination_arn: destination_arn.map(str::to_owned),
                max_per_second,
                status: MoveStatus::Running,
                moved: 0,
                to_move,
                failure_reason: None,
                started_at: now_ms(),
                below_seq: seqs.allocate(),
                cursor: 0,
            };
            moves.insert(0, task.clone());
            moves.truncate(KEPT_PER_QUEUE);
            match persist(id, &moves) {
                Ok(m) => (vec![m], Ok(task)),
                Err(e) => {
                    moves.remove(0);
                    (Vec::new(), Err(QueueError::from(e)))
                }
            }
        });
        let task = started?;
        if let Err(error) = committed.wait().await {
            lock(&source.moves).retain(|t| t.task_id != task_id);
            return Err(error.into());
        }
        tracing::info!(source = %source.name, task = %task_id, "message move task started");
        tokio::spawn(run(Arc::downgrade(&self.inner), source, task_id));
        Ok(task.handle())
    }

    /// ListMessageMoveTasks: up to `max_results` (default 1, at most 10) tasks of the source
    /// queue, most recent first.
    pub async fn list_message_move_tasks(
        &self,
        source_arn: &str,
        max_results: Option<u32>,
    ) -> Result<Vec<MoveTask>, QueueError> {
        let max = match max_results {
            None => 1,
            Some(n @ 1..=10) => n as usize,
            Some(n) => {
                return Err(QueueError::invalid_parameter(
                    "MaxResults",
                    n,
                    "Must be between 1 and 10.",
                ));
            }
        };
        let source = self
            .queue_by_exact_arn(source_arn)
            .ok_or_else(|| not_found("SourceArn"))?;
        Ok(lock(&source.moves).iter().take(max).cloned().collect())
    }

    /// CancelMessageMoveTask: the count moved so far. The task stops after the batch it is
    /// moving (CANCELLING until then, CANCELLED after); moved messages stay moved.
    pub async fn cancel_message_move_task(&self, handle: &str) -> Result<u64, QueueError> {
        let (task_id, source_arn) = move_task::parse_handle(handle)?;
        let source = self
            .queue_by_exact_arn(&source_arn)
            .ok_or_else(|| not_found("SourceArn"))?;
        let (moved, committed) = self.inner.writer.submit(|_| {
            let mut moves = lock(&source.moves);
            let Some(task) = moves.iter_mut().find(|t| t.task_id == task_id) else {
                return (
                    Vec::new(),
                    Err(QueueError::ResourceNotFound("Task does not exist.".into())),
                );
            };
            if task.status != MoveStatus::Running {
                return (
                    Vec::new(),
                    Err(QueueError::UnsupportedOperation(format!(
                        "Only a RUNNING task can be cancelled; this task is {}.",
                        task.status.as_str()
                    ))),
                );
            }
            task.status = MoveStatus::Cancelling;
            let moved = task.moved;
            match persist(source.id, &moves) {
                Ok(m) => (vec![m], Ok(moved)),
                Err(e) => (Vec::new(), Err(QueueError::from(e))),
            }
        });
        let moved = moved?;
        committed.wait().await?;
        source.move_wake.notify_one();
        Ok(moved)
    }

    /// At open: tasks that were running go on where their last commit left them; tasks that
    /// were being cancelled are cancelled.
    pub(super) async fn resume_move_tasks(&self) -> Result<(), QueueError> {
        let mut resume = Vec::new();
        let (result, committed) = self.inner.writer.submit(|_| {
            let mut mutations = Vec::new();
            for queue in self.all_queues() {
                let mut moves = lock(&queue.moves);
                let mut changed = false;
                for task in moves.iter_mut() {
                    match task.status {
                        MoveStatus::Running => resume.push((queue.clone(), task.task_id.clone())),
                        MoveStatus::Cancelling => {
                            task.status = MoveStatus::Cancelled;
                            changed = true;
                        }
                        _ => {}
                    }
                }
                if changed {
                    match persist(queue.id, &moves) {
                        Ok(m) => mutations.push(m),
                        Err(e) => return (Vec::new(), Err(e)),
                    }
                }
            }
            (mutations, Ok(()))
        });
        result?;
        committed.wait().await?;
        for (queue, task_id) in resume {
            tracing::info!(source = %queue.name, task = %task_id, "message move task resumed");
            tokio::spawn(run(Arc::downgrade(&self.inner), queue, task_id));
        }
        Ok(())
    }

    /// Moves up to `batch` messages of `task` in one commit.
    async fn move_batch(
        &self,
        source: &Arc<QueueHandle>,
        task: &MoveTask,
        batch: usize,
    ) -> Result<Step, QueueError> {
        let now = now_ms();
        let (picked, claims, next, exhausted) = {
            let source = source.clone();
            let (from, below) = (task.cursor, task.below_seq);
            self.read(move |store| {
                // As in a receive: the claims lock is held across the read, so a concurrent
                // receive either sees these claims or read before them and holds its own.
                let mut claims = lock(&source.claims);
                let states = store.states_from(source.id, from, SCAN)?;
                let mut exhausted = states.len() < SCAN;
                let mut next = from;
                let mut picked: Vec<StoredMessage> = Vec::new();
                for (seq, state) in states {
                    if seq >= below {
                        exhausted = true;
                        break;
                    }
                    next = seq + 1;
                    // A message a consumer holds is left to it (and to the queue).
                    if state.in_flight(now) || claims.contains(&seq) {
                        continue;
                    }
                    if let Some(message) = store.message(source.id, seq)? {
                        picked.push(message);
                    }
                    if picked.len() >= batch {
                        exhausted = false;
                        break;
                    }
                }
                let seqs: Vec<u64> = picked.iter().map(|m| m.seq).collect();
                claims.extend(seqs.iter().copied());
                let claims = Claims {
                    queue: source.clone(),
                    seqs,
                };
                Ok((picked, claims, next, exhausted))
            })
            .await?
        };
        if picked.is_empty() && exhausted {
            return Ok(Step::Done);
        }
        // Each message's destination: the task's, else the queue it was dead-lettered from.
        let mut targets: HashMap<String, Option<Arc<QueueHandle>>> = HashMap::new();
        let mut moving = Vec::new();
        let mut failure = None;
        for message in picked {
            let Some(arn) = task
                .destination_arn
                .clone()
                .or_else(|| message.record.dead_letter_source_arn.clone())
            else {
                failure = Some(format!(
                    "Message {} was not moved to the source queue by a redrive policy, and the task has no DestinationArn.",
                    message.record.message_id
                ));
                break;
            };
            // Without a DestinationArn the caller was authorized to send to the queues that
            // redrive into this one (`dead_letter_source_arns` at the start); a message from a
            // queue that no longer does is not sent there, or the task would reach a queue
            // its caller was never checked against.
            let redrives_here = |q: &Arc<QueueHandle>| {
                task.destination_arn.is_some()
                    || q.config()
                        .redrive_policy
                        .is_some_and(|p| p.dead_letter_target_arn == source.arn)
            };
            let target = targets
                .entry(arn.clone())
                .or_insert_with(|| {
                    self.queue_by_exact_arn(&arn)
                        .filter(|q| q.fifo == source.fifo && q.id != source.id && redrives_here(q))
                })
                .clone();
            match target {
                Some(target) => moving.push((message, target)),
                None => {
                    failure = Some(if task.destination_arn.is_some() {
                        format!("The destination queue {arn} does not exist.")
                    } else {
                        format!(
                            "The source queue {arn} does not exist or no longer uses this queue as its dead-letter queue."
                        )
                    });
                    break;
                }
            }
        }
        let count = moving.len() as u64;
        let failed = failure.is_some();
        let (result, committed) = self.inner.writer.submit(|seqs| {
            let mut mutations = Vec::with_capacity(moving.len() * 2 + 1);
            for (message, target) in &moving {
                let seq = seqs.allocate();
                let mut record = message.record.clone();
                record.message_id = uuid::Uuid::new_v4().to_string();
                record.sent_at = now;
                record.dead_letter_source_arn = None;
                record.sequence_number = target.fifo.then(|| fifo::sequence_number(seq));
                let state = DeliveryState {
                    visible_at: now,
                    receive_count: 0,
                    first_receive_at: None,
                    last_receive_at: None,
                    receipt_nonce: 0,
                    enqueued_at: now,
                    group_id: record.group_id.clone(),
                };
                mutations.push(Mutation::DeleteMessage {
                    queue: source.id,
                    seq: message.seq,
                    if_nonce: None,
                });
                mutations.push(Mutation::PutMessage {
                    queue: target.id,
                    seq,
                    record,
                    state,
                });
            }
            let mut moves = lock(&source.moves);
            if let Some(t) = moves.iter_mut().find(|t| t.task_id == task.task_id) {
                t.moved += count;
                t.cursor = next;
                if let Some(reason) = &failure {
                    t.status = MoveStatus::Failed;
                    t.failure_reason = Some(reason.clone());
                }
            }
            match persist(source.id, &moves) {
                Ok(m) => {
                    mutations.push(m);
                    (mutations, Ok(()))
                }
                Err(e) => (Vec::new(), Err(e)),
            }
        });
        let outcome = match result {
            Ok(()) => committed.wait().await.map_err(QueueError::from),
            Err(e) => Err(e.into()),
        };
        drop(claims);
        outcome?;
        let mut woken = Vec::new();
        for (_, target) in &moving {
            if !woken.contains(&target.id) {
                target.arrivals.notify_waiters();
                woken.push(target.id);
            }
        }
        if failed {
            return Ok(Step::Failed);
        }
        Ok(Step::Moved(count))
    }

    /// Ends a task: COMPLETED (or CANCELLED if a cancel came in meanwhile), or CANCELLED.
    async fn finish(&self, source: &QueueHandle, task_id: &str, status: MoveStatus) {
        let (result, committed) = self.inner.writer.submit(|_| {
            let mut moves = lock(&source.moves);
            if let Some(t) = moves.iter_mut().find(|t| t.task_id == task_id) {
                t.status = match (t.status, status) {
                    (MoveStatus::Cancelling, _) => MoveStatus::Cancelled,
                    (_, s) => s,
                };
            }
            match persist(source.id, &moves) {
                Ok(m) => (vec![m], Ok(())),
                Err(e) => (Vec::new(), Err(e)),
            }
        });
        let outcome = match result {
            Ok(()) => committed.wait().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = outcome {
            tracing::error!(%error, task = %task_id, "a message move task's end was not stored");
        }
    }
}

/// A task's loop: a batch, then a wait until the rate allows the next one; stops when done,
/// failed, cancelled, or when the source queue or the service is gone.
async fn run(inner: Weak<Inner>, source: Arc<QueueHandle>, task_id: String) {
    let started = tokio::time::Instant::now();
    let mut moved_here: u64 = 0;
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let service = Embedded { inner };
        if service.queue(&source.name).map(|q| q.id).ok() != Some(source.id) {
            // The source queue was deleted, and its tasks with it.
            return;
        }
        let Some(task) = lock(&source.moves)
            .iter()
            .find(|t| t.task_id == task_id)
            .cloned()
        else {
            return;
        };
        match task.status {
            MoveStatus::Running => {}
            MoveStatus::Cancelling => {
                service
                    .finish(&source, &task_id, MoveStatus::Cancelled)
                    .await;
                tracing::info!(source = %source.name, task = %task_id, "message move task cancelled");
                return;
            }
            _ => return,
        }
        let rate = task.rate();
        let batch = (rate as usize / 10).clamp(1, MAX_BATCH);
        match service.move_batch(&source, &task, batch).await {
            Ok(Step::Moved(n)) => moved_here += n,
            Ok(Step::Done) => {
                service
                    .finish(&source, &task_id, MoveStatus::Completed)
                    .await;
                tracing::info!(source = %source.name, task = %task_id, "message move task completed");
                return;
            }
            Ok(Step::Failed) => {
                tracing::warn!(source = %source.name, task = %task_id, "message move task failed");
                return;
            }
            Err(error) => {
                // Storage failed (or the store was closed): the stored task still says
                // RUNNING with its last committed position, so the next open resumes it; in
                // this process it is reported FAILED.
                tracing::error!(%error, task = %task_id, "message move task stopped");
                if let Some(t) = lock(&source.moves)
                    .iter_mut()
                    .find(|t| t.task_id == task_id)
                {
                    t.status = MoveStatus::Failed;
                    t.failure_reason = Some(crate::error::INTERNAL_MESSAGE.into());
                }
                return;
            }
        }
        drop(service);
        let due = started + Duration::from_secs_f64(moved_here as f64 / f64::from(rate));
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = source.move_wake.notified() => {}
        }
    }
}
