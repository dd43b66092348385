//! DynamoDB on the AWS endpoint, from outside: a real `spillway up` process killed with
//! SIGKILL right after boto3 was answered keeps every acknowledged write; policies are
//! evaluated per action, table and index; expired items go within the sweeper's rounds; and
//! Query/Scan answers match a model computed in Python over the same random items (numeric and
//! string sort keys, every key-condition operator, both directions, paging, filters).

mod common;

use std::time::Duration;

use common::binary;
use nix::sys::signal::Signal;
use spillway_testkit::{Spillway, free_port, run_python};

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);
const READER: (&str, &str) = (
    "AKIASPILLWAYREADER01",
    "cmVhZGVyLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFi",
);

fn stack(port: u16) -> String {
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:{port}"
account = "123456789012"

[users.admin]
access_key_id = "{}"
secret_access_key = "{}"
policies = [{{ allow = ["dynamodb:*"], resources = ["*"] }}]

# May read one table and query one of its indexes, nothing else.
[users.reader]
access_key_id = "{}"
secret_access_key = "{}"
policies = [{{ allow = ["dynamodb:GetItem", "dynamodb:Query"], resources = ["${{tables.Events.arn}}", "${{tables.Events.arn}}/index/byUser"] }}]

[tables.Events]
hash_key = {{ name = "date", type = "S" }}
range_key = {{ name = "seq", type = "N" }}
ttl_attribute = "expires"

[tables.Events.indexes.byUser]
hash_key = {{ name = "user", type = "S" }}
range_key = {{ name = "seq", type = "N" }}

[tables.Other]
hash_key = {{ name = "id", type = "S" }}
"#,
        ADMIN.0, ADMIN.1, READER.0, READER.1
    )
}

struct Node {
    dir: tempfile::TempDir,
    process: Spillway,
    endpoint: String,
    port: u16,
}

fn start_in(dir: tempfile::TempDir, port: u16) -> Node {
    std::fs::write(dir.path().join("spillway.toml"), stack(port)).unwrap_or_else(|e| panic!("{e}"));
    let mut process = Spillway::start(&binary(), &["up", "."], dir.path());
    process.wait_for("spillway is up", Duration::from_secs(120));
    Node {
        dir,
        process,
        endpoint: format!("http://127.0.0.1:{port}"),
        port,
    }
}

fn start() -> Node {
    start_in(
        tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        free_port(),
    )
}

fn boto3(node: &Node, key: (&str, &str), body: &str) -> String {
    let script = format!(
        "import boto3, json, sys, time, random\n\
         from decimal import Decimal\n\
         from botocore.exceptions import ClientError\n\
         from boto3.dynamodb.conditions import Key, Attr\n\
         ddb = boto3.client('dynamodb', endpoint_url=sys.argv[1])\n\
         res = boto3.resource('dynamodb', endpoint_url=sys.argv[1])\n\
         def code(f, **kw):\n\
         \x20   try:\n\
         \x20       f(**kw)\n\
         \x20       return 'ok'\n\
         \x20   except ClientError as e:\n\
         \x20       return e.response['Error']['Code']\n\
         {body}"
    );
    run_python(&node.endpoint, key, &script)
}

#[test]
fn acknowledged_writes_survive_kill_9_and_restarts() {
    let mut node = start();
    // 40 threads writing at once, so that commits are shared (group commit); the process is
    // killed the moment the last answer arrived, with no chance to flush anything.
    let acked = boto3(
        &node,
        ADMIN,
        r#"
import threading
done = []
lock = threading.Lock()
def writer(t):
    c = boto3.client('dynamodb', endpoint_url=sys.argv[1])
    for i in range(25):
        c.put_item(TableName='Events', Item={'date': {'S': 'd%d' % t}, 'seq': {'N': str(i)}, 'user': {'S': 'u%d' % (i % 3)}})
        with lock:
            done.append('d%d/%d' % (t, i))
ts = [threading.Thread(target=writer, args=(t,)) for t in range(40)]
[t.start() for t in ts]
[t.join() for t in ts]
print(len(done))
"#,
    );
    assert_eq!(acked.trim(), "1000", "{acked}");
    node.process.signal(Signal::SIGKILL);
    node.process.wait_exit(Duration::from_secs(10));
    let dir = node.dir;
    let node = start_in(dir, node.port);
    let out = boto3(
        &node,
        ADMIN,
        r#"
t = res.Table('Events')
items, start = [], None
while True:
    kw = {'ExclusiveStartKey': start} if start else {}
    r = t.scan(**kw)
    items += r['Items']
    start = r.get('LastEvaluatedKey')
    if not start: break
print(len(items))
print(ddb.describe_table(TableName='Events')['Table']['ItemCount'])
q = t.query(IndexName='byUser', KeyConditionExpression=Key('user').eq('u0'))
print(q['Count'])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["1000", "1000", "360"], "{out}");
}

