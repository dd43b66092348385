//! DynamoDB expressions: any text through every parser gets a value or a prefixed
//! ValidationException message, never a panic; parsed conditions and updates evaluate
//! against a small item without panicking either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spillway_tables::expr::{self, ExprKind, Substitutions};
use spillway_tables::number::Number;
use spillway_tables::value::{AttributeValue, Item};

fn subs() -> Substitutions {
    let one = Number::parse("1").unwrap_or_else(|_| Number::zero());
    Substitutions::new(
        [("#a".to_owned(), "a".to_owned()), ("#b".to_owned(), "b".to_owned())].into(),
        [
            (":s".to_owned(), AttributeValue::S("x".into())),
            (":n".to_owned(), AttributeValue::N(one)),
            (":l".to_owned(), AttributeValue::L(vec![AttributeValue::Null])),
            (":ss".to_owned(), AttributeValue::Ss(vec!["x".into()])),
        ]
        .into(),
    )
}

fuzz_target!(|text: &str| {
    let mut item = Item::new();
    item.insert("a".into(), AttributeValue::L(vec![AttributeValue::S("x".into())]));
    item.insert("b".into(), AttributeValue::M(Item::new()));
    for kind in [ExprKind::Condition, ExprKind::Filter] {
        if let Ok(c) = expr::parse_condition(text, kind, &mut subs()) {
            let _ = c.eval(&item);
        }
    }
    let _ = expr::parse_key_condition(text, &mut subs(), "a", Some("b"));
    if let Ok(paths) = expr::parse_projection(text, &mut subs()) {
        let _ = expr::project(&item, &paths);
    }
    if let Ok(u) = expr::parse_update(text, &mut subs()) {
        let _ = u.apply(&mut item);
    }
});
