#!/usr/bin/env python3
"""boto3's low-level DynamoDB client against an endpoint: tables, items, queries, batches,
transactions, TTL, tags, index backfill, numbers and bad input, each a named check.

Usage: boto3_client.py ENDPOINT_URL [--skip transactions,ttl,gsi_backfill,rvoccf,table_id,parser_messages]
Skip groups (also env SKIP=...) exist for features dynalite lacks; against spillway run with none.
"""

import atexit
import re
import time

import boto3
from botocore.config import Config

from checks import (
    check,
    equal,
    eventually,
    expect_error,
    finish,
    skipped,
    start,
    suffix,
)

ENDPOINT = start(__doc__)
ddb = boto3.client(
    "dynamodb",
    endpoint_url=ENDPOINT,
    config=Config(retries={"max_attempts": 2, "mode": "standard"}),
)
WAIT = {"Delay": 1, "MaxAttempts": 300}
RUN = suffix()
MAIN = f"tc-main-{RUN}"
PROV = f"tc-prov-{RUN}"
EXTRA = f"tc-extra-{RUN}"


def s(text):
    return {"S": text}


def n(text):
    return {"N": str(text)}


def key(pk, sk):
    return {"pk": s(pk), "sk": s(sk)}


# --- CreateTable, waiter, DescribeTable ------------------------------------------------------

