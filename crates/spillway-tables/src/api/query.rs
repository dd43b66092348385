//! Query and Scan. A Query is a range read over one partition of the table or an index (keys
//! are stored in order, see [`crate::key`]); a Scan reads the key space in order, and its
//! segments are ranges of the partition hash. Both evaluate up to `Limit` items or 1 MB of
//! them, then apply the filter, as DynamoDB does, and return LastEvaluatedKey when they stopped
//! early.

use std::ops::Bound;
use std::sync::Arc;

use std::fmt::Write as _;

use super::capacity::{self, Consumed};
use super::exprs;
use super::input::*;
use super::{Ctx, Reply};
use crate::error::TablesError;
use crate::expr::{Condition, KeyCondition, Path, RangeCondition, project};
use crate::key::{
    KeySchema, ScalarType, encode_component, encode_key, encode_prefix, partition_prefix,
    prefix_end,
};
use crate::schema::{IndexKind, IndexMeta, IndexStatus, Projection, TableMeta};
use crate::store::reader::Visit;
use crate::store::{StoreError, index_table, items_table};
use crate::value::{AttributeValue, Item, item_size, write_item_json};

/// Items evaluated per page at most, in bytes (DynamoDB's 1 MB).
const PAGE_BYTES: usize = 1024 * 1024;

/// Reads with a `Limit` up to this many items run on the request's own task, as GetItem does:
/// a page of 100 typical items is a fraction of a millisecond of decoding, and the two thread
/// hand-offs of the blocking pool showed in a small Query's latency at low rates (an A/B in
/// docs/BENCHMARKS.md, "Query on the request's task"). Unbounded reads
/// (up to 1 MB of items, milliseconds) still go to the blocking pool so that they do not stall
/// the runtime's workers.
const INLINE_LIMIT: usize = 100;

/// What a read is over: the table, or one of its indexes.
struct Source {
    meta: Arc<TableMeta>,
    index: Option<IndexMeta>,
}

impl Source {
    fn resolve(
        meta: Arc<TableMeta>,
        input: &Input,
        consistent: bool,
    ) -> Result<Source, TablesError> {
        let Some(name) = opt_str(input, "IndexName")? else {
            return Ok(Source { meta, index: None });
        };
        let index = meta.index(name).cloned().ok_or_else(|| {
            TablesError::Validation(format!(
                "The table does not have the specified index: {name}"
            ))
        })?;
        if index.kind == IndexKind::Global && consistent {
            return Err(TablesError::Validation(
                "Consistent reads are not supported on global secondary indexes".into(),
            ));
        }
        if index.status == IndexStatus::Creating {
            return Err(TablesError::Validation(format!(
                "Cannot read from backfilling global secondary index: {name}"
            )));
        }
        Ok(Source {
            meta,
            index: Some(index),
        })
    }

    fn key(&self) -> &KeySchema {
        self.index
            .as_ref()
            .map(|i| &i.key)
            .unwrap_or(&self.meta.key)
    }

    fn storage(&self) -> String {
        match &self.index {
            Some(i) => index_table(i.id),
            None => items_table(self.meta.id),
        }
    }

    /// The attributes of LastEvaluatedKey / ExclusiveStartKey: the table's key, and the
    /// index's for index reads.
    fn position_of(&self, item: &Item) -> Item {
        let mut k = self.meta.key.key_item(item);
        if let Some(i) = &self.index {
            k.extend(i.key.key_item(item));
        }
        k
    }

