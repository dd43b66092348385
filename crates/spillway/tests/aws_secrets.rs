//! Secrets Manager on the AWS endpoint, driven by boto3, the aws CLI and
//! @aws-sdk/client-secrets-manager: stack secrets exist on `up` in RDS's JSON shape, the API's
//! lifecycle (create, versions and stages, describe, list, delete with recovery, restore, force
//! delete) answers as AWS does, policies are enforced, values are encrypted at rest and survive
//! a restart.

use std::process::Command;

use spillway_testkit::{aws_client_env, require_tool, up_in_process};

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);
const READER: (&str, &str) = (
    "AKIASPILLWAYREADER01",
    "cmVhZGVyLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFi",
);

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "AKIASPILLWAYADMIN001"
secret_access_key = "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["secretsmanager:*"], resources = ["*"] }]

[users.reader]
access_key_id = "AKIASPILLWAYREADER01"
secret_access_key = "cmVhZGVyLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFi"
policies = [{ allow = ["secretsmanager:GetSecretValue"], resources = ["${secrets.db-app.arn}"] }]

[secrets.db-app]
description = "the app's database login"
username = "app"
password = "app-password-at-rest"
extra = { proxy = "main" }
"#;

fn env<'a>(cmd: &'a mut Command, key: (&str, &str)) -> &'a mut Command {
    aws_client_env(cmd, key.0, key.1)
}

/// Runs the boto3 script with `key`; returns stdout, panicking with stderr on failure.
fn boto3(endpoint: &str, key: (&str, &str), body: &str) -> String {
    let script = format!(
        "import boto3, json, sys\n\
         from botocore.exceptions import ClientError\n\
         sm = boto3.client('secretsmanager', endpoint_url=sys.argv[1])\n\
         def code(f, **kw):\n\
         \x20   try:\n\
         \x20       f(**kw)\n\
         \x20       return 'ok'\n\
         \x20   except ClientError as e:\n\
         \x20       return e.response['Error']['Code']\n\
         {body}"
    );
    let out = env(Command::new("python3").args(["-c", &script, endpoint]), key)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_lifecycle_with_real_clients() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );

    // The stack's secret, in RDS's JSON shape, readable by the reader (and by admin). What the
    // reader may not read is AccessDenied whether or not it exists, as in AWS.
    let out = boto3(
        &endpoint,
        READER,
        "v = json.loads(sm.get_secret_value(SecretId='db-app')['SecretString'])\n\
         print(v['username'], v['password'], v['proxy'])\n\
         print(code(sm.get_secret_value, SecretId='other'))\n\
         print(code(sm.list_secrets))\n\
         print(code(sm.create_secret, Name='mine', SecretString='x'))",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "app app-password-at-rest main",
            "AccessDeniedException",
            "AccessDeniedException",
            "AccessDeniedException"
        ],
        "{out}"
    );

    // The lifecycle, as admin.
    let out = boto3(
        &endpoint,
        ADMIN,
        "r = sm.create_secret(Name='api-key', SecretString='v1', Description='d')\n\
         print(r['ARN'].startswith('arn:aws:secretsmanager:us-east-1:123456789012:secret:api-key-'))\n\
         print(code(sm.create_secret, Name='api-key', SecretString='again'))\n\
         print(code(sm.create_secret, Name='bad name!', SecretString='x'))\n\
         sm.put_secret_value(SecretId='api-key', SecretString='v2')\n\
         cur = sm.get_secret_value(SecretId='api-key')\n\
         prev = sm.get_secret_value(SecretId='api-key', VersionStage='AWSPREVIOUS')\n\
         print(cur['SecretString'], cur['VersionStages'], prev['SecretString'], prev['VersionStages'])\n\
         print(sm.get_secret_value(SecretId=r['ARN'])['SecretString'], sm.get_secret_value(SecretId=r['ARN'][:-7])['SecretString'])\n\
         print(code(sm.get_secret_value, SecretId=r['ARN'][:-9]), code(sm.get_secret_value, SecretId='never-made'))\n\
         d = sm.describe_secret(SecretId='api-key')\n\
         print(d['Description'], len(d['VersionIdsToStages']))\n\
         print(sorted(s['Name'] for s in sm.list_secrets()['SecretList']))\n\
         print(code(sm.delete_secret, SecretId='api-key', RecoveryWindowInDays=3))\n\
         print('DeletionDate' in sm.delete_secret(SecretId='api-key', RecoveryWindowInDays=7))\n\
         print(code(sm.get_secret_value, SecretId='api-key'))\n\
         print(sorted(s['Name'] for s in sm.list_secrets()['SecretList']))\n\
         print(code(sm.create_secret, Name='api-key', SecretString='x'))\n\
         sm.restore_secret(SecretId='api-key')\n\
         print(sm.get_secret_value(SecretId='api-key')['SecretString'])\n\
         sm.create_secret(Name='temp', SecretString='t')\n\
         sm.delete_secret(SecretId='temp', ForceDeleteWithoutRecovery=True)\n\
         print(code(sm.get_secret_value, SecretId='temp'))\n\
         print(code(sm.put_secret_value, SecretId='api-key'))",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "True",
            "ResourceExistsException",
            "InvalidParameterException",
            "v2 ['AWSCURRENT'] v1 ['AWSPREVIOUS']",
            "v2 v2",
            "ResourceNotFoundException ResourceNotFoundException",
            "d 2",
            "['api-key', 'db-app']",
            "InvalidParameterException",
            "True",
            "InvalidRequestException",
            "['db-app']",
            "InvalidRequestException",
            "v2",
            "ResourceNotFoundException",
            "InvalidParameterException",
        ],
        "{out}"
    );

    // The aws CLI and the JavaScript SDK v3 read the same secret.
    let cli = env(
        Command::new(require_tool("aws", "awscli")).args([
            "--endpoint-url",
            &endpoint,
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "db-app",
            "--query",
            "SecretString",
            "--output",
            "text",
        ]),
        READER,
    )
    .output()
    .unwrap_or_else(|e| panic!("aws: {e}"));
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains("\"username\":\"app\""),
        "{}{}",
        String::from_utf8_lossy(&cli.stdout),
        String::from_utf8_lossy(&cli.stderr)
    );
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/secrets_get.js");
    let node = env(
        Command::new("node")
            .arg(script)
            .args([&endpoint, "api-key"]),
        ADMIN,
    )
    .output()
    .unwrap_or_else(|e| panic!("node: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&node.stdout),
        "v2",
        "{}",
        String::from_utf8_lossy(&node.stderr)
    );

    // Encrypted at rest, with the key in another file; kept across a restart.
    let state = dir.path().join(".spillway");
    let raw = std::fs::read(state.join("secretsmanager.json")).unwrap_or_default();
    assert!(!raw.is_empty());
    for plain in ["app-password-at-rest", "api-key", "v2"] {
        assert!(
            !String::from_utf8_lossy(&raw).contains(plain),
            "{plain} is readable in the data file"
        );
    }
    assert!(state.join("secretsmanager.key").exists());
    running.shutdown().await;
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let out = boto3(
        &endpoint,
        ADMIN,
        "print(sm.get_secret_value(SecretId='api-key')['SecretString'])",
    );
    assert_eq!(out.trim(), "v2");
    running.shutdown().await;
}

