//! Bad bytes and abrupt clients: each gets the protocol's own error (SQLSTATE 08P01 and the
//! like) or a closed socket, never a hang, and the proxy keeps serving everyone else.

use std::time::Duration;

use spillway_testkit::ProxyStack;
use spillway_testkit::pgwire::{
    answer_until_ready, error_code, frames, login, message, rows_until_ready,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::NoTls;

/// Sends `bytes` on a fresh connection; returns everything the proxy answered until it closed.
async fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(bytes).await.unwrap_or_else(|e| panic!("{e}"));
    // Half-close: the proxy sees the end of the client's input after these bytes.
    s.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the proxy neither answered nor closed; got {out:?}"
    );
    out
}

fn sqlstate(answer: &[u8]) -> Option<String> {
    let start = answer.iter().position(|b| *b == b'E')?;
    let body = answer.get(start + 5..)?;
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let field = body[i];
        let end = body[i + 1..].iter().position(|b| *b == 0)? + i + 1;
        if field == b'C' {
            return Some(String::from_utf8_lossy(&body[i + 1..end]).into_owned());
        }
        i = end + 1;
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_startup_packets() {
    let stack = ProxyStack::start("").await;
    let port = stack.port();
    // A length below the minimum, a 1 GB length prefix and bytes that are not the protocol at
    // all: the connection is closed at once, nothing buffered and nothing said, as PostgreSQL
    // does ("invalid length of startup packet" is only logged).
    for bad in [
        &[0u8, 0, 0, 3][..],
        &[0x40, 0, 0, 0, 0, 3, 0, 0][..],
        &b"GET / HTTP/1.1\r\n\r\n"[..],
    ] {
        let answer = exchange(port, bad).await;
        assert!(answer.is_empty(), "{bad:?} -> {answer:?}");
    }
    // Protocol 2.0 is refused with feature_not_supported.
    let mut v2 = vec![0, 0, 0, 8];
    v2.extend_from_slice(&(2i32 << 16).to_be_bytes());
    assert_eq!(
        sqlstate(&exchange(port, &v2).await).as_deref(),
        Some("0A000")
    );
    // GSS encryption is declined with 'N', then the client may go on (here: it hangs up).
    let mut gss = vec![0, 0, 0, 8];
    gss.extend_from_slice(&80_877_104i32.to_be_bytes());
    assert_eq!(exchange(port, &gss).await, b"N");
    // A startup packet without a user.
    let mut no_user = vec![0, 0, 0, 9];
    no_user.extend_from_slice(&196_608i32.to_be_bytes());
    no_user.push(0);
    assert_eq!(
        sqlstate(&exchange(port, &no_user).await).as_deref(),
        Some("28000")
    );
    // A packet of the right length whose parameters lack their terminator: PostgreSQL's FATAL.
    let mut unterminated = vec![0, 0, 0, 13];
    unterminated.extend_from_slice(&196_608i32.to_be_bytes());
    unterminated.extend_from_slice(b"user\0");
    assert_eq!(
        sqlstate(&exchange(port, &unterminated).await).as_deref(),
        Some("08P01")
    );
    // A client that connects and says nothing does not stop others.
    let _silent = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = tokio_postgres::connect(&stack.conn_str(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    client
        .simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_messages_after_login() {
    let stack = ProxyStack::start("").await;
    let port = stack.port();
    // A client library will not send bad bytes, so log in by hand (SCRAM with rust-postgres's
    // client implementation), then misbehave.
    for (name, bad) in [
        ("unknown message type", b"!\0\0\0\x04".to_vec()),
        ("length below 4", b"Q\0\0\0\x02".to_vec()),
        ("a 2 GB length", b"Q\x7f\xff\xff\xff".to_vec()),
        (
            "a Parse without its terminators",
            b"P\0\0\0\x08abcd".to_vec(),
        ),
    ] {
        let mut s = login(port).await;
        s.write_all(&bad).await.unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "{name}: no answer and no close");
        assert_eq!(sqlstate(&out).as_deref(), Some("08P01"), "{name}: {out:?}");
    }
    // Everyone else is fine, and no server connection was left dirty.
    let (client, conn) = tokio_postgres::connect(&stack.conn_str(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let v: i32 = client
        .query_one("SELECT 41 + 1", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    assert_eq!(v, 42);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_fails_open_transactions_and_the_pool_refills() {
    let mut pg = spillway_testkit::PrivatePostgres::start().await;
    let database = format!(
        "engine = \"postgres\"\nurl = \"postgres://test:test-password@127.0.0.1:{}/test\"",
        pg.port()
    );
    let stack = ProxyStack::start_with_database(&database, "test", "test-password", "").await;
    let conn_str = stack.conn_str().replace(
        "user=app password=app-password dbname=main",
        "user=test password=test-password dbname=test",
    );
    let connect = |s: String| async move {
        let (client, conn) = tokio_postgres::connect(&s, NoTls)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(conn);
        client
    };
    let idle = connect(conn_str.clone()).await;
    idle.simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let in_tx = connect(conn_str.clone()).await;
    in_tx
        .batch_execute("BEGIN; SELECT 1;")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    pg.restart().await;

    // The transaction's server went away under it: an error, not a hang.
    let err = tokio::time::timeout(Duration::from_secs(10), in_tx.simple_query("SELECT 2")).await;
    assert!(
        matches!(err, Ok(Err(_))),
        "expected an error for the broken transaction, got {err:?}"
    );
    // A client that held no server carries on, on a fresh server connection.
    let v = tokio::time::timeout(Duration::from_secs(10), idle.simple_query("SELECT 3")).await;
    assert!(
        matches!(v, Ok(Ok(_))),
        "the idle client could not continue: {v:?}"
    );
    // And new clients are served.
    let fresh = connect(conn_str).await;
    let n: i32 = fresh
        .query_one("SELECT 40 + 2", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 42);
    stack.stop().await;
    pg.stop().await;
}

/// A client's extended-protocol batch owns its server connection until the Sync: with one
/// server connection, a second client that asks between the client's Execute and its Sync waits
/// for it, and each gets its own rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_connection_stays_with_a_batch_until_its_sync() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let port = stack.port();
    let mut a = login(port).await;
    let mut batch = message(b'P', b"\0SELECT 'A-result'\0\0\0");
    batch.extend(message(b'B', b"\0\0\0\0\0\0\0\0"));
    batch.extend(message(b'E', b"\0\0\0\0\0"));
    // A Flush: the server answers what it has so far, and the batch is still open.
    batch.extend(message(b'H', b""));
    a.write_all(&batch).await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let conn_str = stack.conn_str();
    let b = tokio::spawn(async move {
        let (client, conn) = tokio_postgres::connect(&conn_str, NoTls)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(conn);
        client
            .simple_query("SELECT 'B-result'")
            .await
            .unwrap_or_else(|e| panic!("client B: {e}"))
            .into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !b.is_finished(),
        "client B got the connection in the middle of A's batch"
    );

    a.write_all(&message(b'S', b""))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = tokio::time::timeout(Duration::from_secs(10), rows_until_ready(&mut a))
        .await
        .unwrap_or_else(|_| panic!("client A got no ReadyForQuery"));
    assert_eq!(rows, ["A-result"]);
    let b_rows = tokio::time::timeout(Duration::from_secs(10), b)
        .await
        .unwrap_or_else(|_| panic!("client B never got the connection"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b_rows.as_deref(), Some("B-result"));
    stack.stop().await;
}

/// Text of the first ErrorResponse's message field.
fn error_text(answer: &[u8]) -> Option<String> {
    let start = answer.iter().position(|b| *b == b'E')?;
    let body = answer.get(start + 5..)?;
    body.split(|b| *b == 0)
        .find(|f| f.first() == Some(&b'M'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
}

/// A logged-in client announces a message far above what the proxy holds (a 1 GB Query, a
/// Sync of 20 kB): it is refused on the header, with PostgreSQL's words, and closed, instead of
/// the proxy waiting to buffer it. A large but reasonable statement and COPY still work.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_client_messages_are_refused_on_their_header() {
    let stack = ProxyStack::start("").await;
    let port = stack.port();
    for (name, header) in [
        ("a 1 GB Query", b"Q\x3f\xff\xff\xff".to_vec()),
        ("a 100 MB Bind", {
            let mut h = vec![b'B'];
            h.extend_from_slice(&(100_000_000i32).to_be_bytes());
            h
        }),
        ("a 20 kB Sync", {
            let mut h = vec![b'S'];
            h.extend_from_slice(&(20_000i32).to_be_bytes());
            h
        }),
    ] {
        let mut s = login(port).await;
        // The header and the first bytes of a body that would never end.
        s.write_all(&header).await.unwrap_or_else(|e| panic!("{e}"));
        s.write_all(&[b'x'; 4096])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "{name}: the proxy waited for the body");
        assert_eq!(sqlstate(&out).as_deref(), Some("08P01"), "{name}: {out:?}");
        assert_eq!(
            error_text(&out).as_deref(),
            Some("invalid message length"),
            "{name}"
        );
    }
    // A 1 MB statement is fine, and so is COPY data above the limit for other messages.
    let (client, conn) = tokio_postgres::connect(&stack.conn_str(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let big = "x".repeat(1 << 20);
    let n: i32 = client
        .query_one(&format!("SELECT length('{big}')"), &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 1 << 20);
    // COPY data streams through whole: one 70 MiB CopyData message on a raw socket.
    let mut s = login(port).await;
    s.write_all(&message(b'Q', b"CREATE TABLE blob (t text)\0"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    rows_until_ready(&mut s).await;
    s.write_all(&message(b'Q', b"COPY blob FROM STDIN\0"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = [0u8; 5];
    s.read_exact(&mut head)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head[0], b'G', "no CopyInResponse");
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize - 4;
    let mut rest = vec![0u8; len];
    s.read_exact(&mut rest)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut row = vec![b'y'; 70 << 20];
    row.push(b'\n');
    s.write_all(&message(b'd', &row))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(&message(b'c', b""))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    rows_until_ready(&mut s).await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM blob WHERE length(t) = 70 * 1024 * 1024",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 1);
    stack.stop().await;
}

/// A timeout's handler that fails the test naming what did not answer.
fn late<T>(what: &'static str) -> impl FnOnce(tokio::time::error::Elapsed) -> T {
    move |_| panic!("{what}: no ReadyForQuery")
}

/// A client's unnamed statement lives across Syncs (PostgreSQL keeps it until the next
/// Parse('') or simple query). Through a pool of one, another client's Parse('') in between
/// replaced it on the shared server connection: the first client's Bind('') then ran the other
/// client's statement and got its rows.
#[tokio::test(flavor = "multi_thread")]
async fn an_unnamed_statement_survives_a_sync_and_never_runs_another_clients() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let port = stack.port();
    let (mut a, mut b, mut c) = (login(port).await, login(port).await, login(port).await);
    let parse = |sql: &str| {
        let mut body = b"\0".to_vec();
        body.extend_from_slice(sql.as_bytes());
        body.extend_from_slice(b"\0\0\0");
        let mut m = message(b'P', &body);
        m.extend(message(b'S', b""));
        m
    };
    let mut bind_execute = message(b'B', b"\0\0\0\0\0\0\0\0");
    bind_execute.extend(message(b'E', b"\0\0\0\0\0"));
    bind_execute.extend(message(b'S', b""));
    let limit = Duration::from_secs(10);

    a.write_all(&parse("SELECT 'A-statement'"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(limit, answer_until_ready(&mut a))
        .await
        .unwrap_or_else(late("A's Parse"));
    b.write_all(&parse("SELECT 'B-statement'"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(limit, answer_until_ready(&mut b))
        .await
        .unwrap_or_else(late("B's Parse"));

    a.write_all(&bind_execute)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = tokio::time::timeout(limit, rows_until_ready(&mut a))
        .await
        .unwrap_or_else(late("A's Bind"));
    assert_eq!(rows, ["A-statement"], "A ran another client's statement");
    b.write_all(&bind_execute)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = tokio::time::timeout(limit, rows_until_ready(&mut b))
        .await
        .unwrap_or_else(late("B's Bind"));
    assert_eq!(rows, ["B-statement"]);

    // A client that never parsed one gets PostgreSQL's error, not the statement the server
    // connection holds.
    c.write_all(&bind_execute)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = tokio::time::timeout(limit, answer_until_ready(&mut c))
        .await
        .unwrap_or_else(late("C's Bind"));
    assert_eq!(error_code(&answer).as_deref(), Some("26000"), "{answer:?}");
    assert!(
        !String::from_utf8_lossy(&answer).contains("-statement"),
        "C got rows of another client's statement"
    );
    // A simple query ends the client's unnamed statement, as on PostgreSQL.
    a.write_all(&message(b'Q', b"SELECT 1\0"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::timeout(limit, answer_until_ready(&mut a))
        .await
        .unwrap_or_else(late("A's Query"));
    a.write_all(&bind_execute)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = tokio::time::timeout(limit, answer_until_ready(&mut a))
        .await
        .unwrap_or_else(late("A's second Bind"));
    assert_eq!(error_code(&answer).as_deref(), Some("26000"), "{answer:?}");
    stack.stop().await;
}

/// A client's SQL DEALLOCATE drops only what that client prepared, by its own names: another
/// client's statement shared on the same server connection keeps working, and a name prepared
/// through the protocol (psycopg's eviction under libpq < 17) can be deallocated in SQL.
#[tokio::test(flavor = "multi_thread")]
async fn sql_deallocate_drops_only_the_clients_own_statements() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let connect = || async {
        let (client, conn) = tokio_postgres::connect(&stack.conn_str(), NoTls)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(conn);
        client
    };
    let (a, b) = (connect().await, connect().await);
    let code = |e: tokio_postgres::Error| e.code().map(|c| c.code().to_owned());
    let plus_one = a
        .prepare("SELECT $1::int + 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let one = |n: i32| {
        let (a, st) = (&a, &plus_one);
        async move { a.query_one(st, &[&n]).await.map(|r| r.get::<_, i32>(0)) }
    };
    assert_eq!(one(1).await.ok(), Some(2));

    // B's DEALLOCATE ALL on the connection A's statement lives on.
    b.simple_query("DEALLOCATE ALL")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        one(2).await.map_err(code),
        Ok(3),
        "B's DEALLOCATE ALL broke A"
    );

    // C deallocates, in SQL, a statement it prepared through the protocol, with the same text
    // as A's: gone for C, as on PostgreSQL, and still there for A.
    let mut c = login(stack.port()).await;
    let mut prepare = message(b'P', b"mine\0SELECT $1::int + 1\0\0\0");
    prepare.extend(message(b'S', b""));
    c.write_all(&prepare)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = answer_until_ready(&mut c).await;
    assert_eq!(error_code(&answer), None, "{answer:?}");
    c.write_all(&message(b'Q', b"DEALLOCATE mine\0"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = answer_until_ready(&mut c).await;
    assert_eq!(
        error_code(&answer),
        None,
        "DEALLOCATE of a protocol-level name: {answer:?}"
    );
    assert!(
        String::from_utf8_lossy(&answer).contains("DEALLOCATE"),
        "{answer:?}"
    );
    let mut bind = b"\0mine\0\0\0\0\x01".to_vec();
    bind.extend_from_slice(&1i32.to_be_bytes());
    bind.extend_from_slice(b"1\0\0");
    let mut run = message(b'B', &bind);
    run.extend(message(b'E', b"\0\0\0\0\0"));
    run.extend(message(b'S', b""));
    c.write_all(&run).await.unwrap_or_else(|e| panic!("{e}"));
    let answer = answer_until_ready(&mut c).await;
    assert_eq!(error_code(&answer).as_deref(), Some("26000"), "{answer:?}");
    assert_eq!(
        one(3).await.map_err(code),
        Ok(4),
        "C's DEALLOCATE of its name broke A"
    );

    // DEALLOCATE ALL drops all of B's own names.
    let other = b
        .prepare("SELECT 5")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    b.simple_query("DEALLOCATE ALL")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gone = b.query_one(&other, &[]).await.map(|r| r.get::<_, i32>(0));
    assert_eq!(gone.map_err(code), Err(Some("26000".to_owned())));
    assert_eq!(one(4).await.map_err(code), Ok(5));
    stack.stop().await;
}

/// When the server ends a client's connection with its own FATAL (here an administrator's
/// pg_terminate_backend), the client gets that one FATAL and then the end of the connection,
/// as from PostgreSQL; not a second FATAL of the proxy's (node-postgres crashed on the second).
#[tokio::test(flavor = "multi_thread")]
async fn a_servers_fatal_reaches_the_client_alone() {
    let stack = ProxyStack::start("").await;
    let mut a = login(stack.port()).await;
    a.write_all(&message(b'Q', b"BEGIN\0"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    answer_until_ready(&mut a).await;
    let (admin, conn) = tokio_postgres::connect(&stack.direct_admin_conn_str(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let killed = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE usename = 'app' AND state = 'idle in transaction'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get::<_, i64>(0);
    assert_eq!(killed, 1);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), a.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|_| panic!("the connection was not closed"))
        .unwrap_or_else(|e| panic!("{e}"));
    let fatals: Vec<Option<String>> = frames(&rest)
        .into_iter()
        .filter(|m| m[0] == b'E')
        .map(sqlstate)
        .collect();
    assert_eq!(fatals, [Some("57P01".to_owned())], "{rest:?}");
    stack.stop().await;
}
