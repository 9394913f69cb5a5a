#!/usr/bin/env node
// Small JSON documents from a JSONL file into NATS JetStream, a Redis stream and MongoDB:
// the runtime (`executePipeline`: fs document source -> sink, batches of `--batch`) next to
// a bare client loop (node:readline over the same file, the same batch size / in-flight
// window), in the same run. Each side runs in its own child process, so peak RSS and CPU
// time are its own.
//
//   pnpm build
//   node bench/messages.bench.mjs [--count 1000000] [--batch 1000] [--window 256]
//        [--only nats,redis,mongodb] [--rounds 1]
//        [--nats nats://127.0.0.1:4222] [--redis redis://127.0.0.1:6379/0] [--mongodb mongodb://...]
//
// - Data: `--count` documents of ~200 bytes, one per line, each with a string `id`, written to
//   a JSONL file in a temporary directory (removed at the end).
// - nats: ours = fs -> nats sink (document -> message conversion: the JSON content as
//   payload, the id as Nats-Msg-Id), `maxInFlight: --window`. Bare = jetstream publish of
//   each line with `msgID` = id, `--window` publishes unacknowledged at once. Each side
//   writes into its own stream (unique name, created and deleted here); the stored message
//   count must equal `--count`.
// - redis: ours = fs -> redis sink, stream mode (idempotent XADD through a Lua script that
//   also sets a dedupe key per message). Bare = pipelined XADD of the same fields
//   (`nvisy-id`, `payload`, `h:content-type`), one pipeline of `--batch` at a time. XLEN must
//   equal `--count`; every key under the run's prefix is removed afterwards.
// - mongodb: ours = fs -> mongodb sink (unordered bulkWrite of replaceOne upserts by _id).
//   Bare = bulkWrite of the same replaceOne upserts (unordered, batches of `--batch`): the
//   ratio's baseline; and insertMany (ordered: false) of the same batches as a reference
//   (`ratioToInsertMany`): faster, but not idempotent, so not what an at-least-once sink sends. Without `--mongodb`/NVISY_TEST_MONGODB_URL the
//   project's MongoDB emulator runs in a separate child process (its memory is not counted)
//   and the report says so. countDocuments must equal `--count`; the database is dropped.
//
// `--rounds N` alternates which side goes first and keeps each side's best round.
// Prints one JSON object last on stdout: per target msgs/s, seconds, peak RSS MiB and CPU
// µs/message of each side, and `ratio` = ours msgs/s / bare msgs/s (target >= 0.7).
// Exits 1 when a count does not match.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { runJsonChild } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = join(here, '..')
const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '1000' },
    window: { type: 'string', default: '256' },
    only: { type: 'string', default: 'nats,redis,mongodb' },
    rounds: { type: 'string', default: '1' },
    nats: { type: 'string', default: process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222' },
    redis: {
      type: 'string',
      default: process.env.NVISY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
    },
    mongodb: { type: 'string', default: process.env.NVISY_TEST_MONGODB_URL ?? '' },
    // Child side only: which run, and where to write.
    child: { type: 'string' },
    file: { type: 'string' },
    target: { type: 'string' },
  },
})
const count = Number(args.count)
const batchSize = Number(args.batch)
const window = Number(args.window)
const rounds = Math.max(1, Number(args.rounds))

const requireFrom = (dir) => createRequire(join(repoRoot, dir, 'package.json'))
const natsRequire = requireFrom('packages/provider-nats')
const redisRequire = requireFrom('packages/provider-redis')
const mongoRequire = requireFrom('packages/provider-mongodb')
const importFrom = (req, specifier) => import(pathToFileURL(req.resolve(specifier)).href)
const dist = (dir) => import(pathToFileURL(join(repoRoot, dir, 'dist', 'index.js')).href)

function redisOptions(text) {
  const url = new URL(text)
  const options = {
    host: url.hostname,
    port: url.port ? Number(url.port) : 6379,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
  }
  if (url.username) options.username = decodeURIComponent(url.username)
  if (url.password) options.password = decodeURIComponent(url.password)
  return options
}

