//! What a run counts: latencies (kept whole; a run holds at most a few million), errors, short
//! answers, and the generator's own CPU time, so a saturated generator shows in the result.

use std::time::Duration;

#[derive(Default)]
pub struct Tally {
    /// Latency of every answered 200, in microseconds.
    pub latencies_us: Vec<u64>,
    pub sent: u64,
    pub errors: u64,
    /// Open model: how late each request started against its scheduled time (the ticker's
    /// wake-up plus waiting for a free connection), in microseconds.
    pub lags_us: Vec<u64>,
    /// 200s whose answer held fewer items than asked for (a Query's Count, a missing Item).
    pub short: u64,
    /// The first few failures, for stderr.
    pub samples: Vec<String>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.lags_us.extend(other.lags_us);
        self.sent += other.sent;
        self.errors += other.errors;
        self.short += other.short;
        for s in other.samples {
            self.note(s);
        }
    }

    pub fn note(&mut self, sample: String) {
        if self.samples.len() < 5 {
            self.samples.push(sample);
        }
    }

    pub fn lag(&mut self, lag: Duration) {
        self.lags_us
            .push(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn ok(&mut self, latency: Duration) {
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }
}

/// The value at quantile `q` of sorted `v`, in milliseconds (nearest rank).
pub fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// This process's user + system CPU time so far (getrusage of itself).
pub fn cpu_time() -> Duration {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}
