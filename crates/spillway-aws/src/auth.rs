//! Who is calling: the request's SigV4 signature (Authorization header or presigned query) is
//! checked against the stack's access keys, and the caller's principal returned. The signature
//! must cover every `x-amz-*` header present (and `Content-Type` for the JSON protocols), and
//! be dated within its service's window ([`signature_window`]), as AWS requires. In dev mode
//! (`identity.enforce = false`, loopback only) unsigned requests and unknown keys are let in as
//! the account's root, logged once; a known key must still sign correctly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use spillway_identity::principals::{KeyRing, Principal};
use spillway_identity::sigv4::{self, RequestParts, SigError, Signed};

use crate::error::AwsError;
use crate::protocol::Protocol;

/// A request as the signature sees it.
pub struct RawRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// Lower-case name → value (repeated headers joined with `,`).
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The names of the headers present, lower case (each `x-amz-*` one must be signed).
    pub header_names: &'a [String],
    pub body: &'a [u8],
    /// Whether it came over TLS (the policy key `aws:SecureTransport`).
    pub secure_transport: bool,
}

/// How far a request's date may be from spillway's clock, either way, per signing name: STS
/// accepts 15 minutes, Lambda, Secrets Manager and API Gateway's `AWS_IAM` routes 5, as AWS
/// does; a service not listed gets the stricter 5.
pub fn signature_window(service: &str) -> i64 {
    match service {
        "sts" => sigv4::MAX_CLOCK_SKEW,
        _ => 5 * 60,
    }
}

/// Headers the signature must cover besides every `x-amz-*` one. None, deliberately:
/// AWS's SigV4 documentation asks for `Content-Type` to be signed when present, but AWS's own
/// aws-sdk v2 for JavaScript never signs it (it is in that SDK's unsignable list) and AWS
/// accepts its requests, so requiring it would break a client that must work unchanged. What
/// an unsigned `Content-Type` can change here is harmless: the operation comes from the signed
/// `X-Amz-Target` (or the signed `Action`), the body is covered by the payload hash, and the
/// header only chooses between JSON 1.0 and 1.1 for the answer's shape, or makes a query
/// request unreadable.
fn required_signed(_protocol: Protocol) -> &'static [&'static str] {
    &[]
}

#[derive(Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub access_key_id: Option<String>,
    /// Let in by dev mode without a verified signature.
    pub dev: bool,
    /// The request came over TLS.
    pub secure_transport: bool,
}

impl Caller {
    /// A policy request for `action` on `resource` with the global condition keys AWS sets on
    /// every request, `aws:SecureTransport` among them (so "Deny unless TLS" applies).
    pub fn policy_request<'a>(
        &'a self,
        action: &'a str,
        resource: &'a str,
    ) -> spillway_identity::policy::Request<'a> {
        spillway_identity::policy::Request::new(
            action,
            resource,
            &self.principal.arn,
            spillway_identity::time::now(),
        )
        .with(
            "aws:SecureTransport",
            if self.secure_transport {
                "true"
            } else {
                "false"
            },
        )
    }

    /// Whether the caller's policies allow `action` on `resource`; if not, AWS's
    /// AccessDeniedException (services disagree on its status: Secrets Manager answers 400,
    /// Lambda 403).
    pub fn authorize(&self, action: &str, resource: &str, status: u16) -> Result<(), AwsError> {
        self.authorize_with(action, resource, None, status)
    }

    /// [`Caller::authorize`] with the resource's own policy (an SQS queue's `Policy`) evaluated
    /// beside the caller's, as AWS does within one account.
    pub fn authorize_with(
        &self,
        action: &str,
        resource: &str,
        resource_policy: Option<&spillway_identity::resource_policy::ResourcePolicy>,
        status: u16,
    ) -> Result<(), AwsError> {
        let request = self.policy_request(action, resource);
        if spillway_identity::resource_policy::evaluate(&self.principal, resource_policy, &request)
            .allowed()
        {
            Ok(())
        } else {
            Err(AwsError::new(
                status,
                "AccessDeniedException",
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {resource}",
                    self.principal.arn
                ),
            ))
        }
    }
}

pub struct Authenticator {
    pub keys: Arc<KeyRing>,
    region: String,
    enforce: bool,
    root: Arc<Principal>,
    dev_logged: AtomicBool,
}

/// The code AWS uses for a signature problem, which differs between protocol families.
fn sig_error(e: &SigError, protocol: Protocol) -> AwsError {
    let query = e.aws_code();
    let code = match protocol {
        Protocol::Query => query.to_owned(),
        Protocol::Json { .. } | Protocol::RestJson => match query {
            "SignatureDoesNotMatch" => "InvalidSignatureException".into(),
            "InvalidClientTokenId" => "UnrecognizedClientException".into(),
            "IncompleteSignature" => "IncompleteSignatureException".into(),
            "ExpiredToken" => "ExpiredTokenException".into(),
            other => other.to_owned(),
        },
    };
    // AWS answers a malformed signature and expired temporary credentials with 400, the other
    // authentication failures with 403.
    let status = if code.starts_with("Incomplete") || code.starts_with("ExpiredToken") {
        400
    } else {
        403
    };
    AwsError::new(status, &code, e.to_string())
}

