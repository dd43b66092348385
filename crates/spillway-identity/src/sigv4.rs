//! AWS Signature Version 4: the canonical request, the string to sign, the signing key, and the
//! verification of presigned query strings (RDS IAM tokens, presigned URLs) and of the
//! `Authorization` header. Signatures are compared in constant time; a request dated outside its
//! service's window (AWS: 15 minutes for STS, 5 for most others; the caller passes it), or used
//! after its presigned expiry, is refused, and so is one carrying an `x-amz-*` header (or a
//! header the protocol requires signed) that the signature does not cover.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SHA-256 of the empty string: the payload hash of a GET (and of RDS IAM tokens).
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The widest window AWS allows between a request's date and its clock (STS, RDS tokens: 15
/// minutes either way).
pub const MAX_CLOCK_SKEW: i64 = 15 * 60;
/// The longest validity a presigned request may claim (7 days, as AWS).
pub const MAX_EXPIRES: i64 = 7 * 24 * 3600;

/// Why a signature was not accepted. `aws_code` is the error code AWS answers with; the
/// `Display` text is for spillway's log (it may name the access key id, never the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("malformed signature: {0}")]
    Malformed(String),
    #[error("the {0} parameter appears more than once")]
    Duplicate(String),
    #[error("unsupported signing algorithm {0:?}")]
    Algorithm(String),
    #[error("signed for service {got:?}, expected {expected:?}")]
    Service { got: String, expected: String },
    #[error("signed for region {got:?}, expected {expected:?}")]
    Region { got: String, expected: String },
    #[error("the credential scope's date does not match the request date")]
    ScopeDate,
    /// A presigned request used after `X-Amz-Date + X-Amz-Expires`.
    #[error("the presigned request expired")]
    Expired,
    /// AWS's own text (clients and people search for it), e.g. `Signature expired:
    /// 20150830T122059Z is now earlier than 20150830T122100Z (20150830T123600Z - 5 min.)`.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {minutes} min.)")]
    TooOld {
        signed: String,
        earliest: String,
        now: String,
        minutes: i64,
    },
    #[error(
        "Signature not yet current: {signed} is still later than {latest} ({now} + {minutes} min.)"
    )]
    NotYetValid {
        signed: String,
        latest: String,
        now: String,
        minutes: i64,
    },
    /// A header that must be covered by the signature is present but not in SignedHeaders
    /// (AWS's text; the name as AWS spells it in this message).
    #[error("'{0}' must be a 'SignedHeader' in the AWS Authorization.")]
    UnsignedHeader(String),
    #[error("unknown access key {0}")]
    UnknownKey(String),
    #[error("the security token is missing, unknown or does not belong to the access key")]
    BadSecurityToken,
    #[error("the temporary credentials expired")]
    ExpiredToken,
    #[error("the signature does not match")]
    Mismatch,
}

impl SigError {
    /// AWS's error code for this failure (query and JSON protocols use the same names).
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigError::Malformed(_) | SigError::Duplicate(_) | SigError::ScopeDate => {
                "IncompleteSignature"
            }
            SigError::Algorithm(_) => "IncompleteSignature",
            SigError::Service { .. } | SigError::Region { .. } => "SignatureDoesNotMatch",
            SigError::Expired | SigError::TooOld { .. } | SigError::NotYetValid { .. } => {
                "SignatureDoesNotMatch"
            }
            SigError::UnsignedHeader(_) => "SignatureDoesNotMatch",
            SigError::UnknownKey(_) => "InvalidClientTokenId",
            SigError::BadSecurityToken => "InvalidClientTokenId",
            SigError::ExpiredToken => "ExpiredToken",
            SigError::Mismatch => "SignatureDoesNotMatch",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SigV4's URI encoding: unreserved characters stay, everything else is `%XX` (uppercase).
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-decodes a query component. `+` stays `+`: SDKs encode a space as `%20`, and
/// base64 in session tokens relies on `+` surviving when a client leaves it unencoded.
pub fn percent_decode(s: &str) -> Result<String, SigError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| SigError::Malformed("bad percent-encoding".into()))?;
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SigError::Malformed("query is not UTF-8".into()))
}

