#!/usr/bin/env node
// OpenSearch: bulk indexing and point-in-time reads through the provider against the bare
// @opensearch-project/opensearch 3 client, in the same run, as ratios:
//   - write: provider.write in batches of --batch (one _bulk per 5 MiB / 1000 documents) vs the
//     client's helpers.bulk (flushBytes 5 MiB, concurrency 1: the same requests, one at a time);
//   - read: provider.read (PIT + search_after by _shard_doc, pages of --page) vs a hand-written
//     createPit / search loop with the same page size.
//
//   pnpm --filter @nvisy/emulators build && pnpm --filter @nvisy/provider-opensearch build
//   node bench/opensearch.bench.mjs [--count 1000000] [--batch 1000] [--page 1000] [--url http://...]
//
// --count defaults to NVISY_BENCH_SEARCH_DOCS or 1,000,000. Without --url (or
// NVISY_TEST_OPENSEARCH_URL) it starts the project's search emulator in a child process (its
// memory is not counted) and says so: the numbers then measure the client side against an
// in-memory server, not a real cluster. Prints one JSON object with docs/s, peak RSS and
// ratio = provider / bare for each operation.
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createMeter } from './lib.mjs'

const emulatorsDist = new URL('../packages/emulators/dist/index.js', import.meta.url)

if (process.argv[2] === '--serve-emulator') {
  const { startSearchEmulator } = await import(emulatorsDist.href)
  const emulator = await startSearchEmulator({ flavor: 'opensearch' })
  process.send({ url: emulator.url })
  process.on('message', async (message) => {
    if (message === 'stop') {
      await emulator.close()
      process.exit(0)
    }
  })
} else {
  const { values: args } = parseArgs({
    options: {
      count: { type: 'string', default: process.env.NVISY_BENCH_SEARCH_DOCS ?? '1000000' },
      batch: { type: 'string', default: '1000' },
      page: { type: 'string', default: '1000' },
      url: { type: 'string', default: process.env.NVISY_TEST_OPENSEARCH_URL ?? '' },
    },
  })
  const count = Number(args.count)
  const batchSize = Number(args.batch)
  const pageSize = Number(args.page)
  const maxBulkBytes = 5 * 1024 * 1024

  const packageRequire = createRequire(
    new URL('../packages/provider-opensearch/package.json', import.meta.url),
  )
  const { Client } = packageRequire('@opensearch-project/opensearch')
  const { opensearchProvider } = await import('../packages/provider-opensearch/dist/index.js')

  let child
  let url = args.url
  if (!url) {
    child = fork(fileURLToPath(import.meta.url), ['--serve-emulator'], {
      execArgv: ['--max-old-space-size=8192'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    url = await new Promise((resolve, reject) => {
      child.once('message', (message) => resolve(message.url))
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`emulator exited with ${code}`)))
    })
  }

  const prefix = `nvisy-bench-${randomBytes(4).toString('hex')}`
  const doc = (i) => ({
    n: i,
    title: `document ${i}`,
    tags: ['bench', i % 2 === 0 ? 'even' : 'odd'],
    value: i * 0.5,
  })
  const client = new Client({ node: url, maxRetries: 0, requestTimeout: 120_000 })
  const writeMeter = createMeter({ items: count, unit: 'docsPerSec' })
  const readMeter = createMeter({ items: count, unit: 'docsPerSec' })
  const signal = new AbortController().signal

  try {
    const bareIndex = `${prefix}-bare`
    const bareWrite = await writeMeter.measure('bare helpers.bulk', async () => {
      async function* documents() {
        for (let i = 0; i < count; i++) {
          if (i % 10_000 === 0) writeMeter.sampleRss()
          yield doc(i)
        }
      }
      const stats = await client.helpers.bulk({
        datasource: documents(),
        onDocument: (d) => ({ index: { _index: bareIndex, _id: `d${d.n}` } }),
        flushBytes: maxBulkBytes,
        concurrency: 1,
        retries: 0,
      })
      if (stats.successful !== count) throw new Error(`bare bulk: ${JSON.stringify(stats)}`)
    })

    const connection = await opensearchProvider.connect({
      credentials: {},
      params: { url, maxRetries: 0, requestTimeoutMs: 120_000 },
    })
    const providerIndex = `${prefix}-provider`
    const providerWrite = await writeMeter.measure('provider write', async () => {
      for (let from = 0; from < count; from += batchSize) {
        const batch = []
        for (let i = from; i < Math.min(count, from + batchSize); i++)
          batch.push({ kind: 'document', id: `d${i}`, content: doc(i) })
        const result = await connection.write(
          { index: providerIndex, maxBulkBytes, maxBulkItems: batchSize },
          batch,
          { signal },
        )
        if (result.failed.length > 0) throw result.failed[0].error
        writeMeter.sampleRss()
      }
    })
    await client.indices.refresh({ index: `${prefix}-*` })
    const counted = (await client.count({ index: providerIndex })).body.count
    if (counted !== count) throw new Error(`provider wrote ${counted}`)

    const bareRead = await readMeter.measure('bare PIT loop', async () => {
      const pit = (await client.createPit({ index: [bareIndex], keep_alive: '5m' })).body.pit_id
      let after
      let seen = 0
      for (;;) {
        const { body: page } = await client.search({
          body: {
            pit: { id: pit, keep_alive: '5m' },
            size: pageSize,
            sort: [{ _shard_doc: 'asc' }],
            track_total_hits: false,
            ...(after ? { search_after: after } : {}),
          },
        })
        const hits = page.hits.hits
        seen += hits.length
        readMeter.sampleRss()
        if (hits.length < pageSize) break
        after = hits[hits.length - 1].sort
      }
      await client.deletePit({ body: { pit_id: [pit] } })
      if (seen !== count) throw new Error(`bare read saw ${seen}`)
    })
    const providerRead = await readMeter.measure('provider read', async () => {
      let seen = 0
      for await (const _item of connection.read({ index: bareIndex, pageSize }, { signal })) {
        if (++seen % 10_000 === 0) readMeter.sampleRss()
      }
      if (seen !== count) throw new Error(`provider read saw ${seen}`)
    })
    await connection.close()

    console.log(
      JSON.stringify(
        {
          benchmark: `opensearch bulk index and PIT read (${child ? 'against the nvisy search emulator, not a cluster' : 'against the cluster at --url'})`,
          count,
          batchSize,
          pageSize,
          write: {
            bare: bareWrite,
            provider: providerWrite,
            ratio: Number((providerWrite.docsPerSec / bareWrite.docsPerSec).toFixed(3)),
          },
          read: {
            bare: bareRead,
            provider: providerRead,
            ratio: Number((providerRead.docsPerSec / bareRead.docsPerSec).toFixed(3)),
          },
        },
        null,
        2,
      ),
    )
  } finally {
    await client.indices.delete({ index: `${prefix}-*` }, { ignore: [404] }).catch(() => {})
    await client.close()
    child?.send('stop')
  }
}
