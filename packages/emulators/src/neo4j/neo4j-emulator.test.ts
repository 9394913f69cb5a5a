import neo4j, { type Driver } from 'neo4j-driver'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type Neo4jEmulator, startNeo4jEmulator } from './index.js'

const USER = 'neo4j'
const PASSWORD = 'secret-password'
const MERGE_NODES = 'UNWIND $rows AS row MERGE (n:`Person` {`id`: row.key}) SET n += row.props'
const MERGE_RELS =
  'UNWIND $rels AS r MATCH (a:`Person` {`id`: r.from}) MATCH (b:`Person` {`id`: r.to}) MERGE (a)-[e:`KNOWS` {`id`: r.id}]->(b) SET e += r.props RETURN r.seq AS seq'
const PAGE = 'MATCH (n:`Person`) WHERE n.`id` > $after RETURN n ORDER BY n.`id` LIMIT $limit'

let emulator: Neo4jEmulator
let driver: Driver

beforeAll(async () => {
  emulator = await startNeo4jEmulator({
    auth: { user: USER, password: PASSWORD },
    databases: ['neo4j', 'other'],
  })
  driver = neo4j.driver(emulator.url, neo4j.auth.basic(USER, PASSWORD), { useBigInt: true })
})

afterAll(async () => {
  await driver?.close()
  await emulator?.close()
})

beforeEach(() => {
  emulator.graph.clear()
  emulator.database('other').clear()
})

async function write(query: string, params: Record<string, unknown> = {}) {
  const session = driver.session()
  try {
    return await session.executeWrite((tx) => tx.run(query, params))
  } finally {
    await session.close()
  }
}

async function read(query: string, params: Record<string, unknown> = {}) {
  const session = driver.session({ defaultAccessMode: neo4j.session.READ })
  try {
    return await session.executeRead((tx) => tx.run(query, params))
  } finally {
    await session.close()
  }
}

describe('neo4j emulator: connection', () => {
  it('speaks Bolt 5.4 over bolt:// and neo4j:// (ROUTE)', async () => {
    for (const url of [emulator.url, emulator.routingUrl]) {
      const d = neo4j.driver(url, neo4j.auth.basic(USER, PASSWORD))
      try {
        const info = await d.getServerInfo()
        expect(info.protocolVersion).toMatchObject({ major: 5, minor: 4 })
        expect(info.agent).toBe('Neo4j/5.26.0')
        const session = d.session()
        const result = await session.run('RETURN 1 AS ok')
        expect(result.records[0]!.get('ok').toNumber()).toBe(1)
        await session.close()
      } finally {
        await d.close()
      }
    }
  })

  it('refuses wrong credentials with Unauthorized (basic and bearer)', async () => {
    const bad = neo4j.driver(emulator.url, neo4j.auth.basic(USER, 'wrong'))
    await expect(bad.verifyConnectivity()).rejects.toMatchObject({
      code: 'Neo.ClientError.Security.Unauthorized',
    })
    await bad.close()
    const token = neo4j.driver(emulator.url, neo4j.auth.bearer('not-a-token'))
    await expect(token.verifyConnectivity()).rejects.toMatchObject({
      code: 'Neo.ClientError.Security.Unauthorized',
    })
    await token.close()
  })

  it('accepts a bearer token when configured', async () => {
    const other = await startNeo4jEmulator({ auth: { token: 'tok-123' } })
    const d = neo4j.driver(other.url, neo4j.auth.bearer('tok-123'))
    try {
      await expect(d.getServerInfo()).resolves.toMatchObject({ agent: 'Neo4j/5.26.0' })
    } finally {
      await d.close()
      await other.close()
    }
  })

  it('answers an unknown database with DatabaseNotFound, and keeps databases apart', async () => {
    const session = driver.session({ database: 'missing' })
    await expect(session.run('RETURN 1 AS ok')).rejects.toMatchObject({
      code: 'Neo.ClientError.Database.DatabaseNotFound',
    })
    await session.close()
    const other = driver.session({ database: 'other' })
    await other.executeWrite((tx) => tx.run(MERGE_NODES, { rows: [{ key: 'x', props: {} }] }))
    await other.close()
    expect(emulator.database('other').nodes()).toHaveLength(1)
    expect(emulator.graph.nodes()).toHaveLength(0)
  })

  it('after a FAILURE ignores the rest until RESET, and the session recovers', async () => {
    const session = driver.session()
    await expect(
      session.run('MATCH (n) RETURN n LIMIT $limit', { limit: 5 }),
    ).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.ArgumentError',
    })
    const ok = await session.run('RETURN 1 AS ok')
    expect(ok.records).toHaveLength(1)
    await session.close()
  })
})

