//! `spillway up --watch`: a Cargo-package function is rebuilt when its sources change, and new
//! invocations run the new build.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use spillway_functions::{InvokeRequest, Runtime};

#[tokio::test]
async fn a_changed_source_is_rebuilt_and_served() {
    let src = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = functions_dir().join("../..");
    let pkg = src.path().join("hello");
    std::fs::create_dir_all(pkg.join("src")).unwrap_or_else(|e| panic!("{e}"));
    for f in ["Cargo.toml", "src/main.rs"] {
        std::fs::copy(
            root.join("examples/quickstart/functions/hello").join(f),
            pkg.join(f),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // The repository's lock file keeps the copy on the versions the build cache holds.
    std::fs::copy(root.join("Cargo.lock"), pkg.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut s = spec("watched", Runtime::Provided, "unused", None);
    s.code = pkg.clone();
    let h = host(vec![s]).await;
    let before = h.invoke("watched", json!({"name": "x"})).await;
    assert_eq!(json(&before), json!({"hello": "x"}));

    h.host.watch();
    let main = pkg.join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap_or_default();
    let changed = text.replace(
        "hello: event.payload.name,",
        "hello: format!(\"again, {}\", event.payload.name),",
    );
    assert_ne!(text, changed, "the edit must change the source");
    std::fs::write(&main, changed).unwrap_or_else(|e| panic!("{e}"));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let o = h
            .host
            .invoke(
                "watched",
                InvokeRequest::new(json!({"name": "x"}).to_string()),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if json(&o) == json!({"hello": "again, x"}) {
            assert!(o.cold, "the new build runs in a new instance");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rebuild never arrived"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
