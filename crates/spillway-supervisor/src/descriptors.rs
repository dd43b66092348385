//! The process's file descriptors as a budget shared by its listeners. One process serves the
//! AWS endpoint, every API and every proxy, so a listener that accepted without bound could
//! take every descriptor and leave the others unable to accept (issue 15: 1,100 silent
//! connections to one API starved the endpoint, the proxy and the API itself).

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Each listener's share is at least this, however small the limit, so that every listener
/// still serves someone.
const MIN_SHARE: usize = 16;
/// And at most this: past it, memory (every open connection holds buffers and a task), not
/// descriptors, is what runs out, and no local development stack needs more at once.
const MAX_SHARE: usize = 10_000;
/// What the limit is taken to be when it cannot be read (Linux's usual default).
const FALLBACK_LIMIT: u64 = 1024;

/// Raises the soft limit on open files to the hard limit, as servers do (the soft default of
/// 1,024 dates from `select`; spillway uses epoll), and returns the soft limit now in force.
pub fn raise_limit() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read the open-files limit ({e}); assuming {FALLBACK_LIMIT}");
            return FALLBACK_LIMIT;
        }
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "raised the open-files limit");
            hard
        }
        Err(e) => {
            tracing::warn!("cannot raise the open-files limit from {soft} to {hard}: {e}");
            soft
        }
    }
}

/// How many connections each of `listeners` client-facing listeners (the AWS endpoint, each
/// API, each proxy endpoint) may hold under a limit of `limit` descriptors.
///
/// Half of the limit is kept for everything that is not a client's socket: the other side of a
/// client's work (a pooled database connection, a function instance's pipes and Runtime API
/// socket, an HTTP integration's upstream connection), the managed databases' children, files
/// and logs. The other half is split evenly, so the listeners together cannot take more than
/// half, and no one of them more than its part.
pub fn per_listener(limit: u64, listeners: usize) -> usize {
    let clients = usize::try_from(limit / 2).unwrap_or(usize::MAX);
    (clients / listeners.max(1)).clamp(MIN_SHARE, MAX_SHARE)
}

/// Raises the limit (see [`raise_limit`]) and returns each listener's share.
pub fn budget(listeners: usize) -> usize {
    let limit = raise_limit();
    let share = per_listener(limit, listeners);
    tracing::debug!(
        limit,
        listeners,
        share,
        "descriptor budget: connections per listener"
    );
    share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_together_take_at_most_half_of_the_limit() {
        for limit in [1024u64, 4096, 20_000, 65_536] {
            for listeners in 1..=12 {
                let share = per_listener(limit, listeners);
                let total = (share * listeners) as u64;
                assert!(
                    total <= limit / 2 || share == MIN_SHARE,
                    "{limit} / {listeners}: {share} each"
                );
            }
        }
    }

    #[test]
    fn a_default_limit_gives_an_api_and_the_endpoint_a_quarter_each() {
        assert_eq!(per_listener(1024, 2), 256);
    }

    #[test]
    fn tiny_and_huge_limits_are_clamped() {
        assert_eq!(per_listener(64, 10), MIN_SHARE);
        assert_eq!(per_listener(1 << 20, 1), MAX_SHARE);
        assert_eq!(per_listener(1024, 0), 512);
    }

    #[test]
    fn raising_leaves_a_limit_between_soft_and_hard() {
        let before = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
        let now = raise_limit();
        assert!(
            now >= before.0 && now <= before.1.max(before.0),
            "{before:?} {now}"
        );
    }
}
