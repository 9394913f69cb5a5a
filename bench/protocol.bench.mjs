#!/usr/bin/env node
// @nvisy/protocol: checking an inbound `runs.start` request (parseMessage: UTF-8 decode, JSON,
// the 64-level nesting limit, the compiled schema, issues by path) next to the bare minimum a
// dispatcher could do in the same process and run: JSON.parse plus an Ajv validator compiled
// from the published JSON Schema file (schemas/runs.start.request.json, what the server uses).
//
//   pnpm build && node bench/protocol.bench.mjs [--count 50000] [--rounds 3]
//
// Prints one JSON object: messages/s per side (best of `rounds` alternating rounds),
// ratio = parseMessage / bare, and cpuRatio = bare / ours CPU time per message.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { compareLoops } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const protocolDir = join(here, '..', 'packages', 'protocol')
const coreDir = join(here, '..', 'packages', 'provider-core')
const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '50000' },
    rounds: { type: 'string', default: '3' },
  },
})
const count = Number(args.count)
const rounds = Number(args.rounds)

const protocol = await import(pathToFileURL(join(protocolDir, 'dist', 'index.js')).href)
const require = createRequire(join(coreDir, 'package.json'))
const Ajv = require('ajv').default
const addFormats = require('ajv-formats').default
const ajv = new Ajv({ allErrors: true, strict: false })
addFormats(ajv)
ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' })
const bareValidate = ajv.compile(
  JSON.parse(readFileSync(join(protocolDir, 'schemas', 'runs.start.request.json'), 'utf8')),
)

// A realistic request: a PostgreSQL source, S3 and fs sinks, sealed credentials.
const sealed = 'A'.repeat(240)
const request = {
  runId: '7a3f0c1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b',
  pipeline: {
    id: 'orders-to-lake',
    nodes: [
      {
        id: 'orders',
        role: 'source',
        provider: 'postgres',
        connection: {
          params: { host: 'db.internal', port: 5432, database: 'shop', schema: 'public' },
          sealedCredentials: sealed,
        },
        stream: {
          table: 'orders',
          columns: ['id', 'customer_id', 'total', 'updated_at'],
          cursor: ['updated_at', 'id'],
        },
      },
      {
        id: 'lake',
        role: 'sink',
        provider: 's3',
        connection: {
          params: { bucket: 'lake', region: 'eu-central-1' },
          sealedCredentials: sealed,
        },
        stream: { prefix: 'orders/' },
        convert: 'jsonl',
        batch: { maxItems: 5000, maxBytes: 8388608, maxAgeMs: 1000 },
        concurrency: 2,
      },
      {
        id: 'archive',
        role: 'sink',
        provider: 'fs',
        connection: { params: { root: '/var/lib/nvisy/archive' } },
        stream: { kind: 'document', file: 'orders.jsonl' },
      },
    ],
    edges: [
      { from: 'orders', to: 'lake' },
      { from: 'orders', to: 'archive' },
    ],
    options: { checkpointEveryItems: 10000, checkpointEverySeconds: 5, maxAttempts: 5 },
  },
}
const payload = new TextEncoder().encode(JSON.stringify(request))
const decoder = new TextDecoder()

const ours = () => {
  const result = protocol.parseMessage(protocol.RunsStartRequestSchema, payload)
  if (!result.ok)
    throw new Error(`parseMessage refused the request: ${JSON.stringify(result.issues)}`)
}
const bare = () => {
  const value = JSON.parse(decoder.decode(payload))
  if (!bareValidate(value))
    throw new Error(`Ajv refused the request: ${JSON.stringify(bareValidate.errors)}`)
}

const compared = compareLoops({
  ours: ours,
  bare: bare,
  count,
  rounds,
  warmup: 5000,
  unit: 'message',
})
console.log(
  JSON.stringify({
    benchmark:
      'protocol: parseMessage of a runs.start request vs JSON.parse + Ajv on the JSON Schema file',
    count,
    rounds,
    payloadBytes: payload.byteLength,
    node: process.version,
    ...compared,
  }),
)