impl Authenticator {
    pub fn new(keys: Arc<KeyRing>, region: &str, account: &str, enforce: bool) -> Self {
        Self {
            keys,
            region: region.to_owned(),
            enforce,
            root: Arc::new(Principal {
                arn: format!("arn:aws:iam::{account}:root"),
                policies: vec![spillway_identity::policy::Policy {
                    statements: vec![spillway_identity::policy::Statement::simple(
                        spillway_identity::policy::Effect::Allow,
                        "*",
                        "*",
                    )],
                }],
                session_policy: None,
            }),
            dev_logged: AtomicBool::new(false),
        }
    }

    fn dev(&self, why: &str, secure_transport: bool) -> Caller {
        if !self.dev_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "identity.enforce = false: letting in {why} as the account root (dev mode; logged once)"
            );
        }
        Caller {
            principal: Arc::clone(&self.root),
            access_key_id: None,
            dev: true,
            secure_transport,
        }
    }

    /// A request to spillway's own surface (`/_spillway/*`), which belongs to no AWS service:
    /// any valid signature of a known key, whatever service its scope names, lets the caller
    /// in. Dev mode lets no one in here without a verified signature.
    pub fn authenticate_any_service(
        &self,
        req: &RawRequest<'_>,
        now: i64,
    ) -> Result<Caller, AwsError> {
        let credential = match (req.header)("authorization") {
            Some(h) => h
                .split(|c: char| c == ',' || c.is_whitespace())
                .find_map(|f| f.strip_prefix("Credential="))
                .map(str::to_owned),
            None => sigv4::parse_query(req.query).ok().and_then(|q| {
                q.into_iter()
                    .find(|(k, _)| k == "X-Amz-Credential")
                    .map(|(_, v)| v)
            }),
        };
        let scope = credential
            .as_deref()
            .and_then(|c| sigv4::parse_credential(c).ok())
            .map(|(_, scope)| scope)
            .ok_or_else(|| {
                AwsError::new(
                    403,
                    "MissingAuthenticationToken",
                    "Request is missing Authentication Token",
                )
            })?;
        let caller = self.authenticate(req, &scope.service, Protocol::RestJson, now)?;
        if caller.dev {
            return Err(AwsError::new(
                403,
                "InvalidClientTokenId",
                "the request is not signed by a known key",
            ));
        }
        Ok(caller)
    }

    pub fn authenticate(
        &self,
        req: &RawRequest<'_>,
        service: &str,
        protocol: Protocol,
        now: i64,
    ) -> Result<Caller, AwsError> {
        let fail = |e: SigError| sig_error(&e, protocol);
        let query = sigv4::parse_query(req.query).map_err(fail)?;
        let signed: Signed = match (req.header)("authorization") {
            Some(h) => sigv4::parse_authorization(
                &h,
                (req.header)("x-amz-date").as_deref(),
                (req.header)("x-amz-security-token").as_deref(),
                &query,
            )
            .map_err(fail)?,
            None if query.iter().any(|(k, _)| k == "X-Amz-Signature") => {
                sigv4::parse_presigned(&query).map_err(fail)?
            }
            None if !self.enforce => {
                return Ok(self.dev("an unsigned request", req.secure_transport));
            }
            None => {
                let code = match protocol {
                    Protocol::Query => "MissingAuthenticationToken",
                    Protocol::Json { .. } | Protocol::RestJson => {
                        "MissingAuthenticationTokenException"
                    }
                };
                return Err(AwsError::new(
                    403,
                    code,
                    "Request is missing Authentication Token",
                ));
            }
        };
        signed
            .check_signed_headers(
                req.header_names.iter().map(String::as_str),
                required_signed(protocol),
            )
            .map_err(fail)?;
        signed
            .check_scope(service, &self.region, now, signature_window(service))
            .map_err(fail)?;
        let keys = self.keys.snapshot();
        let key = match keys.lookup(&signed.access_key_id, now) {
            Ok(k) => k,
            Err(SigError::UnknownKey(_)) if !self.enforce => {
                return Ok(self.dev("a request signed with an unknown key", req.secure_transport));
            }
            Err(e) => return Err(fail(e)),
        };
        key.check_session_token(signed.security_token.as_deref())
            .map_err(fail)?;
        // `UNSIGNED-PAYLOAD` is S3's (which spillway does not serve): here it would leave the
        // body, and with it a query request's Action, outside the signature. It is compared
        // with the body's hash like any other value, so it fails.
        let payload_hash = match (req.header)("x-amz-content-sha256") {
            Some(h) => {
                if !sigv4::constant_eq(h.as_bytes(), sigv4::sha256_hex(req.body).as_bytes()) {
                    return Err(AwsError::new(
                        400,
                        "XAmzContentSHA256Mismatch",
                        "the x-amz-content-sha256 header does not match the body",
                    ));
                }
                h
            }
            None => sigv4::sha256_hex(req.body),
        };
        signed
            .verify(
                &RequestParts {
                    method: req.method,
                    path: req.path,
                    header: req.header,
                    payload_hash: &payload_hash,
                },
                &key.secret,
            )
            .map_err(fail)?;
        Ok(Caller {
            principal: Arc::clone(&key.principal),
            access_key_id: Some(key.id.clone()),
            dev: false,
            secure_transport: req.secure_transport,
        })
    }
}
