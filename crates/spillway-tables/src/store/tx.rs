//! One round's write transaction as the writer uses it: each tree of a table (items, an
//! index, TTL entries) opened once per round, since closing one writes its root back into
//! redb's table of tables, and, in a round the log makes durable, every change recorded in
//! the round's log frame as it is made.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use redb::{ReadableTable, Table, WriteTransaction};

use super::wal::{Change, Frame, Tree};
use super::{SEQUENCE, STATS, StoreError, TOKENS, decode_item, def};
use crate::value::Item;

/// The key of the log's epoch in the `sequence` table.
const EPOCH_KEY: &str = "wal_epoch";

type Bytes = &'static [u8];

pub(crate) struct Tx<'t> {
    txn: &'t WriteTransaction,
    open: HashMap<Tree, Table<'t, Bytes, Bytes>>,
    frame: Option<Frame>,
}

impl<'t> Tx<'t> {
    /// `frame`: where a logged round's changes go (`None`: a checkpoint, or a replay).
    pub(crate) fn new(txn: &'t WriteTransaction, frame: Option<Frame>) -> Tx<'t> {
        Tx {
            txn,
            open: HashMap::new(),
            frame,
        }
    }

    /// The transaction, every cached tree closed first (a catalog change creates and deletes
    /// trees, which redb refuses while they are open). Not logged: only checkpoint rounds
    /// change the catalog.
    pub(crate) fn for_catalog(&mut self) -> &'t WriteTransaction {
        self.open.clear();
        self.txn
    }

    /// The transaction, for reading the shared tables the cache never holds (stats, tokens).
    pub(crate) fn shared(&self) -> &'t WriteTransaction {
        self.txn
    }

    /// The round's frame, every tree closed (they must be before the commit).
    pub(crate) fn finish(mut self) -> Option<Frame> {
        self.open.clear();
        self.frame.take()
    }

    pub(crate) fn tree(&mut self, tree: Tree) -> Result<&mut Table<'t, Bytes, Bytes>, StoreError> {
        Ok(match self.open.entry(tree) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                self.txn
                    .open_table(def(&tree.name()))
                    .map_err(StoreError::io)?,
            ),
        })
    }

    pub(crate) fn item(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Item>, StoreError> {
        let t = self.tree(tree)?;
        match t.get(key).map_err(StoreError::io)? {
            Some(v) => Ok(Some(decode_item(v.value())?)),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`; whether a value was replaced.
    pub(crate) fn put(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let replaced = self
            .tree(tree)?
            .insert(key, value)
            .map_err(StoreError::io)?
            .is_some();
        self.record(&Change::Put { tree, key, value })?;
        Ok(replaced)
    }

    pub(crate) fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<(), StoreError> {
        self.tree(tree)?.remove(key).map_err(StoreError::io)?;
        self.record(&Change::Remove { tree, key })
    }

    /// Sets a table's or index's counters.
    pub(crate) fn set_stats(&mut self, id: u64, count: u64, bytes: u64) -> Result<(), StoreError> {
        self.txn
            .open_table(STATS)
            .map_err(StoreError::io)?
            .insert(id, (count, bytes))
            .map_err(StoreError::io)?;
        self.record(&Change::Stats { id, count, bytes })
    }

    /// Records a transaction's idempotency token.
    pub(crate) fn put_token(&mut self, token: &str, value: &[u8]) -> Result<(), StoreError> {
        self.txn
            .open_table(TOKENS)
            .map_err(StoreError::io)?
            .insert(token, value)
            .map_err(StoreError::io)?;
        self.record(&Change::Token { token, value })
    }

    /// Applies a change read from the log.
    pub(crate) fn replay(&mut self, change: Change<'_>) -> Result<(), StoreError> {
        match change {
            Change::Put { tree, key, value } => self.put(tree, key, value).map(|_| ()),
            Change::Remove { tree, key } => self.remove(tree, key),
            Change::Stats { id, count, bytes } => self.set_stats(id, count, bytes),
            Change::Token { token, value } => self.put_token(token, value),
        }
    }

    fn record(&mut self, change: &Change<'_>) -> Result<(), StoreError> {
        match &mut self.frame {
            Some(frame) => frame.push(change),
            None => Ok(()),
        }
    }
}

/// The log epoch the last checkpoint stored (0 for a store that never had one).
pub(crate) fn epoch(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let t = txn.open_table(SEQUENCE).map_err(StoreError::io)?;
    let got = t.get(EPOCH_KEY).map_err(StoreError::io)?;
    Ok(got.map(|v| v.value()).unwrap_or(0))
}

/// Stores the epoch of the log that follows this (durable) commit.
pub(crate) fn set_epoch(txn: &WriteTransaction, epoch: u64) -> Result<(), StoreError> {
    txn.open_table(SEQUENCE)
        .map_err(StoreError::io)?
        .insert(EPOCH_KEY, epoch)
        .map_err(StoreError::io)?;
    Ok(())
}
