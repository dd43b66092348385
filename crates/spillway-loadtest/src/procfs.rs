//! What /proc and getrusage say about processes: CPU time of a database server (the process
//! and its children: PostgreSQL runs one backend process per connection) and its established
//! connections, and the generator's own CPU time.
//!
//! CPU times in /proc/PID/stat are in clock ticks; Linux reports them to user space at
//! USER_HZ, which is 100 on every architecture it supports, so no sysconf call is needed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

const USER_HZ: f64 = 100.0;

/// The fields of /proc/PID/stat we use.
struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime: the process's time and that of children it reaped
    /// (the postmaster reaps ended backends, so their CPU is not lost when they exit).
    ticks: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let after = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        ppid: u32::try_from(num(1)?).ok()?,
        ticks: num(11)? + num(12)? + num(13)? + num(14)?,
    })
}

/// The process and its descendants, one level deep (enough for postgres and mariadbd).
fn family(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if read_stat(child).is_some_and(|s| s.ppid == pid) {
                out.push(child);
            }
        }
    }
    out
}

/// A database server's CPU seconds (process and children) and its connections now.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerReading {
    pub cpu: Duration,
    /// Established TCP or connected Unix-socket connections held by the server's processes;
    /// None when their file descriptors cannot be read (another user's processes).
    pub connections: Option<u64>,
    pub alive: bool,
}

pub fn read_server(pid: u32) -> ServerReading {
    let Some(own) = read_stat(pid) else {
        return ServerReading::default();
    };
    let members = family(pid);
    let ticks: u64 = own.ticks
        + members
            .iter()
            .skip(1)
            .filter_map(|p| read_stat(*p))
            .map(|s| s.ticks)
            .sum::<u64>();
    ServerReading {
        cpu: Duration::from_secs_f64(ticks as f64 / USER_HZ),
        connections: connections(&members),
        alive: true,
    }
}

/// Socket inodes in an established (TCP state 01) or connected non-listening (Unix state 03)
/// state, from /proc/net: a process's listening sockets and internal pipes are not connections.
fn connected_inodes() -> HashSet<u64> {
    let mut out = HashSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) == Some(&"01")
                && let Some(inode) = f.get(9).and_then(|v| v.parse().ok())
            {
                out.insert(inode);
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/proc/net/unix") {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode [Path]; flag 00010000 = listening.
            let listening = f.get(3).is_some_and(|fl| fl.ends_with("10000"));
            if f.get(5) == Some(&"03")
                && !listening
                && let Some(inode) = f.get(6).and_then(|v| v.parse().ok())
            {
                out.insert(inode);
            }
        }
    }
    out
}

fn connections(pids: &[u32]) -> Option<u64> {
    let connected = connected_inodes();
    let mut mine = HashSet::new();
    let mut readable = false;
    for pid in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        readable = true;
        for e in dir.flatten() {
            let Ok(link) = std::fs::read_link(e.path()) else {
                continue;
            };
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
                && connected.contains(&inode)
            {
                mine.insert(inode);
            }
        }
    }
    readable.then_some(mine.len() as u64)
}

/// This process's CPU time (user + system), from getrusage.
pub fn own_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec().max(0) as u64)
                    + Duration::from_micros(t.tv_usec().max(0) as u64)
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// A managed database server found in a stack's state directory.
#[derive(Clone, Debug)]
pub struct FoundServer {
    pub name: String,
    pub pid: u32,
}

/// The servers `spillway up` manages under STATE/databases/NAME: PostgreSQL's pid is the first
/// line of data/postmaster.pid, MariaDB's is mariadbd.pid; a database's managed readers live in
/// readers/I/ with the same layout and are named `NAME.readers.I`, as `spillway up` lists them
/// (report 004 reads through them, so their CPU is the proxy path's database CPU).
pub fn find_servers(state_dir: &Path) -> Vec<FoundServer> {
    let mut out = Vec::new();
    for (db, name) in sorted_dirs(&state_dir.join("databases")) {
        push_server(&db, &name, &mut out);
        let mut readers = sorted_dirs(&db.join("readers"));
        // readers/10 after readers/9.
        readers.sort_by_key(|(_, i)| (i.len(), i.clone()));
        for (reader, index) in readers {
            push_server(&reader, &format!("{name}.readers.{index}"), &mut out);
        }
    }
    out
}

fn sorted_dirs(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, String)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (p, name)
        })
        .collect();
    out.sort();
    out
}

fn push_server(dir: &Path, name: &str, out: &mut Vec<FoundServer>) {
    for pid_file in [
        dir.join("data").join("postmaster.pid"),
        dir.join("mariadbd.pid"),
    ] {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        {
            out.push(FoundServer {
                name: name.to_owned(),
                pid,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let r = read_server(std::process::id());
        assert!(r.alive);
        assert!(own_cpu() >= Duration::ZERO);
    }

    #[test]
    fn finds_pid_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pg = dir.path().join("databases/app/data");
        std::fs::create_dir_all(&pg).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(pg.join("postmaster.pid"), "4242\n/x\n").unwrap_or_else(|e| panic!("{e}"));
        let my = dir.path().join("databases/legacy");
        std::fs::create_dir_all(&my).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(my.join("mariadbd.pid"), "77\n").unwrap_or_else(|e| panic!("{e}"));
        for (i, pid) in [(2, "92\n"), (10, "910\n"), (1, "91\n")] {
            let r = dir.path().join(format!("databases/legacy/readers/{i}"));
            std::fs::create_dir_all(&r).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(r.join("mariadbd.pid"), pid).unwrap_or_else(|e| panic!("{e}"));
        }
        let pgr = dir.path().join("databases/app/readers/1/data");
        std::fs::create_dir_all(&pgr).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(pgr.join("postmaster.pid"), "5000\n").unwrap_or_else(|e| panic!("{e}"));
        let found = find_servers(dir.path());
        let pairs: Vec<(String, u32)> = found.into_iter().map(|f| (f.name, f.pid)).collect();
        assert_eq!(
            pairs,
            vec![
                ("app".into(), 4242),
                ("app.readers.1".into(), 5000),
                ("legacy".into(), 77),
                ("legacy.readers.1".into(), 91),
                ("legacy.readers.2".into(), 92),
                ("legacy.readers.10".into(), 910),
            ]
        );
    }
}