/// Decoded `name=value` pairs of a query string, in order; a repeated name is an error (a
/// signature over one value must not authorize another).
pub fn parse_query(raw: &str) -> Result<Vec<(String, String)>, SigError> {
    let mut params: Vec<(String, String)> = Vec::new();
    // A set, not a scan of the list: this runs on unauthenticated input.
    let mut seen = std::collections::HashSet::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k)?, percent_decode(v)?);
        if !seen.insert(k.clone()) {
            return Err(SigError::Duplicate(k));
        }
        params.push((k, v));
    }
    Ok(params)
}

/// The credential scope: `DATE/REGION/SERVICE/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    pub fn render(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Parses `AKID/DATE/REGION/SERVICE/aws4_request` into the key id and the scope.
pub fn parse_credential(s: &str) -> Result<(String, Scope), SigError> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, "aws4_request"]
            if !akid.is_empty() && date.len() == 8 && !region.is_empty() && !service.is_empty() =>
        {
            Ok((
                (*akid).to_owned(),
                Scope {
                    date: (*date).to_owned(),
                    region: (*region).to_owned(),
                    service: (*service).to_owned(),
                },
            ))
        }
        _ => Err(SigError::Malformed(format!(
            "credential {s:?} is not AKID/DATE/REGION/SERVICE/aws4_request"
        ))),
    }
}

/// The canonical query string: every parameter but the signature, encoded, sorted.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// What a signature covers besides the query.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path as sent (already URI-encoded by the client).
    pub path: &'a str,
    /// Lower-case header name → value, for the signed headers.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub payload_hash: &'a str,
}

fn trim_header(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request of SigV4.
pub fn canonical_request(
    parts: &RequestParts<'_>,
    query: &str,
    signed_headers: &[String],
) -> Result<String, SigError> {
    let mut headers = String::new();
    for name in signed_headers {
        let value = (parts.header)(name)
            .ok_or_else(|| SigError::Malformed(format!("signed header {name:?} is missing")))?;
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&trim_header(&value));
        headers.push('\n');
    }
    // Every service spillway serves is not S3, for which AWS signs each path segment
    // URI-encoded twice: the path as sent is encoded once, so it is encoded once more here.
    let path = if parts.path.is_empty() {
        "/".to_owned()
    } else {
        uri_encode(parts.path, false)
    };
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method,
        path,
        query,
        headers,
        signed_headers.join(";"),
        parts.payload_hash
    ))
}

pub fn signing_key(secret: &str, scope: &Scope) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k = hmac(&k, scope.region.as_bytes());
    let k = hmac(&k, scope.service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Signing keys derived lately on this thread: a key is good for a day, a region and a
/// service, and deriving one is four HMACs where signing the request itself is one.
const RECENT_KEYS: usize = 8;

struct RecentKey {
    secret: String,
    scope: Scope,
    key: [u8; 32],
}

thread_local! {
    static RECENT: std::cell::RefCell<Vec<RecentKey>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`signing_key`], from this thread's recent keys when it was derived lately.
fn cached_signing_key(secret: &str, scope: &Scope) -> [u8; 32] {
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        if let Some(k) = recent
            .iter()
            .find(|k| k.scope == *scope && constant_eq(k.secret.as_bytes(), secret.as_bytes()))
        {
            return k.key;
        }
        let key = signing_key(secret, scope);
        if recent.len() >= RECENT_KEYS {
            recent.remove(0);
        }
        recent.push(RecentKey {
            secret: secret.to_owned(),
            scope: scope.clone(),
            key,
        });
        key
    })
}

/// The hex signature of a canonical request.
pub fn signature(secret: &str, scope: &Scope, amz_date: &str, canonical_request: &str) -> String {
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.render(),
        sha256_hex(canonical_request.as_bytes())
    );
    hex(&hmac(
        &cached_signing_key(secret, scope),
        string_to_sign.as_bytes(),
    ))
}

/// A signature as found in a request, before it is checked.
#[derive(Clone, Debug)]
pub struct Signed {
    pub access_key_id: String,
    pub scope: Scope,
    pub amz_date: String,
    pub signed_at: i64,
    /// Seconds of validity (presigned requests), else the skew window applies both ways.
    pub expires: Option<i64>,
    pub signed_headers: Vec<String>,
    pub signature: String,
    pub security_token: Option<String>,
    /// The canonical query (for presigned requests: without the signature).
    pub canonical_query: String,
}