describe('neo4j emulator: Cypher', () => {
  it('LIMIT with a float fails like Neo4j; with an integer it works', async () => {
    await write(MERGE_NODES, { rows: [{ key: 'a', props: {} }] })
    await expect(read(PAGE, { after: '', limit: 10 })).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.ArgumentError',
    })
    const result = await read(PAGE, { after: '', limit: neo4j.int(10) })
    expect(result.records).toHaveLength(1)
  })

  it('refuses queries outside the subset with SyntaxError', async () => {
    await expect(read('MATCH (n) WITH n RETURN n')).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.SyntaxError',
    })
    await expect(read('CALL db.labels()')).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.SyntaxError',
    })
    await expect(read('MATCH (n:`Bad` RETURN n')).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.SyntaxError',
    })
  })

  it('MERGE matches or creates on the key; SET += updates, null removes; counters are reported', async () => {
    const first = await write(MERGE_NODES, {
      rows: [
        { key: 'a', props: { name: 'Ann', age: neo4j.int(30) } },
        { key: 'b', props: { name: 'Bob' } },
      ],
    })
    expect(first.summary.counters.updates()).toMatchObject({ nodesCreated: 2, labelsAdded: 2 })
    const second = await write(MERGE_NODES, {
      rows: [{ key: 'a', props: { name: 'Anna', age: null } }],
    })
    expect(second.summary.counters.updates().nodesCreated).toBe(0)
    const nodes = emulator.graph.nodes('Person')
    expect(nodes).toHaveLength(2)
    expect(nodes.find((n) => n.properties.id === 'a')!.properties).toEqual({
      id: 'a',
      name: 'Anna',
    })
  })

  it('keeps int64 and floats apart, and returns Node and Relationship structures', async () => {
    await write(MERGE_NODES, {
      rows: [
        { key: 'a', props: { big: 9007199254740993n, f: 3 } },
        { key: 'b', props: {} },
      ],
    })
    const stored = emulator.graph.nodes('Person').find((n) => n.properties.id === 'a')!
    expect(stored.properties.big).toBe(9007199254740993n)
    expect(stored.properties.f).toBe(3)
    expect(typeof stored.properties.f).toBe('number')
    const rels = await write(MERGE_RELS, {
      rels: [{ from: 'a', to: 'b', id: 'e1', props: { w: 0.5 }, seq: neo4j.int(0) }],
    })
    expect(rels.records.map((r) => r.get('seq'))).toEqual([0n])
    const result = await read(
      'UNWIND $keys AS nodeKey MATCH (n:`Person` {`id`: nodeKey})-[r:`KNOWS`|`OTHER`]->(m) WHERE m.`id` IS NOT NULL RETURN nodeKey, r, m.`id` AS target',
      { keys: ['a', 'b'] },
    )
    expect(result.records).toHaveLength(1)
    const r = result.records[0]!.get('r')
    expect(r.type).toBe('KNOWS')
    expect(r.properties).toEqual({ id: 'e1', w: 0.5 })
    expect(typeof r.elementId).toBe('string')
    expect(result.records[0]!.get('target')).toBe('b')
    const node = (await read(PAGE, { after: '', limit: neo4j.int(1) })).records[0]!.get('n')
    expect(node.labels).toEqual(['Person'])
    expect(node.properties.big).toBe(9007199254740993n)
  })

  it('relationship MERGE needs both endpoints and is idempotent by id', async () => {
    await write(MERGE_NODES, {
      rows: [
        { key: 'a', props: {} },
        { key: 'b', props: {} },
      ],
    })
    const rels = [
      { from: 'a', to: 'b', id: 'e1', props: {}, seq: neo4j.int(0) },
      { from: 'a', to: 'nobody', id: 'e2', props: {}, seq: neo4j.int(1) },
    ]
    const first = await write(MERGE_RELS, { rels })
    expect(first.records.map((r) => r.get('seq'))).toEqual([0n])
    await write(MERGE_RELS, { rels })
    expect(emulator.graph.relationships('KNOWS')).toHaveLength(1)
  })

  it('round-trips temporal and spatial values unchanged', async () => {
    const values = {
      d: new neo4j.types.Date(2024, 2, 29),
      ldt: new neo4j.types.LocalDateTime(2024, 2, 29, 13, 45, 0, 123456789),
      dt: new neo4j.types.DateTime(2024, 2, 29, 13, 45, 0, 1, 7200),
      dur: new neo4j.types.Duration(14, 3, 3600, 1),
      p: new neo4j.types.Point(4326, 1.5, 2.5),
    }
    await write(MERGE_NODES, { rows: [{ key: 't', props: values }] })
    const node = (await read(PAGE, { after: '', limit: neo4j.int(1) })).records[0]!.get('n')
    expect(node.properties.d.toString()).toBe('2024-02-29')
    expect(node.properties.ldt.toString()).toBe('2024-02-29T13:45:00.123456789')
    expect(node.properties.dt.toString()).toBe('2024-02-29T13:45:00.000000001+02:00')
    expect(node.properties.dur.toString()).toBe(values.dur.toString())
    expect(node.properties.p.x).toBe(1.5)
  })

  it('refuses maps and mixed lists as property values with TypeError, writing nothing', async () => {
    await expect(
      write(MERGE_NODES, {
        rows: [
          { key: 'a', props: {} },
          { key: 'm', props: { nested: { a: 1 } } },
        ],
      }),
    ).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.TypeError',
    })
    await expect(
      write(MERGE_NODES, { rows: [{ key: 'l', props: { mixed: ['a', 1] } }] }),
    ).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.TypeError',
    })
    expect(emulator.graph.nodes()).toHaveLength(0)
  })

  it('MERGE with a null key fails', async () => {
    await expect(write(MERGE_NODES, { rows: [{ key: null, props: {} }] })).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.SemanticError',
    })
  })

  it('enforces uniqueness constraints', async () => {
    await write(
      'CREATE CONSTRAINT person_id IF NOT EXISTS FOR (n:`Person`) REQUIRE n.`id` IS UNIQUE',
    )
    await write(
      'CREATE CONSTRAINT person_id IF NOT EXISTS FOR (n:`Person`) REQUIRE n.`id` IS UNIQUE',
    )
    expect(emulator.graph.constraints()).toEqual([
      { name: 'person_id', label: 'Person', property: 'id' },
    ])
    await write(MERGE_NODES, { rows: [{ key: 'a', props: {} }] })
    // A second label set does not match the existing node, so MERGE creates a duplicate id.
    await expect(
      write('UNWIND $rows AS row MERGE (n:`Person`:`Admin` {`id`: row.key}) SET n += row.props', {
        rows: [{ key: 'a', props: {} }],
      }),
    ).rejects.toMatchObject({ code: 'Neo.ClientError.Schema.ConstraintValidationFailed' })
    expect(emulator.graph.nodes()).toHaveLength(1)
  })

  it('DETACH DELETE removes nodes and their relationships; count() aggregates', async () => {
    await write(MERGE_NODES, {
      rows: [
        { key: 'a', props: {} },
        { key: 'b', props: {} },
      ],
    })
    await write(MERGE_RELS, {
      rels: [{ from: 'a', to: 'b', id: 'e', props: {}, seq: neo4j.int(0) }],
    })
    const count = await read('MATCH (n:`Person`) RETURN count(n) AS c')
    expect(count.records[0]!.get('c')).toBe(2n)
    const deleted = await write('MATCH (n:`Person`) DETACH DELETE n')
    expect(deleted.summary.counters.updates()).toMatchObject({
      nodesDeleted: 2,
      relationshipsDeleted: 1,
    })
    expect(emulator.graph.nodes()).toHaveLength(0)
    expect(emulator.graph.relationships()).toHaveLength(0)
  })

  it('a name in backticks is only a name', async () => {
    const hostile = 'X`) DETACH DELETE n //'
    await write(MERGE_NODES, { rows: [{ key: 'keep', props: {} }] })
    await write(
      `UNWIND $rows AS row MERGE (n:\`${hostile.replace(/`/g, '``')}\` {\`id\`: row.key}) SET n += row.props`,
      {
        rows: [{ key: 'h', props: {} }],
      },
    )
    expect(emulator.graph.nodes(hostile)).toHaveLength(1)
    expect(emulator.graph.nodes('Person')).toHaveLength(1)
  })
})

