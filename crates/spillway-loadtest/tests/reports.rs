//! The outputs: Locust's exact CSV headers, an HTML file with nothing to fetch, JSON that
//! parses.

mod common;

const TASKS: &str = "[[task]]\nname='ok'\npath='/ok'\ngroup='proxy'\n[[task]]\nname='fail'\npath='/fail'\ngroup='no_proxy'\n";

async fn run_with_outputs(dir: &std::path::Path) -> (String, spillway_loadtest::Results) {
    let (host, _) = common::serve().await;
    let mut config = common::config(&host, TASKS, common::closed(2), 1);
    config.csv_prefix = Some(dir.join("run").display().to_string());
    config.html = Some(dir.join("report.html"));
    config.compare = vec!["proxy".into(), "no_proxy".into()];
    let r = spillway_loadtest::run(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (host, r)
}

fn first_line(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn csv_headers_are_locusts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let _ = run_with_outputs(dir.path()).await;
    assert_eq!(
        first_line(&dir.path().join("run_stats.csv")),
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    );
    assert_eq!(
        first_line(&dir.path().join("run_stats_history.csv")),
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size"
    );
    assert_eq!(
        first_line(&dir.path().join("run_failures.csv")),
        "Method,Name,Error,Occurrences"
    );
    let stats =
        std::fs::read_to_string(dir.path().join("run_stats.csv")).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<&str> = stats.lines().collect();
    // Two tasks and the aggregate, which has an empty Type, as Locust writes it.
    assert_eq!(rows.len(), 4);
    assert!(rows[3].starts_with(",Aggregated,"), "{}", rows[3]);
    assert_eq!(rows[1].split(',').count(), 22);
}

#[tokio::test]
async fn html_needs_nothing_from_the_network() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (host, _) = run_with_outputs(dir.path()).await;
    let html =
        std::fs::read_to_string(dir.path().join("report.html")).unwrap_or_else(|e| panic!("{e}"));
    let lower = html.to_ascii_lowercase();
    for banned in ["<script", "src=", "href=", "<link", "url(", "@import"] {
        assert!(!lower.contains(banned), "the report contains {banned}");
    }
    // "http" appears only as text: the target's address.
    assert!(!lower.replace(&host, "").contains("http"));
    assert!(html.contains("<svg"));
    assert!(html.contains("Comparison"));
}

#[tokio::test]
async fn json_parses_and_names_everything() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_, r) = run_with_outputs(dir.path()).await;
    let text = spillway_loadtest::report::json(&r).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["tasks"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["aggregated"]["name"], "Aggregated");
    assert_eq!(v["groups"][0]["name"], "proxy");
    assert!(v["history"].as_array().is_some_and(|h| !h.is_empty()));
    assert!(v["generator"]["cores"].as_u64().is_some_and(|c| c >= 1));
}
