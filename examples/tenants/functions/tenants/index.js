// Report 004's tenant data access, for both API stages (the route says which):
//   1. take the tenant id from the query string;
//   2. assume the tenant role with a session policy that names only this tenant (STS);
//   3. proxy_stage: an RDS IAM token from that session (RDS.Signer), used as the password over
//      TLS to the proxy's endpoint (mysql_clear_password);
//      no_proxy_stage: the tenant's password from its own secret, read with that session, and a
//      new TLS connection straight to the database (the report's no-proxy Lambda uses a token
//      against Aurora itself; MariaDB has no AWSAuthenticationPlugin, so the password stands in);
//   4. five random rows of the tenant's 1,000, then close.
// aws-sdk v2 and mysql2, as the report's Lambda. `db_tenant` and `policy_tenant` replay the
// report's edit of the code (user100 reaching for user_database101) without editing it: they
// default to `tenant`, and any mismatch must fail.
const AWS = require("aws-sdk");
const mysql = require("mysql2/promise");

const region = process.env.AWS_REGION;
const accountId = process.env.ACCOUNT_ID;
const user_name = "user";
const database_name = "user_database";
const cluster_endpoint_resource = `arn:aws:rds-db:${region}:${accountId}:dbuser:*/${user_name}`;
const secret_resource = `arn:aws:secretsmanager:${region}:${accountId}:secret:tenant-`;
// aws-sdk v2 does not read AWS_ENDPOINT_URL; spillway sets it (on AWS it is unset).
const endpoint = process.env.AWS_ENDPOINT_URL ? { endpoint: process.env.AWS_ENDPOINT_URL } : {};
const sts = new AWS.STS({ region, ...endpoint });

// The certificates of a local proxy and database are self-signed: encrypt without verifying
// (on AWS, the report passes the RDS CA bundle: ssl: "Amazon RDS").
const ssl = { rejectUnauthorized: false };

function tenantId(value) {
  return /^[0-9]{1,6}$/.test(value || "") ? value : null;
}

async function tenantSession(sessionName, statement) {
  const policy = JSON.stringify({ Version: "2012-10-17", Statement: [statement] });
  const r = await sts
    .assumeRole({ RoleArn: process.env.TENANT_ROLE_ARN, RoleSessionName: sessionName, Policy: policy, DurationSeconds: 900 })
    .promise();
  return new AWS.Credentials(r.Credentials.AccessKeyId, r.Credentials.SecretAccessKey, r.Credentials.SessionToken);
}

async function proxyConnection(tenant_id, policy_tenant, dbUser, database) {
  var resource = cluster_endpoint_resource + policy_tenant;
  const credentials = await tenantSession(`tenant-${tenant_id}`, { Effect: "Allow", Action: "rds-db:connect", Resource: resource });
  const hostname = process.env.PROXY_HOST;
  const port = Number(process.env.PROXY_PORT);
  const signer = new AWS.RDS.Signer({ credentials, region, hostname, port, username: dbUser });
  const token = signer.getAuthToken({});
  return mysql.createConnection({
    host: hostname,
    port,
    user: dbUser,
    database,
    ssl,
    password: token,
    authPlugins: { mysql_clear_password: () => () => token },
  });
}

async function directConnection(tenant_id, policy_tenant, dbUser, database) {
  // `??????`: the six characters Secrets Manager appends to a secret's name in its ARN.
  var resource = secret_resource + policy_tenant + "-??????";
  const credentials = await tenantSession(`tenant-${tenant_id}`, { Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: resource });
  const secrets = new AWS.SecretsManager({ region, credentials, ...endpoint });
  const secret = await secrets.getSecretValue({ SecretId: `tenant-${tenant_id}` }).promise();
  const { password } = JSON.parse(secret.SecretString);
  return mysql.createConnection({
    host: process.env.DB_HOST,
    port: Number(process.env.DB_PORT),
    user: dbUser,
    database,
    ssl,
    password,
  });
}

function fiveRandomIds() {
  const ids = new Set();
  while (ids.size < 5) ids.add(1 + Math.floor(Math.random() * 1000));
  return [...ids];
}

exports.handler = async (event) => {
  const q = event.queryStringParameters || {};
  // tenant id
  var tenant_id = tenantId(q.tenant);
  var db_tenant = q.db_tenant === undefined ? tenant_id : tenantId(q.db_tenant);
  var policy_tenant = q.policy_tenant === undefined ? tenant_id : tenantId(q.policy_tenant);
  if (tenant_id === null || db_tenant === null || policy_tenant === null) {
    return { statusCode: 400, body: JSON.stringify({ message: "tenant must be a number" }) };
  }
  var dbUser = user_name + tenant_id;
  // database
  var database = database_name + db_tenant;
  const direct = (event.rawPath || "").endsWith("/no_proxy_stage");

  var where_clause = `(${fiveRandomIds().join(",")})`;
  // @@server_id says which server answered: a reader behind the read-only endpoint, or the writer.
  var query = `SELECT *, @@server_id AS server_id FROM mytable WHERE ID IN ${where_clause};`;
  let connection;
  try {
    connection = direct
      ? await directConnection(tenant_id, policy_tenant, dbUser, database)
      : await proxyConnection(tenant_id, policy_tenant, dbUser, database);
    const [rows] = await connection.query(query);
    return {
      statusCode: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant: Number(tenant_id), database, rows }),
    };
  } catch (e) {
    // The report's answer ("Internal Server Error"), with the MySQL error's number so a caller
    // can tell a refusal (1044, 1045) from anything else; the whole error goes to the log.
    console.log("Error:", e.message);
    return {
      statusCode: 500,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message: "Internal Server Error", errno: e.errno || null, code: e.code || null }),
    };
  } finally {
    if (connection) await connection.end().catch(() => connection.destroy());
  }
};
