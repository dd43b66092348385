// Prints an RDS IAM auth token made by @aws-sdk/rds-signer, as a Lambda function in report 001
// makes one. Credentials come from the usual AWS_* environment variables.
//   node rds_token.js HOST PORT USER REGION
const { Signer } = require("@aws-sdk/rds-signer");

async function main() {
  const [hostname, port, username, region] = process.argv.slice(2);
  const signer = new Signer({ hostname, port: Number(port), username, region });
  process.stdout.write(await signer.getAuthToken());
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
