#!/usr/bin/env python3
"""boto3's resource API (Table objects, Key/Attr conditions, batch_writer, Decimal numbers)
against an endpoint.

Usage: boto3_resource.py ENDPOINT_URL
"""

import atexit
from decimal import Decimal

import boto3
from boto3.dynamodb.conditions import Attr, Key

from checks import check, equal, finish, start, suffix

ENDPOINT = start(__doc__)
dynamodb = boto3.resource("dynamodb", endpoint_url=ENDPOINT)
NAME = f"tr-events-{suffix()}"

table = dynamodb.create_table(
    TableName=NAME,
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[
        {"AttributeName": "date", "AttributeType": "S"},
        {"AttributeName": "time", "AttributeType": "S"},
    ],
    KeySchema=[
        {"AttributeName": "date", "KeyType": "HASH"},
        {"AttributeName": "time", "KeyType": "RANGE"},
    ],
)
atexit.register(lambda: table.delete())
table.wait_until_exists(WaiterConfig={"Delay": 1, "MaxAttempts": 300})
table.reload()
equal("table.status", table.table_status, "ACTIVE")
equal("table.key_schema", [k["AttributeName"] for k in table.key_schema], ["date", "time"])

table.put_item(
    Item={
        "date": "2024-01-01",
        "time": "10:00",
        "x": 5,
        "y": "present",
        "tags": {"a", "b"},
        "nested": {"list": [1, "two", None, True]},
        "raw": b"\x00\x01",
    }
)
item = table.get_item(Key={"date": "2024-01-01", "time": "10:00"})["Item"]
equal("get_item.number_is_decimal", item["x"], Decimal(5))
check("get_item.decimal_type", isinstance(item["x"], Decimal), type(item["x"]))
equal("get_item.string_set", item["tags"], {"a", "b"})
equal("get_item.nested", item["nested"], {"list": [Decimal(1), "two", None, True]})
equal("get_item.binary", bytes(item["raw"]), b"\x00\x01")
check("get_item.missing", "Item" not in table.get_item(Key={"date": "2024-01-01", "time": "nope"}))

for hour, x in (("10:30", 2), ("11:00", 4), ("11:30", 9)):
    table.put_item(Item={"date": "2024-01-01", "time": hour, "x": x})
table.put_item(Item={"date": "2024-01-02", "time": "11:15", "x": 7, "y": "yes"})

morning = table.query(KeyConditionExpression=Key("date").eq("2024-01-01") & Key("time").begins_with("11:"))
equal("query.begins_with", [i["time"] for i in morning["Items"]], ["11:00", "11:30"])
equal("query.count", morning["Count"], 2)
late = table.query(
    KeyConditionExpression=Key("date").eq("2024-01-01") & Key("time").gte("10:30"),
    ScanIndexForward=False,
)
equal("query.gte_backwards", [i["time"] for i in late["Items"]], ["11:30", "11:00", "10:30"])
window = table.query(KeyConditionExpression=Key("date").eq("2024-01-01") & Key("time").between("10:15", "11:00"))
equal("query.between", [i["time"] for i in window["Items"]], ["10:30", "11:00"])

found = table.scan(FilterExpression=Attr("x").gt(3) & Attr("y").exists())["Items"]
equal("scan.filter_gt_exists", sorted((i["date"], i["time"]) for i in found), [("2024-01-01", "10:00"), ("2024-01-02", "11:15")])
found = table.scan(FilterExpression=Attr("x").gt(3) & Attr("y").not_exists())["Items"]
equal("scan.filter_not_exists", sorted(i["time"] for i in found), ["11:00", "11:30"])
found = table.scan(FilterExpression=Attr("tags").contains("a"))["Items"]
equal("scan.filter_contains_set", [i["time"] for i in found], ["10:00"])

with table.batch_writer() as batch:
    for i in range(100):
        batch.put_item(Item={"date": "bulk", "time": f"{i:03d}", "n": i, "half": Decimal(i) / 2})
items = []
args = {"KeyConditionExpression": Key("date").eq("bulk")}
while True:
    page = table.query(**args)
    items += page["Items"]
    if "LastEvaluatedKey" not in page:
        break
    args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
equal("batch_writer.100_items", len(items), 100)
equal("batch_writer.order", [i["time"] for i in items], [f"{i:03d}" for i in range(100)])
equal("batch_writer.decimal_half", items[7]["half"], Decimal("3.5"))
with table.batch_writer(overwrite_by_pkeys=["date", "time"]) as batch:
    for i in range(50):
        batch.delete_item(Key={"date": "bulk", "time": f"{i:03d}"})
left = table.query(KeyConditionExpression=Key("date").eq("bulk"), Select="COUNT")["Count"]
equal("batch_writer.deletes", left, 50)

table.put_item(Item={"date": "num", "time": "0", "price": Decimal("0.1")})
updated = table.update_item(
    Key={"date": "num", "time": "0"},
    UpdateExpression="ADD price :d SET qty = :q",
    ExpressionAttributeValues={":d": Decimal("0.2"), ":q": Decimal("3")},
    ReturnValues="ALL_NEW",
)["Attributes"]
equal("update_item.decimal_add_exact", updated["price"], Decimal("0.3"))
updated = table.update_item(
    Key={"date": "num", "time": "0"},
    UpdateExpression="SET remaining = qty - :one, price = price + :tiny",
    ExpressionAttributeValues={":one": Decimal(1), ":tiny": Decimal("0.0000000000000000000000000000000000001")},
    ReturnValues="UPDATED_NEW",
)["Attributes"]
equal("update_item.decimal_sub", updated["remaining"], Decimal(2))
equal("update_item.decimal_38_digits", updated["price"], Decimal("0.3000000000000000000000000000000000001"))
big = Decimal("99999999999999999999999999999999999999")
table.put_item(Item={"date": "num", "time": "1", "v": big})
equal("decimal.38_nines", table.get_item(Key={"date": "num", "time": "1"})["Item"]["v"], big)
conditional = table.update_item(
    Key={"date": "num", "time": "0"},
    UpdateExpression="SET qty = qty + :one",
    ConditionExpression=Attr("qty").eq(3),
    ExpressionAttributeValues={":one": 1},
    ReturnValues="UPDATED_NEW",
)["Attributes"]
equal("update_item.condition_attr", conditional["qty"], Decimal(4))
try:
    table.update_item(
        Key={"date": "num", "time": "0"},
        UpdateExpression="SET qty = :z",
        ConditionExpression=Attr("qty").eq(3),
        ExpressionAttributeValues={":z": 0},
    )
    check("update_item.condition_fails", False, "update succeeded")
except dynamodb.meta.client.exceptions.ConditionalCheckFailedException:
    check("update_item.condition_fails", True)

finish()
