//! Rust functions built with `lambda_runtime` and `lambda_http`, run through the internal
//! invoke path: reuse, Context, environment, timeouts, crashes, limits and logs.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use spillway_functions::{FunctionError, InvokeError, InvokeRequest, Runtime};

#[tokio::test]
async fn a_warm_instance_is_reused_and_logs_start_end_report() {
    let h = host(vec![probe("probe")]).await;
    let first = h.invoke("probe", json!({"op": "pid"})).await;
    let second = h.invoke("probe", json!({"op": "pid"})).await;
    assert!(first.cold && !second.cold);
    assert_eq!(json(&first)["pid"], json(&second)["pid"]);
    let echoed = h
        .invoke("probe", json!({"op": "echo", "n": [1, 2, 3]}))
        .await;
    assert_eq!(json(&echoed), json!({"op": "echo", "n": [1, 2, 3]}));
    assert!(echoed.error.is_none());

    let log = h.log("probe");
    assert_eq!(log.matches("START RequestId: ").count(), 3, "{log}");
    assert_eq!(log.matches("END RequestId: ").count(), 3);
    let reports: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("REPORT RequestId: "))
        .collect();
    assert_eq!(reports.len(), 3);
    assert!(reports[0].contains(&format!(
        "REPORT RequestId: {}\tDuration: ",
        first.request_id
    )));
    assert!(reports[0].contains("\tMemory Size: 256 MB\tMax Memory Used: "));
    // Only the cold start reports its Init Duration.
    assert!(reports[0].contains("Init Duration: "));
    assert!(!reports[1].contains("Init Duration") && !reports[2].contains("Init Duration"));
    // The tail is this invocation's lines.
    assert!(
        echoed
            .log_tail
            .starts_with(&format!("START RequestId: {}", echoed.request_id))
    );
    assert!(
        echoed
            .log_tail
            .contains(&format!("REPORT RequestId: {}", echoed.request_id))
    );
    assert!(!echoed.log_tail.contains(&first.request_id));
}

