//! Conformance table for the expression language: each case is an item, an expression, its
//! substitutions and what DynamoDB answers (a bool, the resulting item, or the exact message).
//! Items and expressions follow the DynamoDB Developer Guide's examples (the ProductCatalog
//! item); messages are the ones DynamoDB returns, as recorded against the real service.

use serde_json::{Value, json};
use spillway_tables::expr::{
    self, ExprKind, KeyCondition, RangeCondition, Substitutions, parse_key_condition,
};
use spillway_tables::value::{AttributeValue, Item, item_from_json, item_to_json};

/// The ProductCatalog item from "Using projection expressions in DynamoDB".
fn product() -> Value {
    json!({
        "Id": {"N": "123"},
        "Title": {"S": "Bicycle 123"},
        "Description": {"S": "123 description"},
        "BicycleType": {"S": "Hybrid"},
        "Brand": {"S": "Brand-Company C"},
        "Price": {"N": "500"},
        "Color": {"SS": ["Red", "Black"]},
        "ProductCategory": {"S": "Bicycle"},
        "InStock": {"BOOL": true},
        "QuantityOnHand": {"NULL": true},
        "RelatedItems": {"L": [{"N": "341"}, {"N": "472"}, {"N": "649"}]},
        "Pictures": {"M": {
            "FrontView": {"S": "http://example.com/products/123_front.jpg"},
            "RearView": {"S": "http://example.com/products/123_rear.jpg"},
            "SideView": {"S": "http://example.com/products/123_left_side.jpg"}
        }},
        "ProductReviews": {"M": {
            "FiveStar": {"L": [
                {"S": "Excellent! Can't recommend it highly enough! Buy it!"},
                {"S": "Do yourself a favor and buy this."}
            ]},
            "OneStar": {"L": [{"S": "Terrible product! Do not buy this."}]}
        }},
        "Comment": {"S": "This product sells out quickly during the summer"},
        "Safety.Warning": {"S": "Always wear a helmet"}
    })
}

/// The item of "DynamoDB condition expression CLI example".
fn catalog_456() -> Value {
    json!({"Id": {"N": "456"}, "ProductCategory": {"S": "Sporting Goods"}, "Price": {"N": "650"}})
}

fn item(v: &Value) -> Item {
    item_from_json(v).unwrap_or_else(|e| panic!("bad test item: {e}"))
}

fn subs(names: &Value, values: &Value) -> Substitutions {
    let names = (!names.is_null()).then_some(names);
    let values = (!values.is_null()).then_some(values);
    Substitutions::from_json(names, values).unwrap_or_else(|e| panic!("bad substitutions: {e}"))
}

/// Condition cases: (item, expression, names, values, Ok(result) or Err(message)).
type CondCase = (
    Value,
    &'static str,
    Value,
    Value,
    Result<bool, &'static str>,
);

fn run_conditions(kind: ExprKind, cases: Vec<CondCase>) {
    for (i, (it, text, names, values, expected)) in cases.into_iter().enumerate() {
        let mut s = subs(&names, &values);
        let got = expr::parse_condition(text, kind, &mut s)
            .and_then(|c| s.finish().map(|()| c))
            .map(|c| c.eval(&item(&it)))
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_owned),
            "condition case {i}: {text}"
        );
    }
}

