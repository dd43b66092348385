//! A REST API (API Gateway v1) with a stage, and the gateway's authorization: AWS_IAM with
//! awscurl's SigV4 signatures, a JWT authorizer with a key made here, and function authorizers
//! answering with simple responses and with IAM policies. Events checked field by field.

mod common;
#[path = "common/http.rs"]
mod http_client;

use std::net::SocketAddr;
use std::process::Command;

use base64::Engine as _;
use common::repo_root;
use http_client::{awscurl, curl};
use serde_json::json;
use spillway_testkit::{require_tool, up_in_process};

const CALLER: (&str, &str) = (
    "AKIASPILLWAYGWCALLER",
    "Z2F0ZXdheS1jYWxsZXItc2VjcmV0LTAxMjM0NTY3",
);
const NOBODY: (&str, &str) = (
    "AKIASPILLWAYGWNOBODY",
    "Z2F0ZXdheS1ub2JvZHktc2VjcmV0LTAxMjM0NTY3",
);

/// The stack, with the JWT authorizer's keys from `jwks` (a file or a URL).
fn stack_text(jwks: &str) -> String {
    let f = repo_root().join("tests/functions");
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.caller]
access_key_id = "{caller_key}"
secret_access_key = "{caller_secret}"
policies = [{{ allow = ["execute-api:Invoke"], resources = ["${{apis.web.execution_arn}}/$default/GET/private"] }}]

[users.nobody]
access_key_id = "{nobody_key}"
secret_access_key = "{nobody_secret}"
policies = [{{ allow = ["lambda:GetFunction"], resources = ["*"] }}]

[functions.echo]
runtime = "nodejs"
code = "{f}/node-api"
handler = "index.handler"

[functions.hello]
runtime = "provided"
code = "{f}/rust-http"

[functions.gate]
runtime = "nodejs"
code = "{f}/node-authorizer"
handler = "index.handler"

[apis.shop]
protocol = "rest"
listen = "127.0.0.1:0"

[apis.shop.stages.prod]
variables = {{ table = "users", endpoint = "${{stack.endpoint}}" }}

[[apis.shop.routes]]
route = "GET /"
function = "echo"

[[apis.shop.routes]]
route = "GET /users"
function = "echo"

[[apis.shop.routes]]
route = "GET /users/{{name}}"
function = "hello"

[[apis.shop.routes]]
route = "GET /guarded"
function = "echo"
authorization = "custom"
authorizer = "gate"

[[apis.shop.routes]]
route = "GET /partner"
function = "echo"
api_key_required = true

[apis.shop.api_keys.partner]
value = "partner-key-0123456789abcdef"

[apis.shop.api_keys.retired]
value = "retired-key-0123456789abcdef"
enabled = false

[apis.shop.usage_plans.basic]
keys = ["partner", "retired"]
quota = {{ limit = 3, period = "day" }}

[apis.shop.authorizers.gate]
kind = "function"
function = "gate"
identity_sources = ["$request.header.Authorization"]

[apis.web]
listen = "127.0.0.1:0"

[[apis.web.routes]]
route = "GET /private"
function = "echo"
authorization = "iam"

[[apis.web.routes]]
route = "GET /jwt"
function = "echo"
authorization = "custom"
authorizer = "tokens"
scopes = ["read"]

[[apis.web.routes]]
route = "GET /gated"
function = "echo"
authorization = "custom"
authorizer = "gate"

[apis.web.authorizers.tokens]
kind = "jwt"
issuer = "https://issuer.example"
audience = ["spillway-tests"]
jwks = "{jwks}"

[apis.web.authorizers.gate]
kind = "function"
function = "gate"
simple_responses = true
identity_sources = ["$request.header.Authorization"]
result_ttl = "60s"
"#,
        f = f.display(),
        caller_key = CALLER.0,
        caller_secret = CALLER.1,
        nobody_key = NOBODY.0,
        nobody_secret = NOBODY.1,
        jwks = jwks,
    )
}

/// An RSA key made with openssl: its PEM (to sign with) and its JWKS (for the authorizer).
fn make_key(dir: &std::path::Path) -> (Vec<u8>, String) {
    let pem = dir.join("key.pem");
    let status = Command::new(require_tool("openssl", "openssl"))
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(status.success());
    let out = Command::new(require_tool("openssl", "openssl"))
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&pem)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.trim().trim_start_matches("Modulus=");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"}]});
    (
        std::fs::read(&pem).unwrap_or_else(|e| panic!("{e}")),
        jwks.to_string(),
    )
}

/// Serves `body` to every GET on a loopback port; returns the URL.
async fn serve_once_per_request(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/.well-known/jwks.json")
}

