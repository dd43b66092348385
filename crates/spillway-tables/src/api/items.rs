//! PutItem, GetItem, DeleteItem and UpdateItem, and the checks they share with the batch and
//! transaction actions (item size, index key types, ReturnValues).

use std::sync::Arc;

use serde_json::{Value, json};

use super::Ctx;
use super::capacity::{self, Consumed, Report};
use super::exprs;
use super::input::*;
use crate::clock;
use crate::error::TablesError;
use crate::expr::{Condition, Path, Update, project};
use crate::key::{ScalarType, encode_key};
use crate::schema::TableMeta;
use crate::store::items_table;
use crate::store::writer::{Applied, Decide, Decision, Refused, WriteError, WriteOp};
use crate::value::{AttributeValue, Item, item_size, item_to_json};

/// The stored key of a `Key` parameter, or DynamoDB's refusal.
pub fn stored_key(meta: &TableMeta, key_item: &Item) -> Result<Vec<u8>, TablesError> {
    let values = meta
        .key
        .of_key(key_item)
        .map_err(|e| TablesError::Validation(e.to_string()))?;
    Ok(encode_key(&values))
}

/// The stored key of an item being written, or DynamoDB's refusal.
pub fn item_key(meta: &TableMeta, item: &Item) -> Result<Vec<u8>, TablesError> {
    let values = meta
        .key
        .of_item(item)
        .map_err(|e| TablesError::Validation(e.to_string()))?;
    Ok(encode_key(&values))
}

/// Largest item, in bytes as DynamoDB counts them.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

pub fn check_size(item: &Item) -> Result<(), String> {
    if item_size(item) > MAX_ITEM_BYTES {
        return Err("Item size has exceeded the maximum allowed size".into());
    }
    Ok(())
}

/// An item's index key attributes must have the index's types (an item without them is just
/// not in the index).
pub fn check_index_keys(meta: &TableMeta, item: &Item) -> Result<(), String> {
    for index in &meta.indexes {
        for attr in index.key.names() {
            let Some(v) = item.get(attr) else { continue };
            let Some(ty) = meta
                .attributes
                .iter()
                .find(|a| a.name == attr)
                .map(|a| a.ty)
            else {
                continue;
            };
            let ok = matches!(
                (ty, v),
                (ScalarType::S, AttributeValue::S(_))
                    | (ScalarType::N, AttributeValue::N(_))
                    | (ScalarType::B, AttributeValue::B(_))
            );
            if !ok {
                return Err(format!(
                    "One or more parameter values were invalid: Type mismatch for Index Key {attr} Expected: {} Actual: {} IndexName: {}",
                    ty.descriptor(),
                    v.value_type().descriptor(),
                    index.name
                ));
            }
            let empty = match v {
                AttributeValue::S(s) => s.is_empty(),
                AttributeValue::B(b) => b.is_empty(),
                _ => false,
            };
            if empty {
                return Err(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {} value. IndexName: {}, IndexKey: {attr}",
                    if ty == ScalarType::S {
                        "string"
                    } else {
                        "binary"
                    },
                    index.name
                ));
            }
        }
    }
    Ok(())
}

/// `ReturnValues`, checked against what the action allows.
pub fn return_values<'a>(input: &'a Input, allowed: &[&str]) -> Result<&'a str, TablesError> {
    let v = opt_enum(
        input,
        "ReturnValues",
        &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
    )?
    .unwrap_or("NONE");
    if !allowed.contains(&v) {
        return Err(TablesError::Validation(
            "Return values set to invalid value".into(),
        ));
    }
    Ok(v)
}

/// Whether a failed condition should return the item (`ReturnValuesOnConditionCheckFailure`).
pub fn old_on_failure(input: &Input) -> Result<bool, TablesError> {
    Ok(opt_enum(
        input,
        "ReturnValuesOnConditionCheckFailure",
        &["ALL_OLD", "NONE"],
    )? == Some("ALL_OLD"))
}

/// The decision of a conditional write: the condition against the stored item (an absent
/// item is an empty one), then `then`.
pub fn conditional(
    condition: Option<Condition>,
    then: impl FnOnce(Option<&Item>) -> Result<Decision, Refused> + Send + 'static,
) -> Decide {
    Box::new(move |old| {
        if let Some(c) = &condition {
            let empty = Item::new();
            if !c.eval(old.unwrap_or(&empty)) {
                return Err(Refused::Condition { old: old.cloned() });
            }
        }
        then(old)
    })
}

