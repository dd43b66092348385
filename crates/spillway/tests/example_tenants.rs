//! Report 004 end to end, from `examples/tenants` scaled down to 20 tenants (`./tenants 20`,
//! the example's own script): both API stages answer five of the tenant's rows (through the
//! proxy with an IAM token from an STS session narrowed to the tenant, and straight to MariaDB
//! over TLS with the tenant's secret), the report's cross-tenant edit fails with MySQL's own
//! refusals for random pairs, every tenant has its 1,000 rows and reaches no other database,
//! the proxy stage's reads come from the two readers behind the reader endpoint, and a short
//! `spillway loadtest` of the two stages writes Locust's CSV files.

mod common;
#[path = "common/http.rs"]
mod http_client;

use std::path::Path;
use std::process::Command;

use common::{binary, example, generated_password, read_trimmed, stderr, stdout};
use http_client::curl;
use spillway_testkit::{require_tool, up_in_process};

const TENANTS: u64 = 20;
const PAIRS: usize = 30;

/// The example listens on the documented ports; the test's copy takes free ones. The reader
/// endpoint's port is written out twice (its listener and the function's PROXY_PORT).
fn on_free_ports(toml: &str) -> String {
    let reader = spillway_testkit::free_port().to_string();
    assert!(
        toml.matches("\"127.0.0.1:6034\"").count() == 1 && toml.contains("PROXY_PORT = \"6034\"")
    );
    toml.replace("\"127.0.0.1:6034\"", &format!("\"127.0.0.1:{reader}\""))
        .replace(
            "PROXY_PORT = \"6034\"",
            &format!("PROXY_PORT = \"{reader}\""),
        )
        .replace("[stack]\n", "[stack]\nendpoint = \"127.0.0.1:0\"\n")
        .replace(
            "[proxies.main]\n",
            "[proxies.main]\nlisten = \"127.0.0.1:0\"\n",
        )
        .replace(
            "[apis.tenants]\n",
            "[apis.tenants]\nlisten = \"127.0.0.1:0\"\n",
        )
}

/// A small xorshift generator: random pairs that differ from run to run, with the seed printed
/// so that a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn from_clock() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("random tenants from seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// Two different tenants.
    fn pair(&mut self) -> (u64, u64) {
        let a = self.below(TENANTS);
        let b = (a + 1 + self.below(TENANTS - 1)) % TENANTS;
        (a, b)
    }
}

