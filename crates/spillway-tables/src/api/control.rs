//! The control plane: CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable, the
//! TTL and tag actions, DescribeLimits.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::describe::describe;
use super::input::*;
use crate::clock;
use crate::error::TablesError;
use crate::key::{KeyAttr, KeySchema, ScalarType};
use crate::schema::*;
use crate::service::Tables;
use crate::store::writer::CatalogChange;

const MAX_GSIS: usize = 20;
const MAX_LSIS: usize = 5;
const MAX_TAGS: usize = 50;
/// Attributes projected into all of a table's indexes together (DynamoDB's limit).
const MAX_PROJECTED_ATTRIBUTES: usize = 100;

fn attribute_definitions(input: &Input) -> Result<Vec<KeyAttr>, TablesError> {
    let Some(defs) = opt_array(input, "AttributeDefinitions")? else {
        return Ok(Vec::new());
    };
    let mut out: Vec<KeyAttr> = Vec::new();
    for d in defs {
        let d = as_obj(d)?;
        let name = req_str(d, "AttributeName")?;
        let ty = req_str(d, "AttributeType")?;
        let Some(ty) = ScalarType::from_descriptor(ty) else {
            return Err(TablesError::constraint(
                &format!("'{ty}'"),
                "attributeDefinitions.member.attributeType",
                "Member must satisfy enum value set: [B, N, S]",
            ));
        };
        if out.iter().any(|a| a.name == name) {
            return Err(TablesError::invalid(format!(
                "Cannot have two attributes with the same name: {name}"
            )));
        }
        out.push(KeyAttr {
            name: name.to_owned(),
            ty,
        });
    }
    Ok(out)
}

/// A `KeySchema` member: one HASH element, then optionally one RANGE element.
fn key_schema(
    input: &Input,
    defs: &[KeyAttr],
    used: &mut Vec<String>,
) -> Result<KeySchema, TablesError> {
    let Some(elements) = opt_array(input, "KeySchema")? else {
        return Err(TablesError::constraint(
            "null",
            "keySchema",
            "Member must not be null",
        ));
    };
    if elements.is_empty() || elements.len() > 2 {
        return Err(TablesError::constraint(
            "[]",
            "keySchema",
            if elements.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 2"
            },
        ));
    }
    let mut attrs = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        let e = as_obj(e)?;
        let name = req_str(e, "AttributeName")?;
        let kind = req_str(e, "KeyType")?;
        let expected = if i == 0 { "HASH" } else { "RANGE" };
        if kind != "HASH" && kind != "RANGE" {
            return Err(TablesError::constraint(
                &format!("'{kind}'"),
                "keySchema.member.keyType",
                "Member must satisfy enum value set: [HASH, RANGE]",
            ));
        }
        if kind != expected {
            return Err(TablesError::Validation(if i == 0 {
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type".into()
            } else {
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type".into()
            }));
        }
        attrs.push(name.to_owned());
    }
    if attrs.len() == 2 && attrs[0] == attrs[1] {
        return Err(TablesError::Validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name"
                .into(),
        ));
    }
    let lookup = |name: &str| -> Result<KeyAttr, TablesError> {
        defs.iter().find(|d| d.name == name).cloned().ok_or_else(|| {
            TablesError::invalid(format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                attrs.join(", "),
                defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let hash = lookup(&attrs[0])?;
    let range = match attrs.get(1) {
        Some(r) => Some(lookup(r)?),
        None => None,
    };
    for a in &attrs {
        if !used.contains(a) {
            used.push(a.clone());
        }
    }
    Ok(KeySchema { hash, range })
}

fn projection(input: &Input) -> Result<Projection, TablesError> {
    let Some(p) = opt_obj(input, "Projection")? else {
        return Err(TablesError::constraint(
            "null",
            "projection",
            "Member must not be null",
        ));
    };
    let kind = opt_enum(p, "ProjectionType", &["ALL", "KEYS_ONLY", "INCLUDE"])?;
    let non_key = opt_array(p, "NonKeyAttributes")?;
    match (kind, non_key) {
        (Some("INCLUDE"), Some(list)) => Ok(Projection::Include(
            list.iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        TablesError::Serialization("NonKeyAttributes must be strings".into())
                    })
                })
                .collect::<Result<_, _>>()?,
        )),
        (Some("INCLUDE"), None) => Err(TablesError::invalid(
            "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
        )),
        (Some(kind), Some(_)) => Err(TablesError::invalid(format!(
            "ProjectionType is {kind}, but NonKeyAttributes is specified"
        ))),
        (Some("KEYS_ONLY"), None) => Ok(Projection::KeysOnly),
        (Some(_), None) => Ok(Projection::All),
        (None, _) => Err(TablesError::invalid("Unknown ProjectionType: null")),
    }
}

