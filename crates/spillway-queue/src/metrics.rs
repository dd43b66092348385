//! The queues' metrics in Prometheus' text format, under CloudWatch's SQS names with a
//! `spillway_sqs_` prefix and a `queue` label: the gauges as GetQueueAttributes counts them
//! (and the age of the oldest message), the counters since the process started. Both engines
//! fill the same rows.

use std::sync::atomic::Ordering::Relaxed;

use crate::embedded::QueueStats;

pub(crate) struct Row {
    pub queue: String,
    pub visible: u64,
    pub not_visible: u64,
    pub delayed: u64,
    pub oldest_age_secs: u64,
    pub sent: u64,
    pub received: u64,
    pub deleted: u64,
    pub empty_receives: u64,
}

impl Row {
    /// The counters of `stats` now.
    pub fn counters(mut self, stats: &QueueStats) -> Self {
        self.sent = stats.sent.load(Relaxed);
        self.received = stats.received.load(Relaxed);
        self.deleted = stats.deleted.load(Relaxed);
        self.empty_receives = stats.empty_receives.load(Relaxed);
        self
    }
}

pub(crate) fn render(rows: &[Row]) -> String {
    let mut series: Vec<(&'static str, &'static str, String, u64)> = Vec::new();
    for row in rows {
        let label = row.queue.replace('\\', "\\\\").replace('"', "\\\"");
        let gauge = |name, v: u64| (name, "gauge", label.clone(), v);
        series.push(gauge("ApproximateNumberOfMessagesVisible", row.visible));
        series.push(gauge(
            "ApproximateNumberOfMessagesNotVisible",
            row.not_visible,
        ));
        series.push(gauge("ApproximateNumberOfMessagesDelayed", row.delayed));
        series.push(gauge("ApproximateAgeOfOldestMessage", row.oldest_age_secs));
        for (name, v) in [
            ("NumberOfMessagesSent", row.sent),
            ("NumberOfMessagesReceived", row.received),
            ("NumberOfMessagesDeleted", row.deleted),
            ("NumberOfEmptyReceives", row.empty_receives),
        ] {
            series.push((name, "counter", label.clone(), v));
        }
    }
    series.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    let mut last = "";
    for (name, kind, queue, value) in &series {
        if *name != last {
            out.push_str(&format!("# TYPE spillway_sqs_{name} {kind}\n"));
            last = name;
        }
        out.push_str(&format!(
            "spillway_sqs_{name}{{queue=\"{queue}\"}} {value}\n"
        ));
    }
    out
}
