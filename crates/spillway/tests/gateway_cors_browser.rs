//! CORS as a browser enforces it: headless Chromium (Debian's, driven by playwright-core) loads
//! a page from one origin whose script PUTs JSON with a custom header to an HTTP API on another
//! origin, which makes the browser send a preflight first. The gateway answers the preflight
//! itself; an allowed origin's request goes through with its exposed header readable, and
//! another origin's is blocked by the browser.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::repo_root;
use spillway_testkit::{require_tool, up_in_process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `html` to every request on `listener`.
fn serve_page(listener: TcpListener, html: String) {
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
}

fn page(api: SocketAddr) -> String {
    format!(
        r#"<!doctype html><html><body><script>
fetch('http://{api}/data', {{
  method: 'PUT',
  headers: {{ 'content-type': 'application/json', 'x-custom': '1' }},
  body: '{{}}',
}})
  .then(async (r) => {{
    window.corsResult = {{ ok: r.ok, status: r.status, body: await r.text(), exposed: r.headers.get('x-exposed') }};
  }})
  .catch((e) => {{ window.corsResult = {{ error: String(e) }}; }});
</script></body></html>"#
    )
}

/// What the page at `url` saw, as the Node.js driver prints it.
async fn browse(url: String) -> serde_json::Value {
    let node = require_tool("node", "nodejs");
    require_tool("chromium", "chromium");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg("cors_browser.js")
            .arg(url)
            .current_dir(repo_root().join("tests/node"))
            .output()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser driver failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_preflights_and_the_gateway_allows_only_the_configured_origin() {
    let allowed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let other = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let allowed_addr = allowed.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let other_addr = other.local_addr().unwrap_or_else(|e| panic!("{e}"));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("spillway.toml"),
        format!(
            r#"
[stack]
endpoint = "127.0.0.1:0"

[apis.web]
listen = "127.0.0.1:0"
cors = {{ allow_origins = ["http://{allowed_addr}"], allow_methods = ["GET", "PUT"], allow_headers = ["content-type", "x-custom"], expose_headers = ["x-exposed"], max_age = "5m" }}
access_log = {{ format = "$context.httpMethod $context.status", destination = "access.log" }}

[[apis.web.routes]]
route = "PUT /data"
mock = {{ status = 200, headers = {{ x-exposed = "yes" }}, body = "stored" }}
"#
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let api = running.api_addr("web").unwrap_or_else(|| panic!("no api"));
    serve_page(allowed, page(api));
    serve_page(other, page(api));

    let seen = tokio::time::timeout(
        Duration::from_secs(90),
        browse(format!("http://{allowed_addr}/")),
    )
    .await
    .unwrap_or_else(|_| panic!("the browser took too long"));
    assert_eq!(
        seen,
        serde_json::json!({"ok": true, "status": 200, "body": "stored", "exposed": "yes"})
    );

    let seen = tokio::time::timeout(
        Duration::from_secs(90),
        browse(format!("http://{other_addr}/")),
    )
    .await
    .unwrap_or_else(|_| panic!("the browser took too long"));
    assert!(
        seen["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "another origin must be blocked by the browser: {seen}"
    );

    // Both preflights reached the gateway and were answered there; only the allowed origin's
    // PUT followed.
    let log =
        std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        log.lines().filter(|l| *l == "OPTIONS 204").count(),
        2,
        "{log}"
    );
    assert_eq!(log.lines().filter(|l| *l == "PUT 200").count(), 1, "{log}");

    running.shutdown().await;
}