created = ddb.create_table(
    TableName=MAIN,
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "gsi_pk", "AttributeType": "S"},
        {"AttributeName": "lsi_sk", "AttributeType": "N"},
    ],
    KeySchema=[
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    GlobalSecondaryIndexes=[
        {
            "IndexName": "gsi1",
            "KeySchema": [
                {"AttributeName": "gsi_pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    LocalSecondaryIndexes=[
        {
            "IndexName": "lsi1",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "lsi_sk", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ],
)["TableDescription"]
equal("create_table.name", created["TableName"], MAIN)
check(
    "create_table.status",
    created["TableStatus"] in ("CREATING", "ACTIVE"),
    created["TableStatus"],
)

ddb.create_table(
    TableName=PROV,
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
)
ddb.create_table(
    TableName=EXTRA,
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
)
expect_error(
    "create_table.duplicate",
    "ResourceInUseException",
    lambda: ddb.create_table(
        TableName=EXTRA,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    ),
)



def drop_leftovers():
    """A failed run still removes its tables, so reruns against a shared endpoint stay tidy."""
    for name in (MAIN, PROV, EXTRA):
        try:
            ddb.delete_table(TableName=name)
        except Exception:  # noqa: BLE001 - best effort; the table may already be gone
            pass


atexit.register(drop_leftovers)

for name in (MAIN, PROV, EXTRA):
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig=WAIT)
    check(f"waiter.table_exists.{name}", True)

desc = ddb.describe_table(TableName=MAIN)["Table"]
equal("describe.name", desc["TableName"], MAIN)
equal("describe.status", desc["TableStatus"], "ACTIVE")
equal(
    "describe.key_schema",
    desc["KeySchema"],
    [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
)
equal(
    "describe.attribute_definitions",
    sorted((a["AttributeName"], a["AttributeType"]) for a in desc["AttributeDefinitions"]),
    [("gsi_pk", "S"), ("lsi_sk", "N"), ("pk", "S"), ("sk", "S")],
)
equal("describe.billing_mode", desc["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
check(
    "describe.arn",
    desc["TableArn"].startswith("arn:aws:dynamodb:") and desc["TableArn"].endswith(f":table/{MAIN}"),
    desc["TableArn"],
)
equal("describe.item_count", desc["ItemCount"], 0)
equal("describe.size_bytes", desc["TableSizeBytes"], 0)
check("describe.creation_time", hasattr(desc["CreationDateTime"], "year"), desc["CreationDateTime"])
if not skipped("table_id"):
    # dynalite differs: its TableId is 32 hex digits in UUID-like groups, not a 36-character UUID.
    check(
        "describe.table_id",
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", desc.get("TableId", "")),
        desc.get("TableId"),
    )
gsi = desc["GlobalSecondaryIndexes"][0]
equal("describe.gsi.name", gsi["IndexName"], "gsi1")
equal("describe.gsi.status", gsi["IndexStatus"], "ACTIVE")
equal("describe.gsi.projection", gsi["Projection"], {"ProjectionType": "ALL"})
check("describe.gsi.arn", gsi.get("IndexArn", "").endswith(f":table/{MAIN}/index/gsi1"), gsi.get("IndexArn"))
lsi = desc["LocalSecondaryIndexes"][0]
equal("describe.lsi.name", lsi["IndexName"], "lsi1")
equal("describe.lsi.projection", lsi["Projection"], {"ProjectionType": "KEYS_ONLY"})
equal(
    "describe.lsi.key_schema",
    lsi["KeySchema"],
    [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "lsi_sk", "KeyType": "RANGE"},
    ],
)
prov = ddb.describe_table(TableName=PROV)["Table"]
equal("describe.provisioned.read", prov["ProvisionedThroughput"]["ReadCapacityUnits"], 5)
equal("describe.provisioned.write", prov["ProvisionedThroughput"]["WriteCapacityUnits"], 7)
check(
    "describe.provisioned.billing_mode",
    prov.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED",
    prov.get("BillingModeSummary"),
)

# --- ListTables paging -----------------------------------------------------------------------

listed = []
pages = 0
oversized = False
start_name = None
while True:
    args = {"Limit": 1}
    if start_name:
        args["ExclusiveStartTableName"] = start_name
    page = ddb.list_tables(**args)
    pages += 1
    oversized = oversized or len(page["TableNames"]) > 1
    listed += page["TableNames"]
    start_name = page.get("LastEvaluatedTableName")
    if not start_name:
        break
    if pages > 10000:
        break
check("list_tables.page_size", not oversized, "a page with Limit=1 held more than one name")
check(
    "list_tables.contains_ours",
    {MAIN, PROV, EXTRA} <= set(listed),
    listed,
)
equal("list_tables.sorted", listed, sorted(listed))
equal("list_tables.no_duplicates", len(listed), len(set(listed)))
after_main = ddb.list_tables(ExclusiveStartTableName=MAIN, Limit=100)["TableNames"]
check(
    "list_tables.exclusive_start",
    MAIN not in after_main and all(t > MAIN for t in after_main),
    after_main,
)

# --- PutItem / GetItem / DeleteItem / UpdateItem ---------------------------------------------

ddb.put_item(TableName=MAIN, Item={**key("a", "1"), "v": s("first"), "count": n(1)})
got = ddb.get_item(TableName=MAIN, Key=key("a", "1"), ConsistentRead=True)
equal("get_item.item", got["Item"], {**key("a", "1"), "v": s("first"), "count": n(1)})
check("get_item.missing", "Item" not in ddb.get_item(TableName=MAIN, Key=key("a", "nope")), "Item")
got = ddb.get_item(TableName=MAIN, Key=key("a", "1"), ProjectionExpression="#v", ExpressionAttributeNames={"#v": "v"})
equal("get_item.projection", got["Item"], {"v": s("first")})

put_new = ddb.put_item(TableName=MAIN, Item={**key("a", "2"), "v": s("x")}, ReturnValues="ALL_OLD")
check("put_item.all_old.new_item", "Attributes" not in put_new, put_new)
put_old = ddb.put_item(TableName=MAIN, Item={**key("a", "2"), "v": s("y")}, ReturnValues="ALL_OLD")
equal("put_item.all_old", put_old["Attributes"], {**key("a", "2"), "v": s("x")})

expect_error(
    "put_item.condition_failed",
    "ConditionalCheckFailedException",
    lambda: ddb.put_item(
        TableName=MAIN,
        Item={**key("a", "1"), "v": s("clobber")},
        ConditionExpression="attribute_not_exists(pk)",
    ),
    message="The conditional request failed",
)
equal(
    "put_item.condition_failed.unchanged",
    ddb.get_item(TableName=MAIN, Key=key("a", "1"))["Item"]["v"],
    s("first"),
)
ddb.put_item(
    TableName=MAIN,
    Item={**key("a", "3"), "v": s("z")},
    ConditionExpression="attribute_not_exists(pk)",
)
check("put_item.condition_passed", "Item" in ddb.get_item(TableName=MAIN, Key=key("a", "3")))

if not skipped("rvoccf"):
    err = expect_error(
        "put_item.rvoccf",
        "ConditionalCheckFailedException",
        lambda: ddb.put_item(
            TableName=MAIN,
            Item={**key("a", "1"), "v": s("clobber")},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    )
    equal(
        "put_item.rvoccf.item",
        err.response.get("Item"),
        {**key("a", "1"), "v": s("first"), "count": n(1)},
    )
    err = expect_error(
        "update_item.rvoccf",
        "ConditionalCheckFailedException",
        lambda: ddb.update_item(
            TableName=MAIN,
            Key=key("a", "1"),
            UpdateExpression="SET v = :v",
            ConditionExpression="v = :other",
            ExpressionAttributeValues={":v": s("q"), ":other": s("other")},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    )
    equal("update_item.rvoccf.item", err.response.get("Item", {}).get("v"), s("first"))
    err = expect_error(
        "put_item.rvoccf_none",
        "ConditionalCheckFailedException",
        lambda: ddb.put_item(
            TableName=MAIN,
            Item={**key("a", "1")},
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="NONE",
        ),
    )
    check("put_item.rvoccf_none.no_item", "Item" not in err.response, err.response)

up = ddb.update_item(
    TableName=MAIN,
    Key=key("a", "1"),
    UpdateExpression="SET v = :v, added = :a",
    ExpressionAttributeValues={":v": s("second"), ":a": s("new")},
    ReturnValues="UPDATED_NEW",
)
equal("update_item.updated_new", up["Attributes"], {"v": s("second"), "added": s("new")})
up = ddb.update_item(
    TableName=MAIN,
    Key=key("a", "1"),
    UpdateExpression="SET v = :v REMOVE added",
    ExpressionAttributeValues={":v": s("third")},
    ReturnValues="UPDATED_OLD",
)
equal("update_item.updated_old", up["Attributes"], {"v": s("second"), "added": s("new")})
up = ddb.update_item(
    TableName=MAIN,
    Key=key("a", "1"),
    UpdateExpression="ADD #c :one",
    ExpressionAttributeNames={"#c": "count"},
    ExpressionAttributeValues={":one": n(1)},
    ReturnValues="ALL_NEW",
)
equal("update_item.all_new", up["Attributes"], {**key("a", "1"), "v": s("third"), "count": n(2)})
up = ddb.update_item(
    TableName=MAIN,
    Key=key("a", "1"),
    UpdateExpression="SET v = :v",
    ConditionExpression="#c = :two",
    ExpressionAttributeNames={"#c": "count"},
    ExpressionAttributeValues={":v": s("fourth"), ":two": n(2)},
    ReturnValues="ALL_OLD",
)
equal("update_item.all_old", up["Attributes"], {**key("a", "1"), "v": s("third"), "count": n(2)})
up = ddb.update_item(
    TableName=MAIN,
    Key=key("a", "new"),
    UpdateExpression="SET v = :v",
    ExpressionAttributeValues={":v": s("upserted")},
    ReturnValues="ALL_NEW",
)
equal("update_item.upsert", up["Attributes"], {**key("a", "new"), "v": s("upserted")})
expect_error(
    "update_item.condition_failed",
    "ConditionalCheckFailedException",
    lambda: ddb.update_item(
        TableName=MAIN,
        Key=key("a", "1"),
        UpdateExpression="SET v = :v",
        ConditionExpression="v = :old",
        ExpressionAttributeValues={":v": s("x"), ":old": s("third")},
    ),
    message="The conditional request failed",
)
expect_error(
    "update_item.key_attribute",
    "ValidationException",
    lambda: ddb.update_item(
        TableName=MAIN,
        Key=key("a", "1"),
        UpdateExpression="SET pk = :v",
        ExpressionAttributeValues={":v": s("moved")},
    ),
    prefix="One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key",
)

expect_error(
    "delete_item.condition_failed",
    "ConditionalCheckFailedException",
    lambda: ddb.delete_item(
        TableName=MAIN,
        Key=key("a", "2"),
        ConditionExpression="v = :nope",
        ExpressionAttributeValues={":nope": s("nope")},
    ),
    message="The conditional request failed",
)
deleted = ddb.delete_item(
    TableName=MAIN,
    Key=key("a", "2"),
    ConditionExpression="v = :y",
    ExpressionAttributeValues={":y": s("y")},
    ReturnValues="ALL_OLD",
)
equal("delete_item.all_old", deleted["Attributes"], {**key("a", "2"), "v": s("y")})
check("delete_item.gone", "Item" not in ddb.get_item(TableName=MAIN, Key=key("a", "2")))
gone = ddb.delete_item(TableName=MAIN, Key=key("a", "2"), ReturnValues="ALL_OLD")
check("delete_item.absent_no_attributes", "Attributes" not in gone, gone)

# --- Query and Scan --------------------------------------------------------------------------

for i in range(20):
    item = {**key("q", f"s{i:02d}"), "n": n(i), "lsi_sk": n(100 - i)}
    if i % 2 == 0:
        item["gsi_pk"] = s("g")
    ddb.put_item(TableName=MAIN, Item=item)

query_args = {
    "TableName": MAIN,
    "KeyConditionExpression": "pk = :p AND begins_with(sk, :pre)",
    "FilterExpression": "n >= :five",
    "ExpressionAttributeValues": {":p": s("q"), ":pre": s("s"), ":five": n(5)},
    "Limit": 4,
}
first = ddb.query(**query_args)
equal("query.limit.scanned", first["ScannedCount"], 4)
equal("query.limit_before_filter.count", first["Count"], 0)
check("query.limit.last_key", "LastEvaluatedKey" in first, first)
equal("query.limit.last_key_value", first["LastEvaluatedKey"], key("q", "s03"))
found = []
page = first
while True:
    found += [item["sk"]["S"] for item in page["Items"]]
    if "LastEvaluatedKey" not in page:
        break
    page = ddb.query(**query_args, ExclusiveStartKey=page["LastEvaluatedKey"])
equal("query.paged_filtered", found, [f"s{i:02d}" for i in range(5, 20)])

backwards = ddb.query(
    TableName=MAIN,
    KeyConditionExpression="pk = :p",
    ExpressionAttributeValues={":p": s("q")},
    ScanIndexForward=False,
    Limit=3,
)
equal("query.backwards", [i["sk"]["S"] for i in backwards["Items"]], ["s19", "s18", "s17"])
between = ddb.query(
    TableName=MAIN,
    KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
    ExpressionAttributeValues={":p": s("q"), ":lo": s("s03"), ":hi": s("s05")},
)
equal("query.between", [i["sk"]["S"] for i in between["Items"]], ["s03", "s04", "s05"])
counted = ddb.query(
    TableName=MAIN,
    KeyConditionExpression="pk = :p",
    ExpressionAttributeValues={":p": s("q")},
    Select="COUNT",
)
equal("query.select_count", counted["Count"], 20)
check("query.select_count.no_items", "Items" not in counted, counted)
on_gsi = ddb.query(
    TableName=MAIN,
    IndexName="gsi1",
    KeyConditionExpression="gsi_pk = :g",
    ExpressionAttributeValues={":g": s("g")},
)
equal("query.gsi", [i["sk"]["S"] for i in on_gsi["Items"]], [f"s{i:02d}" for i in range(0, 20, 2)])
equal("query.gsi.projection_all", on_gsi["Items"][0]["n"], n(0))
gsi_page = ddb.query(
    TableName=MAIN,
    IndexName="gsi1",
    KeyConditionExpression="gsi_pk = :g",
    ExpressionAttributeValues={":g": s("g")},
    Limit=1,
)
# An index page's LastEvaluatedKey carries the index key and the table key, so paging is unambiguous.
equal("query.gsi.last_key", gsi_page.get("LastEvaluatedKey"), {"gsi_pk": s("g"), **key("q", "s00")})
gsi_next = ddb.query(
    TableName=MAIN,
    IndexName="gsi1",
    KeyConditionExpression="gsi_pk = :g",
    ExpressionAttributeValues={":g": s("g")},
    Limit=1,
    ExclusiveStartKey=gsi_page["LastEvaluatedKey"],
)
equal("query.gsi.next_page", [i["sk"]["S"] for i in gsi_next["Items"]], ["s02"])
on_lsi = ddb.query(
    TableName=MAIN,
    IndexName="lsi1",
    KeyConditionExpression="pk = :p AND lsi_sk < :lim",
    ExpressionAttributeValues={":p": s("q"), ":lim": n(84)},
)
equal("query.lsi.order", [i["sk"]["S"] for i in on_lsi["Items"]], ["s19", "s18", "s17"])
equal("query.lsi.keys_only", set(on_lsi["Items"][0]), {"pk", "sk", "lsi_sk"})
expect_error(
    "query.gsi.consistent_read",
    "ValidationException",
    lambda: ddb.query(
        TableName=MAIN,
        IndexName="gsi1",
        KeyConditionExpression="gsi_pk = :g",
        ExpressionAttributeValues={":g": s("g")},
        ConsistentRead=True,
    ),
    message="Consistent reads are not supported on global secondary indexes",
)


def scan_keys(**extra):
    seen = []
    args = {"TableName": MAIN, **extra}
    while True:
        page = ddb.scan(**args)
        seen += [(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return seen
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


whole = scan_keys(Limit=7)
equal("scan.whole.no_duplicates", len(whole), len(set(whole)))
check("scan.whole.count", len(whole) >= 23, len(whole))
segments = [scan_keys(Segment=i, TotalSegments=4, Limit=3) for i in range(4)]
union = [k for seg in segments for k in seg]
equal("scan.segments.disjoint", len(union), len(set(union)))
equal("scan.segments.union", set(union), set(whole))
filtered = ddb.scan(
    TableName=MAIN,
    FilterExpression="n > :x",
    ExpressionAttributeValues={":x": n(17)},
)
equal("scan.filter", sorted(i["sk"]["S"] for i in filtered["Items"]), ["s18", "s19"])
expect_error(
    "scan.segment_out_of_range",
    "ValidationException",
    lambda: ddb.scan(TableName=MAIN, Segment=4, TotalSegments=4),
    contains="Segment",
)

# --- BatchWriteItem / BatchGetItem -----------------------------------------------------------


def batch_write(table, requests):
    pending = {table: requests}
    for _ in range(20):
        pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})
        if not pending:
            return True
        time.sleep(0.2)
    return False


check(
    "batch_write.25",
    batch_write(PROV, [{"PutRequest": {"Item": {"id": n(i), "v": s(f"v{i}")}}} for i in range(25)]),
)
expect_error(
    "batch_write.26",
    "ValidationException",
    lambda: ddb.batch_write_item(
        RequestItems={PROV: [{"PutRequest": {"Item": {"id": n(i)}}} for i in range(100, 126)]}
    ),
    contains="Member must have length less than or equal to 25",
)
for base in (25, 50, 75):
    batch_write(PROV, [{"PutRequest": {"Item": {"id": n(i), "v": s(f"v{i}")}}} for i in range(base, base + 25)])
batch_write(PROV, [{"PutRequest": {"Item": {"id": n(i)}}} for i in range(200, 205)])
check(
    "batch_write.delete",
    batch_write(PROV, [{"DeleteRequest": {"Key": {"id": n(i)}}} for i in range(200, 205)]),
)
check("batch_write.deleted", "Item" not in ddb.get_item(TableName=PROV, Key={"id": n(202)}))
expect_error(
    "batch_write.same_key_twice",
    "ValidationException",
    lambda: ddb.batch_write_item(
        RequestItems={PROV: [{"PutRequest": {"Item": {"id": n(500)}}}, {"DeleteRequest": {"Key": {"id": n(500)}}}]}
    ),
    message="Provided list of item keys contains duplicates",
)

got_items = []
pending = {PROV: {"Keys": [{"id": n(i)} for i in range(100)]}}
for _ in range(20):
    response = ddb.batch_get_item(RequestItems=pending)
    got_items += response["Responses"].get(PROV, [])
    pending = response.get("UnprocessedKeys", {})
    if not pending:
        break
equal("batch_get.100", sorted(int(i["id"]["N"]) for i in got_items), list(range(100)))
equal("batch_get.values", {i["id"]["N"]: i["v"]["S"] for i in got_items}["99"], "v99")
expect_error(
    "batch_get.101",
    "ValidationException",
    lambda: ddb.batch_get_item(RequestItems={PROV: {"Keys": [{"id": n(i)} for i in range(101)]}}),
    contains="Member must have length less than or equal to 100",
)
expect_error(
    "batch_get.101_across_tables",
    "ValidationException",
    lambda: ddb.batch_get_item(
        RequestItems={
            PROV: {"Keys": [{"id": n(i)} for i in range(60)]},
            MAIN: {"Keys": [key("none", str(i)) for i in range(41)]},
        }
    ),
    message="Too many items requested for the BatchGetItem call",
)
missing = ddb.batch_get_item(RequestItems={PROV: {"Keys": [{"id": n(1)}, {"id": n(5000)}]}})
equal("batch_get.missing_key_omitted", [i["id"]["N"] for i in missing["Responses"][PROV]], ["1"])

# --- Transactions ----------------------------------------------------------------------------

if not skipped("transactions"):
    # dynalite differs: it has no TransactWriteItems/TransactGetItems (UnknownOperationException).
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": MAIN, "Item": {**key("t", "1"), "v": s("one")}}},
            {"Put": {"TableName": MAIN, "Item": {**key("t", "2"), "v": s("two")}}},
            {
                "Update": {
                    "TableName": PROV,
                    "Key": {"id": n(1)},
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": s("tx")},
                }
            },
        ]
    )
    equal("transact_write.put", ddb.get_item(TableName=MAIN, Key=key("t", "2"))["Item"]["v"], s("two"))
    equal("transact_write.update", ddb.get_item(TableName=PROV, Key={"id": n(1)})["Item"]["v"], s("tx"))
    err = expect_error(
        "transact_write.cancelled",
        "TransactionCanceledException",
        lambda: ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": MAIN, "Item": {**key("t", "3"), "v": s("three")}}},
                {
                    "ConditionCheck": {
                        "TableName": MAIN,
                        "Key": key("t", "1"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Delete": {"TableName": MAIN, "Key": key("t", "2")}},
            ]
        ),
        message="Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, ConditionalCheckFailed, None]",
    )
    reasons = err.response.get("CancellationReasons") or [{}, {}, {}]
    equal(
        "transact_write.cancellation_reasons",
        [r.get("Code") for r in reasons],
        ["None", "ConditionalCheckFailed", "None"],
    )
    equal("transact_write.cancellation_message", reasons[1].get("Message"), "The conditional request failed")
    check("transact_write.nothing_written", "Item" not in ddb.get_item(TableName=MAIN, Key=key("t", "3")))
    check("transact_write.nothing_deleted", "Item" in ddb.get_item(TableName=MAIN, Key=key("t", "2")))
    err = expect_error(
        "transact_write.cancelled_all_old",
        "TransactionCanceledException",
        lambda: ddb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": MAIN,
                        "Key": key("t", "1"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        ),
    )
    equal(
        "transact_write.cancelled_all_old.item",
        (err.response.get("CancellationReasons") or [{}])[0].get("Item"),
        {**key("t", "1"), "v": s("one")},
    )
    expect_error(
        "transact_write.same_item_twice",
        "ValidationException",
        lambda: ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": MAIN, "Item": {**key("t", "9")}}},
                {"Delete": {"TableName": MAIN, "Key": key("t", "9")}},
            ]
        ),
        message="Transaction request cannot include multiple operations on one item",
    )

    token = f"token-{RUN}"
    idem_items = [
        {
            "Update": {
                "TableName": PROV,
                "Key": {"id": n(2)},
                "UpdateExpression": "ADD hits :one",
                "ExpressionAttributeValues": {":one": n(1)},
            }
        }
    ]
    ddb.transact_write_items(TransactItems=idem_items, ClientRequestToken=token)
    ddb.transact_write_items(TransactItems=idem_items, ClientRequestToken=token)
    equal(
        "transact_write.idempotent_replay_applied_once",
        ddb.get_item(TableName=PROV, Key={"id": n(2)})["Item"]["hits"],
        n(1),
    )
    expect_error(
        "transact_write.idempotent_mismatch",
        "IdempotentParameterMismatchException",
        lambda: ddb.transact_write_items(
            TransactItems=[{**idem_items[0], "Update": {**idem_items[0]["Update"], "Key": {"id": n(3)}}}],
            ClientRequestToken=token,
        ),
    )

    tget = ddb.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": MAIN, "Key": key("t", "2")}},
            {"Get": {"TableName": MAIN, "Key": key("t", "missing")}},
            {"Get": {"TableName": PROV, "Key": {"id": n(1)}, "ProjectionExpression": "v"}},
        ]
    )["Responses"]
    equal("transact_get.order", tget[0].get("Item"), {**key("t", "2"), "v": s("two")})
    # The docs call a missing item's ItemResponse "Null"; on the wire it is an entry without Item.
    check("transact_get.missing_empty", tget[1] in ({}, None), tget[1])
    equal("transact_get.projection", tget[2].get("Item"), {"v": s("tx")})

# --- TTL and tags ----------------------------------------------------------------------------

ttl = ddb.describe_time_to_live(TableName=EXTRA)["TimeToLiveDescription"]
equal("ttl.initially_disabled", ttl["TimeToLiveStatus"], "DISABLED")
if not skipped("ttl"):
    # dynalite differs: it has DescribeTimeToLive (always DISABLED) but no UpdateTimeToLive.
    spec = ddb.update_time_to_live(
        TableName=EXTRA,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
    )["TimeToLiveSpecification"]
    equal("ttl.update_echo", spec, {"Enabled": True, "AttributeName": "expires"})
    ttl = ddb.describe_time_to_live(TableName=EXTRA)["TimeToLiveDescription"]
    check("ttl.enabled", ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING"), ttl)
    equal("ttl.attribute", ttl.get("AttributeName"), "expires")
    expect_error(
        "ttl.already_enabled",
        "ValidationException",
        lambda: ddb.update_time_to_live(
            TableName=EXTRA,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
        ),
        message="TimeToLive is already enabled",
    )

arn = ddb.describe_table(TableName=EXTRA)["Table"]["TableArn"]
ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "tables"}, {"Key": "env", "Value": "test"}])
tags = eventually(
    "tags.listed",
    lambda: len(ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]) == 2
    and ddb.list_tags_of_resource(ResourceArn=arn)["Tags"],
)
equal("tags.values", {t["Key"]: t["Value"] for t in tags}, {"team": "tables", "env": "test"})
ddb.untag_resource(ResourceArn=arn, TagKeys=["env"])
tags = eventually(
    "tags.untagged",
    lambda: len(ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]) == 1
    and ddb.list_tags_of_resource(ResourceArn=arn)["Tags"],
)
equal("tags.remaining", tags, [{"Key": "team", "Value": "tables"}])