fn signed_headers(s: &str) -> Result<Vec<String>, SigError> {
    let h: Vec<String> = s.split(';').map(str::to_owned).collect();
    if h.iter().any(String::is_empty) || !h.iter().any(|n| n == "host") {
        return Err(SigError::Malformed(
            "SignedHeaders must name host and no empty header".into(),
        ));
    }
    if h.iter().any(|n| n.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(SigError::Malformed(
            "SignedHeaders must be lower case".into(),
        ));
    }
    Ok(h)
}

/// Reads the `X-Amz-*` parameters of a presigned query.
pub fn parse_presigned(params: &[(String, String)]) -> Result<Signed, SigError> {
    let get = |k: &'static str| {
        params
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    };
    let need = |k: &'static str| {
        get(k).ok_or_else(|| SigError::Malformed(format!("the {k} parameter is missing")))
    };
    let algorithm = need("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(SigError::Algorithm(algorithm.to_owned()));
    }
    let (access_key_id, scope) = parse_credential(need("X-Amz-Credential")?)?;
    let amz_date = need("X-Amz-Date")?.to_owned();
    let signed_at = crate::time::parse_amz_date(&amz_date)
        .ok_or_else(|| SigError::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ".into()))?;
    let expires: i64 = need("X-Amz-Expires")?
        .parse()
        .ok()
        .filter(|e| (1..=MAX_EXPIRES).contains(e))
        .ok_or_else(|| SigError::Malformed("X-Amz-Expires must be 1 to 604800".into()))?;
    Ok(Signed {
        access_key_id,
        scope,
        signed_at,
        amz_date,
        expires: Some(expires),
        signed_headers: signed_headers(need("X-Amz-SignedHeaders")?)?,
        signature: need("X-Amz-Signature")?.to_owned(),
        security_token: get("X-Amz-Security-Token").map(str::to_owned),
        canonical_query: canonical_query(params),
    })
}

/// Reads an `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
/// header; `amz_date` is the `X-Amz-Date` header, `query` the request's decoded parameters.
pub fn parse_authorization(
    header: &str,
    amz_date: Option<&str>,
    security_token: Option<&str>,
    query: &[(String, String)],
) -> Result<Signed, SigError> {
    let (algorithm, rest) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| SigError::Malformed("Authorization has no fields".into()))?;
    if algorithm != ALGORITHM {
        return Err(SigError::Algorithm(algorithm.to_owned()));
    }
    let (mut credential, mut headers, mut sig) = (None, None, None);
    for field in rest.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| SigError::Malformed(format!("field {field:?} has no value")))?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut headers,
            "Signature" => &mut sig,
            _ => return Err(SigError::Malformed(format!("unknown field {k:?}"))),
        };
        if slot.replace(v).is_some() {
            return Err(SigError::Duplicate(k.to_owned()));
        }
    }
    let missing = |k: &str| SigError::Malformed(format!("Authorization has no {k}"));
    let (access_key_id, scope) =
        parse_credential(credential.ok_or_else(|| missing("Credential"))?)?;
    let amz_date = amz_date
        .ok_or_else(|| SigError::Malformed("the X-Amz-Date header is missing".into()))?
        .to_owned();
    let signed_at = crate::time::parse_amz_date(&amz_date)
        .ok_or_else(|| SigError::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ".into()))?;
    Ok(Signed {
        access_key_id,
        scope,
        amz_date,
        signed_at,
        expires: None,
        signed_headers: signed_headers(headers.ok_or_else(|| missing("SignedHeaders"))?)?,
        signature: sig.ok_or_else(|| missing("Signature"))?.to_owned(),
        security_token: security_token.map(str::to_owned),
        canonical_query: canonical_query(query),
    })
}

