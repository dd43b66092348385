//! `/_spillway/metrics` and `/_spillway/pools` off loopback: they name users, databases and
//! functions, so an endpoint that other machines can reach answers them only to a SigV4
//! signature of a stack principal (awscurl) or the configured `metrics_token` (as Prometheus
//! sends it, `Authorization: Bearer`). `/_spillway/health` stays open; on loopback nothing
//! changes.

#[path = "common/http.rs"]
mod http_client;

use http_client::{awscurl, curl};
use spillway_testkit::up_in_process;

const ALICE: (&str, &str) = (
    "AKIASPILLWAYOBSERVE1",
    "b2JzZXJ2ZS1zZWNyZXQta2V5LTAxMjM0NTY3ODlh",
);
const TOKEN: &str = "metrics-token-0123456789abcdef";

fn stack_text(endpoint: &str) -> String {
    format!(
        r#"
[stack]
endpoint = "{endpoint}"
account = "123456789012"
metrics_token = "{TOKEN}"

[users.alice]
access_key_id = "{}"
secret_access_key = "{}"
"#,
        ALICE.0, ALICE.1
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_pools_need_a_signature_or_the_token_off_loopback() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), stack_text("0.0.0.0:0"))
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let port = running
        .http_addr()
        .unwrap_or_else(|| panic!("no endpoint"))
        .port();
    let url = |p: &str| format!("http://127.0.0.1:{port}/_spillway/{p}");

    for path in ["metrics", "pools"] {
        let a = curl(&[&url(path)]).await;
        assert_eq!(a.status, 403, "{path}: {}", a.text());
        assert!(a.text().contains("metrics_token"), "{}", a.text());
        let a = curl(&["-H", "Authorization: Bearer not-the-token", &url(path)]).await;
        assert_eq!(a.status, 403, "{path}");
        let a = curl(&["-H", &format!("Authorization: Bearer {TOKEN}"), &url(path)]).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        let (ok, body) = awscurl(ALICE, &[&url(path)]).await;
        assert!(ok, "{path}: {body}");
        let wrong = (ALICE.0, "d3Jvbmctc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj");
        let (ok, _) = awscurl(wrong, &[&url(path)]).await;
        assert!(!ok, "{path}: a wrong secret was let in");
    }
    let a = curl(&[
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &url("metrics"),
    ])
    .await;
    assert!(a.text().contains("# TYPE"), "{}", a.text());
    let a = curl(&[&url("health")]).await;
    assert_eq!((a.status, a.text().as_str()), (200, "ok\n"));
    running.shutdown().await;

    // On loopback they stay open, as before.
    std::fs::write(dir.path().join("spillway.toml"), stack_text("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let a = curl(&[&format!("http://{addr}/_spillway/pools")]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    running.shutdown().await;
}