#[tokio::test]
async fn the_context_carries_the_deadline_arn_and_settings() {
    let mut s = probe("ctx");
    s.timeout = Duration::from_secs(7);
    s.memory_mb = 512;
    let h = host(vec![s]).await;
    let o = h.invoke("ctx", json!({"op": "context"})).await;
    let v = json(&o);
    let left =
        v["deadline_ms"].as_u64().unwrap_or(0) as i64 - v["now_ms"].as_u64().unwrap_or(0) as i64;
    assert!(
        (6_000..=7_000).contains(&left),
        "deadline - now = {left} ms"
    );
    assert_eq!(v["request_id"], o.request_id.as_str());
    assert_eq!(
        v["function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:ctx"
    );
    assert_eq!(v["function_name"], "ctx");
    assert_eq!(v["memory"], 512);
    assert_eq!(v["version"], "$LATEST");
    assert_eq!(v["log_group"], "/aws/lambda/ctx");
    let stream = v["log_stream"].as_str().unwrap_or("");
    assert!(
        stream.contains("/[$LATEST]") && stream.len() == 11 + 9 + 32,
        "{stream}"
    );
    assert!(v["trace_id"].as_str().unwrap_or("").starts_with("Root=1-"));
}

#[tokio::test]
async fn the_environment_is_lambdas_plus_the_stacks() {
    let h = host(vec![probe("envy")]).await;
    let v = json(&h.invoke("envy", json!({"op": "env"})).await);
    let api = v["AWS_LAMBDA_RUNTIME_API"].as_str().unwrap_or("");
    assert!(api.starts_with("127.0.0.1:"), "{api}");
    for (k, want) in [
        ("AWS_LAMBDA_FUNCTION_NAME", "envy"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/envy"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("AWS_ACCESS_KEY_ID", "ASIATEST4"),
        ("AWS_SECRET_ACCESS_KEY", "secret-for-spillway-fn-envy"),
        ("AWS_SESSION_TOKEN", "token"),
        ("GREETING", "hi from the stack"),
    ] {
        assert_eq!(v[k], want, "{k}");
    }
    assert!(
        v["LAMBDA_TASK_ROOT"]
            .as_str()
            .unwrap_or("")
            .ends_with("rust-probe")
    );
    // Nothing of the host's own environment leaks in but PATH.
    assert!(v.get("CARGO").is_none());
    // Lambda sets no HOME; a function with a user of its own (spillway as root) has no passwd
    // entry to find one in, so it gets its private /tmp (docs/functions.md, Isolation).
    if nix::unistd::geteuid().is_root() {
        assert_eq!(v["HOME"], "/tmp", "{v}");
    } else {
        assert!(v.get("HOME").is_none(), "{v}");
    }
}

#[tokio::test]
async fn a_timeout_kills_the_instance_and_the_next_call_gets_a_new_one() {
    let mut s = probe("slow");
    s.timeout = Duration::from_secs(1);
    let h = host(vec![s]).await;
    let before = json(&h.invoke("slow", json!({"op": "pid"})).await)["pid"]
        .as_u64()
        .unwrap_or(0);
    let o = h.invoke("slow", json!({"op": "sleep", "ms": 5000})).await;
    assert_eq!(o.error, Some(FunctionError::Unhandled));
    assert_eq!(o.error_type.as_deref(), Some("Sandbox.Timedout"));
    let v = json(&o);
    assert_eq!(v["errorType"], "Sandbox.Timedout");
    assert_eq!(
        v["errorMessage"],
        format!(
            "RequestId: {} Error: Task timed out after 1.00 seconds",
            o.request_id
        )
    );
    assert!(h.log("slow").contains(&format!(
        "{} Task timed out after 1.00 seconds",
        o.request_id
    )));
    until(
        "the timed-out instance to die",
        Duration::from_secs(5),
        || !alive(before),
    )
    .await;
    let after = h.invoke("slow", json!({"op": "pid"})).await;
    assert!(after.cold);
    assert_ne!(json(&after)["pid"].as_u64(), Some(before));
}

#[tokio::test]
async fn a_crash_fails_its_invocation_with_runtime_exit_error_and_is_replaced() {
    let h = host(vec![probe("crashy")]).await;
    let o = h.invoke("crashy", json!({"op": "exit", "code": 3})).await;
    assert_eq!(o.error_type.as_deref(), Some("Runtime.ExitError"));
    assert_eq!(
        json(&o)["errorMessage"],
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 3",
            o.request_id
        )
    );
    let next = h.invoke("crashy", json!({"op": "echo"})).await;
    assert!(next.cold && next.error.is_none());
}

#[tokio::test]
async fn a_function_error_keeps_the_instance() {
    let h = host(vec![probe("failing")]).await;
    let pid = json(&h.invoke("failing", json!({"op": "pid"})).await)["pid"].clone();
    let o = h.invoke("failing", json!({"op": "fail"})).await;
    assert_eq!(o.error, Some(FunctionError::Unhandled));
    let v = json(&o);
    assert_eq!(v["errorMessage"], "the probe was asked to fail");
    assert!(v["errorType"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        json(&h.invoke("failing", json!({"op": "pid"})).await)["pid"],
        pid
    );
}

#[tokio::test]
async fn a_response_over_six_megabytes_is_refused_and_the_instance_lives_on() {
    let h = host(vec![probe("big")]).await;
    let o = h
        .invoke("big", json!({"op": "big", "bytes": 10 * 1024 * 1024}))
        .await;
    assert_eq!(
        o.error_type.as_deref(),
        Some("Function.ResponseSizeTooLarge")
    );
    assert_eq!(
        json(&o)["errorMessage"],
        "Response payload size exceeded maximum allowed payload size (6291456 bytes)."
    );
    let fine = h.invoke("big", json!({"op": "big", "bytes": 1024})).await;
    assert!(fine.error.is_none() && !fine.cold);
}

#[tokio::test]
async fn reserved_concurrency_throttles_synchronous_calls() {
    let mut one = probe("one");
    one.reserved_concurrency = Some(1);
    let mut none = probe("none");
    none.reserved_concurrency = Some(0);
    let h = host(vec![one, none]).await;
    let host = std::sync::Arc::clone(&h.host);
    let busy = tokio::spawn(async move {
        host.invoke(
            "one",
            InvokeRequest::new(json!({"op": "sleep", "ms": 1500}).to_string()),
        )
        .await
    });
    let f = h.host.get("one").unwrap_or_else(|| panic!("no function"));
    until("the first call to run", Duration::from_secs(20), || {
        f.concurrent_executions() == 1
    })
    .await;
    // Give the first call time to get past its cold start into the handler.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = h.host.invoke("one", InvokeRequest::new("{}")).await;
    assert_eq!(
        refused.err(),
        Some(InvokeError::Throttled { reserved: true })
    );
    let first = busy
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.error.is_none());
    assert!(h.host.invoke("one", InvokeRequest::new("{}")).await.is_ok());
    assert_eq!(
        h.host.invoke("none", InvokeRequest::new("{}")).await.err(),
        Some(InvokeError::Throttled { reserved: true })
    );
    assert!(
        h.host
            .render_metrics()
            .contains("spillway_function_throttles_total{function=\"one\"} 1")
    );
}

#[tokio::test]
async fn concurrent_calls_get_their_own_instances_up_to_the_limit() {
    let mut s = probe("wide");
    s.reserved_concurrency = Some(3);
    let h = host(vec![s]).await;
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let host = std::sync::Arc::clone(&h.host);
            tokio::spawn(async move {
                host.invoke(
                    "wide",
                    InvokeRequest::new(json!({"op": "sleep", "ms": 800}).to_string()),
                )
                .await
            })
        })
        .collect();
    let mut pids = Vec::new();
    for c in calls {
        let o = c
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(o.error.is_none(), "{}", String::from_utf8_lossy(&o.payload));
        pids.push(json(&o)["pid"].as_u64().unwrap_or(0));
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "one instance per concurrent call");
    assert_eq!(h.host.get("wide").map(|f| f.idle_instances()), Some(3));
}

