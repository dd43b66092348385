// SQS's message move tasks (and QueueDeletedRecently) over the query protocol: aws-sdk v2 at 2.1490.0 (`aws-sdk-query`,
// the last SQS model on the query protocol), which parses the XML answers by that model.
// Usage: node sqs_query_move_tasks.js ENDPOINT DLQ_ARN DESTINATION_ARN
// Prints one JSON line with what each step saw.
const AWS = require('aws-sdk-query');

async function code(p) {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e.code;
  }
}

async function main() {
  const [endpoint, dlqArn, destinationArn] = process.argv.slice(2);
  const sqs = new AWS.SQS({ endpoint, region: 'us-east-1', maxRetries: 0 });
  const out = {};
  const { TaskHandle } = await sqs
    .startMessageMoveTask({
      SourceArn: dlqArn,
      DestinationArn: destinationArn,
      MaxNumberOfMessagesPerSecond: 1,
    })
    .promise();
  out.handle = JSON.parse(Buffer.from(TaskHandle, 'base64').toString()).sourceArn === dlqArn;
  const listed = await sqs.listMessageMoveTasks({ SourceArn: dlqArn, MaxResults: 10 }).promise();
  const r = listed.Results[0];
  out.listed = [r.Status, r.TaskHandle === TaskHandle, r.MaxNumberOfMessagesPerSecond, typeof r.StartedTimestamp];
  out.again = await code(sqs.startMessageMoveTask({ SourceArn: dlqArn }).promise());
  const cancelled = await sqs.cancelMessageMoveTask({ TaskHandle }).promise();
  out.cancelMoved = typeof cancelled.ApproximateNumberOfMessagesMoved;
  out.badHandle = await code(sqs.cancelMessageMoveTask({ TaskHandle: 'foobared' }).promise());
  out.missing = await code(
    sqs.listMessageMoveTasks({ SourceArn: dlqArn.replace(/:[^:]+$/, ':nope') }).promise(),
  );
  const { QueueUrl } = await sqs.createQueue({ QueueName: 'gone-soon' }).promise();
  await sqs.deleteQueue({ QueueUrl }).promise();
  out.recreate = await code(sqs.createQueue({ QueueName: 'gone-soon' }).promise());
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
