import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import {
  type Data,
  type GraphData,
  type GuardedConnection,
  ProviderError,
  tagged,
} from '@nvisy/provider-core'
import { readAll } from '@nvisy/provider-testkit'
import neo4j from 'neo4j-driver'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  cypher,
  type Neo4jTestTarget,
  neo4jSkipReason,
  openNeo4jTarget,
} from './__fixtures__/neo4j-env.js'
import { createNeo4jProvider, neo4jProvider } from './neo4j-provider.js'

const skip = await neo4jSkipReason()
const suffix = randomBytes(4).toString('hex')
const PERSON = `Person_${suffix}`
const CITY = `City_${suffix}`
const signal = () => new AbortController().signal

let target: Neo4jTestTarget
let connection: GuardedConnection

/** Every item of `stream` through the shared connection. */
function readGraph(stream: Record<string, unknown>, after?: unknown) {
  return readAll(connection, stream, { after })
}

async function count(label: string): Promise<number> {
  const result = await cypher(target, `MATCH (n:\`${label}\`) RETURN count(n) AS c`)
  return Number(result.records[0]!.get('c'))
}

const graph = (nodes: GraphData['nodes'], edges: GraphData['edges'] = []): GraphData => ({
  kind: 'graph',
  nodes,
  edges,
})