fn token(pem: &[u8], claims: serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap_or_else(|e| panic!("{e}"));
    jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("{e}"))
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rest_api_serves_its_stage_with_version_1_events_and_rest_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_, jwks) = make_key(dir.path());
    std::fs::write(dir.path().join("jwks.json"), jwks).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), stack_text("jwks.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.api_addr("shop").unwrap_or_else(|| panic!("no api"));

    let a = curl(&[
        "-H",
        "X-Dup: 1",
        "-H",
        "X-Dup: 2",
        &url(addr, "/prod/users?id=7&id=8"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let request_id = a
        .header("x-amzn-requestid")
        .unwrap_or_else(|| panic!("no x-amzn-RequestId"))
        .to_owned();
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    let e = a.json();
    assert!(e.get("version").is_none(), "REST events carry no version");
    assert_eq!(e["resource"], "/users");
    assert_eq!(e["path"], "/users");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["multiValueHeaders"]["X-Dup"], json!(["1", "2"]));
    // REST events carry header names in the case HTTP/1 clients write them.
    assert!(
        e["headers"]["User-Agent"]
            .as_str()
            .is_some_and(|u| u.starts_with("curl/"))
    );
    assert_eq!(e["headers"]["Host"], addr.to_string());
    assert_eq!(e["queryStringParameters"], json!({"id": "8"}));
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"id": ["7", "8"]})
    );
    assert_eq!(e["pathParameters"], serde_json::Value::Null);
    assert_eq!(e["stageVariables"]["table"], "users");
    assert!(
        e["stageVariables"]["endpoint"]
            .as_str()
            .is_some_and(|s| s.starts_with("http://127.0.0.1:"))
    );
    assert_eq!(e["body"], serde_json::Value::Null);
    assert_eq!(e["isBase64Encoded"], false);
    let ctx = &e["requestContext"];
    assert_eq!(ctx["stage"], "prod");
    assert_eq!(ctx["path"], "/prod/users");
    assert_eq!(ctx["resourcePath"], "/users");
    assert_eq!(ctx["httpMethod"], "GET");
    assert_eq!(ctx["requestId"], request_id.as_str());
    assert_eq!(ctx["accountId"], "123456789012");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["accessKey"], serde_json::Value::Null);
    assert!(ctx["requestTimeEpoch"].as_i64().is_some());

    // The stage root.
    let a = curl(&[&url(addr, "/prod")]).await;
    assert_eq!(a.json()["resource"], "/");
    // lambda_http reads a 1.0 event too.
    let a = curl(&[&url(addr, "/prod/users/42")]).await;
    assert_eq!(
        a.status,
        200,
        "{}",
        std::fs::read_to_string(dir.path().join(".spillway/logs/functions/hello.log"))
            .unwrap_or_default()
    );
    assert!(a.text().starts_with("hello 42 (GET "), "{}", a.text());

    // REST's answers: an unknown resource, an unknown stage, a function that fails.
    let a = curl(&[&url(addr, "/prod/nothing")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (403, r#"{"message":"Missing Authentication Token"}"#)
    );
    assert_eq!(
        a.header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
    let a = curl(&["-X", "DELETE", &url(addr, "/prod/users")]).await;
    assert_eq!(a.status, 403);
    let a = curl(&[&url(addr, "/dev/users")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    assert_eq!(a.header("x-amzn-errortype"), Some("ForbiddenException"));
    let a = curl(&[&url(addr, "/prod/users?mode=malformed")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (502, r#"{"message":"Internal server error"}"#)
    );

    // API keys: missing, unknown or disabled keys are refused; a usage plan's quota holds.
    for key in [
        None,
        Some("no-such-key-0123456789"),
        Some("retired-key-0123456789abcdef"),
    ] {
        let mut args = vec![];
        let header;
        if let Some(k) = key {
            header = format!("x-api-key: {k}");
            args.extend(["-H", header.as_str()]);
        }
        let u = url(addr, "/prod/partner");
        args.push(&u);
        let a = curl(&args).await;
        assert_eq!(
            (a.status, a.text().as_str()),
            (403, r#"{"message":"Forbidden"}"#),
            "{key:?}"
        );
    }
    let with_key = ["-H", "x-api-key: partner-key-0123456789abcdef"];
    let partner = url(addr, "/prod/partner");
    let a = curl(&[with_key[0], with_key[1], &partner]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let identity = &a.json()["requestContext"]["identity"];
    assert_eq!(identity["apiKey"], "partner-key-0123456789abcdef");
    assert_eq!(identity["apiKeyId"], "partner");
    for _ in 0..2 {
        assert_eq!(
            curl(&[with_key[0], with_key[1], &partner]).await.status,
            200
        );
    }
    let a = curl(&[with_key[0], with_key[1], &partner]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (429, r#"{"message":"Limit Exceeded"}"#)
    );

    // A function authorizer answering with an IAM policy; its context reaches the function.
    let a = curl(&[
        "-H",
        "Authorization: let-me-in",
        &url(addr, "/prod/guarded"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let auth = &a.json()["requestContext"]["authorizer"];
    assert_eq!(auth["principalId"], "user-1");
    assert_eq!(auth["user"], "user-1");
    let a = curl(&["-H", "Authorization: nope", &url(addr, "/prod/guarded")]).await;
    assert_eq!(a.status, 403, "{}", a.text());
    let a = curl(&[&url(addr, "/prod/guarded")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );

    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_jwt_and_function_authorizers_guard_http_api_routes() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (pem, jwks) = make_key(dir.path());
    // The identity provider's JWKS, served over HTTP as providers publish it.
    let jwks_url = serve_once_per_request(jwks).await;
    std::fs::write(dir.path().join("spillway.toml"), stack_text(&jwks_url))
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.api_addr("web").unwrap_or_else(|| panic!("no api"));

    // AWS_IAM: awscurl's signature and the caller's execute-api:Invoke permission.
    let (ok, body) = awscurl(CALLER, &[&url(addr, "/private?x=1")]).await;
    assert!(ok, "{body}");
    let e: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
    let iam = &e["requestContext"]["authorizer"]["iam"];
    assert_eq!(iam["accessKey"], CALLER.0);
    assert_eq!(iam["accountId"], "123456789012");
    assert_eq!(iam["userArn"], "arn:aws:iam::123456789012:user/caller");
    let (ok, body) = awscurl(NOBODY, &[&url(addr, "/private")]).await;
    assert!(!ok);
    assert!(
        body.contains("is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:"),
        "{body}"
    );
    let a = curl(&[&url(addr, "/private")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    let wrong_secret = (CALLER.0, "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0wMTIz");
    let (ok, body) = awscurl(wrong_secret, &[&url(addr, "/private")]).await;
    assert!(!ok && body.contains("signature"), "{body}");

    // JWT: a token signed with the JWKS's key, the right issuer, audience and scope.
    let now = spillway_identity::time::now();
    let good = token(
        &pem,
        json!({"iss": "https://issuer.example", "aud": "spillway-tests", "sub": "user-9",
               "exp": now + 600, "scope": "read write", "groups": ["a", "b"]}),
    );
    let a = curl(&[
        "-H",
        &format!("Authorization: Bearer {good}"),
        &url(addr, "/jwt"),
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let jwt = &a.json()["requestContext"]["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["sub"], "user-9");
    assert_eq!(jwt["claims"]["groups"], "[a b]");
    assert_eq!(jwt["scopes"], json!(["read", "write"]));
    let a = curl(&[&url(addr, "/jwt")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    let expired = token(
        &pem,
        json!({"iss": "https://issuer.example", "aud": "spillway-tests", "exp": now - 60, "scope": "read"}),
    );
    let a = curl(&[
        "-H",
        &format!("Authorization: Bearer {expired}"),
        &url(addr, "/jwt"),
    ])
    .await;
    assert_eq!(a.status, 401);
    assert!(
        a.header("www-authenticate")
            .is_some_and(|w| w.contains("invalid_token")),
        "{:?}",
        a.headers
    );
    let not_yet = token(
        &pem,
        json!({"iss": "https://issuer.example", "aud": "spillway-tests", "exp": now + 600, "nbf": now + 300, "scope": "read"}),
    );
    let a = curl(&[
        "-H",
        &format!("Authorization: Bearer {not_yet}"),
        &url(addr, "/jwt"),
    ])
    .await;
    assert_eq!(a.status, 401);
    let other_audience = token(
        &pem,
        json!({"iss": "https://issuer.example", "aud": "someone-else", "exp": now + 600, "scope": "read"}),
    );
    let a = curl(&[
        "-H",
        &format!("Authorization: Bearer {other_audience}"),
        &url(addr, "/jwt"),
    ])
    .await;
    assert_eq!(a.status, 401);
    let no_scope = token(
        &pem,
        json!({"iss": "https://issuer.example", "aud": "spillway-tests", "exp": now + 600, "scope": "write"}),
    );
    let a = curl(&[
        "-H",
        &format!("Authorization: Bearer {no_scope}"),
        &url(addr, "/jwt"),
    ])
    .await;
    assert_eq!(a.status, 403);
    let mut forged = good.clone();
    forged.pop();
    forged.push(if good.ends_with('A') { 'B' } else { 'A' });
    let a = curl(&[
        "-H",
        &format!("Authorization: Bearer {forged}"),
        &url(addr, "/jwt"),
    ])
    .await;
    assert_eq!(a.status, 401);

    // A function authorizer with simple responses, cached for its TTL.
    let a = curl(&["-H", "Authorization: let-me-in", &url(addr, "/gated")]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let first = a.json()["requestContext"]["authorizer"]["lambda"].clone();
    assert_eq!(first["user"], "user-1");
    let a = curl(&["-H", "Authorization: let-me-in", &url(addr, "/gated")]).await;
    assert_eq!(
        a.json()["requestContext"]["authorizer"]["lambda"]["calls"],
        first["calls"],
        "the second call is answered from the cache"
    );
    let a = curl(&["-H", "Authorization: nope", &url(addr, "/gated")]).await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    let a = curl(&[&url(addr, "/gated")]).await;
    assert_eq!(a.status, 401);

    running.shutdown().await;
}