#[test]
fn condition_expression_examples() {
    let none = Value::Null;
    run_conditions(
        ExprKind::Condition,
        vec![
            // "DynamoDB condition expression CLI example": conditional put / delete / update.
            (
                catalog_456(),
                "attribute_not_exists(Id)",
                none.clone(),
                none.clone(),
                Ok(false),
            ),
            (
                json!({}),
                "attribute_not_exists(Id)",
                none.clone(),
                none.clone(),
                Ok(true),
            ),
            (
                catalog_456(),
                "(ProductCategory IN (:cat1, :cat2)) and (Price between :lo and :hi)",
                none.clone(),
                json!({":cat1": {"S": "Sporting Goods"}, ":cat2": {"S": "Gardening Supplies"}, ":lo": {"N": "500"}, ":hi": {"N": "600"}}),
                Ok(false),
            ),
            (
                catalog_456(),
                "(ProductCategory IN (:cat1, :cat2)) and (Price between :lo and :hi)",
                none.clone(),
                json!({":cat1": {"S": "Sporting Goods"}, ":cat2": {"S": "Gardening Supplies"}, ":lo": {"N": "600"}, ":hi": {"N": "700"}}),
                Ok(true),
            ),
            (
                catalog_456(),
                "Price > :limit",
                none.clone(),
                json!({":limit": {"N": "500"}}),
                Ok(true),
            ),
            (
                catalog_456(),
                "Price > :limit",
                none.clone(),
                json!({":limit": {"N": "650"}}),
                Ok(false),
            ),
            // "Condition and filter expressions, operators, and functions" (ProductCatalog item).
            (
                product(),
                "attribute_exists(Pictures.SideView)",
                none.clone(),
                none.clone(),
                Ok(true),
            ),
            (
                product(),
                "attribute_not_exists(Manufacturer)",
                none.clone(),
                none.clone(),
                Ok(true),
            ),
            (
                product(),
                "attribute_type(ProductReviews.FiveStar, :v_sub)",
                none.clone(),
                json!({":v_sub": {"S": "L"}}),
                Ok(true),
            ),
            (
                product(),
                "attribute_type(ProductReviews.FiveStar, :v_sub)",
                none.clone(),
                json!({":v_sub": {"S": "M"}}),
                Ok(false),
            ),
            (
                product(),
                "begins_with(Pictures.FrontView, :v_sub)",
                none.clone(),
                json!({":v_sub": {"S": "http://"}}),
                Ok(true),
            ),
            (
                product(),
                "begins_with(Pictures.FrontView, :v_sub)",
                none.clone(),
                json!({":v_sub": {"S": "https://"}}),
                Ok(false),
            ),
            (
                product(),
                "contains(Brand, :v_sub)",
                none.clone(),
                json!({":v_sub": {"S": "Company"}}),
                Ok(true),
            ),
            (
                product(),
                "contains(Color, :v_sub)",
                none.clone(),
                json!({":v_sub": {"S": "Red"}}),
                Ok(true),
            ),
            (
                product(),
                "contains(Color, :v_sub)",
                none.clone(),
                json!({":v_sub": {"S": "Blue"}}),
                Ok(false),
            ),
            (
                product(),
                "contains(RelatedItems, :v)",
                none.clone(),
                json!({":v": {"N": "472"}}),
                Ok(true),
            ),
            (
                product(),
                "size(Brand) <= :v_sub",
                none.clone(),
                json!({":v_sub": {"N": "20"}}),
                Ok(true),
            ),
            (
                product(),
                "size(Color) < :v_sub",
                none.clone(),
                json!({":v_sub": {"N": "3"}}),
                Ok(true),
            ),
            (
                product(),
                "size(ProductReviews.OneStar) > :v_sub",
                none.clone(),
                json!({":v_sub": {"N": "0"}}),
                Ok(true),
            ),
            (
                product(),
                "size(Pictures) = :v",
                none.clone(),
                json!({":v": {"N": "3"}}),
                Ok(true),
            ),
            (
                product(),
                "size(Nope) = :v",
                none.clone(),
                json!({":v": {"N": "0"}}),
                Ok(false),
            ),
            // Comparisons across types are false, never errors; `<>` then holds.
            (
                product(),
                "Price = :v",
                none.clone(),
                json!({":v": {"S": "500"}}),
                Ok(false),
            ),
            (
                product(),
                "Price <> :v",
                none.clone(),
                json!({":v": {"S": "500"}}),
                Ok(true),
            ),
            (
                product(),
                "Price < :v",
                none.clone(),
                json!({":v": {"S": "600"}}),
                Ok(false),
            ),
            (
                product(),
                "Manufacturer = :v",
                none.clone(),
                json!({":v": {"S": "x"}}),
                Ok(false),
            ),
            (
                product(),
                "Manufacturer <> :v",
                none.clone(),
                json!({":v": {"S": "x"}}),
                Ok(true),
            ),
            (
                product(),
                "Color = :v",
                none.clone(),
                json!({":v": {"SS": ["Black", "Red"]}}),
                Ok(true),
            ),
            (
                product(),
                "RelatedItems[1] = :v",
                none.clone(),
                json!({":v": {"N": "472.0"}}),
                Ok(true),
            ),
            (
                product(),
                "#sw = :v",
                json!({"#sw": "Safety.Warning"}),
                json!({":v": {"S": "Always wear a helmet"}}),
                Ok(true),
            ),
            (
                product(),
                "ProductReviews.FiveStar[0] >= :v",
                none.clone(),
                json!({":v": {"S": "E"}}),
                Ok(true),
            ),
            // Precedence: NOT binds tighter than AND, AND tighter than OR ("Precedence in conditions").
            (
                product(),
                "Price = :a OR Price = :b AND Price = :c",
                none.clone(),
                json!({":a": {"N": "500"}, ":b": {"N": "1"}, ":c": {"N": "2"}}),
                Ok(true),
            ),
            (
                product(),
                "(Price = :a OR Price = :b) AND Price = :c",
                none.clone(),
                json!({":a": {"N": "500"}, ":b": {"N": "1"}, ":c": {"N": "2"}}),
                Ok(false),
            ),
            (
                product(),
                "NOT Price = :b AND Price = :a",
                none.clone(),
                json!({":a": {"N": "500"}, ":b": {"N": "1"}}),
                Ok(true),
            ),
            (
                product(),
                "NOT (Price = :a AND Price = :b)",
                none.clone(),
                json!({":a": {"N": "500"}, ":b": {"N": "1"}}),
                Ok(true),
            ),
            (
                product(),
                "price = :a or PRICE = :a",
                none.clone(),
                json!({":a": {"N": "500"}}),
                Ok(false),
            ),
            (
                product(),
                "Price between :a and :b",
                none.clone(),
                json!({":a": {"N": "500"}, ":b": {"N": "500"}}),
                Ok(true),
            ),
            (
                product(),
                "Price IN (:a, :b)",
                none.clone(),
                json!({":a": {"N": "1"}, ":b": {"N": "5E2"}}),
                Ok(true),
            ),
            // Errors ("Reserved words in DynamoDB", expression syntax, function checks).
            (
                product(),
                "Title = :v and attribute_exists(Name)",
                none.clone(),
                json!({":v": {"S": "x"}}),
                Err(
                    "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Name",
                ),
            ),
            (
                product(),
                "#n = :v",
                none.clone(),
                json!({":v": {"S": "x"}}),
                Err(
                    "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #n",
                ),
            ),
            (
                product(),
                "Price = :x",
                none.clone(),
                json!({":v": {"S": "x"}}),
                Err(
                    "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :x",
                ),
            ),
            (
                product(),
                "Price = :v",
                json!({"#a": "a", "#b": "b"}),
                json!({":v": {"S": "x"}}),
                Err(
                    "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}",
                ),
            ),
            (
                product(),
                "Price = :v",
                none.clone(),
                json!({":v": {"S": "x"}, ":w": {"S": "y"}}),
                Err(
                    "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}",
                ),
            ),
            (
                product(),
                "begins_with(Title)",
                none.clone(),
                none.clone(),
                Err(
                    "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1",
                ),
            ),
            (
                product(),
                "begins_with(Title, :v)",
                none.clone(),
                json!({":v": {"N": "1"}}),
                Err(
                    "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                ),
            ),
            (
                product(),
                "attribute_type(Title, :v)",
                none.clone(),
                json!({":v": {"S": "STRING"}}),
                Err(
                    "Invalid ConditionExpression: Invalid attribute type name found; type: STRING, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                ),
            ),
            (
                product(),
                "attribute_type(Title, :v)",
                none.clone(),
                json!({":v": {"N": "1"}}),
                Err(
                    "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
                ),
            ),
            (
                product(),
                "attribute_exists(:v)",
                none.clone(),
                json!({":v": {"N": "1"}}),
                Err(
                    "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists",
                ),
            ),
            (
                product(),
                "attribute_exists(Title) = :v",
                none.clone(),
                json!({":v": {"N": "1"}}),
                Err(
                    "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists",
                ),
            ),
            (
                product(),
                "size(Title)",
                none.clone(),
                none.clone(),
                Err(
                    "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size",
                ),
            ),
            (
                product(),
                "size(:v) > Price",
                none.clone(),
                json!({":v": {"N": "1"}}),
                Err(
                    "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N",
                ),
            ),
            (
                product(),
                "exists(Title)",
                none.clone(),
                none.clone(),
                Err("Invalid ConditionExpression: Invalid function name; function: exists"),
            ),
            (
                product(),
                "Title = Title",
                none.clone(),
                none.clone(),
                Err(
                    "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [Title]",
                ),
            ),
            (
                product(),
                "((Price = :v))",
                none.clone(),
                json!({":v": {"N": "1"}}),
                Err("Invalid ConditionExpression: The expression has redundant parentheses;"),
            ),
            (
                product(),
                "Price between :b and :a",
                none.clone(),
                json!({":a": {"N": "1"}, ":b": {"N": "5"}}),
                Err(
                    "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}",
                ),
            ),
            (
                product(),
                "Price between :b and :a",
                none.clone(),
                json!({":a": {"S": "a"}, ":b": {"N": "1"}}),
                Err(
                    "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:a}",
                ),
            ),
            (
                product(),
                "",
                none.clone(),
                none.clone(),
                Err("Invalid ConditionExpression: The expression can not be empty;"),
            ),
            (
                product(),
                "Title",
                none.clone(),
                none.clone(),
                Err("Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"Title\""),
            ),
            (
                product(),
                "attribute_not_exists(",
                none.clone(),
                none.clone(),
                Err("Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"(\""),
            ),
            (
                product(),
                "book-price = :v",
                none.clone(),
                json!({":v": {"N": "1"}}),
                Err(
                    "Invalid ConditionExpression: Syntax error; token: \"-\", near: \"book-price\"",
                ),
            ),
            (
                product(),
                "Price = 5",
                none.clone(),
                none.clone(),
                Err("Invalid ConditionExpression: Syntax error; token: \"5\", near: \"= 5\""),
            ),
        ],
    );
}

#[test]
fn filter_expressions_carry_their_own_prefix() {
    run_conditions(
        ExprKind::Filter,
        vec![
            // "Filter expressions for Query" / "Scan": same language, own prefix.
            (
                product(),
                "InStock = :t",
                Value::Null,
                json!({":t": {"BOOL": true}}),
                Ok(true),
            ),
            (
                product(),
                "QuantityOnHand = :n",
                Value::Null,
                json!({":n": {"NULL": true}}),
                Ok(true),
            ),
            (
                product(),
                "contains (themes, :theme",
                Value::Null,
                json!({":theme": {"S": "x"}}),
                Err("Invalid FilterExpression: Syntax error; token: \"<EOF>\", near: \":theme\""),
            ),
            (
                product(),
                "Status = :v",
                Value::Null,
                json!({":v": {"S": "x"}}),
                Err(
                    "Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: Status",
                ),
            ),
        ],
    );
}

#[test]
fn in_takes_at_most_100_operands() {
    let values: serde_json::Map<String, Value> = (0..101)
        .map(|i| (format!(":v{i}"), json!({"N": i.to_string()})))
        .collect();
    let list: Vec<String> = values.keys().cloned().collect();
    let text = format!("Price IN ({})", list.join(", "));
    let mut s = subs(&Value::Null, &Value::Object(values));
    let got = expr::parse_condition(&text, ExprKind::Condition, &mut s)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        got.as_deref(),
        Some(
            "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
        )
    );
    let long = "a = :v OR ".repeat(500) + "a = :v";
    let got = expr::parse_condition(&long, ExprKind::Condition, &mut s)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        got,
        Some(format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            long.len()
        ))
    );
}

