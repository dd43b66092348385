//! Inputs built to exhaust a parser's stack or the writer's time: refused or handled in
//! bounded depth, never a crash.

use serde_json::{Map, Value, json};
use spillway_tables::expr::{ExprKind, Substitutions, legacy, parse_condition, parse_update};
use spillway_tables::value::{AttributeValue, Item};

#[test]
fn deeply_nested_parentheses_and_nots_are_refused() {
    let mut subs = Substitutions::new(
        [("#a".to_owned(), "a".to_owned())].into_iter().collect(),
        [(":v".to_owned(), AttributeValue::S("x".into()))]
            .into_iter()
            .collect(),
    );
    let deep = format!("{}#a = :v{}", "(".repeat(2000), ")".repeat(2000));
    let err = parse_condition(&deep, ExprKind::Filter, &mut subs)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("Invalid FilterExpression: The expression is nested too deeply"),
        "{err}"
    );
    let nots = format!("{}#a = :v", "NOT ".repeat(1000));
    assert!(parse_condition(&nots, ExprKind::Condition, &mut subs).is_err());
    let set = format!("SET #a = {}:v{}", "(".repeat(2000), ")".repeat(2000));
    assert!(parse_update(&set, &mut subs).is_err());
    // Nesting at the limit is not refused for its depth (these parentheses are redundant,
    // which DynamoDB refuses in its own words).
    let at_limit = format!("{}#a = :v{}", "(".repeat(100), ")".repeat(100));
    let err = parse_condition(&at_limit, ExprKind::Filter, &mut subs)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(!err.contains("nested too deeply"), "{err}");
    let mut subs = Substitutions::new(
        [("#a".to_owned(), "a".to_owned())].into_iter().collect(),
        [(":v".to_owned(), AttributeValue::S("x".into()))]
            .into_iter()
            .collect(),
    );
    let fine = "(#a = :v) AND ((#a = :v) OR NOT (#a = :v))";
    let parsed = parse_condition(fine, ExprKind::Filter, &mut subs);
    assert!(parsed.is_ok(), "{parsed:?}");
}

#[test]
fn a_huge_legacy_filter_evaluates_without_deep_recursion() {
    let mut filter = Map::new();
    for i in 0..200_000 {
        filter.insert(format!("a{i}"), json!({"ComparisonOperator": "NULL"}));
    }
    let cond = legacy::filter_to_condition(&Value::Object(filter), Some("AND"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no condition"));
    // Evaluated (and dropped) on a thread with a small stack: a chain 200,000 deep would
    // overflow it, a balanced tree is 18 levels.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let item = Item::new();
            let r = cond.eval(&item);
            drop(cond);
            r
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(handle.join().ok(), Some(true));
}
