// Partitioned runs over NATS with in-process instances of one queue group: a cancel reaches
// every partition and a new run resumes the stored plan; credentials travel in work items only
// sealed runtime-to-runtime; a work item forged to send a run's credentials to another host is
// refused before anything connects there; a failed partition stops the others; an instance
// that drains hands its partitions to another, which resumes them.
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:net'
import { createCurve } from '@nats-io/nkeys'
import {
  CancelReplySchema,
  PartitionWorkItemSchema,
  type Pipeline,
  validateMessage,
} from '@nvisy/protocol'
import { postgresProvider } from '@nvisy/provider-postgres'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executePipeline } from '../executor/index.js'
import { type Dispatcher, startDispatcher } from '../nats/index.js'
import { MapProviderRegistry } from '../registry.js'
import {
  expectValid,
  NATS_URL,
  natsSkip,
  PG,
  postgresSkip,
  ServerClient,
  TABLE_DIGEST,
  terminal,
  uniqueNaming,
} from './__fixtures__/harness.js'

const skip = (await natsSkip()) || (await postgresSkip())
const ROWS = 40_000
const suffix = randomBytes(4).toString('hex')
const schema = `nvisy_pdisp_${suffix}`
const naming = uniqueNaming('pdisp')
const decoder = new TextDecoder()
const SECRET = `pw-${randomBytes(12).toString('hex')}`

