//! The tables' metrics in Prometheus' text format, under CloudWatch's DynamoDB names with a
//! `spillway_dynamodb_` prefix: per table (and operation where CloudWatch has that dimension)
//! consumed capacity, successful request latency, returned items, conditional check failures,
//! throttled requests (always 0: spillway does not throttle by provisioned capacity, see
//! docs/tables.md) and system errors; account-wide user errors and TTL deletions.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
struct PerOperation {
    latency_ms_sum: f64,
    successes: u64,
    returned_items: u64,
    system_errors: u64,
}

#[derive(Default)]
struct PerTable {
    read_units: f64,
    write_units: f64,
    conditional_failed: u64,
}

#[derive(Default)]
pub struct Metrics {
    // std's Mutex: held for a few additions, never across an await.
    operations: Mutex<BTreeMap<(String, &'static str), PerOperation>>,
    tables: Mutex<BTreeMap<String, PerTable>>,
    user_errors: AtomicU64,
    ttl_deleted: AtomicU64,
}

impl Metrics {
    pub fn success(&self, table: &str, op: &'static str, latency_ms: f64, returned: u64) {
        let mut ops = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let row = ops.entry((table.to_owned(), op)).or_default();
        row.latency_ms_sum += latency_ms;
        row.successes += 1;
        row.returned_items += returned;
    }

    pub fn system_error(&self, table: &str, op: &'static str) {
        let mut ops = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        ops.entry((table.to_owned(), op)).or_default().system_errors += 1;
    }

    pub fn user_error(&self) {
        self.user_errors.fetch_add(1, Relaxed);
    }

    pub fn consumed(&self, table: &str, read: f64, write: f64) {
        if read == 0.0 && write == 0.0 {
            return;
        }
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let row = tables.entry(table.to_owned()).or_default();
        row.read_units += read;
        row.write_units += write;
    }

    pub fn conditional_check_failed(&self, table: &str) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .entry(table.to_owned())
            .or_default()
            .conditional_failed += 1;
    }

    pub fn ttl_deleted(&self, n: u64) {
        self.ttl_deleted.fetch_add(n, Relaxed);
    }

    pub fn render(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        {
            let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
            type Get = fn(&PerTable) -> f64;
            let series: [(&str, Get); 3] = [
                ("ConsumedReadCapacityUnits", |t| t.read_units),
                ("ConsumedWriteCapacityUnits", |t| t.write_units),
                ("ConditionalCheckFailedRequests", |t| {
                    t.conditional_failed as f64
                }),
            ];
            for (name, get) in series {
                out.push_str(&format!("# TYPE spillway_dynamodb_{name} counter\n"));
                for (table, row) in tables.iter() {
                    out.push_str(&format!(
                        "spillway_dynamodb_{name}{{table=\"{}\"}} {}\n",
                        esc(table),
                        get(row)
                    ));
                }
            }
        }
        {
            let ops = self.operations.lock().unwrap_or_else(|p| p.into_inner());
            type Get = fn(&PerOperation) -> f64;
            let series: [(&str, &str, Get); 5] = [
                ("SuccessfulRequestLatency_sum", "counter", |o| {
                    o.latency_ms_sum
                }),
                ("SuccessfulRequestLatency_count", "counter", |o| {
                    o.successes as f64
                }),
                ("ReturnedItemCount", "counter", |o| o.returned_items as f64),
                ("SystemErrors", "counter", |o| o.system_errors as f64),
                ("ThrottledRequests", "counter", |_| 0.0),
            ];
            for (name, kind, get) in series {
                out.push_str(&format!("# TYPE spillway_dynamodb_{name} {kind}\n"));
                for ((table, op), row) in ops.iter() {
                    out.push_str(&format!(
                        "spillway_dynamodb_{name}{{table=\"{}\",operation=\"{op}\"}} {}\n",
                        esc(table),
                        get(row)
                    ));
                }
            }
        }
        out.push_str(&format!(
            "# TYPE spillway_dynamodb_UserErrors counter\nspillway_dynamodb_UserErrors {}\n",
            self.user_errors.load(Relaxed)
        ));
        out.push_str(&format!(
            "# TYPE spillway_dynamodb_TimeToLiveDeletedItemCount counter\nspillway_dynamodb_TimeToLiveDeletedItemCount {}\n",
            self.ttl_deleted.load(Relaxed)
        ));
        out
    }
}
