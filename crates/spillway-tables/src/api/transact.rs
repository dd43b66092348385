//! TransactWriteItems and TransactGetItems. A write transaction is one writer job: every
//! condition is evaluated against the items as stored, and either all writes commit (one
//! fsync) or none do and the client gets TransactionCanceledException with a reason per item,
//! in order. A `ClientRequestToken` is remembered for 10 minutes with a fingerprint of the
//! request: the same request again changes nothing and succeeds, another request with the same
//! token is IdempotentParameterMismatchException. Reads come from one snapshot, so a
//! TransactGetItems sees one consistent state.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Ctx;
use super::capacity::{self, Consumed};
use super::exprs;
use super::input::*;
use super::items::{
    check_index_keys, check_size, check_update_paths, conditional, item_key, stored_key, updated,
    write_consumed,
};
use crate::clock;
use crate::error::{CancellationReason, TablesError};
use crate::expr::project;
use crate::store::items_table;
use crate::store::writer::{Decision, Refused, Token, WriteError, WriteOp};
use crate::value::{item_size, item_to_json};

const MAX_ITEMS: usize = 100;
/// Largest transaction, in bytes of items (DynamoDB's 4 MB).
const MAX_BYTES: usize = 4 * 1024 * 1024;

fn transact_items(input: &Input) -> Result<&Vec<Value>, TablesError> {
    let items = opt_array(input, "TransactItems")?.ok_or_else(|| {
        TablesError::constraint("null", "transactItems", "Member must not be null")
    })?;
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(TablesError::constraint(
            "'[...]'",
            "transactItems",
            if items.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 100"
            },
        ));
    }
    Ok(items)
}

