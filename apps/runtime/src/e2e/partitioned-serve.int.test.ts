// One large run across three `nvisy serve` processes (one queue group, one seed): a 1M-row
// PostgreSQL table copied in 8 partitions from the JetStream work queue, one instance killed
// (SIGKILL) while it runs a partition. Its work item is redelivered after the ack wait to a
// survivor, which resumes the partition from its checkpoint; the run completes once every
// partition has, and the destination equals the source by PostgreSQL's own digest.
import { randomBytes } from 'node:crypto'
import { jetstreamManager } from '@nats-io/jetstream'
import { createCurve } from '@nats-io/nkeys'
import type { Pipeline, RunEvent } from '@nvisy/protocol'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  buildRuntimeDist,
  natsSkip,
  PG,
  postgresSkip,
  ServerClient,
  TABLE_DIGEST,
  terminal,
  uniqueNaming,
} from './__fixtures__/harness.js'
import { killAll, killMidPartition, type Serve, serveInstance } from './__fixtures__/serve-group.js'

const skip = (await natsSkip()) || (await postgresSkip())
const ROWS = 1_000_000
const PARTITIONS = 8
const suffix = randomBytes(4).toString('hex')
const schema = `nvisy_parts_${suffix}`
const naming = uniqueNaming('parts')
const decoder = new TextDecoder()
const SECRET = `pw-${randomBytes(12).toString('hex')}`

describe.skipIf(skip)('a partitioned run across three nvisy serve processes', () => {
  let db: pg.Pool
  let server: ServerClient
  const running: Serve[] = []
  const runtimeSeed = decoder.decode(createCurve().getSeed())
  const pgParams = { host: PG.host, port: PG.port, database: PG.database, schema }

  function serve(): Serve {
    const run = serveInstance({
      naming,
      serverPublicKey: server.publicKey,
      runtimeSeed,
      config: 'nvisy.config.json',
      extraArgs: ['--partition-ack-wait', '4', '--partition-concurrency', '2'],
    })
    running.push(run)
    return run
  }

  function copy(id: string): Pipeline {
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
        node('src', 'source', { table: 'source', pageSize: 2000 }),
        { ...node('dst', 'sink', { table: 'target', mode: 'upsert' }), batch: { maxItems: 2000 } },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 2000, checkpointEverySeconds: 0.5 },
    }
  }

  beforeAll(async () => {
    await buildRuntimeDist()
    db = new pg.Pool({ ...PG, max: 2 })
    await db.query(`CREATE SCHEMA ${schema}`)
    await db.query(`
      CREATE TABLE ${schema}.source (
        id bigint PRIMARY KEY, name text NOT NULL, amount numeric(14, 2), ratio float8,
        at timestamptz
      )`)
    // Skewed keys: a dense run and a sparse tail, so equal-width ranges would be uneven.
    await db.query(
      `INSERT INTO ${schema}.source
       SELECT CASE WHEN g <= 900000 THEN g ELSE 900000 + (g - 900000) * 97 END,
              md5(g::text), g * 3.5, g / 7.0::float8,
              timestamptz '2024-05-01 12:00:00.123456+00' + g * interval '1 second'
       FROM generate_series(1, $1::int) g`,
      [ROWS],
    )
    await db.query(`ANALYZE ${schema}.source`)
    await db.query(`CREATE TABLE ${schema}.target (LIKE ${schema}.source INCLUDING ALL)`)
    server = await ServerClient.connect(naming)
  }, 300_000)

  afterAll(async () => {
    killAll(running)
    await server?.cleanup()
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await db.end()
    }
  })

  it('copies 1M rows in 8 partitions, survives a SIGKILL of an instance mid-partition, and the target equals the source', async () => {
    const instances = [serve(), serve(), serve()]
    const ids = await Promise.all(instances.map((run) => run.ready()))
    expect(new Set(ids).size).toBe(3)
    await server.catalog()

    const runId = `parts-${suffix}`
    const reply = (await server.startRun(runId, copy(`parts-${suffix}`), {
      partitions: PARTITIONS,
    })) as any
    expect(reply.plan).toMatchObject({ requested: PARTITIONS, count: PARTITIONS, pending: 8 })
    expect(reply.plan.planId).toMatch(/^[0-9a-f]{8}$/)

    // Credentials never travel in the clear: the work items carry grants sealed runtime-to-runtime.
    const jsm = await jetstreamManager(server.nc)
    const work = await jsm.streams.info(naming.workStream!)
    expect(work.config.retention).toBe('workqueue')

    // Kill an instance while it runs a partition that has checkpointed at least twice.
    const { instanceId: victimId, index: victimIndex } = await killMidPartition(
      server,
      runId,
      instances,
      ids,
      2,
    )

    const events = await server.runEvents(runId, { partitioned: true, timeoutMs: 300_000 })
    const done = terminal(events) as any
    expect(done, JSON.stringify(done)).toMatchObject({
      type: 'completed',
      plan: { count: PARTITIONS },
    })
    const ended = events.filter((e) => e.type === 'partition_ended') as any[]
    expect(ended.map((e) => e.partition.index).sort((a, b) => a - b)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7,
    ])
    expect(ended.every((e) => e.status === 'completed')).toBe(true)
    // The killed instance's partition was finished by a survivor, resumed from its checkpoint.
    const resumed = ended.find((e) => e.partition.index === victimIndex)
    expect(resumed.instanceId).not.toBe(victimId)
    const firstOfVictim = events.find(
      (e: any) =>
        e.type === 'checkpoint' &&
        e.partition?.index === victimIndex &&
        e.partition.instanceId !== victimId,
    ) as any
    const lastBeforeKill = (events as any[]).filter(
      (e) =>
        e.type === 'checkpoint' &&
        e.partition?.index === victimIndex &&
        e.partition.instanceId === victimId,
    )
    expect(lastBeforeKill.length).toBeGreaterThanOrEqual(2)
    if (firstOfVictim)
      expect(Number(firstOfVictim.context.cursor[0])).toBeGreaterThan(
        Number(lastBeforeKill[0].context.cursor[0]),
      )
    // Every partition ran somewhere; more than one instance took part.
    expect(new Set(ended.map((e) => e.instanceId)).size).toBeGreaterThanOrEqual(2)

    // Nothing lost, nothing twice: PostgreSQL's digest of the target equals the source's.
    const [target, source] = await Promise.all([
      db.query(TABLE_DIGEST(`${schema}.target`)),
      db.query(TABLE_DIGEST(`${schema}.source`)),
    ])
    expect(source.rows[0].n).toBe(ROWS)
    expect(target.rows[0]).toEqual(source.rows[0])

    // No instance ever logged the password.
    for (const run of instances) expect(run.stderr()).not.toContain(SECRET)
    // The survivors are idle: nothing is left on the work queue.
    const after = await jsm.streams.info(naming.workStream!)
    expect(after.state.messages).toBe(0)
  }, 600_000)
})

export type { RunEvent }