/// Update cases: (item, expression, names, values, Ok(resulting item) or Err(message)).
type UpdateCase = (
    Value,
    &'static str,
    Value,
    Value,
    Result<Value, &'static str>,
);

fn with(base: Value, changes: &[(&str, Option<Value>)]) -> Value {
    let mut m = base.as_object().cloned().unwrap_or_default();
    for (k, v) in changes {
        match v {
            Some(v) => m.insert((*k).to_owned(), v.clone()),
            None => m.remove(*k),
        };
    }
    Value::Object(m)
}

#[test]
fn update_expression_examples() {
    let none = Value::Null;
    let cases: Vec<UpdateCase> = vec![
        // "Using update expressions in DynamoDB": SET.
        (
            product(),
            "SET ProductCategory = :c, Price = :p",
            none.clone(),
            json!({":c": {"S": "Hardware"}, ":p": {"N": "60"}}),
            Ok(with(
                product(),
                &[
                    ("ProductCategory", Some(json!({"S": "Hardware"}))),
                    ("Price", Some(json!({"N": "60"}))),
                ],
            )),
        ),
        (
            product(),
            "SET RelatedItems[1] = :ri",
            none.clone(),
            json!({":ri": {"N": "999"}}),
            Ok(with(
                product(),
                &[(
                    "RelatedItems",
                    Some(json!({"L": [{"N": "341"}, {"N": "999"}, {"N": "649"}]})),
                )],
            )),
        ),
        (
            product(),
            "SET RelatedItems[9] = :ri",
            none.clone(),
            json!({":ri": {"N": "999"}}),
            Ok(with(
                product(),
                &[(
                    "RelatedItems",
                    Some(json!({"L": [{"N": "341"}, {"N": "472"}, {"N": "649"}, {"N": "999"}]})),
                )],
            )),
        ),
        (
            json!({"Id": {"N": "1"}, "ProductReviews": {"M": {"FiveStar": {"L": [{"S": "a"}]}}}}),
            "SET #pr.#5star[1] = :r5, #pr.#3star = :r3",
            json!({"#pr": "ProductReviews", "#5star": "FiveStar", "#3star": "ThreeStar"}),
            json!({":r5": {"S": "Very happy"}, ":r3": {"L": [{"S": "Just OK"}]}}),
            Ok(
                json!({"Id": {"N": "1"}, "ProductReviews": {"M": {"FiveStar": {"L": [{"S": "a"}, {"S": "Very happy"}]}, "ThreeStar": {"L": [{"S": "Just OK"}]}}}}),
            ),
        ),
        (
            product(),
            "SET Price = Price - :p",
            none.clone(),
            json!({":p": {"N": "15"}}),
            Ok(with(product(), &[("Price", Some(json!({"N": "485"})))])),
        ),
        (
            product(),
            "SET Price = Price + :p",
            none.clone(),
            json!({":p": {"N": "0.5"}}),
            Ok(with(product(), &[("Price", Some(json!({"N": "500.5"})))])),
        ),
        (
            product(),
            "SET #ri = list_append(#ri, :vals)",
            json!({"#ri": "RelatedItems"}),
            json!({":vals": {"L": [{"N": "1"}]}}),
            Ok(with(
                product(),
                &[(
                    "RelatedItems",
                    Some(json!({"L": [{"N": "341"}, {"N": "472"}, {"N": "649"}, {"N": "1"}]})),
                )],
            )),
        ),
        (
            product(),
            "SET #ri = list_append(:vals, #ri)",
            json!({"#ri": "RelatedItems"}),
            json!({":vals": {"L": [{"N": "1"}]}}),
            Ok(with(
                product(),
                &[(
                    "RelatedItems",
                    Some(json!({"L": [{"N": "1"}, {"N": "341"}, {"N": "472"}, {"N": "649"}]})),
                )],
            )),
        ),
        (
            product(),
            "SET Price = if_not_exists(Price, :p)",
            none.clone(),
            json!({":p": {"N": "100"}}),
            Ok(product()),
        ),
        (
            json!({"Id": {"N": "1"}}),
            "SET Price = if_not_exists(Price, :p)",
            none.clone(),
            json!({":p": {"N": "100"}}),
            Ok(json!({"Id": {"N": "1"}, "Price": {"N": "100"}})),
        ),
        // Right-hand sides read the item as it was before the update.
        (
            json!({"a": {"N": "1"}, "b": {"N": "2"}}),
            "SET a = b, b = a",
            none.clone(),
            none.clone(),
            Ok(json!({"a": {"N": "2"}, "b": {"N": "1"}})),
        ),
        // REMOVE.
        (
            product(),
            "REMOVE Brand, InStock, QuantityOnHand",
            none.clone(),
            none.clone(),
            Ok(with(
                product(),
                &[("Brand", None), ("InStock", None), ("QuantityOnHand", None)],
            )),
        ),
        (
            product(),
            "REMOVE RelatedItems[1], RelatedItems[2]",
            none.clone(),
            none.clone(),
            Ok(with(
                product(),
                &[("RelatedItems", Some(json!({"L": [{"N": "341"}]})))],
            )),
        ),
        (
            product(),
            "REMOVE RelatedItems[7], Nope",
            none.clone(),
            none.clone(),
            Ok(product()),
        ),
        (
            product(),
            "REMOVE Pictures.RearView",
            none.clone(),
            none.clone(),
            Ok(with(
                product(),
                &[(
                    "Pictures",
                    Some(json!({"M": {
                "FrontView": {"S": "http://example.com/products/123_front.jpg"},
                "SideView": {"S": "http://example.com/products/123_left_side.jpg"}}})),
                )],
            )),
        ),
        // ADD.
        (
            json!({"Id": {"N": "1"}}),
            "ADD QuantityOnHand :q",
            none.clone(),
            json!({":q": {"N": "5"}}),
            Ok(json!({"Id": {"N": "1"}, "QuantityOnHand": {"N": "5"}})),
        ),
        (
            json!({"QuantityOnHand": {"N": "5"}}),
            "ADD QuantityOnHand :q",
            none.clone(),
            json!({":q": {"N": "-2"}}),
            Ok(json!({"QuantityOnHand": {"N": "3"}})),
        ),
        (
            product(),
            "ADD Color :c",
            none.clone(),
            json!({":c": {"SS": ["Orange", "Purple", "Red"]}}),
            Ok(with(
                product(),
                &[(
                    "Color",
                    Some(json!({"SS": ["Black", "Orange", "Purple", "Red"]})),
                )],
            )),
        ),
        // DELETE.
        (
            product(),
            "DELETE Color :p",
            none.clone(),
            json!({":p": {"SS": ["Red", "Yellow"]}}),
            Ok(with(
                product(),
                &[("Color", Some(json!({"SS": ["Black"]})))],
            )),
        ),
        (
            product(),
            "DELETE Color :p",
            none.clone(),
            json!({":p": {"SS": ["Red", "Black"]}}),
            Ok(with(product(), &[("Color", None)])),
        ),
        (
            product(),
            "DELETE Nope :p",
            none.clone(),
            json!({":p": {"SS": ["Red"]}}),
            Ok(product()),
        ),
        // Several clauses in one expression, keywords in any case.
        (
            json!({"a": {"N": "1"}, "b": {"S": "x"}}),
            "set c = :v remove b add a :n",
            none.clone(),
            json!({":v": {"S": "y"}, ":n": {"N": "1"}}),
            Ok(json!({"a": {"N": "2"}, "c": {"S": "y"}})),
        ),
        // Runtime errors.
        (
            json!({}),
            "SET c = b",
            none.clone(),
            none.clone(),
            Err("The provided expression refers to an attribute that does not exist in the item"),
        ),
        (
            json!({}),
            "SET e = list_append(b, c)",
            none.clone(),
            none.clone(),
            Err("The provided expression refers to an attribute that does not exist in the item"),
        ),
        (
            json!({}),
            "SET b.a = :v",
            none.clone(),
            json!({":v": {"N": "1"}}),
            Err("The document path provided in the update expression is invalid for update"),
        ),
        (
            json!({"c": {"M": {"1": {"S": "a"}}}}),
            "SET c[1] = :v",
            none.clone(),
            json!({":v": {"N": "1"}}),
            Err("The document path provided in the update expression is invalid for update"),
        ),
        (
            json!({"y": {"S": "a"}}),
            "REMOVE y.a",
            none.clone(),
            none.clone(),
            Err("The document path provided in the update expression is invalid for update"),
        ),
        (
            json!({"d": {"NS": ["1"]}}),
            "DELETE d :a",
            none.clone(),
            json!({":a": {"SS": ["1"]}}),
            Err("An operand in the update expression has an incorrect data type"),
        ),
        (
            json!({"b": {"SS": ["1"]}}),
            "ADD b :a",
            none.clone(),
            json!({":a": {"NS": ["1"]}}),
            Err("An operand in the update expression has an incorrect data type"),
        ),
        (
            json!({"a": {"S": "x"}}),
            "SET e = a + :a",
            none.clone(),
            json!({":a": {"N": "1"}}),
            Err("An operand in the update expression has an incorrect data type"),
        ),
        (
            json!({"a": {"N": "9E125"}}),
            "SET a = a + :a",
            none.clone(),
            json!({":a": {"N": "9E125"}}),
            Err(
                "Number overflow. Attempting to store a number with magnitude larger than supported range",
            ),
        ),
        // Parse-time errors.
        (
            json!({}),
            "SET a = :v SET b = :v",
            none.clone(),
            json!({":v": {"N": "1"}}),
            Err(
                "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;",
            ),
        ),
        (
            json!({}),
            "SET a = :v, a.b = :v",
            none.clone(),
            json!({":v": {"N": "1"}}),
            Err(
                "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
            ),
        ),
        (
            json!({}),
            "REMOVE a.#c SET a[1] = :v",
            json!({"#c": "c"}),
            json!({":v": {"N": "1"}}),
            Err(
                "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, c], path two: [a, [1]]",
            ),
        ),
        (
            json!({}),
            "SET #c[3].#d = a, #c[3] = a",
            json!({"#c": "c", "#d": "[3]"}),
            none.clone(),
            Err(
                "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3]]",
            ),
        ),
        (
            json!({}),
            "ADD a.b :a",
            none.clone(),
            json!({":a": {"S": "a"}}),
            Err(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING",
            ),
        ),
        (
            json!({}),
            "DELETE a.b :a",
            none.clone(),
            json!({":a": {"N": "1"}}),
            Err(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER",
            ),
        ),
        (
            json!({}),
            "SET a = list_append(:a, a)",
            none.clone(),
            json!({":a": {"S": "a"}}),
            Err(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S",
            ),
        ),
        (
            json!({}),
            "SET a = a - :a",
            none.clone(),
            json!({":a": {"SS": ["a"]}}),
            Err(
                "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: -, operand type: SS",
            ),
        ),
        (
            json!({}),
            "SET a = if_not_exists(c)",
            none.clone(),
            none.clone(),
            Err(
                "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1",
            ),
        ),
        (
            json!({}),
            "SET a = if_not_exists(:a, c)",
            none.clone(),
            json!({":a": {"S": "a"}}),
            Err(
                "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists",
            ),
        ),
        (
            json!({}),
            "SET a = size(b)",
            none.clone(),
            none.clone(),
            Err("Invalid UpdateExpression: Invalid function name; function: size"),
        ),
        (
            json!({}),
            "SET name = :v",
            none.clone(),
            json!({":v": {"S": "Alice"}}),
            Err(
                "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: name",
            ),
        ),
        (
            json!({}),
            "SET a = :v,",
            none.clone(),
            json!({":v": {"N": "1"}}),
            Err("Invalid UpdateExpression: Syntax error; token: \"<EOF>\", near: \",\""),
        ),
        (
            json!({}),
            "SET book-price = :p",
            none.clone(),
            json!({":p": {"N": "1"}}),
            Err("Invalid UpdateExpression: Syntax error; token: \"-\", near: \"book-price\""),
        ),
    ];
    for (i, (it, text, names, values, expected)) in cases.into_iter().enumerate() {
        let mut s = subs(&names, &values);
        let got = expr::parse_update(text, &mut s)
            .and_then(|u| s.finish().map(|()| u))
            .and_then(|u| {
                let mut target = item(&it);
                u.apply(&mut target).map(|()| item_to_json(&target))
            })
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|v| item_to_json(&item(&v)))
            .map_err(str::to_owned);
        assert_eq!(got, expected, "update case {i}: {text}");
    }
}

