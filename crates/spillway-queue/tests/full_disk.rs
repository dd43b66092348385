//! A full disk: sends fail with an error (InternalFailure, what SQS answers for its own
//! failures), nothing acknowledged is lost, and once there is room again the queue works.
//!
//! The queue directory is a 4 MiB tmpfs in a mount namespace of the test's own (`unshare -m`,
//! held by a `sleep`; every step enters it with `nsenter`), so no real disk fills up and the
//! mount disappears with the holder.

// In a test, a failed expectation is the failure report.
#![allow(clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

mod common;
use common::example;

/// A mount namespace with a tmpfs on `dir`, alive while the child lives.
struct Namespace {
    holder: Child,
}

impl Namespace {
    /// `size` of tmpfs with 1 MiB of it taken by `dir/ballast`, to be freed later.
    fn new(dir: &Path, size: &str) -> Self {
        let script = format!(
            "mount -t tmpfs -o size={size} tmpfs '{d}' && head -c 1048576 /dev/zero > '{d}/ballast' \
             && echo ready && exec sleep 600",
            d = dir.display()
        );
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs");
        let mut ready = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut ready)
            .expect("read the holder");
        assert_eq!(
            ready, "ready\n",
            "no tmpfs in a mount namespace here (the test needs root or user namespaces)"
        );
        Namespace { holder }
    }

    /// `program args` inside the namespace.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--mount", "--target", &self.holder.id().to_string(), "--"])
            .arg(program);
        cmd
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn a_full_disk_fails_sends_and_loses_nothing_acknowledged() {
    let binary = example("full_disk");
    let dir = tempfile::tempdir().expect("tempdir");
    let ns = Namespace::new(dir.path(), "4m");
    let queues = dir.path().join("queues");
    let mut fill = ns
        .command(&binary)
        .arg("fill")
        .arg(&queues)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start full_disk fill");
    let mut stdin = fill.stdin.take().expect("stdin");
    let mut lines = BufReader::new(fill.stdout.take().expect("stdout")).lines();
    let mut sent = HashSet::new();
    let mut attempted = 0;
    let mut errors = Vec::new();
    while errors.len() < 3 {
        let Some(Ok(line)) = lines.next() else {
            panic!("full_disk fill ended early after {} sends", sent.len())
        };
        if let Some(n) = line.strip_prefix("sent ") {
            sent.insert(n.to_owned());
        } else if let Some(code) = line.strip_prefix("error ") {
            errors.push(code.to_owned());
        }
        attempted += 1;
    }
    assert!(
        sent.len() > 10,
        "only {} sends before the disk filled",
        sent.len()
    );
    assert_eq!(errors, ["InternalFailure"; 3]);

    // Room again (the ballast goes), then one more send.
    let status = ns
        .command(Path::new("rm"))
        .arg(dir.path().join("ballast"))
        .status()
        .expect("nsenter rm");
    assert!(status.success());
    writeln!(stdin, "go").expect("tell the filler");
    let after = lines
        .next()
        .and_then(Result::ok)
        .expect("a line after the disk had room");
    let _ = fill.wait();

    let out = ns
        .command(&binary)
        .arg("drain")
        .arg(&queues)
        .output()
        .expect("run full_disk drain");
    assert!(
        out.status.success(),
        "drain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let got: HashSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("got "))
        .map(str::to_owned)
        .collect();
    assert!(text.ends_with("drained\n"), "{text}");
    let missing: Vec<_> = sent.difference(&got).collect();
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    // Nothing invented: a message there but never acknowledged can only be one whose send was
    // answered with an error (a client would have retried it: at least once).
    let attempted: HashSet<String> = (0..attempted).map(|n| n.to_string()).collect();
    let invented: Vec<_> = got
        .iter()
        .filter(|n| !sent.contains(*n) && !attempted.contains(*n) && *n != "1000000")
        .collect();
    assert!(invented.is_empty(), "never sent: {invented:?}");
    // With room again the store took writes without a restart.
    assert_eq!(after, "after sent 1000000");
    assert!(
        got.contains("1000000"),
        "the send after the disk had room is not there"
    );
}