#[test]
fn policies_are_evaluated_per_action_table_and_index() {
    let node = start();
    let out = boto3(
        &node,
        ADMIN,
        "ddb.put_item(TableName='Events', Item={'date': {'S': 'a'}, 'seq': {'N': '1'}, 'user': {'S': 'u'}})\nprint('ok')",
    );
    assert_eq!(out.trim(), "ok");
    let out = boto3(
        &node,
        READER,
        r#"
k = {'date': {'S': 'a'}, 'seq': {'N': '1'}}
print(code(ddb.get_item, TableName='Events', Key=k))
print(code(ddb.put_item, TableName='Events', Item=k))
print(code(ddb.get_item, TableName='Other', Key={'id': {'S': 'x'}}))
print(code(ddb.query, TableName='Events', IndexName='byUser', KeyConditionExpression='#u = :u', ExpressionAttributeNames={'#u': 'user'}, ExpressionAttributeValues={':u': {'S': 'u'}}))
print(code(ddb.scan, TableName='Events'))
print(code(ddb.batch_get_item, RequestItems={'Events': {'Keys': [k]}}))
print(code(ddb.transact_write_items, TransactItems=[{'Put': {'TableName': 'Events', 'Item': k}}]))
print(code(ddb.list_tables))
print(code(ddb.delete_table, TableName='Events'))
try:
    ddb.put_item(TableName='Events', Item=k)
except ClientError as e:
    print(e.response['ResponseMetadata']['HTTPStatusCode'], e.response['Error']['Message'])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..9],
        [
            "ok",
            "AccessDeniedException",
            "AccessDeniedException",
            "ok",
            "AccessDeniedException",
            "AccessDeniedException",
            "AccessDeniedException",
            "AccessDeniedException",
            "AccessDeniedException",
        ],
        "{out}"
    );
    assert!(
        lines[9].starts_with("400 User: arn:aws:iam::123456789012:user/reader is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/Events"),
        "{out}"
    );
}

#[test]
fn expired_items_are_deleted_in_the_background() {
    let node = start();
    let out = boto3(
        &node,
        ADMIN,
        r#"
print(ddb.describe_time_to_live(TableName='Events')['TimeToLiveDescription'])
now = int(time.time())
for i in range(20):
    ddb.put_item(TableName='Events', Item={'date': {'S': 'ttl'}, 'seq': {'N': str(i)}, 'expires': {'N': str(now - 10 if i < 15 else now + 3600)}})
# Ten years ago: DynamoDB ignores TTL values more than five years in the past.
ddb.put_item(TableName='Events', Item={'date': {'S': 'ttl'}, 'seq': {'N': '99'}, 'expires': {'N': str(now - 10 * 365 * 86400)}})
# Not a number: never expires.
ddb.put_item(TableName='Events', Item={'date': {'S': 'ttl'}, 'seq': {'N': '100'}, 'expires': {'S': 'soon'}})
# Expired but not yet deleted items are still read, as on DynamoDB.
print(ddb.query(TableName='Events', KeyConditionExpression='#d = :d', ExpressionAttributeNames={'#d': 'date'}, ExpressionAttributeValues={':d': {'S': 'ttl'}}, Select='COUNT')['Count'])
left = None
for _ in range(90):
    left = ddb.query(TableName='Events', KeyConditionExpression='#d = :d', ExpressionAttributeNames={'#d': 'date'}, ExpressionAttributeValues={':d': {'S': 'ttl'}})['Items']
    if len(left) == 7: break
    time.sleep(1)
print(sorted(int(i['seq']['N']) for i in left))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "{'TimeToLiveStatus': 'ENABLED', 'AttributeName': 'expires'}",
            "22",
            "[15, 16, 17, 18, 19, 99, 100]"
        ],
        "{out}"
    );
}

