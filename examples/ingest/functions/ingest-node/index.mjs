// Report 001's handler, as the report writes it: triggered by the SQS queue, it signs an RDS IAM
// token with @aws-sdk/rds-signer and logs in to the RDS Proxy with mysql2/promise, the token
// sent by the mysql_clear_password plugin. What the report leaves as 〜処理〜〜 is filled in:
// each valid record becomes a users row, each invalid one is named in batchItemFailures (the
// mapping has report_batch_item_failures), so it comes back until the queue moves it to
// data-dlq. The rules are the Rust handler's (functions/ingest/src/record.rs).
import { Signer } from '@aws-sdk/rds-signer';
import mysql2 from 'mysql2/promise';

// The report's RDSConfig, from the environment the stack file sets (as a deployment would).
const RDSConfig = {
  hostname: process.env.PROXY_ENDPOINT || '127.0.0.1',
  username: process.env.DB_USER || 'ingest',
  region: process.env.AWS_REGION,
  database: process.env.DB_NAME || 'ingest',
  port: Number(process.env.PROXY_PORT || 3306),
};

// The SQS message id makes a redelivered message (its batch failed after the row was written)
// a no-op instead of a second row.
const INSERT =
  'INSERT INTO users (message_id, name, email) VALUES (?, ?, ?) ' +
  'ON DUPLICATE KEY UPDATE message_id = message_id';

const MAX_CHARS = 255;

export const handler = async (event) => {
  // No connection is an error of the whole batch: every message returns after the visibility
  // timeout, as the report's `throw e` makes it.
  const connection = await createConnection();
  const batchItemFailures = [];
  let inserted = 0;
  try {
    for (const record of event.Records) {
      try {
        const user = parseUser(record.body);
        await connection.execute(INSERT, [record.messageId, user.name, user.email]);
        inserted += 1;
      } catch (e) {
        console.error(`message ${record.messageId} not stored: ${e.message}`);
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
  } finally {
    await connection.end().catch((e) => console.error('closing the connection:', e.message));
  }
  console.log(`stored ${inserted}, refused ${batchItemFailures.length}`);
  return { batchItemFailures };
};

// The report's record, {"name": "...", "email": "..."}, both text that fits VARCHAR(255).
function parseUser(body) {
  let value;
  try {
    value = JSON.parse(body);
  } catch (e) {
    throw new Error(`the body is not JSON: ${e.message}`);
  }
  const text = (key) => {
    const raw = value !== null && typeof value === 'object' ? value[key] : undefined;
    if (typeof raw !== 'string') throw new Error(`\`${key}\` is missing or not a string`);
    const s = raw.trim();
    if (s === '') throw new Error(`\`${key}\` is empty`);
    // Characters, not UTF-16 units, as MariaDB counts them.
    if (Array.from(s).length > MAX_CHARS) {
      throw new Error(`\`${key}\` is longer than ${MAX_CHARS} characters`);
    }
    return s;
  };
  const name = text('name');
  const email = text('email');
  if (!looksLikeEmail(email)) throw new Error(`\`email\` is not an address: ${JSON.stringify(email)}`);
  return { name, email };
}

// One @ with something on both sides, a dot in the domain, no spaces: enough to refuse typing
// mistakes without claiming to check deliverability.
function looksLikeEmail(s) {
  const at = s.indexOf('@');
  if (at <= 0 || /\s/u.test(s)) return false;
  const domain = s.slice(at + 1);
  const dot = domain.indexOf('.');
  if (domain.includes('@') || dot <= 0) return false;
  const rest = domain.slice(dot + 1);
  return rest !== '' && !rest.endsWith('.');
}

// The report's createConnection: a signer per connection, its token as the password, and the
// plugin that sends it when the proxy switches to mysql_clear_password. The report's
// `ssl: 'Amazon RDS'` names AWS's CA bundle, which a local proxy cannot present: the stack's
// proxy allows clear text from loopback instead (allow_cleartext_on_loopback).
async function createConnection() {
  const signer = new Signer({
    region: RDSConfig.region,
    hostname: RDSConfig.hostname,
    port: RDSConfig.port,
    username: RDSConfig.username,
  });
  const token = await signer.getAuthToken({ username: RDSConfig.username });
  const config = {
    host: RDSConfig.hostname,
    port: RDSConfig.port,
    user: RDSConfig.username,
    database: RDSConfig.database,
    password: token,
    authPlugins: { mysql_clear_password: () => () => signer.getAuthToken() },
  };
  return mysql2.createConnection(config);
}
