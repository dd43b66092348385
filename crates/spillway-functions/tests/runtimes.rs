//! spillway's Node.js and Python bootstraps running real handlers, and bootstraps that break
//! the Runtime API's rules.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use spillway_functions::{FunctionError, InvokeRequest, Runtime};

#[tokio::test]
async fn node_esm_async_handlers_run_and_keep_module_state() {
    let h = host(vec![spec(
        "esm",
        Runtime::Nodejs,
        "node-esm",
        Some("index.handler"),
    )])
    .await;
    let first = h.invoke("esm", json!({"name": "x"})).await;
    let v = json(&first);
    assert_eq!(v["style"], "esm-async", "{v}");
    assert_eq!(v["event"], json!({"name": "x"}));
    assert_eq!(v["requestId"], first.request_id.as_str());
    assert_eq!(v["functionName"], "esm");
    assert_eq!(v["memory"], "256");
    assert_eq!(v["region"], "eu-west-1");
    assert_eq!(v["greeting"], "hi from the stack");
    let left = v["remainingMs"].as_u64().unwrap_or(0);
    assert!((4_000..=5_000).contains(&left), "{left}");
    let second = json(&h.invoke("esm", json!({})).await);
    assert_eq!(
        second["invocations"], 2,
        "the warm instance keeps its module state"
    );
    // console.log lines carry the time, the request id and the level, as on Lambda.
    let line = first
        .log_tail
        .lines()
        .find(|l| l.contains("esm handler got"))
        .unwrap_or_else(|| panic!("{}", first.log_tail));
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        fields.get(1..3),
        Some(&[first.request_id.as_str(), "INFO"][..]),
        "{line}"
    );
}

#[tokio::test]
async fn node_errors_have_lambdas_shape() {
    let h = host(vec![spec(
        "esm",
        Runtime::Nodejs,
        "node-esm",
        Some("index.handler"),
    )])
    .await;
    let o = h.invoke("esm", json!({"fail": "on purpose"})).await;
    assert_eq!(o.error, Some(FunctionError::Unhandled));
    let v = json(&o);
    assert_eq!(v["errorType"], "TypeError");
    assert_eq!(v["errorMessage"], "asked to fail: on purpose");
    assert!(v["trace"].as_array().is_some_and(|t| !t.is_empty()), "{v}");
    // An exception that escapes the handler ends the instance.
    let o = h.invoke("esm", json!({"crash": true})).await;
    assert!(o.error.is_some());
    let after = h.invoke("esm", json!({})).await;
    assert!(after.error.is_none());
}

#[tokio::test]
async fn node_commonjs_callback_handlers_and_nested_names() {
    let h = host(vec![
        spec("cjs", Runtime::Nodejs, "node-cjs", Some("index.handler")),
        spec(
            "nested",
            Runtime::Nodejs,
            "node-cjs",
            Some("index.nested.deeper"),
        ),
        spec(
            "missing",
            Runtime::Nodejs,
            "node-cjs",
            Some("index.nothere"),
        ),
        spec(
            "nomodule",
            Runtime::Nodejs,
            "node-cjs",
            Some("absent.handler"),
        ),
    ])
    .await;
    let o = h.invoke("cjs", json!({"name": "cb"})).await;
    assert_eq!(
        json(&o),
        json!({"style": "cjs-callback", "name": "cb", "requestId": o.request_id})
    );
    let e = json(&h.invoke("cjs", json!({"fail": "x"})).await);
    assert_eq!(
        (e["errorType"].as_str(), e["errorMessage"].as_str()),
        (Some("Error"), Some("callback error: x"))
    );
    let n = json(&h.invoke("nested", json!({"k": 1})).await);
    assert_eq!(n, json!({"nested": true, "event": {"k": 1}}));
    let m = h.invoke("missing", json!({})).await;
    assert_eq!(m.error_type.as_deref(), Some("Runtime.HandlerNotFound"));
    assert_eq!(
        json(&m)["errorMessage"],
        "index.nothere is undefined or not exported"
    );
    let m = h.invoke("nomodule", json!({})).await;
    assert_eq!(m.error_type.as_deref(), Some("Runtime.ImportModuleError"));
}

#[tokio::test]
async fn python_handlers_run_with_a_context() {
    let h = host(vec![
        spec("py", Runtime::Python, "python-app", Some("app.handler")),
        spec(
            "pybad",
            Runtime::Python,
            "python-app",
            Some("app.not_serializable"),
        ),
        spec(
            "pynone",
            Runtime::Python,
            "python-app",
            Some("nothere.handler"),
        ),
    ])
    .await;
    let o = h.invoke("py", json!({"name": "py"})).await;
    let v = json(&o);
    assert_eq!(v["style"], "python", "{v}");
    assert_eq!(v["request_id"], o.request_id.as_str());
    assert_eq!(v["region"], "eu-west-1");
    assert!((4_000..=5_000).contains(&v["remaining_ms"].as_u64().unwrap_or(0)));
    assert_eq!(json(&h.invoke("py", json!({})).await)["invocations"], 2);
    let e = json(&h.invoke("py", json!({"fail": "action"})).await);
    assert_eq!(e["errorType"], "KeyError");
    assert_eq!(e["errorMessage"], "'action'");
    assert!(e["stackTrace"].as_array().is_some_and(|t| !t.is_empty()));
    let m = h.invoke("pybad", json!({})).await;
    assert_eq!(m.error_type.as_deref(), Some("Runtime.MarshalError"));
    let m = h.invoke("pynone", json!({})).await;
    assert_eq!(m.error_type.as_deref(), Some("Runtime.ImportModuleError"));
    assert!(
        json(&m)["errorMessage"]
            .as_str()
            .is_some_and(|s| s.starts_with("Unable to import module 'nothere'"))
    );
}

