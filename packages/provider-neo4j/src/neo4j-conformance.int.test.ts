import { randomBytes } from 'node:crypto'
import type { Data, GraphData } from '@nvisy/provider-core'
import { runProviderConformance } from '@nvisy/provider-testkit'
import neo4j from 'neo4j-driver'
import {
  cypher,
  type Neo4jTestTarget,
  neo4jSkipReason,
  openNeo4jTarget,
  realUrl,
} from './__fixtures__/neo4j-env.js'
import { neo4jProvider } from './neo4j-provider.js'

const skip = await neo4jSkipReason()
let target: Neo4jTestTarget | undefined
const suffix = randomBytes(4).toString('hex')
const SOURCE = `ConfSource_${suffix}`
const SINK = `ConfSink_${suffix}`

const keyOf = (i: number) => `item-${String(i).padStart(6, '0')}`

function numberOf(data: Data): number {
  const graph = data as GraphData
  const n = graph.nodes[0]?.properties.n
  if (typeof n !== 'bigint') throw new Error(`expected a bigint n, got ${String(n)}`)
  return Number(n)
}

async function nodesOf(label: string): Promise<Record<string, unknown>[]> {
  const result = await cypher(
    target!,
    `MATCH (n:\`${label}\`) WHERE n.\`id\` IS NOT NULL RETURN n ORDER BY n.\`id\` LIMIT $limit`,
    { limit: neo4j.int(1_000_000) },
  )
  return result.records.map((r) => r.get('n').properties)
}

runProviderConformance({
  name: `neo4j (${realUrl ? 'NVISY_TEST_NEO4J_URL' : 'emulator'})`,
  provider: neo4jProvider,
  skip,
  input: () => target!.input(),
  badCredentials: { input: (canary) => target!.badInput(canary), kind: 'auth' },
  badParams: {
    input: {
      credentials: { user: 'neo4j', password: 'x' },
      params: { url: 'http://localhost:7474' },
    },
    path: '/params/url',
  },
  fixture: {
    async setup() {
      target = await openNeo4jTarget()
    },
    async teardown() {
      if (target) {
        await cypher(target, `MATCH (n:\`${SOURCE}\`) DETACH DELETE n`)
        await cypher(target, `MATCH (n:\`${SINK}\`) DETACH DELETE n`)
        await target.close()
      }
    },
    async clear() {
      await cypher(target!, `MATCH (n:\`${SOURCE}\`) DETACH DELETE n`)
      await cypher(target!, `MATCH (n:\`${SINK}\`) DETACH DELETE n`)
    },
    async seed(from, count) {
      const rows = Array.from({ length: count }, (_, k) => ({
        key: keyOf(from + k),
        props: { n: BigInt(from + k), name: `item ${from + k}` },
      }))
      await cypher(
        target!,
        `UNWIND $rows AS row MERGE (n:\`${SOURCE}\` {\`id\`: row.key}) SET n += row.props`,
        { rows },
      )
      // Each item links to the one before it.
      const rels = rows
        .map((row, k) => ({
          from: row.key,
          to: keyOf(from + k - 1),
          id: `prev-${row.key}`,
          props: {},
          seq: neo4j.int(k),
        }))
        .filter((_, k) => from + k > 0)
      await cypher(
        target!,
        `UNWIND $rels AS r MATCH (a:\`${SOURCE}\` {\`id\`: r.from}) MATCH (b:\`${SOURCE}\` {\`id\`: r.to}) MERGE (a)-[e:\`PREV\` {\`id\`: r.id}]->(b) SET e += r.props RETURN r.seq AS seq`,
        { rels },
      )
    },
    stream: { label: SOURCE, pageSize: 7, relationships: ['PREV'] },
    itemNumber: numberOf,
    sink: {
      stream: { keyProperty: 'id' },
      makeItem: (i) => ({
        kind: 'graph',
        nodes: [{ id: keyOf(i), labels: [SINK], properties: { n: BigInt(i), name: `item ${i}` } }],
        edges: [
          { id: `self-${i}`, type: 'SELF', from: keyOf(i), to: keyOf(i), properties: { w: 1.5 } },
        ],
      }),
      // Its edge points at a node that exists nowhere: the item fails, and its node is not written.
      makeBadItem: () => ({
        kind: 'graph',
        nodes: [{ id: 'bad-item', labels: [SINK], properties: { n: 999n } }],
        edges: [
          {
            id: 'dangling',
            type: 'LINKS',
            from: 'bad-item',
            to: `missing-${suffix}`,
            properties: {},
          },
        ],
      }),
      async storedItems() {
        return (await nodesOf(SINK)).map((p) => Number(p.n as bigint))
      },
    },
  },
})
