//! Locust's CSV files, column for column (locust/stats.py's StatsCSV), so tools written for
//! Locust's `--csv PREFIX` read ours: PREFIX_stats.csv, PREFIX_stats_history.csv,
//! PREFIX_failures.csv. Times are milliseconds; the aggregate row has an empty Type and the
//! name "Aggregated"; percentiles of a series with no requests are "N/A".

use std::fmt::Write;
use std::path::Path;

use super::{ReportError, write};
use crate::results::Results;
use crate::stats::{PERCENTILE_TITLES, Point, Summary};

pub const STATS_HEADER: [&str; 11] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
];
pub const HISTORY_HEAD: [&str; 6] = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
];
pub const HISTORY_TAIL: [&str; 7] = [
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];
pub const FAILURES_HEADER: [&str; 4] = ["Method", "Name", "Error", "Occurrences"];

/// Quotes a field when it holds a comma, quote or newline (RFC 4180, as Python's csv module).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn line(out: &mut String, fields: &[String]) {
    let joined: Vec<String> = fields.iter().map(|f| field(f)).collect();
    // Python's csv module ends rows with \r\n.
    let _ = write!(out, "{}\r\n", joined.join(","));
}

fn percentile_fields(p: &Option<Vec<f64>>) -> Vec<String> {
    match p {
        Some(v) => v.iter().map(|x| format!("{}", x.round() as u64)).collect(),
        None => vec!["N/A".to_owned(); PERCENTILE_TITLES.len()],
    }
}

fn header(parts: &[&[&str]]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| (*s).to_owned()))
        .collect()
}

pub fn stats_csv(r: &Results) -> String {
    let mut out = String::new();
    line(&mut out, &header(&[&STATS_HEADER, &PERCENTILE_TITLES]));
    for s in r.tasks.iter().chain(std::iter::once(&r.aggregated)) {
        let mut f = vec![
            s.method.clone(),
            s.name.clone(),
            s.requests.to_string(),
            s.failures.to_string(),
            format!("{}", s.median_ms.round() as u64),
            format!("{:.6}", s.avg_ms),
            format!("{:.6}", s.min_ms),
            format!("{:.6}", s.max_ms),
            format!("{:.6}", s.avg_bytes),
            format!("{:.6}", s.rps),
            format!("{:.6}", s.fps),
        ];
        f.extend(percentile_fields(&s.percentiles_ms));
        line(&mut out, &f);
    }
    out
}

fn history_line(out: &mut String, ts: u64, users: u64, p: &Point, full: bool) {
    let t: &Summary = &p.total;
    let mut f = vec![
        ts.to_string(),
        users.to_string(),
        t.method.clone(),
        t.name.clone(),
        format!("{:.6}", p.rps),
        format!("{:.6}", p.fps),
    ];
    // Locust: the aggregate row carries the run's percentiles, full-history task rows the
    // current window's.
    f.extend(percentile_fields(if full {
        &p.percentiles_ms
    } else {
        &t.percentiles_ms
    }));
    f.extend([
        t.requests.to_string(),
        t.failures.to_string(),
        format!("{}", t.median_ms.round() as u64),
        format!("{:.6}", t.avg_ms),
        format!("{:.6}", t.min_ms),
        format!("{:.6}", t.max_ms),
        format!("{:.6}", t.avg_bytes),
    ]);
    line(out, &f);
}

/// One row per second for the aggregate; with `full_history` (Locust's --csv-full-history)
/// one per task too, before it.
pub fn history_csv(r: &Results, full_history: bool) -> String {
    let mut out = String::new();
    line(
        &mut out,
        &header(&[&HISTORY_HEAD, &PERCENTILE_TITLES, &HISTORY_TAIL]),
    );
    for row in &r.history {
        if full_history {
            for p in &row.tasks {
                history_line(&mut out, row.unix_s, row.users, p, true);
            }
        }
        history_line(
            &mut out,
            row.unix_s,
            row.users,
            &row.aggregated,
            full_history,
        );
    }
    out
}

pub fn failures_csv(r: &Results) -> String {
    let mut out = String::new();
    line(&mut out, &header(&[&FAILURES_HEADER]));
    for f in &r.failures {
        line(
            &mut out,
            &[
                f.method.clone(),
                f.name.clone(),
                f.error.clone(),
                f.occurrences.to_string(),
            ],
        );
    }
    out
}

/// Writes PREFIX_stats.csv, PREFIX_stats_history.csv and PREFIX_failures.csv.
pub fn write_all(r: &Results, prefix: &str, full_history: bool) -> Result<(), ReportError> {
    write(Path::new(&format!("{prefix}_stats.csv")), &stats_csv(r))?;
    write(
        Path::new(&format!("{prefix}_stats_history.csv")),
        &history_csv(r, full_history),
    )?;
    write(
        Path::new(&format!("{prefix}_failures.csv")),
        &failures_csv(r),
    )?;
    Ok(())
}
