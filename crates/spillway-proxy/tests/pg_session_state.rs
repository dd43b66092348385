//! Session state under transaction pooling: what one client leaves on a shared server connection
//! never reaches the next (sequence values, settings made in DO blocks, temporary objects named
//! by schema), the proxy's record of a connection's settings stays true, and each client's
//! startup parameters are applied (or its login refused with the server's own error).
//!
//! Every test runs through a pool of one server connection, so consecutive clients share it.

use std::time::Duration;

use spillway_testkit::ProxyStack;
use spillway_testkit::pgwire::{
    answer_until_ready, error_code, error_field, frames, login, login_with, message,
    parameter_status, rows_until_ready,
};
use tokio::io::AsyncWriteExt;
use tokio_postgres::{Client, NoTls};

async fn connect(conn_str: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(conn_str, NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    client
}

fn code(e: &tokio_postgres::Error) -> Option<String> {
    e.code().map(|c| c.code().to_owned())
}

/// The first column of the first row of a simple query, as text.
async fn one(c: &Client, sql: &str) -> Result<String, Option<String>> {
    let rows = c.simple_query(sql).await.map_err(|e| code(&e))?;
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .ok_or(None)
}

/// A client that ends: its session's end (and the proxy's reset) is done when a new client can
/// borrow the only server connection and sees it.
async fn close(c: Client) {
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// PostgreSQL keeps the last nextval of each sequence per session: through a pool, the next
/// client on the connection read it with currval/lastval (2 where PostgreSQL raises 55000).
#[tokio::test(flavor = "multi_thread")]
async fn another_clients_sequence_values_do_not_show_through() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let a = connect(&stack.conn_str()).await;
    a.batch_execute("CREATE SEQUENCE IF NOT EXISTS seq_leak")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    one(&a, "SELECT nextval('seq_leak')")
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let b = connect(&stack.conn_str()).await;
    assert_eq!(
        one(&b, "SELECT currval('seq_leak')").await,
        Err(Some("55000".into())),
        "B read A's currval"
    );
    // A advances it again; B, in its next transaction, asks lastval().
    one(&a, "SELECT nextval('seq_leak')")
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        one(&b, "SELECT lastval()").await,
        Err(Some("55000".into())),
        "B read A's lastval"
    );
    // Its own value, read in the transaction that made it, is B's.
    let mine = one(&b, "SELECT nextval('seq_leak'); SELECT currval('seq_leak')").await;
    let again = one(
        &b,
        "BEGIN; SELECT nextval('seq_leak'); SELECT currval('seq_leak'); COMMIT",
    );
    assert!(mine.is_ok() && again.await.is_ok(), "{mine:?}");
    stack.stop().await;
}

/// set_config inside a DO block changed the shared session's search_path for the next client.
#[tokio::test(flavor = "multi_thread")]
async fn a_do_block_that_sets_session_state_pins() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let a = connect(&stack.conn_str()).await;
    let default = one(&a, "SHOW search_path")
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    a.batch_execute("DO $$ BEGIN PERFORM set_config('search_path', 'pg_catalog', false); END $$")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        one(&a, "SHOW search_path").await.as_deref(),
        Ok("pg_catalog")
    );
    close(a).await;
    let b = connect(&stack.conn_str()).await;
    assert_eq!(one(&b, "SHOW search_path").await, Ok(default));
    stack.stop().await;
}

/// Temporary objects created by schema name (pg_temp.t) are temporary: the client pins, and the
/// next one does not find them.
#[tokio::test(flavor = "multi_thread")]
async fn temporary_objects_named_by_schema_pin() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let a = connect(&stack.conn_str()).await;
    a.batch_execute(
        "CREATE TABLE pg_temp.scratch (x int); INSERT INTO pg_temp.scratch VALUES (7); \
         CREATE FUNCTION pg_temp.seven() RETURNS int LANGUAGE sql AS 'SELECT 7'",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        one(&a, "SELECT x + pg_temp.seven() FROM pg_temp.scratch")
            .await
            .as_deref(),
        Ok("14")
    );
    close(a).await;
    let b = connect(&stack.conn_str()).await;
    assert_eq!(
        one(&b, "SELECT count(*) FROM pg_temp.scratch").await,
        Err(Some("42P01".into())),
        "B saw A's temporary table"
    );
    assert_eq!(
        one(&b, "SELECT pg_temp.seven()").await,
        Err(Some("42883".into())),
        "B saw A's temporary function"
    );
    stack.stop().await;
}

