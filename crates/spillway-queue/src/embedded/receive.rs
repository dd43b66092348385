//! ReceiveMessage: picking visible messages (by the visibility index for standard queues, in
//! send order with group blocking for FIFO), long polling, redrive to the dead-letter queue,
//! retention on the way, and the attribute filters of the answer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{Embedded, QueueHandle, QueueStats, lock};
use crate::clock::now_ms;
use crate::error::QueueError;
use crate::fifo;
use crate::model::{Message, ReceiveMessageRequest, ReceiveMessageResponse};
use crate::queue_attributes::QueueConfig;
use crate::receipt::Receipt;
use crate::receive_filters::{self, Filters, receive_limits};
use crate::store::{DeliveryState, Mutation, Store, StoreError, StoredMessage};

/// How far a FIFO receive looks past blocked groups before giving up for this call.
const FIFO_SCAN_LIMIT: usize = 10_000;

/// What one pass over the store picked, with the claims it holds.
#[derive(Default)]
struct Picked {
    deliver: Vec<StoredMessage>,
    expired: Vec<u64>,
    to_dead_letter: Vec<StoredMessage>,
}

impl Picked {
    fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.deliver
            .iter()
            .map(|m| m.seq)
            .chain(self.expired.iter().copied())
            .chain(self.to_dead_letter.iter().map(|m| m.seq))
    }
}

/// The sequences a receive claimed, released when dropped: after the receive's commit, or
/// when the call is abandoned (a client that hangs up drops the future; without this its
/// claims would hide the messages until a restart). An abandoned call releases its claims
/// before its commit lands, so a concurrent receive may deliver such a message once more,
/// which at-least-once delivery allows.
pub(super) struct Claims {
    pub(super) queue: Arc<QueueHandle>,
    pub(super) seqs: Vec<u64>,
}

impl Drop for Claims {
    fn drop(&mut self) {
        let mut claims = lock(&self.queue.claims);
        for seq in &self.seqs {
            claims.remove(seq);
        }
    }
}

fn pick(
    store: &dyn Store,
    queue: &Arc<QueueHandle>,
    config: &QueueConfig,
    max: usize,
    now: u64,
) -> Result<(Picked, Claims), StoreError> {
    // The claims lock is held across the read so that a concurrent receive either sees this
    // receive's claims or reads after its commit (claims are released only after commits).
    let mut claims = lock(&queue.claims);
    let retention_ms = u64::from(config.message_retention_period) * 1000;
    let mut picked = Picked::default();
    let consider = |message: StoredMessage, picked: &mut Picked| {
        if message.state.enqueued_at + retention_ms <= now {
            picked.expired.push(message.seq);
        } else if config
            .redrive_policy
            .as_ref()
            .is_some_and(|p| message.state.receive_count >= p.max_receive_count)
        {
            picked.to_dead_letter.push(message);
        } else {
            picked.deliver.push(message);
        }
    };
    if config.fifo {
        // In send order; the first message of a group that is not receivable (in flight,
        // delayed, or claimed) blocks the rest of its group.
        let mut blocked: HashSet<Option<String>> = HashSet::new();
        for (seq, state) in store.states_from(queue.id, 0, FIFO_SCAN_LIMIT)? {
            if picked.deliver.len() >= max {
                break;
            }
            if blocked.contains(&state.group_id) {
                continue;
            }
            if state.visible_at > now || claims.contains(&seq) {
                blocked.insert(state.group_id.clone());
                continue;
            }
            if let Some(message) = store.message(queue.id, seq)? {
                let before = picked.deliver.len();
                consider(message, &mut picked);
                if picked.deliver.len() == before {
                    // Moved or expired: later messages of the group wait for the next call so
                    // order within the group holds.
                    blocked.insert(state.group_id.clone());
                }
            }
        }
    } else {
        let seqs = store.visible(queue.id, now, max + claims.len())?;
        for seq in seqs {
            if picked.deliver.len() >= max {
                break;
            }
            if claims.contains(&seq) {
                continue;
            }
            if let Some(message) = store.message(queue.id, seq)?
                && message.state.visible_at <= now
            {
                consider(message, &mut picked);
            }
        }
    }
    let seqs: Vec<u64> = picked.seqs().collect();
    claims.extend(seqs.iter().copied());
    Ok((
        picked,
        Claims {
            queue: queue.clone(),
            seqs,
        },
    ))
}

