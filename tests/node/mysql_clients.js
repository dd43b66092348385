// MySQL clients of the proxy, in the shapes the field reports use (mysql2/promise).
//   node mysql_clients.js iam-v3 HOST PORT USER REGION DATABASE   report 001: @aws-sdk/rds-signer
//   node mysql_clients.js iam-v2 HOST PORT USER REGION DATABASE   report 004: aws-sdk v2 RDS.Signer
//   node mysql_clients.js prepared HOST PORT USER PASSWORD DATABASE CLIENTS
//   node mysql_clients.js change-user HOST PORT USER PASSWORD OTHER OTHER_PASSWORD DATABASE
// Credentials for the signers come from the usual AWS_* environment variables. Each mode
// prints one JSON line; a failure prints {"error": code, "errno": n, "message": ...}.
const mysql = require("mysql2/promise");

function tls() {
  // The proxy's certificate is the test's own, self-signed: encryption without verification
  // (the report's ssl: 'Amazon RDS' names AWS's CA bundle, which a local proxy cannot use).
  return { rejectUnauthorized: false };
}

async function iam(getToken, host, port, user, database) {
  const token = await getToken();
  const c = await mysql.createConnection({
    host,
    port: Number(port),
    user,
    database,
    ssl: tls(),
    password: token,
    authPlugins: { mysql_clear_password: () => () => getToken() },
  });
  try {
    const [rows] = await c.query("SELECT CURRENT_USER() AS who, DATABASE() AS db, @@ssl_cipher IS NOT NULL AS server_tls");
    return rows[0];
  } finally {
    await c.end();
  }
}

async function prepared(host, port, user, password, database, clients) {
  let ok = 0;
  const work = Array.from({ length: Number(clients) }, async (_, i) => {
    const c = await mysql.createConnection({ host, port: Number(port), user, password, database });
    try {
      for (let k = 0; k < 3; k++) {
        const [rows] = await c.execute("SELECT ? + ? AS s, CONCAT(?, '-', ?) AS t", [i, k, "c" + i, k]);
        if (Number(rows[0].s) !== i + k || rows[0].t !== `c${i}-${k}`) throw new Error(`wrong row ${JSON.stringify(rows[0])}`);
      }
      ok += 1;
    } finally {
      await c.end();
    }
  });
  await Promise.all(work);
  return { ok };
}

// COM_CHANGE_USER (mysql2's changeUser): log in as one user, leave state behind, become another.
async function changeUser(host, port, user, password, other, otherPassword, database) {
  const c = await mysql.createConnection({ host, port: Number(port), user, password, database });
  try {
    await c.query("SET @left = 'behind'");
    await c.changeUser({ user: other, password: otherPassword, database });
    const [rows] = await c.query("SELECT CURRENT_USER() AS who, @left AS left_over");
    let refused = null;
    try {
      await c.changeUser({ user, password: "wrong", database });
    } catch (e) {
      refused = e.errno;
    }
    return { ...rows[0], refused };
  } finally {
    c.destroy();
  }
}

async function main() {
  const [mode, ...a] = process.argv.slice(2);
  let out;
  if (mode === "iam-v3") {
    const [host, port, user, region, database] = a;
    const { Signer } = require("@aws-sdk/rds-signer");
    const signer = new Signer({ hostname: host, port: Number(port), username: user, region });
    out = await iam(() => signer.getAuthToken(), host, port, user, database);
  } else if (mode === "iam-v2") {
    const [host, port, user, region, database] = a;
    const AWS = require("aws-sdk");
    const signer = new AWS.RDS.Signer({ region, hostname: host, port: Number(port), username: user });
    out = await iam(() => Promise.resolve(signer.getAuthToken({})), host, port, user, database);
  } else if (mode === "change-user") {
    out = await changeUser(...a);
  } else if (mode === "prepared") {
    out = await prepared(...a);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: e.code, errno: e.errno, message: e.message }) + "\n");
  process.exit(1);
});
