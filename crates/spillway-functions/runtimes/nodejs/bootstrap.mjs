// spillway's Node.js runtime: the Lambda Runtime API loop for a `file.function` handler,
// shipped inside the spillway binary and written to <state>/runtimes/nodejs/ on start.
//
// Like Lambda's own Node.js runtime it loads the handler from LAMBDA_TASK_ROOT as ESM or
// CommonJS (file.js, file.mjs or file.cjs), calls it async or callback style, prefixes console
// output with time, request id and level, and reports failures as
// {"errorType", "errorMessage", "trace"}.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

const [apiHost, apiPort] = (process.env.AWS_LAMBDA_RUNTIME_API || '').split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const BASE = '/2018-06-01/runtime';

function call(method, route, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: apiHost, port: apiPort, method, path: BASE + route, agent, headers },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
    req.on('error', reject);
    req.end(body);
  });
}

let currentRequestId;

// console.* as Lambda prints it: `<ISO time>\t<request id>\t<LEVEL>\t<message>`.
for (const [method, level] of [
  ['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'],
  ['debug', 'DEBUG'], ['trace', 'TRACE'],
]) {
  console[method] = (...args) => {
    const line = `${new Date().toISOString()}\t${currentRequestId ?? 'undefined'}\t${level}\t${format(...args)}\n`;
    (level === 'INFO' ? process.stdout : process.stderr).write(line);
  };
}

function errorDocument(err, fallbackType) {
  if (err instanceof Error) {
    return {
      errorType: err.name || fallbackType,
      errorMessage: err.message,
      trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  return { errorType: fallbackType ?? typeof err, errorMessage: String(err), trace: [] };
}

async function postError(route, doc) {
  const body = JSON.stringify(doc);
  await call('POST', route, body, {
    'content-type': 'application/vnd.aws.lambda.error+json',
    'lambda-runtime-function-error-type': doc.errorType,
  });
}

async function initFailed(doc) {
  console.error(`${doc.errorType}: ${doc.errorMessage}`);
  await postError('/init/error', doc).catch(() => {});
  process.exit(1);
}

async function loadHandler() {
  const spec = process.env._HANDLER || '';
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) {
    return initFailed({ errorType: 'Runtime.MalformedHandlerName', errorMessage: `Bad handler ${spec}`, trace: [] });
  }
  const moduleName = spec.slice(0, dot);
  const fnPath = spec.slice(dot + 1).split('.');
  const file = ['.js', '.mjs', '.cjs']
    .map((ext) => path.resolve(root, moduleName + ext))
    .find((f) => fs.existsSync(f));
  if (!file) {
    return initFailed({
      errorType: 'Runtime.ImportModuleError',
      errorMessage: `Error: Cannot find module '${moduleName}'`,
      trace: [],
    });
  }
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    const doc = errorDocument(err);
    if (err instanceof SyntaxError) doc.errorType = 'Runtime.UserCodeSyntaxError';
    return initFailed(doc);
  }
  const pick = (obj) => fnPath.reduce((o, k) => (o == null ? undefined : o[k]), obj);
  const handler = pick(mod) ?? pick(mod.default);
  if (typeof handler !== 'function') {
    return initFailed({
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: `${spec} is undefined or not exported`,
      trace: [],
    });
  }
  return handler;
}

function context(headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const parse = (h) => {
    if (!h) return undefined;
    try { return JSON.parse(h); } catch { return undefined; }
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parse(headers['lambda-runtime-client-context']),
    identity: parse(headers['lambda-runtime-cognito-identity']),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

// Async handlers return a promise; callback handlers (three parameters) call back, or use the
// legacy context.succeed/fail/done.
function run(handler, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err, result) => {
      if (settled) return;
      settled = true;
      if (err !== undefined && err !== null) reject(err); else resolve(result);
    };
    ctx.done = done;
    ctx.succeed = (result) => done(null, result);
    ctx.fail = (err) => done(err ?? new Error('handled'));
    try {
      const r = handler(event, ctx, done);
      if (r && typeof r.then === 'function') {
        r.then((v) => done(null, v), (e) => done(e ?? new Error('rejected')));
      } else if (handler.length < 3) {
        done(null, r);
      }
    } catch (err) {
      done(err);
    }
  });
}

async function main() {
  const handler = await loadHandler();
  for (;;) {
    const next = await call('GET', '/invocation/next');
    if (next.status !== 200) {
      console.error(`the Runtime API answered next with ${next.status}; exiting`);
      process.exit(1);
    }
    const id = next.headers['lambda-runtime-aws-request-id'];
    currentRequestId = id;
    process.env._X_AMZN_TRACE_ID = next.headers['lambda-runtime-trace-id'] || '';
    let event;
    try {
      event = JSON.parse(next.body.toString('utf8'));
    } catch (err) {
      await postError(`/invocation/${id}/error`, { errorType: 'Runtime.UnmarshalError', errorMessage: err.message, trace: [] });
      continue;
    }
    let result;
    try {
      result = await run(handler, event, context(next.headers));
    } catch (err) {
      const doc = errorDocument(err, 'Error');
      console.error('Invoke Error', JSON.stringify(doc));
      await postError(`/invocation/${id}/error`, doc);
      continue;
    }
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (err) {
      await postError(`/invocation/${id}/error`, {
        errorType: 'Runtime.MarshalError',
        errorMessage: `Unable to stringify response body: ${err.message}`,
        trace: [],
      });
      continue;
    }
    await call('POST', `/invocation/${id}/response`, body ?? 'null', { 'content-type': 'application/json' });
  }
}

// An exception that escapes the handler's promise chain ends the instance, as on Lambda.
for (const event of ['uncaughtException', 'unhandledRejection']) {
  process.on(event, async (err) => {
    const doc = errorDocument(err, event === 'unhandledRejection' ? 'Runtime.UnhandledPromiseRejection' : 'Error');
    console.error(event, JSON.stringify(doc));
    if (currentRequestId) {
      await postError(`/invocation/${currentRequestId}/error`, doc).catch(() => {});
    }
    process.exit(129);
  });
}

main().catch((err) => {
  console.error('spillway bootstrap failed', err);
  process.exit(1);
});
