//! SQS's query protocol (aws CLI v1, aws-sdk v2 for JavaScript, older SDKs) as a translation
//! to and from the JSON protocol's shapes: requests' flattened parameters
//! (`MessageAttribute.1.Value.StringValue`) become the JSON request object the JSON 1.0 protocol
//! would carry, and JSON-shaped results become the XML of the query API (namespace
//! `http://queue.amazonaws.com/doc/2012-11-05/`). One decoder and one encoder per action then
//! serve both protocols.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::QueueError;

pub const NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";

/// Parameters by dotted path, numbered members in order (`Entry.2` before `Entry.10`).
#[derive(Default, Debug)]
struct Tree {
    value: Option<String>,
    children: BTreeMap<Key, Tree>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
enum Key {
    Index(u32),
    Name(String),
}

impl Tree {
    fn from_params(params: &[(String, String)]) -> Self {
        let mut root = Tree::default();
        for (k, v) in params {
            let mut node = &mut root;
            for segment in k.split('.') {
                let key = match segment.parse::<u32>() {
                    Ok(i) => Key::Index(i),
                    Err(_) => Key::Name(segment.to_owned()),
                };
                node = node.children.entry(key).or_default();
            }
            node.value = Some(v.clone());
        }
        root
    }

    fn get(&self, name: &str) -> Option<&Tree> {
        self.children.get(&Key::Name(name.to_owned()))
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|t| t.value.as_deref())
    }

