//! A MySQL connect storm for bench/proxy-mysql.sh: a new connection per query at a fixed rate,
//! open loop (connections are started on schedule whether or not earlier ones finished):
//! connect, optionally TLS, log in, one `SELECT id, k, c, pad FROM sbtest1 WHERE id IN (10
//! ids)`, COM_QUIT, close. Python's asyncio spent 2.5 ms of CPU per TLS connection, more than
//! the servers it measured; this spends a tenth of that.
//!
//! usage: my_storm HOST PORT USER DB RATE SECONDS tls|plain native|clear [PID...]
//!
//! The password (or RDS IAM token) comes from MYSQL_PWD. `native` answers with
//! mysql_native_password; `clear` sends the password with mysql_clear_password in the first
//! handshake response (how a client that knows it holds an IAM token logs in). Prints one JSON
//! line: target and achieved rate, successes, errors by message, p50/p99 ms from connect to the
//! last row, and CPU ms per successful connection of this process, of each PID and of the whole
//! machine (with the share it left idle).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spillway_proxy::mysql::constants::cap;
use spillway_proxy::mysql::messages::{Greeting, HandshakeResponse};
use spillway_proxy::mysql::scramble;
use spillway_proxy::tls::{ClientTls, ServerTlsMode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const TABLE_SIZE: u64 = 10_000;

struct Conn<S> {
    s: S,
    seq: u8,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn read(&mut self) -> io::Result<Vec<u8>> {
        let mut h = [0u8; 4];
        self.s.read_exact(&mut h).await?;
        let n = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        self.seq = h[3].wrapping_add(1);
        let mut p = vec![0; n];
        self.s.read_exact(&mut p).await?;
        Ok(p)
    }

    async fn write(&mut self, payload: &[u8]) -> io::Result<()> {
        let n = u32::try_from(payload.len()).map_err(io::Error::other)?;
        let mut out = Vec::with_capacity(payload.len() + 4);
        out.extend_from_slice(&n.to_le_bytes()[..3]);
        out.push(self.seq);
        out.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.s.write_all(&out).await
    }
}

fn err_text(p: &[u8]) -> String {
    if p.len() < 3 {
        return "short error packet".into();
    }
    let code = u16::from_le_bytes([p[1], p[2]]);
    let msg = if p.get(3) == Some(&b'#') && p.len() >= 9 {
        &p[9..]
    } else {
        &p[3..]
    };
    format!("{code} {}", String::from_utf8_lossy(msg))
}

struct Target {
    host: String,
    port: u16,
    user: String,
    db: String,
    password: Vec<u8>,
    tls: Option<ClientTls>,
    clear: bool,
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
    t: &Target,
    greeting: &Greeting,
    caps: u32,
    ids: &str,
) -> io::Result<()> {
    let (plugin, auth) = if t.clear {
        let mut a = t.password.clone();
        a.push(0);
        (scramble::CLEAR, a)
    } else {
        (
            scramble::NATIVE,
            scramble::native(&t.password, &greeting.scramble),
        )
    };
    let response = HandshakeResponse {
        capabilities: caps,
        max_packet: 1 << 24,
        collation: 45,
        user: t.user.as_bytes().to_vec(),
        auth,
        database: Some(t.db.as_bytes().to_vec()),
        plugin: Some(plugin.as_bytes().to_vec()),
        attributes: Vec::new(),
    };
    c.write(&response.encode()).await?;
    loop {
        let p = c.read().await?;
        match p.first() {
            Some(0x00) => break,
            Some(0xff) => return Err(io::Error::other(err_text(&p))),
            Some(0x01) => continue,
            Some(0xfe) => {
                let end = p[1..]
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(p.len(), |i| i + 1);
                let name = String::from_utf8_lossy(&p[1..end]).into_owned();
                let data = p.get(end + 1..).unwrap_or_default();
                let data = &data[..data.len().min(20)];
                let answer = match name.as_str() {
                    scramble::CLEAR => {
                        let mut a = t.password.clone();
                        a.push(0);
                        a
                    }
                    scramble::NATIVE => scramble::native(&t.password, data),
                    other => return Err(io::Error::other(format!("auth switch to {other}"))),
                };
                c.write(&answer).await?;
            }
            _ => return Err(io::Error::other("unexpected login packet")),
        }
    }
    c.seq = 0;
    let sql = format!("\x03SELECT id, k, c, pad FROM sbtest1 WHERE id IN ({ids})");
    c.write(sql.as_bytes()).await?;
    let first = c.read().await?;
    match first.first() {
        Some(0xff) => return Err(io::Error::other(err_text(&first))),
        Some(0x00) => return Ok(()),
        _ => {}
    }
    let columns = first[0];
    for _ in 0..columns {
        c.read().await?;
    }
    let _eof = c.read().await?; // no DEPRECATE_EOF: an EOF ends the column definitions
    loop {
        let p = c.read().await?;
        match p.first() {
            Some(0xfe) if p.len() < 9 => break,
            Some(0xff) => return Err(io::Error::other(err_text(&p))),
            _ => {}
        }
    }
    c.seq = 0;
    c.write(&[0x01]).await?;
    let _ = c.s.shutdown().await;
    Ok(())
}

async fn one(t: &Target, ids: &str) -> io::Result<()> {
    let tcp = TcpStream::connect((t.host.as_str(), t.port)).await?;
    tcp.set_nodelay(true)?;
    let mut c = Conn { s: tcp, seq: 0 };
    let g = c.read().await?;
    if g.first() == Some(&0xff) {
        return Err(io::Error::other(err_text(&g)));
    }
    let greeting = Greeting::parse(&g)
        .map_err(|e| io::Error::other(format!("malformed greeting: {}", e.0)))?;
    let caps = (cap::LONG_PASSWORD
        | cap::LONG_FLAG
        | cap::CONNECT_WITH_DB
        | cap::PROTOCOL_41
        | cap::TRANSACTIONS
        | cap::SECURE_CONNECTION
        | cap::MULTI_RESULTS
        | cap::PLUGIN_AUTH
        | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA)
        & greeting.capabilities;
    match &t.tls {
        Some(tls) => {
            if greeting.capabilities & cap::SSL == 0 {
                return Err(io::Error::other("the server offers no TLS"));
            }
            let request = HandshakeResponse {
                capabilities: caps,
                max_packet: 1 << 24,
                collation: 45,
                user: Vec::new(),
                auth: Vec::new(),
                database: None,
                plugin: None,
                attributes: Vec::new(),
            }
            .encode_ssl_request();
            c.write(&request).await?;
            let seq = c.seq;
            let stream = tls.connect(&t.host, c.s).await?;
            let mut c = Conn { s: stream, seq };
            session(&mut c, t, &greeting, caps | cap::SSL, ids).await
        }
        None => session(&mut c, t, &greeting, caps, ids).await,
    }
}

fn ticks(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = s.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// Busy and idle ticks of the whole machine, from /proc/stat's first line.
fn machine() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7), at(3) + at(4))
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 8 {
        eprintln!("usage: my_storm HOST PORT USER DB RATE SECONDS tls|plain native|clear [PID...]");
        std::process::exit(2);
    }
    let parse = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("not a number: {s}")) };
    let (rate, seconds) = (parse(&a[4]), parse(&a[5]));
    let tls = (a[6] == "tls").then(|| {
        ClientTls::new(ServerTlsMode::Require, None).unwrap_or_else(|e| panic!("tls: {e}"))
    });
    let t = Arc::new(Target {
        host: a[0].clone(),
        port: a[1]
            .parse()
            .unwrap_or_else(|_| panic!("not a port: {}", a[1])),
        user: a[2].clone(),
        db: a[3].clone(),
        password: std::env::var("MYSQL_PWD").unwrap_or_default().into_bytes(),
        tls,
        clear: a[7] == "clear",
    });
    let pids: Vec<u32> = a[8..].iter().filter_map(|p| p.parse().ok()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let self_pid = std::process::id();
    let before: Vec<u64> = std::iter::once(self_pid)
        .chain(pids.iter().copied())
        .map(ticks)
        .collect();
    let machine_before = machine();
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    // Whole runs only: a fractional connection is never started.
    let n = (rate * seconds) as u64;
    let (start, end) = runtime.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..n {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
            let (t, latencies, errors) =
                (Arc::clone(&t), Arc::clone(&latencies), Arc::clone(&errors));
            let ids: Vec<String> = (0..10)
                .map(|_| (rand::random::<u64>() % TABLE_SIZE + 1).to_string())
                .collect();
            let ids = ids.join(",");
            tasks.push(tokio::spawn(async move {
                let began = Instant::now();
                match tokio::time::timeout(Duration::from_secs(30), one(&t, &ids)).await {
                    Ok(Ok(())) => {
                        if let Ok(mut l) = latencies.lock() {
                            l.push(began.elapsed().as_secs_f64());
                        }
                    }
                    Ok(Err(e)) => {
                        let mut k = e.to_string();
                        k.truncate(120);
                        if let Ok(mut m) = errors.lock() {
                            *m.entry(k).or_default() += 1;
                        }
                    }
                    Err(_) => {
                        if let Ok(mut m) = errors.lock() {
                            *m.entry("timed out after 30 s".into()).or_default() += 1;
                        }
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        (start, Instant::now())
    });
    let after: Vec<u64> = std::iter::once(self_pid)
        .chain(pids.iter().copied())
        .map(ticks)
        .collect();
    let machine_after = machine();
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    let errors = errors.lock().map(|e| e.clone()).unwrap_or_default();
    let ok = lat.len();
    let pct = |q: f64| -> Option<f64> {
        let i = ((ok as f64 * q) as usize).min(ok.saturating_sub(1));
        lat.get(i).map(|v| (v * 100_000.0).round() / 100.0)
    };
    let tck = 100.0; // USER_HZ on Linux
    let per = |d: u64| -> Option<f64> {
        (ok > 0).then(|| (d as f64 * 1000.0 / tck / ok as f64 * 1000.0).round() / 1000.0)
    };
    let cpu: Vec<Option<f64>> = before.iter().zip(&after).map(|(b, a)| per(a - b)).collect();
    let elapsed = (end - start).as_secs_f64();
    let (busy, idle) = (
        machine_after.0 - machine_before.0,
        machine_after.1 - machine_before.1,
    );
    let idle_pct = if busy + idle > 0 {
        (1000.0 * idle as f64 / (busy + idle) as f64).round() / 10.0
    } else {
        0.0
    };
    let json = |v: Option<f64>| v.map_or("null".to_owned(), |v| v.to_string());
    let kinds: Vec<String> = errors
        .iter()
        .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap_or_default()))
        .collect();
    println!(
        "{{\"rate\": {rate}, \"attempted\": {n}, \"ok\": {ok}, \"errors\": {}, \"error_kinds\": {{{}}}, \
         \"achieved\": {:.1}, \"p50_ms\": {}, \"p99_ms\": {}, \"client_cpu_ms\": {}, \"pid_cpu_ms\": [{}], \
         \"machine_cpu_ms\": {}, \"machine_idle_pct\": {idle_pct}, \"elapsed_s\": {elapsed:.2}}}",
        errors.values().sum::<u64>(),
        kinds.join(", "),
        ok as f64 / elapsed,
        json(pct(0.5)),
        json(pct(0.99)),
        json(cpu[0]),
        cpu[1..]
            .iter()
            .map(|c| json(*c))
            .collect::<Vec<_>>()
            .join(", "),
        json(per(busy)),
    );
}
