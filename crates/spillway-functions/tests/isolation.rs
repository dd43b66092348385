//! A hostile function against the sandbox: it tries to read spillway's state, the stack file,
//! another function's code and environment, to write to shared code, to signal spillway, to
//! take another instance's events, to fork without bound and to leave processes behind. Each
//! attempt must fail. These tests run as root in CI (the layers that need root are the point);
//! as another user they check what Landlock alone gives.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;
use spillway_functions::Runtime;

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The pid of the instance of `function` whose environment says so (the test runs as root, or
/// as the functions' user, so it may read it).
fn instance_pid(function: &str) -> Option<u32> {
    let wanted = format!("AWS_LAMBDA_FUNCTION_NAME={function}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let env = std::fs::read(e.path().join("environ")).ok()?;
        String::from_utf8_lossy(&env)
            .contains(&wanted)
            .then_some(pid)
    })
}

fn runtime_api_of(pid: u32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    String::from_utf8_lossy(&env)
        .split('\0')
        .find_map(|kv| kv.strip_prefix("AWS_LAMBDA_RUNTIME_API="))
        .map(str::to_owned)
}

/// A copy of `tests/functions/<name>` in `into`, so that a sandbox that fails cannot damage the
/// repository's files.
fn copy_function(name: &str, into: &Path) -> std::path::PathBuf {
    let to = into.join(name);
    std::fs::create_dir_all(&to).unwrap_or_else(|e| panic!("{e}"));
    for f in std::fs::read_dir(functions_dir().join(name)).unwrap_or_else(|e| panic!("{e}")) {
        let f = f.unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap_or_else(|e| panic!("{e}"));
    }
    to
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_function_reaches_nothing_of_spillway_or_of_other_functions() {
    // Left by a run without a private /tmp; the check below must see this run's doing.
    let _ = std::fs::remove_file("/tmp/hostile-was-here");
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap_or_else(|e| panic!("{e}"));
    let victim_code = copy_function("python-app", work.path());
    let name = format!("victim{}", std::process::id());
    let mut victim = spec(&name, Runtime::Python, "python-app", Some("app.handler"));
    victim.code = victim_code.clone();
    let hostile_code = copy_function("python-hostile", work.path());
    let mut hostile = spec(
        "hostile",
        Runtime::Python,
        "python-hostile",
        Some("app.handler"),
    );
    hostile.code = hostile_code.clone();
    let stack_dir = work.path().join("stack");
    let state = stack_dir.join(".spillway");
    std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(stack_dir.join("spillway.toml"), "[stack]\nname = \"x\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(state.join("secrets.json"), "{\"secret\": 1}").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(state.join("secretsmanager.key"), "key").unwrap_or_else(|e| panic!("{e}"));
    let state_for_host = state.clone();
    let h = host_with(vec![victim, hostile], move |c| c.state_dir = state_for_host).await;

    // The victim is warm, holding its credentials in its environment.
    assert_eq!(json(&h.invoke(&name, json!({})).await)["style"], "python");
    let victim_pid = instance_pid(&name).unwrap_or_else(|| panic!("no victim instance"));
    let bootstrap = state.join("runtimes/python/bootstrap.py");
    let bootstrap_before = std::fs::read(&bootstrap).unwrap_or_else(|e| panic!("{e}"));
    let code_before = std::fs::read(victim_code.join("app.py")).unwrap_or_else(|e| panic!("{e}"));

    let event = json!({
        "op": "attack",
        "read": {
            "secrets.json": state.join("secrets.json"),
            "secretsmanager.key": state.join("secretsmanager.key"),
            "the stack file": stack_dir.join("spillway.toml"),
            "another function's code": victim_code.join("app.py"),
            "its own log": state.join("logs/functions/hostile.log"),
        },
        "write": {
            "the shared bootstrap": bootstrap,
            "another function's code": victim_code.join("app.py"),
            "its own code": hostile_code.join("app.py"),
        },
        "signal": {"spillway": std::process::id(), "init": 1},
        "environ": {"another function": victim_pid, "spillway": std::process::id()},
    });
    let o = h.invoke("hostile", event).await;
    let got = json(&o);
    assert!(o.error.is_none(), "{got}");
    let mut allowed = Vec::new();
    for (k, v) in got.as_object().into_iter().flatten() {
        if v.as_str().is_some_and(|s| s.starts_with("ALLOWED")) && k != "tmp" {
            allowed.push(format!("{k}: {v}"));
        }
    }
    assert!(
        allowed.is_empty(),
        "the sandbox let through: {allowed:#?}\n{got:#}"
    );
    // A session of its own, and Lambda's 1,024 open files.
    assert_eq!(got["own session"], true, "{got:#}");
    assert_eq!(got["open files limit"], json!([1024, 1024]), "{got:#}");
    // Its own /tmp works.
    assert!(
        got["tmp"]
            .as_str()
            .is_some_and(|s| s.starts_with("ALLOWED")),
        "{got:#}"
    );
    assert_eq!(
        std::fs::read(state.join("runtimes/python/bootstrap.py")).ok(),
        Some(bootstrap_before)
    );
    assert_eq!(
        std::fs::read(victim_code.join("app.py")).ok(),
        Some(code_before)
    );
    if root() {
        // A user of its own, and other users' processes out of sight.
        let uid = got["uid"].as_u64().unwrap_or(0);
        assert!(uid >= 1_900_000_000, "{got:#}");
        let visible: Vec<u64> = got["visible pids"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_u64()).collect())
            .unwrap_or_default();
        assert!(!visible.contains(&u64::from(victim_pid)), "{visible:?}");
        assert!(
            !visible.contains(&u64::from(std::process::id())),
            "{visible:?}"
        );
        assert!(
            !Path::new("/tmp/hostile-was-here").exists(),
            "its /tmp is not private"
        );
    }
    // The victim still works.
    assert_eq!(json(&h.invoke(&name, json!({})).await)["style"], "python");
}

/// Code under /tmp (which each instance sees as a private, empty tmpfs with only the granted
/// paths bound back), named through `..` and through a symlink, as `code = "../api"` in a
/// stack file under /tmp names it: the instance must start in it and find its bootstrap.
/// Before the code path was resolved, the instance's `chdir` failed inside its namespace
/// (`fork/exec /usr/bin/node: No such file or directory`).
#[tokio::test(flavor = "multi_thread")]
async fn code_under_tmp_named_through_dotdot_or_a_symlink_starts() {
    let work = tempfile::tempdir_in("/tmp").unwrap_or_else(|e| panic!("{e}"));
    let real = copy_function("node-api", work.path());
    let stack = work.path().join("stack");
    std::fs::create_dir_all(&stack).unwrap_or_else(|e| panic!("{e}"));
    let link = work.path().join("linked");
    std::os::unix::fs::symlink(&real, &link).unwrap_or_else(|e| panic!("{e}"));
    let mut dotdot = spec("dotdot", Runtime::Nodejs, "node-api", Some("index.handler"));
    dotdot.code = stack.join("../node-api");
    let mut linked = spec("linked", Runtime::Nodejs, "node-api", Some("index.handler"));
    linked.code = link;
    // A module directory named the same way: the handler requires a package found only
    // through NODE_PATH.
    let modules = work.path().join("modules/node_modules/greeting");
    std::fs::create_dir_all(&modules).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        modules.join("index.js"),
        "module.exports = 'from NODE_PATH';\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let user = work.path().join("user");
    std::fs::create_dir_all(&user).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        user.join("index.js"),
        "exports.handler = async () => ({ greeting: require('greeting') });\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut modules_dotdot = spec(
        "modules",
        Runtime::Nodejs,
        "node-api",
        Some("index.handler"),
    );
    modules_dotdot.code = user;
    modules_dotdot.environment.push((
        "NODE_PATH".into(),
        stack.join("../modules/node_modules").display().to_string(),
    ));
    let h = host(vec![dotdot, linked, modules_dotdot]).await;
    assert_eq!(
        json(&h.invoke("modules", json!({})).await)["greeting"],
        "from NODE_PATH",
        "{}",
        h.log("modules")
    );
    for name in ["dotdot", "linked"] {
        let o = h.invoke(name, json!({"rawPath": "/x"})).await;
        assert!(
            o.error.is_none(),
            "{name}: {} {}",
            String::from_utf8_lossy(&o.payload),
            h.log(name)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_its_own_instance_may_use_a_runtime_api() {
    let name = format!("warm{}", std::process::id());
    let h = host(vec![spec(
        &name,
        Runtime::Python,
        "python-app",
        Some("app.handler"),
    )])
    .await;
    assert_eq!(json(&h.invoke(&name, json!({})).await)["style"], "python");
    let pid = instance_pid(&name).unwrap_or_else(|| panic!("no instance"));
    let api = runtime_api_of(pid).unwrap_or_else(|| panic!("no Runtime API in its environment"));

    // This test process is "any other process on the machine". It asks for the instance's next
    // event while the instance's runtime waits for one; the runtime takes the first event, and
    // its next request queues behind the probe's, so without a check the probe gets the second.
    let probe = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(&api)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s
            .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 1..=3 {
        let o = h.invoke(&name, json!({"n": n})).await;
        assert!(
            o.error.is_none(),
            "invocation {n}: {}",
            String::from_utf8_lossy(&o.payload)
        );
        assert_eq!(
            json(&o)["event"],
            json!({"n": n}),
            "the instance lost event {n}"
        );
    }
    let answer = probe.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("lambda-runtime-aws-request-id"),
        "an outside process got an event: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_are_limited_and_none_outlives_its_instance() {
    let mut s = spec(
        "forks",
        Runtime::Python,
        "python-hostile",
        Some("app.handler"),
    );
    s.memory_mb = 3008;
    s.timeout = Duration::from_secs(20);
    let h = host(vec![s]).await;

    // Lambda's limit: 1,024 processes and threads in one execution environment.
    let got = json(
        &h.invoke("forks", json!({"op": "fork", "count": 1100}))
            .await,
    );
    let started = got["started"].as_u64().unwrap_or(0);
    assert!(
        started < 1024 && started > 900,
        "started {started} children: {got}"
    );

    // A child in a session of its own dies with its instance: on timeout...
    let mut short = spec(
        "escapes",
        Runtime::Python,
        "python-hostile",
        Some("app.handler"),
    );
    short.timeout = Duration::from_secs(2);
    let h2 = host(vec![short]).await;
    let escaped = json(&h2.invoke("escapes", json!({"op": "escape"})).await)["pid"]
        .as_u64()
        .unwrap_or(0);
    assert!(escaped > 0 && alive(escaped));
    let o = h2
        .invoke("escapes", json!({"op": "hang", "seconds": 10}))
        .await;
    assert_eq!(o.error_type.as_deref(), Some("Sandbox.Timedout"));
    until(
        "the escaped child to die with its timed-out instance",
        Duration::from_secs(5),
        || !alive(escaped),
    )
    .await;

    // ...and at shutdown.
    let escaped = json(&h2.invoke("escapes", json!({"op": "escape"})).await)["pid"]
        .as_u64()
        .unwrap_or(0);
    assert!(escaped > 0 && alive(escaped));
    h2.host.shutdown().await;
    until(
        "the escaped child to die at shutdown",
        Duration::from_secs(5),
        || !alive(escaped),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn output_printed_before_the_answer_is_logged_before_end() {
    let h = host(vec![spec(
        "printer",
        Runtime::Python,
        "python-hostile",
        Some("app.handler"),
    )])
    .await;
    for round in 0..8 {
        let o = h
            .invoke("printer", json!({"op": "print", "lines": 200}))
            .await;
        let tail = &o.log_tail;
        // The tail is the last 4 KB: it must end with the last line, then END and REPORT.
        let last = tail
            .find("line 199 of 200")
            .unwrap_or_else(|| panic!("round {round}: the last line is not in the tail:\n{tail}"));
        let end = tail
            .find(&format!("END RequestId: {}", o.request_id))
            .unwrap_or_else(|| panic!("round {round}: no END:\n{tail}"));
        assert!(last < end, "round {round}: output after END:\n{tail}");
    }
    // In the log file too, every line of an invocation comes before its END.
    let log = h.log("printer");
    let mut seen = 0;
    for line in log.lines() {
        if line.contains("line ") && line.contains(" of 200") {
            seen += 1;
        }
        if line.contains("END RequestId: ") {
            assert_eq!(
                seen % 200,
                0,
                "an END came with {} lines of its invocation missing",
                200 - seen % 200
            );
        }
    }
    assert_eq!(seen, 1600);
}