    /// The stored key of a position (ExclusiveStartKey).
    fn encode_position(&self, start: &Item) -> Result<Vec<u8>, TablesError> {
        let invalid = || {
            TablesError::Validation(
                "The provided starting key is invalid: The provided key element does not match the schema".into(),
            )
        };
        let expected = self.position_of(start).len();
        if expected != start.len() {
            return Err(invalid());
        }
        let table_key_item = self.meta.key.key_item(start);
        let table_key = self
            .meta
            .key
            .of_key(&table_key_item)
            .map_err(|_| invalid())?;
        let mut encoded = Vec::new();
        if let Some(i) = &self.index {
            let values = i.key.of_indexed(start).ok_or_else(invalid)?;
            encoded.extend(encode_key(&values));
        }
        encoded.extend(encode_key(&table_key));
        Ok(encoded)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Select {
    All,
    Projected,
    Specific,
    Count,
}

fn select(input: &Input, source: &Source, has_projection: bool) -> Result<Select, TablesError> {
    let asked = opt_enum(
        input,
        "Select",
        &[
            "ALL_ATTRIBUTES",
            "ALL_PROJECTED_ATTRIBUTES",
            "SPECIFIC_ATTRIBUTES",
            "COUNT",
        ],
    )?;
    let s = match asked {
        Some("ALL_ATTRIBUTES") => Select::All,
        Some("ALL_PROJECTED_ATTRIBUTES") => Select::Projected,
        Some("SPECIFIC_ATTRIBUTES") => Select::Specific,
        Some(_) => Select::Count,
        None if has_projection => Select::Specific,
        None if source.index.is_some() => Select::Projected,
        None => Select::All,
    };
    if has_projection && s != Select::Specific {
        return Err(TablesError::Validation(format!(
            "Cannot specify the AttributesToGet when choosing to get {}",
            asked.unwrap_or("ALL_ATTRIBUTES")
        )));
    }
    if s == Select::Specific && !has_projection {
        return Err(TablesError::Validation(
            "One or more parameter values were invalid: Must specify the AttributesToGet when choosing to get SPECIFIC_ATTRIBUTES".into(),
        ));
    }
    if s == Select::Projected && source.index.is_none() {
        return Err(TablesError::Validation(
            "One or more parameter values were invalid: ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName".into(),
        ));
    }
    if s == Select::All
        && let Some(i) = &source.index
        && i.kind == IndexKind::Global
        && i.projection != Projection::All
    {
        return Err(TablesError::Validation(format!(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
            i.name
        )));
    }
    Ok(s)
}

fn limit(input: &Input) -> Result<Option<usize>, TablesError> {
    match opt_u64(input, "Limit")? {
        Some(0) => Err(TablesError::constraint(
            "0",
            "limit",
            "Member must have value greater than or equal to 1",
        )),
        Some(n) => Ok(Some(n as usize)),
        None => Ok(None),
    }
}

/// One page of a range read.
struct Page {
    items: Vec<Item>,
    count: usize,
    scanned: usize,
    bytes: usize,
    last: Option<Item>,
}

struct Plan {
    source: Source,
    storage: String,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    forward: bool,
    limit: Option<usize>,
    filter: Option<Condition>,
    projection: Option<Vec<Path>>,
    select: Select,
    /// Whether items come from the table (LSI reads asking for attributes the index lacks).
    fetch_from_table: bool,
}

fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn run_plan(tables: &crate::service::Tables, plan: &Plan) -> Result<Page, StoreError> {
    let snapshot = tables.db.snapshot()?;
    let mut page = Page {
        items: Vec::new(),
        count: 0,
        scanned: 0,
        bytes: 0,
        last: None,
    };
    let table_storage = items_table(plan.source.meta.id);
    let mut stopped_early = false;
    let mut last_seen: Option<Item> = None;
    snapshot.range(
        &plan.storage,
        bound_ref(&plan.lower),
        bound_ref(&plan.upper),
        plan.forward,
        |_, mut item| {
            if plan.limit.is_some_and(|l| page.scanned >= l) || page.bytes >= PAGE_BYTES {
                stopped_early = true;
                return Ok(Visit::Stop);
            }
            if plan.fetch_from_table {
                let key = encode_key(&plan.source.meta.key.of_indexed(&item).ok_or_else(|| {
                    StoreError::Corrupt("an index entry without the table key".into())
                })?);
                if let Some(full) = snapshot.get(&table_storage, &key)? {
                    item = full;
                }
            }
            page.scanned += 1;
            page.bytes += item_size(&item);
            last_seen = Some(plan.source.position_of(&item));
            if plan.filter.as_ref().is_none_or(|f| f.eval(&item)) {
                page.count += 1;
                if plan.select != Select::Count {
                    page.items.push(match &plan.projection {
                        Some(p) => project(&item, p),
                        None => item,
                    });
                }
            }
            Ok(Visit::Continue)
        },
    )?;
    // DynamoDB returns LastEvaluatedKey whenever it stopped at the limit or the page size,
    // even when nothing follows.
    if stopped_early || plan.limit.is_some_and(|l| page.scanned >= l) || page.bytes >= PAGE_BYTES {
        page.last = last_seen;
    }
    Ok(page)
}

async fn execute(
    ctx: &Ctx<'_>,
    plan: Plan,
    consistent: bool,
    report: capacity::Report,
) -> Result<Reply, TablesError> {
    let plan = Arc::new(plan);
    let page = if plan.limit.is_some_and(|l| l <= INLINE_LIMIT) {
        run_plan(ctx.tables, &plan)?
    } else {
        let tables = ctx.tables.clone();
        let for_task = plan.clone();
        tokio::task::spawn_blocking(move || run_plan(&tables, &for_task))
            .await
            .map_err(|e| TablesError::Internal(e.to_string()))??
    };
    let mut out = String::with_capacity(page.bytes + page.bytes / 2 + 128);
    let _ = write!(
        out,
        "{{\"Count\":{},\"ScannedCount\":{}",
        page.count, page.scanned
    );
    if plan.select != Select::Count {
        out.push_str(",\"Items\":[");
        for (i, item) in page.items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_item_json(item, &mut out);
        }
        out.push(']');
    }
    if let Some(last) = &page.last {
        out.push_str(",\"LastEvaluatedKey\":");
        write_item_json(last, &mut out);
    }
    let units = capacity::read_units(page.bytes, consistent);
    let mut consumed = Consumed {
        table: plan.source.meta.name.clone(),
        ..Consumed::default()
    };
    match &plan.source.index {
        Some(i) => consumed
            .indexes
            .push((i.name.clone(), units, 0.0, i.kind == IndexKind::Local)),
        None => consumed.read = units,
    }
    ctx.tables
        .metrics
        .consumed(&consumed.table, consumed.total(), 0.0);
    if let Some(c) = consumed.render(report) {
        let _ = write!(out, ",\"ConsumedCapacity\":{c}");
    }
    out.push('}');
    Ok(Reply::Text {
        body: out,
        returned: page.items.len() as u64,
    })
}

fn matches_type(ty: ScalarType, v: &AttributeValue) -> bool {
    matches!(
        (ty, v),
        (ScalarType::S, AttributeValue::S(_))
            | (ScalarType::N, AttributeValue::N(_))
            | (ScalarType::B, AttributeValue::B(_))
    )
}

/// The stored-key range of a key condition.
/// A range of stored keys.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

fn key_range(schema: &KeySchema, cond: &KeyCondition) -> Result<KeyRange, TablesError> {
    let mismatch = || TablesError::invalid("Condition parameter type does not match schema type");
    if !matches_type(schema.hash.ty, &cond.hash) {
        return Err(mismatch());
    }
    let p = partition_prefix(&cond.hash);
    let end = |x: &[u8]| match prefix_end(x) {
        Some(e) => Bound::Excluded(e),
        None => Bound::Unbounded,
    };
    let with = |v: &AttributeValue| {
        let mut k = p.clone();
        encode_component(v, &mut k);
        k
    };
    let Some(range) = &cond.range else {
        return Ok((Bound::Included(p.clone()), end(&p)));
    };
    let Some(range_attr) = &schema.range else {
        return Err(TablesError::Validation(
            "Query key condition not supported".into(),
        ));
    };
    let check = |v: &AttributeValue| {
        if matches_type(range_attr.ty, v) {
            Ok(())
        } else {
            Err(mismatch())
        }
    };
    Ok(match range {
        RangeCondition::Eq(v) => {
            check(v)?;
            let k = with(v);
            (Bound::Included(k.clone()), end(&k))
        }
        RangeCondition::Lt(v) => {
            check(v)?;
            (Bound::Included(p.clone()), Bound::Excluded(with(v)))
        }
        RangeCondition::Le(v) => {
            check(v)?;
            (Bound::Included(p.clone()), end(&with(v)))
        }
        RangeCondition::Gt(v) => {
            check(v)?;
            (end(&with(v)).map_included(), end(&p))
        }
        RangeCondition::Ge(v) => {
            check(v)?;
            (Bound::Included(with(v)), end(&p))
        }
        RangeCondition::Between(a, b) => {
            check(a)?;
            check(b)?;
            (Bound::Included(with(a)), end(&with(b)))
        }
        RangeCondition::BeginsWith(v) => {
            if range_attr.ty == ScalarType::N || !matches_type(range_attr.ty, v) {
                return Err(TablesError::Validation(format!(
                    "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: {}",
                    v.value_type().descriptor()
                )));
            }
            let mut k = p.clone();
            encode_prefix(v, &mut k);
            (Bound::Included(k.clone()), end(&k))
        }
    })
}

trait MapIncluded {
    fn map_included(self) -> Bound<Vec<u8>>;
}

impl MapIncluded for Bound<Vec<u8>> {
    /// The end of one value's keys is where the next values' keys start (inclusive).
    fn map_included(self) -> Bound<Vec<u8>> {
        match self {
            Bound::Excluded(v) => Bound::Included(v),
            other => other,
        }
    }
}

/// Narrows a range to what follows (or, backwards, precedes) the ExclusiveStartKey.
fn after_start(
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    start: Option<Vec<u8>>,
    forward: bool,
) -> KeyRange {
    let Some(s) = start else {
        return (lower, upper);
    };
    if forward {
        let keep = match &lower {
            Bound::Included(l) | Bound::Excluded(l) => l > &s,
            Bound::Unbounded => false,
        };
        if keep {
            (lower, upper)
        } else {
            (Bound::Excluded(s), upper)
        }
    } else {
        let keep = match &upper {
            Bound::Included(u) | Bound::Excluded(u) => u < &s,
            Bound::Unbounded => false,
        };
        if keep {
            (lower, upper)
        } else {
            (lower, Bound::Excluded(s))
        }
    }
}

fn fetch_from_table(source: &Source, select: Select, projection: &Option<Vec<Path>>) -> bool {
    let Some(index) = &source.index else {
        return false;
    };
    if index.kind != IndexKind::Local || index.projection == Projection::All {
        return false;
    }
    // A local index's reads may ask for attributes it does not project; DynamoDB then reads
    // them from the table.
    match select {
        Select::All => true,
        Select::Specific => projection.as_ref().is_some_and(|paths| {
            paths.iter().any(|p| {
                let top = p.top();
                !(index.key.is_key_attribute(top)
                    || source.meta.key.is_key_attribute(top)
                    || matches!(&index.projection, Projection::Include(l) if l.iter().any(|n| n == top)))
            })
        }),
        _ => false,
    }
}

pub async fn query(ctx: &Ctx<'_>, input: &Input) -> Result<Reply, TablesError> {
    let name = table_name(input, "TableName")?;
    let meta = ctx.tables.require(name)?;
    let consistent = opt_bool(input, "ConsistentRead")?.unwrap_or(false);
    let source = Source::resolve(meta, input, consistent)?;
    let report = capacity::report(input)?;
    let limit = limit(input)?;
    let forward = opt_bool(input, "ScanIndexForward")?.unwrap_or(true);
    let mut subs = exprs::substitutions(input)?;
    let schema = source.key().clone();
    let cond = exprs::key_condition(
        input,
        &mut subs,
        &schema.hash.name,
        schema.range.as_ref().map(|r| r.name.as_str()),
    )?;
    let filter = exprs::filter(input, &mut subs, "QueryFilter")?;
    let projection = exprs::projection(input, &mut subs)?;
    exprs::finish(&subs)?;
    if let Some(f) = &filter {
        for p in f.paths() {
            if schema.is_key_attribute(p.top()) {
                return Err(TablesError::Validation(format!(
                    "Filter Expression can only contain non-primary key attributes: Primary key attribute: {}",
                    p.top()
                )));
            }
        }
    }
    let select = select(input, &source, projection.is_some())?;
    let (lower, upper) = key_range(&schema, &cond)?;
    let start = match opt_item(input, "ExclusiveStartKey")? {
        Some(s) => {
            let encoded = source.encode_position(&s)?;
            let in_partition = source
                .key()
                .of_indexed(&s)
                .is_some_and(|k| k.hash == &cond.hash);
            if !in_partition {
                return Err(TablesError::Validation(
                    "The provided starting key is invalid: The provided key element does not match the schema".into(),
                ));
            }
            Some(encoded)
        }
        None => None,
    };
    let (lower, upper) = after_start(lower, upper, start, forward);
    let plan = Plan {
        storage: source.storage(),
        fetch_from_table: fetch_from_table(&source, select, &projection),
        source,
        lower,
        upper,
        forward,
        limit,
        filter,
        projection,
        select,
    };
    execute(ctx, plan, consistent, report).await
}

pub async fn scan(ctx: &Ctx<'_>, input: &Input) -> Result<Reply, TablesError> {
    let name = table_name(input, "TableName")?;
    let meta = ctx.tables.require(name)?;
    let consistent = opt_bool(input, "ConsistentRead")?.unwrap_or(false);
    let source = Source::resolve(meta, input, consistent)?;
    let report = capacity::report(input)?;
    let limit = limit(input)?;
    let mut subs = exprs::substitutions(input)?;
    let filter = exprs::filter(input, &mut subs, "ScanFilter")?;
    let projection = exprs::projection(input, &mut subs)?;
    exprs::finish(&subs)?;
    let select = select(input, &source, projection.is_some())?;
    let segment = opt_u64(input, "Segment")?;
    let total = opt_u64(input, "TotalSegments")?;
    let (lower, upper) = match (segment, total) {
        (None, None) => (Bound::Unbounded, Bound::Unbounded),
        (Some(_), None) => {
            return Err(TablesError::Validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(TablesError::Validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present".into(),
            ));
        }
        (Some(s), Some(t)) => {
            if !(1..=1_000_000).contains(&t) {
                return Err(TablesError::constraint(
                    &t.to_string(),
                    "totalSegments",
                    if t < 1 {
                        "Member must have value greater than or equal to 1"
                    } else {
                        "Member must have value less than or equal to 1000000"
                    },
                ));
            }
            if s >= t {
                return Err(TablesError::Validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                )));
            }
            // Segment s holds the partitions whose 16-bit hash falls in its share of 0..65536.
            let from = (s * 65536 / t) as u32;
            let to = ((s + 1) * 65536 / t) as u32;
            let lower = Bound::Included((from as u16).to_be_bytes().to_vec());
            let upper = if to >= 65536 {
                Bound::Unbounded
            } else {
                Bound::Excluded((to as u16).to_be_bytes().to_vec())
            };
            if from == to {
                // More segments than hash values: this one is empty.
                (
                    Bound::Excluded(vec![0xFF; 3]),
                    Bound::Excluded(vec![0xFF; 3]),
                )
            } else {
                (lower, upper)
            }
        }
    };
    let start = match opt_item(input, "ExclusiveStartKey")? {
        Some(s) => Some(source.encode_position(&s)?),
        None => None,
    };
    let (lower, upper) = after_start(lower, upper, start, true);
    let plan = Plan {
        storage: source.storage(),
        fetch_from_table: fetch_from_table(&source, select, &projection),
        source,
        lower,
        upper,
        forward: true,
        limit,
        filter,
        projection,
        select,
    };
    execute(ctx, plan, consistent, report).await
}