/** The document on line i: ~200 bytes of JSON with a string id. */
function documentLine(i) {
  return JSON.stringify({
    id: `doc-${String(i).padStart(8, '0')}`,
    type: 'order.created',
    customer: `customer-${i % 9973}`,
    amount: (i % 100000) / 100,
    currency: 'EUR',
    createdAt: '2025-01-01T00:00:00.000Z',
    tags: ['bench', 'jsonl', 'message'],
    note: 'benchmark document padding to about 200 bytes',
  })
}

// ---------------------------------------------------------------- child: one side, measured
if (args.child) {
  const target = JSON.parse(args.target)
  let peakRss = process.memoryUsage().rss
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
  }, 20)
  // Load the modules before the clock starts: module loading is not what is compared.
  const [side, kind] = [args.child.slice(0, 4), args.child.slice(5).replace(/-upsert$/, '')]
  if (side === 'bare') {
    if (kind === 'nats') {
      await importFrom(natsRequire, '@nats-io/transport-node')
      await importFrom(natsRequire, '@nats-io/jetstream')
    } else if (kind === 'redis') redisRequire('ioredis')
    else mongoRequire('mongodb')
  } else {
    await dist('apps/runtime')
    await dist('packages/provider-fs')
    await dist(`packages/provider-${kind}`)
  }
  const cpuBefore = process.cpuUsage()
  const started = process.hrtime.bigint()
  let written
  if (args.child.startsWith('bare-')) written = await bare(args.child.slice(5), target)
  else written = await ours(args.child.slice(5), target)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  clearInterval(sampler)
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
  const cpu = process.cpuUsage(cpuBefore)
  process.stdout.write(
    JSON.stringify({
      written,
      seconds,
      peakRssMiB: peakRss / 2 ** 20,
      cpuMicrosPerMsg: (cpu.user + cpu.system) / count,
    }),
  )
  process.exit(0)
}

/** Lines of the JSONL file, in batches of batchSize (each line with its parsed id). */
async function* lineBatches(file) {
  const lines = createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  })
  let batch = []
  for await (const line of lines) {
    if (line.length === 0) continue
    batch.push(line)
    if (batch.length === batchSize) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) yield batch
}

async function bare(kind, target) {
  let written = 0
  if (kind === 'nats') {
    const { connect } = await importFrom(natsRequire, '@nats-io/transport-node')
    const { jetstream } = await importFrom(natsRequire, '@nats-io/jetstream')
    const nc = await connect({ servers: target.url, noAsyncTraces: true })
    const js = jetstream(nc)
    let inFlight = 0
    let wake
    let failure
    const settle = () => {
      inFlight--
      const resume = wake
      wake = undefined
      resume?.()
    }
    const waitForSlot = () =>
      new Promise((resolve) => {
        wake = resolve
      })
    for await (const batch of lineBatches(args.file)) {
      for (const line of batch) {
        const { id } = JSON.parse(line)
        while (inFlight >= window) await waitForSlot()
        inFlight++
        js.publish(target.subject, Buffer.from(line), {
          msgID: id,
          expect: { streamName: target.stream },
        }).then(
          () => {
            written++
            settle()
          },
          (error) => {
            failure ??= error
            settle()
          },
        )
      }
    }
    while (inFlight > 0) await waitForSlot()
    await nc.close()
    if (failure) throw failure
  } else if (kind === 'redis') {
    const { Redis } = redisRequire('ioredis')
    const redis = new Redis(target.options)
    for await (const batch of lineBatches(args.file)) {
      const pipeline = redis.pipeline()
      for (const line of batch) {
        const { id } = JSON.parse(line)
        pipeline.xadd(
          target.key,
          '*',
          'nvisy-id',
          id,
          'payload',
          Buffer.from(line),
          'h:content-type',
          'application/json',
        )
      }
      const results = await pipeline.exec()
      for (const [error] of results) if (error) throw error
      written += results.length
    }
    redis.disconnect()
  } else if (kind === 'mongodb' || kind === 'mongodb-upsert') {
    const { MongoClient } = mongoRequire('mongodb')
    const client = new MongoClient(target.url, { serverSelectionTimeoutMS: 10_000 })
    await client.connect()
    const collection = client.db(target.database).collection(target.collection)
    for await (const batch of lineBatches(args.file)) {
      const docs = batch.map((line) => {
        const doc = JSON.parse(line)
        return { _id: doc.id, ...doc }
      })
      if (kind === 'mongodb') {
        const result = await collection.insertMany(docs, { ordered: false })
        written += result.insertedCount
      } else {
        const result = await collection.bulkWrite(
          docs.map((doc) => ({
            replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true },
          })),
          { ordered: false },
        )
        written += result.upsertedCount + result.matchedCount
      }
    }
    await client.close()
  } else throw new Error(`unknown bare side ${kind}`)
  return written
}

