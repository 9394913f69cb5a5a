// Two runtime instances in one queue group (one seed, so one public key): a child process
// running the built dispatcher, and one in this process. They share runs; the child is
// killed (SIGKILL) in the middle of a PostgreSQL -> PostgreSQL copy, and the same pipeline
// started again (a new run id) lands on the survivor, resumes from the KV checkpoint and
// finishes with every row once: count and md5 equal to the source's.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCurve } from '@nats-io/nkeys'
import type { Pipeline, RunEvent } from '@nvisy/protocol'
import { postgresProvider } from '@nvisy/provider-postgres'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executePipeline } from '../executor/index.js'
import { type Dispatcher, startDispatcher } from '../nats/index.js'
import { MapProviderRegistry } from '../registry.js'
import {
  buildRuntimeDist,
  NATS_URL,
  natsSkip,
  PG,
  postgresSkip,
  ServerClient,
  sleep,
  TABLE_DIGEST,
  terminal,
  uniqueNaming,
} from './__fixtures__/harness.js'

const skip = (await natsSkip()) || (await postgresSkip())
const here = dirname(fileURLToPath(import.meta.url))
const ROWS = 6000
const TINY = 5
const suffix = randomBytes(4).toString('hex')
const schema = `nvisy_failover_${suffix}`
const naming = uniqueNaming('fo')
const decoder = new TextDecoder()

/** Start the built runtime in a child process and wait for its ready line. */
async function spawnRuntime(settings: Record<string, unknown>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(here, '__fixtures__', 'runtime-child.mjs')], {
    env: { ...process.env, NVISY_E2E_CHILD: JSON.stringify(settings) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (chunk) => {
    stderr += chunk
  })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`child not ready in 30 s: ${stderr}`)), 30_000)
    child.stdout!.on('data', (chunk) => {
      out += chunk
      if (out.includes('"ready":true')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`child exited with ${code} before it was ready: ${stderr}`))
    })
  })
  return child
}

