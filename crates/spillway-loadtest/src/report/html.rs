//! The HTML report: one file, styles inline, charts as inline SVG (see svg.rs), no scripts and
//! no links, so it opens offline and can be mailed or attached to an issue as it is.

use std::fmt::Write;

use super::svg::{Line, escape, line_chart};
use crate::results::Results;
use crate::stats::{PERCENTILE_TITLES, Summary};

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px}h2{font-size:16px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}.warn{color:#b00;font-weight:bold}\
svg{display:block;margin:8px 0}svg .title{font-size:13px;font-weight:bold}\
svg .tick{font-size:11px;fill:#555}svg .legend{font-size:11px}svg .grid{stroke:#e5e5e5}";

fn summary_row(out: &mut String, s: &Summary) {
    let p = |i: usize| {
        s.percentiles_ms
            .as_ref()
            .and_then(|v| v.get(i))
            .map(|v| format!("{v:.0}"))
            .unwrap_or_else(|| "N/A".into())
    };
    let _ = write!(
        out,
        "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.2}</td>\
         <td>{:.0}</td><td>{:.1}</td><td>{:.0}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{:.1}</td><td>{:.1}</td></tr>",
        escape(&s.method),
        escape(&s.name),
        s.requests,
        s.failures,
        if s.requests > 0 {
            s.failures as f64 * 100.0 / s.requests as f64
        } else {
            0.0
        },
        s.median_ms,
        s.avg_ms,
        s.min_ms,
        s.max_ms,
        p(4),
        p(5),
        p(7),
        s.rps,
        s.fps
    );
}

const SUMMARY_HEAD: &str = "<tr><th class=\"l\">Type</th><th class=\"l\">Name</th><th>Requests</th>\
<th>Fails</th><th>Fail %</th><th>Median ms</th><th>Average ms</th><th>Min ms</th><th>Max ms</th>\
<th>90%ile ms</th><th>95%ile ms</th><th>99%ile ms</th><th>Req/s</th><th>Failures/s</th></tr>";

/// The side-by-side table of `--compare`: one column per group.
fn compare_table(out: &mut String, groups: &[Summary]) {
    out.push_str("<h2>Comparison</h2><table><tr><th class=\"l\"></th>");
    for g in groups {
        let _ = write!(out, "<th>{}</th>", escape(&g.name));
    }
    out.push_str("</tr>");
    type F = fn(&Summary) -> String;
    let rows: [(&str, F); 9] = [
        ("Requests", |s| s.requests.to_string()),
        ("Failures", |s| s.failures.to_string()),
        ("Failure %", |s| {
            format!(
                "{:.2}",
                if s.requests > 0 {
                    s.failures as f64 * 100.0 / s.requests as f64
                } else {
                    0.0
                }
            )
        }),
        ("Requests/s", |s| format!("{:.1}", s.rps)),
        ("Median ms", |s| format!("{:.0}", s.median_ms)),
        ("Average ms", |s| format!("{:.1}", s.avg_ms)),
        ("90%ile ms", |s| pct(s, 4)),
        ("99%ile ms", |s| pct(s, 7)),
        ("Max ms", |s| format!("{:.0}", s.max_ms)),
    ];
    for (title, get) in rows {
        let _ = write!(out, "<tr><th class=\"l\">{title}</th>");
        for g in groups {
            let _ = write!(out, "<td>{}</td>", get(g));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn pct(s: &Summary, i: usize) -> String {
    s.percentiles_ms
        .as_ref()
        .and_then(|v| v.get(i))
        .map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "N/A".into())
}

fn series(name: &str, points: Vec<(f64, Option<f64>)>) -> Line {
    Line {
        name: name.into(),
        points,
    }
}

pub fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>spillway loadtest: {host}</title><style>{STYLE}</style></head><body>\
         <h1>spillway loadtest</h1><p>Target <code>{host}</code>. {model}. {dur:.0} s.</p>",
        host = escape(&r.host),
        model = escape(&r.model),
        dur = r.duration_s
    );
    let g = &r.generator;
    let _ = write!(
        out,
        "<p{cls}>Generator: {cpu:.1} CPU seconds, peak {peak:.0}% of one core ({cores} cores){sat}.</p>",
        cls = if g.saturated { " class=\"warn\"" } else { "" },
        cpu = g.cpu_seconds,
        peak = g.peak_cpu_pct,
        cores = g.cores,
        sat = if g.saturated {
            " — saturated: the generator, not only the target, limited these numbers"
        } else {
            ""
        }
    );
    if r.unsent > 0 {
        let _ = write!(
            out,
            "<p class=\"warn\">{} arrivals were due but never sent (every in-flight slot was busy until the end).</p>",
            r.unsent
        );
    }

    out.push_str("<h2>Request statistics</h2><table>");
    out.push_str(SUMMARY_HEAD);
    for s in r.tasks.iter().chain(std::iter::once(&r.aggregated)) {
        summary_row(&mut out, s);
    }
    out.push_str("</table>");
    if r.groups.len() > 1 {
        compare_table(&mut out, &r.groups);
    }

    let t = |row: &crate::stats::HistoryRow| row.elapsed_s;
    out.push_str("<h2>Over time</h2>");
    let names: Vec<&str> = r.tasks.iter().map(|s| s.name.as_str()).collect();
    let per_task = |get: fn(&crate::stats::Point) -> Option<f64>| -> Vec<Line> {
        let mut lines: Vec<Line> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                series(
                    n,
                    r.history
                        .iter()
                        .map(|row| (t(row), row.tasks.get(i).and_then(get)))
                        .collect(),
                )
            })
            .collect();
        if names.len() > 1 {
            lines.push(series(
                "Aggregated",
                r.history
                    .iter()
                    .map(|row| (t(row), get(&row.aggregated)))
                    .collect(),
            ));
        }
        lines
    };
    out.push_str(&line_chart(
        "Requests per second",
        "req/s",
        &per_task(|p| Some(p.rps)),
    ));
    out.push_str(&line_chart(
        "Failures per second",
        "fail/s",
        &per_task(|p| Some(p.fps)),
    ));
    out.push_str(&line_chart(
        "Users (closed model) or requests in flight (open model)",
        "users",
        &[series(
            "users",
            r.history
                .iter()
                .map(|row| (t(row), Some(row.users as f64)))
                .collect(),
        )],
    ));
    for (i, n) in names.iter().enumerate() {
        let lines: Vec<Line> = [(0usize, "p50"), (5, "p95"), (7, "p99")]
            .iter()
            .map(|(k, label)| {
                series(
                    label,
                    r.history
                        .iter()
                        .map(|row| {
                            (
                                t(row),
                                row.tasks
                                    .get(i)
                                    .and_then(|p| p.percentiles_ms.as_ref())
                                    .and_then(|v| v.get(*k).copied()),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        out.push_str(&line_chart(
            &format!("Response time percentiles: {n}"),
            "ms",
            &lines,
        ));
    }

    stack_charts(&mut out, r);
    out.push_str(&format!(
        "<p>Percentile columns follow Locust's ({}).</p></body></html>\n",
        PERCENTILE_TITLES.join(", ")
    ));
    out
}

fn stack_charts(out: &mut String, r: &Results) {
    let s = &r.samples;
    let opt = |get: fn(&crate::sampler::Sample) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        s.iter().map(|x| (x.elapsed_s, get(x))).collect()
    };
    let has = |pts: &[(f64, Option<f64>)]| pts.iter().any(|p| p.1.is_some());
    let mut server_names: Vec<String> = Vec::new();
    for x in s {
        for srv in &x.servers {
            if !server_names.contains(&srv.name) {
                server_names.push(srv.name.clone());
            }
        }
    }
    let per_server = |conn: bool| -> Vec<Line> {
        server_names
            .iter()
            .map(|n| {
                series(
                    n,
                    s.iter()
                        .map(|x| {
                            let v = x.servers.iter().find(|v| &v.name == n).and_then(|v| {
                                if conn {
                                    v.connections.map(|c| c as f64)
                                } else {
                                    v.cpu_pct
                                }
                            });
                            (x.elapsed_s, v)
                        })
                        .collect(),
                )
            })
            .collect()
    };
    out.push_str("<h2>The stack</h2>");
    let mut conns = per_server(true);
    let proxy_db = opt(|x| x.proxy_database_connections);
    if has(&proxy_db) {
        conns.push(series("proxy DatabaseConnections", proxy_db));
    }
    let proxy_clients = opt(|x| x.proxy_client_connections);
    if has(&proxy_clients) {
        conns.push(series("proxy ClientConnections", proxy_clients));
    }
    out.push_str(&line_chart("Database connections", "connections", &conns));
    let mut cpu = per_server(false);
    cpu.push(series(
        "generator",
        s.iter()
            .map(|x| (x.elapsed_s, Some(x.generator_cpu_pct)))
            .collect(),
    ));
    out.push_str(&line_chart("CPU (% of one core)", "%", &cpu));
    let borrow = opt(|x| x.proxy_borrow_latency_ms);
    if has(&borrow) {
        out.push_str(&line_chart(
            "Proxy borrow latency (mean per second)",
            "ms",
            &[series("borrow", borrow)],
        ));
    }
    let conc = opt(|x| x.function_concurrency);
    let errs = opt(|x| x.function_errors_per_s);
    if has(&conc) || has(&errs) {
        out.push_str(&line_chart(
            "Functions",
            "count",
            &[
                series("concurrent executions", conc),
                series("errors/s", errs),
                series("throttles/s", opt(|x| x.function_throttles_per_s)),
            ],
        ));
    }
}