async function ours(kind, target) {
  const runtime = await dist('apps/runtime')
  const { fsProvider } = await dist('packages/provider-fs')
  const sinkProvider =
    kind === 'nats'
      ? (await dist('packages/provider-nats')).natsProvider
      : kind === 'redis'
        ? (await dist('packages/provider-redis')).redisProvider
        : (await dist('packages/provider-mongodb')).mongoProvider
  const sink =
    kind === 'nats'
      ? {
          provider: 'nats',
          connection: { params: { servers: target.url }, credentials: {} },
          stream: { subject: target.subject, stream: target.stream, maxInFlight: window },
        }
      : kind === 'redis'
        ? {
            provider: 'redis',
            connection: {
              params: {
                host: target.options.host,
                port: target.options.port,
                db: target.options.db,
              },
              credentials: {
                ...(target.options.username ? { username: target.options.username } : {}),
                ...(target.options.password ? { password: target.options.password } : {}),
              },
            },
            stream: { kind: 'stream', key: target.key, dedupeTtlSeconds: 3600 },
          }
        : {
            provider: 'mongodb',
            connection: target.external
              ? {
                  params: { database: target.database },
                  credentials: { connectionString: target.url },
                }
              : { params: { url: target.url, database: target.database }, credentials: {} },
            stream: { collection: target.collection },
          }
  const pipeline = {
    id: `bench-messages-${kind}`,
    nodes: [
      {
        id: 'jsonl',
        role: 'source',
        provider: 'fs',
        connection: { params: { root: dirname(args.file), readOnly: true }, credentials: {} },
        stream: { kind: 'document', file: 'documents.jsonl' },
      },
      { id: 'sink', role: 'sink', ...sink, batch: { maxItems: batchSize } },
    ],
    edges: [{ from: 'jsonl', to: 'sink' }],
    options: { failureBudget: 0 },
  }
  const summary = await runtime.executePipeline({
    runId: `bench-${kind}-${randomBytes(4).toString('hex')}`,
    pipeline,
    registry: new runtime.MapProviderRegistry([fsProvider, sinkProvider]),
    resolveConnection: async (node) => ({
      credentials: node.connection.credentials ?? {},
      params: node.connection.params,
    }),
    checkpoints: new runtime.MemoryCheckpointStore(),
    onEvent: () => {},
    signal: new AbortController().signal,
    resume: false,
  })
  if (summary.status !== 'completed')
    throw new Error(`pipeline ${summary.status}: ${JSON.stringify(summary.error ?? summary)}`)
  return summary.stats.nodes.sink.items
}

// ---------------------------------------------------------------- parent
function runSide(side, target, file) {
  return runJsonChild(
    fileURLToPath(import.meta.url),
    [
      '--child',
      side,
      '--target',
      JSON.stringify(target),
      '--file',
      file,
      '--count',
      String(count),
      '--batch',
      String(batchSize),
      '--window',
      String(window),
    ],
    { name: side },
  )
}

