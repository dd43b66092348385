//! What a table is: its key, attribute definitions, indexes, billing, TTL and tags, as stored in
//! the catalog and reported by DescribeTable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::key::{KeyAttr, KeySchema};
use crate::value::Item;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    Provisioned,
    PayPerRequest,
}

impl BillingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Provisioned => "PROVISIONED",
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
        }
    }
}

/// Provisioned capacity as accepted and reported. spillway does not throttle by it
/// (docs/tables.md): it is kept so that tools reading it back see what they set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Throughput {
    pub read: u64,
    pub write: u64,
    /// Epoch seconds of the last change (reported as LastIncreaseDateTime / LastDecrease...).
    pub last_increase: Option<f64>,
    pub last_decrease: Option<f64>,
    pub decreases_today: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

impl Projection {
    pub fn type_name(&self) -> &'static str {
        match self {
            Projection::All => "ALL",
            Projection::KeysOnly => "KEYS_ONLY",
            Projection::Include(_) => "INCLUDE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexStatus {
    Creating,
    Active,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    Global,
    Local,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    pub name: String,
    pub kind: IndexKind,
    pub key: KeySchema,
    pub projection: Projection,
    pub status: IndexStatus,
    pub throughput: Option<Throughput>,
    /// Storage id of the index's entries (a new one per creation, so a dropped index's
    /// entries are never read again).
    pub id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeToLive {
    pub attribute: Option<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    pub name: String,
    /// Storage id (a new one per CreateTable, so a re-created table starts empty).
    pub id: u64,
    pub key: KeySchema,
    /// Every attribute named in a key of the table or an index, with its type.
    pub attributes: Vec<KeyAttr>,
    pub billing: BillingMode,
    pub throughput: Throughput,
    pub indexes: Vec<IndexMeta>,
    pub created: f64,
    pub ttl: TimeToLive,
    pub tags: BTreeMap<String, String>,
    pub deletion_protection: bool,
    pub table_class: String,
    /// Stable id reported as TableId.
    pub table_uuid: String,
    /// Set by the stack file (`[tables.NAME]`): `up` keeps such a table in line with the file.
    pub from_stack: bool,
    /// Bumped by every change: a change made from an older description is refused (two
    /// concurrent UpdateTable/TagResource calls cannot undo each other).
    #[serde(default)]
    pub version: u64,
}

impl TableMeta {
    pub fn index(&self, name: &str) -> Option<&IndexMeta> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The attributes an index entry carries: its own key, the table's key, and what its
    /// projection names.
    pub fn project_for_index(&self, index: &IndexMeta, item: &Item) -> Item {
        match &index.projection {
            Projection::All => item.clone(),
            Projection::KeysOnly | Projection::Include(_) => item
                .iter()
                .filter(|(name, _)| {
                    index.key.is_key_attribute(name)
                        || self.key.is_key_attribute(name)
                        || matches!(&index.projection, Projection::Include(list) if list.iter().any(|n| n == *name))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}