# --- UpdateTable adds a GSI; its backfill shows existing items -------------------------------

if not skipped("gsi_backfill"):
    # dynalite differs: it demands ProvisionedThroughput on a Create even for an on-demand table, and
    # never builds the index (no backfill).
    ddb.update_table(
        TableName=MAIN,
        AttributeDefinitions=[{"AttributeName": "n", "AttributeType": "N"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "by_n",
                    "KeySchema": [{"AttributeName": "n", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            }
        ],
    )

    def index_active():
        table = ddb.describe_table(TableName=MAIN)["Table"]
        statuses = {g["IndexName"]: g["IndexStatus"] for g in table.get("GlobalSecondaryIndexes", [])}
        return table["TableStatus"] == "ACTIVE" and statuses.get("by_n") == "ACTIVE"

    eventually("update_table.gsi_active", index_active, timeout=900, interval=2)
    backfilled = ddb.query(
        TableName=MAIN,
        IndexName="by_n",
        KeyConditionExpression="n = :three",
        ExpressionAttributeValues={":three": n(3)},
    )
    equal("update_table.gsi_backfill", [i["sk"]["S"] for i in backfilled["Items"]], ["s03"])

# --- Numbers ---------------------------------------------------------------------------------

ddb.put_item(TableName=EXTRA, Item={"id": s("num"), "x": n("0.1")})
added = ddb.update_item(
    TableName=EXTRA,
    Key={"id": s("num")},
    UpdateExpression="ADD x :d",
    ExpressionAttributeValues={":d": n("0.2")},
    ReturnValues="UPDATED_NEW",
)
equal("number.add_exact", added["Attributes"]["x"], n("0.3"))
wide = "12345678901234567890123456789012345678"
tiny = "-0.000000000000000000000000000000000000000000000000000000000000012345678901234567890123456789012345678"
ddb.put_item(TableName=EXTRA, Item={"id": s("wide"), "x": n(wide), "tiny": n(tiny)})
back = ddb.get_item(TableName=EXTRA, Key={"id": s("wide")})["Item"]
equal("number.38_digits", back["x"], n(wide))
equal("number.38_digits_tiny", back["tiny"], n(tiny))
equal("number.normalized", ddb.update_item(
    TableName=EXTRA,
    Key={"id": s("norm")},
    UpdateExpression="SET x = :v",
    ExpressionAttributeValues={":v": n("001.500")},
    ReturnValues="ALL_NEW",
)["Attributes"]["x"], n("1.5"))
for text, normal in (("1E2", "100"), ("-0", "0"), ("0.10", "0.1"), ("-1.0e-3", "-0.001")):
    ddb.put_item(TableName=EXTRA, Item={"id": s("norm"), "x": n(text)})
    equal(f"number.normalized.{text}", ddb.get_item(TableName=EXTRA, Key={"id": s("norm")})["Item"]["x"], n(normal))
expect_error(
    "number.39_digits",
    "ValidationException",
    lambda: ddb.put_item(TableName=EXTRA, Item={"id": s("big"), "x": n("1" * 39)}),
    message="Attempting to store more than 38 significant digits in a Number",
)
expect_error(
    "number.not_a_number",
    "ValidationException",
    lambda: ddb.put_item(TableName=EXTRA, Item={"id": s("bad"), "x": n("abc")}),
    prefix="The parameter cannot be converted to a numeric value",
)

# --- Bad input -------------------------------------------------------------------------------

expect_error(
    "bad.get_missing_key_attribute",
    "ValidationException",
    lambda: ddb.get_item(TableName=MAIN, Key={"pk": s("a")}),
    message="The provided key element does not match the schema",
)
expect_error(
    "bad.put_missing_key_attribute",
    "ValidationException",
    lambda: ddb.put_item(TableName=MAIN, Item={"pk": s("a")}),
    message="One or more parameter values were invalid: Missing the key sk in the item",
)
expect_error(
    "bad.get_wrong_key_type",
    "ValidationException",
    lambda: ddb.get_item(TableName=MAIN, Key={"pk": n(1), "sk": s("1")}),
    message="The provided key element does not match the schema",
)
expect_error(
    "bad.put_wrong_key_type",
    "ValidationException",
    lambda: ddb.put_item(TableName=MAIN, Item={"pk": n(1), "sk": s("1")}),
    message="One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
)
expect_error(
    "bad.empty_string_key",
    "ValidationException",
    lambda: ddb.put_item(TableName=MAIN, Item={"pk": s(""), "sk": s("1")}),
    message="One or more parameter values are not valid. The AttributeValue for a key attribute "
    "cannot contain an empty string value. Key: pk",
)
ddb.put_item(TableName=MAIN, Item={**key("e", "1"), "blank": s("")})
equal(
    "empty_string_non_key_allowed",
    ddb.get_item(TableName=MAIN, Key=key("e", "1"))["Item"].get("blank"),
    s(""),
)
expect_error(
    "bad.reserved_word",
    "ValidationException",
    lambda: ddb.update_item(
        TableName=MAIN,
        Key=key("a", "1"),
        UpdateExpression="SET name = :v",
        ExpressionAttributeValues={":v": s("x")},
    ),
    message="Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name",
)
expect_error(
    "bad.unused_expression_value",
    "ValidationException",
    lambda: ddb.update_item(
        TableName=MAIN,
        Key=key("a", "1"),
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": s("x"), ":unused": s("y")},
    ),
    message="Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}",
)
expect_error(
    "bad.unused_expression_name",
    "ValidationException",
    lambda: ddb.get_item(
        TableName=MAIN,
        Key=key("a", "1"),
        ProjectionExpression="v",
        ExpressionAttributeNames={"#unused": "x"},
    ),
    message="Value provided in ExpressionAttributeNames unused in expressions: keys: {#unused}",
)
expect_error(
    "bad.undefined_expression_value",
    "ValidationException",
    lambda: ddb.update_item(TableName=MAIN, Key=key("a", "1"), UpdateExpression="SET v = :missing"),
    message="Invalid UpdateExpression: An expression attribute value used in expression is not defined; "
    "attribute value: :missing",
)
expect_error(
    "bad.malformed_expression",
    "ValidationException",
    lambda: ddb.put_item(
        TableName=MAIN,
        Item=key("a", "9"),
        ConditionExpression="attribute_exists(",
    ),
    # dynalite differs: its parser words syntax errors itself ("Expected ... but end of input found")
    # where DynamoDB names the token and the text near it; SKIP=parser_messages checks the prefix only.
    prefix="Invalid ConditionExpression: Syntax error; "
    + ("" if skipped("parser_messages") else 'token: "<EOF>", near: "'),
)
# Item size is the UTF-8 length of every attribute name plus its value: pk(2)+"big"(3), sk(2)+"1"(1),
# blob(4)+value, so a 409588-character blob makes exactly 400 KB, the largest item allowed.
ddb.put_item(TableName=MAIN, Item={**key("big", "1"), "blob": s("x" * (400 * 1024 - 12))})
check("item_exactly_400kb_allowed", "Item" in ddb.get_item(TableName=MAIN, Key=key("big", "1"), ProjectionExpression="pk"))
expect_error(
    "bad.item_too_large",
    "ValidationException",
    lambda: ddb.put_item(TableName=MAIN, Item={**key("big", "1"), "blob": s("x" * (400 * 1024 - 11))}),
    message="Item size has exceeded the maximum allowed size",
)
expect_error(
    "bad.unknown_table_get",
    "ResourceNotFoundException",
    lambda: ddb.get_item(TableName=f"tc-missing-{RUN}", Key=key("a", "1")),
    message="Requested resource not found",
)
expect_error(
    "bad.unknown_table_describe",
    "ResourceNotFoundException",
    lambda: ddb.describe_table(TableName=f"tc-missing-{RUN}"),
    message=f"Requested resource not found: Table: tc-missing-{RUN} not found",
)
expect_error(
    "bad.query_no_hash_condition",
    "ValidationException",
    lambda: ddb.query(
        TableName=MAIN,
        KeyConditionExpression="sk = :s",
        ExpressionAttributeValues={":s": s("1")},
    ),
    message="Query condition missed key schema element: pk",
)

# --- DeleteTable -----------------------------------------------------------------------------

for name in (MAIN, PROV, EXTRA):
    gone = ddb.delete_table(TableName=name)["TableDescription"]
    equal(f"delete_table.{name}.name", gone["TableName"], name)
for name in (MAIN, PROV, EXTRA):
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig=WAIT)
    expect_error(
        f"delete_table.{name}.not_found",
        "ResourceNotFoundException",
        lambda: ddb.describe_table(TableName=name),
    )
expect_error(
    "delete_table.twice",
    "ResourceNotFoundException",
    lambda: ddb.delete_table(TableName=MAIN),
)

finish()
