//! Sends messages from several tasks and prints each acknowledged message at once, for the
//! crash test (tests/crash.rs), which kills this process with SIGKILL mid-burst.
//!
//! Usage: crash_sender DIR TASKS PER_TASK
//! Prints `deleted ID` for messages it sent, received and deleted before the burst, then
//! `sent ID BODY` for every send that returned Ok, flushed line by line.

use std::io::Write;

use spillway_queue::{CreateQueueRequest, QueueService, ReceiveMessageRequest, SendMessageRequest};

fn print(line: String) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the test is gone; nothing to do but stop printing.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, tasks, per_task) = match args.as_slice() {
        [_, dir, tasks, per_task] => (
            dir.clone(),
            tasks.parse::<usize>()?,
            per_task.parse::<usize>()?,
        ),
        _ => return Err("usage: crash_sender DIR TASKS PER_TASK".into()),
    };
    let service =
        QueueService::open(std::path::Path::new(&dir), "us-east-1", "000000000000").await?;
    service
        .create_queue(CreateQueueRequest {
            queue_name: "crash".into(),
            ..Default::default()
        })
        .await?;
    let send = |body: String| SendMessageRequest {
        queue_name: "crash".into(),
        message_body: body,
        sender_id: "crash".into(),
        ..Default::default()
    };
    for i in 0..5 {
        service.send_message(send(format!("pre-{i}"))).await?;
    }
    let received = service
        .receive_message(ReceiveMessageRequest {
            queue_name: "crash".into(),
            max_number_of_messages: Some(10),
            ..Default::default()
        })
        .await?;
    for message in received.messages {
        service
            .delete_message("crash", &message.receipt_handle)
            .await?;
        print(format!("deleted {}", message.message_id));
    }
    let mut handles = Vec::new();
    for task in 0..tasks {
        let service = service.clone();
        handles.push(tokio::spawn(async move {
            for n in 0..per_task {
                let body = format!("burst-{task}-{n}");
                match service.send_message(send(body.clone())).await {
                    Ok(sent) => print(format!("sent {} {body}", sent.message_id)),
                    Err(error) => print(format!("error {body} {error}")),
                }
            }
        }));
    }
    for handle in handles {
        handle.await?;
    }
    print("done".into());
    Ok(())
}