    /// The numbered members under `name` (`name.1`, `name.2`, ...), in order.
    fn members(&self, name: &str) -> Vec<&Tree> {
        self.get(name)
            .map(|t| {
                t.children
                    .iter()
                    .filter(|(k, _)| matches!(k, Key::Index(_)))
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Integer members of SQS requests: sent as text in the query protocol, as numbers in JSON.
const INTEGERS: &[&str] = &[
    "DelaySeconds",
    "MaxNumberOfMessages",
    "VisibilityTimeout",
    "WaitTimeSeconds",
    "MaxResults",
    "MaxNumberOfMessagesPerSecond",
];

fn scalar(name: &str, text: &str) -> Result<Value, QueueError> {
    if INTEGERS.contains(&name) {
        text.trim().parse::<i64>().map(Value::from).map_err(|_| {
            QueueError::InvalidParameterValue(format!(
                "Value {text} for parameter {name} is invalid. Reason: must be an integer."
            ))
        })
    } else {
        Ok(Value::String(text.to_owned()))
    }
}

/// The scalar members of a node (its named children that carry a value and no members).
fn scalars(node: &Tree, skip: &[&str]) -> Result<Map<String, Value>, QueueError> {
    let mut out = Map::new();
    for (k, child) in &node.children {
        if let (Key::Name(name), Some(v)) = (k, &child.value)
            && child.children.is_empty()
            && !skip.contains(&name.as_str())
        {
            out.insert(name.clone(), scalar(name, v)?);
        }
    }
    Ok(out)
}

/// `Attribute.N.Name` / `Attribute.N.Value` (and `Tag.N.Key` / `Tag.N.Value`) as a map.
fn pairs(node: &Tree, list: &str, key: &str, value: &str) -> Value {
    let mut out = Map::new();
    for m in node.members(list) {
        if let Some(k) = m.text(key) {
            out.insert(
                k.to_owned(),
                Value::String(m.text(value).unwrap_or_default().to_owned()),
            );
        }
    }
    Value::Object(out)
}

/// `MessageAttribute.N.Name` + `.Value.{DataType,StringValue,BinaryValue}` as the JSON map.
fn message_attributes(node: &Tree, list: &str) -> Value {
    let mut out = Map::new();
    for m in node.members(list) {
        let Some(name) = m.text("Name") else { continue };
        let mut v = Map::new();
        if let Some(value) = m.get("Value") {
            for field in ["DataType", "StringValue", "BinaryValue"] {
                if let Some(t) = value.text(field) {
                    v.insert(field.to_owned(), Value::String(t.to_owned()));
                }
            }
        }
        out.insert(name.to_owned(), Value::Object(v));
    }
    Value::Object(out)
}

fn texts(node: &Tree, list: &str) -> Value {
    Value::Array(
        node.members(list)
            .iter()
            .filter_map(|m| m.value.clone().map(Value::String))
            .collect(),
    )
}

/// The JSON request object equivalent to a query request's parameters.
pub fn request(action: &str, params: &[(String, String)]) -> Result<Value, QueueError> {
    let root = Tree::from_params(params);
    let skip = ["Action", "Version"];
    let mut out = scalars(&root, &skip)?;
    let mut put = |k: &str, v: Value| {
        let empty = match &v {
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            out.insert(k.to_owned(), v);
        }
    };
    match action {
        "CreateQueue" => {
            put("Attributes", pairs(&root, "Attribute", "Name", "Value"));
            put("tags", pairs(&root, "Tag", "Key", "Value"));
        }
        "SetQueueAttributes" => put("Attributes", pairs(&root, "Attribute", "Name", "Value")),
        "GetQueueAttributes" => put("AttributeNames", texts(&root, "AttributeName")),
        "TagQueue" => put("Tags", pairs(&root, "Tag", "Key", "Value")),
        "UntagQueue" => put("TagKeys", texts(&root, "TagKey")),
        "SendMessage" => {
            put(
                "MessageAttributes",
                message_attributes(&root, "MessageAttribute"),
            );
            put(
                "MessageSystemAttributes",
                message_attributes(&root, "MessageSystemAttribute"),
            );
        }
        "ReceiveMessage" => {
            put("AttributeNames", texts(&root, "AttributeName"));
            put(
                "MessageSystemAttributeNames",
                texts(&root, "MessageSystemAttributeName"),
            );
            put(
                "MessageAttributeNames",
                texts(&root, "MessageAttributeName"),
            );
        }
        "AddPermission" => {
            put("AWSAccountIds", texts(&root, "AWSAccountId"));
            put("Actions", texts(&root, "ActionName"));
        }
        "SendMessageBatch" | "DeleteMessageBatch" | "ChangeMessageVisibilityBatch" => {
            let list = format!("{action}RequestEntry");
            let mut entries = Vec::new();
            for m in root.members(&list) {
                let mut e = scalars(m, &[])?;
                let attrs = message_attributes(m, "MessageAttribute");
                if attrs.as_object().is_some_and(|o| !o.is_empty()) {
                    e.insert("MessageAttributes".into(), attrs);
                }
                let sys = message_attributes(m, "MessageSystemAttribute");
                if sys.as_object().is_some_and(|o| !o.is_empty()) {
                    e.insert("MessageSystemAttributes".into(), sys);
                }
                entries.push(Value::Object(e));
            }
            // An empty list stays present: the action's own EmptyBatchRequest says it.
            out.insert("Entries".into(), Value::Array(entries));
        }
        _ => {}
    }
    Ok(Value::Object(out))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Bodies may hold CR, which XML parsers would turn into LF: keep it exact.
            '\r' => out.push_str("&#xD;"),
            // Characters XML 1.0 cannot carry even as references (controls in a tag or an
            // echoed attribute name): replaced, so the document stays well-formed.
            c if (c < ' ' && !matches!(c, '\t' | '\n')) || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                out.push('\u{FFFD}')
            }
            c => out.push(c),
        }
    }
    out
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push_str(&format!("<{name}>{}</{name}>", escape(text)));
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Scalars of a JSON object as elements, in the order given.
fn fields(out: &mut String, obj: &Value, names: &[&str]) {
    for n in names {
        if let Some(v) = obj.get(*n)
            && !v.is_null()
        {
            element(out, n, &text_of(v));
        }
    }
}

fn name_value_list(out: &mut String, map: Option<&Value>, item: &str, key: &str) {
    if let Some(Value::Object(m)) = map {
        for (k, v) in m {
            out.push_str(&format!("<{item}>"));
            element(out, key, k);
            element(out, "Value", &text_of(v));
            out.push_str(&format!("</{item}>"));
        }
    }
}

fn message_attribute_list(out: &mut String, map: Option<&Value>) {
    if let Some(Value::Object(m)) = map {
        for (name, v) in m {
            out.push_str("<MessageAttribute>");
            element(out, "Name", name);
            out.push_str("<Value>");
            fields(out, v, &["StringValue", "BinaryValue", "DataType"]);
            out.push_str("</Value></MessageAttribute>");
        }
    }
}

fn batch_failures(out: &mut String, result: &Value) {
    for f in result
        .get("Failed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str("<BatchResultErrorEntry>");
        fields(out, f, &["Id", "SenderFault", "Code", "Message"]);
        out.push_str("</BatchResultErrorEntry>");
    }
}

/// The XML answer to `action`, from the JSON-shaped result.
pub fn response(action: &str, result: &Value, request_id: &str) -> String {
    let mut body = String::new();
    match action {
        "CreateQueue" | "GetQueueUrl" => fields(&mut body, result, &["QueueUrl"]),
        "ListQueues" | "ListDeadLetterSourceQueues" => {
            let key = if action == "ListQueues" {
                "QueueUrls"
            } else {
                "queueUrls"
            };
            for u in result
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                element(&mut body, "QueueUrl", &text_of(u));
            }
            fields(&mut body, result, &["NextToken"]);
        }
        "GetQueueAttributes" => {
            name_value_list(&mut body, result.get("Attributes"), "Attribute", "Name")
        }
        "ListQueueTags" => name_value_list(&mut body, result.get("Tags"), "Tag", "Key"),
        "SendMessage" => fields(
            &mut body,
            result,
            &[
                "MD5OfMessageBody",
                "MD5OfMessageAttributes",
                "MD5OfMessageSystemAttributes",
                "MessageId",
                "SequenceNumber",
            ],
        ),
        "SendMessageBatch" => {
            for e in result
                .get("Successful")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                body.push_str("<SendMessageBatchResultEntry>");
                fields(
                    &mut body,
                    e,
                    &[
                        "Id",
                        "MessageId",
                        "MD5OfMessageBody",
                        "MD5OfMessageAttributes",
                        "MD5OfMessageSystemAttributes",
                        "SequenceNumber",
                    ],
                );
                body.push_str("</SendMessageBatchResultEntry>");
            }
            batch_failures(&mut body, result);
        }
        "DeleteMessageBatch" | "ChangeMessageVisibilityBatch" => {
            for e in result
                .get("Successful")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                body.push_str(&format!("<{action}ResultEntry>"));
                fields(&mut body, e, &["Id"]);
                body.push_str(&format!("</{action}ResultEntry>"));
            }
            batch_failures(&mut body, result);
        }
        "ReceiveMessage" => {
            for m in result
                .get("Messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                body.push_str("<Message>");
                fields(
                    &mut body,
                    m,
                    &["MessageId", "ReceiptHandle", "MD5OfBody", "Body"],
                );
                name_value_list(&mut body, m.get("Attributes"), "Attribute", "Name");
                fields(&mut body, m, &["MD5OfMessageAttributes"]);
                message_attribute_list(&mut body, m.get("MessageAttributes"));
                body.push_str("</Message>");
            }
        }
        "ListMessageMoveTasks" => {
            for e in result
                .get("Results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                body.push_str("<ListMessageMoveTasksResultEntry>");
                fields(
                    &mut body,
                    e,
                    &[
                        "TaskHandle",
                        "Status",
                        "SourceArn",
                        "DestinationArn",
                        "MaxNumberOfMessagesPerSecond",
                        "ApproximateNumberOfMessagesMoved",
                        "ApproximateNumberOfMessagesToMove",
                        "FailureReason",
                        "StartedTimestamp",
                    ],
                );
                body.push_str("</ListMessageMoveTasksResultEntry>");
            }
        }
        "StartMessageMoveTask" | "CancelMessageMoveTask" => fields(
            &mut body,
            result,
            &["TaskHandle", "ApproximateNumberOfMessagesMoved"],
        ),
        _ => {}
    }
    let result_element = if body.is_empty()
        && !matches!(
            action,
            "ListQueues"
                | "ReceiveMessage"
                | "GetQueueAttributes"
                | "ListQueueTags"
                | "ListMessageMoveTasks"
        ) {
        String::new()
    } else {
        format!("<{action}Result>{body}</{action}Result>")
    };
    format!(
        "<?xml version=\"1.0\"?><{action}Response xmlns=\"{NAMESPACE}\">{result_element}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    )
}