pub async fn transact_write(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let items = transact_items(input)?;
    let report = capacity::report(input)?;
    let token = match opt_str(input, "ClientRequestToken")? {
        Some(t) if t.is_empty() || t.len() > 36 => {
            return Err(TablesError::constraint(
                &format!("'{t}'"),
                "clientRequestToken",
                "Member must have length less than or equal to 36",
            ));
        }
        Some(t) => {
            let fingerprint: [u8; 32] =
                Sha256::digest(Value::Array(items.clone()).to_string().as_bytes()).into();
            Some(Token {
                token: t.to_owned(),
                fingerprint,
            })
        }
        None => None,
    };
    let mut ops = Vec::with_capacity(items.len());
    let mut metas = Vec::with_capacity(items.len());
    let mut return_old = Vec::with_capacity(items.len());
    let mut seen = BTreeSet::new();
    let mut bytes = 0usize;
    for entry in items {
        let entry = as_obj(entry)?;
        let kinds: Vec<&str> = ["ConditionCheck", "Put", "Delete", "Update"]
            .into_iter()
            .filter(|k| entry.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        let [kind] = kinds.as_slice() else {
            return Err(TablesError::Validation(
                "TransactItems can only contain one of Check, Put, Update or Delete".into(),
            ));
        };
        let op = opt_obj(entry, kind)?
            .ok_or_else(|| TablesError::Serialization("expected a structure".into()))?;
        let name = table_name(op, "TableName")?;
        let action = match *kind {
            "ConditionCheck" => "ConditionCheckItem",
            "Put" => "PutItem",
            "Delete" => "DeleteItem",
            _ => "UpdateItem",
        };
        ctx.authorize(action, name, None)?;
        let meta = ctx.tables.require(name)?;
        let mut subs = exprs::substitutions(op)?;
        let condition = exprs::condition(op, &mut subs)?;
        let (key, decide) = match *kind {
            "Put" => {
                let item = req_item(op, "Item")?;
                let key = item_key(&meta, &item)?;
                check_size(&item).map_err(TablesError::Validation)?;
                check_index_keys(&meta, &item).map_err(TablesError::Validation)?;
                bytes += item_size(&item);
                (
                    key,
                    conditional(condition, move |_| Ok(Decision::Put(item))),
                )
            }
            "Delete" => {
                let key_item = req_item(op, "Key")?;
                let key = stored_key(&meta, &key_item)?;
                (
                    key,
                    conditional(condition, |old| {
                        Ok(if old.is_some() {
                            Decision::Delete
                        } else {
                            Decision::Keep
                        })
                    }),
                )
            }
            "ConditionCheck" => {
                let key_item = req_item(op, "Key")?;
                let key = stored_key(&meta, &key_item)?;
                if condition.is_none() {
                    return Err(TablesError::constraint(
                        "null",
                        "transactItems.member.conditionCheck.conditionExpression",
                        "Member must not be null",
                    ));
                }
                (key, conditional(condition, |_| Ok(Decision::Keep)))
            }
            _ => {
                let key_item = req_item(op, "Key")?;
                let key = stored_key(&meta, &key_item)?;
                let update = exprs::update(op, &mut subs)?;
                let Some(update) = update else {
                    return Err(TablesError::constraint(
                        "null",
                        "transactItems.member.update.updateExpression",
                        "Member must not be null",
                    ));
                };
                check_update_paths(&meta, &update)?;
                let for_decide = Arc::new((*meta).clone());
                (
                    key,
                    conditional(condition, move |old| {
                        Ok(Decision::Put(updated(
                            &for_decide,
                            &key_item,
                            Some(&update),
                            old,
                        )?))
                    }),
                )
            }
        };
        exprs::finish(&subs)?;
        if !seen.insert((meta.id, key.clone())) {
            return Err(TablesError::Validation(
                "Transaction request cannot include multiple operations on one item".into(),
            ));
        }
        return_old.push(
            opt_enum(
                op,
                "ReturnValuesOnConditionCheckFailure",
                &["ALL_OLD", "NONE"],
            )? == Some("ALL_OLD"),
        );
        ops.push(WriteOp {
            table: meta.name.clone(),
            table_id: meta.id,
            key,
            decide,
        });
        metas.push(meta);
    }
    if bytes > MAX_BYTES {
        return Err(TablesError::Validation(
            "Transaction size has exceeded the maximum allowed size of 4 MB".into(),
        ));
    }
    let results = ctx
        .tables
        .writer
        .write(ops, true, token, clock::now())
        .await
        .map_err(|e| match e {
            WriteError::Cancelled(reasons) => TablesError::TransactionCanceled {
                reasons: reasons
                    .into_iter()
                    .zip(&return_old)
                    .map(|(r, old)| match r {
                        None => CancellationReason {
                            code: "None".into(),
                            message: None,
                            item: None,
                        },
                        Some(Refused::Condition { old: item }) => CancellationReason {
                            code: "ConditionalCheckFailed".into(),
                            message: Some("The conditional request failed".into()),
                            item: if *old { item } else { None },
                        },
                        Some(Refused::Invalid(m)) => CancellationReason {
                            code: "ValidationError".into(),
                            message: Some(m),
                            item: None,
                        },
                    })
                    .collect(),
            },
            WriteError::TokenMismatch => TablesError::IdempotentParameterMismatch(
                "The request uses the same client token as a previous, but non-identical request. Do not reuse a client token with different requests, unless the requests are identical.".into(),
            ),
            WriteError::NoTable => TablesError::no_table(),
            other => TablesError::Internal(other.to_string()),
        })?;
    let mut consumed: Vec<Consumed> = Vec::new();
    for (meta, r) in metas.iter().zip(results) {
        let Ok(applied) = r else { continue };
        let c = write_consumed(meta, &applied, 2.0);
        ctx.tables.metrics.consumed(&meta.name, 0.0, c.total());
        match consumed.iter_mut().find(|x| x.table == meta.name) {
            Some(x) => x.write += c.total(),
            None => consumed.push(c),
        }
    }
    let mut out = json!({});
    let rendered: Vec<Value> = consumed.iter().filter_map(|c| c.render(report)).collect();
    if !rendered.is_empty() {
        out["ConsumedCapacity"] = Value::Array(rendered);
    }
    Ok(out)
}

pub async fn transact_get(ctx: &Ctx<'_>, input: &Input) -> Result<Value, TablesError> {
    let items = transact_items(input)?;
    let report = capacity::report(input)?;
    let mut plan = Vec::with_capacity(items.len());
    for entry in items {
        let entry = as_obj(entry)?;
        let Some(get) = opt_obj(entry, "Get")? else {
            return Err(TablesError::constraint(
                "null",
                "transactItems.member.get",
                "Member must not be null",
            ));
        };
        let name = table_name(get, "TableName")?;
        ctx.authorize("GetItem", name, None)?;
        let meta = ctx.tables.require(name)?;
        let key_item = req_item(get, "Key")?;
        let key = stored_key(&meta, &key_item)?;
        let mut subs = exprs::substitutions(get)?;
        let projection = exprs::projection(get, &mut subs)?;
        exprs::finish(&subs)?;
        plan.push((meta, key, projection));
    }
    let snapshot = ctx.tables.db.snapshot()?;
    let mut responses = Vec::with_capacity(plan.len());
    let mut consumed: Vec<Consumed> = Vec::new();
    for (meta, key, projection) in plan {
        let found = snapshot.get(&items_table(meta.id), &key)?;
        let units = capacity::read_units(found.as_ref().map(item_size).unwrap_or(0), true) * 2.0;
        ctx.tables.metrics.consumed(&meta.name, units, 0.0);
        match consumed.iter_mut().find(|c| c.table == meta.name) {
            Some(c) => c.read += units,
            None => consumed.push(Consumed {
                table: meta.name.clone(),
                read: units,
                ..Consumed::default()
            }),
        }
        responses.push(match found {
            Some(item) => {
                let item = match &projection {
                    Some(p) => project(&item, p),
                    None => item,
                };
                json!({"Item": item_to_json(&item)})
            }
            None => json!({}),
        });
    }
    let mut out = json!({"Responses": responses});
    let rendered: Vec<Value> = consumed.iter().filter_map(|c| c.render(report)).collect();
    if !rendered.is_empty() {
        out["ConsumedCapacity"] = Value::Array(rendered);
    }
    Ok(out)
}
