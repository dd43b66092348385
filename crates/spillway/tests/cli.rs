//! The command line as users meet it: help, validate, schema, init, and the errors they get.

mod common;

use common::*;

#[test]
fn help_lists_every_command_and_each_has_its_own_help() {
    let root = repo_root();
    let out = run(&["--help"], &root);
    assert!(out.status.success());
    let text = stdout(&out);
    for cmd in ["up", "validate", "schema", "init"] {
        assert!(
            text.contains(&format!("  {cmd} ")),
            "{cmd} missing from:\n{text}"
        );
        let sub = run(&[cmd, "--help"], &root);
        assert!(sub.status.success(), "{cmd} --help failed");
        assert!(
            stdout(&sub).contains("Usage: spillway"),
            "{cmd} --help: {}",
            stdout(&sub)
        );
    }
}

#[test]
fn validate_accepts_the_quickstart() {
    let out = run(&["validate", "examples/quickstart"], &repo_root());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("valid (4 resources)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn validate_reports_file_line_column_and_exits_2() {
    let dir = stack(&[(
        "spillway.toml",
        "[stack]\nname = \"broken\"\n\n[queues.q]\n\n[functions.ingest]\nruntime = \"provided\"\ncode = \".\"\ntimeout = \"30\"\nevents = [{ queue = \"nope\" }]\n",
    )]);
    let out = run(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("spillway.toml:9:11: functions.ingest.timeout: expected a duration like \"30s\", found string \"30\""), "{err}");

    // Type errors stop typing; fix it and the reference problem shows with its own place.
    std::fs::write(
        dir.path().join("spillway.toml"),
        "[stack]\nname = \"broken\"\n\n[queues.q]\n\n[functions.ingest]\nruntime = \"provided\"\ncode = \".\"\ntimeout = \"30s\"\nevents = [{ queue = \"nope\" }]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["validate", "spillway.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("spillway.toml:10:21: functions.ingest.events[0].queue: no queue named \"nope\" (known queues: q)"), "{err}");
}

#[test]
fn malformed_toml_and_missing_files_exit_2_with_one_line() {
    let dir = stack(&[("spillway.toml", "[stack\nname = 1\n")]);
    let out = run(&["validate"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("spillway.toml:1:"), "{err}");

    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["validate"], empty.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("spillway.toml: No such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_checked_in_schema_is_up_to_date() {
    let out = run(&["schema"], &repo_root());
    assert!(out.status.success());
    let checked_in = std::fs::read_to_string(repo_root().join("schema/spillway.schema.json"))
        .unwrap_or_default();
    assert!(
        stdout(&out) == checked_in,
        "schema/spillway.schema.json is stale: run `cargo run -p spillway -- schema > schema/spillway.schema.json`"
    );
    let v: serde_json::Value = serde_json::from_str(&checked_in).unwrap_or_else(|e| panic!("{e}"));
    for kind in [
        "databases",
        "secrets",
        "proxies",
        "queues",
        "functions",
        "apis",
        "tables",
        "users",
        "roles",
    ] {
        assert!(
            v["properties"][kind].is_object(),
            "{kind} missing from the schema"
        );
    }
}

#[test]
fn init_writes_the_quickstart_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["init", "qs"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [
        "spillway.toml",
        "sql/schema.sql",
        "functions/hello/Cargo.toml",
        "functions/hello/src/main.rs",
    ] {
        let written = std::fs::read_to_string(dir.path().join("qs").join(f)).unwrap_or_default();
        let original = std::fs::read_to_string(repo_root().join("examples/quickstart").join(f))
            .unwrap_or_default();
        assert_eq!(written, original, "{f}");
    }
    let out = run(&["init", "qs"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already exists; use --force"),
        "{}",
        stderr(&out)
    );
    let out = run(&["validate", "qs"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn up_without_a_stack_offers_init_and_exits_2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["up"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no stack file here; `spillway init .` writes the quickstart stack"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join(".spillway").exists(),
        "up must not create state for a missing stack"
    );
}

#[test]
fn up_on_an_invalid_stack_exits_2_before_touching_anything() {
    let dir = stack(&[(
        "spillway.toml",
        "[databases.main]\nengine = \"postgres\"\ninit = [\"missing.sql\"]\n",
    )]);
    let out = run(&["up"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("spillway.toml:3:9: databases.main.init[0]: init file"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join(".spillway").exists());
}

#[test]
fn iam_simulate_names_the_deciding_statement() {
    let dir = stack(&[(
        "spillway.toml",
        r#"
[users.app]
policies = [
  { allow = ["secretsmanager:GetSecretValue", "sqs:*"], resources = ["*"] },
  { deny = ["sqs:DeleteQueue"], resources = ["*"] },
  { statement = [{ Sid = "OnlyOverTls", Effect = "Allow", Action = "dynamodb:GetItem", Resource = "*", Condition = { Bool = { "aws:SecureTransport" = "true" } } }] },
]

[roles.reader]
policies = [{ statement = [{ Sid = "AllButIam", Effect = "Allow", NotAction = "iam:*", Resource = "*" }] }]
"#,
    )]);
    let sim = |args: &[&str]| {
        let mut all = vec!["iam", "simulate", "--stack", "."];
        all.extend_from_slice(args);
        run(&all, dir.path())
    };
    let out = sim(&["--principal", "users/app", "--action", "sqs:SendMessage"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("allowed"));
    let out = sim(&["--principal", "users/app", "--action", "sqs:DeleteQueue"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("denied: explicitly"));
    let out = sim(&["--principal", "users/app", "--action", "dynamodb:GetItem"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no aws:SecureTransport: the condition fails"
    );
    let out = sim(&[
        "--principal",
        "users/app",
        "--action",
        "dynamodb:GetItem",
        "--context",
        "aws:SecureTransport=true",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(OnlyOverTls)"));
    let out = sim(&["--principal", "roles/reader", "--action", "iam:CreateUser"]);
    assert_eq!(out.status.code(), Some(1));
    let out = sim(&["--principal", "roles/reader", "--action", "s3:GetObject"]);
    assert_eq!(out.status.code(), Some(0));
    // A session policy narrows the role.
    let narrow = r#"{"Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}}"#;
    let out = sim(&[
        "--principal",
        "roles/reader",
        "--action",
        "s3:GetObject",
        "--session-policy",
        narrow,
    ]);
    assert_eq!(out.status.code(), Some(1));
    // Bad input.
    let out = sim(&["--principal", "users/nobody", "--action", "s3:GetObject"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sim(&[
        "--principal",
        "users/app",
        "--action",
        "s3:GetObject",
        "--session-policy",
        "{",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
