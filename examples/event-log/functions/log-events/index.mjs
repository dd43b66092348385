// Report 002's handler, as the report writes it, on the AWS SDK v3 (the report's
// `aws-sdk` v2 is not on Lambda's current Node.js runtimes): the DocumentClient from
// @aws-sdk/lib-dynamodb, one function for both routes, switching on the route key.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand, PutCommand } from '@aws-sdk/lib-dynamodb';

// AWS_ENDPOINT_URL (set by spillway) points the client at spillway; AWS_REGION and the
// role's credentials come from the environment, as on Lambda.
const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({}));

const tableName = process.env.TABLE_NAME || 'EventLog';

export const handler = async (event, context) => {
  let body;
  let statusCode = 200;
  const headers = {
    'Content-Type': 'application/json',
  };

  try {
    switch (event.routeKey) {
      case 'GET /events':
        body = await dynamo.send(new ScanCommand({ TableName: tableName }));
        // v2's scan().promise() answered the bare output; v3 adds its $metadata.
        delete body.$metadata;
        break;
      case 'POST /events': {
        const requestJSON = JSON.parse(event.body);
        await dynamo.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              date: requestJSON.date,
              time: requestJSON.time,
              userId: requestJSON.userId,
              eventType: requestJSON.eventType,
            },
          }),
        );
        body = `Put item ${requestJSON.userId}`;
        break;
      }
      default:
        throw new Error(`Unsupported route: "${event.routeKey}"`);
    }
  } catch (err) {
    statusCode = 400;
    body = err.message;
  } finally {
    body = JSON.stringify(body);
  }

  return {
    statusCode,
    body,
    headers,
  };
};
