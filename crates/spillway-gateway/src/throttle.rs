//! Token buckets per stage and per route, as API Gateway throttles: a bucket of `burst` tokens
//! refilled at `rate` per second; a request takes one token from its route's bucket and one
//! from its stage's, and is answered 429 when either is empty.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::spec::Rate;

#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            state: Mutex::new((f64::from(rate.burst), Instant::now())),
        }
    }

    /// Takes a token if there is one. The lock is held for arithmetic only, never across an
    /// await.
    pub fn try_take(&self, now: Instant) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The buckets of one API: one per stage, one per (stage, route) with its own limit.
#[derive(Debug, Default)]
pub struct Throttles {
    stages: HashMap<String, Bucket>,
    /// By stage, then route key (looked up with borrowed strings: no allocation per request).
    routes: HashMap<String, HashMap<String, Bucket>>,
}

impl Throttles {
    pub fn new(stages: &std::collections::BTreeMap<String, crate::spec::StageSpec>) -> Self {
        let mut t = Throttles::default();
        for (name, s) in stages {
            t.stages.insert(
                name.clone(),
                Bucket::new(s.throttle.unwrap_or(Rate::DEFAULT)),
            );
            for (route, rate) in &s.route_throttle {
                t.routes
                    .entry(name.clone())
                    .or_default()
                    .insert(route.clone(), Bucket::new(*rate));
            }
        }
        t
    }

    /// Whether a request to `route` in `stage` may go on.
    pub fn admit(&self, stage: &str, route: &str) -> bool {
        let now = Instant::now();
        if let Some(b) = self.routes.get(stage).and_then(|r| r.get(route))
            && !b.try_take(now)
        {
            return false;
        }
        self.stages.get(stage).is_none_or(|b| b.try_take(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let b = Bucket::new(Rate {
            per_second: 10.0,
            burst: 3,
        });
        let t0 = Instant::now();
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        // 100 ms at 10/s is one token.
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
    }
}
