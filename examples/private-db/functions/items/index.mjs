// The function in the private subnet: its login from Secrets Manager, a pg Client to the proxy
// per invocation (as a Lambda that runs a few times a day would), the rows, and how the proxy
// reached the database (inet_server_addr() is NULL over a Unix socket).
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { Client } from 'pg';

const secretArn = process.env.SECRET_ARN || '';
const dbName = process.env.DB_NAME || 'main';
const proxyEndpoint = process.env.PROXY_ENDPOINT || '';
const proxyPort = Number(process.env.PROXY_PORT || 5432);

// AWS_ENDPOINT_URL (set by spillway) points the client at spillway. (In a private subnet on
// AWS this call needs a Secrets Manager VPC endpoint or a NAT gateway; see the README.)
const secretsManager = new SecretsManagerClient({ region: process.env.AWS_REGION });

async function credentials() {
  const response = await secretsManager.send(new GetSecretValueCommand({ SecretId: secretArn }));
  if (!response.SecretString) {
    throw new Error('Secret string is empty');
  }
  return JSON.parse(response.SecretString);
}

export const handler = async () => {
  let client;
  try {
    const { username, password } = await credentials();
    client = new Client({ host: proxyEndpoint, port: proxyPort, database: dbName, user: username, password });
    await client.connect();
    const items = await client.query('SELECT id, name FROM items ORDER BY id');
    const server = await client.query(
      "SELECT current_user AS user, current_database() AS database, coalesce(host(inet_server_addr()), 'unix socket') AS via",
    );
    return {
      statusCode: 200,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ items: items.rows, server: server.rows[0] }),
    };
  } catch (error) {
    console.error('Error:', error);
    return {
      statusCode: 500,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: 'Error querying items', error: error instanceof Error ? error.message : 'Unknown error' }),
    };
  } finally {
    if (client) {
      await client.end().catch((err) => console.error('Error closing the connection:', err));
    }
  }
};
