// aws-sdk v2 against an endpoint: AWS.DynamoDB for the table and its waiter, and
// AWS.DynamoDB.DocumentClient in the shape apps use it (`dynamo.scan({ TableName }).promise()`,
// `put`, `get`, `update`, `query`, `delete`, `batchWrite`, `transactWrite`) with createSet.
//
// Usage: node node_v2.js ENDPOINT_URL [--skip transactions]   (or env SKIP=transactions)
// The SDK is installed in ../node (npm ci there); it is loaded from that directory.
'use strict'
const { createRequire } = require('node:module')
const path = require('node:path')
const crypto = require('node:crypto')

const requireNode = createRequire(path.join(__dirname, '..', 'node', 'package.json'))
const AWS = requireNode('aws-sdk')

const endpoint = process.argv[2]
if (!endpoint) {
  console.error('usage: node node_v2.js ENDPOINT_URL [--skip group,...]')
  process.exit(2)
}
const skipArg = process.argv.indexOf('--skip')
const skip = new Set(
  [process.env.SKIP || '', skipArg > 0 ? process.argv[skipArg + 1] : '']
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
// DynamoDB gives a map's attributes in no particular order: compare with keys sorted.
function canonical (v) {
  if (Array.isArray(v)) return v.map(canonical)
  if (v && typeof v === 'object' && !Buffer.isBuffer(v) && v.constructor === Object) {
    return Object.fromEntries(Object.keys(v).sort().map(k => [k, canonical(v[k])]))
  }
  return v
}
function equal (name, actual, expected) {
  const a = JSON.stringify(canonical(actual))
  const e = JSON.stringify(canonical(expected))
  check(name, a === e, `expected ${e}, got ${a}`)
}
async function expectError (name, code, call) {
  try {
    await call()
  } catch (err) {
    check(name, err.code === code, `expected ${code}, got ${err.code}: ${err.message}`)
    return err
  }
  fail(name, `expected ${code}, call succeeded`)
  return { message: '' }
}

const options = {
  endpoint,
  region: process.env.AWS_DEFAULT_REGION || 'us-east-1',
  credentials: new AWS.Credentials(process.env.AWS_ACCESS_KEY_ID || 'test', process.env.AWS_SECRET_ACCESS_KEY || 'test'),
  maxRetries: 1,
}
const db = new AWS.DynamoDB(options)
const dynamo = new AWS.DynamoDB.DocumentClient({ service: db })
const dynamoWide = new AWS.DynamoDB.DocumentClient({ service: db, wrapNumbers: true })
const TableName = `tn2-${crypto.randomBytes(5).toString('hex')}`
let created = false

async function main () {
  await db.createTable({
    TableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
  }).promise()
  created = true
  const waited = await db.waitFor('tableExists', { TableName, $waiter: { delay: 1, maxAttempts: 300 } }).promise()
  equal('waiter.table_exists', waited.Table.TableStatus, 'ACTIVE')

  const empty = await dynamo.scan({ TableName }).promise()
  equal('scan.empty', { Items: empty.Items, Count: empty.Count, ScannedCount: empty.ScannedCount }, { Items: [], Count: 0, ScannedCount: 0 })

  await dynamo.put({
    TableName,
    Item: {
      id: 'a',
      name: 'Ada',
      age: 36,
      ratio: 0.75,
      langs: dynamo.createSet(['rust', 'js']),
      lucky: dynamo.createSet([7, 3]),
      blob: Buffer.from([1, 2, 3]),
      profile: { city: 'London', visits: [1, 'two', null, false] },
    },
  }).promise()
  await dynamo.put({ TableName, Item: { id: 'b', name: 'Bob', age: 20 } }).promise()
  const old = await dynamo.put({ TableName, Item: { id: 'b', name: 'Bob', age: 21 }, ReturnValues: 'ALL_OLD' }).promise()
  equal('put.all_old', old.Attributes, { id: 'b', name: 'Bob', age: 20 })

  const got = (await dynamo.get({ TableName, Key: { id: 'a' } }).promise()).Item
  equal('get.number', got.age, 36)
  equal('get.float', got.ratio, 0.75)
  equal('get.string_set_type', got.langs.type, 'String')
  equal('get.string_set_values', got.langs.values.slice().sort(), ['js', 'rust'])
  equal('get.number_set_type', got.lucky.type, 'Number')
  equal('get.number_set_values', got.lucky.values.slice().sort(), [3, 7])
  check('get.binary_is_buffer', Buffer.isBuffer(got.blob), typeof got.blob)
  equal('get.binary', [...got.blob], [1, 2, 3])
  equal('get.nested', got.profile, { city: 'London', visits: [1, 'two', null, false] })
  const missing = await dynamo.get({ TableName, Key: { id: 'zzz' } }).promise()
  check('get.missing', missing.Item === undefined, JSON.stringify(missing))

  const all = await dynamo.scan({ TableName }).promise()
  equal('scan.items', all.Items.map(i => i.id).sort(), ['a', 'b'])
  equal('scan.count', all.Count, 2)
  const adults = await dynamo.scan({
    TableName,
    FilterExpression: 'age > :min AND contains(langs, :lang)',
    ExpressionAttributeValues: { ':min': 30, ':lang': 'rust' },
  }).promise()
  equal('scan.filter', adults.Items.map(i => i.id), ['a'])

  const updated = await dynamo.update({
    TableName,
    Key: { id: 'a' },
    UpdateExpression: 'ADD langs :more, ratio :d DELETE lucky :seven SET profile.city = :city',
    ExpressionAttributeValues: {
      ':more': dynamo.createSet(['go']),
      ':d': 0.05,
      ':seven': dynamo.createSet([7]),
      ':city': 'Paris',
    },
    ReturnValues: 'UPDATED_NEW',
  }).promise()
  equal('update.set_add', updated.Attributes.langs.values.slice().sort(), ['go', 'js', 'rust'])
  equal('update.set_delete', updated.Attributes.lucky.values, [3])
  equal('update.decimal_exact', updated.Attributes.ratio, 0.8)
  equal('update.nested_path', updated.Attributes.profile, { city: 'Paris' })
  await expectError('update.condition_failed', 'ConditionalCheckFailedException', () =>
    dynamo.update({
      TableName,
      Key: { id: 'b' },
      UpdateExpression: 'SET age = :a',
      ConditionExpression: 'age = :old',
      ExpressionAttributeValues: { ':a': 99, ':old': 1 },
    }).promise())
  await expectError('put.reserved_word', 'ValidationException', () =>
    dynamo.update({ TableName, Key: { id: 'b' }, UpdateExpression: 'SET name = :n', ExpressionAttributeValues: { ':n': 'x' } }).promise())

  const wide = '99999999999999999999999999999999999999'
  await db.putItem({ TableName, Item: { id: { S: 'w' }, v: { N: wide } } }).promise()
  const back = (await dynamoWide.get({ TableName, Key: { id: 'w' } }).promise()).Item
  equal('number.38_digits_wrapped', back.v.toString(), wide)

  const writes = Array.from({ length: 25 }, (_, i) => ({ PutRequest: { Item: { id: `bulk-${i}`, n: i } } }))
  let pending = { [TableName]: writes }
  for (let attempt = 0; attempt < 20 && Object.keys(pending).length; attempt++) {
    pending = (await dynamo.batchWrite({ RequestItems: pending }).promise()).UnprocessedItems || {}
  }
  equal('batch_write.all_processed', Object.keys(pending).length, 0)
  let scanned = []
  let startKey
  do {
    const page = await dynamo.scan({ TableName, Limit: 10, ExclusiveStartKey: startKey }).promise()
    scanned = scanned.concat(page.Items)
    startKey = page.LastEvaluatedKey
  } while (startKey)
  equal('scan.paged_total', scanned.length, 28)
  const one = await dynamo.query({ TableName, KeyConditionExpression: 'id = :id', ExpressionAttributeValues: { ':id': 'bulk-7' } }).promise()
  equal('query.by_hash', one.Items, [{ id: 'bulk-7', n: 7 }])

  const removed = await dynamo.delete({ TableName, Key: { id: 'b' }, ReturnValues: 'ALL_OLD' }).promise()
  equal('delete.all_old', removed.Attributes.age, 21)

  if (!skip.has('transactions')) {
    // dynalite differs: it has no TransactWriteItems (UnknownOperationException).
    await dynamo.transactWrite({
      TransactItems: [
        { Put: { TableName, Item: { id: 't1', s: dynamo.createSet(['x']) } } },
        { Delete: { TableName, Key: { id: 'bulk-0' } } },
      ],
    }).promise()
    const t1 = (await dynamo.get({ TableName, Key: { id: 't1' } }).promise()).Item
    equal('transact_write.put', t1.s.values, ['x'])
    const err = await expectError('transact_write.cancelled', 'TransactionCanceledException', () =>
      dynamo.transactWrite({
        TransactItems: [
          { Put: { TableName, Item: { id: 't2' } } },
          { ConditionCheck: { TableName, Key: { id: 't1' }, ConditionExpression: 'attribute_not_exists(id)' } },
        ],
      }).promise())
    check('transact_write.reasons_in_message', /\[None, ConditionalCheckFailed\]/.test(err.message), err.message)
    const t2 = await dynamo.get({ TableName, Key: { id: 't2' } }).promise()
    check('transact_write.nothing_written', t2.Item === undefined, JSON.stringify(t2.Item))
  } else {
    console.error('skipped groups: transactions')
  }

  await db.deleteTable({ TableName }).promise()
  created = false
  await db.waitFor('tableNotExists', { TableName, $waiter: { delay: 1, maxAttempts: 300 } }).promise()
  await expectError('describe.after_delete', 'ResourceNotFoundException', () => db.describeTable({ TableName }).promise())
  finish()
}

main().catch(async err => {
  console.error(`FAIL unexpected: ${err.stack || err}`)
  if (created) await db.deleteTable({ TableName }).promise().catch(() => {})
  process.exit(1)
})
