//! Queue URLs in AWS's path form, `http://HOST:PORT/ACCOUNT/NAME`. A URL is handed out with the
//! host the client addressed (so SDKs that send later requests to the queue URL itself reach
//! this endpoint), and accepted with any host: only the account and the name are read.

use crate::QueueError;

/// The queue URL for `name`, as seen by a client that reached the endpoint at `host`.
pub fn queue_url(host: Option<&str>, secure: bool, account: &str, name: &str) -> String {
    let scheme = if secure { "https" } else { "http" };
    let host = host.unwrap_or("localhost");
    format!("{scheme}://{host}/{account}/{name}")
}

/// The queue a URL (or a bare `/ACCOUNT/NAME` path) names. Another account's queue does not
/// exist here.
pub fn queue_name<'a>(url: &'a str, account: &str) -> Result<&'a str, QueueError> {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut parts = path.trim_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(name), None) if a == account && !name.is_empty() => Ok(name),
        _ => Err(QueueError::QueueDoesNotExist),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip_and_any_host_is_accepted() {
        let url = queue_url(Some("127.0.0.1:4566"), false, "000000000000", "jobs");
        assert_eq!(url, "http://127.0.0.1:4566/000000000000/jobs");
        assert_eq!(queue_name(&url, "000000000000").ok(), Some("jobs"));
        assert_eq!(
            queue_name(
                "https://sqs.us-east-1.amazonaws.com/000000000000/q.fifo",
                "000000000000"
            )
            .ok(),
            Some("q.fifo")
        );
        assert_eq!(
            queue_name("/000000000000/jobs", "000000000000").ok(),
            Some("jobs")
        );
        for bad in [
            "http://h/111111111111/jobs",
            "http://h/000000000000",
            "http://h/000000000000/a/b",
            "",
            "jobs",
        ] {
            assert!(queue_name(bad, "000000000000").is_err(), "{bad}");
        }
    }
}
