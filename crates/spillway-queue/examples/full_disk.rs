//! For the full-disk test (tests/full_disk.rs), which runs this in a mount namespace whose
//! queue directory is a small tmpfs.
//!
//! Usage:
//!   full_disk fill DIR   sends 16 KiB messages until sends fail, printing `sent N` for each
//!                        acknowledged one and `error CODE` for the failures (stopping after
//!                        a few); then waits for a line on stdin (the test frees space), sends
//!                        once more and prints `after sent N` or `after error CODE`
//!   full_disk drain DIR  opens the store again and prints `got N` for every message in it
//!
//! N is the number a message's body starts with.

use std::io::{BufRead, Write};

use spillway_queue::{CreateQueueRequest, QueueService, ReceiveMessageRequest, SendMessageRequest};

fn print(line: String) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the test is gone; nothing to do but stop printing.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn send(n: usize) -> SendMessageRequest {
    SendMessageRequest {
        queue_name: "disk".into(),
        message_body: format!("{n:08}{}", "x".repeat(16 * 1024)),
        sender_id: "full-disk".into(),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (mode, dir) = match args.as_slice() {
        [_, mode, dir] => (mode.as_str(), std::path::Path::new(dir)),
        _ => return Err("usage: full_disk fill|drain DIR".into()),
    };
    let service = QueueService::open(dir, "us-east-1", "000000000000").await?;
    match mode {
        "fill" => {
            service
                .create_queue(CreateQueueRequest {
                    queue_name: "disk".into(),
                    ..Default::default()
                })
                .await?;
            let mut errors = 0;
            // Bounded: the tmpfs holds a few hundred of these.
            for n in 0..100_000 {
                match service.send_message(send(n)).await {
                    Ok(_) => print(format!("sent {n}")),
                    Err(e) => {
                        print(format!("error {}", e.code()));
                        errors += 1;
                        if errors == 3 {
                            break;
                        }
                    }
                }
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            match service.send_message(send(1_000_000)).await {
                Ok(_) => print("after sent 1000000".into()),
                Err(e) => print(format!("after error {}", e.code())),
            }
            service.close();
        }
        "drain" => {
            // Bounded: at most the messages the fill could have written, 10 a receive.
            for _ in 0..10_000 {
                let got = service
                    .receive_message(ReceiveMessageRequest {
                        queue_name: "disk".into(),
                        max_number_of_messages: Some(10),
                        visibility_timeout: Some(600),
                        ..Default::default()
                    })
                    .await?;
                if got.messages.is_empty() {
                    break;
                }
                for m in got.messages {
                    let n = m.body.get(..8).and_then(|n| n.parse::<usize>().ok());
                    print(format!("got {}", n.map_or("?".into(), |n| n.to_string())));
                }
            }
            print("drained".into());
        }
        _ => return Err(format!("unknown mode {mode}").into()),
    }
    Ok(())
}
