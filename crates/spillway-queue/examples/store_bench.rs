//! Durable throughput of the queue service over its embedded store.
//!
//! Usage: store_bench DIR [SENDS] [BACKLOG]
//! 1. SENDS single-message sends from 32 concurrent tasks (group commit), messages/s;
//! 2. a BACKLOG of waiting messages sent in batches of 10, then receive(10)+delete_batch from
//!    4 concurrent consumers until 20,000 messages are consumed, messages/s.
//!
//! Run on the disk the stack uses; every commit is fsync'd.

use std::time::Instant;

use spillway_queue::{
    CreateQueueRequest, DeleteMessageBatchRequestEntry, QueueService, ReceiveMessageRequest,
    SendMessageBatchRequest, SendMessageBatchRequestEntry, SendMessageRequest,
};

const SENDERS: usize = 32;
const CONSUMERS: usize = 4;
const CONSUMED: usize = 20_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: store_bench DIR [SENDS] [BACKLOG]")?;
    let sends: usize = args.get(2).map_or(Ok(20_000), |s| s.parse())?;
    let backlog: usize = args.get(3).map_or(Ok(100_000), |s| s.parse())?;
    let service =
        QueueService::open(std::path::Path::new(dir), "us-east-1", "000000000000").await?;
    for name in ["sends", "backlog"] {
        service
            .create_queue(CreateQueueRequest {
                queue_name: name.into(),
                ..Default::default()
            })
            .await?;
    }
    let body = "x".repeat(200);

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let service = service.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..sends / SENDERS {
                let request = SendMessageRequest {
                    queue_name: "sends".into(),
                    message_body: body.clone(),
                    sender_id: "bench".into(),
                    ..Default::default()
                };
                service.send_message(request).await?;
            }
            Ok::<_, spillway_queue::QueueError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "send, 32 concurrent senders, 1 message per call: {:.0} msg/s",
        (sends / SENDERS * SENDERS) as f64 / elapsed
    );

    let fill = Instant::now();
    for chunk in 0..backlog / 10 {
        let entries = (0..10)
            .map(|i| SendMessageBatchRequestEntry {
                id: format!("e{i}"),
                message_body: format!("{chunk}-{i}-{body}"),
                ..Default::default()
            })
            .collect();
        service
            .send_message_batch(SendMessageBatchRequest {
                queue_name: "backlog".into(),
                entries,
                sender_id: "bench".into(),
            })
            .await?;
    }
    println!(
        "filled {backlog} waiting messages in {:.1} s (batches of 10, one caller)",
        fill.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONSUMERS {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let mut consumed = 0;
            while consumed < CONSUMED / CONSUMERS {
                let messages = service
                    .receive_message(ReceiveMessageRequest {
                        queue_name: "backlog".into(),
                        max_number_of_messages: Some(10),
                        ..Default::default()
                    })
                    .await?
                    .messages;
                if messages.is_empty() {
                    break;
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
                service.delete_message_batch("backlog", entries).await?;
            }
            Ok::<_, spillway_queue::QueueError>(consumed)
        }));
    }
    let mut consumed = 0;
    for task in tasks {
        consumed += task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "receive(10)+delete_batch, 4 consumers, {backlog} waiting: {:.0} msg/s",
        consumed as f64 / elapsed
    );
    Ok(())
}
