#![allow(dead_code)]
//! Network namespaces as peers with addresses of their own: each is a "subnet" joined to the
//! host by a veth pair (10.A.B.1 on the host side, 10.A.B.2 inside, a default route through
//! the host). Programs run inside with `ip netns exec`, so their connections to the host arrive
//! from 10.A.B.2 — what a proxy's `allow_from` decides on.
//!
//! Names carry a random tag and the subnets a random 10.A.B.0/24 not in use on the machine, so
//! parallel runs do not collide; [`Namespaces`]' `Drop` removes what it made, also when the
//! test panics. Without root (or without `ip netns`) creation panics with the reason: a test
//! that needs namespaces must not pass without them.

use std::net::Ipv4Addr;
use std::process::{Command, Output};

pub struct Subnet {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub ns: String,
    /// The host side of the veth pair.
    pub host_if: String,
    /// The host's address on this subnet (10.A.B.1).
    pub host_addr: Ipv4Addr,
    /// The namespace's address (10.A.B.2).
    pub peer_addr: Ipv4Addr,
    /// `10.A.B.0/24`.
    pub cidr: String,
}

pub struct Namespaces {
    pub subnets: Vec<Subnet>,
}

/// Runs `ip ARGS`; panics with its stderr on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 64 random bits (std's randomly keyed hasher; no extra crate for a name).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// The machine's IPv4 addresses and routes, to pick a 10.A.x range nothing uses.
fn networks_in_use() -> String {
    let mut text = String::new();
    for args in [&["-4", "-o", "addr"][..], &["-4", "route"][..]] {
        if let Ok(out) = Command::new("ip").args(args).output() {
            text.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    }
    text
}

impl Namespaces {
    /// `count` namespaces, each on a /24 of its own (consecutive third octets).
    pub fn create(count: u8) -> Self {
        assert!((1..=4).contains(&count), "1 to 4 subnets");
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test creates network namespaces (ip netns) and must run as root; it cannot \
             check allow_from against real peers otherwise"
        );
        let probe = Command::new("ip").args(["netns", "list"]).output();
        match probe {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`ip netns` does not work here: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run ip (apt-get install iproute2): {e}"),
        }
        let used = networks_in_use();
        let (tag, a, b) = (0..50)
            .map(|_| {
                let r = random();
                let tag = (r & 0xff_ffff) as u32;
                // a in 100..=254, b in 0..=250: room for a few consecutive subnets.
                let a = 100 + ((r >> 24) % 155) as u8;
                let b = ((r >> 32) % 251) as u8;
                (tag, a, b)
            })
            .find(|(_, a, b)| {
                (0..count)
                    .all(|i| !used.contains(&format!("10.{a}.{}.", u16::from(*b) + u16::from(i))))
            })
            .unwrap_or_else(|| panic!("no free 10.x.y.0/24 range in 50 tries:\n{used}"));
        // From here on, Drop removes whatever was made, even half of it.
        let mut made = Namespaces {
            subnets: Vec::new(),
        };
        for i in 0..count {
            let third = b + i;
            let subnet = Subnet {
                ns: format!("spillway-{tag:06x}-{i}"),
                host_if: format!("spw{tag:06x}{i}h"),
                host_addr: Ipv4Addr::new(10, a, third, 1),
                peer_addr: Ipv4Addr::new(10, a, third, 2),
                cidr: format!("10.{a}.{third}.0/24"),
            };
            let peer_if = format!("spw{tag:06x}{i}p");
            let (ns, host_if) = (subnet.ns.clone(), subnet.host_if.clone());
            let (host, peer) = (
                format!("{}/24", subnet.host_addr),
                format!("{}/24", subnet.peer_addr),
            );
            let gateway = subnet.host_addr.to_string();
            made.subnets.push(subnet);
            ip(&["netns", "add", &ns]);
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if,
            ]);
            ip(&["link", "set", &peer_if, "netns", &ns]);
            ip(&["addr", "add", &host, "dev", &host_if]);
            ip(&["link", "set", &host_if, "up"]);
            ip(&["-n", &ns, "addr", "add", &peer, "dev", &peer_if]);
            ip(&["-n", &ns, "link", "set", &peer_if, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "route", "add", "default", "via", &gateway]);
        }
        made
    }

    /// Runs `program ARGS` inside subnet `i`'s namespace, with `env` added.
    pub fn exec(&self, i: usize, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.subnets[i].ns, program])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} in {}: {e}", self.subnets[i].ns))
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both; the namespace's deletion alone would
        // leave the host's end behind for a moment (the kernel tears it down asynchronously).
        for s in &self.subnets {
            let _ = Command::new("ip")
                .args(["link", "del", &s.host_if])
                .output();
            let _ = Command::new("ip").args(["netns", "del", &s.ns]).output();
        }
    }
}