describe.skipIf(skip)('partitioned runs over NATS (two in-process instances)', () => {
  let db: pg.Pool
  let server: ServerClient
  const instances: Dispatcher[] = []
  const runtimeSeed = decoder.decode(createCurve().getSeed())
  const pgParams = { host: PG.host, port: PG.port, database: PG.database, schema }
  // Every work item put on the queue, as a subscriber of the subject sees it on the wire.
  const wire: Uint8Array[] = []

  function copy(id: string, target: string): Pipeline {
    const node = (nodeId: string, role: 'source' | 'sink', stream: Record<string, unknown>) => ({
      id: nodeId,
      role,
      provider: 'postgres',
      connection: {
        params: pgParams,
        sealedCredentials: server.seal({ user: PG.user, password: SECRET }),
      },
      stream,
    })
    return {
      id,
      nodes: [
        node('src', 'source', { table: 'source', pageSize: 500 }),
        { ...node('dst', 'sink', { table: target, mode: 'upsert' }), batch: { maxItems: 100 } },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 100, checkpointEverySeconds: 0.2 },
    }
  }

  beforeAll(async () => {
    db = new pg.Pool({ ...PG, max: 2 })
    await db.query(`CREATE SCHEMA ${schema}`)
    await db.query(
      `CREATE TABLE ${schema}.source (id bigint PRIMARY KEY, name text NOT NULL, ratio float8)`,
    )
    await db.query(
      `INSERT INTO ${schema}.source SELECT g, md5(g::text), g / 3.0::float8
       FROM generate_series(1, $1::int) g`,
      [ROWS],
    )
    await db.query(`ANALYZE ${schema}.source`)
    // Slow targets, so a cancel or a forged item lands while partitions run.
    await db.query(`
      CREATE FUNCTION ${schema}.nap() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END $$`)
    for (const table of ['target', 'target_forged', 'target_failing', 'target_drain']) {
      await db.query(`CREATE TABLE ${schema}.${table} (LIKE ${schema}.source INCLUDING ALL)`)
      await db.query(`
        CREATE TRIGGER nap BEFORE INSERT ON ${schema}.${table}
        FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.nap()`)
    }
    // Refuses the rows of one key range: the partition holding them fails.
    await db.query(
      `ALTER TABLE ${schema}.target_failing ADD CONSTRAINT no_middle CHECK (id NOT BETWEEN 20001 AND 20010)`,
    )
    server = await ServerClient.connect(naming)
    server.nc.subscribe(server.subjects.partitionWork, {
      callback: (error, msg) => {
        if (!error) wire.push(msg.data)
      },
    })
    for (const id of ['inst-a', 'inst-b'])
      instances.push(
        await startDispatcher({
          servers: NATS_URL,
          registry: new MapProviderRegistry([postgresProvider]),
          execute: executePipeline,
          serverPublicKey: server.publicKey,
          runtimeSeed,
          naming,
          instanceId: id,
          partitionConcurrency: 2,
          partitionAckWaitMs: 3_000,
          partitionPollMs: 200,
          executeOptions: { progressIntervalMs: 200, retryBaseDelayMs: 20 },
        }),
      )
    await server.catalog()
  }, 120_000)

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.close()))
    await server?.cleanup()
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await db.end()
    }
  })

  it('a cancel reaches every partition; a new run resumes the stored plan and the target equals the source', async () => {
    const pipelineId = `pdisp-${suffix}`
    const first = (await server.startRun(`cancel-${suffix}`, copy(pipelineId, 'target'), {
      partitions: 4,
    })) as any
    expect(first.plan).toMatchObject({ count: 4, pending: 4, resumed: false })

    let checkpoints = 0
    await server.runEvents(`cancel-${suffix}`, {
      partitioned: true,
      until: (event) => event.type === 'checkpoint' && ++checkpoints >= 4,
    })
    const cancel = await server.request(server.subjects.runCancel(`cancel-${suffix}`), {
      reason: 'operator asked',
    })
    expectValid(CancelReplySchema, cancel, 'cancel reply')

    const events = await server.runEvents(`cancel-${suffix}`, { partitioned: true })
    expect(terminal(events)).toMatchObject({ type: 'cancelled', reason: 'operator asked' })
    const ended = events.filter((e) => e.type === 'partition_ended') as any[]
    expect(ended).toHaveLength(4)
    expect(ended.some((e) => e.status === 'cancelled')).toBe(true)
    for (const e of ended) expect(['cancelled', 'completed']).toContain(e.status)
    const held = (await db.query(`SELECT count(*)::int AS n FROM ${schema}.target`)).rows[0].n
    expect(held).toBeLessThan(ROWS)

    // An ended run is no longer served, as an unpartitioned run that finished: no responder.
    const again = await server
      .request(server.subjects.runCancel(`cancel-${suffix}`), {}, 3_000)
      .then(
        () => undefined,
        (error: Error) => error,
      )
    expect(String((again as Error | undefined)?.message)).toMatch(/no responders/)

    // The same pipeline again: the stored plan is resumed, each partition from its checkpoint.
    const second = (await server.startRun(`resume-${suffix}`, copy(pipelineId, 'target'), {
      partitions: 4,
    })) as any
    expect(second.plan).toMatchObject({ planId: first.plan.planId, resumed: true })
    const resumed = await server.runEvents(`resume-${suffix}`, {
      partitioned: true,
      timeoutMs: 120_000,
    })
    const done = terminal(resumed) as any
    expect(done.type, JSON.stringify(done)).toBe('completed')
    // Fewer rows read than the table holds: the partitions went on from their checkpoints.
    expect(done.stats.nodes.src.items).toBeLessThan(ROWS)
    const [target, source] = await Promise.all([
      db.query(TABLE_DIGEST(`${schema}.target`)),
      db.query(TABLE_DIGEST(`${schema}.source`)),
    ])
    expect(target.rows[0]).toEqual(source.rows[0])

    // On the wire: no work item carries a password or the server's sealed blob.
    expect(wire.length).toBeGreaterThanOrEqual(4)
    for (const data of wire) {
      const text = decoder.decode(data)
      expect(text).not.toContain(SECRET)
      const item = JSON.parse(text)
      expect(validateMessage(PartitionWorkItemSchema, item).ok).toBe(true)
      for (const node of item.pipeline.nodes) {
        expect(node.connection.credentials).toBeUndefined()
        expect(node.connection.sealedCredentials).toBeUndefined()
      }
      expect(Object.keys(item.grants).sort()).toEqual(['dst', 'src'])
    }
  }, 240_000)

  it('refuses a work item forged to send the run credentials to another host; nothing connects there', async () => {
    // The attacker's host: counts every connection it gets.
    let connections = 0
    const trap: Server = createServer((socket) => {
      connections++
      socket.destroy()
    })
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve))
    const trapPort = (trap.address() as { port: number }).port
    try {
      const runId = `forged-${suffix}`
      const from = wire.length
      await server.startRun(runId, copy(`forged-${suffix}`, 'target_forged'), { partitions: 2 })
      const deadline = Date.now() + 10_000
      while (wire.length < from + 2 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20))
      const genuine = JSON.parse(decoder.decode(wire[from]!))
      expect(genuine.runId).toBe(runId)
      // Someone who can publish on the work subject replays the item with the sink's
      // destination changed to their own host.
      const forged = structuredClone(genuine)
      forged.pipeline.nodes.find((n: any) => n.id === 'dst').connection.params.port = trapPort
      await server.js.publish(server.subjects.partitionWork, JSON.stringify(forged), {
        msgID: `forged-${randomBytes(4).toString('hex')}`,
      })
      const events = await server.runEvents(runId, { partitioned: true, timeoutMs: 120_000 })
      const end = terminal(events) as any
      expect(end.type).toBe('failed')
      expect(end.error.kind).toBe('auth')
      expect(end.error.message).toMatch(/destination/)
      expect(end.error.issues).toContainEqual(
        expect.objectContaining({ path: '/grants/dst', rule: 'binding' }),
      )
      expect(connections).toBe(0)
      expect(JSON.stringify(events)).not.toContain(SECRET)
    } finally {
      trap.close()
    }
  }, 180_000)

  it('a failed partition stops the others and fails the run with its error', async () => {
    const runId = `failing-${suffix}`
    await server.startRun(runId, copy(`failing-${suffix}`, 'target_failing'), { partitions: 4 })
    const events = await server.runEvents(runId, { partitioned: true, timeoutMs: 120_000 })
    const end = terminal(events) as any
    expect(end.type, JSON.stringify(end)).toBe('failed')
    expect(end.error.kind).toBe('data')
    expect(end.error.message).toMatch(/^partition \d of 4 failed: /)
    const ended = events.filter((e) => e.type === 'partition_ended') as any[]
    expect(ended).toHaveLength(4)
    expect(ended.filter((e) => e.status === 'failed')).toHaveLength(1)
    // The others stopped (or had already finished), each with its checkpoint saved.
    for (const e of ended.filter((e) => e.status !== 'failed'))
      expect(['cancelled', 'completed']).toContain(e.status)
    const rows = (await db.query(`SELECT count(*)::int AS n FROM ${schema}.target_failing`)).rows[0]
    expect(rows.n).toBeLessThan(ROWS)
  }, 180_000)

  it('an instance that drains hands its partitions to another, which resumes them exactly', async () => {
    // A third instance joins, takes partitions, and drains while they run.
    const leaving = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([postgresProvider]),
      execute: executePipeline,
      serverPublicKey: server.publicKey,
      runtimeSeed,
      naming,
      instanceId: 'inst-leaving',
      partitionConcurrency: 4,
      partitionAckWaitMs: 3_000,
      partitionPollMs: 200,
      executeOptions: { progressIntervalMs: 200, retryBaseDelayMs: 20 },
    })
    instances.push(leaving)
    const runId = `drain-${suffix}`
    await server.startRun(runId, copy(`drain-${suffix}`, 'target_drain'), { partitions: 6 })
    const seen = await server.runEvents(runId, {
      partitioned: true,
      until: (event: any) =>
        event.type === 'checkpoint' && event.partition?.instanceId === 'inst-leaving',
    })
    expect((seen.at(-1) as any).partition.instanceId).toBe('inst-leaving')
    await leaving.drain()
    const events = await server.runEvents(runId, { partitioned: true, timeoutMs: 120_000 })
    expect(terminal(events).type).toBe('completed')
    const ended = events.filter((e) => e.type === 'partition_ended') as any[]
    expect(ended).toHaveLength(6)
    // Nothing ended on the instance that left mid-partition... unless it finished before.
    const handedOver = ended.filter(
      (e) =>
        e.instanceId !== 'inst-leaving' &&
        events.some(
          (c: any) =>
            c.type === 'checkpoint' &&
            c.partition?.index === e.partition.index &&
            c.partition.instanceId === 'inst-leaving',
        ),
    )
    expect(handedOver.length).toBeGreaterThanOrEqual(1)
    const [target, source] = await Promise.all([
      db.query(TABLE_DIGEST(`${schema}.target_drain`)),
      db.query(TABLE_DIGEST(`${schema}.source`)),
    ])
    expect(target.rows[0]).toEqual(source.rows[0])
  }, 180_000)
})