impl Embedded {
    pub async fn receive_message(
        &self,
        request: ReceiveMessageRequest,
    ) -> Result<ReceiveMessageResponse, QueueError> {
        let queue = self.queue(&request.queue_name)?;
        let config = queue.config();
        let (max, visibility, wait) = receive_limits(&request, &config)?;
        let filters = Filters::new(&request)?;
        let attempt = request.receive_request_attempt_id.filter(|_| queue.fifo);
        if let Some(id) = &attempt {
            let again = self.retry_attempt(&queue, id, &filters).await?;
            if !again.is_empty() {
                QueueStats::add(&queue.stats.received, again.len());
                return Ok(ReceiveMessageResponse { messages: again });
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait));
        loop {
            // Registered before looking, so a send between the look and the wait still wakes.
            let arrived = queue.arrivals.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let messages = self
                .receive_once(&queue, max as usize, visibility, &filters)
                .await?;
            let now = tokio::time::Instant::now();
            if !messages.is_empty() || now >= deadline {
                if let Some(id) = attempt {
                    let held = messages
                        .iter()
                        .filter_map(|m| self.inner.receipts.open(&m.receipt_handle))
                        .map(|r| (r.seq, r.nonce))
                        .collect();
                    lock(&queue.attempts).insert(id, now_ms(), held);
                }
                if messages.is_empty() {
                    QueueStats::add(&queue.stats.empty_receives, 1);
                } else {
                    QueueStats::add(&queue.stats.received, messages.len());
                }
                return Ok(ReceiveMessageResponse { messages });
            }
            if self.queue(&queue.name).ok().map(|q| q.id) != Some(queue.id) {
                return Err(QueueError::QueueDoesNotExist);
            }
            // Sleep until a message may become visible (a delay or visibility timeout ends)
            // or the wait ends, whichever is first; a send or release wakes us earlier.
            let id = queue.id;
            let wall_now = now_ms();
            let next = self
                .read(move |s| s.next_visible_after(id, wall_now))
                .await?;
            let until = match next {
                Some(at) => deadline.min(now + Duration::from_millis(at.saturating_sub(wall_now))),
                None => deadline,
            };
            tokio::select! {
                _ = &mut arrived => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn receive_once(
        &self,
        queue: &Arc<QueueHandle>,
        max: usize,
        visibility: u32,
        filters: &Filters,
    ) -> Result<Vec<Message>, QueueError> {
        let config = queue.config();
        let now = now_ms();
        let (picked, claims) = {
            let queue = queue.clone();
            let config = config.clone();
            self.read(move |store| pick(store, &queue, &config, max, now))
                .await?
        };
        if picked.deliver.is_empty()
            && picked.expired.is_empty()
            && picked.to_dead_letter.is_empty()
        {
            return Ok(Vec::new());
        }
        self.commit_receive(queue, &config, (picked, claims), visibility, now, filters)
            .await
    }

    async fn commit_receive(
        &self,
        queue: &Arc<QueueHandle>,
        config: &QueueConfig,
        (picked, claims): (Picked, Claims),
        visibility: u32,
        now: u64,
        filters: &Filters,
    ) -> Result<Vec<Message>, QueueError> {
        let mut mutations = Vec::new();
        let mut delivered = Vec::new();
        // A dead-letter queue that is gone (or the queue itself, from before that was refused)
        // takes nothing: its messages are delivered as if there were no redrive policy. Left in
        // place instead, they would be picked again by every receive, which would wake itself.
        let dead_letter = config
            .redrive_policy
            .as_ref()
            .and_then(|p| self.queue_by_arn(&p.dead_letter_target_arn))
            .filter(|q| q.fifo == queue.fifo && q.id != queue.id);
        let mut deliver = picked.deliver;
        let mut to_dead_letter = picked.to_dead_letter;
        if dead_letter.is_none() {
            deliver.append(&mut to_dead_letter);
        }
        for mut message in deliver {
            let state = &mut message.state;
            // The commit applies only over the state this receive picked: a stale handle's
            // delete or visibility change that committed in between wins, as if first.
            let picked_nonce = state.receipt_nonce;
            state.receive_count += 1;
            state.first_receive_at.get_or_insert(now);
            state.last_receive_at = Some(now);
            state.visible_at = now + u64::from(visibility) * 1000;
            state.receipt_nonce = rand::random::<u64>() | 1;
            mutations.push(Mutation::SetState {
                queue: queue.id,
                seq: message.seq,
                state: message.state.clone(),
                if_nonce: Some(picked_nonce),
            });
            delivered.push(message);
        }
        for seq in picked.expired {
            mutations.push(Mutation::DeleteMessage {
                queue: queue.id,
                seq,
                if_nonce: None,
            });
        }
        let (moved, committed) = self.inner.writer.submit(|seqs| {
            let mut moved = false;
            for message in to_dead_letter {
                let Some(target) = &dead_letter else {
                    continue;
                };
                let seq = seqs.allocate();
                let mut record = message.record;
                record.dead_letter_source_arn = Some(queue.arn.clone());
                if target.fifo {
                    record.sequence_number = Some(fifo::sequence_number(seq));
                }
                // Standard queues keep counting retention from the original enqueue time;
                // FIFO queues restart it when the message enters the dead-letter queue.
                let enqueued_at = if target.fifo {
                    now
                } else {
                    message.state.enqueued_at
                };
                let state = DeliveryState {
                    visible_at: now,
                    receipt_nonce: 0,
                    enqueued_at,
                    group_id: record.group_id.clone(),
                    ..message.state
                };
                mutations.push(Mutation::DeleteMessage {
                    queue: queue.id,
                    seq: message.seq,
                    if_nonce: None,
                });
                mutations.push(Mutation::PutMessage {
                    queue: target.id,
                    seq,
                    record,
                    state,
                });
                moved = true;
            }
            (mutations, moved)
        });
        let outcome = committed.wait().await;
        drop(claims);
        outcome?;
        if moved {
            if let Some(target) = &dead_letter {
                target.arrivals.notify_waiters();
            }
            tracing::debug!(queue = %queue.name, "messages moved to the dead-letter queue");
        }
        Ok(delivered
            .iter()
            .map(|m| self.render(queue, m, filters))
            .collect())
    }

    /// Messages a ReceiveRequestAttemptId got within five minutes, if that receive still
    /// holds them (same receive nonce, still in flight).
    async fn retry_attempt(
        &self,
        queue: &Arc<QueueHandle>,
        id: &str,
        filters: &Filters,
    ) -> Result<Vec<Message>, QueueError> {
        let now = now_ms();
        let Some(held) = lock(&queue.attempts).get(id, now) else {
            return Ok(Vec::new());
        };
        let queue_id = queue.id;
        let messages = self
            .read(move |store| {
                let mut out = Vec::new();
                for (seq, nonce) in held {
                    if let Some(m) = store.message(queue_id, seq)?
                        && m.state.receipt_nonce == nonce
                        && m.state.in_flight(now)
                    {
                        out.push(m);
                    }
                }
                Ok(out)
            })
            .await?;
        Ok(messages
            .iter()
            .map(|m| self.render(queue, m, filters))
            .collect())
    }

    fn render(&self, queue: &QueueHandle, message: &StoredMessage, filters: &Filters) -> Message {
        let handle = self.inner.receipts.seal(Receipt {
            queue: queue.id,
            seq: message.seq,
            nonce: message.state.receipt_nonce,
        });
        receive_filters::render(
            &message.record,
            message.state.receive_count,
            message.state.first_receive_at,
            handle,
            filters,
        )
    }
}
