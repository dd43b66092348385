//! Opens N logged-in connections and holds them idle until stdin closes; prints "ready N" when
//! all are up. For measuring what idle clients cost a pooler (bench/proxy-pg.sh).
//!
//! usage: idle_clients "host=... port=... user=... password=... dbname=..." N

use std::sync::Arc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(conn), Some(n)) = (
        args.next(),
        args.next().and_then(|n| n.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: idle_clients CONNSTR N");
        std::process::exit(2);
    };
    let conn = Arc::new(conn);
    // Log in a few hundred at a time: a storm of 10,000 at once only measures the listen backlog.
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (conn, gate) = (Arc::clone(&conn), Arc::clone(&gate));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.ok()?;
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .ok()?;
            let driver = tokio::spawn(connection);
            Some((client, driver))
        }));
    }
    let mut held = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(Some(c)) = t.await {
            held.push(c);
        }
    }
    println!("ready {}", held.len());
    // Hold until our stdin closes.
    let mut line = String::new();
    let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    drop(held);
}
