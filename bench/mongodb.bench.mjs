#!/usr/bin/env node
// MongoDB writes: the provider (unordered bulkWrite of replaceOne upserts by _id, documents
// converted from canonical Extended JSON, batches of 1000) against a bare driver loop with
// the same batch size, in the same run: insertMany (the fastest write the driver has) and
// bulkWrite of replaceOne upserts (the same operations the provider sends).
//
//   pnpm --filter @nvisy/provider-core build && pnpm --filter @nvisy/emulators build \
//     && pnpm --filter @nvisy/provider-mongodb build
//   node bench/mongodb.bench.mjs [--count 1000000] [--batch 1000] [--url mongodb://...]
//
// Without --url or NVISY_TEST_MONGODB_URL it starts the project's MongoDB emulator in a child
// process (so its memory is not counted) and says so in the output: the numbers then measure
// the client side against an in-memory server, not a real mongod.
// Prints one JSON object: docs/s and peak RSS per side, and ratio = provider / bare.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { createMeter } from './lib.mjs'

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '1000' },
    url: { type: 'string', default: process.env.NVISY_TEST_MONGODB_URL ?? '' },
  },
})
const count = Number(args.count)
const batchSize = Number(args.batch)

const packageRequire = createRequire(
  new URL('../packages/provider-mongodb/package.json', import.meta.url),
)
const { MongoClient } = packageRequire('mongodb')
const { mongoProvider } = await import('../packages/provider-mongodb/dist/index.js')

/** Start the emulator in its own process; resolves with its URL and a stop function. */
async function startEmulator() {
  const entry = new URL('../packages/emulators/dist/index.js', import.meta.url).href
  const child = spawn(
    process.execPath,
    [
      '--max-old-space-size=8192',
      '--input-type=module',
      '-e',
      `const { startMongoEmulator } = await import(${JSON.stringify(entry)}); const e = await startMongoEmulator({ port: 0 }); console.log(e.url)`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const url = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)))
    child.stdout.once('data', (chunk) => resolve(String(chunk).trim()))
  })
  return { url, stop: () => child.kill() }
}

const emulator = args.url ? undefined : await startEmulator()
const url = args.url || emulator.url
const database = `nvisy_bench_${randomBytes(4).toString('hex')}`

/** A ~200-byte JSON document. */
function content(i) {
  return {
    n: i,
    user: `user-${i % 9973}`,
    event: 'order.created',
    amount: (i % 10000) / 100,
    currency: 'EUR',
    at: '2024-02-29T13:45:00.123Z',
    tags: ['bench', 'mongodb', 'document'],
    note: 'x'.repeat(40),
  }
}

const { sampleRss, measure } = createMeter({ items: count, unit: 'docsPerSec' })

const admin = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 })
await admin.connect()
const db = admin.db(database)
try {
  async function expectCount(name) {
    const stored = await db.collection(name).countDocuments()
    if (stored !== count) throw new Error(`${name}: ${stored} documents stored, expected ${count}`)
    await db.collection(name).drop()
  }

  const bareInsert = await measure('bare insertMany', async () => {
    const collection = db.collection('bare_insert')
    for (let from = 0; from < count; from += batchSize) {
      const docs = []
      const to = Math.min(count, from + batchSize)
      for (let i = from; i < to; i++) docs.push({ _id: `doc-${i}`, ...content(i) })
      await collection.insertMany(docs, { ordered: false })
      sampleRss()
    }
  })
  await expectCount('bare_insert')

  const bareUpsert = await measure('bare bulkWrite replaceOne upsert', async () => {
    const collection = db.collection('bare_upsert')
    for (let from = 0; from < count; from += batchSize) {
      const operations = []
      const to = Math.min(count, from + batchSize)
      for (let i = from; i < to; i++) {
        const doc = { _id: `doc-${i}`, ...content(i) }
        operations.push({
          replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true },
        })
      }
      await collection.bulkWrite(operations, { ordered: false })
      sampleRss()
    }
  })
  await expectCount('bare_upsert')

  const credentials = {}
  const params = { url, database }
  if (args.url) {
    delete params.url
    credentials.connectionString = url
  }
  const connection = await mongoProvider.connect({ credentials, params })
  const signal = new AbortController().signal
  const stream = { collection: 'provider' }
  const provider = await measure('provider', async () => {
    for (let from = 0; from < count; from += batchSize) {
      const batch = []
      const to = Math.min(count, from + batchSize)
      for (let i = from; i < to; i++)
        batch.push({ kind: 'document', id: `doc-${i}`, content: content(i) })
      const result = await connection.write(stream, batch, { signal })
      if (result.failed.length > 0) throw result.failed[0].error
      sampleRss()
    }
  })
  await connection.close()
  await expectCount('provider')

  const report = {
    benchmark: 'mongodb document write',
    server: emulator
      ? 'emulator (@nvisy/emulators, in-memory, separate process): not a real mongod'
      : 'NVISY_TEST_MONGODB_URL',
    count,
    batchSize,
    documentBytes: JSON.stringify({ _id: 'doc-0', ...content(0) }).length,
    bare: bareInsert,
    bareUpsert,
    provider,
    ratio: Number((provider.docsPerSec / bareInsert.docsPerSec).toFixed(3)),
    ratioToUpsert: Number((provider.docsPerSec / bareUpsert.docsPerSec).toFixed(3)),
    target: 0.7,
    notes:
      'ratio = provider / bare insertMany; ratioToUpsert = provider / bare bulkWrite of the same replaceOne upserts. The provider also converts each content from canonical Extended JSON (same BSON as EJSON.deserialize). Client and emulator share the CPUs: compare ratios from one run only.',
  }
  console.log(JSON.stringify(report, null, 2))
} finally {
  await db.dropDatabase().catch(() => {})
  await admin.close()
  emulator?.stop()
}
