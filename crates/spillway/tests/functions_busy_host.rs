//! A function instance starts on a busy host: one that holds more descriptors than a function
//! may (Lambda's 1,024), as a host with a thousand client connections does. Until exec the
//! new process holds every one of the host's descriptors, so the sandbox must not open
//! anything after lowering the limit: report 004's load test met `Too many open files` here,
//! and every request of a thousand users failed with it.

mod common;
#[path = "common/http.rs"]
mod http_client;

use common::repo_root;
use http_client::curl;
use spillway_testkit::up_in_process;

#[tokio::test(flavor = "multi_thread")]
async fn functions_start_while_the_host_holds_more_descriptors_than_a_function_may() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let code = repo_root().join("tests/functions/node-api");
    std::fs::write(
        dir.path().join("spillway.toml"),
        format!(
            r#"
[stack]
endpoint = "127.0.0.1:0"

[functions.echo]
runtime = "nodejs"
code = "{code}"
handler = "index.handler"
timeout = "10s"

[apis.web]
listen = "127.0.0.1:0"

[[apis.web.routes]]
route = "GET /echo"
function = "echo"
"#,
            code = code.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.api_addr("web").unwrap_or_else(|| panic!("no api"));

    // The host is this process (up_in_process): hold 1,100 more descriptors in it.
    let held: Vec<std::fs::File> = (0..1100)
        .map(|i| {
            std::fs::File::open("/dev/null").unwrap_or_else(|e| {
                panic!("opening descriptor {i}: {e} (raise `ulimit -n` above 2,048 for this test)")
            })
        })
        .collect();

    // Concurrent requests: each needs a new instance, started while the descriptors are held.
    let calls: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { curl(&[&format!("http://{addr}/echo")]).await }))
        .collect();
    for call in calls {
        let answer = call.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            answer.status,
            200,
            "a function on a busy host: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    drop(held);
    running.shutdown().await;
}
