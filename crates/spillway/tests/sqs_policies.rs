//! A queue's `Policy` is enforced beside the caller's identity policies, as AWS does within one
//! account (boto3, JSON 1.0): a queue policy naming a user grants it what its identity policies
//! do not; a Deny in the queue policy beats an identity Allow; AddPermission and
//! RemovePermission edit the policy as AWS writes it, with its errors; a policy that is not one
//! is refused. AddPermission and RemovePermission also through aws-sdk v2 on the query protocol.

use std::process::Command;

use spillway_testkit::{aws_client_env, up_in_process};

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
policies = [{ allow = ["sqs:*"], resources = ["*"] }]

# Its identity policy allows GetQueueUrl only; the queue policy is what lets it send.
[users.reader]
access_key_id = "AKIASPILLWAYREADER01"
secret_access_key = "cmVhZGVyLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFi"
policies = [{ allow = ["sqs:GetQueueUrl"], resources = ["*"] }]

[queues.shared]
"#;

fn python(endpoint: &str, key: (&str, &str), body: &str) -> String {
    let script = format!(
        "import boto3, json, sys\n\
         from botocore.exceptions import ClientError\n\
         sqs = boto3.client('sqs', endpoint_url=sys.argv[1])\n\
         Q = 'arn:aws:sqs:us-east-1:123456789012:shared'\n\
         def code(f, **kw):\n\
         \x20   try:\n\
         \x20       f(**kw)\n\
         \x20       return 'ok'\n\
         \x20   except ClientError as e:\n\
         \x20       return e.response['Error']['Code']\n\
         url = sqs.get_queue_url(QueueName='shared')['QueueUrl']\n\
         {body}"
    );
    spillway_testkit::run_python(endpoint, key, &script)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_policy_grants_and_denies_beside_identity_policies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let send = "print(code(sqs.send_message, QueueUrl=url, MessageBody='m'), code(sqs.receive_message, QueueUrl=url))\n";
    assert_eq!(
        python(&endpoint, READER, send),
        "AccessDenied AccessDenied\n"
    );
    let out = python(
        &endpoint,
        ADMIN,
        r#"
grant = {'Version': '2012-10-17', 'Statement': [{'Sid': 'reader-sends', 'Effect': 'Allow',
    'Principal': {'AWS': 'arn:aws:iam::123456789012:user/reader'}, 'Action': 'sqs:SendMessage', 'Resource': Q}]}
print('bad', code(sqs.set_queue_attributes, QueueUrl=url, Attributes={'Policy': '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'}))
print('set', code(sqs.set_queue_attributes, QueueUrl=url, Attributes={'Policy': json.dumps(grant)}))
"#,
    );
    assert_eq!(out, "bad InvalidAttributeValue\nset ok\n");
    assert_eq!(python(&endpoint, READER, send), "ok AccessDenied\n");
    let out = python(
        &endpoint,
        ADMIN,
        r#"
deny = {'Statement': [{'Effect': 'Deny', 'Principal': '*', 'Action': 'sqs:SendMessage', 'Resource': Q,
    'Condition': {'Bool': {'aws:SecureTransport': 'false'}}}]}
sqs.set_queue_attributes(QueueUrl=url, Attributes={'Policy': json.dumps(deny)})
print('denied', code(sqs.send_message, QueueUrl=url, MessageBody='m'), code(sqs.receive_message, QueueUrl=url))
sqs.set_queue_attributes(QueueUrl=url, Attributes={'Policy': ''})
print('cleared', code(sqs.send_message, QueueUrl=url, MessageBody='m'))
sqs.add_permission(QueueUrl=url, Label='one', AWSAccountIds=['123456789012'], Actions=['SendMessage'])
sqs.add_permission(QueueUrl=url, Label='two', AWSAccountIds=['123456789012', '210987654321'], Actions=['ReceiveMessage', 'DeleteMessage'])
p = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['Policy'])['Attributes']['Policy'])
print('id', p['Id'] == Q + '/SQSDefaultPolicy')
for s in p['Statement']:
    print('stmt', s['Sid'], s['Effect'], s['Principal']['AWS'], s['Action'], s['Resource'] == Q)
print('dup', code(sqs.add_permission, QueueUrl=url, Label='one', AWSAccountIds=['123456789012'], Actions=['SendMessage']))
print('action', code(sqs.add_permission, QueueUrl=url, Label='x', AWSAccountIds=['123456789012'], Actions=['CreateQueue']))
print('label', code(sqs.add_permission, QueueUrl=url, Label='a b', AWSAccountIds=['123456789012'], Actions=['SendMessage']))
print('remove', code(sqs.remove_permission, QueueUrl=url, Label='one'), code(sqs.remove_permission, QueueUrl=url, Label='one'))
sqs.remove_permission(QueueUrl=url, Label='two')
print('gone', 'Policy' in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes'])
"#,
    );
    assert_eq!(
        out,
        "denied AccessDenied ok\n\
         cleared ok\n\
         id True\n\
         stmt one Allow arn:aws:iam::123456789012:root SQS:SendMessage True\n\
         stmt two Allow ['arn:aws:iam::123456789012:root', 'arn:aws:iam::210987654321:root'] ['SQS:ReceiveMessage', 'SQS:DeleteMessage'] True\n\
         dup InvalidParameterValue\n\
         action InvalidParameterValue\n\
         label InvalidParameterValue\n\
         remove ok InvalidParameterValue\n\
         gone False\n"
    );
    // The same two actions over the query protocol.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node = aws_client_env(
        Command::new("node")
            .arg(root.join("tests/node/sqs_query_permissions.js"))
            .args([endpoint.as_str(), "shared"])
            .env("NODE_PATH", root.join("tests/node/node_modules"))
            .env("AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE", "1"),
        ADMIN.0,
        ADMIN.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("node: {e}"));
    assert!(
        node.status.success(),
        "{}",
        String::from_utf8_lossy(&node.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&node.stdout),
        "{\"sids\":[\"q1\"],\"actions\":[\"SQS:SendMessage\",\"SQS:GetQueueAttributes\"],\"policyLeft\":false}\n"
    );
    running.shutdown().await;
}
