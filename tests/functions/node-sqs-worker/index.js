// An SQS event source mapping's function in Node.js, with the SDK v3 client Lambda's Node.js
// runtime carries: the same contract as tests/functions/python-sqs-worker and rust-sqs-worker.
// "poison" throws (the whole batch fails), "partial-*" is reported in batchItemFailures on its
// first receive, everything else is forwarded to DONE_QUEUE with what the event said of it.
const { SQSClient, GetQueueUrlCommand, SendMessageCommand } = require('@aws-sdk/client-sqs');

const sqs = new SQSClient({});
let doneUrl;

exports.handler = async (event) => {
  doneUrl ??= (await sqs.send(new GetQueueUrlCommand({ QueueName: process.env.DONE_QUEUE || 'done' }))).QueueUrl;
  const batchItemFailures = [];
  for (const r of event.Records) {
    if (r.body === 'poison') {
      throw new Error(`poison message ${r.messageId}`);
    }
    const count = r.attributes.ApproximateReceiveCount;
    if (r.body.startsWith('partial') && count === '1') {
      batchItemFailures.push({ itemIdentifier: r.messageId });
      continue;
    }
    const seen = {
      body: r.body,
      count,
      source: r.eventSource,
      arn: r.eventSourceARN,
      region: r.awsRegion,
      attr: r.messageAttributes.k ? r.messageAttributes.k.stringValue : null,
      md5: r.md5OfBody,
      sent: r.attributes.SentTimestamp,
      receipt: typeof r.receiptHandle === 'string',
    };
    await sqs.send(new SendMessageCommand({ QueueUrl: doneUrl, MessageBody: JSON.stringify(seen) }));
  }
  return { batchItemFailures };
};
