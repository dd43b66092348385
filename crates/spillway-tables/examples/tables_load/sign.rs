//! SigV4 for DynamoDB's JSON 1.0 requests, with spillway-identity's primitives. The signing
//! key depends only on the day, so it is derived once per day rather than per request: the
//! generator then spends one SHA-256 of the body and two of the small strings per request.

use spillway_identity::sigv4::{self, Scope};

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-target";

pub struct Signer {
    access_key_id: String,
    secret: String,
    region: String,
    /// (the day `YYYYMMDD`, its signing key)
    key: std::sync::Mutex<(String, [u8; 32])>,
}

/// The headers a signed request carries besides content-type and the target.
pub struct Signed {
    pub amz_date: String,
    pub authorization: String,
}

impl Signer {
    pub fn new(access_key_id: &str, secret: &str, region: &str) -> Signer {
        Signer {
            access_key_id: access_key_id.to_owned(),
            secret: secret.to_owned(),
            region: region.to_owned(),
            key: std::sync::Mutex::new((String::new(), [0; 32])),
        }
    }

    fn scope(&self, date: &str) -> Scope {
        Scope {
            date: date.to_owned(),
            region: self.region.clone(),
            service: "dynamodb".to_owned(),
        }
    }

    fn key_for(&self, date: &str) -> [u8; 32] {
        let mut cached = match self.key.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cached.0 != date {
            *cached = (
                date.to_owned(),
                sigv4::signing_key(&self.secret, &self.scope(date)),
            );
        }
        cached.1
    }

    /// Signs a POST to `/` of `host` with `target` (`DynamoDB_20120810.ACTION`) and `body`.
    pub fn sign(&self, host: &str, target: &str, body: &[u8]) -> Signed {
        let amz_date = spillway_identity::time::format_amz_date(spillway_identity::time::now());
        let date = &amz_date[..8];
        let canonical = format!(
            "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{SIGNED_HEADERS}\n{}",
            sigv4::sha256_hex(body)
        );
        let scope = self.scope(date).render();
        let string_to_sign = format!(
            "{}\n{amz_date}\n{scope}\n{}",
            sigv4::ALGORITHM,
            sigv4::sha256_hex(canonical.as_bytes())
        );
        let signature = sigv4::hex(&sigv4::hmac(&self.key_for(date), string_to_sign.as_bytes()));
        Signed {
            authorization: format!(
                "{} Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
                sigv4::ALGORITHM,
                self.access_key_id
            ),
            amz_date,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature must be the one spillway-identity's verifier computes for the same parts.
    #[test]
    fn matches_the_verifiers_canonical_request() {
        let signer = Signer::new("AKID", "secret", "us-east-1");
        let body = br#"{"TableName":"t"}"#;
        let signed = signer.sign("127.0.0.1:1", "DynamoDB_20120810.DescribeTable", body);
        let header = |name: &str| -> Option<String> {
            match name {
                "content-type" => Some(CONTENT_TYPE.to_owned()),
                "host" => Some("127.0.0.1:1".to_owned()),
                "x-amz-date" => Some(signed.amz_date.clone()),
                "x-amz-target" => Some("DynamoDB_20120810.DescribeTable".to_owned()),
                _ => None,
            }
        };
        let hash = sigv4::sha256_hex(body);
        let parts = sigv4::RequestParts {
            method: "POST",
            path: "/",
            header: &header,
            payload_hash: &hash,
        };
        let names: Vec<String> = SIGNED_HEADERS.split(';').map(str::to_owned).collect();
        let canonical = sigv4::canonical_request(&parts, "", &names)
            .unwrap_or_else(|e| panic!("canonical request: {e}"));
        let scope = signer.scope(&signed.amz_date[..8]);
        let expected = sigv4::signature("secret", &scope, &signed.amz_date, &canonical);
        assert!(
            signed
                .authorization
                .ends_with(&format!("Signature={expected}")),
            "{}",
            signed.authorization
        );
    }
}