/// The refusal a client sees for one failed write.
pub fn write_error(e: WriteError, table: &str, return_old: bool, ctx: &Ctx<'_>) -> TablesError {
    match e {
        WriteError::NoTable => TablesError::no_table(),
        WriteError::Refused(Refused::Condition { old }) => {
            ctx.tables.metrics.conditional_check_failed(table);
            TablesError::ConditionalCheckFailed {
                item: if return_old { old } else { None },
            }
        }
        WriteError::Refused(Refused::Invalid(m)) => TablesError::Validation(m),
        other => TablesError::Internal(other.to_string()),
    }
}

/// Runs one write and returns its result (or the client's refusal).
pub async fn write_one(
    ctx: &Ctx<'_>,
    meta: &TableMeta,
    key: Vec<u8>,
    decide: Decide,
    return_old: bool,
) -> Result<Applied, TablesError> {
    let op = WriteOp {
        table: meta.name.clone(),
        table_id: meta.id,
        key,
        decide,
    };
    let mut results = ctx
        .tables
        .writer
        .write(vec![op], false, None, clock::now())
        .await
        .map_err(|e| write_error(e, &meta.name, return_old, ctx))?;
    match results.pop() {
        Some(Ok(applied)) => Ok(applied),
        Some(Err(e)) => Err(write_error(e, &meta.name, return_old, ctx)),
        None => Err(TablesError::Internal(
            "the writer returned no result".into(),
        )),
    }
}

/// Capacity of a write: units for the larger of the old and new item, and for each index an
/// entry changed in.
pub fn write_consumed(meta: &TableMeta, applied: &Applied, factor: f64) -> Consumed {
    let size = |i: &Option<Item>| i.as_ref().map(item_size).unwrap_or(0);
    let mut c = Consumed {
        table: meta.name.clone(),
        write: capacity::write_units(size(&applied.old).max(size(&applied.new))) * factor,
        ..Consumed::default()
    };
    for index in &meta.indexes {
        let in_old = applied
            .old
            .as_ref()
            .and_then(|o| index.key.of_indexed(o))
            .is_some();
        let in_new = applied
            .new
            .as_ref()
            .and_then(|n| index.key.of_indexed(n))
            .is_some();
        if in_old || in_new {
            let units = capacity::write_units(size(&applied.new).max(size(&applied.old))) * factor;
            c.indexes.push((
                index.name.clone(),
                0.0,
                units,
                index.kind == crate::schema::IndexKind::Local,
            ));
        }
    }
    c
}

fn finish_write(ctx: &Ctx<'_>, mut out: Value, consumed: Consumed, report: Report) -> Value {
    ctx.tables.metrics.consumed(
        &consumed.table,
        consumed.read,
        consumed.total() - consumed.read,
    );
    if let Some(c) = consumed.render(report) {
        out["ConsumedCapacity"] = c;
    }
    out
}

fn attributes(out: &mut Value, item: Option<&Item>) {
    if let Some(i) = item.filter(|i| !i.is_empty()) {
        out["Attributes"] = item_to_json(i);
    }
}

pub async fn put_item(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let name = table_name(input, "TableName")?;
    let item = req_item(input, "Item")?;
    let meta = ctx.tables.require(name)?;
    let key = item_key(&meta, &item)?;
    check_size(&item).map_err(TablesError::Validation)?;
    check_index_keys(&meta, &item).map_err(TablesError::Validation)?;
    let rv = return_values(input, &["NONE", "ALL_OLD"])?;
    let report = capacity::report(input)?;
    let return_old = old_on_failure(input)?;
    let mut subs = exprs::substitutions(input)?;
    let condition = exprs::condition(input, &mut subs)?;
    exprs::finish(&subs)?;
    let decide = conditional(condition, move |_| Ok(Decision::Put(item)));
    let applied = write_one(ctx, &meta, key, decide, return_old).await?;
    let mut out = json!({});
    if rv == "ALL_OLD" {
        attributes(&mut out, applied.old.as_ref());
    }
    Ok(finish_write(
        ctx,
        out,
        write_consumed(&meta, &applied, 1.0),
        report,
    ))
}

pub async fn delete_item(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let name = table_name(input, "TableName")?;
    let key_item = req_item(input, "Key")?;
    let meta = ctx.tables.require(name)?;
    let key = stored_key(&meta, &key_item)?;
    let rv = return_values(input, &["NONE", "ALL_OLD"])?;
    let report = capacity::report(input)?;
    let return_old = old_on_failure(input)?;
    let mut subs = exprs::substitutions(input)?;
    let condition = exprs::condition(input, &mut subs)?;
    exprs::finish(&subs)?;
    let decide = conditional(condition, |old| {
        Ok(if old.is_some() {
            Decision::Delete
        } else {
            Decision::Keep
        })
    });
    let applied = write_one(ctx, &meta, key, decide, return_old).await?;
    let mut out = json!({});
    if rv == "ALL_OLD" {
        attributes(&mut out, applied.old.as_ref());
    }
    let consumed = write_consumed(&meta, &applied, 1.0);
    Ok(finish_write(ctx, out, consumed, report))
}

