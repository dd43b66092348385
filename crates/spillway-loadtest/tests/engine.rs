//! The engine against a real in-process server: counts, failures, weights, intended-time
//! latency in the open model.

mod common;

use rand::SeedableRng;
use spillway_loadtest::{Model, TaskSet};

const TWO: &str = r#"
[[task]]
name = "ok"
path = "/ok"
query = { tenant = "0..199" }
group = "proxy"

[[task]]
name = "fail"
path = "/fail"
expect = 200
group = "no_proxy"
"#;

#[tokio::test]
async fn counts_and_failures_match_the_server() {
    let (host, counts) = common::serve().await;
    let r = spillway_loadtest::run(common::config(&host, TWO, common::closed(4), 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = &r.tasks[0];
    let fail = &r.tasks[1];
    // stop_timeout lets every sent request finish, so nothing the server saw goes uncounted.
    assert_eq!(ok.requests, counts.get("/ok"));
    assert_eq!(fail.requests, counts.get("/fail"));
    assert!(ok.requests > 0 && fail.requests > 0);
    assert_eq!(ok.failures, 0);
    assert_eq!(fail.failures, fail.requests);
    assert_eq!(r.aggregated.requests, ok.requests + fail.requests);
    assert_eq!(r.aggregated.failures, fail.failures);
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].error, "HTTP 500 (expected 200)");
    assert_eq!(r.failures[0].occurrences, fail.failures);
    // The groups of the tasks file become the comparison's columns.
    let names: Vec<&str> = r.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["proxy", "no_proxy"]);
    assert_eq!(r.groups[0].requests, ok.requests);
    // A history row per second, and their counts add up to the totals.
    let last = r.history.last().unwrap_or_else(|| panic!("no history"));
    assert_eq!(last.aggregated.total.requests, r.aggregated.requests);
}

#[test]
fn weights_are_respected_on_a_fixed_seed() {
    let set = TaskSet::parse(
        "[[task]]\nname='a'\nweight=3\npath='/a'\n[[task]]\nname='b'\nweight=1\npath='/b'\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let n = 20_000;
    let a = (0..n).filter(|_| set.pick(&mut rng) == 0).count();
    // Expected 15,000; binomial sd is about 61, so this bound is more than 8 sd wide.
    assert!((14_500..=15_500).contains(&a), "a picked {a} of {n}");
}

#[tokio::test]
async fn closed_model_weights_show_in_the_counts() {
    let (host, counts) = common::serve().await;
    let tasks = "[[task]]\nname='ok'\nweight=4\npath='/ok'\n[[task]]\nname='fail'\nweight=1\npath='/fail'\n";
    let r = spillway_loadtest::run(common::config(&host, tasks, common::closed(4), 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = (counts.get("/ok"), counts.get("/fail"));
    assert_eq!(r.aggregated.requests, a + b);
    // Roughly 4:1; a wide bound, since a one-second run is small.
    assert!(a > b * 2, "ok {a} fail {b}");
}

#[tokio::test]
async fn open_model_latency_counts_from_the_intended_send_time() {
    let (host, counts) = common::serve().await;
    let tasks = "[[task]]\nname='slow'\npath='/slow'\n";
    // 100 arrivals a second but one in flight at a time against a 50 ms route: arrivals queue.
    let model = Model::Open {
        rate: 100.0,
        max_in_flight: 1,
    };
    let r = spillway_loadtest::run(common::config(&host, tasks, model, 2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let slow = &r.tasks[0];
    assert_eq!(slow.requests, counts.get("/slow"));
    assert!(slow.requests >= 5, "only {} requests", slow.requests);
    // Request k (intended at k*10 ms) cannot finish before (k+1)*50 ms on one connection, so
    // from request 4 on its latency exceeds 200 ms: a floor set by the server's sleep, not a
    // timing guess. Measured from the actual send it would stay near 50 ms.
    let floor_ms = 4.0 * common::SLOW.as_secs_f64() * 1000.0;
    assert!(slow.max_ms > floor_ms, "max {} ms", slow.max_ms);
    // The arrivals that never got the one slot are reported, not silently dropped.
    assert!(r.unsent > 0);
    assert_eq!(r.unsent + slow.requests, 200);
}

#[tokio::test]
async fn a_stop_signal_ends_a_long_run_and_keeps_its_results() {
    let (host, counts) = common::serve().await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut config = common::config(
        &host,
        "[[task]]\nname='ok'\npath='/ok'\n",
        common::closed(2),
        3600,
    );
    config.stop = Some(rx);
    let run = tokio::spawn(spillway_loadtest::run(config));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = tx.send(true);
    let r = run
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.aggregated.requests > 0);
    assert_eq!(r.aggregated.requests, counts.get("/ok"));
}

#[tokio::test]
async fn samples_the_metrics_endpoint_and_a_server_process() {
    let (host, _) = common::serve().await;
    let mut config = common::config(
        &host,
        "[[task]]\nname='ok'\npath='/ok'\n",
        common::closed(2),
        2,
    );
    config.metrics_url = Some(format!("{host}/_spillway/metrics"));
    // This test process stands in for a database server: it holds the test server's sockets.
    config.servers = vec![spillway_loadtest::procfs::FoundServer {
        name: "self".into(),
        pid: std::process::id(),
    }];
    let r = spillway_loadtest::run(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = r.samples.first().unwrap_or_else(|| panic!("no samples"));
    assert_eq!(s.metrics_error, None);
    assert_eq!(s.proxy_client_connections, Some(7.0));
    assert_eq!(s.proxy_database_connections, Some(3.0));
    assert_eq!(s.function_concurrency, Some(2.0));
    assert_eq!(s.servers[0].name, "self");
    assert!(s.servers[0].cpu_pct.is_some());
    assert!(s.servers[0].connections.is_some_and(|c| c > 0));
    // Rates and the borrow mean come from differences, so from the second sample on.
    let later = r.samples.get(1).unwrap_or_else(|| panic!("one sample"));
    assert_eq!(later.function_errors_per_s.map(f64::round), Some(0.0));
}
