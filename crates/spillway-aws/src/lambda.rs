//! The Lambda API (rest-json, `/2015-03-31/functions/...`): Invoke, GetFunction,
//! GetFunctionConfiguration and ListFunctions over spillway's function host.
//!
//! Errors follow Lambda's model: the code in `x-amzn-ErrorType` and a body of `Type` and
//! `message` (`Message` for ResourceNotFoundException and ServiceException, as botocore's model
//! spells them).

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use spillway_functions::{
    Function, FunctionHost, InvokeError, InvokeRequest, MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD,
    Runtime,
};

use crate::auth::Caller;
use crate::error::AwsError;

/// The Lambda API's path prefix.
pub const PREFIX: &str = "/2015-03-31/functions";

/// Lambda's limit on `X-Amz-Client-Context` (base64).
const MAX_CLIENT_CONTEXT: usize = 3583;

pub struct Lambda {
    pub host: Arc<FunctionHost>,
    pub region: String,
    pub account: String,
}

/// A successful answer: status, extra headers, body.
pub struct LambdaResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

fn json_response(value: serde_json::Value) -> LambdaResponse {
    LambdaResponse {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: Bytes::from(value.to_string()),
    }
}

/// The operations on one function (ListFunctions, on none, is answered on its own).
enum Operation {
    Invoke,
    GetFunction,
    GetFunctionConfiguration,
}

impl Operation {
    fn action(&self) -> &'static str {
        match self {
            Self::Invoke => "lambda:InvokeFunction",
            Self::GetFunction => "lambda:GetFunction",
            Self::GetFunctionConfiguration => "lambda:GetFunctionConfiguration",
        }
    }
}

