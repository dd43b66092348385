//! Reads from a snapshot: one item by key, or a key range in either direction. A snapshot sees
//! every commit that finished before it opened (strongly consistent reads: the writer answers
//! only after its commit), so eventually consistent reads are served the same way.

use std::ops::Bound;

use redb::{ReadTransaction, ReadableDatabase};

use super::{Db, STATS, StoreError, decode_item, def};
use crate::value::Item;

/// One entry of a range, as redb yields it.
type Entry<'a> = Result<
    (
        redb::AccessGuard<'a, &'static [u8]>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

pub struct Snapshot {
    txn: ReadTransaction,
}

/// What a range visitor wants next.
pub enum Visit {
    Continue,
    Stop,
}

impl Db {
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.with(|db| {
            Ok(Snapshot {
                txn: db.begin_read().map_err(StoreError::io)?,
            })
        })
    }
}

impl Snapshot {
    /// The item under `key` in the redb table `table` (`items/T` or `index/I`).
    pub fn get(&self, table: &str, key: &[u8]) -> Result<Option<Item>, StoreError> {
        let t = match self.txn.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(StoreError::io(e)),
        };
        match t.get(key).map_err(StoreError::io)? {
            Some(v) => Ok(Some(decode_item(v.value())?)),
            None => Ok(None),
        }
    }

    /// Visits `(key, item)` pairs between the bounds, ascending or descending, until the
    /// visitor stops or the range ends.
    pub fn range(
        &self,
        table: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        forward: bool,
        mut visit: impl FnMut(&[u8], Item) -> Result<Visit, StoreError>,
    ) -> Result<(), StoreError> {
        let t = match self.txn.open_table(def(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(StoreError::io(e)),
        };
        // An empty or inverted range (a start key past the end) reads nothing; redb, like
        // BTreeMap, would refuse it.
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
            (lower, upper)
            && (a > b
                || (a == b
                    && !(matches!(lower, Bound::Included(_))
                        && matches!(upper, Bound::Included(_)))))
        {
            return Ok(());
        }
        let range = t.range::<&[u8]>((lower, upper)).map_err(StoreError::io)?;
        let mut step = |entry: Entry<'_>| -> Result<Visit, StoreError> {
            let (k, v) = entry.map_err(StoreError::io)?;
            visit(k.value(), decode_item(v.value())?)
        };
        if forward {
            for entry in range {
                if let Visit::Stop = step(entry)? {
                    break;
                }
            }
        } else {
            for entry in range.rev() {
                if let Visit::Stop = step(entry)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Item count and bytes of the table with storage id `id`.
    pub fn stats(&self, id: u64) -> Result<(u64, u64), StoreError> {
        let t = self.txn.open_table(STATS).map_err(StoreError::io)?;
        Ok(t.get(id)
            .map_err(StoreError::io)?
            .map(|v| v.value())
            .unwrap_or((0, 0)))
    }
}