#[test]
fn projection_expression_examples() {
    // "Using projection expressions in DynamoDB".
    let cases: Vec<(&str, Value, Result<Value, &str>)> = vec![
        (
            "Description, RelatedItems[0], ProductReviews.FiveStar",
            Value::Null,
            Ok(json!({
            "Description": {"S": "123 description"},
            "RelatedItems": {"L": [{"N": "341"}]},
            "ProductReviews": {"M": {"FiveStar": {"L": [
                {"S": "Excellent! Can't recommend it highly enough! Buy it!"},
                {"S": "Do yourself a favor and buy this."}]}}}})),
        ),
        (
            "RelatedItems[2], RelatedItems[0]",
            Value::Null,
            Ok(json!({"RelatedItems": {"L": [{"N": "341"}, {"N": "649"}]}})),
        ),
        (
            "#sw, Nope, Pictures.Nope",
            json!({"#sw": "Safety.Warning"}),
            Ok(json!({"Safety.Warning": {"S": "Always wear a helmet"}})),
        ),
        (
            "Title, Price, Color",
            Value::Null,
            Ok(
                json!({"Title": {"S": "Bicycle 123"}, "Price": {"N": "500"}, "Color": {"SS": ["Black", "Red"]}}),
            ),
        ),
        ("Safety.Warning", Value::Null, Ok(json!({}))),
        (
            "Title, Name",
            Value::Null,
            Err(
                "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: Name",
            ),
        ),
        (
            "Pictures, Pictures.FrontView",
            Value::Null,
            Err(
                "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [Pictures], path two: [Pictures, FrontView]",
            ),
        ),
        (
            "Title,",
            Value::Null,
            Err("Invalid ProjectionExpression: Syntax error; token: \"<EOF>\", near: \",\""),
        ),
        (
            "",
            Value::Null,
            Err("Invalid ProjectionExpression: The expression can not be empty;"),
        ),
    ];
    for (text, names, expected) in cases {
        let mut s = subs(&names, &Value::Null);
        let got = expr::parse_projection(text, &mut s)
            .map(|paths| item_to_json(&expr::project(&item(&product()), &paths)))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|v| item_to_json(&item(&v)))
            .map_err(str::to_owned);
        assert_eq!(got, expected, "projection: {text}");
    }
}

