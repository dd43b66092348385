//! Issue 15, item 5, as a hostile client acts: hundreds of TCP connections to an API that never
//! send a byte. On a process with 1,024 descriptors they must neither starve the stack's AWS
//! endpoint nor keep the API from its users, and the server must close them itself.
//!
//! One test in its own binary, because it lowers this process's descriptor limit: the stack runs
//! in-process, so the hostile client's sockets and the server's share the limit, as they would
//! share a machine's. (nextest runs each test in a process of its own; `cargo test` runs a
//! binary's tests in one process, hence the separate file.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use spillway_testkit::up_in_process;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The process's descriptor limit for this test: a common default.
const LIMIT: u64 = 1024;
/// Silent connections to the API: more than the API's share of the descriptors, and enough
/// that the server holding all of them (as well as the client's ends) would exhaust `LIMIT`,
/// while the client's ends plus the API's share leave room.
const SILENT: usize = 560;
/// Silent connections to the AWS endpoint (zero bytes, never a request line).
const SILENT_AT_ENDPOINT: usize = 10;
/// Bound on everything this test waits for: the server closes each round of silent connections
/// after its 10 s header timeout, and at most three rounds are queued.
const PATIENCE: Duration = Duration::from_secs(120);

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A GET on a new connection: the status line, or why there was none within `wait`.
async fn get(addr: SocketAddr, path: &str, wait: Duration) -> Result<String, String> {
    let exchange = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    match tokio::time::timeout(wait, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {wait:?}")),
    }
}

/// Waits until the server closes `s` (EOF or reset) without ever answering: whether it did
/// before `deadline`.
async fn closed_by_server(mut s: TcpStream, deadline: tokio::time::Instant) -> Result<(), String> {
    let mut buf = [0u8; 64];
    match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(n)) => Err(format!("the server sent {n} bytes to a silent client")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Err(_) => Err("still open".into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_are_closed_and_do_not_starve_the_endpoint_or_the_api() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or_else(|e| panic!("{e}"));
    let limit = LIMIT.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, limit, limit).unwrap_or_else(|e| panic!("{e}"));

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
    let api = running.api_addr("web").unwrap_or_else(|| panic!("no api"));
    let endpoint = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let started = tokio::time::Instant::now();
    let deadline = started + PATIENCE;

    let mut silent = Vec::new();
    for i in 0..SILENT {
        match TcpStream::connect(api).await {
            Ok(s) => silent.push(s),
            Err(e) => panic!(
                "silent connection {i} of {SILENT} could not be opened ({e}): the server took \
                 the process's descriptors (limit {limit}) and left none to anyone else"
            ),
        }
    }
    let mut silent_at_endpoint = Vec::new();
    for _ in 0..SILENT_AT_ENDPOINT {
        let s = TcpStream::connect(endpoint)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        silent_at_endpoint.push(s);
    }
    // Let the server accept what it will (it holds at least its share once the count settles),
    // so the checks below run with the API's listener as full as the hostile client made it.
    let settle = Instant::now();
    let mut last = open_descriptors();
    while settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = open_descriptors();
        if now == last && now > SILENT + SILENT_AT_ENDPOINT {
            break;
        }
        last = now;
    }

    eprintln!(
        "{} descriptors open of {limit} with {SILENT} silent connections",
        open_descriptors()
    );
    // The AWS endpoint answers at once: its own listener has descriptors left.
    let health = get(endpoint, "/_spillway/health", Duration::from_secs(10)).await;
    assert!(
        health.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "the AWS endpoint did not answer with {SILENT} silent connections open to the API \
         ({} descriptors open of {limit}): {health:?}",
        open_descriptors()
    );

    // A real request to the API is served (once silent connections ahead of it are closed),
    // and every silent connection is closed by the server, not left open forever.
    let request = async {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        get(api, "/ok", remaining).await
    };
    let mut closing = tokio::task::JoinSet::new();
    for s in silent.into_iter().chain(silent_at_endpoint) {
        closing.spawn(closed_by_server(s, deadline));
    }
    let (answer, closed) = tokio::join!(request, closing.join_all());
    assert!(
        answer.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")),
        "the API did not serve a real request behind {SILENT} silent connections: {answer:?}"
    );
    let still_open: Vec<(usize, &String)> = closed
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
        .collect();
    assert!(
        still_open.is_empty(),
        "{} of {} silent connections were not closed by the server within {PATIENCE:?} (the \
         last {SILENT_AT_ENDPOINT} are the AWS endpoint's); first: {:?}",
        still_open.len(),
        closed.len(),
        still_open.first()
    );

    // Once they are gone, a fresh request is served at once.
    let fresh = get(api, "/ok", Duration::from_secs(10)).await;
    assert!(
        fresh.as_ref().is_ok_and(|a| a.ends_with("fine")),
        "{fresh:?}"
    );
    running.shutdown().await;
}