/// Refuses updates of key attributes, with DynamoDB's message.
pub fn check_update_paths(meta: &TableMeta, update: &Update) -> Result<(), TablesError> {
    for p in update.paths() {
        if meta.key.is_key_attribute(p.top()) {
            return Err(TablesError::invalid(format!(
                "Cannot update attribute {}. This attribute is part of the key",
                p.top()
            )));
        }
    }
    Ok(())
}

/// The new item of an update: the stored one (or the key alone) with the update applied,
/// checked for size and index key types.
pub fn updated(
    meta: &TableMeta,
    key_item: &Item,
    update: Option<&Update>,
    old: Option<&Item>,
) -> Result<Item, Refused> {
    let mut new = old.cloned().unwrap_or_else(|| key_item.clone());
    if let Some(u) = update {
        u.apply(&mut new)
            .map_err(|e| Refused::Invalid(e.to_string()))?;
    }
    check_size(&new).map_err(Refused::Invalid)?;
    check_index_keys(meta, &new).map_err(Refused::Invalid)?;
    Ok(new)
}

pub async fn update_item(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let name = table_name(input, "TableName")?;
    let key_item = req_item(input, "Key")?;
    let meta = ctx.tables.require(name)?;
    let key = stored_key(&meta, &key_item)?;
    let rv = return_values(
        input,
        &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
    )?
    .to_owned();
    let report = capacity::report(input)?;
    let return_old = old_on_failure(input)?;
    let mut subs = exprs::substitutions(input)?;
    let update = exprs::update(input, &mut subs)?;
    let condition = exprs::condition(input, &mut subs)?;
    exprs::finish(&subs)?;
    if let Some(u) = &update {
        check_update_paths(&meta, u)?;
    }
    let paths: Vec<Path> = update
        .as_ref()
        .map(|u| u.paths().cloned().collect())
        .unwrap_or_default();
    let for_decide = Arc::new(meta.clone());
    let decide = conditional(condition, move |old| {
        Ok(Decision::Put(updated(
            &for_decide,
            &key_item,
            update.as_ref(),
            old,
        )?))
    });
    let applied = write_one(ctx, &meta, key, decide, return_old).await?;
    let mut out = json!({});
    match rv.as_str() {
        "ALL_OLD" => attributes(&mut out, applied.old.as_ref()),
        "ALL_NEW" => attributes(&mut out, applied.new.as_ref()),
        "UPDATED_OLD" => {
            let projected = applied.old.as_ref().map(|o| project(o, &paths));
            attributes(&mut out, projected.as_ref());
        }
        "UPDATED_NEW" => {
            let projected = applied.new.as_ref().map(|n| project(n, &paths));
            attributes(&mut out, projected.as_ref());
        }
        _ => {}
    }
    Ok(finish_write(
        ctx,
        out,
        write_consumed(&meta, &applied, 1.0),
        report,
    ))
}

pub async fn get_item(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let name = table_name(input, "TableName")?;
    let key_item = req_item(input, "Key")?;
    let meta = ctx.tables.require(name)?;
    let key = stored_key(&meta, &key_item)?;
    let consistent = opt_bool(input, "ConsistentRead")?.unwrap_or(false);
    let report = capacity::report(input)?;
    let mut subs = exprs::substitutions(input)?;
    let projection = exprs::projection(input, &mut subs)?;
    exprs::finish(&subs)?;
    let snapshot = ctx.tables.db.snapshot()?;
    let found = snapshot.get(&items_table(meta.id), &key)?;
    let size = found.as_ref().map(item_size).unwrap_or(0);
    let mut out = json!({});
    if let Some(item) = found {
        let item = match &projection {
            Some(p) => project(&item, p),
            None => item,
        };
        out["Item"] = item_to_json(&item);
    }
    let consumed = Consumed {
        table: meta.name.clone(),
        read: capacity::read_units(size, consistent),
        ..Consumed::default()
    };
    ctx.tables.metrics.consumed(&meta.name, consumed.read, 0.0);
    if let Some(c) = consumed.render(report) {
        out["ConsumedCapacity"] = c;
    }
    Ok(out)
}