/// The query protocol's error document.
pub fn error(fault: &str, code: &str, message: &str, request_id: &str) -> String {
    let mut e = String::new();
    element(&mut e, "Type", fault);
    element(&mut e, "Code", code);
    element(&mut e, "Message", message);
    format!(
        "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"{NAMESPACE}\"><Error>{e}<Detail/></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn flattened_parameters_become_the_json_request() {
        let got = request(
            "SendMessage",
            &params(&[
                ("Action", "SendMessage"),
                ("QueueUrl", "http://h/000000000000/q"),
                ("MessageBody", "hi"),
                ("DelaySeconds", "5"),
                ("MessageAttribute.1.Name", "n"),
                ("MessageAttribute.1.Value.DataType", "Number"),
                ("MessageAttribute.1.Value.StringValue", "7"),
                ("MessageAttribute.2.Name", "b"),
                ("MessageAttribute.2.Value.DataType", "Binary"),
                ("MessageAttribute.2.Value.BinaryValue", "AQI="),
            ]),
        );
        assert_eq!(
            got.ok(),
            Some(json!({
                "QueueUrl": "http://h/000000000000/q",
                "MessageBody": "hi",
                "DelaySeconds": 5,
                "MessageAttributes": {
                    "n": {"DataType": "Number", "StringValue": "7"},
                    "b": {"DataType": "Binary", "BinaryValue": "AQI="}
                }
            }))
        );
        let got = request(
            "DeleteMessageBatch",
            &params(&[
                ("DeleteMessageBatchRequestEntry.2.Id", "b"),
                ("DeleteMessageBatchRequestEntry.2.ReceiptHandle", "h2"),
                ("DeleteMessageBatchRequestEntry.10.Id", "c"),
                ("DeleteMessageBatchRequestEntry.10.ReceiptHandle", "h3"),
                ("DeleteMessageBatchRequestEntry.1.Id", "a"),
                ("DeleteMessageBatchRequestEntry.1.ReceiptHandle", "h1"),
            ]),
        );
        let ids: Vec<String> = got
            .ok()
            .and_then(|v| v.get("Entries").cloned())
            .and_then(|e| e.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|e| text_of(&e["Id"]))
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(request("ReceiveMessage", &params(&[("MaxNumberOfMessages", "ten")])).is_err());
    }

    #[test]
    fn results_become_the_query_xml() {
        let xml = response(
            "ReceiveMessage",
            &json!({"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "MD5OfBody": "x",
                "Body": "a<b\r", "Attributes": {"SentTimestamp": "1"},
                "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}}}]}),
            "req",
        );
        assert!(xml.contains("<Body>a&lt;b&#xD;</Body>"), "{xml}");
        assert!(xml.contains("<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute>"));
        assert!(xml.contains("<MessageAttribute><Name>k</Name><Value><StringValue>v</StringValue><DataType>String</DataType></Value></MessageAttribute>"));
        assert!(response("DeleteQueue", &json!({}), "r").contains("<DeleteQueueResponse xmlns"));
    }
}
