// A handler that calls AWS with the credentials Lambda gives it: the SDK finds the session in
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN and spillway in AWS_ENDPOINT_URL,
// and the function's role decides what it may read.
const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');

const client = new SecretsManagerClient({});

exports.handler = async (event) => {
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: event.secret }));
    return { username: JSON.parse(out.SecretString).username };
  } catch (err) {
    return { denied: err.name };
  }
};
