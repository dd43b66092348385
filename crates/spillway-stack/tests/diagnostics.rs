//! What `spillway validate` says about broken stack files: one line per problem, with
//! file:line:column, the field, and what was expected.

use std::path::Path;

use spillway_stack::{LoadError, load_str};

fn errors_with_env(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    match load_str(Path::new("spillway.toml"), text, &lookup) {
        Ok(_) => Vec::new(),
        Err(LoadError::Invalid(d)) => d.iter().map(ToString::to_string).collect(),
        Err(e) => vec![e.to_string()],
    }
}

fn errors(text: &str) -> Vec<String> {
    errors_with_env(text, &[])
}

fn assert_error(text: &str, expected: &str) {
    let errs = errors(text);
    assert!(
        errs.iter().any(|e| e == expected),
        "expected {expected:?} among {errs:#?}"
    );
}

#[test]
fn a_duration_that_is_not_one_names_line_column_field_and_expectation() {
    let text = "[queues.q]\n\n[functions.ingest]\nruntime = \"provided\"\ncode = \".\"\ntimeout = \"30\"\n";
    assert_error(
        text,
        "spillway.toml:6:11: functions.ingest.timeout: expected a duration like \"30s\", found string \"30\"",
    );
    let text = "[functions.ingest]\nruntime = \"provided\"\ncode = \".\"\ntimeout = 30\n";
    assert_error(
        text,
        "spillway.toml:4:11: functions.ingest.timeout: expected a duration like \"30s\", found integer 30",
    );
}

#[test]
fn unknown_fields_point_at_the_key() {
    let text = "[queues.q]\nvisibilty_timeout = \"10s\"\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "spillway.toml:2:1: queues.q.visibilty_timeout: unknown field; expected one of"
        ),
        "{}",
        errs[0]
    );
    assert!(errs[0].contains("visibility_timeout"), "{}", errs[0]);

    let text = "[stack]\nname = \"x\"\n\n[databses.main]\nengine = \"postgres\"\n";
    let errs = errors(text);
    assert!(
        errs[0].starts_with("spillway.toml:4:2: databses: unknown field"),
        "{errs:?}"
    );
}

#[test]
fn missing_required_fields_and_bad_enums() {
    assert_error(
        "[databases.main]\ninit = []\n",
        "spillway.toml:1:1: databases.main.engine: required field is missing",
    );
    assert_error(
        "[databases.main]\nengine = \"oracle\"\n",
        "spillway.toml:2:10: databases.main.engine: expected \"postgres\" or \"mysql\", found oracle",
    );
}

#[test]
fn toml_syntax_errors_have_a_position() {
    let errs = errors("[stack]\nname = \"unterminated\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spillway.toml:2:"), "{errs:?}");
    assert!(errs[0].contains("invalid TOML"), "{errs:?}");
}

#[test]
fn dangling_references_by_name_and_by_template() {
    let text = r#"
[databases.main]
engine = "postgres"

[proxies.main]
database = "mian"
auth = [{ secret = "app" }]

[functions.f]
runtime = "provided"
code = "."
environment = { HOST = "${proxies.nope.host}", PORT = "${proxies.main.prot}", R = "${stack.region}" }
"#;
    let errs = errors(text);
    let want = [
        "spillway.toml:6:12: proxies.main.database: no database named \"mian\" (known databases: main)",
        "spillway.toml:7:20: proxies.main.auth[0].secret: no secret named \"app\" (the stack declares no secrets)",
        "spillway.toml:12:24: functions.f.environment.HOST: ${proxies.nope.host}: no proxy named \"nope\"",
    ];
    for w in want {
        assert!(errs.iter().any(|e| e == w), "missing {w:?} in {errs:#?}");
    }
    assert!(errs.iter().any(|e| e.starts_with("spillway.toml:12:55: functions.f.environment.PORT: ${proxies.main.prot}: a proxy has no attribute \"prot\"")), "{errs:#?}");
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn references_are_refused_outside_template_fields() {
    let text = "[queues.a]\n[queues.b]\ndead_letter = { queue = \"${queues.a.name}\", max_receive_count = 3 }\n";
    let errs = errors(text);
    assert!(
        errs.iter().any(|e| e.contains(
            "queues.b.dead_letter.queue: references (${...}) are not allowed in this field"
        )),
        "{errs:#?}"
    );
}

#[test]
fn cycles_are_errors() {
    let text = r#"
[functions.a]
runtime = "provided"
code = "."
environment = { B = "${functions.b.arn}" }

[functions.b]
runtime = "provided"
code = "."
environment = { A = "${functions.a.arn}" }
"#;
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("reference cycle: functions.a -> functions.b -> functions.a"),
        "{errs:#?}"
    );
    assert!(
        errs[0].starts_with("spillway.toml:10:21: functions.b.environment.A"),
        "{errs:#?}"
    );

    let text = "[queues.a]\ndead_letter = { queue = \"b\", max_receive_count = 1 }\n[queues.b]\ndead_letter = { queue = \"a\", max_receive_count = 1 }\n";
    let errs = errors(text);
    assert!(
        errs.iter()
            .any(|e| e.contains("reference cycle: queues.a -> queues.b -> queues.a")),
        "{errs:#?}"
    );
}