async function writeJsonl(file) {
  const out = createWriteStream(file)
  let chunk = ''
  for (let i = 0; i < count; i++) {
    chunk += `${documentLine(i)}\n`
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve))
      chunk = ''
    }
  }
  out.end(chunk)
  await new Promise((resolve, reject) => {
    out.once('finish', resolve)
    out.once('error', reject)
  })
}

/** Start the MongoDB emulator in its own process; resolves with its URL and a stop function. */
async function startEmulator() {
  const entry = pathToFileURL(join(repoRoot, 'packages/emulators/dist/index.js')).href
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

/**
 * Per target: prepare(side) gives the child its target description, verify(target) returns
 * the stored count, cleanup(target) removes what was written.
 */
async function natsTarget() {
  const { connect } = await importFrom(natsRequire, '@nats-io/transport-node')
  const { jetstreamManager } = await importFrom(natsRequire, '@nats-io/jetstream')
  const nc = await connect({ servers: args.nats })
  const jsm = await jetstreamManager(nc)
  const created = new Set()
  return {
    server: args.nats,
    async prepare(side) {
      const suffix = randomBytes(4).toString('hex')
      const stream = `NVISY_BENCH_MSGS_${suffix.toUpperCase()}`
      await jsm.streams.add({ name: stream, subjects: [`nvisy.bench.msgs.${suffix}.>`] })
      created.add(stream)
      return { url: args.nats, stream, subject: `nvisy.bench.msgs.${suffix}.${side}` }
    },
    async verify(target) {
      return (await jsm.streams.info(target.stream)).state.messages
    },
    async cleanup(target) {
      await jsm.streams.delete(target.stream).catch(() => {})
      created.delete(target.stream)
    },
    async close() {
      for (const stream of created) await jsm.streams.delete(stream).catch(() => {})
      await nc.close()
    },
  }
}

async function redisTarget() {
  const { Redis } = redisRequire('ioredis')
  const options = redisOptions(args.redis)
  const admin = new Redis(options)
  const prefix = `nvisy-bench-msgs:${randomBytes(4).toString('hex')}:`
  async function unlinkPrefix(match) {
    let cursor = '0'
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${match}*`, 'COUNT', 10000)
      cursor = next
      if (keys.length > 0) await admin.unlink(...keys)
    } while (cursor !== '0')
  }
  return {
    server: `${options.host}:${options.port}/${options.db}`,
    async prepare(side) {
      // The provider's dedupe keys are `<key>:nvisy-dedupe:<id>`: under the same prefix.
      return { options, key: `${prefix}${side}` }
    },
    async verify(target) {
      return admin.xlen(target.key)
    },
    async cleanup(target) {
      await unlinkPrefix(target.key)
    },
    async close() {
      await unlinkPrefix(prefix).catch(() => {})
      admin.disconnect()
    },
  }
}

async function mongoTarget() {
  const emulator = args.mongodb ? undefined : await startEmulator()
  const url = args.mongodb || emulator.url
  const { MongoClient } = mongoRequire('mongodb')
  const admin = new MongoClient(url, { serverSelectionTimeoutMS: 10_000 })
  await admin.connect()
  const database = `nvisy_bench_msgs_${randomBytes(4).toString('hex')}`
  const db = admin.db(database)
  let n = 0
  return {
    server: emulator
      ? 'emulator (@nvisy/emulators startMongoEmulator, in-memory, separate process): not a real mongod'
      : 'NVISY_TEST_MONGODB_URL / --mongodb',
    async prepare(side) {
      return {
        url,
        external: !emulator,
        database,
        collection: `${side.replace(/-/g, '_')}_${n++}`,
      }
    },
    async verify(target) {
      return db.collection(target.collection).countDocuments()
    },
    async cleanup(target) {
      await db
        .collection(target.collection)
        .drop()
        .catch(() => {})
    },
    async close() {
      await db.dropDatabase().catch(() => {})
      await admin.close()
      emulator?.stop()
    },
  }
}

const targets = { nats: natsTarget, redis: redisTarget, mongodb: mongoTarget }
const selected = args.only.split(',').filter(Boolean)
for (const name of selected) if (!targets[name]) throw new Error(`unknown target ${name}`)

const dir = mkdtempSync(join(tmpdir(), 'nvisy-bench-msgs-'))
const file = join(dir, 'documents.jsonl')
const round2 = (n) => Math.round(n * 100) / 100
let mismatches = 0
try {
  const generated = performance.now()
  await writeJsonl(file)
  console.error(
    `generated ${count} documents (${documentLine(0).length + 1} bytes/line) in ${round2((performance.now() - generated) / 1000)} s`,
  )

  const report = {
    benchmark: 'jsonl file -> messages (nats jetstream, redis stream, mongodb)',
    count,
    documentBytes: documentLine(0).length,
    batchSize,
    window,
    rounds,
    node: process.version,
  }
  for (const name of selected) {
    const target = await targets[name]()
    try {
      // Each baseline side ("bare", and for mongodb also "bare-upsert") against ours.
      const bareSides = name === 'mongodb' ? ['bare', 'bareUpsert'] : ['bare']
      const childName = {
        bare: `bare-${name}`,
        bareUpsert: `bare-${name}-upsert`,
        ours: `ours-${name}`,
      }
      const runs = { ours: [] }
      for (const side of bareSides) runs[side] = []
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? [...bareSides, 'ours'] : ['ours', ...bareSides]
        for (const side of order) {
          const where = await target.prepare(side)
          try {
            const measured = await runSide(childName[side], where, file)
            const stored = await target.verify(where)
            if (stored !== count || measured.written !== count) {
              mismatches++
              console.error(
                `${name} ${side}: wrote ${measured.written}, stored ${stored}, expected ${count}`,
              )
            }
            runs[side].push({ ...measured, stored })
            console.error(
              `${name} ${side} round ${r + 1}: ${Math.round(count / measured.seconds)} msgs/s, peak RSS ${Math.round(measured.peakRssMiB)} MiB, stored ${stored}`,
            )
          } finally {
            await target.cleanup(where)
          }
        }
      }
      const best = (list) => list.reduce((a, b) => (b.seconds < a.seconds ? b : a))
      const summary = (run) => ({
        msgsPerSec: Math.round(count / run.seconds),
        seconds: round2(run.seconds),
        peakRssMiB: Math.round(run.peakRssMiB),
        cpuMicrosPerMsg: round2(run.cpuMicrosPerMsg),
        stored: run.stored,
      })
      const result = { server: target.server }
      for (const side of bareSides) result[side] = summary(best(runs[side]))
      result.ours = summary(best(runs.ours))
      // The baseline is the bare loop doing the same writes: for MongoDB the provider's
      // idempotent replaceOne upserts. insertMany (not idempotent: a replay fails on
      // duplicate keys) is reported beside it as a reference.
      const baseline = name === 'mongodb' ? result.bareUpsert : result.bare
      result.ratio = round2(result.ours.msgsPerSec / baseline.msgsPerSec)
      if (name === 'mongodb')
        result.ratioToInsertMany = round2(result.ours.msgsPerSec / result.bare.msgsPerSec)
      result.peakRssOursOverBare = round2(result.ours.peakRssMiB / baseline.peakRssMiB)
      report[name] = result
    } finally {
      await target.close()
    }
  }
  report.target = { ratio: 0.7 }
  report.notes =
    'ratio = ours msgs/s / bare msgs/s (best round of each side); peakRssOursOverBare = ours peak RSS / bare peak RSS. ' +
    'Ours reads the file through the fs provider, converts document -> message (JSON.stringify of the content) and writes through the sink provider in executePipeline; bare reads lines with node:readline and sends each line as is. ' +
    'redis: ours also sets a dedupe key per message (Lua script); bare only XADDs. mongodb: ratio is against the bare bulkWrite of the same replaceOne upserts the provider sends (bareUpsert); ratioToInsertMany against insertMany, which is not idempotent (a replayed batch fails on duplicate keys), as a reference.'
  console.log(JSON.stringify(report, null, 2))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
if (mismatches > 0) process.exitCode = 1