/// A client killed inside a transaction that ran SET LOCAL: the proxy's own ROLLBACK puts the
/// setting back, and its record of the connection must follow, or the next client asking for
/// that value is not SET and gets the old one.
#[tokio::test(flavor = "multi_thread")]
async fn the_proxys_own_rollback_keeps_its_record_of_settings_true() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let port = stack.port();
    let (mut a, _) = login_with(port, "app", "app-password", &[("TimeZone", "UTC")])
        .await
        .unwrap_or_else(|e| panic!("login refused: {e:?}"));
    a.write_all(&message(
        b'Q',
        b"BEGIN; SET LOCAL TimeZone = 'Asia/Tokyo'\0",
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let answer = answer_until_ready(&mut a).await;
    assert_eq!(
        parameter_status(&answer, "TimeZone").as_deref(),
        Some("Asia/Tokyo")
    );
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut b, _) = login_with(port, "app", "app-password", &[("TimeZone", "Asia/Tokyo")])
        .await
        .unwrap_or_else(|e| panic!("login refused: {e:?}"));
    b.write_all(&message(b'Q', b"SHOW TimeZone\0"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows_until_ready(&mut b).await, ["Asia/Tokyo"]);
    stack.stop().await;
}

/// Startup parameters beyond the four drivers send, `options` (-c) included, reach the
/// client's session on whatever connection it borrows, and leave with it: a safety timeout
/// dropped silently would be the worst outcome.
#[tokio::test(flavor = "multi_thread")]
async fn startup_parameters_and_options_apply_per_client() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let guarded = format!(
        "{} application_name=reporting options='-c statement_timeout=300 -c search_path=pg_catalog,public'",
        stack.conn_str()
    );
    let a = connect(&guarded).await;
    assert_eq!(
        one(&a, "SHOW statement_timeout").await.as_deref(),
        Ok("300ms")
    );
    assert_eq!(
        one(&a, "SHOW search_path").await.as_deref(),
        Ok("pg_catalog,public")
    );
    assert_eq!(
        one(&a, "SELECT pg_sleep(2)").await,
        Err(Some("57014".into())),
        "statement_timeout did not apply"
    );
    assert_eq!(
        one(
            &a,
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        .await
        .as_deref(),
        Ok("reporting")
    );
    // The next client on the same connection has the server's defaults, and A gets its own
    // back when it borrows again.
    let b = connect(&stack.conn_str()).await;
    assert_eq!(one(&b, "SHOW statement_timeout").await.as_deref(), Ok("0"));
    assert_eq!(
        one(&b, "SHOW search_path").await.as_deref(),
        Ok("\"$user\", public")
    );
    // PostgreSQL's default, not the proxy's name or A's (node-postgres' appname test).
    assert_eq!(one(&b, "SHOW application_name").await.as_deref(), Ok(""));
    assert_eq!(
        one(&a, "SHOW statement_timeout").await.as_deref(),
        Ok("300ms")
    );
    stack.stop().await;
}

/// Values the server refuses fail the login with the server's error, as they would directly;
/// accepted ones are reported as the server spells them.
#[tokio::test(flavor = "multi_thread")]
async fn startup_values_are_checked_and_normalized_by_the_server() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let port = stack.port();
    let refused = |extra: &'static [(&'static str, &'static str)]| async move {
        match login_with(port, "app", "app-password", extra).await {
            Ok(_) => None,
            Err(e) => frames(&e).first().and_then(|m| error_field(m, b'C')),
        }
    };
    assert_eq!(
        refused(&[("TimeZone", "Mars/Olympus_Mons")])
            .await
            .as_deref(),
        Some("22023")
    );
    assert_eq!(
        refused(&[("no_such_parameter", "1")]).await.as_deref(),
        Some("42704")
    );
    assert_eq!(
        refused(&[("options", "-c statement_timeout=soon")])
            .await
            .as_deref(),
        Some("22023")
    );
    assert_eq!(
        refused(&[("options", "-B 100")]).await.as_deref(),
        Some("08P01")
    );
    let (_, answer) = login_with(
        port,
        "app",
        "app-password",
        &[("client_encoding", "utf8"), ("datestyle", "iso, dmy")],
    )
    .await
    .unwrap_or_else(|e| panic!("login refused: {e:?}"));
    assert_eq!(
        parameter_status(&answer, "client_encoding").as_deref(),
        Some("UTF8")
    );
    assert_eq!(
        parameter_status(&answer, "DateStyle").as_deref(),
        Some("ISO, DMY")
    );
    // Nothing of the refused logins stayed on the connection.
    let c = connect(&stack.conn_str()).await;
    assert_eq!(one(&c, "SHOW statement_timeout").await.as_deref(), Ok("0"));
    stack.stop().await;
}

