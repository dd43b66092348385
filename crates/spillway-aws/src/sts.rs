//! STS over the query protocol: `GetCallerIdentity` for now.

use sha2::Digest;

use crate::auth::Caller;
use crate::error::AwsError;
use crate::protocol::Operation;
use crate::xml;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// AWS's unique ids are a four-letter kind and base32; spillway's are stable per ARN.
fn unique_id(prefix: &str, arn: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = sha2::Sha256::digest(arn.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| CHARS[usize::from(b % 32)] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// The XML body of a successful call.
pub fn handle(op: &Operation, caller: &Caller, request_id: &str) -> Result<String, AwsError> {
    match op.name.as_str() {
        // Never denied by policies, as in AWS.
        "GetCallerIdentity" => {
            let arn = &caller.principal.arn;
            let account = account_of(arn);
            let user_id = if arn.ends_with(":root") {
                account.to_owned()
            } else {
                unique_id("AIDA", arn)
            };
            Ok(format!(
                "<GetCallerIdentityResponse xmlns=\"{NS}\"><GetCallerIdentityResult>{}{}{}</GetCallerIdentityResult><ResponseMetadata>{}</ResponseMetadata></GetCallerIdentityResponse>",
                xml::element("Arn", arn),
                xml::element("UserId", &user_id),
                xml::element("Account", account),
                xml::element("RequestId", request_id)
            ))
        }
        other => Err(AwsError::new(
            400,
            "InvalidAction",
            format!("{other} is not supported by spillway yet"),
        )),
    }
}