fn provisioned(
    input: &Input,
    billing: BillingMode,
    what: &str,
) -> Result<Option<Throughput>, TablesError> {
    let pt = opt_obj(input, "ProvisionedThroughput")?;
    match (billing, pt) {
        (BillingMode::PayPerRequest, Some(_)) => Err(TablesError::invalid(format!(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST{what}"
        ))),
        (BillingMode::PayPerRequest, None) => Ok(None),
        (BillingMode::Provisioned, None) => Err(TablesError::invalid(format!(
            "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED{what}"
        ))),
        (BillingMode::Provisioned, Some(pt)) => {
            let read = opt_u64(pt, "ReadCapacityUnits")?;
            let write = opt_u64(pt, "WriteCapacityUnits")?;
            match (read, write) {
                (Some(r), Some(w)) if r >= 1 && w >= 1 => Ok(Some(Throughput {
                    read: r,
                    write: w,
                    ..Throughput::default()
                })),
                (Some(0), _) | (_, Some(0)) => Err(TablesError::Validation(
                    "One or more parameter values were invalid: Provisioned throughput must be at least 1 for both read and write capacity units".into(),
                )),
                _ => Err(TablesError::invalid(format!(
                    "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED{what}"
                ))),
            }
        }
    }
}

fn billing_mode(input: &Input) -> Result<Option<BillingMode>, TablesError> {
    Ok(
        match opt_enum(input, "BillingMode", &["PROVISIONED", "PAY_PER_REQUEST"])? {
            Some("PAY_PER_REQUEST") => Some(BillingMode::PayPerRequest),
            Some(_) => Some(BillingMode::Provisioned),
            None => None,
        },
    )
}

fn index_name(i: &Input) -> Result<String, TablesError> {
    let name = req_str(i, "IndexName")?;
    check_table_name(name, "indexName")?;
    Ok(name.to_owned())
}

fn check_stream_spec(input: &Input) -> Result<(), TablesError> {
    if let Some(spec) = opt_obj(input, "StreamSpecification")?
        && opt_bool(spec, "StreamEnabled")? == Some(true)
    {
        // Honest refusal: accepting would promise a stream nobody can read.
        return Err(TablesError::Validation(
            "DynamoDB Streams are not supported by spillway (docs/tables.md)".into(),
        ));
    }
    Ok(())
}

fn check_projected_total(indexes: &[IndexMeta]) -> Result<(), TablesError> {
    let total: usize = indexes
        .iter()
        .map(|i| match &i.projection {
            Projection::Include(l) => l.len(),
            _ => 0,
        })
        .sum();
    if total > MAX_PROJECTED_ATTRIBUTES {
        return Err(TablesError::LimitExceeded(format!(
            "One or more parameter values were invalid: Number of projected attributes in all indexes exceeds limit of {MAX_PROJECTED_ATTRIBUTES}, number of projected attributes:{total}"
        )));
    }
    Ok(())
}