#[test]
fn key_condition_examples() {
    // "Key condition expressions for Query"; messages as DynamoDB gives them.
    let n = |s: &str| AttributeValue::from_json(&json!({"N": s})).unwrap_or(AttributeValue::Null);
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let values = json!({":id": {"S": "Amazon DynamoDB#DynamoDB Thread 1"}, ":t": {"S": "2015-09"}, ":lo": {"N": "1"}, ":hi": {"N": "5"}});
    let cases: Vec<(&str, Option<&str>, Result<KeyCondition, &str>)> = vec![
        (
            "Id = :id",
            None,
            Ok(KeyCondition {
                hash: s("Amazon DynamoDB#DynamoDB Thread 1"),
                range: None,
            }),
        ),
        (
            "Id = :id AND begins_with(ReplyDateTime, :t)",
            Some("ReplyDateTime"),
            Ok(KeyCondition {
                hash: s("Amazon DynamoDB#DynamoDB Thread 1"),
                range: Some(RangeCondition::BeginsWith(s("2015-09"))),
            }),
        ),
        (
            "Id = :id and ReplyDateTime between :lo and :hi",
            Some("ReplyDateTime"),
            Ok(KeyCondition {
                hash: s("Amazon DynamoDB#DynamoDB Thread 1"),
                range: Some(RangeCondition::Between(n("1"), n("5"))),
            }),
        ),
        (
            ":lo <= ReplyDateTime AND Id = :id",
            Some("ReplyDateTime"),
            Ok(KeyCondition {
                hash: s("Amazon DynamoDB#DynamoDB Thread 1"),
                range: Some(RangeCondition::Ge(n("1"))),
            }),
        ),
        (
            "ReplyDateTime = :t",
            Some("ReplyDateTime"),
            Err("Query condition missed key schema element: Id"),
        ),
        (
            "Id = :id AND Nope = :t",
            Some("ReplyDateTime"),
            Err("Query condition missed key schema element: ReplyDateTime"),
        ),
        ("Id > :id", None, Err("Query key condition not supported")),
        (
            "Id = :id AND Nope = :t",
            None,
            Err("Query key condition not supported"),
        ),
        (
            "Id = :id OR Id = :t",
            None,
            Err("Invalid operator used in KeyConditionExpression: OR"),
        ),
        (
            "Id = :id AND Id = :t",
            None,
            Err("KeyConditionExpressions must only contain one condition per key"),
        ),
        (
            "Id.a = :id",
            None,
            Err("KeyConditionExpressions cannot have conditions on nested attributes"),
        ),
        (
            "Id between :hi and :lo",
            None,
            Err(
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}",
            ),
        ),
    ];
    for (text, range, expected) in cases {
        let mut subs = subs(&Value::Null, &values);
        let got = parse_key_condition(text, &mut subs, "Id", range).map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_owned),
            "key condition: {text}"
        );
    }
}

