//! The table service of one stack: the store, its writer, the published catalog and the
//! background work (TTL expiry, index backfills).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock;
use crate::error::TablesError;
use crate::metrics::Metrics;
use crate::schema::{IndexStatus, TableMeta};
use crate::store::writer::{Catalog, CatalogChange, CatalogError, Writer};
use crate::store::{Db, StoreError};

/// How often expired items (and transactions' idempotency tokens past their 10 minutes) are
/// looked for. DynamoDB deletes expired items "within a few days";
/// spillway within about a minute, in rounds bounded so that writers are not held up.
const TTL_SWEEP_EVERY: Duration = Duration::from_secs(20);
const TTL_DELETES_PER_ROUND: usize = 1000;
/// Items indexed per backfill step (one writer job, so item writes interleave).
const BACKFILL_STEP: usize = 2000;

pub struct Tables {
    pub(crate) db: Arc<Db>,
    pub(crate) writer: Writer,
    pub(crate) catalog: Catalog,
    pub(crate) region: String,
    pub(crate) account: String,
    pub(crate) metrics: Metrics,
    stopped: Arc<tokio::sync::Notify>,
}

impl Tables {
    /// Opens (creating if needed) the store in `dir` (the stack's `.spillway/tables/`) and
    /// starts its background work. Must be called inside a tokio runtime.
    pub fn open(dir: &Path, region: &str, account: &str) -> Result<Arc<Tables>, StoreError> {
        let db = Arc::new(Db::open(dir)?);
        let (writer, catalog) = Writer::start(db.clone())?;
        let tables = Arc::new(Tables {
            db,
            writer,
            catalog,
            region: region.to_owned(),
            account: account.to_owned(),
            metrics: Metrics::default(),
            stopped: Arc::new(tokio::sync::Notify::new()),
        });
        tables.clone().spawn_sweeper();
        // Indexes left CREATING by a stop mid-backfill start again from the beginning (the
        // backfill writes are idempotent).
        for meta in tables.tables() {
            for index in meta
                .indexes
                .iter()
                .filter(|i| i.status == IndexStatus::Creating)
            {
                tables.clone().spawn_backfill(meta.name.clone(), index.id);
            }
        }
        Ok(tables)
    }

    /// Stops the background work and releases the store's file.
    pub fn close(&self) {
        self.stopped.notify_waiters();
        self.db.close();
    }