/// A table description from a CreateTable request.
pub fn table_from_request(input: &Input) -> Result<TableMeta, TablesError> {
    let name = table_name(input, "TableName")?.to_owned();
    let defs = attribute_definitions(input)?;
    if opt_array(input, "AttributeDefinitions")?.is_none() {
        return Err(TablesError::constraint(
            "null",
            "attributeDefinitions",
            "Member must not be null",
        ));
    }
    let mut used = Vec::new();
    let key = key_schema(input, &defs, &mut used)?;
    let billing = billing_mode(input)?.unwrap_or(BillingMode::Provisioned);
    let throughput = provisioned(input, billing, "")?.unwrap_or_default();
    check_stream_spec(input)?;
    let mut indexes: Vec<IndexMeta> = Vec::new();
    if let Some(gsis) = opt_array(input, "GlobalSecondaryIndexes")? {
        if gsis.len() > MAX_GSIS {
            return Err(TablesError::invalid(format!(
                "GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
            )));
        }
        for g in gsis {
            let g = as_obj(g)?;
            let name = index_name(g)?;
            let key = key_schema(g, &defs, &mut used)?;
            let projection = projection(g)?;
            let throughput = provisioned(g, billing, &format!(" for index {name}"))?;
            indexes.push(IndexMeta {
                name,
                kind: IndexKind::Global,
                key,
                projection,
                status: IndexStatus::Active,
                throughput,
                id: 0,
            });
        }
    }
    if let Some(lsis) = opt_array(input, "LocalSecondaryIndexes")? {
        if lsis.len() > MAX_LSIS {
            return Err(TablesError::invalid(format!(
                "Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LSIS}"
            )));
        }
        if key.range.is_none() {
            return Err(TablesError::invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        for l in lsis {
            let l = as_obj(l)?;
            let name = index_name(l)?;
            let lkey = key_schema(l, &defs, &mut used)?;
            if lkey.hash.name != key.hash.name {
                return Err(TablesError::invalid(format!(
                    "Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {}",
                    lkey.hash.name, key.hash.name
                )));
            }
            if lkey.range.is_none() {
                return Err(TablesError::invalid(format!(
                    "Index KeySchema does not have a range key for index: {name}"
                )));
            }
            indexes.push(IndexMeta {
                name,
                kind: IndexKind::Local,
                key: lkey,
                projection: projection(l)?,
                status: IndexStatus::Active,
                throughput: None,
                id: 0,
            });
        }
    }
    let mut names: Vec<&str> = indexes.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(TablesError::invalid(format!(
            "Duplicate index name: {}",
            w[0]
        )));
    }
    check_projected_total(&indexes)?;
    if used.len() != defs.len() {
        return Err(TablesError::invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    let tags = tags(input, "Tags")?.unwrap_or_default();
    let table_class = opt_enum(
        input,
        "TableClass",
        &["STANDARD", "STANDARD_INFREQUENT_ACCESS"],
    )?
    .unwrap_or("STANDARD")
    .to_owned();
    Ok(TableMeta {
        name,
        id: 0,
        key,
        attributes: defs,
        billing,
        throughput,
        indexes,
        created: clock::now(),
        ttl: TimeToLive::default(),
        tags,
        deletion_protection: opt_bool(input, "DeletionProtectionEnabled")?.unwrap_or(false),
        table_class,
        table_uuid: uuid::Uuid::new_v4().to_string(),
        from_stack: false,
        version: 0,
    })
}

fn tags(input: &Input, key: &str) -> Result<Option<BTreeMap<String, String>>, TablesError> {
    let Some(list) = opt_array(input, key)? else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for t in list {
        let t = as_obj(t)?;
        let k = req_str(t, "Key")?;
        let v = req_str(t, "Value")?;
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(TablesError::Validation(format!(
                "One or more parameter values were invalid: invalid tag: {k}"
            )));
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(Some(out))
}

/// Tables per account (DynamoDB's default quota).
const MAX_TABLES: usize = 2500;

pub async fn create_table(tables: &Arc<Tables>, input: &Input) -> Result<Value, TablesError> {
    let meta = table_from_request(input)?;
    if tables.tables().len() >= MAX_TABLES {
        return Err(TablesError::LimitExceeded(format!(
            "Subscriber limit exceeded: the account already has {MAX_TABLES} tables"
        )));
    }
    let name = meta.name.clone();
    let created = tables
        .change(CatalogChange::Create(meta))
        .await
        .map_err(|e| match e {
            TablesError::ResourceInUse(_) => {
                TablesError::ResourceInUse(format!("Table already exists: {name}"))
            }
            other => other,
        })?;
    tracing::info!(table = name, "tables: table created");
    // DynamoDB answers CREATING and the table turns ACTIVE a few seconds later; here it is
    // usable at once, and DescribeTable reports ACTIVE from the first call.
    Ok(json!({"TableDescription": describe(tables, &created, "CREATING")}))
}

/// The table a control-plane action names, or DynamoDB's wording for an unknown one.
fn named(tables: &Tables, name: &str) -> Result<Arc<TableMeta>, TablesError> {
    tables.table(name).ok_or_else(|| {
        TablesError::ResourceNotFound(format!(
            "Requested resource not found: Table: {name} not found"
        ))
    })
}

pub fn describe_table(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let meta = named(tables, table_name(input, "TableName")?)?;
    Ok(json!({"Table": describe(tables, &meta, status(&meta))}))
}

/// A table is usable at once (CREATING is only CreateTable's answer), and stays ACTIVE while
/// an index backfills, as DynamoDB's tables do.
fn status(_meta: &TableMeta) -> &'static str {
    "ACTIVE"
}

pub fn list_tables(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let limit = opt_u64(input, "Limit")?.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(TablesError::constraint(
            &limit.to_string(),
            "limit",
            if limit < 1 {
                "Member must have value greater than or equal to 1"
            } else {
                "Member must have value less than or equal to 100"
            },
        ));
    }
    let start = opt_str(input, "ExclusiveStartTableName")?;
    let names: Vec<String> = tables
        .tables()
        .iter()
        .map(|t| t.name.clone())
        .filter(|n| start.is_none_or(|s| n.as_str() > s))
        .collect();
    let page: Vec<&String> = names.iter().take(limit as usize).collect();
    let mut out = json!({"TableNames": page});
    if names.len() > page.len()
        && let Some(last) = page.last()
    {
        out["LastEvaluatedTableName"] = json!(last);
    }
    Ok(out)
}

pub async fn delete_table(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let name = table_name(input, "TableName")?;
    let meta = named(tables, name)?;
    if meta.deletion_protection {
        return Err(TablesError::Validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.".into(),
        ));
    }
    let description = describe(tables, &meta, "DELETING");
    tables
        .change(CatalogChange::Delete(name.to_owned()))
        .await
        .map_err(|e| match e {
            TablesError::ResourceNotFound(_) => TablesError::ResourceNotFound(format!(
                "Requested resource not found: Table: {name} not found"
            )),
            other => other,
        })?;
    tracing::info!(table = name, "tables: table deleted");
    Ok(json!({"TableDescription": description}))
}

pub async fn update_table(tables: &Arc<Tables>, input: &Input) -> Result<Value, TablesError> {
    let name = table_name(input, "TableName")?;
    let current = named(tables, name)?;
    let mut meta = (*current).clone();
    let mut changed = false;
    if let Some(billing) = billing_mode(input)? {
        changed |= billing != meta.billing;
        meta.billing = billing;
    }
    if input.contains_key("ProvisionedThroughput") || input.contains_key("BillingMode") {
        if let Some(t) = provisioned(input, meta.billing, "")? {
            let now = clock::now();
            if t.read != meta.throughput.read || t.write != meta.throughput.write {
                changed = true;
                if t.read < meta.throughput.read || t.write < meta.throughput.write {
                    meta.throughput.last_decrease = Some(now);
                    meta.throughput.decreases_today += 1;
                } else {
                    meta.throughput.last_increase = Some(now);
                }
                meta.throughput.read = t.read;
                meta.throughput.write = t.write;
            }
        } else {
            meta.throughput = Throughput::default();
        }
    }
    check_stream_spec(input)?;
    if let Some(p) = opt_bool(input, "DeletionProtectionEnabled")? {
        changed |= p != meta.deletion_protection;
        meta.deletion_protection = p;
    }
    if let Some(c) = opt_enum(
        input,
        "TableClass",
        &["STANDARD", "STANDARD_INFREQUENT_ACCESS"],
    )? {
        changed |= c != meta.table_class;
        meta.table_class = c.to_owned();
    }
    let mut new_index = None;
    if let Some(updates) = opt_array(input, "GlobalSecondaryIndexUpdates")? {
        let mut defs = meta.attributes.clone();
        for d in attribute_definitions(input)? {
            match defs.iter().find(|x| x.name == d.name) {
                Some(x) if x.ty != d.ty => {
                    return Err(TablesError::invalid(format!(
                        "Cannot change the type of attribute {} (defined as {})",
                        d.name,
                        x.ty.descriptor()
                    )));
                }
                Some(_) => {}
                None => defs.push(d),
            }
        }
        let structural = updates
            .iter()
            .filter(|u| u.get("Create").is_some() || u.get("Delete").is_some())
            .count();
        if structural > 1 {
            return Err(TablesError::LimitExceeded(
                "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table".into(),
            ));
        }
        for u in updates {
            let u = as_obj(u)?;
            if let Some(c) = opt_obj(u, "Create")? {
                let iname = index_name(c)?;
                if meta.indexes.iter().any(|i| i.name == iname) {
                    return Err(TablesError::invalid(format!(
                        "Attempting to create an index which already exists: {iname}"
                    )));
                }
                if meta
                    .indexes
                    .iter()
                    .filter(|i| i.kind == IndexKind::Global)
                    .count()
                    >= MAX_GSIS
                {
                    return Err(TablesError::LimitExceeded(format!(
                        "GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
                    )));
                }
                if meta
                    .indexes
                    .iter()
                    .any(|i| i.status == IndexStatus::Creating)
                {
                    return Err(TablesError::LimitExceeded(
                        "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table".into(),
                    ));
                }
                let mut used = Vec::new();
                let key = key_schema(c, &defs, &mut used)?;
                let throughput = provisioned(c, meta.billing, &format!(" for index {iname}"))?;
                meta.indexes.push(IndexMeta {
                    name: iname.clone(),
                    kind: IndexKind::Global,
                    key,
                    projection: projection(c)?,
                    status: IndexStatus::Creating,
                    throughput,
                    id: 0,
                });
                new_index = Some(iname);
                changed = true;
            } else if let Some(d) = opt_obj(u, "Delete")? {
                let iname = req_str(d, "IndexName")?;
                let before = meta.indexes.len();
                meta.indexes
                    .retain(|i| !(i.kind == IndexKind::Global && i.name == iname));
                if meta.indexes.len() == before {
                    return Err(TablesError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {iname} not found"
                    )));
                }
                changed = true;
            } else if let Some(up) = opt_obj(u, "Update")? {
                let iname = req_str(up, "IndexName")?;
                let billing = meta.billing;
                let Some(index) = meta
                    .indexes
                    .iter_mut()
                    .find(|i| i.kind == IndexKind::Global && i.name == iname)
                else {
                    return Err(TablesError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {iname} not found"
                    )));
                };
                index.throughput = provisioned(up, billing, &format!(" for index {iname}"))?;
                changed = true;
            }
        }
        // Definitions are what the table's and its indexes' keys use.
        meta.attributes = defs
            .into_iter()
            .filter(|d| {
                meta.key.is_key_attribute(&d.name)
                    || meta.indexes.iter().any(|i| i.key.is_key_attribute(&d.name))
            })
            .collect();
        check_projected_total(&meta.indexes)?;
    }
    let asked = [
        "ProvisionedThroughput",
        "BillingMode",
        "StreamSpecification",
        "GlobalSecondaryIndexUpdates",
        "SSESpecification",
        "ReplicaUpdates",
        "DeletionProtectionEnabled",
        "TableClass",
    ]
    .iter()
    .any(|k| input.contains_key(*k));
    if !asked {
        return Err(TablesError::Validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required".into(),
        ));
    }
    if !changed {
        return Ok(json!({"TableDescription": describe(tables, &current, "ACTIVE")}));
    }
    let updated = tables.change(CatalogChange::Update(meta)).await?;
    if let Some(iname) = new_index
        && let Some(index) = updated.index(&iname)
    {
        tables
            .clone()
            .spawn_backfill(updated.name.clone(), index.id);
    }
    Ok(json!({"TableDescription": describe(tables, &updated, "UPDATING")}))
}