/// The calls beyond the lifecycle, as botocore's model documents them: a forced delete of a
/// missing secret succeeds, UpdateSecret, GetRandomPassword, and ListSecrets with paging,
/// filters and sorting (driven by boto3 and its paginator, and the aws CLI).
#[tokio::test(flavor = "multi_thread")]
async fn update_random_password_and_list_paging_as_documented() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let out = boto3(
        &endpoint,
        ADMIN,
        "import string\n\
         r = sm.delete_secret(SecretId='never-made', ForceDeleteWithoutRecovery=True)\n\
         print('delete-missing', r['Name'], 'DeletionDate' in r)\n\
         print('delete-missing-unforced', code(sm.delete_secret, SecretId='never-made'))\n\
         sm.create_secret(Name='gone', SecretString='g')\n\
         sm.delete_secret(SecretId='gone', ForceDeleteWithoutRecovery=True)\n\
         print('delete-again', code(sm.delete_secret, SecretId='gone', ForceDeleteWithoutRecovery=True))\n\
         c = sm.create_secret(Name='app/one', SecretString='v1', Description='First app')\n\
         u = sm.update_secret(SecretId='app/one', SecretString='v2', Description='Changed')\n\
         print('update', u['Name'], u['VersionId'] != c['VersionId'])\n\
         print('values', sm.get_secret_value(SecretId='app/one')['SecretString'], sm.get_secret_value(SecretId='app/one', VersionStage='AWSPREVIOUS')['SecretString'])\n\
         print('description', sm.describe_secret(SecretId='app/one')['Description'])\n\
         u2 = sm.update_secret(SecretId='app/one', Description='Only the description')\n\
         print('metadata-only', 'VersionId' in u2, sm.get_secret_value(SecretId='app/one')['SecretString'])\n\
         print('same-token', code(sm.update_secret, SecretId='app/one', SecretString='v3', ClientRequestToken=u['VersionId']))\n\
         print('update-missing', code(sm.update_secret, SecretId='nope', SecretString='x'))\n\
         p = sm.get_random_password()['RandomPassword']\n\
         print('random', len(p), all(any(ch in cls for ch in p) for cls in (string.ascii_lowercase, string.ascii_uppercase, string.digits, string.punctuation)))\n\
         p = sm.get_random_password(PasswordLength=64, ExcludePunctuation=True, ExcludeCharacters='abcXYZ')['RandomPassword']\n\
         print('random-alnum', len(p), p.isalnum(), not set('abcXYZ') & set(p))\n\
         p = sm.get_random_password(PasswordLength=40, ExcludeNumbers=True, ExcludeUppercase=True, ExcludePunctuation=True, IncludeSpace=True)['RandomPassword']\n\
         print('random-lower', len(p), set(p) <= set(string.ascii_lowercase + ' '))\n\
         print('random-errors', code(sm.get_random_password, PasswordLength=4097), code(sm.get_random_password, PasswordLength=3), code(sm.get_random_password, ExcludeLowercase=True, ExcludeUppercase=True, ExcludeNumbers=True, ExcludePunctuation=True))\n\
         p = sm.get_random_password(PasswordLength=3, RequireEachIncludedType=False)['RandomPassword']\n\
         print('random-short', len(p))\n\
         for i in range(5):\n\
         \x20   sm.create_secret(Name=f'page/{i}', SecretString='x', Description=f'Paged secret {i}')\n\
         names, tok, pages = [], None, 0\n\
         while True:\n\
         \x20   kw = {'MaxResults': 2, 'Filters': [{'Key': 'name', 'Values': ['page/']}]}\n\
         \x20   if tok:\n\
         \x20       kw['NextToken'] = tok\n\
         \x20   r = sm.list_secrets(**kw)\n\
         \x20   pages += 1\n\
         \x20   names += [s['Name'] for s in r['SecretList']]\n\
         \x20   tok = r.get('NextToken')\n\
         \x20   if not tok:\n\
         \x20       break\n\
         print('pages', pages, names)\n\
         print('paginator', sum(len(p['SecretList']) for p in sm.get_paginator('list_secrets').paginate(PaginationConfig={'PageSize': 2})))\n\
         print('bad-token', code(sm.list_secrets, NextToken='garbage'), code(sm.list_secrets, MaxResults=101))\n\
         f = lambda *fs, **kw: [s['Name'] for s in sm.list_secrets(Filters=list(fs), **kw)['SecretList']]\n\
         print('name-case', f({'Key': 'name', 'Values': ['Page/']}))\n\
         print('description', sorted(f({'Key': 'description', 'Values': ['paged secret 1', 'ONLY THE']})))\n\
         print('negated', f({'Key': 'name', 'Values': ['page/', '!page/3']}))\n\
         print('and', f({'Key': 'name', 'Values': ['page/']}, {'Key': 'description', 'Values': ['!paged secret 2']}))\n\
         print('all', sorted(f({'Key': 'all', 'Values': ['APP']})))\n\
         print('tags', f({'Key': 'tag-key', 'Values': ['env']}), len(f({'Key': 'tag-key', 'Values': ['!env']})))\n\
         print('bad-filter', code(sm.list_secrets, Filters=[{'Key': 'name', 'Values': ['bad*value']}]))\n\
         print('desc', f({'Key': 'name', 'Values': ['page/']}, SortOrder='desc'))\n\
         print('by-name', f({'Key': 'name', 'Values': ['page/', 'app/']}, SortBy='name'))\n\
         e = sm.list_secrets(Filters=[{'Key': 'name', 'Values': ['app/one']}])['SecretList'][0]\n\
         print('entry', 'SecretVersionsToStages' in e, 'VersionIdsToStages' in e)",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "delete-missing never-made True",
            "delete-missing-unforced ResourceNotFoundException",
            "delete-again ok",
            "update app/one True",
            "values v2 v1",
            "description Changed",
            "metadata-only False v2",
            "same-token ResourceExistsException",
            "update-missing ResourceNotFoundException",
            "random 32 True",
            "random-alnum 64 True True",
            "random-lower 40 True",
            "random-errors InvalidParameterException InvalidParameterException InvalidParameterException",
            "random-short 3",
            "pages 3 ['page/0', 'page/1', 'page/2', 'page/3', 'page/4']",
            "paginator 7",
            "bad-token InvalidNextTokenException InvalidParameterException",
            "name-case []",
            "description ['app/one', 'page/1']",
            "negated ['page/0', 'page/1', 'page/2', 'page/4']",
            "and ['page/0', 'page/1', 'page/3', 'page/4']",
            "all ['app/one', 'db-app']",
            "tags [] 7",
            "bad-filter InvalidParameterException",
            "desc ['page/4', 'page/3', 'page/2', 'page/1', 'page/0']",
            "by-name ['app/one', 'page/0', 'page/1', 'page/2', 'page/3', 'page/4']",
            "entry True False",
        ],
        "{out}"
    );

    // The aws CLI pages on its own (--page-size) and still returns every secret.
    let cli = env(
        Command::new(require_tool("aws", "awscli")).args([
            "--endpoint-url",
            &endpoint,
            "secretsmanager",
            "list-secrets",
            "--page-size",
            "3",
            "--query",
            "SecretList[].Name",
            "--output",
            "json",
        ]),
        ADMIN,
    )
    .output()
    .unwrap_or_else(|e| panic!("aws: {e}"));
    let names: Vec<String> = serde_json::from_slice(&cli.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&cli.stdout),
            String::from_utf8_lossy(&cli.stderr)
        )
    });
    assert_eq!(names.len(), 7, "{names:?}");
    running.shutdown().await;
}
