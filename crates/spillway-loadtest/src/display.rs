//! The live view. On a terminal: a table redrawn in place every second (requests/s,
//! failures/s and p50/p95/p99 per task, users, the generator's CPU). Elsewhere (a pipe, a CI
//! log): one plain line per second, since cursor movement would be noise in a file.
//!
//! Written to stderr so that stdout carries only `--json`'s document.

use std::io::Write;

use crate::sampler::Sample;
use crate::stats::HistoryRow;

pub struct Display {
    tty: bool,
    drawn_lines: usize,
    names: Vec<String>,
    cores: usize,
}

fn pct(p: &Option<Vec<f64>>, i: usize) -> String {
    p.as_ref()
        .and_then(|v| v.get(i))
        // Below 10 ms one decimal: on loopback most answers take well under a millisecond.
        .map(|v| {
            if *v < 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        })
        .unwrap_or_else(|| "-".into())
}

impl Display {
    pub fn new(tty: bool, names: Vec<String>) -> Self {
        Self {
            tty,
            drawn_lines: 0,
            names,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }

    fn saturated(&self, s: &Sample) -> bool {
        s.generator_cpu_pct > 90.0 * self.cores as f64
    }

    pub fn show(&mut self, row: &HistoryRow, sample: &Sample) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let mut out = String::new();
            if self.drawn_lines > 0 {
                // Up to the first line of the previous frame, then clear to the end.
                out.push_str(&format!("\x1b[{}A\x1b[J", self.drawn_lines));
            }
            let mut lines = vec![
                format!(
                    "{:>6.0}s  users {:<6} generator cpu {:>4.0}%{}",
                    row.elapsed_s,
                    row.users,
                    sample.generator_cpu_pct,
                    if self.saturated(sample) {
                        "  SATURATED: results measure the generator"
                    } else {
                        ""
                    }
                ),
                format!(
                    "{:<28} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7}",
                    "task", "req/s", "fail/s", "p50 ms", "p95 ms", "p99 ms", "requests", "fails"
                ),
            ];
            let all = std::iter::once(("Aggregated", &row.aggregated));
            for (name, p) in self
                .names
                .iter()
                .map(String::as_str)
                .zip(row.tasks.iter())
                .chain(all)
            {
                lines.push(format!(
                    "{:<28} {:>9.1} {:>9.1} {:>8} {:>8} {:>8} {:>9} {:>7}",
                    truncate(name, 28),
                    p.rps,
                    p.fps,
                    pct(&p.percentiles_ms, 0),
                    pct(&p.percentiles_ms, 5),
                    pct(&p.percentiles_ms, 7),
                    p.total.requests,
                    p.total.failures
                ));
            }
            let stack = stack_line(sample);
            if !stack.is_empty() {
                lines.push(stack);
            }
            self.drawn_lines = lines.len();
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
            let _ = err.write_all(out.as_bytes());
        } else {
            let a = &row.aggregated;
            let stack = stack_line(sample);
            let _ = writeln!(
                err,
                "[{:.0}s] users {} | {:.1} req/s {:.1} fail/s | p50 {} p95 {} p99 {} ms | total {} fails {} | generator cpu {:.0}%{}{}",
                row.elapsed_s,
                row.users,
                a.rps,
                a.fps,
                pct(&a.percentiles_ms, 0),
                pct(&a.percentiles_ms, 5),
                pct(&a.percentiles_ms, 7),
                a.total.requests,
                a.total.failures,
                sample.generator_cpu_pct,
                if self.saturated(sample) {
                    " SATURATED"
                } else {
                    ""
                },
                if stack.is_empty() {
                    String::new()
                } else {
                    format!(" | {stack}")
                }
            );
        }
        let _ = err.flush();
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn stack_line(s: &Sample) -> String {
    let mut parts = Vec::new();
    if let Some(v) = s.proxy_client_connections {
        parts.push(format!("proxy clients {v:.0}"));
    }
    if let Some(v) = s.proxy_database_connections {
        parts.push(format!("proxy db conns {v:.0}"));
    }
    if let Some(v) = s.proxy_borrow_latency_ms {
        parts.push(format!("borrow {v:.1} ms"));
    }
    if let Some(v) = s.function_concurrency {
        parts.push(format!("fn concurrency {v:.0}"));
    }
    if let Some(v) = s.function_errors_per_s {
        parts.push(format!("fn errors/s {v:.1}"));
    }
    for srv in &s.servers {
        parts.push(format!(
            "{} conns {} cpu {}%",
            srv.name,
            srv.connections.map(|c| c.to_string()).unwrap_or("-".into()),
            srv.cpu_pct.map(|c| format!("{c:.0}")).unwrap_or("-".into())
        ));
    }
    if let Some(e) = &s.metrics_error {
        parts.push(format!("metrics: {e}"));
    }
    parts.join(", ")
}
