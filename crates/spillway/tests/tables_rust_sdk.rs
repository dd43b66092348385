//! The AWS SDK for Rust's DynamoDB client against the stack's tables: its serializers, its
//! error parsing (modeled errors as enum variants, cancellation reasons) and its paginators
//! work unchanged.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ReturnValue,
    ScalarAttributeType, TransactWriteItem,
};
use spillway_testkit::up_in_process;

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.app]
access_key_id = "AKIASPILLWAYAPPUSER1"
secret_access_key = "YXBwLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFiY2Rl"
policies = [{ allow = ["dynamodb:*"], resources = ["*"] }]
"#;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_sdk_creates_writes_queries_and_reads_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(
            "AKIASPILLWAYAPPUSER1",
            "YXBwLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFiY2Rl",
            None,
            None,
            "test",
        ))
        .build();
    let ddb = Client::from_conf(config);
    let attr = |name: &str, t| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let key = |name: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    ddb.create_table()
        .table_name("Orders")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("customer", ScalarAttributeType::S))
        .attribute_definitions(attr("at", ScalarAttributeType::N))
        .key_schema(key("customer", KeyType::Hash))
        .key_schema(key("at", KeyType::Range))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));

    for i in 0..30 {
        ddb.put_item()
            .table_name("Orders")
            .item("customer", s("c1"))
            .item("at", n(&i.to_string()))
            .item("amount", n("9.99"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
    let updated = ddb
        .update_item()
        .table_name("Orders")
        .key("customer", s("c1"))
        .key("at", n("3"))
        .update_expression(
            "SET amount = amount + :x, labels = list_append(if_not_exists(labels, :empty), :t)",
        )
        .expression_attribute_values(":x", n("0.01"))
        .expression_attribute_values(":empty", AttributeValue::L(vec![]))
        .expression_attribute_values(":t", AttributeValue::L(vec![s("gift")]))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let attrs = updated.attributes().cloned().unwrap_or_default();
    assert_eq!(attrs.get("amount"), Some(&n("10")));
    assert_eq!(
        attrs.get("labels"),
        Some(&AttributeValue::L(vec![s("gift")]))
    );

    // A paginator over Limit-sized pages, backwards, with a key condition.
    let pages: Vec<_> = ddb
        .query()
        .table_name("Orders")
        .key_condition_expression("customer = :c AND #at BETWEEN :lo AND :hi")
        .expression_attribute_names("#at", "at")
        .expression_attribute_values(":c", s("c1"))
        .expression_attribute_values(":lo", n("5"))
        .expression_attribute_values(":hi", n("24"))
        .scan_index_forward(false)
        .limit(7)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let ats: Vec<String> = pages
        .into_iter()
        .map(|r| {
            let item: HashMap<String, AttributeValue> = r.unwrap_or_else(|e| panic!("{e:?}"));
            match item.get("at") {
                Some(AttributeValue::N(v)) => v.clone(),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    let want: Vec<String> = (5..=24).rev().map(|i: i32| i.to_string()).collect();
    assert_eq!(ats, want);

    // Modeled errors arrive as the SDK's enum variants.
    let refused = ddb
        .put_item()
        .table_name("Orders")
        .item("customer", s("c1"))
        .item("at", n("1"))
        .condition_expression("attribute_not_exists(customer)")
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .send()
        .await;
    match refused {
        Err(SdkError::ServiceError(e)) => match e.err() {
            PutItemError::ConditionalCheckFailedException(c) => {
                assert_eq!(c.item().and_then(|i| i.get("amount")), Some(&n("9.99")));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let put = |at: &str, cond: Option<&str>| {
        let mut p = Put::builder()
            .table_name("Orders")
            .item("customer", s("c2"))
            .item("at", n(at));
        if let Some(c) = cond {
            p = p.condition_expression(c);
        }
        TransactWriteItem::builder()
            .put(p.build().unwrap_or_else(|e| panic!("{e}")))
            .build()
    };
    let cancelled = ddb
        .transact_write_items()
        .transact_items(put("1", None))
        .transact_items(put("2", Some("attribute_exists(nothing)")))
        .send()
        .await;
    match cancelled {
        Err(SdkError::ServiceError(e)) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(t) => {
                let codes: Vec<&str> = t
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or(""))
                    .collect();
                assert_eq!(codes, ["None", "ConditionalCheckFailed"]);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let none = ddb
        .get_item()
        .table_name("Orders")
        .key("customer", s("c2"))
        .key("at", n("1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(
        none.item().is_none(),
        "a cancelled transaction wrote nothing"
    );
    let missing = ddb.describe_table().table_name("Nope").send().await;
    assert!(
        matches!(&missing, Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception()),
        "{missing:?}"
    );
    running.shutdown().await;
}
