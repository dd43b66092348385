//! Who is on the other end of a Runtime API connection. Each instance's Runtime API is a
//! loopback TCP listener (the clients Lambda's runtimes use speak only TCP), and anything on the
//! machine can connect to loopback; only the instance the listener belongs to may use it, or
//! another process could take the instance's events and answer in its place.
//!
//! The kernel knows which socket the peer's end is (`/proc/net/tcp` names its inode) and which
//! process holds that socket (`/proc/PID/fd`). A connection is accepted only when a process of
//! the instance — its cgroup's members, or without a cgroup its process group — holds the
//! other end. Both runtimes' clients keep one connection open, so this runs about once per
//! instance.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The processes of one instance.
#[derive(Clone, Debug)]
pub(crate) struct Owner {
    /// The instance's first process (the process group's leader).
    pub pid: u32,
    /// The `cgroup.procs` file listing all its processes, where it has a cgroup.
    pub procs: Option<PathBuf>,
}

/// Whether the process on the other end of the connection `peer` → `local` is one of `owner`'s.
pub(crate) fn belongs(local: SocketAddr, peer: SocketAddr, owner: &Owner) -> bool {
    let Some(inode) = socket_inode(local, peer) else {
        return false;
    };
    let target = format!("socket:[{inode}]");
    owner_pids(owner).into_iter().any(|pid| holds(pid, &target))
}

/// The inode of the socket whose local address is `peer` and remote address is `local`.
fn socket_inode(local: SocketAddr, peer: SocketAddr) -> Option<u64> {
    let (table, want_local, want_remote) = match (local, peer) {
        (SocketAddr::V4(l), SocketAddr::V4(p)) => (
            "/proc/net/tcp",
            format!("{}:{:04X}", hex_v4(p.ip()), p.port()),
            format!("{}:{:04X}", hex_v4(l.ip()), l.port()),
        ),
        _ => return None, // the listener is on 127.0.0.1 only
    };
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st queues tr retrnsmt uid timeout inode
        (f.len() > 9 && f[1] == want_local && f[2] == want_remote)
            .then(|| f[9].parse().ok())
            .flatten()
    })
}

/// `/proc/net/tcp` prints the address as the 32-bit value in memory, in hex.
fn hex_v4(ip: &std::net::Ipv4Addr) -> String {
    format!("{:08X}", u32::from_ne_bytes(ip.octets()))
}

fn owner_pids(owner: &Owner) -> Vec<u32> {
    if let Some(procs) = &owner.procs
        && let Ok(text) = std::fs::read_to_string(procs)
    {
        return text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    }
    // No cgroup: the process group the instance started as.
    let mut pids = vec![owner.pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid != owner.pid && process_group(pid) == Some(owner.pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

fn holds(pid: u32, target: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|l| l.as_os_str() == target)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_holds_its_own_connection_and_not_another_s() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let local = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let client = std::net::TcpStream::connect(local).unwrap_or_else(|e| panic!("{e}"));
        let (_server, peer) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.local_addr().unwrap_or_else(|e| panic!("{e}")), peer);
        let me = Owner {
            pid: std::process::id(),
            procs: None,
        };
        assert!(belongs(local, peer, &me));
        let init = Owner {
            pid: 1,
            procs: None,
        };
        assert!(!belongs(local, peer, &init));
    }
}
