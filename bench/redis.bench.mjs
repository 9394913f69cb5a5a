#!/usr/bin/env node
// Redis stream writes: the provider (idempotent XADD through a Lua script, batches of 1000)
// against a bare ioredis pipelined XADD loop with the same batch size, in the same run.
//
//   pnpm --filter @nvisy/provider-core build && pnpm --filter @nvisy/provider-redis build
//   node bench/redis.bench.mjs [--count 1000000] [--batch 1000] [--url redis://127.0.0.1:6379/0]
//
// Prints one JSON object: msgs/s and peak RSS per side, and ratio = provider / bare.
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { createMeter } from './lib.mjs'

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '1000' },
    url: {
      type: 'string',
      default: process.env.NVISY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
    },
  },
})
const count = Number(args.count)
const batchSize = Number(args.batch)
const url = new URL(args.url)
const host = url.hostname
const port = url.port ? Number(url.port) : 6379
const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
const credentials = {}
if (url.username) credentials.username = decodeURIComponent(url.username)
if (url.password) credentials.password = decodeURIComponent(url.password)

// ioredis and the provider as the package resolves them (pnpm keeps them out of the root).
const packageRequire = createRequire(
  new URL('../packages/provider-redis/package.json', import.meta.url),
)
const { Redis } = packageRequire('ioredis')
const { redisProvider } = await import('../packages/provider-redis/dist/index.js')

const run = randomBytes(4).toString('hex')
const prefix = `nvisy-bench:${run}:`

/** A ~200-byte JSON document, as bytes. */
function payload(i) {
  return Buffer.from(
    JSON.stringify({
      id: i,
      user: `user-${i % 9973}`,
      event: 'order.created',
      amount: (i % 10000) / 100,
      currency: 'EUR',
      at: '2024-02-29T13:45:00.123Z',
      tags: ['bench', 'redis', 'stream'],
      note: 'x'.repeat(40),
    }),
  )
}

const { sampleRss, measure } = createMeter({ items: count, unit: 'msgsPerSec' })

async function unlinkPrefix(redis) {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10000)
    cursor = next
    if (keys.length > 0) await redis.unlink(...keys)
  } while (cursor !== '0')
}

const admin = new Redis({ host, port, db, ...credentials })
try {
  const bareKey = `${prefix}bare`
  const bare = await measure('bare ioredis', async () => {
    for (let from = 0; from < count; from += batchSize) {
      const pipeline = admin.pipeline()
      const to = Math.min(count, from + batchSize)
      for (let i = from; i < to; i++)
        pipeline.xadd(bareKey, '*', 'nvisy-id', `m-${i}`, 'payload', payload(i))
      const results = await pipeline.exec()
      for (const [error] of results) if (error) throw error
      sampleRss()
    }
  })
  if ((await admin.xlen(bareKey)) !== count) throw new Error('bare loop lost messages')
  await unlinkPrefix(admin)

  const providerKey = `${prefix}provider`
  const connection = await redisProvider.connect({ credentials, params: { host, port, db } })
  const signal = new AbortController().signal
  const stream = { kind: 'stream', key: providerKey, dedupeTtlSeconds: 3600 }
  const provider = await measure('provider', async () => {
    for (let from = 0; from < count; from += batchSize) {
      const batch = []
      const to = Math.min(count, from + batchSize)
      for (let i = from; i < to; i++)
        batch.push({ kind: 'message', id: `m-${i}`, payload: payload(i) })
      const result = await connection.write(stream, batch, { signal })
      if (result.failed.length > 0) throw result.failed[0].error
      sampleRss()
    }
  })
  await connection.close()
  if ((await admin.xlen(providerKey)) !== count) throw new Error('provider lost messages')
  await unlinkPrefix(admin)

  const report = {
    benchmark: 'redis stream write',
    count,
    batchSize,
    payloadBytes: payload(0).length,
    bare,
    provider,
    ratio: Number((provider.msgsPerSec / bare.msgsPerSec).toFixed(3)),
    target: 0.7,
    notes:
      'provider: one EVALSHA per 500 messages (one MGET of the chunk dedupe keys, then XADD and SET dedupe key PX per new message); bare: pipelined XADD of the same fields',
  }
  console.log(JSON.stringify(report, null, 2))
} finally {
  await unlinkPrefix(admin).catch(() => {})
  admin.disconnect()
}
