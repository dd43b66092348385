//! A function's answer turned into an HTTP response, as API Gateway maps it: format 2.0 with
//! its inference for output without `statusCode`, and format 1.0 with `multiValueHeaders`.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Map, Value};

/// An HTTP response before the gateway adds its own headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// Names as the function gave them; several `set-cookie` are kept apart.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Why an answer could not be mapped: logged, never shown to the client.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed Lambda proxy response: {0}")]
pub struct Malformed(pub String);

fn malformed(s: impl Into<String>) -> Malformed {
    Malformed(s.into())
}

fn status_of(v: &Value) -> Result<u16, Malformed> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        // API Gateway accepts a status written as a string of digits too.
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .filter(|n| (100..=599).contains(n))
        .ok_or_else(|| malformed(format!("statusCode {v} is not an HTTP status")))
}

/// Header values may be strings, numbers or booleans (their text); anything else is malformed.
fn scalar(v: &Value, what: &str) -> Result<String, Malformed> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(malformed(format!("{what} must be a string, found {v}"))),
    }
}

fn body_of(obj: &Map<String, Value>) -> Result<Bytes, Malformed> {
    let base64 = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(malformed(format!("isBase64Encoded is {other}"))),
    };
    let text = match obj.get("body") {
        None | Some(Value::Null) => return Ok(Bytes::new()),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(malformed(format!(
                "body must be a string, found {}",
                kind_of(other)
            )));
        }
    };
    if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes::from)
            .map_err(|e| malformed(format!("body is not base64: {e}")))
    } else {
        Ok(Bytes::from(text.clone()))
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn headers_of(obj: &Map<String, Value>) -> Result<Vec<(String, String)>, Malformed> {
    match obj.get("headers") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(h)) => h
            .iter()
            .map(|(k, v)| Ok((k.clone(), scalar(v, &format!("header {k}"))?)))
            .collect(),
        Some(other) => Err(malformed(format!(
            "headers must be an object, found {}",
            kind_of(other)
        ))),
    }
}

/// Payload format 2.0.
pub fn from_v2(payload: &[u8]) -> Result<HttpReply, Malformed> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| malformed(format!("the output is not JSON: {e}")))?;
    let obj = match &v {
        Value::Object(o) if o.contains_key("statusCode") => o,
        // No statusCode: 200, application/json, and the output as the body (a JSON string's
        // value without its quotes).
        other => {
            let body = match other {
                Value::String(s) => Bytes::from(s.clone()),
                _ => Bytes::copy_from_slice(payload),
            };
            return Ok(HttpReply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            });
        }
    };
    let status = status_of(&obj["statusCode"])?;
    let mut headers = headers_of(obj)?;
    match obj.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for c in cookies {
                headers.push(("set-cookie".into(), scalar(c, "a cookie")?));
            }
        }
        Some(other) => {
            return Err(malformed(format!(
                "cookies must be an array, found {}",
                kind_of(other)
            )));
        }
    }
    Ok(HttpReply {
        status,
        headers,
        body: body_of(obj)?,
    })
}

/// Payload format 1.0: `statusCode` is required; `headers` and `multiValueHeaders` merge, the
/// latter winning for a name both give.
pub fn from_v1(payload: &[u8]) -> Result<HttpReply, Malformed> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| malformed(format!("the output is not JSON: {e}")))?;
    let Value::Object(obj) = &v else {
        return Err(malformed(format!(
            "the output must be an object, found {}",
            kind_of(&v)
        )));
    };
    let status = status_of(
        obj.get("statusCode")
            .ok_or_else(|| malformed("statusCode is missing"))?,
    )?;
    let mut headers = headers_of(obj)?;
    match obj.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(multi)) => {
            for (name, values) in multi {
                headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
                let Value::Array(values) = values else {
                    return Err(malformed(format!(
                        "multiValueHeaders.{name} must be an array"
                    )));
                };
                for v in values {
                    headers.push((name.clone(), scalar(v, &format!("header {name}"))?));
                }
            }
        }
        Some(other) => {
            return Err(malformed(format!(
                "multiValueHeaders must be an object, found {}",
                kind_of(other)
            )));
        }
    }
    Ok(HttpReply {
        status,
        headers,
        body: body_of(obj)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a HttpReply, name: &str) -> Vec<&'a str> {
        r.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn v2_infers_from_output_without_status() {
        let r = from_v2(br#""Hello from Lambda!""#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "Hello from Lambda!");
        assert_eq!(header(&r, "content-type"), ["application/json"]);
        let r =
            from_v2(br#"{ "message": "Hello from Lambda!" }"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.body, r#"{ "message": "Hello from Lambda!" }"#);
        let r = from_v2(b"[1,2]").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.body, "[1,2]");
    }

    #[test]
    fn v2_explicit_with_cookies_and_base64() {
        let r = from_v2(
            br#"{"statusCode":201,"headers":{"x-n":5},"cookies":["a=1","b=2"],"isBase64Encoded":true,"body":"aGk="}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "x-n"), ["5"]);
        assert_eq!(header(&r, "set-cookie"), ["a=1", "b=2"]);
        assert_eq!(r.body, "hi");
    }

    #[test]
    fn malformed_answers_are_refused() {
        assert!(from_v2(br#"{"statusCode":"abc"}"#).is_err());
        assert!(from_v2(br#"{"statusCode":200,"body":{"a":1}}"#).is_err());
        assert!(from_v2(br#"{"statusCode":200,"isBase64Encoded":true,"body":"%%"}"#).is_err());
        assert!(from_v2(b"not json").is_err());
        assert!(from_v1(br#"{"body":"x"}"#).is_err());
        assert!(from_v1(br#""x""#).is_err());
        assert!(from_v1(br#"{"statusCode":700}"#).is_err());
    }

    #[test]
    fn v1_merges_multi_value_headers() {
        let r = from_v1(
            br#"{"statusCode":"200","headers":{"A":"1","B":"x"},"multiValueHeaders":{"a":["2","3"]},"body":"ok"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header(&r, "a"), ["2", "3"]);
        assert_eq!(header(&r, "b"), ["x"]);
        assert_eq!(r.body, "ok");
    }
}
