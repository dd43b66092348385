//! Hostile and broken MySQL clients, and a server that goes away: garbage instead of a login,
//! a length prefix far over the limit, commands with the wrong sequence number or cut short, a
//! client that leaves in the middle of a result set, a server restart under a connected client.
//! Each gets the protocol's error (or a closed connection where the protocol has no error to
//! give), never a panic or a hang, and the proxy goes on serving everyone else.

mod mysql_common;

use std::time::Duration;

use mysql_common::*;
use spillway_proxy::mysql::constants::cap;
use spillway_proxy::mysql::messages::{ErrPacket, Greeting, HandshakeResponse};
use spillway_proxy::mysql::scramble;
use spillway_testkit::PrivateMariadb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one packet: (sequence number, payload); `None` at EOF. Bounded in time.
async fn read_packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut header = [0u8; 4];
        s.read_exact(&mut header).await.ok()?;
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.ok()?;
        Some((header[3], payload))
    })
    .await
    .unwrap_or_else(|_| panic!("the proxy neither answered nor closed within 20 s"))
}

fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    out.push(seq);
    out.extend_from_slice(payload);
    out
}

fn error_code(payload: &[u8]) -> Option<u16> {
    ErrPacket::parse(payload).ok().map(|e| e.code)
}

/// Whether the proxy closed the connection (after an error it sent, if any).
async fn closed(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

/// Logs in as app over a raw socket.
async fn login(port: u16) -> TcpStream {
    login_as(port, "app", "app-password", "shop").await
}

/// Logs in over a raw socket (the proof made by the proxy's own scramble module; real clients
/// prove the formula in the other tests).
async fn login_as(port: u16, user: &str, password: &str, db: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, greeting) = read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no greeting"));
    let g = Greeting::parse(&greeting).unwrap_or_else(|e| panic!("{e}"));
    let response = HandshakeResponse {
        capabilities: cap::OFFERED & !(cap::MULTI_STATEMENTS | cap::CONNECT_ATTRS),
        max_packet: 1 << 24,
        collation: 45,
        user: user.as_bytes().to_vec(),
        auth: scramble::native(password.as_bytes(), &g.scramble),
        database: Some(db.as_bytes().to_vec()),
        plugin: Some(scramble::NATIVE.as_bytes().to_vec()),
        attributes: Vec::new(),
    };
    s.write_all(&frame(1, &response.encode()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, ok) = read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no login answer"));
    assert_eq!(ok.first(), Some(&0), "login failed: {:?}", error_code(&ok));
    s
}

fn query(sql: &str) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(sql.as_bytes());
    frame(0, &p)
}

/// `SELECT 41 + 1` on a logged-in socket: the row's payload, or the error's code.
async fn ask(s: &mut TcpStream) -> Option<Result<Vec<u8>, Option<u16>>> {
    s.write_all(&query("SELECT 41 + 1")).await.ok()?;
    let (_, first) = read_packet(s).await?;
    if first.first() == Some(&0xff) {
        return Some(Err(error_code(&first)));
    }
    // Column count, one definition, then the row and the closing packet.
    read_packet(s).await?;
    let (_, row) = read_packet(s).await?;
    read_packet(s).await?;
    Some(Ok(row))
}

