//! Helpers shared by the binary's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spillway"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs spillway to completion.
pub fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run spillway: {e}"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temporary stack directory holding a copy of examples/NAME.
pub fn example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("spillway-stack-")
        .tempdir()
        .unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&repo_root().join("examples").join(name), dir.path());
    // A copied function package is a workspace of its own; the repository's lock file keeps
    // its dependencies at the versions the shared build cache already holds.
    if let Ok(functions) = std::fs::read_dir(dir.path().join("functions")) {
        for f in functions.flatten() {
            let manifest = f.path().join("Cargo.toml");
            if manifest.exists() {
                let _ = std::fs::copy(repo_root().join("Cargo.lock"), f.path().join("Cargo.lock"));
                // ...and the workspace's release profile keeps their build settings, so cargo
                // reuses what building the example in place compiled (the AWS SDK takes minutes).
                let mut text = std::fs::read_to_string(&manifest).unwrap_or_default();
                text.push_str("\n[profile.release]\ndebug = \"line-tables-only\"\n");
                let _ = std::fs::write(&manifest, text);
            }
        }
    }
    dir
}

/// A temporary stack directory with the given files.
pub fn stack(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("spillway-stack-")
        .tempdir()
        .unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .flatten()
    {
        let target = to.join(entry.file_name());
        if entry.file_name() == ".spillway" {
            continue;
        }
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("{e}"));
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Reads a generated secret's password from the stack's state.
pub fn generated_password(stack_dir: &Path, secret: &str) -> String {
    let text = std::fs::read_to_string(stack_dir.join(".spillway/secrets.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    v[format!("secrets/{secret}")]
        .as_str()
        .unwrap_or_else(|| panic!("no secret {secret}"))
        .to_owned()
}

pub fn read_trimmed(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}
