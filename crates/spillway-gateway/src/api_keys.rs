//! REST API keys and usage plans: a route with `api_key_required` wants a known, enabled key
//! in `x-api-key`; the key's usage plan throttles it (token bucket) and counts it against a
//! quota per day, week or month (UTC calendar periods). Quota counts live in memory: a restart
//! starts them afresh (documented in docs/gateway.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::reply::GatewayError;
use crate::request::GatewayRequest;
use crate::spec::{ApiKeySpec, QuotaPeriod};
use crate::throttle::Bucket;

struct Key {
    spec: ApiKeySpec,
    bucket: Option<Bucket>,
    /// (period id, requests counted in it)
    used: Mutex<(String, u64)>,
}

#[derive(Default)]
pub struct ApiKeys {
    by_value: HashMap<String, Key>,
}

/// The period a moment falls in, as a string that changes when the period does.
fn period_id(period: QuotaPeriod, now: i64) -> String {
    let d = spillway_identity::time::format_amz_date(now);
    match period {
        QuotaPeriod::Day => d[..8].to_owned(),
        QuotaPeriod::Month => d[..6].to_owned(),
        // Weeks start on Monday: 1970-01-01 was a Thursday, three days after one.
        QuotaPeriod::Week => ((now.div_euclid(86_400) + 3).div_euclid(7)).to_string(),
    }
}

impl ApiKeys {
    pub fn new(keys: &[ApiKeySpec]) -> Self {
        let by_value = keys
            .iter()
            .map(|k| {
                (
                    k.value.clone(),
                    Key {
                        bucket: k.throttle.map(Bucket::new),
                        spec: k.clone(),
                        used: Mutex::new((String::new(), 0)),
                    },
                )
            })
            .collect();
        Self { by_value }
    }

    /// Checks the request's key; returns its name and value for the event.
    pub fn admit(&self, req: &GatewayRequest) -> Result<(String, String), GatewayError> {
        let value = req.header("x-api-key").ok_or(GatewayError::InvalidApiKey)?;
        let key = self
            .by_value
            .get(value)
            .filter(|k| k.spec.enabled)
            .ok_or(GatewayError::InvalidApiKey)?;
        if let Some(b) = &key.bucket
            && !b.try_take(Instant::now())
        {
            return Err(GatewayError::Throttled);
        }
        if let Some((limit, period)) = key.spec.quota {
            let id = period_id(period, spillway_identity::time::now());
            let Ok(mut used) = key.used.lock() else {
                return Err(GatewayError::Internal);
            };
            if used.0 != id {
                *used = (id, 0);
            }
            if used.1 >= limit {
                return Err(GatewayError::QuotaExceeded);
            }
            used.1 += 1;
        }
        Ok((key.spec.name.clone(), key.spec.value.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        // 2020-03-04 (a Wednesday) and 2020-03-08 (Sunday) share a week; 2020-03-09 does not.
        let wed = 1_583_348_638;
        let sun = wed + 4 * 86_400;
        let mon = wed + 5 * 86_400;
        assert_eq!(
            period_id(QuotaPeriod::Week, wed),
            period_id(QuotaPeriod::Week, sun)
        );
        assert_ne!(
            period_id(QuotaPeriod::Week, sun),
            period_id(QuotaPeriod::Week, mon)
        );
        assert_eq!(period_id(QuotaPeriod::Day, wed), "20200304");
        assert_eq!(period_id(QuotaPeriod::Month, mon), "202003");
    }
}