#[tokio::test]
async fn events_that_are_not_json_are_refused_before_any_instance_starts() {
    let h = host(vec![probe("strict")]).await;
    let r = h
        .host
        .invoke("strict", InvokeRequest::new("{not json"))
        .await;
    assert!(matches!(r, Err(InvokeError::InvalidContent(_))), "{r:?}");
    assert_eq!(
        h.host.invoke("nope", InvokeRequest::new("{}")).await.err(),
        Some(InvokeError::NotFound("nope".into()))
    );
    assert_eq!(h.host.get("strict").map(|f| f.idle_instances()), Some(0));
}

#[tokio::test]
async fn output_is_captured_line_by_line_with_the_request() {
    let h = host(vec![probe("chatty")]).await;
    let o = h
        .invoke(
            "chatty",
            json!({"op": "print", "text": "a line from the function"}),
        )
        .await;
    assert!(
        o.log_tail.contains("a line from the function\n"),
        "{}",
        o.log_tail
    );
    assert!(o.log_tail.contains("to stderr: a line from the function\n"));
    let log = h.log("chatty");
    let line = log
        .lines()
        .find(|l| l.ends_with(" a line from the function"))
        .unwrap_or_else(|| panic!("{log}"));
    // `<time> <stream> <message>`
    assert!(
        line.starts_with("20") && line.contains("[$LATEST]"),
        "{line}"
    );
}