#[test]
fn legacy_parameters_map_onto_the_same_ast() {
    use spillway_tables::expr::legacy;
    let it = item(&product());
    // "Writing conditions with legacy parameters".
    let cond = legacy::filter_to_condition(&json!({"Price": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "100"}, {"N": "600"}]}}), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cond.map(|c| c.eval(&it)), Some(true));
    let cond = legacy::expected_to_condition(
        &json!({"Price": {"Exists": false}, "Title": {"Value": {"S": "Bicycle 123"}}}),
        Some("OR"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cond.map(|c| c.eval(&it)), Some(true));
    let err = legacy::filter_to_condition(
        &json!({"a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}, {"S": "a"}]}}),
        None,
    )
    .err()
    .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
        )
    );
    let err = legacy::expected_to_condition(&json!({"a": {"Exists": true}}), None)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a"
        )
    );
    let key = legacy::key_conditions(
        &json!({"Id": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]}}),
        "Id",
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(key.range.is_none());
    let mut target = item(&json!({"c": {"N": "1"}, "l": {"L": []}}));
    legacy::attribute_updates(&json!({"c": {"Action": "ADD", "Value": {"N": "2"}}, "l": {"Action": "ADD", "Value": {"L": [{"S": "x"}]}}, "d": {"Value": {"S": "y"}}}))
        .and_then(|u| u.apply(&mut target))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        item_to_json(&target),
        json!({"c": {"N": "3"}, "l": {"L": [{"S": "x"}]}, "d": {"S": "y"}})
    );
    let mut target = item(&json!({"b": {"SS": ["1"]}}));
    let err = legacy::attribute_updates(&json!({"b": {"Action": "ADD", "Value": {"NS": ["1"]}}}))
        .and_then(|u| u.apply(&mut target))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("Type mismatch for attribute to update")
    );
    assert_eq!(
        expr::mixed_parameters_error(&["Expected"], &["ConditionExpression"]).to_string(),
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}"
    );
    let paths =
        legacy::attributes_to_get(&json!(["Title", "Price"])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        item_to_json(&expr::project(&it, &paths)),
        json!({"Title": {"S": "Bicycle 123"}, "Price": {"N": "500"}})
    );
}

