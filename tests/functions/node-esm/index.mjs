// An ES module handler, async style: answers with the event, what the context says, and how
// many times this instance has run (module state survives between warm invocations).
let invocations = 0;

export const handler = async (event, context) => {
  invocations += 1;
  console.log('esm handler got', JSON.stringify(event));
  if (event.fail) {
    throw new TypeError(`asked to fail: ${event.fail}`);
  }
  if (event.crash) {
    setTimeout(() => { throw new Error('escaped the handler'); }, 0);
    await new Promise((r) => setTimeout(r, 1000));
  }
  return {
    style: 'esm-async',
    event,
    invocations,
    requestId: context.awsRequestId,
    remainingMs: context.getRemainingTimeInMillis(),
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
    region: process.env.AWS_REGION,
    greeting: process.env.GREETING,
  };
};