/// `mariadb -N -e SQL` against the managed server's TCP port as `user`.
fn mariadb(dir: &Path, user: &str, password: &str, db: Option<&str>, sql: &str) -> (bool, String) {
    let port = read_trimmed(&dir.join(".spillway/databases/main/port"));
    let mut cmd = Command::new(require_tool("mariadb", "mariadb-client"));
    cmd.args(["--no-defaults", "-h", "127.0.0.1", "-P", &port, "-u", user])
        .args(["--ssl", "--skip-ssl-verify-server-cert", "-N", "-e", sql])
        .env("MYSQL_PWD", password);
    if let Some(db) = db {
        cmd.arg(db);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("mariadb: {e}"));
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_reach_their_own_rows_through_both_stages_and_nothing_else() {
    let dir = example("tenants");
    let script = dir.path().join("tenants");
    let out = Command::new(require_tool("bash", "bash"))
        .arg(&script)
        .arg(TENANTS.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let stack = dir.path().join("spillway.toml");
    let text = std::fs::read_to_string(&stack).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("\"tenant-19\"") && !text.contains("\"tenant-20\""));
    std::fs::write(&stack, on_free_ports(&text)).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let api = running
        .api_addr("tenants")
        .unwrap_or_else(|| panic!("no api"));
    let get = |path: String| async move { curl(&[&format!("http://{api}{path}")]).await };
    let mut rng = Rng::from_clock();

    // Both stages, random tenants: five distinct rows of the tenant's own table.
    let mut servers = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let tenant = rng.below(TENANTS);
        for stage in ["proxy_stage", "no_proxy_stage"] {
            let a = get(format!("/{stage}?tenant={tenant}")).await;
            assert_eq!(a.status, 200, "{stage} {tenant}: {}", a.text());
            let body = a.json();
            assert_eq!(
                body["database"].as_str(),
                Some(format!("user_database{tenant}").as_str())
            );
            let mut ids: Vec<u64> = body["rows"]
                .as_array()
                .map(|rows| rows.iter().filter_map(|r| r["ID"].as_u64()).collect())
                .unwrap_or_default();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 5, "{stage} {tenant}: {body}");
            assert!(ids.iter().all(|id| (1..=1000).contains(id)), "{body}");
            for column in ["A", "B", "C", "D", "E"] {
                assert!(body["rows"][0][column].is_i64(), "{body}");
            }
            // Which server answered: the primary is server 1, readers 101 and 102.
            let server = body["rows"][0]["server_id"].as_u64().unwrap_or(0);
            if stage == "proxy_stage" {
                servers.insert(server);
            } else {
                assert_eq!(server, 1, "the direct path reads the primary: {body}");
            }
        }
    }
    // A reader the topology monitor has not yet seen healthy gets no connections; give it
    // time (bounded) rather than a fixed number of requests.
    for _ in 0..30 {
        if servers.len() > 1 || servers.contains(&1) {
            break;
        }
        let a = get(format!("/proxy_stage?tenant={}", rng.below(TENANTS))).await;
        assert_eq!(a.status, 200, "{}", a.text());
        servers.insert(a.json()["rows"][0]["server_id"].as_u64().unwrap_or(0));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        servers,
        std::collections::BTreeSet::from([101, 102]),
        "the reader endpoint spreads connections over both readers, never the writer"
    );

    // The report's edit, for random pairs: user A's credentials aimed at B's database (the
    // server refuses the database, 1044), and an RDS token from a session whose policy names
    // B (the proxy refuses the login, 1045). The direct path's session may read only B's
    // secret, so A's password is out of reach.
    let errno = |body: &serde_json::Value| body["errno"].as_u64();
    for _ in 0..PAIRS {
        let (a, b) = rng.pair();
        for stage in ["proxy_stage", "no_proxy_stage"] {
            let r = get(format!("/{stage}?tenant={a}&db_tenant={b}")).await;
            assert_eq!(r.status, 500, "{stage} user{a} to user_database{b}");
            assert_eq!(
                errno(&r.json()),
                Some(1044),
                "{stage} {a}->{b}: {}",
                r.text()
            );
        }
        let r = get(format!("/proxy_stage?tenant={a}&policy_tenant={b}")).await;
        assert_eq!(r.status, 500);
        assert_eq!(
            errno(&r.json()),
            Some(1045),
            "{a} with {b}'s policy: {}",
            r.text()
        );
        let r = get(format!("/no_proxy_stage?tenant={a}&policy_tenant={b}")).await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.json()["code"].as_str(),
            Some("AccessDeniedException"),
            "{a} reading its secret with {b}'s policy: {}",
            r.text()
        );
    }
    let log = std::fs::read_to_string(dir.path().join(".spillway/logs/functions/tenants.log"))
        .unwrap_or_default();
    assert!(
        log.contains("Error: Access denied for user 'user")
            && log.contains("' to database 'user_database"),
        "the function logs the report's error line"
    );

    // Every tenant has its 1,000 rows; its login reaches its own database only, not the
    // stack's own one (spillway's grant there is taken back by the init file).
    let root = read_trimmed(&dir.path().join(".spillway/databases/main/admin-password"));
    let counts: String = (0..TENANTS)
        .map(|i| format!("SELECT COUNT(*) FROM user_database{i}.mytable;"))
        .collect();
    let (ok, out) = mariadb(dir.path(), "root", &root, None, &counts);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["1000"; TENANTS as usize]
    );
    let (a, b) = rng.pair();
    let password = generated_password(dir.path(), &format!("tenant-{a}"));
    let user = format!("user{a}");
    let (ok, out) = mariadb(dir.path(), &user, &password, None, "SHOW DATABASES");
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["information_schema".to_owned(), format!("user_database{a}")],
        "{user} sees only its own database"
    );
    for db in ["tenants".to_owned(), format!("user_database{b}")] {
        let (ok, out) = mariadb(dir.path(), &user, &password, Some(&db), "SELECT 1");
        assert!(!ok && out.contains("ERROR 1044"), "{user} into {db}: {out}");
    }

    // A short load test of both stages, as the README runs it: no failures, Locust's files.
    let tasks = std::fs::read_to_string(dir.path().join("loadtest.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .replace("\"0..199\"", &format!("\"0..{}\"", TENANTS - 1));
    let tasks_file = dir.path().join("loadtest-ci.toml");
    std::fs::write(&tasks_file, tasks).unwrap_or_else(|e| panic!("{e}"));
    let csv = dir.path().join("run");
    let host = format!("http://{api}");
    let (tasks_arg, csv_arg, stack_arg) = (
        tasks_file.display().to_string(),
        csv.display().to_string(),
        dir.path().display().to_string(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .args(["loadtest", "-H", &host, "-f", &tasks_arg])
            .args(["-u", "4", "-r", "4", "-t", "10s", "--wait", "100ms..300ms"])
            .args(["--compare", "proxy,no_proxy", "--stack", &stack_arg])
            .args(["--csv", &csv_arg, "--only-summary"])
            .env("NO_COLOR", "1")
            .output()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("loadtest: {e}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let stats = std::fs::read_to_string(dir.path().join("run_stats.csv"))
        .unwrap_or_else(|e| panic!("run_stats.csv: {e}"));
    for task in ["proxy", "no_proxy"] {
        let row = stats
            .lines()
            .find(|l| l.starts_with(&format!("GET,{task},")))
            .unwrap_or_else(|| panic!("no {task} row in {stats}"));
        let requests: u64 = row
            .split(',')
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(requests > 0, "{row}");
    }
    for file in ["run_stats_history.csv", "run_failures.csv"] {
        assert!(dir.path().join(file).is_file(), "{file}");
    }

    running.shutdown().await;
}
