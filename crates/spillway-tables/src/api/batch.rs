//! BatchGetItem and BatchWriteItem. spillway never throttles, so nothing is left unprocessed
//! for capacity; `UnprocessedKeys` carries what did not fit in one 16 MB answer, as DynamoDB
//! does, and `UnprocessedItems` is always empty (every write of a batch commits together).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::Ctx;
use super::capacity::{self, Consumed};
use super::exprs;
use super::input::*;
use super::items::{
    check_index_keys, check_size, item_key, stored_key, write_consumed, write_error,
};
use crate::clock;
use crate::error::TablesError;
use crate::expr::project;
use crate::store::items_table;
use crate::store::writer::{Decision, WriteOp};
use crate::value::{item_from_json, item_size, item_to_json};

const MAX_GET_KEYS: usize = 100;
const MAX_WRITES: usize = 25;
/// Largest BatchGetItem answer; keys past it come back as UnprocessedKeys.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

fn request_items<'a>(input: &'a Input, action: &str) -> Result<&'a Input, TablesError> {
    match opt_obj(input, "RequestItems")? {
        None => Err(TablesError::constraint(
            "null",
            "requestItems",
            "Member must not be null",
        )),
        Some(m) if m.is_empty() => Err(TablesError::Validation(format!(
            "The requestItems parameter is required for {action}"
        ))),
        Some(m) => Ok(m),
    }
}

pub async fn batch_get(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let requests = request_items(input, "BatchGetItem")?;
    let report = capacity::report(input)?;
    let total: usize = requests
        .values()
        .map(|r| {
            r.get("Keys")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0)
        })
        .sum();
    for (name, r) in requests {
        if r.get("Keys")
            .and_then(Value::as_array)
            .is_some_and(|k| k.len() > MAX_GET_KEYS)
        {
            return Err(TablesError::constraint(
                "'[...]'",
                &format!("requestItems.{name}.member.keys"),
                "Member must have length less than or equal to 100",
            ));
        }
    }
    if total > MAX_GET_KEYS {
        return Err(TablesError::Validation(
            "Too many items requested for the BatchGetItem call".into(),
        ));
    }
    struct One {
        name: String,
        meta: std::sync::Arc<crate::schema::TableMeta>,
        keys: Vec<(Value, Vec<u8>)>,
        projection: Option<Vec<crate::expr::Path>>,
        consistent: bool,
        raw: Input,
    }
    let mut plan = Vec::new();
    for (name, request) in requests {
        check_table_name(name, "requestItems.key")?;
        ctx.authorize("BatchGetItem", name, None)?;
        let request = as_obj(request)?;
        let meta = ctx.tables.require(name)?;
        let keys = opt_array(request, "Keys")?.ok_or_else(|| {
            TablesError::constraint(
                "null",
                "requestItems.member.keys",
                "Member must not be null",
            )
        })?;
        if keys.is_empty() {
            return Err(TablesError::constraint(
                "[]",
                "requestItems.member.keys",
                "Member must have length greater than or equal to 1",
            ));
        }
        let mut encoded = Vec::with_capacity(keys.len());
        let mut seen = BTreeSet::new();
        for k in keys {
            let key_item = item_from_json(k).map_err(value_error)?;
            let e = stored_key(&meta, &key_item)?;
            if !seen.insert(e.clone()) {
                return Err(TablesError::Validation(
                    "Provided list of item keys contains duplicates".into(),
                ));
            }
            encoded.push((k.clone(), e));
        }
        let mut subs = exprs::substitutions(request)?;
        let projection = exprs::projection(request, &mut subs)?;
        exprs::finish(&subs)?;
        plan.push(One {
            name: name.clone(),
            meta,
            keys: encoded,
            projection,
            consistent: opt_bool(request, "ConsistentRead")?.unwrap_or(false),
            raw: request.clone(),
        });
    }
    let snapshot = ctx.tables.db.snapshot()?;
    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut answer_bytes = 0usize;
    let mut consumed = Vec::new();
    for one in plan {
        let mut items = Vec::new();
        let mut left = Vec::new();
        let mut read_bytes = 0usize;
        for (raw, key) in &one.keys {
            if answer_bytes >= MAX_ANSWER_BYTES {
                left.push(raw.clone());
                continue;
            }
            if let Some(item) = snapshot.get(&items_table(one.meta.id), key)? {
                let size = item_size(&item);
                read_bytes += size;
                answer_bytes += size;
                let item = match &one.projection {
                    Some(p) => project(&item, p),
                    None => item,
                };
                items.push(item_to_json(&item));
            }
        }
        responses.insert(one.name.clone(), Value::Array(items));
        if !left.is_empty() {
            let mut again = one.raw.clone();
            again.insert("Keys".into(), Value::Array(left));
            unprocessed.insert(one.name.clone(), Value::Object(again));
        }
        let units = capacity::read_units(read_bytes, one.consistent).max(if one.keys.is_empty() {
            0.0
        } else {
            0.5
        });
        ctx.tables.metrics.consumed(&one.name, units, 0.0);
        consumed.push(Consumed {
            table: one.name,
            read: units,
            ..Consumed::default()
        });
    }
    let mut out = json!({"Responses": responses, "UnprocessedKeys": unprocessed});
    let rendered: Vec<Value> = consumed.iter().filter_map(|c| c.render(report)).collect();
    if !rendered.is_empty() {
        out["ConsumedCapacity"] = Value::Array(rendered);
    }
    Ok(out)
}

