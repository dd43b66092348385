//! What the tests that run an example in a child process share.

use std::path::PathBuf;
use std::process::Command;

/// The path of example `name`, built first.
#[allow(clippy::expect_used)]
pub fn example(name: &str) -> PathBuf {
    // cargo test builds examples next to the test binaries: target/<profile>/examples/.
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    // Always asked for: `cargo test --test NAME` neither builds examples nor rebuilds a
    // stale one (a whole-crate run does; then this is a no-op).
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "spillway-queue", "--example", name])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the {name} example failed");
    profile.join("examples").join(name)
}
