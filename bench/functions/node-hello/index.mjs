// The Node.js hello world of bench/functions.sh: the same answer as the Rust quickstart function.
export const handler = async (event) => ({ hello: event.name });
