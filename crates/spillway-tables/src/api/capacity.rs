//! Consumed capacity as DynamoDB computes it: a read unit per 4 KB (half for eventually
//! consistent reads, twice for transactions), a write unit per 1 KB (twice for transactions),
//! each rounded up and at least one; reported when `ReturnConsumedCapacity` asks.

use serde_json::{Value, json};

use super::input::{Input, opt_enum};
use crate::error::TablesError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    None,
    Total,
    Indexes,
}

pub fn report(input: &Input) -> Result<Report, TablesError> {
    Ok(
        match opt_enum(
            input,
            "ReturnConsumedCapacity",
            &["INDEXES", "TOTAL", "NONE"],
        )? {
            Some("INDEXES") => Report::Indexes,
            Some("TOTAL") => Report::Total,
            _ => Report::None,
        },
    )
}

pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Units consumed by one request on one table (and its indexes).
#[derive(Debug, Clone, Default)]
pub struct Consumed {
    pub table: String,
    pub read: f64,
    pub write: f64,
    /// Per index: name, read units, write units, whether it is a local index.
    pub indexes: Vec<(String, f64, f64, bool)>,
}

impl Consumed {
    pub fn total(&self) -> f64 {
        self.read + self.write + self.indexes.iter().map(|(_, r, w, _)| r + w).sum::<f64>()
    }

    pub fn render(&self, how: Report) -> Option<Value> {
        match how {
            Report::None => None,
            Report::Total => Some(json!({"TableName": self.table, "CapacityUnits": self.total()})),
            Report::Indexes => {
                let mut v = json!({
                    "TableName": self.table,
                    "CapacityUnits": self.total(),
                    "Table": {"CapacityUnits": self.read + self.write},
                });
                let mut gsis = serde_json::Map::new();
                let mut lsis = serde_json::Map::new();
                for (name, r, w, local) in &self.indexes {
                    let into = if *local { &mut lsis } else { &mut gsis };
                    into.insert(name.clone(), json!({"CapacityUnits": r + w}));
                }
                if !gsis.is_empty() {
                    v["GlobalSecondaryIndexes"] = Value::Object(gsis);
                }
                if !lsis.is_empty() {
                    v["LocalSecondaryIndexes"] = Value::Object(lsis);
                }
                Some(v)
            }
        }
    }
}