/// A second Parse of a name the client already prepared fails with 42P05, naming the client's
/// statement, and the first statement stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_parse_of_a_name_is_refused_as_postgresql_does() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let mut c = login(stack.port()).await;
    let parse = |sql: &str| {
        let mut body = b"mine\0".to_vec();
        body.extend_from_slice(sql.as_bytes());
        body.extend_from_slice(b"\0\0\0");
        let mut m = message(b'P', &body);
        m.extend(message(b'S', b""));
        m
    };
    c.write_all(&parse("SELECT 'first'"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(error_code(&answer_until_ready(&mut c).await), None);
    c.write_all(&parse("SELECT 'second'"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = answer_until_ready(&mut c).await;
    assert_eq!(error_code(&answer).as_deref(), Some("42P05"), "{answer:?}");
    let text = frames(&answer)
        .into_iter()
        .find(|m| m[0] == b'E')
        .and_then(|m| error_field(m, b'M'));
    assert_eq!(
        text.as_deref(),
        Some("prepared statement \"mine\" already exists")
    );
    let mut run = message(b'B', b"\0mine\0\0\0\0\0\0\0");
    run.extend(message(b'E', b"\0\0\0\0\0"));
    run.extend(message(b'S', b""));
    c.write_all(&run).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows_until_ready(&mut c).await, ["first"]);
    stack.stop().await;
}

/// A named Parse the server refuses makes no statement: the client may parse the name again
/// (node-postgres' "named statement parse error cleans up and allows re-preparation"). The
/// proxy had kept the name, so the corrected Parse got 42P05 and a Bind re-sent the bad one.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_parse_leaves_its_name_free() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let mut c = login(stack.port()).await;
    let parse = |sql: &str| {
        let mut body = b"again\0".to_vec();
        body.extend_from_slice(sql.as_bytes());
        body.extend_from_slice(b"\0\0\0");
        let mut m = message(b'P', &body);
        m.extend(message(b'S', b""));
        m
    };
    c.write_all(&parse("SELECT 1::nonexistent_type_xyz"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        error_code(&answer_until_ready(&mut c).await).as_deref(),
        Some("42704")
    );
    c.write_all(&parse("SELECT 'fixed'"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = answer_until_ready(&mut c).await;
    assert_eq!(error_code(&answer), None, "{answer:?}");
    let mut run = message(b'B', b"\0again\0\0\0\0\0\0\0");
    run.extend(message(b'E', b"\0\0\0\0\0"));
    run.extend(message(b'S', b""));
    c.write_all(&run).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows_until_ready(&mut c).await, ["fixed"]);
    stack.stop().await;
}
