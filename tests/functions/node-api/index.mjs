// An API Gateway proxy handler in the style people write them: it answers with the event it
// got (so tests can check it field by field), or, by the `mode` query parameter, with the
// other answer shapes API Gateway maps.
export const handler = async (event) => {
  const q = event.queryStringParameters || {};
  switch (q.mode) {
    case 'inferred':
      // Payload 2.0 without statusCode: API Gateway answers 200 application/json.
      return { inferred: true, path: event.rawPath };
    case 'string':
      return 'just a string';
    case 'cookies':
      return { statusCode: 201, cookies: ['a=1; Path=/', 'b=2'], headers: { 'x-from': 'node' }, body: 'with cookies' };
    case 'binary':
      return { statusCode: 200, headers: { 'content-type': 'application/octet-stream' }, isBase64Encoded: true, body: Buffer.from([0, 1, 2, 255]).toString('base64') };
    case 'multi':
      return { statusCode: 200, multiValueHeaders: { 'x-multi': ['one', 'two'] }, body: 'multi' };
    case 'malformed':
      return { statusCode: 'not a status', body: { not: 'a string' } };
    case 'throw':
      throw new Error('the handler failed on purpose');
    case 'sleep':
      await new Promise((r) => setTimeout(r, Number(q.ms || 3000)));
      return { statusCode: 200, body: 'slept' };
    case 'cors':
      return { statusCode: 200, headers: { 'access-control-allow-origin': 'https://backend.example' }, body: 'cors' };
    default:
      return {
        statusCode: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event),
      };
  }
};
