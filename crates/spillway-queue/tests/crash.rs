//! kill -9 during a burst of sends: every acknowledged send is there after the restart, no
//! message appears that was never sent, and deleted messages stay deleted.

// In a test, a failed expectation is the failure report.
#![allow(clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spillway_queue::{QueueService, ReceiveMessageRequest};

mod common;
use common::example;

#[tokio::test]
async fn acknowledged_sends_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = example("crash_sender");
    let mut child = Command::new(&binary)
        .arg(dir.path())
        .args(["8", "100000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start crash_sender");
    let stdout = child.stdout.take().expect("stdout");
    let mut sent: HashMap<String, String> = HashMap::new();
    let mut deleted = HashSet::new();
    let started = Instant::now();
    let mut lines = BufReader::new(stdout).lines();
    // Kill after a few hundred acknowledged sends (or after 30 s, whichever comes first).
    while sent.len() < 500 && started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("sent"), Some(id), Some(body)) => {
                sent.insert(id.to_string(), body.to_string());
            }
            (Some("deleted"), Some(id), None) => {
                deleted.insert(id.to_string());
            }
            _ => {}
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL");
    let _ = child.wait();
    // Lines already written before the kill are acknowledged sends too.
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("sent ")
            && let Some((id, body)) = rest.split_once(' ')
        {
            sent.insert(id.to_string(), body.to_string());
        }
    }
    assert!(
        !sent.is_empty(),
        "the sender acknowledged nothing before the kill"
    );
    assert_eq!(
        deleted.len(),
        5,
        "the sender deletes its five warm-up messages first"
    );

    let service = QueueService::open(dir.path(), "us-east-1", "000000000000")
        .await
        .expect("reopen");
    let mut received: HashMap<String, String> = HashMap::new();
    // At most (acknowledged + in-flight burst) / 10 receives are needed; bound it anyway.
    for _ in 0..(sent.len() / 10 + 10_000) {
        let batch = service
            .receive_message(ReceiveMessageRequest {
                queue_name: "crash".into(),
                max_number_of_messages: Some(10),
                visibility_timeout: Some(43_200),
                ..Default::default()
            })
            .await
            .expect("receive")
            .messages;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            assert!(
                received
                    .insert(message.message_id.clone(), message.body.clone())
                    .is_none(),
                "a message was received twice within its visibility timeout"
            );
        }
    }
    for (id, body) in &sent {
        assert_eq!(
            received.get(id),
            Some(body),
            "acknowledged message {id} ({body}) was lost"
        );
    }
    for id in &deleted {
        assert!(!received.contains_key(id), "deleted message {id} came back");
    }
    let bodies: HashSet<&String> = received.values().collect();
    assert_eq!(bodies.len(), received.len(), "a body was stored twice");
    for body in received.values() {
        assert!(body.starts_with("burst-"), "unknown message {body}");
    }
}