#[test]
fn env_interpolation_fills_values_and_reports_missing_variables() {
    let text = "[databases.ext]\nengine = \"postgres\"\nurl = \"postgres://u@${env:DB_HOST}/db\"\n";
    assert!(errors_with_env(text, &[("DB_HOST", "db.internal:5432")]).is_empty());
    let errs = errors(text);
    assert_eq!(
        errs,
        vec![
            "spillway.toml:3:7: databases.ext.url: environment variable DB_HOST is not set (write ${env:DB_HOST:-default} for a fallback)"
        ]
    );
    // Env works in any string, also where references do not.
    let text = "[stack]\nregion = \"${env:REGION:-eu-west-1}\"\n";
    assert!(errors(text).is_empty());
}

#[test]
fn aws_limits_are_enforced() {
    let text = r#"
[queues.q]
visibility_timeout = "13h"
delay = "16m"
[queues."bad name"]
[functions.f]
runtime = "nodejs"
code = "."
memory = 64
timeout = "16m"
environment = { AWS_REGION = "x" }
"#;
    let errs = errors(text);
    for w in [
        "spillway.toml:3:22: queues.q.visibility_timeout: expected a duration from 0s to 12h, found 13h",
        "spillway.toml:4:9: queues.q.delay: expected a duration from 0s to 15m, found 16m",
        "spillway.toml:9:10: functions.f.memory: expected a value from 128 to 10240, found 64",
        "spillway.toml:10:11: functions.f.timeout: expected a duration from 1s to 15m, found 16m",
        "spillway.toml:11:17: functions.f.environment.AWS_REGION: this variable is reserved by the Lambda runtime",
    ] {
        assert!(errs.iter().any(|e| e == w), "missing {w:?} in {errs:#?}");
    }
    assert!(
        errs.iter()
            .any(|e| e.contains("functions.f: nodejs and python functions need a handler")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("queues.\"bad name\": a queue name may contain")),
        "{errs:#?}"
    );
}

#[test]
fn routes_integrations_and_listeners() {
    let text = r#"
[stack]
endpoint = "127.0.0.1:3000"

[functions.f]
runtime = "provided"
code = "."

[apis.a]
[[apis.a.routes]]
route = "GET /users/{id}"
function = "f"
[[apis.a.routes]]
route = "GET /users/{other}"
function = "f"
[[apis.a.routes]]
route = "FETCH /x"
[[apis.a.routes]]
route = "GET /{proxy+}/more"
mock = { status = 200 }
"#;
    let errs = errors(text);
    for w in [
        "spillway.toml:14:9: apis.a.routes[1].route: the same route as routes[0]",
        "spillway.toml:17:9: apis.a.routes[2].route: expected a method of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY, found \"FETCH\"",
        "spillway.toml:16:1: apis.a.routes[2]: a route needs exactly one integration: function, queue, http or mock",
        "spillway.toml:19:9: apis.a.routes[3].route: a greedy {param+} must be the last segment",
    ] {
        assert!(errs.iter().any(|e| e == w), "missing {w:?} in {errs:#?}");
    }
    assert!(
        errs.iter()
            .any(|e| e.contains("127.0.0.1:3000 is also used by stack.endpoint")),
        "{errs:#?}"
    );
}

