//! Wall-clock time in epoch milliseconds: SQS's timestamps are wall-clock, and visibility
//! deadlines must survive a restart, so they cannot be `Instant`s.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
