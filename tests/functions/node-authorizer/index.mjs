// A Lambda authorizer for HTTP APIs (simple responses) and REST APIs (IAM policies): the
// caller is let in when its Authorization header is `let-me-in`, and its identity goes on to
// the route's function in the context.
let calls = 0;

export const handler = async (event) => {
  calls += 1;
  const token = (event.headers || {}).authorization || (event.headers || {}).Authorization;
  const ok = token === 'let-me-in';
  const context = { user: 'user-1', calls };
  if (event.version === '2.0' && !event.methodArn) {
    return { isAuthorized: ok, context };
  }
  return {
    principalId: 'user-1',
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: ok ? 'Allow' : 'Deny', Resource: event.methodArn || event.routeArn }],
    },
    context,
  };
};
