//! Functions behind the Lambda API, driven by clients nobody here wrote: the aws CLI, boto3 and
//! @aws-sdk/client-lambda invoke Rust, Node.js and Python functions on a stack started as
//! `spillway up` starts it; a function reads a secret with the credentials its role gets.

mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::repo_root;
use spillway_testkit::{aws_client_env, require_tool, up_in_process};

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYFNADMIN1",
    "ZnVuY3Rpb25zLWFkbWluLXNlY3JldC0wMTIzNDU2",
);
const VIEWER: (&str, &str) = (
    "AKIASPILLWAYFNVIEW01",
    "ZnVuY3Rpb25zLXZpZXdlci1zZWNyZXQtMDEyMzQ1",
);

fn stack_text() -> String {
    let f = repo_root().join("tests/functions");
    let node_modules = repo_root().join("tests/node/node_modules");
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "{admin_key}"
secret_access_key = "{admin_secret}"
policies = [{{ allow = ["lambda:*"], resources = ["*"] }}]

[users.viewer]
access_key_id = "{viewer_key}"
secret_access_key = "{viewer_secret}"
policies = [{{ allow = ["lambda:GetFunction", "lambda:ListFunctions"], resources = ["*"] }}]

[secrets.db]
username = "app"
password = "app-password"

[secrets.other]
username = "someone-else"
password = "other-password"

[functions.probe]
runtime = "provided"
code = "{f}/rust-probe"
timeout = "2s"
reserved_concurrency = 1
environment = {{ GREETING = "hello from ${{stack.account}}" }}

[functions.esm]
runtime = "nodejs"
code = "{f}/node-esm"
handler = "index.handler"

[functions.cjs]
runtime = "nodejs"
code = "{f}/node-cjs"
handler = "index.handler"

[functions.py]
runtime = "python"
code = "{f}/python-app"
handler = "app.handler"

[functions.reader]
runtime = "nodejs"
code = "{f}/node-secret"
handler = "index.handler"
timeout = "20s"
environment = {{ NODE_PATH = "{node_modules}" }}
policies = [{{ allow = ["secretsmanager:GetSecretValue"], resources = ["${{secrets.db.arn}}"] }}]
"#,
        admin_key = ADMIN.0,
        admin_secret = ADMIN.1,
        viewer_key = VIEWER.0,
        viewer_secret = VIEWER.1,
        f = f.display(),
        node_modules = node_modules.display(),
    )
}

struct Aws {
    endpoint: String,
    dir: std::path::PathBuf,
}

