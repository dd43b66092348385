//! The store's conditional mutations: a visibility change or delete planned from a receipt
//! that a newer receive has replaced applies to nothing (the race of a stale handle against a
//! receive that happened between its read and its commit).

// In a test, a failed expectation is the failure report.
#![allow(clippy::expect_used)]

use spillway_queue::store::redb::RedbStore;
use spillway_queue::store::{DeliveryState, MessageRecord, Mutation, Store};

fn state(nonce: u64, visible_at: u64) -> DeliveryState {
    DeliveryState {
        visible_at,
        receive_count: 1,
        first_receive_at: Some(1),
        last_receive_at: Some(1),
        receipt_nonce: nonce,
        enqueued_at: 1,
        group_id: None,
    }
}

#[test]
fn a_stale_nonce_changes_and_deletes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(dir.path()).expect("open");
    let record = MessageRecord {
        message_id: "m".into(),
        body: "b".into(),
        attributes: Default::default(),
        system_attributes: Default::default(),
        sent_at: 1,
        sender_id: "s".into(),
        group_id: None,
        deduplication_id: None,
        sequence_number: None,
        dead_letter_source_arn: None,
    };
    store
        .apply(&[Mutation::PutMessage {
            queue: 7,
            seq: 1,
            record,
            state: state(5, 1_000),
        }])
        .expect("put");

    // Planned with nonce 4, stored is 5: nothing happens.
    store
        .apply(&[
            Mutation::SetState {
                queue: 7,
                seq: 1,
                state: state(4, 9_000),
                if_nonce: Some(4),
            },
            Mutation::DeleteMessage {
                queue: 7,
                seq: 1,
                if_nonce: Some(4),
            },
        ])
        .expect("stale changes");
    assert_eq!(store.state(7, 1).expect("read"), Some(state(5, 1_000)));
    assert_eq!(store.next_visible_after(7, 0).expect("index"), Some(1_000));

    // With the stored nonce both apply.
    store
        .apply(&[Mutation::SetState {
            queue: 7,
            seq: 1,
            state: state(6, 2_000),
            if_nonce: Some(5),
        }])
        .expect("current change");
    assert_eq!(store.state(7, 1).expect("read"), Some(state(6, 2_000)));
    assert_eq!(store.next_visible_after(7, 0).expect("index"), Some(2_000));
    store
        .apply(&[Mutation::DeleteMessage {
            queue: 7,
            seq: 1,
            if_nonce: Some(6),
        }])
        .expect("current delete");
    assert_eq!(store.state(7, 1).expect("read"), None);
    assert_eq!(store.message(7, 1).expect("read"), None);
}