    /// The tables' metrics in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        self.metrics.render()
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn table_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{name}",
            self.region, self.account
        )
    }

    /// Every table, by name.
    pub fn tables(&self) -> Vec<Arc<TableMeta>> {
        self.catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn table(&self, name: &str) -> Option<Arc<TableMeta>> {
        self.catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// The table or DynamoDB's ResourceNotFoundException for data-plane actions.
    pub(crate) fn require(&self, name: &str) -> Result<Arc<TableMeta>, TablesError> {
        self.table(name).ok_or_else(TablesError::no_table)
    }

    pub(crate) async fn change(
        &self,
        change: CatalogChange,
    ) -> Result<Arc<TableMeta>, TablesError> {
        self.writer.catalog(change).await.map_err(|e| match e {
            CatalogError::Exists => TablesError::ResourceInUse("Table already exists".into()),
            CatalogError::NotFound => TablesError::no_table(),
            CatalogError::Conflict => TablesError::ResourceInUse(
                "Attempt to change a resource which is still in use: the table was changed by another request meanwhile".into(),
            ),
            CatalogError::Store(e) => TablesError::Internal(e.to_string()),
        })
    }

    /// Makes a table declared in a stack file exist as declared: created when absent; when
    /// kept from an earlier run, its key must match (a key cannot change), indexes the file
    /// adds are created and backfilled, and the TTL attribute follows the file.
    pub async fn ensure_from_stack(
        self: &Arc<Self>,
        mut wanted: TableMeta,
        ttl_attribute: Option<&str>,
    ) -> Result<(), TablesError> {
        wanted.from_stack = true;
        wanted.ttl = crate::schema::TimeToLive {
            attribute: ttl_attribute.map(str::to_owned),
            enabled: ttl_attribute.is_some(),
        };
        let Some(current) = self.table(&wanted.name) else {
            let name = wanted.name.clone();
            self.change(CatalogChange::Create(wanted)).await?;
            tracing::info!(table = name, "tables: stack table created");
            return Ok(());
        };
        if current.key != wanted.key {
            return Err(TablesError::Validation(format!(
                "the table kept from an earlier run has another key ({}); DynamoDB cannot change a table's key: delete the table (aws dynamodb delete-table) or the stack's state to start over",
                current.key.names().collect::<Vec<_>>().join(", ")
            )));
        }
        let mut meta = (*current).clone();
        let mut added = Vec::new();
        for index in wanted.indexes {
            if meta.index(&index.name).is_none() {
                added.push(index.name.clone());
                meta.indexes.push(crate::schema::IndexMeta {
                    status: IndexStatus::Creating,
                    ..index
                });
            }
        }
        for a in wanted.attributes {
            if !meta.attributes.iter().any(|x| x.name == a.name) {
                meta.attributes.push(a);
            }
        }
        let ttl_changed = meta.ttl != wanted.ttl;
        meta.ttl = wanted.ttl;
        meta.from_stack = true;
        if added.is_empty() && !ttl_changed {
            return Ok(());
        }
        let updated = self.change(CatalogChange::Update(meta)).await?;
        for name in added {
            if let Some(index) = updated.index(&name) {
                self.clone().spawn_backfill(updated.name.clone(), index.id);
            }
        }
        Ok(())
    }

    /// Deletes expired items now (tests; the sweeper does it every few seconds).
    pub async fn expire_now(&self) -> Result<usize, TablesError> {
        self.writer
            .expire(clock::now(), usize::MAX)
            .await
            .map_err(|e| TablesError::Internal(e.to_string()))
    }

    fn spawn_sweeper(self: Arc<Self>) {
        let stopped = self.stopped.clone();
        let weak = Arc::downgrade(&self);
        drop(self);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(TTL_SWEEP_EVERY) => {}
                    _ = stopped.notified() => return,
                }
                let Some(tables) = weak.upgrade() else { return };
                match tables
                    .writer
                    .expire(clock::now(), TTL_DELETES_PER_ROUND)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(deleted = n, "tables: expired items deleted");
                        tables.metrics.ttl_deleted(n as u64);
                    }
                    Err(e) => tracing::warn!("tables: TTL sweep: {e}"),
                }
            }
        });
    }

    /// Fills a new index from the table's items in steps, then marks it ACTIVE. Writes made
    /// meanwhile maintain the index already, so the index is complete when the pass ends.
    pub(crate) fn spawn_backfill(self: Arc<Self>, table: String, index_id: u64) {
        tokio::spawn(async move {
            let mut after = None;
            loop {
                match self
                    .writer
                    .backfill(&table, index_id, after, BACKFILL_STEP)
                    .await
                {
                    Ok(Some(last)) => after = Some(last),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(table, "tables: index backfill stopped: {e}");
                        return;
                    }
                }
            }
            // Another change (tags, TTL) may land between reading the description and
            // writing it back: read it again and retry.
            for _ in 0..20 {
                let Some(meta) = self.table(&table) else {
                    return;
                };
                let mut meta = (*meta).clone();
                let Some(index) = meta.indexes.iter_mut().find(|i| i.id == index_id) else {
                    return;
                };
                index.status = IndexStatus::Active;
                let name = index.name.clone();
                match self.writer.catalog(CatalogChange::Update(meta)).await {
                    Ok(_) => {
                        tracing::info!(table, index = name, "tables: index backfilled and active");
                        return;
                    }
                    Err(CatalogError::Conflict) => continue,
                    Err(e) => {
                        tracing::warn!(table, "tables: marking an index active: {e}");
                        return;
                    }
                }
            }
        });
    }
}