describe('neo4j emulator: transactions', () => {
  it('writes of a rolled-back or failed transaction are not visible', async () => {
    const session = driver.session()
    const tx = await session.beginTransaction()
    await tx.run(MERGE_NODES, { rows: [{ key: 'rolled', props: {} }] })
    await tx.rollback()
    await expect(
      session.executeWrite(async (t) => {
        await t.run(MERGE_NODES, { rows: [{ key: 'thrown', props: {} }] })
        throw new Error('application error')
      }),
    ).rejects.toThrow('application error')
    await expect(
      session.executeWrite(async (t) => {
        await t.run(MERGE_NODES, { rows: [{ key: 'failed', props: {} }] })
        await t.run(MERGE_NODES, { rows: [{ key: 'x', props: { bad: { map: true } } }] })
      }),
    ).rejects.toMatchObject({ code: 'Neo.ClientError.Statement.TypeError' })
    await session.close()
    expect(emulator.graph.nodes()).toEqual([])
    const committed = await write(MERGE_NODES, { rows: [{ key: 'ok', props: {} }] })
    expect(committed.summary.counters.updates().nodesCreated).toBe(1)
    expect(emulator.graph.nodes().map((n) => n.properties.id)).toEqual(['ok'])
  })

  it('a read transaction may not write', async () => {
    await expect(read(MERGE_NODES, { rows: [{ key: 'a', props: {} }] })).rejects.toMatchObject({
      code: 'Neo.ClientError.Statement.AccessMode',
    })
  })

  it('streams large results in PULL batches', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => ({
      key: `k${String(i).padStart(5, '0')}`,
      props: { i: neo4j.int(i) },
    }))
    await write(MERGE_NODES, { rows })
    const session = driver.session({ fetchSize: 300 })
    const result = await session.run(
      'MATCH (n:`Person`) WHERE n.`id` IS NOT NULL RETURN n ORDER BY n.`id` LIMIT $limit',
      {
        limit: neo4j.int(5000),
      },
    )
    await session.close()
    expect(result.records).toHaveLength(2500)
    expect(result.records[2499]!.get('n').properties.i).toBe(2499n)
  })
})