pub async fn update_time_to_live(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let name = table_name(input, "TableName")?;
    let current = named(tables, name)?;
    let Some(spec) = opt_obj(input, "TimeToLiveSpecification")? else {
        return Err(TablesError::constraint(
            "null",
            "timeToLiveSpecification",
            "Member must not be null",
        ));
    };
    let enabled = opt_bool(spec, "Enabled")?.ok_or_else(|| {
        TablesError::constraint(
            "null",
            "timeToLiveSpecification.enabled",
            "Member must not be null",
        )
    })?;
    let attribute = req_str(spec, "AttributeName")?;
    if attribute.is_empty() || attribute.len() > 255 {
        return Err(TablesError::constraint(
            &format!("'{attribute}'"),
            "timeToLiveSpecification.attributeName",
            "Member must have length greater than or equal to 1",
        ));
    }
    let ttl = &current.ttl;
    if enabled && ttl.enabled {
        return Err(TablesError::Validation(
            "TimeToLive is already enabled".into(),
        ));
    }
    if !enabled && !ttl.enabled {
        return Err(TablesError::Validation(
            "TimeToLive is already disabled".into(),
        ));
    }
    if !enabled && ttl.attribute.as_deref() != Some(attribute) {
        return Err(TablesError::Validation(format!(
            "TimeToLive is active on a different AttributeName: current AttributeName is {}",
            ttl.attribute.as_deref().unwrap_or("")
        )));
    }
    let mut meta = (*current).clone();
    meta.ttl = TimeToLive {
        attribute: Some(attribute.to_owned()),
        enabled,
    };
    tables.change(CatalogChange::Update(meta)).await?;
    Ok(json!({"TimeToLiveSpecification": {"AttributeName": attribute, "Enabled": enabled}}))
}

