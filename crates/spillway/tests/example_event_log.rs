//! Report 002 end to end, from `examples/event-log` as a user runs it: an HTTP API (`$default`
//! stage) on a custom domain over TLS with a certificate generated on first start, `AWS_IAM`
//! on both routes, one Node.js function on `@aws-sdk/lib-dynamodb` against `EventLog`, CORS,
//! and the report's JSON access log.

mod common;
#[path = "common/http.rs"]
mod http_client;

use common::example;
use http_client::{awscurl_with_env, curl};
use spillway_testkit::up_in_process;

const DOMAIN: &str = "events.example";
const REQUESTER: &str = "api-gateway-log-event-requester";

/// The example listens on the documented ports; the test's copy takes free ones.
fn on_free_ports(toml: &str) -> String {
    toml.replace("[stack]\n", "[stack]\nendpoint = \"127.0.0.1:0\"\n")
        .replace(
            "[apis.log-events]\n",
            "[apis.log-events]\nlisten = \"127.0.0.1:0\"\n",
        )
}

/// A user's generated keys, as `spillway up` shows them, from the stack's state.
fn keys(dir: &std::path::Path, user: &str) -> (String, String) {
    let text = std::fs::read_to_string(dir.join(".spillway/secrets.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let get = |k: &str| {
        v[format!("users/{user}/{k}")]
            .as_str()
            .unwrap_or_else(|| panic!("no users/{user}/{k} in {text}"))
            .to_owned()
    };
    (get("access_key_id"), get("secret_access_key"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_log_api_signs_stores_and_lists_events_over_its_custom_domain() {
    let dir = example("event-log");
    let stack = dir.path().join("spillway.toml");
    let text = std::fs::read_to_string(&stack).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&stack, on_free_ports(&text)).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let port = running
        .api_addr("log-events")
        .unwrap_or_else(|| panic!("no api"))
        .port();

    // The certificate generated on first start, which clients are told to trust.
    let ca = dir
        .path()
        .join(".spillway/domain-tls")
        .join(DOMAIN)
        .join("cert.pem");
    assert!(ca.exists(), "no generated certificate at {}", ca.display());
    let ca = ca.display().to_string();
    let resolve = format!("{DOMAIN}:{port}:127.0.0.1");
    let url = format!("https://{DOMAIN}:{port}/events");
    let host = format!("Host: {DOMAIN}:{port}");
    // awscurl has no --resolve: it connects to 127.0.0.1 (in the certificate too) and signs
    // and sends the domain's Host header, as a client behind an /etc/hosts entry would.
    let signed_url = format!("https://127.0.0.1:{port}/events");
    let trust = [("REQUESTS_CA_BUNDLE", ca.as_str())];

    let (id, secret) = keys(dir.path(), REQUESTER);
    let requester = (id.as_str(), secret.as_str());
    let event =
        r#"{"date":"2021-08-28","time":"14:19:00.000","userId":"EX8C9MRZfhL","eventType":"test"}"#;

    // The report's POST, signed by the requester: the function's answer as the report writes it.
    let (ok, body) = awscurl_with_env(
        requester,
        &trust,
        &["-X", "POST", "-H", &host, "-d", event, &signed_url],
    )
    .await;
    assert!(ok, "{body}");
    assert_eq!(body, r#""Put item EX8C9MRZfhL""#);

    // ...and its GET: a Scan of EventLog through the DocumentClient, plain JSON values.
    let (ok, body) = awscurl_with_env(requester, &trust, &["-H", &host, &signed_url]).await;
    assert!(ok, "{body}");
    let scan: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let stored: serde_json::Value = serde_json::from_str(event).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scan["Items"], serde_json::json!([stored]), "{body}");
    assert_eq!(scan["Count"], 1, "{body}");
    assert_eq!(scan["ScannedCount"], 1, "{body}");

    // Unsigned, through the domain by name (SNI picks its certificate): refused as AWS_IAM
    // routes refuse.
    let a = curl(&["--resolve", &resolve, "--cacert", &ca, &url]).await;
    assert_eq!(a.status, 403, "{}", a.text());
    assert_eq!(a.text(), r#"{"message":"Forbidden"}"#);

    // A user of the same account without the report's policy: signed, yet refused.
    let (id, secret) = keys(dir.path(), "outsider");
    let (ok, body) = awscurl_with_env((&id, &secret), &trust, &["-H", &host, &signed_url]).await;
    assert!(!ok, "{body}");
    assert!(
        body.contains("user/outsider is not authorized to perform: execute-api:Invoke"),
        "{body}"
    );

    // A browser's preflight for a POST from another origin: answered by the gateway, before
    // authorization, with the report's CORS configuration.
    let a = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        &ca,
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: content-type,authorization,x-amz-date",
        &url,
    ])
    .await;
    assert_eq!(a.status, 204, "{}", a.text());
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    assert_eq!(a.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("content-type,authorization,x-amz-date")
    );

    // The access log: one JSON line per request with the report's fields; the POST's.
    let log = std::fs::read_to_string(dir.path().join("logs/access.log"))
        .unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let post = lines
        .iter()
        .find(|l| l["routeKey"] == "POST /events")
        .unwrap_or_else(|| panic!("no POST line in {log}"));
    for field in [
        "requestId",
        "ip",
        "requestTime",
        "httpMethod",
        "routeKey",
        "status",
        "protocol",
        "responseLength",
        "errorMessage",
        "errorResponseType",
        "authorizerError",
        "integrationErrorMessage",
    ] {
        assert!(post[field].is_string(), "{field} in {post}");
    }
    assert_eq!(post["httpMethod"], "POST", "{post}");
    assert_eq!(post["status"], "200", "{post}");
    assert_eq!(post["ip"], "127.0.0.1", "{post}");
    assert_eq!(post["protocol"], "HTTP/1.1", "{post}");
    assert_eq!(
        post["responseLength"],
        r#""Put item EX8C9MRZfhL""#.len().to_string(),
        "{post}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["status"] == "403" && l["httpMethod"] == "GET"),
        "no refused GET in {log}"
    );

    running.shutdown().await;
}
