//! AWS errors as each protocol shapes them. What a client sees is chosen here: a code from AWS's
//! documented set and a message that never contains secrets or signatures.

use crate::protocol::Protocol;
use crate::xml;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Lambda's TooManyRequestsException names why (`Reason`).
    pub reason: Option<&'static str>,
}

impl AwsError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            reason: None,
        }
    }

    /// A client error (4xx) of the query protocol is a `Sender` fault, a 5xx a `Receiver` one.
    fn fault(&self) -> &'static str {
        if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        }
    }

    /// (content type, body) in `protocol`'s shape.
    pub fn render(&self, protocol: Protocol, request_id: &str) -> (&'static str, String) {
        match protocol {
            Protocol::Json {
                version: crate::protocol::JsonVersion::V1_0,
            } => (
                "application/x-amz-json-1.0",
                serde_json::json!({"__type": self.code, "message": self.message}).to_string(),
            ),
            Protocol::Json { .. } => (
                "application/x-amz-json-1.1",
                serde_json::json!({"__type": self.code, "message": self.message}).to_string(),
            ),
            // Lambda's shape: the code travels in `x-amzn-ErrorType` (see `header`), the body
            // says who is at fault; two exceptions spell their message `Message`.
            Protocol::RestJson => {
                let key = if matches!(
                    self.code.as_str(),
                    "ResourceNotFoundException" | "ServiceException"
                ) {
                    "Message"
                } else {
                    "message"
                };
                let mut body = serde_json::json!({
                    "Type": if self.status >= 500 { "Service" } else { "User" },
                    key: self.message,
                });
                if let Some(r) = self.reason {
                    body["Reason"] = serde_json::Value::String(r.to_owned());
                }
                ("application/json", body.to_string())
            }
            Protocol::Query => (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{}</Type>{}{}</Error>{}</ErrorResponse>",
                    self.fault(),
                    xml::element("Code", &self.code),
                    xml::element("Message", &self.message),
                    xml::element("RequestId", request_id)
                ),
            ),
        }
    }
}
