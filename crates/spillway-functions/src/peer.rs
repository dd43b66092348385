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

/// The inode of the socket whose local address is `peer` and remote address is `local`: asked
/// of the kernel by its four-tuple (sock_diag), else looked up in `/proc/net/tcp`.
fn socket_inode(local: SocketAddr, peer: SocketAddr) -> Option<u64> {
    match (local, peer) {
        (SocketAddr::V4(l), SocketAddr::V4(p)) => {
            diag::inode_v4(p, l).or_else(|| socket_inode_from_proc(local, peer))
        }
        _ => None,
    }
}

/// The slow way: `/proc/net/tcp` lists every socket of the network namespace (reading it takes
/// about 4 ms per thousand sockets), so it is only the fallback.
fn socket_inode_from_proc(local: SocketAddr, peer: SocketAddr) -> Option<u64> {
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

/// One sock_diag request (netlink, `SOCK_DIAG_BY_FAMILY`) for one TCP socket by its exact
/// four-tuple: the kernel answers with that socket alone, at the same cost however many sockets
/// the machine has. Hand-written because it is one fixed request and reply (the netlink crates
/// bring a general framework for it); the layouts are `linux/inet_diag.h`'s.
mod diag {
    use std::net::SocketAddrV4;

    use nix::libc;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const TCPF_ESTABLISHED: u32 = 1 << 1;
    const INET_DIAG_NOCOOKIE: u32 = !0;

    #[repr(C)]
    struct SockId {
        sport: u16,
        dport: u16,
        src: [u32; 4],
        dst: [u32; 4],
        interface: u32,
        cookie: [u32; 2],
    }

    #[repr(C)]
    struct Request {
        len: u32,
        kind: u16,
        flags: u16,
        seq: u32,
        pid: u32,
        family: u8,
        protocol: u8,
        ext: u8,
        pad: u8,
        states: u32,
        id: SockId,
    }

    /// Offset of `idiag_inode` in the reply: nlmsghdr (16), then family, state, timer, retrans
    /// (4), the socket id (48), expires, rqueue, wqueue, uid (16).
    const INODE_AT: usize = 16 + 4 + 48 + 16;

    /// The inode of the TCP socket bound to `src` and connected to `dst`.
    pub(super) fn inode_v4(src: SocketAddrV4, dst: SocketAddrV4) -> Option<u64> {
        let request = Request {
            len: std::mem::size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: libc::NLM_F_REQUEST as u16,
            seq: 1,
            pid: 0,
            family: libc::AF_INET as u8,
            protocol: libc::IPPROTO_TCP as u8,
            ext: 0,
            pad: 0,
            states: TCPF_ESTABLISHED,
            id: SockId {
                sport: src.port().to_be(),
                dport: dst.port().to_be(),
                src: [u32::from_ne_bytes(src.ip().octets()), 0, 0, 0],
                dst: [u32::from_ne_bytes(dst.ip().octets()), 0, 0, 0],
                interface: 0,
                cookie: [INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE],
            },
        };
        let mut reply = [0u8; 512];
        #[allow(unsafe_code)]
        // SAFETY: plain system calls on a descriptor opened here and closed before returning;
        // the request and reply buffers outlive the calls that use them, and the lengths
        // passed are theirs.
        let n = unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            );
            if fd < 0 {
                return None;
            }
            let timeout = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            let sent = libc::send(
                fd,
                (&request as *const Request).cast(),
                std::mem::size_of::<Request>(),
                0,
            );
            let n = if sent < 0 {
                -1
            } else {
                libc::recv(fd, reply.as_mut_ptr().cast(), reply.len(), 0)
            };
            libc::close(fd);
            n
        };
        let n = usize::try_from(n).ok()?;
        let kind = u16::from_ne_bytes([*reply.get(4)?, *reply.get(5)?]);
        if kind == NLMSG_ERROR || kind != SOCK_DIAG_BY_FAMILY || n < INODE_AT + 4 {
            return None;
        }
        let inode = u32::from_ne_bytes(reply.get(INODE_AT..INODE_AT + 4)?.try_into().ok()?);
        Some(u64::from(inode))
    }
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
    if owner.procs.is_some() {
        // The group is there but unreadable (being removed): nobody is the instance now.
        return Vec::new();
    }
    // No cgroup: the session the instance started (it calls setsid() before it execs). A
    // process can join another process group of its own session, but never another session.
    let mut pids = vec![owner.pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid != owner.pid && session(pid) == Some(owner.pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

fn session(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp session ...`; comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(3)?.parse().ok()
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
        let (std::net::SocketAddr::V4(l), std::net::SocketAddr::V4(p)) = (local, peer) else {
            panic!("not IPv4");
        };
        assert_eq!(
            diag::inode_v4(p, l),
            socket_inode_from_proc(local, peer),
            "sock_diag and /proc/net/tcp disagree"
        );
        assert!(diag::inode_v4(p, l).is_some());
        let init = Owner {
            pid: 1,
            procs: None,
        };
        assert!(!belongs(local, peer, &init));
    }
}