fn not_found(arn: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("Function not found: {arn}"),
    )
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Lambda {
    fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account
        )
    }

    /// A function named in any of Lambda's forms (`name`, `name:$LATEST`, an ARN, a partial
    /// `account:function:name`), and the qualifier. Only `$LATEST` exists here.
    fn resolve(&self, raw: &str, qualifier: Option<&str>) -> Result<&Arc<Function>, AwsError> {
        let parts: Vec<&str> = raw.split(':').collect();
        let (name, inline_qualifier) = match parts.as_slice() {
            [name] => (*name, None),
            [name, q] => (*name, Some(*q)),
            [
                "arn",
                "aws",
                "lambda",
                region,
                account,
                "function",
                name,
                rest @ ..,
            ] if *region == self.region && *account == self.account && rest.len() <= 1 => {
                (*name, rest.first().copied())
            }
            [account, "function", name, rest @ ..]
                if *account == self.account && rest.len() <= 1 =>
            {
                (*name, rest.first().copied())
            }
            _ => return Err(not_found(raw)),
        };
        let q = inline_qualifier.or(qualifier);
        let function = self
            .host
            .get(name)
            .ok_or_else(|| not_found(&self.arn(name)))?;
        match q {
            None | Some("$LATEST") => Ok(function),
            Some(q) => Err(not_found(&format!("{}:{q}", self.arn(name)))),
        }
    }

    fn authorize(&self, caller: &Caller, action: &str, resource: &str) -> Result<(), AwsError> {
        caller.authorize(action, resource, 403)
    }

    pub async fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        header: &(dyn Fn(&str) -> Option<String> + Sync),
        body: Bytes,
        caller: &Caller,
    ) -> Result<LambdaResponse, AwsError> {
        let rest = path.strip_prefix(PREFIX).unwrap_or("");
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let param = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        };
        let (op, name) = match (method, segments.as_slice()) {
            ("GET", []) => {
                self.authorize(caller, "lambda:ListFunctions", "*")?;
                return self.list(param("Marker"), param("MaxItems"));
            }
            ("GET", [name]) => (Operation::GetFunction, percent_decode(name)),
            ("GET", [name, "configuration"]) => {
                (Operation::GetFunctionConfiguration, percent_decode(name))
            }
            ("POST", [name, "invocations"]) => (Operation::Invoke, percent_decode(name)),
            _ => {
                return Err(AwsError::new(
                    404,
                    "UnknownOperationException",
                    format!("{method} {path} is not a Lambda operation spillway serves"),
                ));
            }
        };
        let function = self.resolve(&name, param("Qualifier"))?;
        self.authorize(caller, op.action(), &function.spec.arn)?;
        match op {
            Operation::GetFunction => Ok(json_response(serde_json::json!({
                "Configuration": self.configuration(function),
                "Code": {"RepositoryType": "Local", "Location": function.spec.code.display().to_string()},
                "Concurrency": function.spec.reserved_concurrency
                    .map(|n| serde_json::json!({"ReservedConcurrentExecutions": n})),
            }))),
            Operation::GetFunctionConfiguration => Ok(json_response(self.configuration(function))),
            Operation::Invoke => self.invoke(function, header, body).await,
        }
    }

    fn list(&self, marker: Option<&str>, max: Option<&str>) -> Result<LambdaResponse, AwsError> {
        let max: usize = match max {
            None => 50,
            Some(m) => match m.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => n.min(50),
                _ => {
                    return Err(AwsError::new(
                        400,
                        "InvalidParameterValueException",
                        "MaxItems must be between 1 and 10000",
                    ));
                }
            },
        };
        let all: Vec<&Arc<Function>> = self.host.functions().collect();
        let start = match marker {
            None => 0,
            Some(m) => all
                .iter()
                .position(|f| f.spec.name.as_str() > m)
                .unwrap_or(all.len()),
        };
        let page: Vec<&Arc<Function>> = all.iter().skip(start).take(max).copied().collect();
        let mut out = serde_json::json!({
            "Functions": page.iter().map(|f| self.configuration(f)).collect::<Vec<_>>(),
        });
        if start + page.len() < all.len()
            && let Some(last) = page.last()
        {
            out["NextMarker"] = serde_json::Value::String(last.spec.name.clone());
        }
        Ok(json_response(out))
    }

    fn configuration(&self, f: &Function) -> serde_json::Value {
        let s = &f.spec;
        let runtime = match s.runtime {
            Runtime::Provided => "provided.al2023",
            Runtime::Nodejs => "nodejs",
            Runtime::Python => "python",
        };
        let variables: serde_json::Map<String, serde_json::Value> = s
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let handler = s.handler.clone().unwrap_or_else(|| "bootstrap".into());
        serde_json::json!({
            "FunctionName": s.name,
            "FunctionArn": s.arn,
            "Runtime": runtime,
            "Role": format!("arn:aws:iam::{}:role/{}", self.account, s.role),
            "Handler": handler,
            "CodeSize": 0,
            "Description": "",
            "Timeout": s.timeout.as_secs(),
            "MemorySize": s.memory_mb,
            "Version": "$LATEST",
            "Environment": {"Variables": variables},
            "TracingConfig": {"Mode": "PassThrough"},
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": [std::env::consts::ARCH.replace("aarch64", "arm64")],
            "EphemeralStorage": {"Size": 512},
        })
    }

    async fn invoke(
        &self,
        function: &Function,
        header: &(dyn Fn(&str) -> Option<String> + Sync),
        body: Bytes,
    ) -> Result<LambdaResponse, AwsError> {
        let name = function.spec.name.as_str();
        let invocation_type =
            header("x-amz-invocation-type").unwrap_or_else(|| "RequestResponse".into());
        let tail = match header("x-amz-log-type").as_deref() {
            None | Some("None") => false,
            Some("Tail") => true,
            Some(other) => {
                return Err(invalid(&format!(
                    "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]"
                )));
            }
        };
        let client_context = match header("x-amz-client-context") {
            None => None,
            Some(c) if c.len() > MAX_CLIENT_CONTEXT => {
                return Err(invalid("Client context must be 3583 bytes or less"));
            }
            Some(c) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(c.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|s| serde_json::from_str::<serde_json::Value>(s).is_ok())
                    .ok_or_else(|| {
                        AwsError::new(
                            400,
                            "InvalidRequestContentException",
                            "Client context must be a valid Base64-encoded JSON object.",
                        )
                    })?;
                Some(decoded)
            }
        };
        match invocation_type.as_str() {
            "RequestResponse" => {
                if body.len() > MAX_SYNC_PAYLOAD {
                    return Err(too_large(MAX_SYNC_PAYLOAD));
                }
                let outcome = self
                    .host
                    .invoke(
                        name,
                        InvokeRequest {
                            payload: body,
                            client_context,
                            ..InvokeRequest::default()
                        },
                    )
                    .await
                    .map_err(|e| invoke_error(e, &function.spec.arn))?;
                // The invocation's own id (START/END/REPORT's and the context's), as Lambda
                // answers it, not the endpoint's.
                let mut headers = vec![
                    ("content-type", "application/json".to_owned()),
                    ("x-amz-executed-version", "$LATEST".to_owned()),
                    ("x-amzn-requestid", outcome.request_id.clone()),
                ];
                if let Some(e) = outcome.error {
                    headers.push(("x-amz-function-error", e.as_str().to_owned()));
                }
                if tail {
                    headers.push((
                        "x-amz-log-result",
                        base64::engine::general_purpose::STANDARD.encode(&outcome.log_tail),
                    ));
                }
                Ok(LambdaResponse {
                    status: 200,
                    headers,
                    body: outcome.payload,
                })
            }
            "Event" => {
                if body.len() > MAX_ASYNC_PAYLOAD {
                    return Err(too_large(MAX_ASYNC_PAYLOAD));
                }
                let id = self
                    .host
                    .invoke_async(name, body)
                    .await
                    .map_err(|e| invoke_error(e, &function.spec.arn))?;
                Ok(LambdaResponse {
                    status: 202,
                    headers: vec![("x-amzn-requestid", id)],
                    body: Bytes::new(),
                })
            }
            "DryRun" => Ok(LambdaResponse {
                status: 204,
                headers: Vec::new(),
                body: Bytes::new(),
            }),
            other => Err(invalid(&format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            ))),
        }
    }
}

fn invalid(message: &str) -> AwsError {
    AwsError::new(400, "InvalidParameterValueException", message)
}

fn too_large(limit: usize) -> AwsError {
    AwsError::new(
        413,
        "RequestTooLargeException",
        format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
    )
}

fn invoke_error(e: InvokeError, arn: &str) -> AwsError {
    match e {
        InvokeError::NotFound(_) => not_found(arn),
        InvokeError::Throttled { reserved } => {
            let mut err = AwsError::new(429, "TooManyRequestsException", "Rate Exceeded.");
            err.reason = Some(if reserved {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            } else {
                "ConcurrentInvocationLimitExceeded"
            });
            err
        }
        InvokeError::TooLarge(m) => AwsError::new(413, "RequestTooLargeException", m),
        InvokeError::InvalidContent(m) => AwsError::new(
            400,
            "InvalidRequestContentException",
            format!("Could not parse request body into json: {m}"),
        ),
        InvokeError::ShuttingDown => {
            AwsError::new(503, "ServiceException", "spillway is shutting down")
        }
        InvokeError::Internal(m) => AwsError::new(500, "ServiceException", m),
    }
}
