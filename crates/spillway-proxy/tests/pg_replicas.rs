//! Read-only endpoints and writer failover against a real primary and a real streaming replica
//! (made with pg_basebackup): reads go to the replica, and when the primary goes away and the
//! replica is promoted, a client that asks meanwhile waits and then runs on the new writer.

use std::time::Duration;

use spillway_testkit::{PgReplica, PrivatePostgres, ProxyStack, eventually_async};
use tokio_postgres::NoTls;

async fn connect(port: u16) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=test password=test-password dbname=test"),
        NoTls,
    )
    .await
    .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    tokio::spawn(conn);
    client
}

/// (in recovery, the port of the server that answered).
async fn whereami(c: &tokio_postgres::Client) -> Result<(bool, i32), tokio_postgres::Error> {
    let row = c
        .query_one("SELECT pg_is_in_recovery(), inet_server_port()", &[])
        .await?;
    Ok((row.get(0), row.get(1)))
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_go_to_the_replica_and_the_writer_follows_a_promotion() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let primary = PrivatePostgres::start().await;
    primary.admin_sql("CREATE TABLE t (v int); INSERT INTO t VALUES (1); GRANT ALL ON t TO test");
    let replica = PgReplica::start(&primary).await;
    replica.catch_up(&primary);
    let stack = ProxyStack::start_with_database(
        &format!(
            "engine = \"postgres\"\nurl = \"{}\"\nreplicas = [\"postgres://127.0.0.1:{}/test\"]",
            primary.url(),
            replica.port
        ),
        "test",
        "test-password",
        "connection_borrow_timeout = \"60s\"\n\n\
         [proxies.main.endpoints.reader]\nlisten = \"127.0.0.1:0\"\nrole = \"read-only\"\n",
    )
    .await;

    // Routes: the default endpoint reaches the primary, the read-only one the replica.
    let rw = connect(stack.port()).await;
    let ro = connect(stack.endpoint_port("reader")).await;
    let primary_port = i32::from(primary.port());
    let replica_port = i32::from(replica.port);
    assert!(
        eventually_async(Duration::from_secs(20), || async {
            whereami(&rw).await.ok() == Some((false, primary_port))
        })
        .await,
        "the read-write endpoint should reach the primary"
    );
    assert!(
        eventually_async(Duration::from_secs(20), || async {
            whereami(&ro).await.ok() == Some((true, replica_port))
        })
        .await,
        "the read-only endpoint should reach the replica"
    );
    let v: i32 = ro
        .query_one("SELECT v FROM t", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(v, 1);
    let refused = ro
        .execute("INSERT INTO t VALUES (2)", &[])
        .await
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_owned()));
    assert_eq!(
        refused.as_deref(),
        Some("25006"),
        "a replica refuses writes"
    );

    // The primary goes away: the monitor sees it (the admin view says so), and a client that
    // asks now waits instead of failing.
    primary.stop().await;
    let primary_down = format!("{{\"server\":\"127.0.0.1:{primary_port}\",\"health\":\"down\"}}");
    assert!(
        eventually_async(Duration::from_secs(20), || async {
            stack.pools().await.contains(&primary_down)
        })
        .await,
        "the pools view should show the old primary down: {}",
        stack.pools().await
    );
    let waiting = tokio::spawn(async move {
        let r = whereami(&rw).await;
        (r, rw)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !waiting.is_finished(),
        "with no writer, the client should wait, not fail: {:?}",
        waiting.await.map(|(r, _)| r)
    );

    // Promotion: the waiting client runs on the new writer, and writes work there.
    replica.promote();
    let (answer, rw) = waiting.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        answer.unwrap_or_else(|e| panic!("the waiting client failed: {e}")),
        (false, replica_port)
    );
    rw.execute("INSERT INTO t VALUES (3)", &[])
        .await
        .unwrap_or_else(|e| panic!("write after failover: {e}"));

    stack.stop().await;
    replica.stop().await;
}