/// The proxy still serves a well-behaved client.
fn still_serving(port: u16) {
    let out = mariadb(port, "app", "app-password", &["shop"], "SELECT 'alive'");
    assert_eq!(stdout(&out), "alive", "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_logins_and_commands_get_errors_and_the_proxy_goes_on() {
    let stack = stack(&[("app", "app", "app-password")], "max_connections = 1", "").await;
    let port = stack.port();

    // Garbage instead of a handshake response: 1043 Bad handshake, then the connection closes.
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no greeting"));
    s.write_all(&frame(1, b"hello"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, p) = read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no answer"));
    assert_eq!(error_code(&p), Some(1043));
    assert!(closed(&mut s).await);

    // A login packet announcing 16 MiB: refused from its header alone (1153).
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no greeting"));
    s.write_all(&[0xff, 0xff, 0xff, 1])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, p) = read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no answer"));
    assert_eq!(error_code(&p), Some(1153));

    // Half a header, then gone.
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no greeting"));
    s.write_all(&[0x20, 0])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(s);

    // A command with the wrong sequence number: 1158 out of order, then closed.
    let mut s = login(port).await;
    let mut p = query("SELECT 1");
    p[3] = 3;
    s.write_all(&p).await.unwrap_or_else(|e| panic!("{e}"));
    let (_, answer) = read_packet(&mut s)
        .await
        .unwrap_or_else(|| panic!("no answer"));
    assert_eq!(error_code(&answer), Some(1158));
    assert!(closed(&mut s).await);

    // A command cut short, then gone.
    let mut s = login(port).await;
    s.write_all(&[100, 0, 0, 0, 0x03, b'S', b'E'])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(s);

    // A command of more than the proxy's 64 MiB limit, in 16 MiB parts: refused (1153) before
    // the last part is buffered.
    let mut s = login(port).await;
    let part = vec![b' '; 0xff_ffff];
    let mut refused = false;
    for seq in 0..6u8 {
        let mut f = vec![0xff, 0xff, 0xff, seq];
        f.extend_from_slice(&part);
        if s.write_all(&f).await.is_err() {
            refused = true;
            break;
        }
    }
    let answer = read_packet(&mut s).await;
    assert!(
        refused || answer.as_ref().and_then(|(_, p)| error_code(p)) == Some(1153),
        "{answer:?}"
    );

    // A client that leaves in the middle of a large result set: its connection is not given
    // to the next client half-read (with one server connection, the next query would get the
    // rest of those rows).
    let mut s = login(port).await;
    s.write_all(&query("SELECT REPEAT('x', 1000) FROM seq_1_to_200000"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = read_packet(&mut s).await;
    drop(s);
    for _ in 0..3 {
        still_serving(port);
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_restart_costs_a_client_at_most_one_error() {
    let mut db = PrivateMariadb::start().await;
    let stack = spillway_testkit::ProxyStack::from_toml(&format!(
        "[stack]\nendpoint = \"127.0.0.1:0\"\n\n[databases.main]\nengine = \"mysql\"\nurl = \"{}\"\n\n\
         [secrets.app]\nusername = \"test\"\npassword = \"test-password\"\n\n\
         [proxies.main]\ndatabase = \"main\"\nlisten = \"127.0.0.1:0\"\nauth = [{{ secret = \"app\" }}]\n",
        db.url()
    ))
    .await;
    let port = stack.port();
    let mut s = login_as(port, "test", "test-password", "test").await;
    assert_eq!(ask(&mut s).await, Some(Ok(vec![2, b'4', b'2'])));
    db.restart().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The pooled connection died with the server: the first query may fail with an error
    // packet (or succeed on a new connection); the next one succeeds. Never a hang.
    let first = ask(&mut s).await;
    assert!(
        matches!(first, Some(Ok(_)) | Some(Err(Some(1105)))),
        "after the restart: {first:?}"
    );
    assert_eq!(ask(&mut s).await, Some(Ok(vec![2, b'4', b'2'])));
    stack.stop().await;
    db.stop().await;
}

/// Prepares `sql` on a raw socket; returns the statement id (reading the parameter and column
/// definitions that follow: the client asked for DEPRECATE_EOF, so no EOFs).
async fn prepare(s: &mut TcpStream, sql: &str) -> u32 {
    let mut p = vec![0x16];
    p.extend_from_slice(sql.as_bytes());
    s.write_all(&frame(0, &p))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, ok) = read_packet(s)
        .await
        .unwrap_or_else(|| panic!("no prepare answer"));
    assert_eq!(
        ok.first(),
        Some(&0),
        "prepare failed: {:?}",
        error_code(&ok)
    );
    let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let columns = u16::from_le_bytes([ok[5], ok[6]]);
    let params = u16::from_le_bytes([ok[7], ok[8]]);
    for _ in 0..(columns + params) {
        read_packet(s).await.unwrap_or_else(|| panic!("cut short"));
    }
    id
}

/// Executes a statement of one string parameter (or none) and returns the first column of its
/// one row, as text (binary protocol: a string column is length-encoded after the row's
/// header and NULL bitmap).
async fn execute(s: &mut TcpStream, id: u32, param: Option<&str>) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&1u32.to_le_bytes());
    if let Some(v) = param {
        p.push(0); // NULL bitmap
        p.push(1); // types follow
        p.extend_from_slice(&[0xfd, 0]);
        p.push(v.len() as u8);
        p.extend_from_slice(v.as_bytes());
    }
    s.write_all(&frame(0, &p))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, first) = read_packet(s)
        .await
        .unwrap_or_else(|| panic!("no execute answer"));
    assert_ne!(
        first.first(),
        Some(&0xff),
        "execute failed: {:?}",
        error_code(&first)
    );
    read_packet(s).await.unwrap_or_else(|| panic!("no column"));
    let (_, row) = read_packet(s).await.unwrap_or_else(|| panic!("no row"));
    read_packet(s).await.unwrap_or_else(|| panic!("no end"));
    // 0x00, a one-byte NULL bitmap, then the value.
    let n = usize::from(row.get(2).copied().unwrap_or(0));
    row.get(3..3 + n).map(<[u8]>::to_vec).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn long_data_never_reaches_another_clients_execute() {
    let stack = stack(&[("app", "app", "app-password")], "max_connections = 1", "").await;
    let port = stack.port();
    // A sends long data for one statement, executes another, runs a query and leaves: the
    // long data is still on the (only) server connection, for its statement.
    let mut a = login(port).await;
    let with_param = prepare(&mut a, "SELECT ?").await;
    let other = prepare(&mut a, "SELECT 'two'").await;
    let mut long = vec![0x18];
    long.extend_from_slice(&with_param.to_le_bytes());
    long.extend_from_slice(&0u16.to_le_bytes());
    long.extend_from_slice(b"SECRET-OF-A");
    a.write_all(&frame(0, &long))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(execute(&mut a, other, None).await, b"two");
    assert_eq!(ask(&mut a).await, Some(Ok(vec![2, b'4', b'2'])));
    a.write_all(&frame(0, &[0x01]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(a);
    // B prepares the same text (the pool's and the connection's statement) with its own value.
    let mut b = login(port).await;
    let id = prepare(&mut b, "SELECT ?").await;
    assert_eq!(execute(&mut b, id, Some("public")).await, b"public");
    stack.stop().await;
}
