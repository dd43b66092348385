// Report 000's handler, as the report writes it (TypeScript there, JavaScript here): the login
// from Secrets Manager, a pg Client to the proxy per invocation, SELECT * FROM users.
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { Client } from 'pg';

// Environment (set in spillway.toml, as the CDK stack sets it on Lambda).
const secretArn = process.env.SECRET_ARN || '';
const dbName = process.env.DB_NAME || 'demodb';
const proxyEndpoint = process.env.PROXY_ENDPOINT || '';
const proxyPort = Number(process.env.PROXY_PORT || 5432);

// The Secrets Manager client; AWS_ENDPOINT_URL (set by spillway) points it at spillway.
const secretsManager = new SecretsManagerClient({ region: process.env.AWS_REGION });

async function getDbCredentials() {
  const response = await secretsManager.send(new GetSecretValueCommand({ SecretId: secretArn }));
  if (response.SecretString) {
    return JSON.parse(response.SecretString);
  }
  throw new Error('Secret string is empty');
}

export const handler = async (event) => {
  console.log('Received event:', JSON.stringify(event));
  let client;
  try {
    const credentials = await getDbCredentials();
    client = new Client({
      host: proxyEndpoint,
      port: proxyPort,
      database: dbName,
      user: credentials.username,
      password: credentials.password,
    });
    await client.connect();
    console.log('Connected to database via the proxy');
    const result = await client.query('SELECT * FROM users ORDER BY id');
    console.log(`Retrieved ${result.rows.length} users`);
    return {
      statusCode: 200,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ users: result.rows }),
    };
  } catch (error) {
    console.error('Error:', error);
    return {
      statusCode: 500,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        message: 'Error querying users table',
        error: error instanceof Error ? error.message : 'Unknown error',
      }),
    };
  } finally {
    if (client) {
      await client.end().catch((err) => console.error('Error closing database connection:', err));
      console.log('Database connection closed');
    }
  }
};
