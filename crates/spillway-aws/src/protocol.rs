//! Which AWS protocol a request speaks and which operation it asks for: JSON protocols name it
//! in `X-Amz-Target: Prefix.Operation`, the query protocol in an `Action` parameter (form body
//! or URL query).

use crate::error::AwsError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson 1.0 or 1.1.
    Json {
        version: JsonVersion,
    },
    Query,
    /// rest-json (Lambda): the operation is in the method and path.
    RestJson,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonVersion {
    V1_0,
    V1_1,
}

/// An operation of a service, as the request named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The signing name: `sts`, `secretsmanager`, `sqs`, ...
    pub service: &'static str,
    /// `GetCallerIdentity`, `GetSecretValue`, ...
    pub name: String,
    pub protocol: Protocol,
    /// The query protocol's parameters (URL query and form body together), decoded.
    pub params: Vec<(String, String)>,
}

/// Most parameters a query-protocol request may carry. The largest real request (SQS's
/// SendMessageBatch: 10 entries, each with 10 attributes of 4 fields and a few more) needs
/// about 500.
pub const MAX_QUERY_PARAMETERS: usize = 5_000;

/// JSON target prefixes and the services they belong to.
const JSON_TARGETS: &[(&str, &str)] = &[
    ("secretsmanager", "secretsmanager"),
    ("AmazonSQS", "sqs"),
    ("DynamoDB_20120810", "dynamodb"),
];

fn missing_action() -> AwsError {
    AwsError::new(
        400,
        "MissingAction",
        "the request names no operation (X-Amz-Target header or Action parameter)",
    )
}

/// Recognises the operation from the headers, URL query and body. `other_actions` says which
/// service, if any, claims a query-protocol action that is not STS's.
pub fn recognise(
    target: Option<&str>,
    content_type: Option<&str>,
    url_query: &str,
    body: &[u8],
    other_actions: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Operation, AwsError> {
    if let Some(target) = target {
        let (prefix, name) = target.split_once('.').ok_or_else(|| {
            AwsError::new(400, "UnknownOperationException", "malformed X-Amz-Target")
        })?;
        let service = JSON_TARGETS
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                AwsError::new(
                    400,
                    "UnknownOperationException",
                    format!("unknown service {prefix}"),
                )
            })?;
        let version = match content_type {
            Some(ct) if ct.starts_with("application/x-amz-json-1.0") => JsonVersion::V1_0,
            _ => JsonVersion::V1_1,
        };
        return Ok(Operation {
            service,
            name: name.to_owned(),
            protocol: Protocol::Json { version },
            params: Vec::new(),
        });
    }
    // Query protocol: form-encoded parameters in the body (POST) and/or the URL.
    let form = content_type.is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let body = if form || body.is_empty() {
        std::str::from_utf8(body)
            .map_err(|_| AwsError::new(400, "MalformedQueryString", "the body is not UTF-8"))?
    } else {
        return Err(missing_action());
    };
    // The URL query is decoded exactly as the signature decodes it (SigV4's rules: `+` stays
    // `+`), so the operation acts on what was signed; the form body is form-encoded.
    let url_params = spillway_identity::sigv4::parse_query(url_query)
        .map_err(|e| AwsError::new(400, "MalformedQueryString", e.to_string()))?;
    let mut params: Vec<(String, String)> = Vec::new();
    // Names seen, in a set: this runs before the signature is checked, so its cost must stay
    // linear in what anyone can send (a list scan per parameter was quadratic).
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url_params.into_iter().chain(
        url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
    ) {
        if params.len() >= MAX_QUERY_PARAMETERS {
            return Err(AwsError::new(
                400,
                "MalformedQueryString",
                format!("a request may carry at most {MAX_QUERY_PARAMETERS} parameters"),
            ));
        }
        if !seen.insert(k.clone()) {
            return Err(AwsError::new(
                400,
                "MalformedQueryString",
                format!("the parameter {k} appears more than once"),
            ));
        }
        params.push((k, v));
    }
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .ok_or_else(missing_action)?;
    let service = match action.as_str() {
        "GetCallerIdentity" | "AssumeRole" | "GetSessionToken" => Some("sts"),
        other => other_actions(other),
    };
    let Some(service) = service else {
        return Err(AwsError::new(
            400,
            "InvalidAction",
            format!("the action {action} is not valid for this endpoint"),
        ));
    };
    Ok(Operation {
        service,
        name: action,
        protocol: Protocol::Query,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_recognised() {
        let none = |_: &str| None;
        let sqs = |a: &str| (a == "SendMessage").then_some("sqs");
        let op = recognise(
            None,
            Some("application/x-www-form-urlencoded"),
            "",
            b"Action=SendMessage&QueueUrl=x",
            &sqs,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((op.service, op.name.as_str()), ("sqs", "SendMessage"));
        // Many parameters cost linear time and stop at the cap.
        let mut body = String::from("Action=SendMessage");
        for i in 0..MAX_QUERY_PARAMETERS {
            body.push_str(&format!("&p{i}="));
        }
        assert_eq!(
            recognise(
                None,
                Some("application/x-www-form-urlencoded"),
                "",
                body.as_bytes(),
                &sqs
            )
            .map_err(|e| e.code),
            Err("MalformedQueryString".into())
        );
        let op = recognise(
            None,
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            "",
            b"Action=GetCallerIdentity&Version=2011-06-15",
            &none,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (op.service, op.name.as_str(), op.protocol),
            ("sts", "GetCallerIdentity", Protocol::Query)
        );
        let op = recognise(None, None, "Action=GetCallerIdentity", b"", &none)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(op.service, "sts");
        let op = recognise(
            Some("secretsmanager.GetSecretValue"),
            Some("application/x-amz-json-1.1"),
            "",
            b"{}",
            &none,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (op.service, op.name.as_str()),
            ("secretsmanager", "GetSecretValue")
        );
        assert_eq!(
            recognise(None, None, "", b"", &none).map_err(|e| e.code),
            Err("MissingAction".into())
        );
        assert_eq!(
            recognise(
                None,
                Some("application/x-www-form-urlencoded"),
                "Action=A",
                b"Action=B",
                &none
            )
            .map_err(|e| e.code),
            Err("MalformedQueryString".into())
        );
        assert_eq!(
            recognise(Some("Nope.X"), None, "", b"", &none).map_err(|e| e.code),
            Err("UnknownOperationException".into())
        );
        assert_eq!(
            recognise(
                None,
                Some("application/x-www-form-urlencoded"),
                "",
                b"Action=Launch",
                &none
            )
            .map_err(|e| e.code),
            Err("InvalidAction".into())
        );
    }
}
