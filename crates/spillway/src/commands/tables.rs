//! `spillway tables list|scan`: the running stack's tables, through its AWS endpoint as one of
//! its users (the same front door as any SDK; see queue/client.rs).

use serde_json::{Map, Value, json};

use super::queue::QueueCliError as CliError;
use super::queue::client::{AwsJsonClient, Service};
use super::{EXIT_INPUT, print_load_error};
use crate::cli::{QueueTarget, TablesCommand, TablesScanArgs};

pub async fn run(command: &TablesCommand) -> u8 {
    let target = match command {
        TablesCommand::List(a) => &a.target,
        TablesCommand::Scan(a) => &a.target,
    };
    let result = match client(target) {
        Ok(client) => match command {
            TablesCommand::List(a) => list(&client, a.json).await,
            TablesCommand::Scan(a) => scan(&client, a).await,
        },
        Err(code) => return code,
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn client(target: &QueueTarget) -> Result<AwsJsonClient, u8> {
    let loaded = match spillway_stack::load(&target.stack) {
        Ok(l) => l,
        Err(e) => {
            print_load_error(&e);
            return Err(EXIT_INPUT);
        }
    };
    super::queue::connect(&loaded, target, Service::DynamoDb).map_err(|e| {
        eprintln!("error: {e}");
        e.exit_code()
    })
}

async fn list(client: &AwsJsonClient, as_json: bool) -> Result<(), CliError> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let mut input = json!({});
        if let Some(s) = &start {
            input["ExclusiveStartTableName"] = json!(s);
        }
        let out = client.call("ListTables", &input).await?;
        names.extend(
            out["TableNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
        match out["LastEvaluatedTableName"].as_str() {
            Some(s) => start = Some(s.to_owned()),
            None => break,
        }
    }
    let mut rows = Vec::new();
    for name in &names {
        let t = client
            .call("DescribeTable", &json!({"TableName": name}))
            .await?;
        rows.push(t["Table"].clone());
    }
    if as_json {
        println!("{}", Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<32} {:<24} {:>10} {:>12}",
        "TABLE", "KEY", "ITEMS", "BYTES"
    );
    for t in rows {
        let key: Vec<&str> = t["KeySchema"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["AttributeName"].as_str())
            .collect();
        println!(
            "{:<32} {:<24} {:>10} {:>12}",
            t["TableName"].as_str().unwrap_or(""),
            key.join(", "),
            t["ItemCount"].to_string(),
            t["TableSizeBytes"].to_string()
        );
    }
    Ok(())
}

/// DynamoDB JSON to plain JSON, as the DocumentClient shows items (numbers as JSON numbers
/// when they fit one exactly, else as strings; sets as arrays; binaries as base64).
fn plain(v: &Value) -> Value {
    let Some((kind, inner)) = v.as_object().and_then(|m| m.iter().next()) else {
        return Value::Null;
    };
    match kind.as_str() {
        "N" => {
            let text = inner.as_str().unwrap_or("");
            serde_json::from_str::<serde_json::Number>(text)
                .ok()
                .filter(|n| n.to_string() == text)
                .map(Value::Number)
                .unwrap_or_else(|| json!(text))
        }
        "NS" => Value::Array(
            inner
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| plain(&json!({"N": n})))
                .collect(),
        ),
        "NULL" => Value::Null,
        "M" => Value::Object(
            inner
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), plain(v)))
                .collect::<Map<_, _>>(),
        ),
        "L" => Value::Array(inner.as_array().into_iter().flatten().map(plain).collect()),
        _ => inner.clone(),
    }
}

async fn scan(client: &AwsJsonClient, args: &TablesScanArgs) -> Result<(), CliError> {
    let mut printed = 0usize;
    let mut start: Option<Value> = None;
    loop {
        let mut input = json!({"TableName": args.table});
        if let Some(i) = &args.index {
            input["IndexName"] = json!(i);
        }
        if let Some(s) = &start {
            input["ExclusiveStartKey"] = s.clone();
        }
        if let Some(l) = args.limit {
            input["Limit"] = json!(l.saturating_sub(printed).clamp(1, 1000));
        }
        let out = client.call("Scan", &input).await?;
        for item in out["Items"].as_array().into_iter().flatten() {
            if args.limit.is_some_and(|l| printed >= l) {
                return Ok(());
            }
            if args.raw {
                println!("{item}");
            } else {
                let object: Map<String, Value> = item
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), plain(v)))
                    .collect();
                println!("{}", Value::Object(object));
            }
            printed += 1;
        }
        match out.get("LastEvaluatedKey") {
            Some(k) if !k.is_null() && args.limit.is_none_or(|l| printed < l) => {
                start = Some(k.clone())
            }
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn plain_json_of_dynamodb_json() {
        assert_eq!(super::plain(&json!({"N": "1.5"})), json!(1.5));
        assert_eq!(
            super::plain(&json!({"N": "123456789012345678901234567890"})),
            json!("123456789012345678901234567890")
        );
        assert_eq!(
            super::plain(&json!({"M": {"a": {"L": [{"S": "x"}, {"NULL": true}]}}})),
            json!({"a": ["x", null]})
        );
    }
}
