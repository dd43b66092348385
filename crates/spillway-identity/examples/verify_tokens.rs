//! Measures what verifying an RDS IAM token costs when it is not cached: N distinct tokens
//! (signed here the way rds-signer signs them), each verified once. Prints
//! "uncached N µs_per_token". Used by bench/proxy-iam.sh.
//!
//! usage: verify_tokens [N]

use std::sync::Arc;
use std::time::Instant;

use spillway_identity::policy::{Effect, Policy, Statement};
use spillway_identity::principals::{AccessKey, KeyRing, Keys, Principal};
use spillway_identity::rds_token::{ProxyIdentity, TokenVerifier};
use spillway_identity::sigv4::{self, EMPTY_SHA256, RequestParts, Scope};
use spillway_identity::time;

fn token(now: i64, i: usize) -> String {
    let date = time::format_amz_date(now - (i % 600) as i64);
    let scope = Scope {
        date: date[..8].to_owned(),
        region: "us-east-1".into(),
        service: "rds-db".into(),
    };
    let user = format!("user{i}");
    let params = vec![
        ("Action".to_owned(), "connect".to_owned()),
        ("DBUser".to_owned(), user),
        ("X-Amz-Algorithm".to_owned(), sigv4::ALGORITHM.to_owned()),
        (
            "X-Amz-Credential".to_owned(),
            format!("AKIABENCH/{}", scope.render()),
        ),
        ("X-Amz-Date".to_owned(), date.clone()),
        ("X-Amz-Expires".to_owned(), "900".to_owned()),
        ("X-Amz-SignedHeaders".to_owned(), "host".to_owned()),
    ];
    let query = sigv4::canonical_query(&params);
    let host = |n: &str| (n == "host").then(|| "127.0.0.1:6432".to_owned());
    let canonical = sigv4::canonical_request(
        &RequestParts {
            method: "GET",
            path: "/",
            header: &host,
            payload_hash: EMPTY_SHA256,
        },
        &query,
        &["host".to_owned()],
    )
    .unwrap_or_default();
    let sig = sigv4::signature("bench-secret", &scope, &date, &canonical);
    format!("127.0.0.1:6432/?{query}&X-Amz-Signature={sig}")
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut keys = Keys::default();
    keys.insert(AccessKey {
        id: "AKIABENCH".into(),
        secret: "bench-secret".into(),
        session_token: None,
        expires: None,
        principal: Arc::new(Principal {
            arn: "arn:aws:iam::000000000000:user/bench".into(),
            policies: vec![Policy {
                statements: vec![Statement::simple(
                    Effect::Allow,
                    "rds-db:connect",
                    "arn:aws:rds-db:us-east-1:000000000000:dbuser:prx-bench/*",
                )],
            }],
            session_policy: None,
        }),
    });
    let verifier = TokenVerifier::new(
        ProxyIdentity {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            resource_id: "prx-bench".into(),
            host_allowed: Box::new(|h, p| h == "127.0.0.1" && p == 6432),
        },
        KeyRing::new(keys),
    );
    let now = time::now();
    let tokens: Vec<(String, String)> = (0..n)
        .map(|i| (format!("user{i}"), token(now, i)))
        .collect();
    let started = Instant::now();
    let mut ok = 0usize;
    for (user, t) in &tokens {
        ok += usize::from(verifier.verify(user, t, now).is_ok());
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    assert_eq!(ok, n, "every token should verify");
    println!("uncached {n} {per:.1}");
}
