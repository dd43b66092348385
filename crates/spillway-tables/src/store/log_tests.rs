//! The redo log against crashes: the store's files copied while it runs are what a `kill -9`
//! leaves on disk (redb's file as of its last durable commit, the log as fsync'd).

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::Db;
use super::writer::{CatalogChange, Decision, WriteOp, Writer};
use crate::value::item_from_json;

fn item(pk: &str, n: u64) -> crate::value::Item {
    item_from_json(&json!({"pk": {"S": pk}, "n": {"N": n.to_string()}}))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn put(table: &crate::schema::TableMeta, pk: &str, n: u64) -> WriteOp {
    let it = item(pk, n);
    WriteOp {
        table: table.name.clone(),
        table_id: table.id,
        key: crate::api::items::item_key(table, &it).unwrap_or_else(|e| panic!("{e}")),
        decide: Box::new(move |_| Ok(Decision::Put(it))),
    }
}

/// What a crash at this moment leaves: the files as they are on disk now.
fn crash_image(from: &Path, to: &Path, with_log: bool) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(from.join("tables.redb"), to.join("tables.redb"))
        .unwrap_or_else(|e| panic!("{e}"));
    if with_log {
        std::fs::copy(from.join("tables.wal"), to.join("tables.wal"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The `n` of each of `pks` in the store in `dir`, and the table's item count.
fn read_back(
    dir: &Path,
    table: &crate::schema::TableMeta,
    pks: &[String],
) -> (Vec<Option<String>>, u64) {
    let db = Db::open(dir).unwrap_or_else(|e| panic!("{e}"));
    let snap = db.snapshot().unwrap_or_else(|e| panic!("{e}"));
    let found = pks
        .iter()
        .map(|pk| {
            let key =
                crate::api::items::item_key(table, &item(pk, 0)).unwrap_or_else(|e| panic!("{e}"));
            snap.get(&super::items_table(table.id), &key)
                .unwrap_or_else(|e| panic!("{e}"))
                .and_then(|i| match i.get("n") {
                    Some(crate::value::AttributeValue::N(n)) => Some(n.to_string()),
                    _ => None,
                })
        })
        .collect();
    let count = snap.stats(table.id).unwrap_or_else(|e| panic!("{e}")).0;
    (found, count)
}

/// `a` and three others set to `n`: a round of four writes, the fewest that are logged.
fn four(table: &crate::schema::TableMeta, n: u64) -> Vec<WriteOp> {
    ["a", "b", "c", "d"]
        .iter()
        .map(|pk| put(table, pk, n))
        .collect()
}

fn table_meta(name: &str) -> crate::schema::TableMeta {
    let input = json!({
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    });
    let Some(input) = input.as_object() else {
        panic!("not an object")
    };
    crate::api::table_from_request(input).unwrap_or_else(|e| panic!("{e}"))
}

/// A running store in `<tempdir>/live` with a table `Events` (created by a checkpoint).
async fn started() -> (tempfile::TempDir, Writer, crate::schema::TableMeta) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = Arc::new(Db::open(&dir.path().join("live")).unwrap_or_else(|e| panic!("{e}")));
    let (writer, _catalog) = Writer::start(db).unwrap_or_else(|e| panic!("{e}"));
    let table = writer
        .catalog(CatalogChange::Create(table_meta("Events")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, writer, (*table).clone())
}

#[tokio::test]
async fn acknowledged_writes_come_back_from_the_log_after_a_crash() {
    let (dir, writer, table) = started().await;
    let live = dir.path().join("live");
    let pks: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    // Two rounds of 25 (logged), then an overwrite of the first four (a round of four writes,
    // the fewest that are logged).
    for chunk in pks.chunks(25) {
        let ops = chunk.iter().map(|pk| put(&table, pk, 1)).collect();
        let results = writer
            .write(ops, false, None, 0.0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(results.iter().all(Result::is_ok));
    }
    writer
        .write(
            pks[..4].iter().map(|pk| put(&table, pk, 2)).collect(),
            false,
            None,
            0.0,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Without the log the file alone has none of them: they were acknowledged on the log's
    // fsync, not redb's (the check that this test exercises the log at all).
    crash_image(&live, &dir.path().join("file-only"), false);
    let (found, count) = read_back(&dir.path().join("file-only"), &table, &pks);
    assert!(found.iter().all(Option::is_none), "{found:?}");
    assert_eq!(count, 0);

    // With it, every acknowledged write, the last value of each, and the counters.
    crash_image(&live, &dir.path().join("crashed"), true);
    let (found, count) = read_back(&dir.path().join("crashed"), &table, &pks);
    assert!(
        found[..4].iter().all(|n| n.as_deref() == Some("2")),
        "{found:?}"
    );
    assert!(
        found[4..].iter().all(|n| n.as_deref() == Some("1")),
        "{found:?}"
    );
    assert_eq!(count, 50);
    // Opening replayed into a checkpoint: the file is complete by itself.
    crash_image(
        &dir.path().join("crashed"),
        &dir.path().join("again"),
        false,
    );
    let (found, count) = read_back(&dir.path().join("again"), &table, &pks);
    assert!(found.iter().all(Option::is_some), "{found:?}");
    assert_eq!(count, 50);

    // A round of fewer writes than are logged is a durable commit of its own, and a
    // checkpoint: the file alone then holds it and every logged round before it.
    writer
        .write(vec![put(&table, "p0", 3)], false, None, 0.0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    crash_image(&live, &dir.path().join("after-a-small-round"), false);
    let (found, count) = read_back(&dir.path().join("after-a-small-round"), &table, &pks);
    assert_eq!(found[0].as_deref(), Some("3"));
    assert!(found.iter().all(Option::is_some), "{found:?}");
    assert_eq!(count, 50);
}

#[tokio::test]
async fn a_catalog_change_is_a_checkpoint_and_old_frames_are_not_replayed_over_it() {
    let (dir, writer, table) = started().await;
    let live = dir.path().join("live");
    writer
        .write(four(&table, 1), false, None, 0.0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let frame_of_a = std::fs::read(live.join("tables.wal")).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(frame_of_a.get(..4), Some(&[0u8; 4][..]), "no frame written");
    // `a` changed, then a checkpoint (another table created): the file holds `a` = 2.
    writer
        .write(four(&table, 2), false, None, 0.0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    writer
        .catalog(CatalogChange::Create(table_meta("Others")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A crash image whose log holds the frame from before the checkpoint (the log is written
    // over from its start after a checkpoint, not emptied): the frame is older than the
    // checkpoint and must be skipped, or `a` would go back to 1.
    let image = dir.path().join("crashed");
    crash_image(&live, &image, false);
    std::fs::write(image.join("tables.wal"), frame_of_a).unwrap_or_else(|e| panic!("{e}"));
    let (found, _) = read_back(&image, &table, &["a".to_owned()]);
    assert_eq!(found, [Some("2".to_owned())]);
}