impl Signed {
    /// Checks that the signature covers every `x-amz-*` header the request carries and each of
    /// `required` that it carries (`content-type` for the JSON protocols): a header outside the
    /// signature could otherwise change what a captured request does (`X-Amz-Target` names the
    /// operation). `present` is the request's header names, lower case.
    pub fn check_signed_headers<'h>(
        &self,
        present: impl IntoIterator<Item = &'h str>,
        required: &[&str],
    ) -> Result<(), SigError> {
        let mut unsigned: Vec<&str> = present
            .into_iter()
            .filter(|n| n.starts_with("x-amz-") || required.contains(n))
            .filter(|n| !self.signed_headers.iter().any(|s| s == n))
            .collect();
        unsigned.sort_unstable();
        match unsigned.first() {
            None => Ok(()),
            Some(&"content-type") => Err(SigError::UnsignedHeader("Content-Type".into())),
            Some(n) => Err(SigError::UnsignedHeader((*n).to_owned())),
        }
    }

    /// Checks the scope (service, region, date) and the time window: a request signed more than
    /// `window` seconds before or after `now` is refused, a presigned one also after its expiry.
    pub fn check_scope(
        &self,
        service: &str,
        region: &str,
        now: i64,
        window: i64,
    ) -> Result<(), SigError> {
        if self.scope.service != service {
            return Err(SigError::Service {
                got: self.scope.service.clone(),
                expected: service.to_owned(),
            });
        }
        if self.scope.region != region {
            return Err(SigError::Region {
                got: self.scope.region.clone(),
                expected: region.to_owned(),
            });
        }
        if !self.amz_date.starts_with(&self.scope.date) {
            return Err(SigError::ScopeDate);
        }
        let date = crate::time::format_amz_date;
        if self.signed_at - now > window {
            return Err(SigError::NotYetValid {
                signed: self.amz_date.clone(),
                latest: date(now + window),
                now: date(now),
                minutes: window / 60,
            });
        }
        match self.expires {
            Some(expires) if now > self.signed_at + expires => Err(SigError::Expired),
            None if now - self.signed_at > window => Err(SigError::TooOld {
                signed: self.amz_date.clone(),
                earliest: date(now - window),
                now: date(now),
                minutes: window / 60,
            }),
            _ => Ok(()),
        }
    }

    /// Checks the signature with the key's secret (the scope is checked separately).
    pub fn verify(&self, parts: &RequestParts<'_>, secret: &str) -> Result<(), SigError> {
        let canonical = canonical_request(parts, &self.canonical_query, &self.signed_headers)?;
        let expected = signature(secret, &self.scope, &self.amz_date, &canonical);
        if constant_eq(expected.as_bytes(), self.signature.as_bytes()) {
            Ok(())
        } else {
            Err(SigError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // AWS's SigV4 test suite, "get-vanilla": GET / with Host and X-Amz-Date.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let signed = parse_authorization(header, Some("20150830T123600Z"), None, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let headers = |n: &str| match n {
            "host" => Some("example.amazonaws.com".to_owned()),
            "x-amz-date" => Some("20150830T123600Z".to_owned()),
            _ => None,
        };
        let parts = RequestParts {
            method: "GET",
            path: "/",
            header: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(signed.verify(&parts, secret), Ok(()));
        assert_eq!(signed.verify(&parts, "another"), Err(SigError::Mismatch));
        let t = signed.signed_at;
        let w = MAX_CLOCK_SKEW;
        assert_eq!(signed.check_scope("service", "us-east-1", t, w), Ok(()));
        assert_eq!(
            signed.check_scope("service", "us-east-1", t + 15 * 60, w),
            Ok(())
        );
        assert!(matches!(
            signed.check_scope("service", "us-east-1", t + 16 * 60, w),
            Err(SigError::TooOld { .. })
        ));
        assert!(matches!(
            signed.check_scope("service", "us-east-1", t - 16 * 60, w),
            Err(SigError::NotYetValid { .. })
        ));
        assert!(matches!(
            signed.check_scope("sts", "us-east-1", t, w),
            Err(SigError::Service { .. })
        ));
    }

    // AWS's messages, word for word: clients and people search for them.
    #[test]
    fn signature_age_is_refused_with_aws_text_per_window() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
        let signed = parse_authorization(header, Some("20150830T123600Z"), None, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let t = signed.signed_at;
        let five = 5 * 60;
        assert_eq!(
            signed.check_scope("lambda", "us-east-1", t + five, five),
            Ok(())
        );
        let old = signed
            .check_scope("lambda", "us-east-1", t + five + 1, five)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            old.as_deref(),
            Some(
                "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
            )
        );
        let new = signed
            .check_scope("lambda", "us-east-1", t - five - 1, five)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            new.as_deref(),
            Some(
                "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T123059Z + 5 min.)"
            )
        );
        assert_eq!(
            SigError::TooOld {
                signed: String::new(),
                earliest: String::new(),
                now: String::new(),
                minutes: 5
            }
            .aws_code(),
            "SignatureDoesNotMatch"
        );
    }

    #[test]
    fn every_amz_header_present_must_be_signed() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
        let signed = parse_authorization(header, Some("20150830T123600Z"), None, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            signed.check_signed_headers(["host", "x-amz-date", "user-agent"], &["content-type"]),
            Ok(())
        );
        assert_eq!(
            signed.check_signed_headers(["host", "x-amz-date", "x-amz-target"], &[]),
            Err(SigError::UnsignedHeader("x-amz-target".into()))
        );
        assert_eq!(
            signed
                .check_signed_headers(["x-amz-date", "content-type"], &["content-type"])
                .map_err(|e| e.to_string()),
            Err("'Content-Type' must be a 'SignedHeader' in the AWS Authorization.".into())
        );
        // Content-Type only where the protocol asks for it (rest-json, the query protocol).
        assert_eq!(
            signed.check_signed_headers(["x-amz-date", "content-type"], &[]),
            Ok(())
        );
    }

    // The worked example of AWS's SigV4 documentation: IAM ListUsers over GET with a query.
    #[test]
    fn aws_documentation_list_users_example() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let query = parse_query("Action=ListUsers&Version=2010-05-08").unwrap_or_default();
        let signed = parse_authorization(header, Some("20150830T123600Z"), None, &query)
            .unwrap_or_else(|e| panic!("{e}"));
        let headers = |n: &str| match n {
            "content-type" => Some("application/x-www-form-urlencoded; charset=utf-8".to_owned()),
            "host" => Some("iam.amazonaws.com".to_owned()),
            "x-amz-date" => Some("20150830T123600Z".to_owned()),
            _ => None,
        };
        let parts = RequestParts {
            method: "GET",
            path: "/",
            header: &headers,
            payload_hash: EMPTY_SHA256,
        };
        assert_eq!(
            signed.verify(&parts, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            Ok(())
        );
    }

    #[test]
    fn malformed_authorization_headers() {
        let bad = [
            "AWS4-HMAC-SHA1 Credential=a/20150830/us-east-1/s/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/20150830/us-east-1/s, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/20150830/us-east-1/s/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=a/20150830/us-east-1/s/aws4_request, Credential=b/20150830/us-east-1/s/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256",
        ];
        for h in bad {
            assert!(
                parse_authorization(h, Some("20150830T123600Z"), None, &[]).is_err(),
                "{h}"
            );
        }
        let ok = "AWS4-HMAC-SHA256 Credential=a/20150830/us-east-1/s/aws4_request, SignedHeaders=host, Signature=00";
        assert!(parse_authorization(ok, None, None, &[]).is_err(), "no date");
        assert!(parse_authorization(ok, Some("2015-08-30"), None, &[]).is_err());
    }

    #[test]
    fn paths_are_encoded_twice_in_the_canonical_request() {
        let none = |_: &str| Some("h".to_owned());
        let parts = RequestParts {
            method: "GET",
            path: "/2015-03-31/functions/my%3Afn/invocations",
            header: &none,
            payload_hash: EMPTY_SHA256,
        };
        let c = canonical_request(&parts, "", &["host".to_owned()]).unwrap_or_default();
        assert!(
            c.contains("/2015-03-31/functions/my%253Afn/invocations\n"),
            "{c}"
        );
    }

    #[test]
    fn queries_decode_strictly() {
        assert_eq!(
            parse_query("a=1&b=%2F%2B+"),
            Ok(vec![("a".into(), "1".into()), ("b".into(), "/++".into())])
        );
        assert_eq!(parse_query("a=1&a=2"), Err(SigError::Duplicate("a".into())));
        assert!(parse_query("a=%zz").is_err());
        assert!(parse_query("a=%ff").is_err());
        assert_eq!(uri_encode("a b/c~", true), "a%20b%2Fc~");
        assert_eq!(uri_encode("a b/c", false), "a%20b/c");
    }
}