#[test]
fn policies_are_checked_including_json_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("good.json"), r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sqs:*","Resource":"*"}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("bad.json"),
        "{\"Version\":\"2012-10-17\",\n \"Statement\":[{\"Effect\":\"Allow\",\"Acton\":\"x\"}]}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = r#"
[roles.r]
policies = [
  { file = "good.json" },
  { file = "bad.json" },
  { allow = ["sqs SendMessage"], resources = ["*"] },
  { allow = ["sqs:SendMessage"], condition = { StringEqualz = { "aws:x" = "y" } }, resources = ["*"] },
]
"#;
    let file = dir.path().join("spillway.toml");
    let errs: Vec<String> = match load_str(&file, text, &|_| None) {
        Err(LoadError::Invalid(d)) => d.iter().map(ToString::to_string).collect(),
        other => panic!("expected errors, got {other:?}"),
    };
    let bad = dir.path().join("bad.json");
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{}:2:", bad.display()))
                && e.contains("unknown field `Acton`")),
        "{errs:#?}"
    );
    assert!(errs.iter().any(|e| e.ends_with("roles.r.policies[2].allow[0]: expected an action like \"sqs:SendMessage\" or \"rds-db:*\", found \"sqs SendMessage\"")), "{errs:#?}");
    assert!(
        errs.iter().any(|e| e
            .contains("roles.r.policies[3].condition.StringEqualz: unknown condition operator")),
        "{errs:#?}"
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn a_complete_stack_for_report_001_validates_and_orders_dependencies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("functions/ingest")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("sql")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("sql/schema.sql"),
        "create table users(id int);",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = r#"
[stack]
name = "ingest"
region = "ap-northeast-1"

[databases.main]
engine = "mysql"
init = ["sql/schema.sql"]
users = ["db-app"]

[secrets.db-app]
username = "app"
password = { generate = true }
database = "main"

[proxies.main]
database = "main"
listen = "127.0.0.1:6033"
auth = [{ secret = "db-app", iam = "required" }]
idle_client_timeout = "15m"
max_connections_percent = 90
connection_borrow_timeout = "120s"

[queues.data-sqs-queue]
visibility_timeout = "30s"
dead_letter = { queue = "data-dlq", max_receive_count = 3 }

[queues.data-dlq]

[functions.ingest]
runtime = "provided"
code = "functions/ingest"
timeout = "30s"
memory = 256
reserved_concurrency = 5
environment = { PROXY_HOST = "${proxies.main.host}", PROXY_PORT = "${proxies.main.port}" }
policies = [{ allow = ["rds-db:connect"], resources = ["${proxies.main.dbuser_arn}/app"] }]
events = [{ queue = "data-sqs-queue", batch_size = 10, report_batch_item_failures = true }]

[apis.ingest]
protocol = "http"
listen = "127.0.0.1:3000"
[[apis.ingest.routes]]
route = "POST /submit"
queue = "data-sqs-queue"
parameters = { MessageBody = "$request.body" }
"#;
    let file = dir.path().join("spillway.toml");
    let loaded = load_str(&file, text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let order: Vec<String> = loaded.order.iter().map(ToString::to_string).collect();
    let pos = |s: &str| {
        order
            .iter()
            .position(|o| o == s)
            .unwrap_or_else(|| panic!("{s} not in {order:?}"))
    };
    assert!(pos("databases.main") < pos("secrets.db-app"));
    assert!(pos("secrets.db-app") < pos("proxies.main"));
    assert!(pos("proxies.main") < pos("functions.ingest"));
    assert!(pos("queues.data-dlq") < pos("queues.data-sqs-queue"));
    assert!(pos("queues.data-sqs-queue") < pos("functions.ingest"));
    assert!(pos("queues.data-sqs-queue") < pos("apis.ingest"));
    assert_eq!(loaded.name(), "ingest");
}

#[test]
fn a_roles_trusted_entry_must_say_user_or_role() {
    let base =
        "[stack]\naccount = \"123456789012\"\n\n[users.ops]\n\n[roles.ops]\n\n[roles.admin]\n";
    assert_error(
        &format!("{base}trusted = [\"users.ops\", \"ops\"]\n"),
        "spillway.toml:9:25: roles.admin.trusted[1]: \"ops\" does not say whether it is a user or a role: write \"users.ops\" or \"roles.ops\" (or an IAM ARN)",
    );
    assert_error(
        &format!("{base}trusted = [\"roles.nobody\"]\n"),
        "spillway.toml:9:12: roles.admin.trusted[0]: no role named \"nobody\"",
    );
    assert_error(
        &format!("{base}trusted = [\"arn:aws:iam::999999999999:user/ops\"]\n"),
        "spillway.toml:9:12: roles.admin.trusted[0]: \"arn:aws:iam::999999999999:user/ops\" is in account 999999999999; only this stack's account (123456789012) has principals",
    );
    let ok = format!(
        "{base}trusted = [\"users.ops\", \"roles.ops\", \"arn:aws:iam::123456789012:user/ops\", \"arn:aws:iam::123456789012:role/ops\"]\n"
    );
    assert_eq!(errors(&ok), Vec::<String>::new());
}

// Dev mode lets unsigned requests in as the account root: every listener of the stack must be
// on loopback, not only the endpoint, or an unsigned AssumeRole mints credentials that a proxy
// or an API on another address then accepts (issue 15, item 10).
#[test]
fn dev_mode_needs_every_listener_on_loopback() {
    let stack = |proxy: &str, api: &str| {
        format!(
            "[stack]\nendpoint = \"127.0.0.1:4566\"\n\n[stack.identity]\nenforce = false\n\n\
             [databases.main]\nengine = \"postgres\"\nusers = [\"app\"]\n\n\
             [secrets.app]\nusername = \"app\"\npassword = \"pw\"\n\n\
             [proxies.main]\ndatabase = \"main\"\nauth = [{{ secret = \"app\" }}]\n{proxy}\n\
             [proxies.main.endpoints.ro]\nlisten = \"127.0.0.1:6440\"\nrole = \"read-write\"\n\n\
             [apis.web]\n{api}\n[[apis.web.routes]]\nroute = \"GET /\"\nmock = {{ status = 200 }}\n"
        )
    };
    assert_eq!(errors(&stack("", "")), Vec::<String>::new());
    assert_eq!(
        errors(&stack(
            "listen = \"[::1]:6432\"",
            "listen = \"127.0.0.2:3000\""
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(&stack("listen = \"0.0.0.0:6432\"", "")),
        vec![
            "spillway.toml:5:11: stack.identity.enforce: identity enforcement may be turned off only while every listener is on a loopback address; proxies.main.listen is 0.0.0.0:6432"
                .to_owned()
        ]
    );
    let errs = errors(&stack("", "listen = \"192.0.2.1:8080\""));
    assert_eq!(
        errs,
        vec![
            "spillway.toml:5:11: stack.identity.enforce: identity enforcement may be turned off only while every listener is on a loopback address; apis.web.listen is 192.0.2.1:8080"
                .to_owned()
        ]
    );
    let endpoint = stack("", "").replace("127.0.0.1:4566", "0.0.0.0:4566");
    assert_eq!(
        errors(&endpoint),
        vec![
            "spillway.toml:5:11: stack.identity.enforce: identity enforcement may be turned off only while every listener is on a loopback address; stack.endpoint is 0.0.0.0:4566"
                .to_owned()
        ]
    );
}

#[test]
fn a_domain_names_both_files_or_asks_for_a_self_signed_certificate_for_a_host_name() {
    let api = |domains: &str| {
        format!(
            "[apis.a]\ndomains = [{domains}]\n\n[[apis.a.routes]]\nroute = \"GET /\"\nmock = {{ status = 200 }}\n"
        )
    };
    assert_eq!(
        errors(&api(
            r#"{ name = "events.example", tls = { self_signed = true } }"#
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(&api(r#"{ name = "events.example", tls = { key = "k.pem" } }"#)),
        vec![
            "spillway.toml:2:45: apis.a.domains[0].tls: tls needs both cert and key (PEM files), or self_signed = true"
                .to_owned()
        ]
    );
    let errs = errors(&api(
        r#"{ name = "e.example", tls = { cert = "c.pem", key = "k.pem", self_signed = true } }"#,
    ));
    assert!(
        errs.iter().any(|e| e.contains(
            "apis.a.domains[0].tls.self_signed: self_signed = true generates a certificate"
        )),
        "{errs:#?}"
    );
    let errs = errors(&api(r#"{ name = "../x", tls = { self_signed = true } }"#));
    assert!(
        errs.iter()
            .any(|e| e
                .contains("apis.a.domains[0].name: a self-signed certificate needs a host name")),
        "{errs:#?}"
    );
    let errs = errors(&api(
        r#"{ name = "e.example", tls = { cert = "missing.pem", key = "k.pem" } }"#,
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains("apis.a.domains[0].tls.cert: certificate")
                && e.contains("does not exist")),
        "{errs:#?}"
    );
}

#[test]
fn endpoint_tls_names_both_files_or_asks_for_a_generated_pair() {
    assert_eq!(
        errors("[stack]\nendpoint_tls = { self_signed = true }\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        errors("[stack]\nendpoint_tls = { cert = \"c.pem\" }\n"),
        vec![
            "spillway.toml:2:16: stack.endpoint_tls: endpoint_tls needs both cert and key (PEM files), or self_signed = true"
                .to_owned()
        ]
    );
    let errs =
        errors("[stack]\nendpoint_tls = { cert = \"missing.pem\", key = \"missing.key\" }\n");
    assert!(
        errs.iter()
            .any(|e| e.contains("stack.endpoint_tls.cert: certificate")
                && e.contains("does not exist")),
        "{errs:#?}"
    );
}

#[test]
fn a_metrics_token_is_long_enough_to_resist_guessing() {
    assert_eq!(
        errors("[stack]\nmetrics_token = \"short\"\n"),
        vec![
            "spillway.toml:2:17: stack.metrics_token: metrics_token must be at least 16 characters"
                .to_owned()
        ]
    );
    assert_eq!(
        errors("[stack]\nmetrics_token = \"${env:TOKEN}\"\n").len(),
        1,
        "an unset variable is reported"
    );
    assert_eq!(
        errors_with_env(
            "[stack]\nmetrics_token = \"${env:TOKEN}\"\n",
            &[("TOKEN", "0123456789abcdef0123")]
        ),
        Vec::<String>::new()
    );
}

#[test]
fn an_on_failure_queue_must_be_a_standard_one() {
    let text = "[queues.\"jobs.fifo\"]\nfifo = true\n\n[functions.f]\nruntime = \"provided\"\ncode = \".\"\non_failure = \"jobs.fifo\"\n";
    assert_error(
        text,
        "spillway.toml:7:14: functions.f.on_failure: an on-failure destination must be a standard queue, not a FIFO one",
    );
}

#[test]
fn the_queue_backend_is_embedded_or_a_nats_url_with_a_namespace_jetstream_accepts() {
    assert_eq!(
        errors(
            "[stack]\nqueue_backend = \"nats://127.0.0.1:4222\"\nqueue_namespace = \"team-a_1\"\n"
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        errors("[stack]\nqueue_backend = \"embedded\"\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        errors("[stack]\nqueue_backend = \"redis://127.0.0.1:6379\"\n"),
        vec![
            "spillway.toml:2:17: stack.queue_backend: expected \"embedded\" or a NATS URL like \"nats://127.0.0.1:4222\", found \"redis://127.0.0.1:6379\""
                .to_owned()
        ]
    );
    assert_eq!(
        errors("[stack]\nqueue_backend = \"nats://host\"\n").len(),
        1,
        "no port"
    );
    assert_eq!(
        errors("[stack]\nqueue_backend = \"nats://127.0.0.1:4222\"\nqueue_namespace = \"a.b\"\n"),
        vec![
            "spillway.toml:3:19: stack.queue_namespace: expected 1-32 characters of A-Z, a-z, 0-9, '_' and '-', found \"a.b\""
                .to_owned()
        ]
    );
    assert_eq!(
        errors("[stack]\nqueue_namespace = \"team\"\n"),
        vec![
            "spillway.toml:2:19: stack.queue_namespace: queue_namespace names the queues' place on a NATS server: it needs a nats:// queue_backend"
                .to_owned()
        ]
    );
}

#[test]
fn readers_belong_to_managed_databases_and_are_bounded() {
    assert_error(
        "[databases.main]\nengine = \"mysql\"\nurl = \"mysql://a:b@db:3306/main\"\nreaders = 2\n",
        "spillway.toml:4:11: databases.main.readers: readers applies to managed databases only; list an external server's replicas in `replicas`",
    );
    assert_error(
        "[databases.main]\nengine = \"postgres\"\nreaders = 16\n",
        "spillway.toml:3:11: databases.main.readers: expected a value from 0 to 15, found 16",
    );
    assert!(errors("[databases.main]\nengine = \"postgres\"\nreaders = 15\n").is_empty());
    // An external database gets one error for `readers`, not a range error besides.
    assert_eq!(
        errors("[databases.main]\nengine = \"mysql\"\nurl = \"mysql://a:b@db:3306/main\"\nreaders = 99\n").len(),
        1
    );
    // A read-only endpoint needs readers (or an external server's replicas).
    let proxy = "[secrets.app]\nusername = \"app\"\npassword = \"pw\"\n\n[proxies.p]\ndatabase = \"main\"\nauth = [{ secret = \"app\" }]\nendpoints.ro = { listen = \"127.0.0.1:0\", role = \"read-only\" }\n";
    let without = format!("[databases.main]\nengine = \"mysql\"\n\n{proxy}");
    let errs = errors(&without);
    assert!(
        errs.iter().any(|e| e.contains("proxies.p.endpoints.ro.role: a read-only endpoint needs databases.main.replicas (external) or databases.main.readers (managed)")),
        "{errs:#?}"
    );
    let with = format!("[databases.main]\nengine = \"mysql\"\nreaders = 1\n\n{proxy}");
    assert!(errors(&with).is_empty(), "{:#?}", errors(&with));
}

#[test]
fn a_proxys_tls_names_both_files_or_asks_for_a_generated_pair() {
    let proxy = |tls: &str| {
        format!(
            "[databases.db]\nengine = \"mysql\"\n[secrets.app]\nusername = \"app\"\npassword = \"pw\"\n\
             [proxies.main]\ndatabase = \"db\"\nauth = [{{ secret = \"app\" }}]\nrequire_tls = true\n{tls}\n"
        )
    };
    assert_eq!(
        errors(&proxy("tls = { self_signed = true }")),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(&proxy("tls = { key = \"k.pem\" }")),
        vec![
            "spillway.toml:10:7: proxies.main.tls: tls needs both cert and key (PEM files), or self_signed = true"
                .to_owned()
        ]
    );
    assert_eq!(
        errors(&proxy("")),
        vec![
            "spillway.toml:9:1: proxies.main.require_tls: require_tls needs a [proxies.NAME.tls] certificate and key, or self_signed = true"
                .to_owned()
        ]
    );
}

#[test]
fn proxy_workers_are_bounded() {
    let stack = |workers: &str| {
        format!(
            "[databases.main]\nengine = \"postgres\"\n\n[secrets.app]\nusername = \"app\"\n\n\
             [proxies.main]\ndatabase = \"main\"\nauth = [{{ secret = \"app\" }}]\nworkers = {workers}\n"
        )
    };
    assert_error(
        &stack("0"),
        "spillway.toml:10:11: proxies.main.workers: expected a value from 1 to 64, found 0",
    );
    assert_error(
        &stack("65"),
        "spillway.toml:10:11: proxies.main.workers: expected a value from 1 to 64, found 65",
    );
    assert!(errors(&stack("4")).is_empty(), "{:#?}", errors(&stack("4")));
}