pub async fn batch_write(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let requests = request_items(input, "BatchWriteItem")?;
    let report = capacity::report(input)?;
    let total: usize = requests
        .values()
        .map(|r| r.as_array().map(Vec::len).unwrap_or(0))
        .sum();
    if total > MAX_WRITES {
        return Err(TablesError::Validation(format!(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {MAX_WRITES}, Member must have length greater than or equal to 1]"
        )));
    }
    let mut ops = Vec::new();
    let mut metas = Vec::new();
    for (name, list) in requests {
        check_table_name(name, "requestItems.key")?;
        ctx.authorize("BatchWriteItem", name, None)?;
        let meta = ctx.tables.require(name)?;
        let Value::Array(list) = list else {
            return Err(TablesError::Serialization(
                "Unexpected value type in payload".into(),
            ));
        };
        if list.is_empty() {
            return Err(TablesError::Validation(format!(
                "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {MAX_WRITES}, Member must have length greater than or equal to 1]"
            )));
        }
        let mut seen = BTreeSet::new();
        for request in list {
            let request = as_obj(request)?;
            let put = opt_obj(request, "PutRequest")?;
            let delete = opt_obj(request, "DeleteRequest")?;
            let (key, decision) = match (put, delete) {
                (Some(p), None) => {
                    let item = req_item(p, "Item")?;
                    let key = item_key(&meta, &item)?;
                    check_size(&item).map_err(TablesError::Validation)?;
                    check_index_keys(&meta, &item).map_err(TablesError::Validation)?;
                    (key, Decision::Put(item))
                }
                (None, Some(d)) => {
                    let key_item = req_item(d, "Key")?;
                    let key = stored_key(&meta, &key_item)?;
                    (key, Decision::Delete)
                }
                _ => {
                    return Err(TablesError::Validation(
                        "A write request must contain exactly one of PutRequest or DeleteRequest"
                            .into(),
                    ));
                }
            };
            if !seen.insert(key.clone()) {
                return Err(TablesError::Validation(
                    "Provided list of item keys contains duplicates".into(),
                ));
            }
            ops.push(WriteOp {
                table: meta.name.clone(),
                table_id: meta.id,
                key,
                decide: Box::new(move |old| {
                    Ok(match decision {
                        Decision::Delete if old.is_none() => Decision::Keep,
                        d => d,
                    })
                }),
            });
            metas.push(meta.clone());
        }
    }
    let results = ctx
        .tables
        .writer
        .write(ops, false, None, clock::now())
        .await
        .map_err(|e| write_error(e, "", false, ctx))?;
    let mut consumed: Vec<Consumed> = Vec::new();
    for (meta, r) in metas.iter().zip(results) {
        let applied = r.map_err(|e| write_error(e, &meta.name, false, ctx))?;
        let c = write_consumed(meta, &applied, 1.0);
        ctx.tables.metrics.consumed(&meta.name, 0.0, c.total());
        match consumed.iter_mut().find(|x| x.table == meta.name) {
            Some(x) => {
                x.write += c.write;
                for (n, r, w, local) in c.indexes {
                    match x.indexes.iter_mut().find(|i| i.0 == n) {
                        Some(i) => {
                            i.1 += r;
                            i.2 += w;
                        }
                        None => x.indexes.push((n, r, w, local)),
                    }
                }
            }
            None => consumed.push(c),
        }
    }
    let mut out = json!({"UnprocessedItems": {}});
    let rendered: Vec<Value> = consumed.iter().filter_map(|c| c.render(report)).collect();
    if !rendered.is_empty() {
        out["ConsumedCapacity"] = Value::Array(rendered);
    }
    Ok(out)
}