impl Aws {
    /// `aws lambda ...` as `key`; (exit success, stdout, stderr).
    fn cli(&self, key: (&str, &str), args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(require_tool("aws", "awscli"));
        aws_client_env(&mut cmd, key.0, key.1)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .current_dir(&self.dir)
            .arg("lambda")
            .args(args);
        let out = cmd.output().unwrap_or_else(|e| panic!("aws: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Invokes `function` with `payload`; returns the CLI's JSON answer and the payload file.
    fn invoke(&self, function: &str, payload: &str, extra: &[&str]) -> (serde_json::Value, String) {
        let out = self.dir.join(format!("{function}.out"));
        let out_s = out.display().to_string();
        let mut args = vec!["invoke", "--function-name", function, "--payload", payload];
        args.extend_from_slice(extra);
        args.push(&out_s);
        let (ok, stdout, stderr) = self.cli(ADMIN, &args);
        assert!(ok, "aws lambda invoke {function}: {stderr}");
        let meta = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        (meta, std::fs::read_to_string(&out).unwrap_or_default())
    }
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_invokes_every_runtime_and_sees_lambdas_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), stack_text())
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let aws = Aws {
        endpoint: format!("http://{addr}"),
        dir: dir.path().to_path_buf(),
    };

    // Each runtime answers.
    let (meta, out) = aws.invoke("probe", r#"{"op":"echo","name":"x"}"#, &[]);
    assert_eq!(meta["StatusCode"], 200);
    assert_eq!(meta["ExecutedVersion"], "$LATEST");
    assert!(meta.get("FunctionError").is_none());
    assert_eq!(json(&out), serde_json::json!({"op": "echo", "name": "x"}));
    let (_, out) = aws.invoke("probe", r#"{"op":"env"}"#, &[]);
    let env = json(&out);
    assert_eq!(env["GREETING"], "hello from 123456789012");
    assert_eq!(env["AWS_ENDPOINT_URL"], aws.endpoint.as_str());
    assert!(
        env["AWS_ACCESS_KEY_ID"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA"))
    );
    let (_, out) = aws.invoke("esm", r#"{"name":"esm"}"#, &[]);
    assert_eq!(json(&out)["style"], "esm-async");
    let (_, out) = aws.invoke("cjs", r#"{"name":"cjs"}"#, &[]);
    assert_eq!(json(&out)["style"], "cjs-callback");
    let (_, out) = aws.invoke("py", r#"{"name":"py"}"#, &[]);
    assert_eq!(json(&out)["style"], "python", "{out}");

    // A function error: 200, FunctionError, the error document as the payload.
    let (meta, out) = aws.invoke("py", r#"{"fail":"action"}"#, &[]);
    assert_eq!(meta["StatusCode"], 200);
    assert_eq!(meta["FunctionError"], "Unhandled");
    assert_eq!(json(&out)["errorType"], "KeyError");

    // LogType=Tail: the invocation's log, base64.
    let (meta, _) = aws.invoke(
        "probe",
        r#"{"op":"print","text":"tail me"}"#,
        &["--log-type", "Tail"],
    );
    let log = base64::engine::general_purpose::STANDARD
        .decode(meta["LogResult"].as_str().unwrap_or(""))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert!(
        log.starts_with("START RequestId: ") && log.contains("tail me\n"),
        "{log}"
    );
    assert!(
        log.contains("REPORT RequestId: ") && log.contains("\tBilled Duration: "),
        "{log}"
    );

    // A timeout.
    let (meta, out) = aws.invoke("probe", r#"{"op":"sleep","ms":5000}"#, &[]);
    assert_eq!(meta["FunctionError"], "Unhandled");
    assert_eq!(json(&out)["errorType"], "Sandbox.Timedout");
    assert!(
        json(&out)["errorMessage"]
            .as_str()
            .is_some_and(|m| m.ends_with("Task timed out after 2.00 seconds"))
    );

    // Throttling: probe reserves one instance; a second concurrent call gets 429. The first
    // call sleeps 1.8 s (probe's timeout is 2 s); on a loaded machine the second CLI can take
    // longer than that to start, find the instance free and be served, so the step is tried
    // up to three times, and the answer must be a throttle whenever the first was still busy.
    let probe = running
        .functions()
        .and_then(|h| h.get("probe"))
        .cloned()
        .unwrap_or_else(|| panic!("no probe"));
    let mut throttled = false;
    for _ in 0..3 {
        let mut busy = Command::new(require_tool("aws", "awscli"));
        aws_client_env(&mut busy, ADMIN.0, ADMIN.1)
            .env("AWS_ENDPOINT_URL", &aws.endpoint)
            .args([
                "lambda",
                "invoke",
                "--function-name",
                "probe",
                "--payload",
                r#"{"op":"sleep","ms":1800}"#,
            ])
            .arg(dir.path().join("busy.out"));
        let mut busy = busy.spawn().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            spillway_testkit::eventually_async(Duration::from_secs(30), || {
                let p = probe.clone();
                async move { p.concurrent_executions() == 1 }
            })
            .await
        );
        let (ok, _, stderr) = aws.cli(
            ADMIN,
            &[
                "invoke",
                "--function-name",
                "probe",
                "--payload",
                "{}",
                "t.out",
            ],
        );
        let first_still_running = matches!(busy.try_wait(), Ok(None));
        assert!(busy.wait().map(|s| s.success()).unwrap_or(false));
        if !ok {
            assert!(stderr.contains("TooManyRequestsException"), "{stderr}");
            throttled = true;
            break;
        }
        assert!(
            !first_still_running,
            "a second call was served while the only instance was busy"
        );
    }
    assert!(throttled, "no call was throttled in three tries");

    // Invocation errors with Lambda's codes.
    let (ok, _, stderr) = aws.cli(
        ADMIN,
        &[
            "invoke",
            "--function-name",
            "nope",
            "--payload",
            "{}",
            "n.out",
        ],
    );
    assert!(
        !ok && stderr.contains("(ResourceNotFoundException)")
            && stderr.contains(
                "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"
            ),
        "{stderr}"
    );
    let (ok, _, stderr) = aws.cli(
        ADMIN,
        &[
            "invoke",
            "--function-name",
            "probe",
            "--payload",
            "{not json",
            "n.out",
        ],
    );
    assert!(
        !ok && stderr.contains("(InvalidRequestContentException)")
            && stderr.contains("Could not parse request body into json"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("big.json"),
        format!("\"{}\"", "x".repeat(7 * 1024 * 1024)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, stderr) = aws.cli(
        ADMIN,
        &[
            "invoke",
            "--function-name",
            "probe",
            "--payload",
            "fileb://big.json",
            "n.out",
        ],
    );
    assert!(
        !ok && stderr.contains("(RequestTooLargeException)"),
        "{stderr}"
    );
    let (ok, _, stderr) = aws.cli(
        VIEWER,
        &[
            "invoke",
            "--function-name",
            "probe",
            "--payload",
            "{}",
            "n.out",
        ],
    );
    assert!(
        !ok && stderr.contains("(AccessDeniedException)")
            && stderr.contains("lambda:InvokeFunction"),
        "{stderr}"
    );
    let (ok, _, stderr) = aws.cli(
        (VIEWER.0, "wrong-secret-wrong-secret-wrong-secret-00"),
        &["list-functions"],
    );
    assert!(
        !ok && stderr.contains("(InvalidSignatureException)"),
        "{stderr}"
    );

    // Event and DryRun.
    let (meta, _) = aws.invoke(
        "probe",
        r#"{"op":"print","text":"ran asynchronously"}"#,
        &["--invocation-type", "Event"],
    );
    assert_eq!(meta["StatusCode"], 202);
    let (meta, _) = aws.invoke("probe", "{}", &["--invocation-type", "DryRun"]);
    assert_eq!(meta["StatusCode"], 204);
    let log = probe.log_path().to_path_buf();
    assert!(spillway_testkit::eventually(
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("ran asynchronously")
        }
    ));

    // `spillway logs` prints the function's lines; --since leaves out older ones.
    let logs = common::run(
        &[
            "logs",
            "probe",
            "--stack",
            &dir.path().display().to_string(),
        ],
        dir.path(),
    );
    assert!(logs.status.success(), "{}", common::stderr(&logs));
    let text = common::stdout(&logs);
    assert!(
        text.contains("REPORT RequestId: ") && text.contains("ran asynchronously"),
        "{text}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    let logs = common::run(&["logs", "probe", "--since", "1s"], dir.path());
    assert!(
        logs.status.success() && common::stdout(&logs).is_empty(),
        "{}",
        common::stdout(&logs)
    );
    let logs = common::run(&["logs", "nope"], dir.path());
    assert_eq!(logs.status.code(), Some(2));
    assert!(
        common::stderr(&logs).contains(
            "the stack has no function \"nope\" (its functions: cjs, esm, probe, py, reader)"
        ),
        "{}",
        common::stderr(&logs)
    );

    // GetFunction and ListFunctions (the viewer may).
    let (ok, stdout, stderr) = aws.cli(
        VIEWER,
        &[
            "get-function",
            "--function-name",
            "arn:aws:lambda:us-east-1:123456789012:function:esm",
        ],
    );
    assert!(ok, "{stderr}");
    let f = json(&stdout);
    assert_eq!(f["Configuration"]["FunctionName"], "esm");
    assert_eq!(f["Configuration"]["Handler"], "index.handler");
    assert_eq!(f["Configuration"]["Timeout"], 3);
    let (ok, stdout, _) = aws.cli(VIEWER, &["list-functions", "--max-items", "2"]);
    assert!(ok);
    let page = json(&stdout);
    assert_eq!(page["Functions"].as_array().map(Vec::len), Some(2));
    assert!(page.get("NextToken").is_some(), "{page}");
    let (ok, stdout, _) = aws.cli(VIEWER, &["list-functions"]);
    assert!(ok);
    let names: Vec<String> = json(&stdout)["Functions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["FunctionName"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["cjs", "esm", "probe", "py", "reader"]);

    // An unsigned request: refused in Lambda's error shape.
    let out = Command::new(require_tool("curl", "curl"))
        .args(["-s", "-i", "-X", "POST", "-d", "{}"])
        .arg(format!(
            "{}/2015-03-31/functions/probe/invocations",
            aws.endpoint
        ))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.starts_with("http/1.1 403")
            && text.contains("x-amzn-errortype: missingauthenticationtokenexception"),
        "{text}"
    );

    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sdks_invoke_and_a_function_uses_its_roles_credentials() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), stack_text())
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );

    // boto3: RequestResponse with a client context, and a function error.
    let script = r#"
import base64, boto3, json, sys
l = boto3.client('lambda', endpoint_url=sys.argv[1])
r = l.invoke(FunctionName='py', Payload=json.dumps({'name': 'boto3'}),
             ClientContext=base64.b64encode(json.dumps({'custom': {'k': 'v'}}).encode()).decode())
print(json.dumps({'status': r['StatusCode'], 'payload': json.loads(r['Payload'].read()),
                  'request_id': r['ResponseMetadata']['RequestId']}))
r = l.invoke(FunctionName='esm', Payload=json.dumps({'fail': 'boto3'}))
print(json.dumps({'error': r.get('FunctionError'), 'payload': json.loads(r['Payload'].read())}))
try:
    l.invoke(FunctionName='esm:v7', Payload='{}')
except l.exceptions.ResourceNotFoundException as e:
    print(json.dumps({'not_found': e.response['Error']['Message']}))
"#;
    let mut cmd = Command::new("python3");
    let out = aws_client_env(&mut cmd, ADMIN.0, ADMIN.1)
        .args(["-c", script, &endpoint])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(json)
        .collect();
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["payload"]["style"], "python", "{}", lines[0]);
    // The response's request id is the invocation's (the one its context and log lines carry).
    assert_eq!(
        lines[0]["request_id"], lines[0]["payload"]["request_id"],
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[0]["payload"]["client_context"],
        serde_json::json!({"custom": {"k": "v"}})
    );
    assert_eq!(lines[1]["error"], "Unhandled");
    assert_eq!(lines[1]["payload"]["errorType"], "TypeError");
    assert_eq!(
        lines[2]["not_found"],
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:esm:v7"
    );

    // @aws-sdk/client-lambda calls the function that reads a secret with its role's session.
    let node = format!(
        r#"
const {{ LambdaClient, InvokeCommand }} = require('@aws-sdk/client-lambda');
const l = new LambdaClient({{ endpoint: '{endpoint}' }});
(async () => {{
  for (const secret of ['db', 'other']) {{
    const r = await l.send(new InvokeCommand({{ FunctionName: 'reader', Payload: JSON.stringify({{ secret }}) }}));
    console.log(Buffer.from(r.Payload).toString());
  }}
}})().catch((e) => {{ console.error(e); process.exit(1); }});
"#
    );
    let mut cmd = Command::new(require_tool("node", "nodejs"));
    let out = aws_client_env(&mut cmd, ADMIN.0, ADMIN.1)
        .env("NODE_PATH", repo_root().join("tests/node/node_modules"))
        .args(["-e", &node])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(json)
        .collect();
    assert_eq!(lines[0], serde_json::json!({"username": "app"}));
    // The role allows only the db secret.
    assert_eq!(
        lines[1],
        serde_json::json!({"denied": "AccessDeniedException"})
    );

    // The host's metrics are on the stack's endpoint.
    let metrics = spillway_testkit::http_get(
        running.http_addr().unwrap_or_else(|| panic!("no endpoint")),
        "/_spillway/metrics",
    )
    .await;
    assert!(
        metrics.contains("spillway_function_invocations_total{function=\"reader\"} 2"),
        "{metrics}"
    );
    running.shutdown().await;
}
