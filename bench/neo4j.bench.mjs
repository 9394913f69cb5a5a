#!/usr/bin/env node
// Neo4j writes: the provider (graph items -> one executeWrite per batch: UNWIND/MERGE nodes
// grouped by label set, then UNWIND/MATCH/MATCH/MERGE relationships) against a bare
// neo4j-driver loop that sends the same queries with the same batches, in the same run.
//
//   pnpm --filter @nvisy/provider-core build && pnpm --filter @nvisy/emulators build \
//     && pnpm --filter @nvisy/provider-neo4j build
//   node bench/neo4j.bench.mjs [--nodes 100000] [--batch 1000] [--url bolt://...]
//
// Upserts N nodes, then 2N relationships (each node -> the next two). Without --url or
// NVISY_TEST_NEO4J_URL it starts the project's Bolt emulator in a child process (so its memory
// is not counted) and says so: the numbers then measure the client side against an in-memory
// server, not a real Neo4j. Prints one JSON object: items/s and peak RSS per side, and
// ratio = provider / bare.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { createMeter } from './lib.mjs'

const { values: args } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '1000' },
    url: { type: 'string', default: process.env.NVISY_TEST_NEO4J_URL ?? '' },
  },
})
let nodeCount = Number(args.nodes)
const batchSize = Number(args.batch)
let relCount = nodeCount * 2

const packageRequire = createRequire(
  new URL('../packages/provider-neo4j/package.json', import.meta.url),
)
const neo4j = packageRequire('neo4j-driver')
const { neo4jProvider } = await import('../packages/provider-neo4j/dist/index.js')