fn bad(name: &str, file: &str) -> spillway_functions::FunctionSpec {
    let mut s = spec(
        name,
        Runtime::Provided,
        &format!("bad-bootstraps/{file}"),
        None,
    );
    s.timeout = Duration::from_secs(2);
    s
}

#[tokio::test]
async fn bootstraps_that_break_the_rules_get_lambdas_errors_and_the_host_serves_on() {
    let h = host_with(
        vec![
            bad("never", "never-next"),
            bad("quitter", "exit-at-once"),
            bad("garbage", "garbage"),
            bad("wrongid", "wrong-id"),
            spec(
                "missing",
                Runtime::Provided,
                "bad-bootstraps/does-not-exist",
                None,
            ),
            probe("healthy"),
        ],
        |c| c.init_limit = Duration::from_secs(1),
    )
    .await;
    let o = h.invoke("never", json!({})).await;
    assert_eq!(
        o.error_type.as_deref(),
        Some("Sandbox.Timedout"),
        "{}",
        String::from_utf8_lossy(&o.payload)
    );
    let o = h.invoke("quitter", json!({})).await;
    assert_eq!(o.error_type.as_deref(), Some("Runtime.ExitError"));
    assert!(
        json(&o)["errorMessage"]
            .as_str()
            .is_some_and(|m| m.ends_with("Runtime exited with error: exit status 7"))
    );
    assert!(h.log("quitter").contains("exit-at-once: giving up"));
    let o = h.invoke("garbage", json!({})).await;
    assert_eq!(json(&o), json!({"survived": true}));
    assert!(h.log("garbage").contains('\u{fffd}'));
    assert!(
        h.log("garbage").lines().all(|l| l.len() <= 300 * 1024),
        "long lines are cut"
    );
    let o = h.invoke("wrongid", json!({})).await;
    assert_eq!(json(&o), json!({"unknown_id_status": 400}));
    let o = h.invoke("missing", json!({})).await;
    assert_eq!(o.error_type.as_deref(), Some("Runtime.InvalidEntrypoint"));
    let o = h.invoke("healthy", json!({"op": "echo"})).await;
    assert!(o.error.is_none());
}

#[tokio::test]
async fn asynchronous_events_are_retried_twice_then_recorded() {
    let h = host(vec![probe("async")]).await;
    let ok = h
        .host
        .invoke_async("async", json!({"op": "echo"}).to_string().into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failing = h
        .host
        .invoke_async("async", json!({"op": "fail"}).to_string().into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let failures = h.dir.path().join("functions/failures/async.jsonl");
    until("the failure record", Duration::from_secs(30), || {
        failures.exists()
    })
    .await;
    let record: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&failures)
            .unwrap_or_default()
            .trim(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(record["requestContext"]["requestId"], failing.as_str());
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"], json!({"op": "fail"}));
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    let log = h.log("async");
    assert_eq!(
        log.matches(&format!("START RequestId: {failing}")).count(),
        3,
        "{log}"
    );
    assert_eq!(log.matches(&format!("START RequestId: {ok}")).count(), 1);
    let journal = h.dir.path().join("functions/events/async");
    until("the journal to empty", Duration::from_secs(5), || {
        std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0) == 0
    })
    .await;
    // The asynchronous limit is 256 KB.
    let big = format!("\"{}\"", "x".repeat(300 * 1024));
    assert!(matches!(
        h.host.invoke_async("async", big.into()).await,
        Err(spillway_functions::InvokeError::TooLarge(_))
    ));
}

#[tokio::test]
async fn an_accepted_event_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().to_path_buf();
    let make = |state: std::path::PathBuf| async move {
        let mut config = spillway_functions::HostConfig::new("eu-west-1", state);
        config.release_builds = false;
        let mut s = probe("durable");
        s.reserved_concurrency = Some(1);
        spillway_functions::FunctionHost::start(config, vec![s])
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let first = make(state.clone()).await;
    // A synchronous call holds the only instance, so the event waits its turn...
    let busy = {
        let host = std::sync::Arc::clone(&first);
        tokio::spawn(async move {
            host.invoke(
                "durable",
                InvokeRequest::new(json!({"op": "sleep", "ms": 3000}).to_string()),
            )
            .await
        })
    };
    let f = std::sync::Arc::clone(
        first
            .get("durable")
            .unwrap_or_else(|| panic!("no function")),
    );
    until("the call to run", Duration::from_secs(20), || {
        f.concurrent_executions() == 1
    })
    .await;
    let id = first
        .invoke_async(
            "durable",
            json!({"op": "print", "text": "ran after the restart"})
                .to_string()
                .into(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // ...and spillway stops before its turn: the acknowledged event stays in the journal.
    first.shutdown().await;
    let _ = busy.await;
    let journaled = state.join(format!("functions/events/durable/{id}.json"));
    assert!(journaled.exists());
    let log = spillway_functions::logs::log_path(&state, "durable");
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ran after the restart")
    );
    let second = make(state.clone()).await;
    until("the event to run", Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ran after the restart")
    })
    .await;
    until("the journal to empty", Duration::from_secs(10), || {
        !journaled.exists()
    })
    .await;
    second.shutdown().await;
}
