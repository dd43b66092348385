//! The listener's own limits, with a short header timeout: a connection that sends nothing is
//! closed by the server, a connection beyond the cap waits to be accepted instead of being
//! refused, and a real client is served once the silent ones are gone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use spillway_gateway::limits::ListenerLimits;
use spillway_gateway::spec::*;
use spillway_gateway::{Gateway, Services};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
const CAP: usize = 3;
/// Bound on every wait; the server's own timeout is far shorter.
const PATIENCE: Duration = Duration::from_secs(20);

fn api() -> ApiSpec {
    ApiSpec {
        name: "web".into(),
        id: "abc1234567".into(),
        kind: ApiKind::Http,
        region: "us-east-1".into(),
        account: "123456789012".into(),
        routes: vec![RouteSpec {
            key: "GET /ok".into(),
            integration: Integration::Mock {
                status: 200,
                headers: BTreeMap::new(),
                body: "fine".into(),
            },
            payload: PayloadFormat::V2,
            auth: RouteAuth::None,
            timeout: Duration::from_secs(30),
            api_key_required: false,
        }],
        stages: BTreeMap::new(),
        cors: None,
        authorizers: BTreeMap::new(),
        access_log: None,
        binary_media_types: Vec::new(),
        domains: Vec::new(),
        api_keys: Vec::new(),
    }
}

async fn start() -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let gateway =
        Arc::new(Gateway::new(api(), Services::default()).unwrap_or_else(|e| panic!("{e}")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let limits = ListenerLimits {
        max_connections: CAP,
        header_timeout: HEADER_TIMEOUT,
    };
    tokio::spawn(spillway_gateway::server::serve(
        gateway, listener, None, limits, stopped,
    ));
    (addr, stop)
}

/// Whether the server closed `s` without sending anything, within `PATIENCE`.
async fn closed_silently(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(PATIENCE, s.read(&mut buf)).await,
        Ok(Ok(0))
    )
}

async fn get_ok(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_are_closed_and_those_beyond_the_cap_wait_their_turn() {
    let (addr, _stop) = start().await;
    // Twice the cap: the second half waits in the accept queue, then gets its own timeout.
    let mut silent = Vec::new();
    for _ in 0..2 * CAP {
        silent.push(
            TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    // Part of the HTTP/2 preface, then nothing: the version sniffing waits for the rest.
    let mut partial = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    partial
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    silent.push(partial);
    let real = tokio::spawn(get_ok(addr));

    let mut closing = tokio::task::JoinSet::new();
    for s in silent {
        closing.spawn(closed_silently(s));
    }
    let closed = closing.join_all().await;
    assert!(closed.iter().all(|c| *c), "left open: {closed:?}");
    let answer = real.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with("fine"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_under_way_outlives_the_first_request_clock() {
    let (addr, _stop) = start().await;
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The head at once, its body only after the first-request deadline has passed: the
    // connection delivered a request head, so the clock no longer applies (the body has its own).
    s.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(HEADER_TIMEOUT * 3).await;
    s.write_all(b"ok").await.unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}
