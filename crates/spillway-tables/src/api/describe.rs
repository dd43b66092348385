//! A table as DescribeTable (and CreateTable, UpdateTable, DeleteTable) report it.

use serde_json::{Value, json};

use crate::key::KeySchema;
use crate::schema::{
    BillingMode, IndexKind, IndexMeta, IndexStatus, Projection, TableMeta, Throughput,
};
use crate::service::Tables;

pub fn key_schema(k: &KeySchema) -> Value {
    let mut v = vec![json!({"AttributeName": k.hash.name, "KeyType": "HASH"})];
    if let Some(r) = &k.range {
        v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    Value::Array(v)
}

fn projection(p: &Projection) -> Value {
    match p {
        Projection::Include(list) => json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": list}),
        other => json!({"ProjectionType": other.type_name()}),
    }
}

fn throughput(t: &Throughput, billing: BillingMode) -> Value {
    let (r, w) = match billing {
        BillingMode::Provisioned => (t.read, t.write),
        BillingMode::PayPerRequest => (0, 0),
    };
    let mut v = json!({
        "NumberOfDecreasesToday": t.decreases_today,
        "ReadCapacityUnits": r,
        "WriteCapacityUnits": w,
    });
    if let Some(at) = t.last_increase {
        v["LastIncreaseDateTime"] = json!(at);
    }
    if let Some(at) = t.last_decrease {
        v["LastDecreaseDateTime"] = json!(at);
    }
    v
}

/// `status` overrides the table's status (CREATING in CreateTable's answer, DELETING in
/// DeleteTable's, UPDATING in UpdateTable's).
pub fn describe(tables: &Tables, meta: &TableMeta, status: &str) -> Value {
    let snapshot = tables.db.snapshot().ok();
    let stats = |id: u64| {
        snapshot
            .as_ref()
            .and_then(|s| s.stats(id).ok())
            .unwrap_or((0, 0))
    };
    let (count, bytes) = stats(meta.id);
    let arn = tables.table_arn(&meta.name);
    let mut t = json!({
        "AttributeDefinitions": meta.attributes.iter().map(|a| json!({
            "AttributeName": a.name, "AttributeType": a.ty.descriptor()
        })).collect::<Vec<_>>(),
        "TableName": meta.name,
        "KeySchema": key_schema(&meta.key),
        "TableStatus": status,
        "CreationDateTime": meta.created,
        "ProvisionedThroughput": throughput(&meta.throughput, meta.billing),
        "TableSizeBytes": bytes,
        "ItemCount": count,
        "TableArn": arn,
        "TableId": meta.table_uuid,
        "DeletionProtectionEnabled": meta.deletion_protection,
        "TableClassSummary": {"TableClass": meta.table_class},
    });
    if meta.billing == BillingMode::PayPerRequest {
        t["BillingModeSummary"] = json!({
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": meta.created,
        });
    }
    let index = |i: &IndexMeta| {
        let (count, bytes) = stats(i.id);
        let mut v = json!({
            "IndexName": i.name,
            "KeySchema": key_schema(&i.key),
            "Projection": projection(&i.projection),
            "IndexSizeBytes": bytes,
            "ItemCount": count,
            "IndexArn": format!("{arn}/index/{}", i.name),
        });
        if i.kind == IndexKind::Global {
            let creating = i.status == IndexStatus::Creating;
            v["IndexStatus"] = json!(if creating { "CREATING" } else { "ACTIVE" });
            if creating {
                v["Backfilling"] = json!(true);
            }
            v["ProvisionedThroughput"] =
                throughput(&i.throughput.unwrap_or_default(), meta.billing);
        }
        v
    };
    let gsis: Vec<Value> = meta
        .indexes
        .iter()
        .filter(|i| i.kind == IndexKind::Global)
        .map(index)
        .collect();
    let lsis: Vec<Value> = meta
        .indexes
        .iter()
        .filter(|i| i.kind == IndexKind::Local)
        .map(index)
        .collect();
    if !gsis.is_empty() {
        t["GlobalSecondaryIndexes"] = Value::Array(gsis);
    }
    if !lsis.is_empty() {
        t["LocalSecondaryIndexes"] = Value::Array(lsis);
    }
    t
}
