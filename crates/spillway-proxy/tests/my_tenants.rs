//! Report 004's tenant model, five times over: 1,000 users behind one proxy, each with its own
//! secret and database (RDS Proxy stops at 200 secrets). Every tenant logs in to its own
//! database; random cross-tenant pairs — at login and by `USE` afterwards — are refused with
//! MySQL's own errors, and nothing of one tenant's session reaches another's.

mod mysql_common;

use mysql_common::*;

const TENANTS: usize = 1000;

const SCRIPT: &str = r#"
import json, random, sys, pymysql
port, tenants = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(4)
def connect(i, db, password=None):
    return pymysql.connect(host="127.0.0.1", port=port, user=f"user{i}",
                           password=password or f"pw-{i}", database=db, autocommit=True)
out = {"own": 0, "cross_login": {}, "cross_use": {}, "wrong_password": {}}
for _ in range(120):
    i = rng.randrange(tenants)
    j = rng.randrange(tenants)
    while j == i:
        j = rng.randrange(tenants)
    c = connect(i, f"user_database{i}")
    with c.cursor() as cur:
        cur.execute("SELECT tenant FROM mytable")
        if cur.fetchone()[0] == i:
            out["own"] += 1
        try:
            cur.execute(f"USE user_database{j}")
            out["cross_use"]["none"] = out["cross_use"].get("none", 0) + 1
        except pymysql.MySQLError as e:
            out["cross_use"][str(e.args[0])] = out["cross_use"].get(str(e.args[0]), 0) + 1
    c.close()
    try:
        connect(i, f"user_database{j}").close()
        out["cross_login"]["none"] = out["cross_login"].get("none", 0) + 1
    except pymysql.MySQLError as e:
        out["cross_login"][str(e.args[0])] = out["cross_login"].get(str(e.args[0]), 0) + 1
    try:
        connect(i, f"user_database{i}", password=f"pw-{j}").close()
        out["wrong_password"]["none"] = out["wrong_password"].get("none", 0) + 1
    except pymysql.MySQLError as e:
        out["wrong_password"][str(e.args[0])] = out["wrong_password"].get(str(e.args[0]), 0) + 1
print(json.dumps(out, sort_keys=True))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_tenants_each_reach_only_their_own_database() {
    let secrets: Vec<(String, String, String)> = (0..TENANTS)
        .map(|i| (format!("t{i}"), format!("user{i}"), format!("pw-{i}")))
        .collect();
    let refs: Vec<(&str, &str, &str)> = secrets
        .iter()
        .map(|(s, u, p)| (s.as_str(), u.as_str(), p.as_str()))
        .collect();
    let stack = stack(&refs, "max_connections = 20", "").await;
    let mut sql = String::new();
    for i in 0..TENANTS {
        sql.push_str(&format!(
            "CREATE DATABASE user_database{i}; \
             CREATE TABLE user_database{i}.mytable (tenant INT); \
             INSERT INTO user_database{i}.mytable VALUES ({i}); \
             GRANT ALL PRIVILEGES ON user_database{i}.* TO 'user{i}'@'%';\n"
        ));
    }
    admin(&stack, &sql);
    let out = python(SCRIPT, &[&stack.port().to_string(), &TENANTS.to_string()]);
    assert_eq!(
        out,
        r#"{"cross_login": {"1044": 120}, "cross_use": {"1044": 120}, "own": 120, "wrong_password": {"1045": 120}}"#
    );
    // Twenty server connections at most, for all of them.
    let open: usize = admin(
        &stack,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE 'user%'",
    )
    .parse()
    .unwrap_or(usize::MAX);
    assert!(open <= 20, "{open} server connections for a cap of 20");
    stack.stop().await;
}
