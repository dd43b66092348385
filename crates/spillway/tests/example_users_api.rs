//! Report 000 end to end, from `examples/users-api` as a user runs it: a REST API (stage
//! `prod`) → a Rust `lambda_http` function and a Node.js function → Secrets Manager for the
//! login → the proxy → PostgreSQL, with the proxy's metrics moving as the report shows.

mod common;
#[path = "common/http.rs"]
mod http_client;

use common::example;
use http_client::curl;
use spillway_testkit::up_in_process;

/// The example listens on the documented ports; the test's copy takes free ones.
fn on_free_ports(toml: &str) -> String {
    toml.replace("[stack]\n", "[stack]\nendpoint = \"127.0.0.1:0\"\n")
        .replace(
            "[proxies.main]\n",
            "[proxies.main]\nlisten = \"127.0.0.1:0\"\n",
        )
        .replace("[apis.users]\n", "[apis.users]\nlisten = \"127.0.0.1:0\"\n")
}

/// The sum of a proxy metric's series.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("spillway_proxy_{name}{{")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The answer's users as (id, name), with `id` as the number the report shows.
fn users(answer: &serde_json::Value) -> Vec<(u64, String)> {
    answer["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(|u| Some((u["id"].as_u64()?, u["name"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_users_api_answers_from_postgres_through_the_proxy_in_rust_and_node() {
    let dir = example("users-api");
    let stack = dir.path().join("spillway.toml");
    let text = std::fs::read_to_string(&stack).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&stack, on_free_ports(&text)).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let api = running
        .api_addr("users")
        .unwrap_or_else(|| panic!("no api"));
    let endpoint = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let metrics = || spillway_testkit::http_get(endpoint, "/_spillway/metrics");
    let before = metrics().await;
    assert!(
        metric(&before, "MaxDatabaseConnectionsAllowed") > 0.0,
        "{before}"
    );

    // The report's table: ten test users, ids as numbers from both runtimes.
    let expected: Vec<(u64, String)> = (1..=10).map(|n| (n, format!("Test User {n}"))).collect();
    // `/prod` is the report's own curl; `/prod/` and `/prod/users` the other two ways in.
    for path in ["/prod", "/prod/", "/prod/users", "/prod/node/users"] {
        let a = curl(&[&format!("http://{api}{path}")]).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(a.header("content-type"), Some("application/json"), "{path}");
        let body = a.json();
        assert_eq!(users(&body), expected, "{path}: {body}");
        for column in ["create_datetime", "update_datetime"] {
            assert!(body["users"][0][column].is_string(), "{path}: {body}");
        }
    }

    // The report's picture: every invocation is a client of the proxy, a handful of server
    // connections serve them, and the queries are counted.
    let after = metrics().await;
    assert!(
        metric(&after, "ClientConnectionsReceived") - metric(&before, "ClientConnectionsReceived")
            >= 4.0,
        "{after}"
    );
    assert!(
        metric(&after, "QueryRequests") - metric(&before, "QueryRequests") >= 4.0,
        "{after}"
    );
    assert!(metric(&after, "DatabaseConnections") >= 1.0, "{after}");
    assert!(
        metric(&after, "DatabaseConnections") < 3.0,
        "four invocations one after the other should share server connections: {after}"
    );
    // Each handler closes its connection before answering, so no client stays connected.
    let mut now = after;
    for _ in 0..50 {
        if metric(&now, "ClientConnections") == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        now = metrics().await;
    }
    assert_eq!(metric(&now, "ClientConnections"), 0.0, "{now}");

    // The REST API's own answers still hold in the example.
    let a = curl(&[&format!("http://{api}/prod/nothing")]).await;
    assert_eq!(a.status, 403);

    running.shutdown().await;
}
