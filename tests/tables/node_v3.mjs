// AWS SDK for JavaScript v3 against an endpoint: @aws-sdk/client-dynamodb (tables, waiter) and
// @aws-sdk/lib-dynamodb's DynamoDBDocumentClient (put, get, query, update, batchWrite, transactWrite,
// paginateQuery) with JS number, Set, binary and big-number marshalling.
//
// Usage: node node_v3.mjs ENDPOINT_URL [--skip transactions]   (or env SKIP=transactions)
// The SDK is installed in ../node (npm ci there); it is loaded from that directory.
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'

const require = createRequire(new URL('../node/package.json', import.meta.url))
const {
  DynamoDBClient,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
} = require('@aws-sdk/client-dynamodb')
const {
  DynamoDBDocumentClient,
  PutCommand,
  GetCommand,
  QueryCommand,
  UpdateCommand,
  BatchWriteCommand,
  TransactWriteCommand,
  paginateQuery,
  NumberValue,
} = require('@aws-sdk/lib-dynamodb')

const endpoint = process.argv[2]
if (!endpoint) {
  console.error('usage: node node_v3.mjs ENDPOINT_URL [--skip group,...]')
  process.exit(2)
}
const skipArg = process.argv.indexOf('--skip')
const skip = new Set(
  [process.env.SKIP ?? '', skipArg > 0 ? process.argv[skipArg + 1] : '']
    .join(',').split(',').map(s => s.trim()).filter(Boolean))

let checks = 0
// KEEP_GOING=1 reports every failed check and exits 1 at the end, to see all divergences in one run.
const keepGoing = process.env.KEEP_GOING === '1'
const failed = []
function fail (name, detail) {
  console.error(`FAIL ${name}: ${detail}`)
  if (!keepGoing) process.exit(1)
  failed.push(name)
}
function check (name, condition, detail = 'condition false') {
  if (!condition) return fail(name, detail)
  checks++
}
function finish () {
  if (failed.length) {
    console.error(`FAILED ${failed.length} checks: ${failed.join(', ')}`)
    process.exit(1)
  }
  console.log(`ok ${checks} checks`)
}
function equal (name, actual, expected) {
  const a = JSON.stringify(actual, jsonSets)
  const e = JSON.stringify(expected, jsonSets)
  check(name, a === e, `expected ${e}, got ${a}`)
}
// Sets compare by sorted contents so check output says what they held.
function jsonSets (_key, value) {
  if (value instanceof Set) return { Set: [...value].sort() }
  if (value instanceof Uint8Array) return { Bytes: [...value] }
  return value
}
async function expectError (name, errorName, call) {
  try {
    await call()
  } catch (err) {
    check(name, err.name === errorName, `expected ${errorName}, got ${err.name}: ${err.message}`)
    return err
  }
  fail(name, `expected ${errorName}, call succeeded`)
  return { $metadata: {} }
}

const region = process.env.AWS_DEFAULT_REGION ?? 'us-east-1'
const credentials = {
  accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test',
  secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
}
const client = new DynamoDBClient({ endpoint, region, credentials, maxAttempts: 2 })
const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } })
// A document client shares its base client's middleware stack, so the one that wraps numbers gets its own.
const wideClient = new DynamoDBClient({ endpoint, region, credentials, maxAttempts: 2 })
const docWide = DynamoDBDocumentClient.from(wideClient, { unmarshallOptions: { wrapNumbers: true } })
const TableName = `tn3-${randomBytes(5).toString('hex')}`
const waitFast = { client, maxWaitTime: 300, minDelay: 1, maxDelay: 2 }