/// Random bytes and random token soups through every parser: never a panic, and every
/// refusal names its expression kind.
#[test]
fn random_inputs_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    const TOKENS: &[&str] = &[
        "a",
        "b",
        "#a",
        "#x",
        ":v",
        ":w",
        "(",
        ")",
        "[",
        "]",
        "0",
        "12",
        ".",
        ",",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "AND",
        "or",
        "NOT",
        "BETWEEN",
        "IN",
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "size",
        "contains",
        "begins_with",
        "attribute_exists",
        "attribute_type",
        "if_not_exists",
        "list_append",
        "name",
        " ",
        "é",
        "@",
    ];
    let base = item(&json!({"a": {"L": [{"N": "1"}]}, "b": {"M": {"c": {"SS": ["x"]}}}}));
    for round in 0..20_000 {
        let text: String = if round % 2 == 0 {
            let len = rng.gen_range(0..24);
            (0..len)
                .map(|_| TOKENS[rng.gen_range(0..TOKENS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let bytes: Vec<u8> = (0..rng.gen_range(0..32))
                .map(|_| rng.r#gen::<u8>())
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let fresh = || {
            Substitutions::new(
                [("#a".to_owned(), "a".to_owned())].into(),
                [
                    (":v".to_owned(), AttributeValue::S("x".into())),
                    (":w".to_owned(), AttributeValue::Ss(vec!["x".into()])),
                ]
                .into(),
            )
        };
        let prefixed = |e: &expr::ExprError, kind: &str| {
            let m = e.to_string();
            // Parse problems are prefixed; only key-condition shape problems stand alone.
            !matches!(e, expr::ExprError::Invalid { .. })
                || m.starts_with(&format!("Invalid {kind}: "))
        };
        let strict = |e: &expr::ExprError, kind: &str| {
            matches!(e, expr::ExprError::Invalid { .. })
                && e.to_string().starts_with(&format!("Invalid {kind}: "))
        };
        for (kind, label) in [
            (ExprKind::Condition, "ConditionExpression"),
            (ExprKind::Filter, "FilterExpression"),
        ] {
            match expr::parse_condition(&text, kind, &mut fresh()) {
                Ok(c) => {
                    c.eval(&base);
                }
                Err(e) => assert!(strict(&e, label), "{text:?}: {e}"),
            }
        }
        if let Err(e) = parse_key_condition(&text, &mut fresh(), "a", Some("b")) {
            assert!(prefixed(&e, "KeyConditionExpression"), "{text:?}: {e}");
        }
        match expr::parse_projection(&text, &mut fresh()) {
            Ok(p) => {
                expr::project(&base, &p);
            }
            Err(e) => assert!(strict(&e, "ProjectionExpression"), "{text:?}: {e}"),
        }
        match expr::parse_update(&text, &mut fresh()) {
            Ok(u) => {
                let mut target = base.clone();
                let _ = u.apply(&mut target);
            }
            Err(e) => assert!(strict(&e, "UpdateExpression"), "{text:?}: {e}"),
        }
    }
}
