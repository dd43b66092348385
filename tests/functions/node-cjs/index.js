// A CommonJS handler, callback style (three parameters), as older Lambda code is written.
exports.handler = function (event, context, callback) {
  console.log('cjs handler got', JSON.stringify(event));
  if (event.fail) {
    callback(new Error(`callback error: ${event.fail}`));
    return;
  }
  setTimeout(() => {
    callback(null, { style: 'cjs-callback', name: event.name, requestId: context.awsRequestId });
  }, 5);
};

exports.nested = { deeper: async (event) => ({ nested: true, event }) };