let created = false
async function main () {
  const out = await client.send(new CreateTableCommand({
    TableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'N' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
  }))
  created = true
  equal('create_table.name', out.TableDescription.TableName, TableName)
  const waited = await waitUntilTableExists(waitFast, { TableName })
  equal('waiter.table_exists', waited.state, 'SUCCESS')
  const desc = await client.send(new DescribeTableCommand({ TableName }))
  equal('describe.status', desc.Table.TableStatus, 'ACTIVE')

  // Marshalling: JS numbers, Sets of strings and numbers, binary, nested maps and lists, null.
  const item = {
    pk: 'm',
    sk: 1,
    int: 42,
    float: 1.5,
    negative: -0.25,
    strings: new Set(['b', 'a']),
    numbers: new Set([3, 1, 2]),
    bytes: new Uint8Array([0, 1, 255]),
    nested: { list: [1, 'two', null, true, { deep: 'yes' }] },
    nothing: null,
    flag: false,
    dropped: undefined,
  }
  const put = await doc.send(new PutCommand({ TableName, Item: item, ReturnValues: 'ALL_OLD' }))
  check('put.new_item_no_attributes', put.Attributes === undefined, JSON.stringify(put.Attributes))
  const got = (await doc.send(new GetCommand({ TableName, Key: { pk: 'm', sk: 1 }, ConsistentRead: true }))).Item
  equal('get.int', got.int, 42)
  equal('get.float', got.float, 1.5)
  equal('get.negative', got.negative, -0.25)
  check('get.string_set_is_set', got.strings instanceof Set, typeof got.strings)
  equal('get.string_set', got.strings, new Set(['a', 'b']))
  check('get.number_set_is_set', got.numbers instanceof Set, typeof got.numbers)
  equal('get.number_set', [...got.numbers].sort(), [1, 2, 3])
  check('get.binary_is_bytes', got.bytes instanceof Uint8Array, typeof got.bytes)
  equal('get.binary', [...got.bytes], [0, 1, 255])
  equal('get.nested', got.nested, { list: [1, 'two', null, true, { deep: 'yes' }] })
  equal('get.null', got.nothing, null)
  equal('get.bool', got.flag, false)
  check('get.undefined_removed', !('dropped' in got), Object.keys(got).join(','))
  const raw = await client.send(new GetItemCommand({
    TableName, Key: { pk: { S: 'm' }, sk: { N: '1' } },
  }))
  const wireTypes = Object.fromEntries(Object.entries(raw.Item).map(([k, v]) => [k, Object.keys(v)[0]]).sort())
  equal('marshal.wire_types', wireTypes, {
    bytes: 'B', flag: 'BOOL', float: 'N', int: 'N', negative: 'N', nested: 'M', nothing: 'NULL', numbers: 'NS', pk: 'S', sk: 'N', strings: 'SS',
  })
  const missing = await doc.send(new GetCommand({ TableName, Key: { pk: 'm', sk: 99 } }))
  check('get.missing', missing.Item === undefined, JSON.stringify(missing.Item))

  // 38 significant digits survive only as NumberValue; a plain JS number would lose them.
  const wide = '12345678901234567890123456789012345678'
  await doc.send(new PutCommand({ TableName, Item: { pk: 'm', sk: 2, wide: NumberValue.from(wide) } }))
  const back = (await docWide.send(new GetCommand({ TableName, Key: { pk: 'm', sk: 2 } }))).Item
  equal('number.38_digits_wrapped', back.wide.value, wide)
  // Without wrapNumbers, an integer beyond 2^53 unmarshalls to a BigInt, still exact.
  const plain = (await doc.send(new GetCommand({ TableName, Key: { pk: 'm', sk: 2 } }))).Item
  check('number.38_digits_bigint', plain.wide === BigInt(wide), `${typeof plain.wide} ${plain.wide}`)

  // Update: ADD on decimals is exact on the server, so 0.1 + 0.2 reads back as the JS number 0.3.
  await doc.send(new PutCommand({ TableName, Item: { pk: 'u', sk: 1, amount: 0.1, tags: new Set(['x']) } }))
  const updated = await doc.send(new UpdateCommand({
    TableName,
    Key: { pk: 'u', sk: 1 },
    UpdateExpression: 'ADD amount :d, tags :t SET #s = :s',
    ExpressionAttributeNames: { '#s': 'status' },
    ExpressionAttributeValues: { ':d': 0.2, ':t': new Set(['y']), ':s': 'done' },
    ReturnValues: 'ALL_NEW',
  }))
  equal('update.decimal_add_exact', updated.Attributes.amount, 0.3)
  equal('update.set_add', updated.Attributes.tags, new Set(['x', 'y']))
  equal('update.reserved_word_via_name', updated.Attributes.status, 'done')
  const failed = await expectError('update.condition_failed', 'ConditionalCheckFailedException', () =>
    doc.send(new UpdateCommand({
      TableName,
      Key: { pk: 'u', sk: 1 },
      UpdateExpression: 'SET amount = :z',
      ConditionExpression: 'amount = :old',
      ExpressionAttributeValues: { ':z': 0, ':old': 0.1 },
    })))
  equal('update.condition_failed.status', failed.$metadata.httpStatusCode, 400)

  // batchWrite 25 (the maximum) then paginateQuery two at a time.
  let request = {
    [TableName]: Array.from({ length: 25 }, (_, i) => ({ PutRequest: { Item: { pk: 'b', sk: i, even: i % 2 === 0 } } })),
  }
  for (let attempt = 0; attempt < 20 && Object.keys(request).length; attempt++) {
    request = (await doc.send(new BatchWriteCommand({ RequestItems: request }))).UnprocessedItems ?? {}
  }
  equal('batch_write.all_processed', Object.keys(request).length, 0)
  const seen = []
  let pages = 0
  for await (const page of paginateQuery({ client: doc, pageSize: 2 }, {
    TableName,
    KeyConditionExpression: 'pk = :p AND sk >= :lo',
    FilterExpression: 'even = :t',
    ExpressionAttributeValues: { ':p': 'b', ':lo': 4, ':t': true },
  })) {
    pages++
    seen.push(...page.Items.map(i => i.sk))
  }
  equal('paginate_query.items', seen, [4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24])
  check('paginate_query.pages', pages >= 11, `pages ${pages}`)
  const backwards = await doc.send(new QueryCommand({
    TableName,
    KeyConditionExpression: 'pk = :p',
    ExpressionAttributeValues: { ':p': 'b' },
    ScanIndexForward: false,
    Limit: 3,
  }))
  equal('query.backwards', backwards.Items.map(i => i.sk), [24, 23, 22])
  equal('query.last_key', backwards.LastEvaluatedKey, { pk: 'b', sk: 22 })
  await expectError('batch_write.26', 'ValidationException', () =>
    doc.send(new BatchWriteCommand({
      RequestItems: { [TableName]: Array.from({ length: 26 }, (_, i) => ({ PutRequest: { Item: { pk: 'c', sk: i } } })) },
    })))

  if (!skip.has('transactions')) {
    // dynalite differs: it has no TransactWriteItems (UnknownOperationException).
    await doc.send(new TransactWriteCommand({
      TransactItems: [
        { Put: { TableName, Item: { pk: 't', sk: 1, v: new Set([1, 2]) } } },
        { Update: { TableName, Key: { pk: 'u', sk: 1 }, UpdateExpression: 'SET amount = amount + :one', ExpressionAttributeValues: { ':one': 1 } } },
      ],
    }))
    const t1 = (await doc.send(new GetCommand({ TableName, Key: { pk: 't', sk: 1 } }))).Item
    equal('transact_write.put', t1.v, new Set([1, 2]))
    const u1 = (await doc.send(new GetCommand({ TableName, Key: { pk: 'u', sk: 1 } }))).Item
    equal('transact_write.update', u1.amount, 1.3)
    const err = await expectError('transact_write.cancelled', 'TransactionCanceledException', () =>
      doc.send(new TransactWriteCommand({
        TransactItems: [
          { ConditionCheck: { TableName, Key: { pk: 't', sk: 1 }, ConditionExpression: 'attribute_not_exists(pk)' } },
          { Put: { TableName, Item: { pk: 't', sk: 2 } } },
        ],
      })))
    equal('transact_write.reasons', (err.CancellationReasons ?? []).map(r => r.Code), ['ConditionalCheckFailed', 'None'])
    const t2 = await doc.send(new GetCommand({ TableName, Key: { pk: 't', sk: 2 } }))
    check('transact_write.nothing_written', t2.Item === undefined, JSON.stringify(t2.Item))
  } else {
    console.error('skipped groups: transactions')
  }

  await client.send(new DeleteTableCommand({ TableName }))
  created = false
  const gone = await waitUntilTableNotExists(waitFast, { TableName })
  equal('waiter.table_not_exists', gone.state, 'SUCCESS')
  await expectError('describe.after_delete', 'ResourceNotFoundException', () =>
    client.send(new DescribeTableCommand({ TableName })))
  finish()
}

main().catch(async err => {
  console.error(`FAIL unexpected: ${err.stack ?? err}`)
  if (created) await client.send(new DeleteTableCommand({ TableName })).catch(() => {})
  process.exit(1)
})
