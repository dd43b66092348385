//! Everything a run produced, in one value the reports read (and `--json` prints).

use serde::Serialize;

use crate::sampler::Sample;
use crate::stats::{HistoryRow, Series, Summary};
use crate::tasks::TaskSet;

#[derive(Clone, Debug, Serialize)]
pub struct TaskInfo {
    pub name: String,
    pub method: String,
    pub path: String,
    pub weight: u32,
    pub group: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailureRow {
    pub method: String,
    pub name: String,
    pub error: String,
    pub occurrences: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Generator {
    pub cpu_seconds: f64,
    pub cores: usize,
    pub peak_cpu_pct: f64,
    /// True when the generator used more than 90% of every core in some second: the numbers
    /// then describe the generator as much as the target.
    pub saturated: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub host: String,
    /// "closed: 1000 users, spawn rate 10/s, wait 5s..9s" or "open: 200 requests/s".
    pub model: String,
    pub started_unix_s: u64,
    pub duration_s: f64,
    pub task_info: Vec<TaskInfo>,
    pub tasks: Vec<Summary>,
    pub aggregated: Summary,
    /// Per `group` of the tasks file, in the order --compare named them (or first-seen).
    pub groups: Vec<Summary>,
    pub failures: Vec<FailureRow>,
    pub history: Vec<HistoryRow>,
    pub samples: Vec<Sample>,
    pub generator: Generator,
    /// Open model: arrivals due before the end that never got an in-flight slot.
    pub unsent: u64,
}

/// Sums the tasks of each group into one series.
pub fn group_summaries(
    set: &TaskSet,
    series: &[Series],
    groups: &[String],
    elapsed: std::time::Duration,
) -> Vec<Summary> {
    groups
        .iter()
        .filter_map(|g| {
            let mut members = set
                .tasks
                .iter()
                .zip(series)
                .filter(|(t, _)| t.group.as_deref() == Some(g.as_str()))
                .map(|(_, s)| s);
            let mut total = members.next()?.clone();
            for s in members {
                total.absorb(s);
            }
            total.name = g.clone();
            total.method = String::new();
            Some(total.summary(elapsed))
        })
        .collect()
}
