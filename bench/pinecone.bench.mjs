#!/usr/bin/env node
// Pinecone upserts against the project's Pinecone EMULATOR (packages/emulators, run in a
// child process so its memory is not counted): the provider's write (validation, chunks of
// at most 1000 vectors and ~2 MB, 4 requests in flight) next to a bare SDK upsert loop with
// the same chunks and the same concurrency, in the same run. Not a measurement of the
// Pinecone service: the emulator's JSON parsing is part of both sides' time.
//
//   pnpm --filter @nvisy/provider-core build && pnpm --filter @nvisy/emulators build \
//     && pnpm --filter @nvisy/provider-pinecone build
//   node bench/pinecone.bench.mjs [--count 100000] [--dimension 768] [--batch 1000] [--concurrency 4]
//
// Prints one JSON object: vectors/s and peak RSS per side, and ratio = provider / bare.
import { fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createMeter } from './lib.mjs'

const emulatorsDist = new URL('../packages/emulators/dist/index.js', import.meta.url)

if (process.argv[2] === '--serve-emulator') {
  const { startPineconeEmulator } = await import(emulatorsDist.href)
  const dimension = Number(process.argv[3])
  const emulator = await startPineconeEmulator({
    apiKey: 'bench-key',
    indexes: [{ name: 'bench', dimension, metric: 'cosine' }],
  })
  process.send({ url: emulator.url })
  process.on('message', async (message) => {
    if (message === 'stop') {
      await emulator.close()
      process.exit(0)
    }
  })
} else {
  await main()
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      count: { type: 'string', default: '100000' },
      dimension: { type: 'string', default: '768' },
      batch: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
    },
  })
  const count = Number(args.count)
  const dimension = Number(args.dimension)
  const batchSize = Number(args.batch)
  const concurrency = Number(args.concurrency)

  const packageRequire = createRequire(
    new URL('../packages/provider-pinecone/package.json', import.meta.url),
  )
  const { Pinecone } = packageRequire('@pinecone-database/pinecone')
  const { pineconeProvider, PINECONE_LIMITS } = await import(
    '../packages/provider-pinecone/dist/index.js'
  )

  const child = fork(fileURLToPath(import.meta.url), ['--serve-emulator', String(dimension)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const { url } = await new Promise((resolve, reject) => {
    child.once('message', resolve)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)))
  })

  /** A deterministic pseudo-random vector and a small metadata object for item i. */
  function record(i) {
    let state = (i * 2654435761) >>> 0
    const values = new Array(dimension)
    for (let d = 0; d < dimension; d++) {
      state = (state * 1664525 + 1013904223) >>> 0
      values[d] = state / 4294967296 - 0.5
    }
    return { id: `vec-${String(i).padStart(8, '0')}`, values, metadata: { n: i, source: 'bench' } }
  }

  const { sampleRss, measure } = createMeter({ items: count, unit: 'vectorsPerSec' })

  const pc = new Pinecone({ apiKey: 'bench-key', controllerHostUrl: url, maxRetries: 0 })
  const host = (await pc.describeIndex('bench')).host
  const stats = async (namespace) =>
    (await pc.index({ host }).describeIndexStats()).namespaces?.[namespace]?.recordCount ?? 0

  // The provider's chunk size for these vectors, from the same size bound it uses: the bare
  // loop sends chunks of exactly this many vectors.
  const perVector = 64 + 16 + dimension * 25 + 40
  const chunkVectors = Math.min(
    PINECONE_LIMITS.maxUpsertVectors,
    Math.floor((PINECONE_LIMITS.maxUpsertBytes - 64 - 8) / (perVector + 1)),
  )

  try {
    const bareIndex = pc.index({ host, namespace: 'bare' })
    const bare = await measure('bare SDK', async () => {
      for (let from = 0; from < count; from += batchSize) {
        const to = Math.min(count, from + batchSize)
        const chunks = []
        for (let start = from; start < to; start += chunkVectors) {
          const chunk = []
          for (let i = start; i < Math.min(to, start + chunkVectors); i++) chunk.push(record(i))
          chunks.push(chunk)
        }
        let next = 0
        await Promise.all(
          Array.from({ length: Math.min(concurrency, chunks.length) }, async () => {
            while (next < chunks.length) await bareIndex.upsert({ records: chunks[next++] })
          }),
        )
        sampleRss()
      }
    })
    if ((await stats('bare')) !== count) throw new Error('bare loop lost vectors')
    await bareIndex.deleteAll()

    const connection = await pineconeProvider.connect({
      credentials: { apiKey: 'bench-key' },
      params: { index: 'bench', controlPlaneUrl: url, maxRetries: 0 },
    })
    const signal = new AbortController().signal
    const stream = { namespace: 'provider', concurrency }
    const provider = await measure('provider', async () => {
      for (let from = 0; from < count; from += batchSize) {
        const batch = []
        const to = Math.min(count, from + batchSize)
        for (let i = from; i < to; i++) batch.push({ kind: 'embedding', ...record(i) })
        const result = await connection.write(stream, batch, { signal })
        if (result.failed.length > 0) throw result.failed[0].error
        sampleRss()
      }
    })
    await connection.close()
    if ((await stats('provider')) !== count) throw new Error('provider lost vectors')
    await pc.index({ host, namespace: 'provider' }).deleteAll()

    console.log(
      JSON.stringify(
        {
          benchmark: 'pinecone upsert (against the nvisy Pinecone emulator, not the service)',
          count,
          dimension,
          batchSize,
          chunkVectors,
          concurrency,
          bare,
          provider,
          ratio: Number((provider.vectorsPerSec / bare.vectorsPerSec).toFixed(3)),
          target: 0.8,
          notes:
            'provider: per-vector checks (dimension, finite values, metadata types and size), chunks by count and a JSON size bound; bare: SDK upsert of chunks of the same size with the same concurrency. The emulator runs in a child process; peak RSS is the client process only.',
        },
        null,
        2,
      ),
    )
  } finally {
    child.send('stop')
  }
}