#[test]
fn query_and_scan_agree_with_a_model_of_the_table() {
    let node = start();
    let out = boto3(
        &node,
        ADMIN,
        r#"
random.seed(7)
ddb.create_table(TableName='Model', BillingMode='PAY_PER_REQUEST',
    AttributeDefinitions=[{'AttributeName': 'p', 'AttributeType': 'S'}, {'AttributeName': 'n', 'AttributeType': 'N'}, {'AttributeName': 's', 'AttributeType': 'S'}],
    KeySchema=[{'AttributeName': 'p', 'KeyType': 'HASH'}, {'AttributeName': 'n', 'KeyType': 'RANGE'}],
    LocalSecondaryIndexes=[{'IndexName': 'byS', 'KeySchema': [{'AttributeName': 'p', 'KeyType': 'HASH'}, {'AttributeName': 's', 'KeyType': 'RANGE'}], 'Projection': {'ProjectionType': 'KEYS_ONLY'}}])
t = res.Table('Model')
words = ['', 'a', 'ab', 'abc', 'b', 'ba', 'z', '\u00e9', '\u00e9t\u00e9', 'A', 'a\x00b', '~']
items = {}
with t.batch_writer(overwrite_by_pkeys=['p', 'n']) as b:
    for i in range(600):
        p = 'p%d' % random.randrange(4)
        n = Decimal(random.choice(['-1e10', '-5.5', '-1', '-0.001', '0', '0.001', '0.5', '1', '2', '10', '99.99', '1e20'])) + Decimal(random.randrange(1000)) / 1000
        s = random.choice(words[1:]) + str(random.randrange(5))
        it = {'p': p, 'n': n, 's': s, 'v': random.randrange(10)}
        items[(p, n)] = it
        b.put_item(Item=it)
rows = list(items.values())
def page_all(**kw):
    out, start, pages = [], None, 0
    while True:
        if start: kw['ExclusiveStartKey'] = start
        r = t.query(**kw)
        out += r['Items']; pages += 1
        start = r.get('LastEvaluatedKey')
        if not start: return out, pages
bad = 0
checks = 0
for round in range(60):
    p = 'p%d' % random.randrange(4)
    a, b2 = sorted([Decimal(random.randrange(-20, 30)), Decimal(random.randrange(-20, 30))])
    ops = [('eq', lambda x: x == a, Key('n').eq(a)), ('lt', lambda x: x < a, Key('n').lt(a)),
           ('lte', lambda x: x <= a, Key('n').lte(a)), ('gt', lambda x: x > a, Key('n').gt(a)),
           ('gte', lambda x: x >= a, Key('n').gte(a)), ('between', lambda x: a <= x <= b2, Key('n').between(a, b2)),
           ('none', lambda x: True, None)]
    name, pred, cond = random.choice(ops)
    forward = random.random() < 0.5
    limit = random.choice([None, 1, 3, 17])
    kc = Key('p').eq(p) if cond is None else Key('p').eq(p) & cond
    kw = {'KeyConditionExpression': kc, 'ScanIndexForward': forward}
    if limit: kw['Limit'] = limit
    filt = random.random() < 0.3
    if filt: kw['FilterExpression'] = Attr('v').gt(4)
    got, pages = page_all(**kw)
    want = sorted([r for r in rows if r['p'] == p and pred(r['n']) and (not filt or r['v'] > 4)], key=lambda r: r['n'], reverse=not forward)
    checks += 1
    if [g['n'] for g in got] != [w['n'] for w in want]:
        bad += 1; print('MISMATCH', name, a, b2, forward, limit, filt, [g['n'] for g in got][:5], [w['n'] for w in want][:5])
    # The local index orders by the string attribute, by UTF-8 bytes.
    prefix = random.choice(words[1:4])
    got, _ = page_all(IndexName='byS', KeyConditionExpression=Key('p').eq(p) & Key('s').begins_with(prefix), ScanIndexForward=forward)
    want = sorted([r for r in rows if r['p'] == p and r['s'].startswith(prefix)], key=lambda r: (r['s'].encode(), r['n']), reverse=not forward)
    checks += 1
    if [g['s'] for g in got] != [w['s'] for w in want] or any(set(g) != {'p', 'n', 's'} for g in got):
        bad += 1; print('MISMATCH begins_with', prefix, forward, [g['s'] for g in got][:5], [w['s'] for w in want][:5])
# Parallel scan: segments are disjoint and together the whole table.
seen = []
for seg in range(7):
    start = None
    while True:
        kw = {'Segment': seg, 'TotalSegments': 7, 'Limit': 50}
        if start: kw['ExclusiveStartKey'] = start
        r = t.scan(**kw)
        seen += [(i['p'], i['n']) for i in r['Items']]
        start = r.get('LastEvaluatedKey')
        if not start: break
checks += 1
if sorted(seen) != sorted(items.keys()) or len(seen) != len(set(seen)):
    bad += 1; print('MISMATCH scan segments', len(seen), len(set(seen)), len(items))
print('checks', checks, 'bad', bad)
"#,
    );
    assert!(out.trim_end().ends_with("checks 121 bad 0"), "{out}");
}

