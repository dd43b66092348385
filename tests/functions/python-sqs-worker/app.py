# An SQS event source mapping's function: a record whose body is "poison" fails the whole
# batch (an exception); a "partial-*" record is reported in batchItemFailures on its first
# receive; every other record is forwarded to the "done" queue with what the event said of it.
import json

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    done = sqs.get_queue_url(QueueName="done")["QueueUrl"]
    failures = []
    for r in event["Records"]:
        body = r["body"]
        if body == "poison":
            raise RuntimeError("poison message")
        count = r["attributes"]["ApproximateReceiveCount"]
        if body.startswith("partial") and count == "1":
            failures.append({"itemIdentifier": r["messageId"]})
            continue
        sqs.send_message(
            QueueUrl=done,
            MessageBody=json.dumps(
                {
                    "body": body,
                    "count": count,
                    "source": r["eventSource"],
                    "arn": r["eventSourceARN"],
                    "attr": r["messageAttributes"].get("k", {}).get("stringValue"),
                    "md5": r["md5OfBody"],
                    "region": r["awsRegion"],
                    "sent": r["attributes"]["SentTimestamp"],
                    "receipt": isinstance(r["receiptHandle"], str),
                }
            ),
        )
    return {"batchItemFailures": failures}
