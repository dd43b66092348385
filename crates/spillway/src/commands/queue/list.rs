//! `spillway queue list`: ListQueues (every page), then each queue's counts and redrive policy.

use serde_json::{Value, json};

use super::client::AwsJsonClient;
use super::{QueueCliError, attributes, text};
use crate::cli::QueueListArgs;

/// One row: the name, the three Approximate* counts and the dead-letter queue's name.
struct Row {
    name: String,
    url: String,
    visible: String,
    not_visible: String,
    delayed: String,
    dead_letter: Option<String>,
    max_receive_count: Option<u64>,
}

/// Every queue URL, following NextToken (bounded: a page is 1,000 queues, and a token that
/// repeats would otherwise loop forever).
async fn all_urls(client: &AwsJsonClient) -> Result<Vec<String>, QueueCliError> {
    let mut urls = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1_000 {
        let mut input = json!({"MaxResults": 1000});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let out = client.call("ListQueues", &input).await?;
        if let Some(page) = out.get("QueueUrls").and_then(Value::as_array) {
            urls.extend(page.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        match out.get("NextToken").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(urls)
}

pub async fn run(client: &AwsJsonClient, args: &QueueListArgs) -> Result<u8, QueueCliError> {
    let mut rows = Vec::new();
    for url in all_urls(client).await? {
        let attrs = match attributes(
            client,
            &url,
            &[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
                "RedrivePolicy",
            ],
        )
        .await
        {
            Ok(a) => a,
            // Deleted between the listing and now: not worth failing the whole list for.
            Err(QueueCliError::Aws { code, .. }) if code == "QueueDoesNotExist" => continue,
            Err(e) => return Err(e),
        };
        let count = |k: &str| {
            attrs
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let redrive: Option<Value> = attrs
            .get("RedrivePolicy")
            .and_then(Value::as_str)
            .and_then(|p| serde_json::from_str(p).ok());
        rows.push(Row {
            name: url.rsplit('/').next().unwrap_or(&url).to_owned(),
            visible: count("ApproximateNumberOfMessages"),
            not_visible: count("ApproximateNumberOfMessagesNotVisible"),
            delayed: count("ApproximateNumberOfMessagesDelayed"),
            dead_letter: redrive.as_ref().map(|r| {
                let arn = text(r, "deadLetterTargetArn");
                arn.rsplit(':').next().unwrap_or(arn).to_owned()
            }),
            max_receive_count: redrive.as_ref().and_then(|r| {
                r.get("maxReceiveCount")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            }),
            url,
        });
    }
    if args.json {
        let out: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "QueueName": r.name,
                    "QueueUrl": r.url,
                    "ApproximateNumberOfMessages": r.visible,
                    "ApproximateNumberOfMessagesNotVisible": r.not_visible,
                    "ApproximateNumberOfMessagesDelayed": r.delayed,
                    "DeadLetterQueue": r.dead_letter,
                    "MaxReceiveCount": r.max_receive_count,
                })
            })
            .collect();
        println!("{}", Value::Array(out));
    } else {
        print!("{}", table(&rows));
    }
    Ok(0)
}

/// Columns padded to their widest cell, counts right-aligned.
fn table(rows: &[Row]) -> String {
    let header = [
        "QUEUE",
        "VISIBLE",
        "IN FLIGHT",
        "DELAYED",
        "DEAD-LETTER QUEUE",
    ];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.visible.clone(),
                r.not_visible.clone(),
                r.delayed.clone(),
                match (&r.dead_letter, r.max_receive_count) {
                    (Some(d), Some(n)) => format!("{d} (after {n} receives)"),
                    (Some(d), None) => d.clone(),
                    (None, _) => "-".into(),
                },
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: [&str; 5]| {
        format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
        )
    };
    let mut out = line(header);
    for row in &cells {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    if rows.is_empty() {
        out.push_str("(no queues)\n");
    }
    out
}