async function startEmulator() {
  const entry = new URL('../packages/emulators/dist/index.js', import.meta.url).href
  const child = spawn(
    process.execPath,
    [
      '--max-old-space-size=8192',
      '--input-type=module',
      '-e',
      `const { startNeo4jEmulator } = await import(${JSON.stringify(entry)}); const e = await startNeo4jEmulator({ port: 0, auth: { user: 'neo4j', password: 'bench' } }); console.log(e.url)`,
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
const user = emulator ? 'neo4j' : (process.env.NVISY_TEST_NEO4J_USER ?? 'neo4j')
const password = emulator ? 'bench' : (process.env.NVISY_TEST_NEO4J_PASSWORD ?? '')
const database = process.env.NVISY_TEST_NEO4J_DATABASE || undefined
const run = randomBytes(4).toString('hex')

const keyOf = (i) => `node-${String(i).padStart(9, '0')}`
const nodeProps = (i) => ({ n: BigInt(i), name: `name ${i}`, score: (i % 1000) / 10 })
/** Relationship j: node floor(j/2) -> the next node (j even) or the one after (j odd). */
const relOf = (j) => {
  const from = Math.floor(j / 2)
  return {
    id: `rel-${j}`,
    from: keyOf(from),
    to: keyOf((from + 1 + (j % 2)) % nodeCount),
    w: (j % 100) / 100,
  }
}

const { sampleRss, measure } = createMeter({ items: nodeCount + relCount, unit: 'itemsPerSec' })

const driver = neo4j.driver(url, neo4j.auth.basic(user, password), { useBigInt: true })
async function query(text, params = {}) {
  const session = driver.session({ database })
  try {
    return await session.executeWrite((tx) => tx.run(text, params))
  } finally {
    await session.close()
  }
}
async function expectCounts(label) {
  const nodes = await query(`MATCH (n:\`${label}\`) RETURN count(n) AS c`)
  const rels = await query(`MATCH (a:\`${label}\`)-[r:\`LINKS\`]->(b) RETURN count(r) AS c`)
  const [n, r] = [Number(nodes.records[0].get('c')), Number(rels.records[0].get('c'))]
  if (n !== nodeCount || r !== relCount)
    throw new Error(
      `${label}: ${n} nodes and ${r} relationships, expected ${nodeCount} and ${relCount}`,
    )
  await query(`MATCH (n:\`${label}\`) DETACH DELETE n`)
}

async function bareLoop(label) {
  const nodeQuery = `UNWIND $rows AS row MERGE (n:\`${label}\` {\`id\`: row.key}) SET n += row.props`
  const relQuery = `UNWIND $rels AS r MATCH (a:\`${label}\` {\`id\`: r.from}) MATCH (b:\`${label}\` {\`id\`: r.to}) MERGE (a)-[e:\`LINKS\` {\`id\`: r.id}]->(b) SET e += r.props RETURN r.seq AS seq`
  for (let from = 0; from < nodeCount; from += batchSize) {
    const rows = []
    for (let i = from; i < Math.min(nodeCount, from + batchSize); i++)
      rows.push({ key: keyOf(i), props: nodeProps(i) })
    await query(nodeQuery, { rows })
    sampleRss()
  }
  for (let from = 0; from < relCount; from += batchSize) {
    const rels = []
    for (let j = from; j < Math.min(relCount, from + batchSize); j++) {
      const r = relOf(j)
      rels.push({ from: r.from, to: r.to, id: r.id, props: { w: r.w }, seq: neo4j.int(j - from) })
    }
    const result = await query(relQuery, { rels })
    if (result.records.length !== rels.length) throw new Error('bare loop: missing endpoints')
    sampleRss()
  }
}

async function providerLoop(connection, label) {
  const signal = new AbortController().signal
  for (let from = 0; from < nodeCount; from += batchSize) {
    const batch = []
    for (let i = from; i < Math.min(nodeCount, from + batchSize); i++) {
      batch.push({
        kind: 'graph',
        nodes: [{ id: keyOf(i), labels: [label], properties: nodeProps(i) }],
        edges: [],
      })
    }
    const result = await connection.write({}, batch, { signal })
    if (result.failed.length > 0) throw new Error(`provider: ${result.failed[0].error.message}`)
    sampleRss()
  }
  for (let from = 0; from < relCount; from += batchSize) {
    const batch = []
    for (let j = from; j < Math.min(relCount, from + batchSize); j++) {
      const r = relOf(j)
      batch.push({
        kind: 'graph',
        nodes: [],
        edges: [{ id: r.id, type: 'LINKS', from: r.from, to: r.to, properties: { w: r.w } }],
      })
    }
    const result = await connection.write({ endpointLabel: label }, batch, { signal })
    if (result.failed.length > 0) throw new Error(`provider: ${result.failed[0].error.message}`)
    sampleRss()
  }
}

try {
  const connection = await neo4jProvider.connect({
    credentials: { user, password },
    params: { url, ...(database ? { database } : {}) },
  })
  // Warm up both paths (JIT, connection pools) with a small untimed run each.
  const fullNodes = nodeCount
  nodeCount = Math.min(fullNodes, 2000)
  relCount = nodeCount * 2
  await bareLoop(`BenchWarmBare_${run}`)
  await expectCounts(`BenchWarmBare_${run}`)
  await providerLoop(connection, `BenchWarmProvider_${run}`)
  await expectCounts(`BenchWarmProvider_${run}`)
  nodeCount = fullNodes
  relCount = nodeCount * 2

  const bareLabel = `BenchBare_${run}`
  const bare = await measure('bare neo4j-driver loop', () => bareLoop(bareLabel))
  await expectCounts(bareLabel)
  const providerLabel = `BenchProvider_${run}`
  const provider = await measure('provider', () => providerLoop(connection, providerLabel))
  await connection.close()
  await expectCounts(providerLabel)

  console.log(
    JSON.stringify(
      {
        benchmark: 'neo4j',
        server: emulator
          ? 'emulator (@nvisy/emulators Bolt 5.4, in-memory; not a real Neo4j)'
          : url,
        nodes: nodeCount,
        relationships: relCount,
        batch: batchSize,
        bare,
        provider,
        ratio: Number((provider.itemsPerSec / bare.itemsPerSec).toFixed(3)),
      },
      null,
      2,
    ),
  )
} finally {
  await driver.close()
  emulator?.stop()
}
