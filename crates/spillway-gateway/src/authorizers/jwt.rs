//! JWT authorizers as HTTP APIs run them: the token from the identity source (a leading
//! `Bearer ` removed), its signature checked with a key of the JWKS (by `kid`), `iss` equal to
//! the issuer, `aud` or `client_id` among the audiences, `exp`/`nbf` honoured, and — when the
//! route names scopes — at least one of them in `scope`/`scp`.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

use super::Refusal;
use crate::authorized::Authorized;
use crate::reply::GatewayError;
use crate::request::GatewayRequest;

pub struct JwtAuthorizer {
    issuer: String,
    audience: Vec<String>,
    keys: Vec<(Option<String>, DecodingKey, jsonwebtoken::Algorithm)>,
    source: String,
}

fn invalid(why: &str) -> Refusal {
    (
        GatewayError::Unauthorized {
            www_authenticate: Some(format!(
                "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{why}\""
            )),
        },
        why.to_owned(),
    )
}

impl JwtAuthorizer {
    pub fn new(
        issuer: &str,
        audience: &[String],
        jwks: &str,
        source: &str,
    ) -> Result<Self, String> {
        let set: JwkSet =
            serde_json::from_str(jwks).map_err(|e| format!("the JWKS is not valid: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| format!("a JWKS key is not usable: {e}"))?;
            let alg = match jwk.common.key_algorithm {
                Some(a) => a
                    .to_string()
                    .parse()
                    .map_err(|_| format!("unsupported key algorithm {a}"))?,
                None => match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => {
                        jsonwebtoken::Algorithm::RS256
                    }
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
                        jsonwebtoken::Algorithm::ES256
                    }
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => {
                        jsonwebtoken::Algorithm::EdDSA
                    }
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => {
                        jsonwebtoken::Algorithm::HS256
                    }
                },
            };
            keys.push((jwk.common.key_id.clone(), key, alg));
        }
        if keys.is_empty() {
            return Err("the JWKS has no keys".into());
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_vec(),
            keys,
            source: source.to_owned(),
        })
    }

    pub fn authorize(
        &self,
        req: &GatewayRequest,
        scopes: &[String],
    ) -> Result<Authorized, Refusal> {
        let header_name = self
            .source
            .strip_prefix("$request.header.")
            .unwrap_or("Authorization")
            .to_ascii_lowercase();
        let Some(raw) = req.header(&header_name) else {
            return Err((
                GatewayError::Unauthorized {
                    www_authenticate: None,
                },
                "the identity source is missing".into(),
            ));
        };
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        let header = decode_header(token).map_err(|_| invalid("the token could not be parsed"))?;
        let (_, key, alg) = self
            .keys
            .iter()
            .find(|(kid, _, alg)| {
                header.kid.as_ref().is_none_or(|k| kid.as_ref() == Some(k)) && *alg == header.alg
            })
            .ok_or_else(|| invalid("no key of the JWKS matches the token"))?;
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.issuer]);
        v.validate_aud = false;
        v.leeway = 0;
        // jsonwebtoken checks exp by default but nbf only when asked; API Gateway honours both.
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss"]);
        let data = decode::<Map<String, Value>>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidIssuer => "the token has an invalid issuer",
                ErrorKind::InvalidSignature => "the token's signature is invalid",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                _ => "the token is not valid",
            })
        })?;
        let claims = data.claims;
        if !self.audience.is_empty() {
            let auds: Vec<&str> = match claims.get("aud").or_else(|| claims.get("client_id")) {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !auds.iter().any(|a| self.audience.iter().any(|x| x == a)) {
                return Err(invalid("the token has an invalid audience"));
            }
        }
        let granted: Vec<String> = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        if !scopes.is_empty() && !scopes.iter().any(|s| granted.contains(s)) {
            return Err((
                GatewayError::Forbidden,
                "the token lacks the route's scopes".into(),
            ));
        }
        Ok(Authorized::Jwt {
            claims,
            scopes: granted,
        })
    }
}