describe.skipIf(skip)('two runtime instances in one queue group, one killed mid-run', () => {
  let db: pg.Pool
  let server: ServerClient
  let child: ChildProcess | undefined
  let local: Dispatcher | undefined
  const runtimeSeed = decoder.decode(createCurve().getSeed())
  const pgParams = { host: PG.host, port: PG.port, database: PG.database, schema }

  function node(id: string, role: 'source' | 'sink', stream: Record<string, unknown>) {
    return {
      id,
      role,
      provider: 'postgres',
      connection: { params: pgParams, sealedCredentials: server.seal({ user: PG.user }) },
      stream,
    }
  }

  function copy(id: string, from: string, to: string, maxItems: number): Pipeline {
    return {
      id,
      nodes: [
        node('src', 'source', { table: from, pageSize: 200 }),
        { ...node('dst', 'sink', { table: to, mode: 'upsert' }), batch: { maxItems } },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 200, checkpointEverySeconds: 0.2 },
    }
  }

  beforeAll(async () => {
    await buildRuntimeDist()

    db = new pg.Pool({ ...PG, max: 2 })
    await db.query(`CREATE SCHEMA ${schema}`)
    await db.query(`
      CREATE TABLE ${schema}.source (
        id bigint PRIMARY KEY, name text NOT NULL, amount numeric(14, 2), at timestamptz, doc jsonb
      )`)
    await db.query(
      `INSERT INTO ${schema}.source
       SELECT g, md5(g::text), g * 3.5, timestamptz '2024-05-01 12:00:00.123456+00' + g * interval '1 second',
              jsonb_build_object('g', g)
       FROM generate_series(1, $1::int) g`,
      [ROWS],
    )
    await db.query(`CREATE TABLE ${schema}.target (LIKE ${schema}.source INCLUDING ALL)`)
    // Slow the target down so the kill lands mid-run: every insert statement naps.
    await db.query(`
      CREATE FUNCTION ${schema}.nap() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_sleep(0.03); RETURN NULL; END $$`)
    await db.query(`
      CREATE TRIGGER nap BEFORE INSERT ON ${schema}.target
      FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.nap()`)
    await db.query(
      `CREATE TABLE ${schema}.tiny AS SELECT * FROM ${schema}.source WHERE id <= ${TINY}`,
    )
    await db.query(`ALTER TABLE ${schema}.tiny ADD PRIMARY KEY (id)`)
    await db.query(`CREATE TABLE ${schema}.tiny_copy (LIKE ${schema}.source INCLUDING ALL)`)

    server = await ServerClient.connect(naming)
  }, 300_000)

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await local?.close()
    await server?.cleanup()
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await db.end()
    }
  })

  it('shares runs, survives a SIGKILL mid-run, and resumes on the other instance exactly', async () => {
    const settings = {
      servers: NATS_URL,
      serverPublicKey: server.publicKey,
      runtimeSeed,
      naming,
    }
    child = await spawnRuntime({ ...settings, instanceId: 'child-a' })
    const catalog = await server.catalog()
    expect(catalog.runtime.id).toBe('child-a')

    // The long copy lands on the child: it is the only instance yet.
    const pipelineId = `failover-${suffix}`
    const long = copy(pipelineId, 'source', 'target', 25)
    const first = await server.startRun(`run-a-${suffix}`, long)
    expect(first.instanceId).toBe('child-a')

    local = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([postgresProvider]),
      execute: executePipeline,
      serverPublicKey: server.publicKey,
      runtimeSeed,
      naming,
      instanceId: 'local-b',
      executeOptions: { progressIntervalMs: 100 },
    })
    expect(local.publicKey).toBe(catalog.runtime.publicKey)

    // Both instances take runs from the queue group, with credentials sealed to the one key.
    const instances = new Set<string>()
    for (let i = 0; i < 12; i++) {
      const reply = await server.startRun(
        `run-tiny-${i}-${suffix}`,
        copy(`tiny-${i}-${suffix}`, 'tiny', 'tiny_copy', 10),
      )
      instances.add(reply.instanceId)
    }
    expect([...instances].sort()).toEqual(['child-a', 'local-b'])
    for (let i = 0; i < 12; i++) {
      const events = await server.runEvents(`run-tiny-${i}-${suffix}`)
      expect(terminal(events)).toMatchObject({
        type: 'completed',
        stats: { nodes: { src: { items: TINY }, dst: { items: TINY } } },
      })
    }

    // Kill the child once the long run has checkpointed a few times.
    const seen = await server.runEvents(`run-a-${suffix}`, {
      until: (e) => e.type === 'checkpoint' && Number((e.context as any).cursor[0]) >= 1000,
      timeoutMs: 60_000,
    })
    expect(seen.at(-1)?.type, 'the long run was still going').toBe('checkpoint')
    const exited = new Promise((resolve) => child!.once('exit', (_code, signal) => resolve(signal)))
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')

    const killed = await server.checkpoint(pipelineId, 'src')
    expect(killed?.runId).toBe(`run-a-${suffix}`)
    const at = Number((killed!.context as any).cursor[0])
    expect(at).toBeGreaterThanOrEqual(1000)
    expect(at).toBeLessThan(ROWS)
    // The first run never finished: its events stop without a terminal one.
    const stream = await server.js.consumers.get(naming.eventsStream, {
      filter_subjects: server.subjects.runEvents(`run-a-${suffix}`),
    })
    const info = await stream.info()
    const allFirst: RunEvent[] = []
    for (let i = 0; i < info.num_pending; i++) {
      const message = await stream.next({ expires: 2000 })
      if (message) allFirst.push(message.json<RunEvent>())
    }
    expect(allFirst.map((e) => e.type)).not.toContain('completed')
    expect(allFirst.map((e) => e.type)).not.toContain('cancelled')
    // Rows past the checkpoint may have been written before the kill, with the sink's offset.
    const before = await db.query(`SELECT count(*)::int AS n FROM ${schema}.target`)
    expect(before.rows[0].n).toBeGreaterThanOrEqual(at)
    expect(before.rows[0].n).toBeLessThan(ROWS)

    // The same pipeline, a new run id: only the local instance is left to take it.
    let second: Awaited<ReturnType<ServerClient['startRun']>> | undefined
    for (let attempt = 0; !second; attempt++) {
      try {
        second = await server.startRun(`run-b-${suffix}`, copy(pipelineId, 'source', 'target', 500))
      } catch (error) {
        // The server may route one request to the dead subscription before it notices.
        if (attempt >= 3) throw error
        await sleep(500)
      }
    }
    expect(second.instanceId).toBe('local-b')
    const events = await server.runEvents(`run-b-${suffix}`, { timeoutMs: 90_000 })
    const done = terminal(events)
    // The sink's offset (committed with each batch) is past the checkpoint: the resumed run
    // reads exactly the rows the target lacks.
    const held = before.rows[0].n as number
    expect(done, JSON.stringify(done)).toMatchObject({
      type: 'completed',
      stats: { nodes: { src: { items: ROWS - held }, dst: { items: ROWS - held, failed: 0 } } },
    })
    const final = await server.checkpoint(pipelineId, 'src')
    expect(final?.runId).toBe(`run-b-${suffix}`)
    expect(Number((final!.context as any).cursor[0])).toBe(ROWS)

    // Nothing lost, nothing twice: the target equals the source.
    const [target, source] = await Promise.all([
      db.query(TABLE_DIGEST(`${schema}.target`)),
      db.query(TABLE_DIGEST(`${schema}.source`)),
    ])
    expect(target.rows[0]).toEqual({ n: ROWS, md5: source.rows[0].md5 })
    const tiny = await db.query(TABLE_DIGEST(`${schema}.tiny_copy`))
    const tinySource = await db.query(TABLE_DIGEST(`${schema}.tiny`))
    expect(tiny.rows[0]).toEqual(tinySource.rows[0])
  }, 180_000)
})
