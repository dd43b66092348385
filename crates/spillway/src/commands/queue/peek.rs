//! `spillway queue peek QUEUE`: ReceiveMessage with VisibilityTimeout=0.
//!
//! SQS has no way to look at a message without receiving it. A receive with a visibility
//! timeout of 0 leaves the message visible, but it still counts: ApproximateReceiveCount goes
//! up, and on a queue with a RedrivePolicy the receive that passes maxReceiveCount moves the
//! message to the dead-letter queue instead of returning it. So peeking such a queue needs
//! --force. A guarded internal route that reads without counting was considered and left out:
//! it would be a second door to message bodies, and would have to be guarded at least as
//! strictly as SigV4 and the queue's policies, which the front door already is.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::client::AwsJsonClient;
use super::{EXIT_INPUT, QueueCliError, attributes, queue_url, text};
use crate::cli::QueuePeekArgs;

pub async fn run(client: &AwsJsonClient, args: &QueuePeekArgs) -> Result<u8, QueueCliError> {
    let url = queue_url(client, &args.queue).await?;
    let attrs = attributes(client, &url, &["RedrivePolicy"]).await?;
    if !args.force && attrs.get("RedrivePolicy").is_some_and(|p| p != "") {
        eprintln!(
            "error: {} has a RedrivePolicy: every peek counts as a receive and can move a message \
             to its dead-letter queue early; pass --force to peek anyway",
            args.queue
        );
        return Ok(EXIT_INPUT);
    }
    let mut seen = HashSet::new();
    let mut messages = Vec::new();
    // A message peeked stays visible, so every further receive may return it again (and
    // count it again). Stop as soon as a receive brings fewer than asked (there is no more
    // to see now) or nothing new; never more receives than 10 per call needs, plus one.
    for _ in 0..=args.count.div_ceil(10) {
        let want = (args.count - messages.len()).min(10);
        if want == 0 {
            break;
        }
        let out = client
            .call(
                "ReceiveMessage",
                &json!({
                    "QueueUrl": url,
                    "MaxNumberOfMessages": want,
                    "VisibilityTimeout": 0,
                    "WaitTimeSeconds": 0,
                    "MessageSystemAttributeNames": ["All"],
                    "MessageAttributeNames": ["All"],
                }),
            )
            .await?;
        let got = out
            .get("Messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let before = messages.len();
        let short = got.len() < want;
        for m in got {
            if messages.len() < args.count && seen.insert(text(&m, "MessageId").to_owned()) {
                messages.push(m);
            }
        }
        if short || messages.len() == before {
            break;
        }
    }
    if args.json {
        println!("{}", Value::Array(messages));
        return Ok(0);
    }
    if messages.is_empty() {
        println!("{}: no visible messages", args.queue);
    }
    for m in &messages {
        let attr = |k: &str| {
            m.get("Attributes")
                .and_then(|a| a.get(k))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        let sent = attr("SentTimestamp")
            .parse::<i64>()
            .ok()
            .map(|ms| spillway_identity::time::format_iso8601(ms / 1000))
            .unwrap_or_else(|| "?".into());
        println!(
            "{}  sent {}  receives {}",
            text(m, "MessageId"),
            sent,
            attr("ApproximateReceiveCount")
        );
        println!("  {}", text(m, "Body").replace('\n', "\n  "));
    }
    Ok(0)
}
