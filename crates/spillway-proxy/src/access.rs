//! Who may connect to a proxy and how a login proves itself, the same for both engines:
//! `allow_from` (standing in for security groups) and the RDS IAM token check, which the
//! identity layer provides.

use std::net::IpAddr;

/// Verifies RDS IAM authentication tokens (sent as cleartext passwords). The identity layer
/// provides it; without one, IAM logins are refused.
pub trait IamVerifier: Send + Sync {
    /// Whether `token` is a valid, unexpired token that allows `rds-db:connect` as `user`.
    fn verify(&self, user: &str, token: &str) -> bool;
}

/// Whether `allow_from` admits a peer (an empty list admits everyone).
pub fn allows(allow_from: &[(IpAddr, u8)], ip: IpAddr) -> bool {
    allow_from.is_empty()
        || allow_from
            .iter()
            .any(|(net, len)| in_network(ip, *net, *len))
}

pub fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert!(in_network(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_network(ip("11.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_network(ip("127.0.0.1"), ip("127.0.0.1"), 32));
        assert!(in_network(ip("::ffff:127.0.0.1"), ip("127.0.0.0"), 8));
        assert!(in_network(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(in_network(ip("fd00::1"), ip("fd00::"), 8));
        assert!(!in_network(ip("fe00::1"), ip("fd00::"), 8));
    }
}
