//! Queue ARNs: `arn:aws:sqs:REGION:ACCOUNT:NAME`.

pub fn queue_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:sqs:{region}:{account}:{name}")
}

/// The queue name of an SQS ARN, if it is one. The region and account are not compared: one
/// spillway stack holds one account's queues.
pub fn queue_name(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let _partition = parts.next()?;
    (parts.next()? == "sqs").then_some(())?;
    let _region = parts.next()?;
    let _account = parts.next()?;
    let name = parts.next()?;
    (!name.is_empty() && !name.contains(':')).then_some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let arn = super::queue_arn("eu-west-1", "123456789012", "q.fifo");
        assert_eq!(arn, "arn:aws:sqs:eu-west-1:123456789012:q.fifo");
        assert_eq!(super::queue_name(&arn), Some("q.fifo"));
        assert_eq!(super::queue_name("arn:aws:sns:r:a:q"), None);
        assert_eq!(super::queue_name("q"), None);
    }
}