#[test]
fn concurrent_catalog_changes_never_undo_each_other() {
    let node = start();
    // 20 TagResource calls at once: each is applied or refused (ResourceInUseException, the
    // description changed meanwhile); none that was answered with success is lost.
    let out = boto3(
        &node,
        ADMIN,
        r#"
import threading
arn = ddb.describe_table(TableName='Other')['Table']['TableArn']
ok, refused = [], []
def tag(i):
    c = boto3.client('dynamodb', endpoint_url=sys.argv[1])
    r = code(c.tag_resource, ResourceArn=arn, Tags=[{'Key': 'k%d' % i, 'Value': 'v'}])
    (ok if r == 'ok' else refused).append('k%d' % i if r == 'ok' else r)
ts = [threading.Thread(target=tag, args=(i,)) for i in range(20)]
[t.start() for t in ts]
[t.join() for t in ts]
tags = sorted(t['Key'] for t in ddb.list_tags_of_resource(ResourceArn=arn)['Tags'])
print(len(ok) >= 1, set(refused) <= {'ResourceInUseException'}, sorted(ok) == tags)
"#,
    );
    assert_eq!(out.trim(), "True True True", "{out}");
}

#[test]
fn consumed_capacity_follows_dynamodbs_unit_rules() {
    let node = start();
    // A 2,500-byte item: 3 write units (1 KB each, rounded up); reading it is one 4 KB read
    // unit, halved when eventually consistent; an index write and read are reported under the
    // index with INDEXES; a transaction costs twice.
    let out = boto3(
        &node,
        ADMIN,
        r#"
item = {'date': {'S': 'cap'}, 'seq': {'N': '1'}, 'user': {'S': 'u'}, 'pad': {'S': 'x' * (2500 - 18)}}
key = {'date': {'S': 'cap'}, 'seq': {'N': '1'}}
p = ddb.put_item(TableName='Events', Item=item, ReturnConsumedCapacity='TOTAL')['ConsumedCapacity']
print(p['TableName'], p['CapacityUnits'])
g1 = ddb.get_item(TableName='Events', Key=key, ReturnConsumedCapacity='TOTAL')['ConsumedCapacity']['CapacityUnits']
g2 = ddb.get_item(TableName='Events', Key=key, ConsistentRead=True, ReturnConsumedCapacity='TOTAL')['ConsumedCapacity']['CapacityUnits']
print(g1, g2)
q = ddb.query(TableName='Events', IndexName='byUser', KeyConditionExpression='#u = :u', ExpressionAttributeNames={'#u': 'user'}, ExpressionAttributeValues={':u': {'S': 'u'}}, ReturnConsumedCapacity='INDEXES')['ConsumedCapacity']
print(sorted(q['GlobalSecondaryIndexes']), q['GlobalSecondaryIndexes']['byUser']['CapacityUnits'])
w = ddb.put_item(TableName='Events', Item=item, ReturnConsumedCapacity='INDEXES')['ConsumedCapacity']
print(w['Table']['CapacityUnits'], w['GlobalSecondaryIndexes']['byUser']['CapacityUnits'])
t = ddb.transact_write_items(TransactItems=[{'Put': {'TableName': 'Other', 'Item': {'id': {'S': 'a'}}}}], ReturnConsumedCapacity='TOTAL')['ConsumedCapacity']
print(t[0]['TableName'], t[0]['CapacityUnits'])
print('ConsumedCapacity' in ddb.get_item(TableName='Events', Key=key))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "Events 6.0",
            "0.5 1.0",
            "['byUser'] 0.5",
            "3.0 3.0",
            "Other 2.0",
            "False"
        ],
        "{out}"
    );
}
