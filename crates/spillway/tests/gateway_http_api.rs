//! An HTTP API (API Gateway v2) in front of real functions, driven with curl: the events a Node
//! handler and a Rust `lambda_http` handler receive, field by field against AWS's documented
//! 2.0 and 1.0 examples; response mapping; API Gateway's error answers; CORS; throttling;
//! access logs; and clients that misbehave.

mod common;
#[path = "common/http.rs"]
mod http_client;

use std::net::SocketAddr;
use std::time::Duration;

use common::repo_root;
use http_client::curl;
use serde_json::json;
use spillway_testkit::up_in_process;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An upstream for the HTTP integration: answers 201 with the request's head as its body.
async fn echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&head).into_owned();
                let answer = format!(
                    "HTTP/1.1 201 Created\r\nx-upstream: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

fn stack_text(upstream: SocketAddr) -> String {
    let f = repo_root().join("tests/functions");
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[functions.echo]
runtime = "nodejs"
code = "{f}/node-api"
handler = "index.handler"
timeout = "10s"

[functions.hello]
runtime = "provided"
code = "{f}/rust-http"

[functions.off]
runtime = "nodejs"
code = "{f}/node-api"
handler = "index.handler"
reserved_concurrency = 0

[apis.web]
listen = "127.0.0.1:0"
access_log = {{ format = '{{"requestId":"$context.requestId","status":"$context.status","routeKey":"$context.routeKey","ip":"$context.identity.sourceIp","error":"$context.error.responseType","integrationError":"$context.integrationErrorMessage"}}', destination = "logs/access.log" }}
cors = {{ allow_origins = ["https://app.example"], allow_methods = ["GET", "POST"], allow_headers = ["content-type"], expose_headers = ["x-from"], max_age = "10m" }}

[[apis.web.routes]]
route = "GET /hello/{{name}}"
function = "hello"

[[apis.web.routes]]
route = "ANY /echo/{{proxy+}}"
function = "echo"

[[apis.web.routes]]
route = "POST /echo"
function = "echo"

[[apis.web.routes]]
route = "GET /v1/{{id}}"
function = "echo"
payload_format = "1.0"

[[apis.web.routes]]
route = "GET /slow"
function = "echo"
timeout = "1s"

[[apis.web.routes]]
route = "ANY /proxy/{{proxy+}}"
http = "http://{upstream}/base"

[[apis.web.routes]]
route = "GET /off"
function = "off"

[[apis.web.routes]]
route = "GET /mock"
mock = {{ status = 202, headers = {{ x-mock = "yes" }}, body = "mocked" }}

[[apis.web.routes]]
route = "GET /limited"
mock = {{ body = "ok" }}

[apis.web.stages."$default".route_throttle]
"GET /limited" = {{ rate_limit = 0.01, burst_limit = 2 }}
"#,
        f = f.display(),
        upstream = upstream,
    )
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_api_gives_functions_api_gateways_events_and_maps_their_answers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let upstream = echo_upstream().await;
    std::fs::write(dir.path().join("spillway.toml"), stack_text(upstream))
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.api_addr("web").unwrap_or_else(|| panic!("no api"));
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);

    // The 2.0 event, field by field (AWS's documented example has the same shape).
    let a = curl(&[
        "-H",
        "x-dup: a",
        "-H",
        "x-dup: b",
        "-H",
        "Cookie: cookie1=1; cookie2=2",
        &url(
            addr,
            "/echo/a%20b/c?parameter1=value1&parameter1=value2&parameter2=value",
        ),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let request_id = a
        .header("apigw-requestid")
        .unwrap_or_else(|| panic!("no apigw-requestid"))
        .to_owned();
    let e = a.json();
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "ANY /echo/{proxy+}");
    assert_eq!(e["rawPath"], "/echo/a%20b/c");
    assert_eq!(
        e["rawQueryString"],
        "parameter1=value1&parameter1=value2&parameter2=value"
    );
    assert_eq!(e["cookies"], json!(["cookie1=1", "cookie2=2"]));
    assert_eq!(e["headers"]["x-dup"], "a,b");
    assert!(e["headers"].get("cookie").is_none(), "{e}");
    assert_eq!(e["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        e["queryStringParameters"],
        json!({"parameter1": "value1,value2", "parameter2": "value"})
    );
    assert_eq!(e["pathParameters"], json!({"proxy": "a b/c"}));
    assert_eq!(e["isBase64Encoded"], false);
    assert!(
        e.get("body").is_none() && e.get("stageVariables").is_none(),
        "{e}"
    );
    let ctx = &e["requestContext"];
    assert_eq!(ctx["accountId"], "123456789012");
    assert_eq!(ctx["apiId"].as_str().map(str::len), Some(10));
    assert_eq!(ctx["domainName"], "127.0.0.1");
    assert_eq!(ctx["http"]["method"], "GET");
    assert_eq!(ctx["http"]["path"], "/echo/a%20b/c");
    assert_eq!(ctx["http"]["protocol"], "HTTP/1.1");
    assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
    assert!(
        ctx["http"]["userAgent"]
            .as_str()
            .is_some_and(|u| u.starts_with("curl/"))
    );
    assert_eq!(ctx["requestId"], request_id.as_str());
    assert_eq!(ctx["routeKey"], "ANY /echo/{proxy+}");
    assert_eq!(ctx["stage"], "$default");
    let epoch = ctx["timeEpoch"].as_i64().unwrap_or(0);
    assert!(
        (before_ms - 1000..before_ms + 60_000).contains(&epoch),
        "{ctx}"
    );
    let time = ctx["time"].as_str().unwrap_or("");
    assert!(time.len() == 26 && time.ends_with(" +0000"), "{time}");
    assert!(ctx.get("authorizer").is_none());

    // Bodies: JSON as text, form data base64 (HTTP APIs encode non-text types).
    let a = curl(&[
        "-H",
        "content-type: application/json",
        "--data-binary",
        r#"{"k":"v"}"#,
        &url(addr, "/echo"),
    ])
    .await;
    let e = a.json();
    assert_eq!(e["routeKey"], "POST /echo");
    assert_eq!(e["body"], r#"{"k":"v"}"#);
    assert_eq!(e["isBase64Encoded"], false);
    let a = curl(&["--data", "a=1&b=2", &url(addr, "/echo")]).await;
    let e = a.json();
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["body"], "YT0xJmI9Mg==");

    // Payload format 1.0 on an HTTP API: version, resource, multi-value fields, nulls.
    let a = curl(&[
        "-H",
        "x-dup: a",
        "-H",
        "x-dup: b",
        &url(addr, "/v1/42?x=1&x=2"),
    ])
    .await;
    let e = a.json();
    assert_eq!(e["version"], "1.0");
    assert_eq!(e["resource"], "/v1/{id}");
    assert_eq!(e["path"], "/v1/42");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["headers"]["x-dup"], "b");
    assert_eq!(e["multiValueHeaders"]["x-dup"], json!(["a", "b"]));
    assert_eq!(e["queryStringParameters"], json!({"x": "2"}));
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"x": ["1", "2"]})
    );
    assert_eq!(e["pathParameters"], json!({"id": "42"}));
    assert_eq!(e["stageVariables"], serde_json::Value::Null);
    assert_eq!(e["body"], serde_json::Value::Null);
    assert_eq!(e["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(e["requestContext"]["resourcePath"], "/v1/{id}");

    // A Rust lambda_http handler reads the same event through its own types.
    let a = curl(&[&url(addr, "/hello/bob")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/plain"));
    assert_eq!(a.text(), "hello bob (GET /hello/bob) ");

    // Response mapping: inference without statusCode, a bare string, cookies, base64.
    let a = curl(&[&url(addr, "/echo/x?mode=inferred")]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.json(), json!({"inferred": true, "path": "/echo/x"}));
    let a = curl(&[&url(addr, "/echo/x?mode=string")]).await;
    assert_eq!(a.text(), "just a string");
    let a = curl(&[&url(addr, "/echo/x?mode=cookies")]).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.headers_named("set-cookie"), ["a=1; Path=/", "b=2"]);
    assert_eq!(a.header("x-from"), Some("node"));
    let a = curl(&[&url(addr, "/echo/x?mode=binary")]).await;
    assert_eq!(a.body, [0u8, 1, 2, 255]);

    // API Gateway's own answers.
    let a = curl(&[&url(addr, "/nowhere")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (404, r#"{"message":"Not Found"}"#)
    );
    assert!(a.header("apigw-requestid").is_some());
    let a = curl(&[&url(addr, "/echo/x?mode=malformed")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (500, r#"{"message":"Internal Server Error"}"#)
    );
    let a = curl(&[&url(addr, "/echo/x?mode=throw")]).await;
    assert_eq!(a.status, 500);
    let a = curl(&[&url(addr, "/slow?mode=sleep&ms=3000")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (504, r#"{"message":"Service Unavailable"}"#)
    );
    // The HTTP integration: the greedy variable and the query go on to the upstream, whose
    // status and headers come back.
    let a = curl(&["-H", "x-tenant: t1", &url(addr, "/proxy/a/b?x=1")]).await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("x-upstream"), Some("yes"));
    let head = a.text();
    assert!(head.starts_with("GET /base/a/b?x=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("x-tenant: t1\r\n"), "{head}");
    assert!(head.contains("x-forwarded-for: 127.0.0.1\r\n"), "{head}");

    // A throttled function (reserved concurrency 0): 503.
    let a = curl(&[&url(addr, "/off")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (503, r#"{"message":"Service Unavailable"}"#)
    );
    let a = curl(&[&url(addr, "/mock")]).await;
    assert_eq!((a.status, a.text().as_str()), (202, "mocked"));
    assert_eq!(a.header("x-mock"), Some("yes"));

    // Over 10 MB: 413, and the API goes on serving.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 10 * 1024 * 1024 + 1]).unwrap_or_else(|e| panic!("{e}"));
    let a = curl(&[
        "-H",
        "Expect:",
        "-H",
        "content-type: text/plain",
        "--data-binary",
        &format!("@{}", big.display()),
        &url(addr, "/echo"),
    ])
    .await;
    assert_eq!(a.status, 413, "{}", a.text());

    // Throttling: a route limit of burst 2.
    let statuses = [
        curl(&[&url(addr, "/limited")]).await.status,
        curl(&[&url(addr, "/limited")]).await.status,
        curl(&[&url(addr, "/limited")]).await.status,
    ];
    assert_eq!(statuses, [200, 200, 429]);
    let a = curl(&[&url(addr, "/limited")]).await;
    assert_eq!(a.text(), r#"{"message":"Too Many Requests"}"#);

    // CORS: the gateway answers preflight itself and overrides the backend's headers.
    let a = curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: POST",
        &url(addr, "/echo"),
    ])
    .await;
    assert_eq!(a.status, 204);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(a.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(a.header("access-control-max-age"), Some("600"));
    let a = curl(&[
        "-H",
        "Origin: https://app.example",
        &url(addr, "/echo/x?mode=cors"),
    ])
    .await;
    assert_eq!(
        a.headers_named("access-control-allow-origin"),
        ["https://app.example"]
    );
    assert_eq!(a.header("access-control-expose-headers"), Some("x-from"));

    // The access log has a JSON line per request with $context values.
    let log = std::fs::read_to_string(dir.path().join("logs/access.log"))
        .unwrap_or_else(|e| panic!("{e}"));
    let line = log
        .lines()
        .find(|l| l.contains(&request_id))
        .unwrap_or_else(|| panic!("no line for {request_id} in {log}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line["status"], "200");
    assert_eq!(line["routeKey"], "ANY /echo/{proxy+}");
    assert_eq!(line["ip"], "127.0.0.1");
    assert!(
        log.lines()
            .any(|l| l.contains(r#""error":"RESOURCE_NOT_FOUND""#))
    );
    assert!(
        log.lines()
            .any(|l| l.contains(r#""error":"INTEGRATION_TIMEOUT""#))
    );

    // Metrics: API Gateway's names, by API and stage.
    let metrics = spillway_testkit::http_get(
        running.http_addr().unwrap_or_else(|| panic!("no endpoint")),
        "/_spillway/metrics",
    )
    .await;
    assert!(
        metrics.contains(r#"spillway_api_4xx_errors{api="web",stage="$default"}"#),
        "{metrics}"
    );

    running.shutdown().await;
}

/// Sends `bytes` on a new connection and returns whatever comes back before the server closes.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(bytes).await.unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends half a request's headers and waits: whether the server closed the connection, not
/// sooner than 5 s and within 30 s.
async fn slowloris(addr: SocketAddr) -> bool {
    let started = std::time::Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    closed.is_ok() && started.elapsed() >= Duration::from_secs(5)
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_clients_get_http_errors_and_do_not_stop_the_api() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("spillway.toml"),
        r#"
[stack]
endpoint = "127.0.0.1:0"

[apis.web]
listen = "127.0.0.1:0"

[[apis.web.routes]]
route = "GET /ok"
mock = { body = "fine" }
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.api_addr("web").unwrap_or_else(|| panic!("no api"));

    // Garbage instead of a request line: 400, connection closed.
    let answer = raw_exchange(addr, b"\x16\x03\x01garbage\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    // Raw bytes over 127 in the path: not a valid request target.
    let answer = raw_exchange(addr, b"GET /ok\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    // Headers over the limit: 431.
    let mut huge = b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 100 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(addr, &huge).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // Percent-encoded invalid UTF-8 and traversal in a path: just a path that matches nothing.
    let answer = raw_exchange(
        addr,
        b"GET /%ff%fe/../ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer:?}");

    // A slowloris client that never finishes its headers is cut off, by the API and by the
    // stack's AWS endpoint alike.
    let endpoint = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let (api_closed, endpoint_closed) = tokio::join!(slowloris(addr), slowloris(endpoint));
    assert!(api_closed, "the API kept a slowloris connection open");
    assert!(
        endpoint_closed,
        "the AWS endpoint kept a slowloris connection open"
    );

    // A body that never arrives in full does not hold up anyone else.
    let mut stalled = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    stalled
        .write_all(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Everyone else is served throughout.
    let a = curl(&[&format!("http://{addr}/ok")]).await;
    assert_eq!((a.status, a.text().as_str()), (200, "fine"));
    // HTTP/2 with prior knowledge too.
    let a = curl(&["--http2-prior-knowledge", &format!("http://{addr}/ok")]).await;
    assert_eq!((a.status, a.text().as_str()), (200, "fine"));
    drop(stalled);
    running.shutdown().await;
}

/// A self-signed certificate for `name` (PEM cert and key files in `dir`).
fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let status = std::process::Command::new(spillway_testkit::require_tool("openssl", "openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(status.success());
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_domains_serve_tls_by_sni_with_api_mappings_over_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (a_cert, a_key) = self_signed(dir.path(), "api.example.test");
    let (b_cert, b_key) = self_signed(dir.path(), "other.example.test");
    let f = repo_root().join("tests/functions");
    std::fs::write(
        dir.path().join("spillway.toml"),
        format!(
            r#"
[stack]
endpoint = "127.0.0.1:0"

[functions.echo]
runtime = "nodejs"
code = "{f}/node-api"
handler = "index.handler"

[apis.secure]
listen = "127.0.0.1:0"
domains = [
  {{ name = "api.example.test", tls = {{ cert = "{a_cert}", key = "{a_key}" }}, base_path = "v1", stage = "prod" }},
  {{ name = "other.example.test", tls = {{ cert = "{b_cert}", key = "{b_key}" }} }},
]

[apis.secure.stages.prod]
variables = {{ mapped = "yes" }}

[apis.secure.stages."$default"]

[[apis.secure.routes]]
route = "ANY /echo/{{proxy+}}"
function = "echo"
"#,
            f = f.display(),
            a_cert = a_cert.display(),
            a_key = a_key.display(),
            b_cert = b_cert.display(),
            b_key = b_key.display(),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let port = running
        .api_addr("secure")
        .unwrap_or_else(|| panic!("no api"))
        .port();
    let resolve = |name: &str| format!("{name}:{port}:127.0.0.1");

    // The first domain's certificate by SNI; its mapping strips the base path and picks prod.
    let a = curl(&[
        "--resolve",
        &resolve("api.example.test"),
        "--cacert",
        &a_cert.display().to_string(),
        "--http1.1",
        &format!("https://api.example.test:{port}/v1/echo/x"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let e = a.json();
    assert_eq!(e["requestContext"]["stage"], "prod");
    assert_eq!(e["requestContext"]["domainName"], "api.example.test");
    assert_eq!(e["requestContext"]["domainPrefix"], "api");
    assert_eq!(e["requestContext"]["http"]["protocol"], "HTTP/1.1");
    assert_eq!(e["stageVariables"]["mapped"], "yes");
    assert_eq!(e["pathParameters"]["proxy"], "x");
    // Outside the base path: not mapped.
    let a = curl(&[
        "--resolve",
        &resolve("api.example.test"),
        "--cacert",
        &a_cert.display().to_string(),
        &format!("https://api.example.test:{port}/v2/echo/x"),
    ])
    .await;
    assert_eq!(a.status, 403);

    // The second domain: its own certificate (curl verifies it against that CA only), HTTP/2
    // by ALPN, the $default stage.
    let a = curl(&[
        "--resolve",
        &resolve("other.example.test"),
        "--cacert",
        &b_cert.display().to_string(),
        "--http2",
        &format!("https://other.example.test:{port}/echo/y"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let e = a.json();
    assert_eq!(e["requestContext"]["http"]["protocol"], "HTTP/2.0");
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert_eq!(e["requestContext"]["domainName"], "other.example.test");

    running.shutdown().await;
}
