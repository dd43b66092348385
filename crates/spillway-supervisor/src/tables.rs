//! The stack's DynamoDB tables: the store opened in `.spillway/tables/`, and each
//! `[tables.NAME]` made to exist on `up`. A table kept from an earlier run keeps its items; a
//! stack file that changed its key is refused (DynamoDB cannot change a table's key either:
//! delete the table, or the state directory, to start over), new indexes are added and
//! backfilled, and the TTL attribute follows the file.

use std::sync::Arc;

use serde_json::{Value, json};
use spillway_stack::model::{KeyAttribute, Table};
use spillway_tables::Tables;

use crate::error::SupervisorError;
use spillway_stack::LoadedStack;

fn failure(name: &str, detail: impl std::fmt::Display) -> SupervisorError {
    SupervisorError::Queues {
        what: format!("tables.{name}"),
        detail: detail.to_string(),
    }
}

fn attribute(a: &KeyAttribute) -> Value {
    json!({"AttributeName": a.name, "AttributeType": format!("{:?}", a.key_type)})
}

fn key_schema(hash: &KeyAttribute, range: Option<&KeyAttribute>) -> Value {
    let mut v = vec![json!({"AttributeName": hash.name, "KeyType": "HASH"})];
    if let Some(r) = range {
        v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    Value::Array(v)
}

/// The CreateTable request a `[tables.NAME]` section stands for: on-demand billing, global
/// indexes projecting every attribute.
fn create_request(name: &str, spec: &Table) -> Value {
    let mut defs: Vec<&KeyAttribute> = vec![&spec.hash_key];
    defs.extend(spec.range_key.as_ref());
    for index in spec.indexes.values() {
        defs.push(&index.hash_key);
        defs.extend(index.range_key.as_ref());
    }
    let mut seen = std::collections::BTreeSet::new();
    defs.retain(|d| seen.insert(d.name.clone()));
    let mut request = json!({
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": defs.iter().map(|d| attribute(d)).collect::<Vec<_>>(),
        "KeySchema": key_schema(&spec.hash_key, spec.range_key.as_ref()),
    });
    if !spec.indexes.is_empty() {
        request["GlobalSecondaryIndexes"] = Value::Array(
            spec.indexes
                .iter()
                .map(|(iname, i)| {
                    json!({
                        "IndexName": iname,
                        "KeySchema": key_schema(&i.hash_key, i.range_key.as_ref()),
                        "Projection": {"ProjectionType": "ALL"},
                    })
                })
                .collect(),
        );
    }
    request
}

pub async fn start(loaded: &LoadedStack) -> Result<Arc<Tables>, SupervisorError> {
    let stack = &loaded.stack;
    let dir = loaded.state_dir().join("tables");
    let tables = Tables::open(&dir, &stack.stack.region, &stack.stack.account).map_err(|e| {
        SupervisorError::Queues {
            what: format!("the tables in {}", dir.display()),
            detail: e.to_string(),
        }
    })?;
    for (name, spec) in &stack.tables {
        let request = create_request(name, spec);
        let Value::Object(request) = request else {
            continue;
        };
        let wanted =
            spillway_tables::api::table_from_request(&request).map_err(|e| failure(name, e))?;
        tables
            .ensure_from_stack(wanted, spec.ttl_attribute.as_deref())
            .await
            .map_err(|e| failure(name, e))?;
    }
    Ok(tables)
}