pub fn describe_time_to_live(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let meta = named(tables, table_name(input, "TableName")?)?;
    let mut d = json!({"TimeToLiveStatus": if meta.ttl.enabled { "ENABLED" } else { "DISABLED" }});
    if meta.ttl.enabled
        && let Some(a) = &meta.ttl.attribute
    {
        d["AttributeName"] = json!(a);
    }
    Ok(json!({"TimeToLiveDescription": d}))
}

/// The table a tag action's ARN names.
fn by_arn(tables: &Tables, input: &Input) -> Result<Arc<TableMeta>, TablesError> {
    let arn = req_str(input, "ResourceArn")?;
    let prefix = format!(
        "arn:aws:dynamodb:{}:{}:table/",
        tables.region, tables.account
    );
    let not_found = || {
        TablesError::ResourceNotFound(format!(
            "Requested resource not found: ResourcArn: {arn} not found"
        ))
    };
    let name = arn.strip_prefix(&prefix).ok_or_else(|| {
        if arn.starts_with("arn:") {
            not_found()
        } else {
            TablesError::Validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))
        }
    })?;
    tables.table(name).ok_or_else(not_found)
}

pub async fn tag_resource(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let current = by_arn(tables, input)?;
    let new = tags(input, "Tags")?
        .ok_or_else(|| TablesError::constraint("null", "tags", "Member must not be null"))?;
    let mut meta = (*current).clone();
    meta.tags.extend(new);
    if meta.tags.len() > MAX_TAGS {
        return Err(TablesError::LimitExceeded(
            "The number of tags exceeds the limit of 50".into(),
        ));
    }
    tables.change(CatalogChange::Update(meta)).await?;
    Ok(json!({}))
}

pub async fn untag_resource(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let current = by_arn(tables, input)?;
    let keys = opt_array(input, "TagKeys")?
        .ok_or_else(|| TablesError::constraint("null", "tagKeys", "Member must not be null"))?;
    let mut meta = (*current).clone();
    for k in keys {
        if let Some(k) = k.as_str() {
            meta.tags.remove(k);
        }
    }
    tables.change(CatalogChange::Update(meta)).await?;
    Ok(json!({}))
}

pub fn list_tags_of_resource(tables: &Tables, input: &Input) -> Result<Value, TablesError> {
    let meta = by_arn(tables, input)?;
    Ok(
        json!({"Tags": meta.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()}),
    )
}

pub fn describe_limits() -> Value {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}
