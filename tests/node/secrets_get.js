// Reads a secret with @aws-sdk/client-secrets-manager, as report 000's Lambda function does.
// Credentials come from the AWS_* environment variables.
//   node secrets_get.js ENDPOINT SECRET_ID
const { SecretsManagerClient, GetSecretValueCommand } = require("@aws-sdk/client-secrets-manager");

async function main() {
  const [endpoint, secretId] = process.argv.slice(2);
  const client = new SecretsManagerClient({ endpoint, region: "us-east-1" });
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
  process.stdout.write(out.SecretString);
}

main().catch((e) => {
  console.error(`${e.name}: ${e.message}`);
  process.exit(1);
});
