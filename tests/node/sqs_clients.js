// SQS through the JavaScript SDKs: aws-sdk v2 at 2.1490.0 (`aws-sdk-query`, the last SQS
// model on the query protocol; v2 verifies MD5s of bodies and attributes by default), aws-sdk
// v2 at its newest (JSON 1.0, with Content-Type left unsigned as that SDK does) and
// @aws-sdk/client-sqs v3 (JSON 1.0).
// Usage: node sqs_clients.js ENDPOINT QUEUE_NAME
// Prints one JSON line with what each step saw.
const AWSv2 = require('aws-sdk-query');
const AWSv2json = require('aws-sdk');
const {
  SQSClient,
  GetQueueUrlCommand,
  SendMessageCommand,
  ReceiveMessageCommand,
  DeleteMessageBatchCommand,
} = require('@aws-sdk/client-sqs');

async function main() {
  const [endpoint, name] = process.argv.slice(2);
  const out = {};
  const v2 = new AWSv2.SQS({ endpoint, region: 'us-east-1', maxRetries: 0 });
  const { QueueUrl } = await v2.getQueueUrl({ QueueName: name }).promise();
  out.v2url = QueueUrl.endsWith(`/${name}`);
  const sent = await v2
    .sendMessage({
      QueueUrl,
      MessageBody: 'from v2 & <query>',
      MessageAttributes: {
        n: { DataType: 'Number', StringValue: '7' },
        bin: { DataType: 'Binary', BinaryValue: Buffer.from([0, 1, 2, 255]) },
      },
    })
    .promise();
  out.v2sent = Boolean(sent.MessageId && sent.MD5OfMessageAttributes);
  const got = await v2
    .receiveMessage({ QueueUrl, MessageAttributeNames: ['All'], AttributeNames: ['All'], WaitTimeSeconds: 2 })
    .promise();
  const m = got.Messages[0];
  out.v2body = m.Body;
  out.v2bin = Buffer.from(m.MessageAttributes.bin.BinaryValue).toString('hex');
  out.v2count = m.Attributes.ApproximateReceiveCount;
  try {
    await v2.getQueueUrl({ QueueName: 'no-such-queue' }).promise();
    out.v2missing = 'ok';
  } catch (e) {
    out.v2missing = e.code;
  }
  await v2.deleteMessage({ QueueUrl, ReceiptHandle: m.ReceiptHandle }).promise();

  const v2json = new AWSv2json.SQS({ endpoint, region: 'us-east-1', maxRetries: 0 });
  const j = await v2json
    .sendMessage({ QueueUrl, MessageBody: 'v2 json', MessageAttributes: { a: { DataType: 'String', StringValue: 'x' } } })
    .promise();
  const jr = await v2json.receiveMessage({ QueueUrl, WaitTimeSeconds: 2, MessageAttributeNames: ['All'] }).promise();
  out.v2json = [Boolean(j.MD5OfMessageAttributes), jr.Messages[0].Body];
  await v2json.deleteMessage({ QueueUrl, ReceiptHandle: jr.Messages[0].ReceiptHandle }).promise();

  const v3 = new SQSClient({ endpoint, region: 'us-east-1', maxAttempts: 1 });
  const url3 = (await v3.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
  for (const body of ['a', 'b']) {
    await v3.send(new SendMessageCommand({
      QueueUrl: url3,
      MessageBody: body,
      MessageAttributes: { k: { DataType: 'String', StringValue: body } },
    }));
  }
  const r = await v3.send(new ReceiveMessageCommand({
    QueueUrl: url3, MaxNumberOfMessages: 10, WaitTimeSeconds: 2, MessageAttributeNames: ['All'],
  }));
  out.v3bodies = r.Messages.map((x) => x.Body).sort();
  const del = await v3.send(new DeleteMessageBatchCommand({
    QueueUrl: url3,
    Entries: [
      ...r.Messages.map((x, i) => ({ Id: `m${i}`, ReceiptHandle: x.ReceiptHandle })),
      { Id: 'forged', ReceiptHandle: 'forged' },
    ],
  }));
  out.v3deleted = (del.Successful || []).length;
  out.v3failed = (del.Failed || []).map((f) => `${f.Id}:${f.Code}`);
  try {
    await v3.send(new GetQueueUrlCommand({ QueueName: 'no-such-queue' }));
    out.v3missing = 'ok';
  } catch (e) {
    out.v3missing = e.name;
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