describe.skipIf(skip)('neo4j provider against Bolt', () => {
  beforeAll(async () => {
    target = await openNeo4jTarget()
    connection = await neo4jProvider.connect(target.input())
  })
  afterAll(async () => {
    for (const label of [PERSON, CITY])
      await cypher(target, `MATCH (n:\`${label}\`) DETACH DELETE n`).catch(() => {})
    await connection?.close()
    await target?.close()
  })
  beforeEach(async () => {
    for (const label of [PERSON, CITY])
      await cypher(target, `MATCH (n:\`${label}\`) DETACH DELETE n`)
  })

  it('round-trips int64, floats, bytes, lists, temporal and spatial values exactly', async () => {
    const properties = {
      big: 9223372036854775807n,
      negative: -9007199254740993n,
      float: 0.1,
      whole: 3,
      text: 'héllo',
      flag: true,
      bytes: new Uint8Array([0, 1, 254, 255]),
      ints: [1n, 2n, 3n],
      words: ['a', 'b'],
      date: tagged('date', '2024-02-29'),
      time: tagged('time', '13:45:00.123456789'),
      timetz: tagged('time', '13:45:00.000000001+02:00'),
      local: tagged('timestamp', '2024-02-29T13:45:00.123456789'),
      instant: tagged('timestamptz', '2024-02-29T11:45:00.987654321Z'),
      interval: tagged('interval', 'P14M3DT3600.000000001S'),
      point: tagged('json', '{"type":"Point","srid":4326,"coordinates":[12.5,-41.25]}'),
      point3d: tagged('json', '{"type":"Point","srid":9157,"coordinates":[1,2,3]}'),
    }
    const result = await connection.write(
      {},
      [graph([{ id: 'p1', labels: [PERSON], properties }])],
      { signal: signal() },
    )
    expect(result).toEqual({ written: 1, failed: [] })
    const items = await readGraph({ label: PERSON })
    expect(items).toHaveLength(1)
    const node = (items[0]!.data as GraphData).nodes[0]!
    expect(node).toEqual({ id: 'p1', labels: [PERSON], properties: { id: 'p1', ...properties } })
    // Writing what was read changes nothing.
    await connection.write({}, [items[0]!.data], { signal: signal() })
    const again = await readGraph({ label: PERSON })
    expect((again[0]!.data as GraphData).nodes[0]).toEqual(node)
  })

  it('converts other interval and timestamptz spellings to the canonical text', async () => {
    await connection.write(
      {},
      [
        graph([
          {
            id: 'p1',
            labels: [PERSON],
            properties: {
              d: tagged('interval', 'P1Y2M1W1DT1H1M1.5S'),
              t: tagged('timestamptz', '2024-02-29T13:45:00+02:00'),
              neg: tagged('interval', '-PT1.5S'),
            },
          },
        ]),
      ],
      { signal: signal() },
    )
    const node = ((await readGraph({ label: PERSON }))[0]!.data as GraphData).nodes[0]!
    expect(node.properties.d).toEqual(tagged('interval', 'P14M8DT3661.500000000S'))
    expect(node.properties.t).toEqual(tagged('timestamptz', '2024-02-29T11:45:00.000000000Z'))
    expect(node.properties.neg).toEqual(tagged('interval', 'P0M0DT-1.500000000S'))
  })

  it('integer keys stay integers and resume by integer order', async () => {
    const nodes = [10n, 2n, 33n].map((k) => ({
      id: String(k),
      labels: [PERSON],
      properties: { id: k },
    }))
    await connection.write(
      {},
      nodes.map((n) => graph([n])),
      { signal: signal() },
    )
    const items = await readGraph({ label: PERSON, pageSize: 2 })
    expect(items.map((i) => (i.data as GraphData).nodes[0]!.id)).toEqual(['2', '10', '33'])
    expect(items[0]!.context).toEqual({ key: '2', type: 'integer' })
    const rest = await readGraph({ label: PERSON }, JSON.parse(JSON.stringify(items[0]!.context)))
    expect(rest.map((i) => (i.data as GraphData).nodes[0]!.properties.id)).toEqual([10n, 33n])
  })

  it('MERGE is idempotent by node key and edge id; edges come with their start node', async () => {
    const batch = [
      graph([
        { id: 'ann', labels: [PERSON], properties: { name: 'Ann' } },
        { id: 'bob', labels: [PERSON], properties: { name: 'Bob' } },
        { id: 'paris', labels: [CITY], properties: { name: 'Paris' } },
      ]),
      graph(
        [],
        [
          { id: 'k1', type: 'KNOWS', from: 'ann', to: 'bob', properties: { since: 2020n } },
          { id: 'l1', type: 'LIVES_IN', from: 'ann', to: 'paris', properties: {} },
        ],
      ),
    ]
    for (let i = 0; i < 3; i++)
      expect(await connection.write({}, batch, { signal: signal() })).toEqual({
        written: 2,
        failed: [],
      })
    expect(await count(PERSON)).toBe(2)
    const rels = await cypher(target, `MATCH (a:\`${PERSON}\`)-[r]->(b) RETURN count(r) AS c`)
    expect(Number(rels.records[0]!.get('c'))).toBe(2)
    const items = await readGraph({ label: PERSON, relationships: ['KNOWS', 'LIVES_IN'] })
    const ann = items.find((i) => (i.data as GraphData).nodes[0]!.id === 'ann')!.data as GraphData
    expect(ann.edges.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'k1', type: 'KNOWS', from: 'ann', to: 'bob', properties: { id: 'k1', since: 2020n } },
      { id: 'l1', type: 'LIVES_IN', from: 'ann', to: 'paris', properties: { id: 'l1' } },
    ])
    // Only the requested types.
    const knowsOnly = await readGraph({ label: PERSON, relationships: ['KNOWS'] })
    expect((knowsOnly[0]!.data as GraphData).edges.map((e) => e.type)).toEqual(['KNOWS'])
  })

  it('endpoints outside the batch are found through endpointLabel', async () => {
    await connection.write(
      {},
      [
        graph([
          { id: 'ann', labels: [PERSON], properties: {} },
          { id: 'bob', labels: [PERSON], properties: {} },
        ]),
      ],
      {
        signal: signal(),
      },
    )
    const result = await connection.write(
      { endpointLabel: PERSON },
      [graph([], [{ id: 'k1', type: 'KNOWS', from: 'ann', to: 'bob', properties: {} }])],
      { signal: signal() },
    )
    expect(result).toEqual({ written: 1, failed: [] })
  })

  it('a bad item fails alone: nested map, mixed list, bad label, missing endpoint', async () => {
    const batch: Data[] = [
      graph([{ id: 'ok1', labels: [PERSON], properties: {} }]),
      graph([{ id: 'map', labels: [PERSON], properties: { nested: { a: 1 } as never } }]),
      graph([{ id: 'mixed', labels: [PERSON], properties: { list: ['a', 1] } }]),
      graph([{ id: 'label', labels: ['Bad Label`'], properties: {} }]),
      graph(
        [{ id: 'dangling', labels: [PERSON], properties: {} }],
        [{ id: 'e', type: 'KNOWS', from: 'dangling', to: 'ghost', properties: {} }],
      ),
      graph([{ id: 'ok2', labels: [PERSON], properties: {} }]),
    ]
    const result = await connection.write({}, batch, { signal: signal() })
    expect(result.written).toBe(2)
    expect(result.failed.map((f) => [f.index, f.error.kind])).toEqual([
      [1, 'data'],
      [2, 'data'],
      [3, 'data'],
      [4, 'data'],
    ])
    expect(result.failed[3]!.error.message).toContain('endpoint')
    expect(await count(PERSON)).toBe(2)
  })

  it('a constraint violation found by the server fails that item alone as data', async () => {
    const writeWithConstraint = (batch: Data[]) =>
      connection.write({ createConstraints: true }, batch, { signal: signal() })
    expect(
      await writeWithConstraint([graph([{ id: 'a', labels: [PERSON], properties: {} }])]),
    ).toEqual({ written: 1, failed: [] })
    // The same id under a label set that MERGE does not match creates a duplicate the constraint refuses.
    const result = await writeWithConstraint([
      graph([{ id: 'b', labels: [PERSON], properties: {} }]),
      graph([{ id: 'a', labels: [PERSON, CITY], properties: {} }]),
    ])
    expect(result.written).toBe(1)
    expect(result.failed.map((f) => [f.index, f.error.kind, f.error.code])).toEqual([
      [1, 'data', 'Neo.ClientError.Schema.ConstraintValidationFailed'],
    ])
    expect(await count(PERSON)).toBe(2)
  })

  it('hostile names are refused by the schemas and never reach the query text', async () => {
    const hostile = 'X`) MATCH (m) DETACH DELETE m //'
    await connection.write({}, [graph([{ id: 'keep', labels: [PERSON], properties: {} }])], {
      signal: signal(),
    })
    // Stream settings: config errors naming the field.
    for (const stream of [
      { label: hostile },
      { label: PERSON, keyProperty: hostile },
      { label: PERSON, relationships: [hostile] },
    ]) {
      const error = await readGraph(stream).catch((e: unknown) => e)
      expect(ProviderError.isInstance(error) && error.kind).toBe('config')
    }
    const sinkError = await connection
      .write({ keyProperty: hostile }, [], { signal: signal() })
      .catch((e: unknown) => e)
    expect(ProviderError.isInstance(sinkError) && sinkError.kind).toBe('config')
    // Names inside data: the item fails as data; property names travel as parameter map keys.
    const result = await connection.write(
      {},
      [
        graph([{ id: 'h1', labels: [hostile], properties: {} }]),
        graph(
          [{ id: 'h2', labels: [PERSON], properties: {} }],
          [{ id: 'e', type: hostile, from: 'h2', to: 'h2', properties: {} }],
        ),
        graph([{ id: 'h3', labels: [PERSON], properties: { [hostile]: 'value', 'n.x': 1n } }]),
      ],
      { signal: signal() },
    )
    expect(result.failed.map((f) => f.index)).toEqual([0, 1])
    expect(await count(PERSON)).toBe(2)
    const h3 = (await readGraph({ label: PERSON }))
      .map((i) => (i.data as GraphData).nodes[0]!)
      .find((n) => n.id === 'h3')!
    expect(h3.properties[hostile]).toBe('value')
    expect(h3.properties['n.x']).toBe(1n)
  })

  it('classifies a missing database as not_found and a closed port as transient', async () => {
    const input = target.input()
    const missing = await neo4jProvider.connect({
      ...input,
      params: { ...(input.params as object), database: `nope${suffix}` },
    })
    await expect(missing.check()).rejects.toMatchObject({ kind: 'not_found' })
    await missing.close()
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const closed = await neo4jProvider.connect({
      ...input,
      params: { url: `bolt://127.0.0.1:${port}`, connectionTimeoutMs: 2000 },
    })
    await expect(closed.check()).rejects.toMatchObject({ kind: 'transient' })
    await closed.close()
  })

  it('uses an injected driver without closing it', async () => {
    const driver = neo4j.driver(target.url, neo4j.auth.basic(target.user, target.password))
    const provider = createNeo4jProvider({ driver })
    const c = await provider.connect(target.input())
    await c.write({}, [graph([{ id: 'i1', labels: [PERSON], properties: { n: 5n } }])], {
      signal: signal(),
    })
    const items = (await readAll(c, { label: PERSON })).map((item) => item.data)
    expect((items[0] as GraphData).nodes[0]!.properties.n).toBe(5n)
    await c.close()
    await expect(driver.getServerInfo()).resolves.toBeDefined()
    await driver.close()
  })
})
