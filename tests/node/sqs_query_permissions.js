// AddPermission and RemovePermission over SQS's query protocol (aws-sdk v2 at 2.1490.0,
// `aws-sdk-query`, whose model sends AWSAccountId.N and ActionName.N).
// Usage: node sqs_query_permissions.js ENDPOINT QUEUE_NAME
const AWS = require('aws-sdk-query');

async function main() {
  const [endpoint, name] = process.argv.slice(2);
  const sqs = new AWS.SQS({ endpoint, region: 'us-east-1', maxRetries: 0 });
  const { QueueUrl } = await sqs.getQueueUrl({ QueueName: name }).promise();
  await sqs
    .addPermission({
      QueueUrl,
      Label: 'q1',
      AWSAccountIds: ['123456789012'],
      Actions: ['SendMessage', 'GetQueueAttributes'],
    })
    .promise();
  const got = await sqs.getQueueAttributes({ QueueUrl, AttributeNames: ['Policy'] }).promise();
  const policy = JSON.parse(got.Attributes.Policy);
  const out = {
    sids: policy.Statement.map((s) => s.Sid),
    actions: policy.Statement[0].Action,
  };
  await sqs.removePermission({ QueueUrl, Label: 'q1' }).promise();
  const after = await sqs.getQueueAttributes({ QueueUrl, AttributeNames: ['All'] }).promise();
  out.policyLeft = 'Policy' in after.Attributes;
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