#[tokio::test]
async fn memory_is_measured_and_limited_where_cgroups_allow() {
    let mut s = probe("hungry");
    s.memory_mb = 128;
    let h = host(vec![s]).await;
    let o = h.invoke("hungry", json!({"op": "alloc", "mb": 64})).await;
    assert!(o.error.is_none());
    let report = o
        .log_tail
        .lines()
        .find(|l| l.starts_with("REPORT"))
        .unwrap_or_else(|| panic!("{}", o.log_tail));
    let used: u64 = report
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(used >= 64, "{report}");
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v1_memory = cgroups.lines().any(|l| {
        l.split(':')
            .nth(1)
            .is_some_and(|c| c.split(',').any(|c| c == "memory"))
    });
    if v1_memory && std::fs::metadata("/sys/fs/cgroup/memory").is_ok() {
        let o = h.invoke("hungry", json!({"op": "alloc", "mb": 400})).await;
        assert_eq!(
            o.error_type.as_deref(),
            Some("Runtime.OutOfMemory"),
            "{}",
            String::from_utf8_lossy(&o.payload)
        );
    } else {
        eprintln!("no cgroup v1 memory controller here: the limit is not enforced, only measured");
    }
}

#[tokio::test]
async fn lambda_http_answers_an_http_api_event() {
    let h = host(vec![spec("web", Runtime::Provided, "rust-http", None)]).await;
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /hello/{name}",
        "rawPath": "/hello/ada",
        "rawQueryString": "",
        "headers": {"host": "localhost", "content-type": "text/plain"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": "GET", "path": "/hello/ada", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r1",
            "routeKey": "GET /hello/{name}",
            "stage": "$default",
            "time": "22/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_u64
        },
        "pathParameters": {"name": "ada"},
        "isBase64Encoded": false
    });
    let o = h.invoke("web", event).await;
    let v = json(&o);
    assert_eq!(v["statusCode"], 200, "{v}");
    assert_eq!(v["body"], "hello ada (GET /hello/ada) ");
    assert_eq!(v["headers"]["content-type"], "text/plain");
}

#[tokio::test]
async fn shutdown_leaves_no_process_behind() {
    let mut s = probe("many");
    s.reserved_concurrency = Some(2);
    let h = host(vec![s]).await;
    let a = std::sync::Arc::clone(&h.host);
    let b = std::sync::Arc::clone(&h.host);
    let (x, y) = tokio::join!(
        a.invoke(
            "many",
            InvokeRequest::new(json!({"op": "sleep", "ms": 300}).to_string())
        ),
        b.invoke(
            "many",
            InvokeRequest::new(json!({"op": "sleep", "ms": 300}).to_string())
        ),
    );
    let pids: Vec<u64> = [x, y]
        .into_iter()
        .map(|r| {
            json(&r.unwrap_or_else(|e| panic!("{e}")))["pid"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect();
    assert!(pids.iter().all(|p| alive(*p)));
    h.host.shutdown().await;
    until("instances to exit", Duration::from_secs(5), || {
        pids.iter().all(|p| !alive(*p))
    })
    .await;
    assert_eq!(
        h.host.invoke("many", InvokeRequest::new("{}")).await.err(),
        Some(InvokeError::ShuttingDown)
    );
}

#[tokio::test]
async fn a_streamed_response_is_collected_whole() {
    let h = host(vec![spec("stream", Runtime::Provided, "rust-stream", None)]).await;
    let o = h.invoke("stream", json!({"chunks": 4})).await;
    assert!(o.error.is_none(), "{}", String::from_utf8_lossy(&o.payload));
    let body = String::from_utf8_lossy(&o.payload);
    // lambda_runtime's metadata prelude, eight NULs, then the chunks in order.
    assert!(
        body.starts_with('{') && body.contains("\0\0\0\0\0\0\0\0"),
        "{body:?}"
    );
    assert!(
        body.ends_with("chunk 0;chunk 1;chunk 2;chunk 3;"),
        "{body:?}"
    );
}
