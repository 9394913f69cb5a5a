// End to end over the real services: a test client plays the Rust server on NATS (catalog,
// sealed credentials, runs.start, cancel), an in-process runtime runs PostgreSQL -> S3 (rows
// as JSONL blobs) + fs (a JSONL document file), and the client reads the run's events from
// JetStream and its checkpoints from KV, then compares the sinks with the source.
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3'
import { createCurve } from '@nats-io/nkeys'
import {
  CancelReplySchema,
  CheckReplySchema,
  DiscoverReplySchema,
  type Pipeline,
  type RunEvent,
} from '@nvisy/protocol'
import { mapConcurrent, memoryLogger } from '@nvisy/provider-core'
import { fsProvider } from '@nvisy/provider-fs'
import { postgresProvider } from '@nvisy/provider-postgres'
import { s3Provider } from '@nvisy/provider-s3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { executePipeline, type RunStats } from '../executor/index.js'
import { type Dispatcher, startDispatcher } from '../nats/index.js'
import { MapProviderRegistry } from '../registry.js'
import {
  expectValid,
  NATS_URL,
  natsSkip,
  PG,
  postgresSkip,
  S3,
  ServerClient,
  s3Skip,
  TABLE_DIGEST,
  terminal,
  uniqueNaming,
} from './__fixtures__/harness.js'

const skip = (await natsSkip()) || (await postgresSkip()) || (await s3Skip())
// The local Ceph RGW takes about 130 PUTs/s whatever the concurrency: the S3 sink sets the pace.
const ROWS = 2000
const suffix = randomBytes(4).toString('hex')
const schema = `nvisy_e2e_${suffix}`
const bucket = `nvisy-e2e-${suffix}`
const naming = uniqueNaming('pg')

interface SourceRow {
  id: number
  name: string
  amount: string
  created_at: string
  tags: unknown
}

describe.skipIf(skip)('runtime end to end: PostgreSQL -> S3 + fs over NATS', () => {
  let db: pg.Pool
  let s3: S3Client
  let dir: string
  let runtime: Dispatcher
  let server: ServerClient
  const logger = memoryLogger()
  const source = new Map<number, SourceRow>()

  const pgCredentials = { user: PG.user }
  const pgParams = { host: PG.host, port: PG.port, database: PG.database, schema }
  const s3Credentials = { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey }

  function postgresNode(id: string, role: 'source' | 'sink', stream: Record<string, unknown>) {
    return {
      id,
      role,
      provider: 'postgres',
      connection: { params: pgParams, sealedCredentials: server.seal(pgCredentials) },
      stream,
    }
  }

  function copyPipeline(id: string): Pipeline {
    return {
      id,
      nodes: [
        postgresNode('src', 'source', { table: 'items', pageSize: 500 }),
        {
          id: 'objects',
          role: 'sink',
          provider: 's3',
          connection: {
            params: { bucket, endpoint: S3.endpoint, region: S3.region },
            sealedCredentials: server.seal(s3Credentials),
          },
          stream: { prefix: 'items/', concurrency: 16 },
          convert: 'jsonl',
          batch: { maxItems: 250 },
        },
        {
          id: 'files',
          role: 'sink',
          provider: 'fs',
          connection: { params: { root: dir }, sealedCredentials: server.seal({}) },
          stream: { kind: 'document', file: 'items.jsonl' },
          batch: { maxItems: 400 },
        },
      ],
      edges: [
        { from: 'src', to: 'objects' },
        { from: 'src', to: 'files' },
      ],
      options: { checkpointEveryItems: 500, checkpointEverySeconds: 1 },
    }
  }

  /** The JSON content a row becomes (record -> document): numbers for ints, text for numeric/timestamptz, parsed jsonb. */
  function expectRowContent(content: any, where: string) {
    const row = source.get(content.id)
    expect(row, `${where}: id ${content.id} is a source row`).toBeDefined()
    expect(content.name, where).toBe(row!.name)
    expect(content.amount, where).toBe(row!.amount)
    expect(Date.parse(content.created_at), where).toBe(Date.parse(row!.created_at))
    expect(content.tags, where).toEqual(row!.tags)
  }

  beforeAll(async () => {
    db = new pg.Pool({ ...PG, max: 2 })
    await db.query(`CREATE SCHEMA ${schema}`)
    await db.query(`
      CREATE TABLE ${schema}.items (
        id bigint PRIMARY KEY,
        name text NOT NULL,
        amount numeric(12, 3) NOT NULL,
        created_at timestamptz NOT NULL,
        tags jsonb
      )`)
    await db.query(
      `INSERT INTO ${schema}.items
       SELECT g, 'row ' || g || CASE WHEN g % 7 = 0 THEN E' "quoted"\\n, line' ELSE '' END,
              (g * 1.25)::numeric(12, 3), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
              jsonb_build_object('n', g, 'even', g % 2 = 0, 'list', jsonb_build_array(g, 'x'))
       FROM generate_series(1, $1::int) g`,
      [ROWS],
    )
    // The slow run's sink: the same columns, and every insert statement sleeps a little.
    await db.query(`CREATE TABLE ${schema}.slow_copy (LIKE ${schema}.items INCLUDING ALL)`)
    await db.query(`
      CREATE FUNCTION ${schema}.nap() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END $$`)
    await db.query(`
      CREATE TRIGGER nap BEFORE INSERT ON ${schema}.slow_copy
      FOR EACH STATEMENT EXECUTE FUNCTION ${schema}.nap()`)
    const { rows } = await db.query(
      `SELECT id::int, name, amount::text, to_json(created_at)::text AS created_at, tags FROM ${schema}.items`,
    )
    for (const row of rows) source.set(row.id, { ...row, created_at: JSON.parse(row.created_at) })

    s3 = new S3Client({
      region: S3.region,
      endpoint: S3.endpoint,
      forcePathStyle: true,
      credentials: { ...s3Credentials }, // a copy: the SDK tags the object it is given ($source)
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
    await s3.send(new CreateBucketCommand({ Bucket: bucket }))
    dir = await mkdtemp(join(tmpdir(), 'nvisy-e2e-'))

    server = await ServerClient.connect(naming)
    runtime = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([postgresProvider, s3Provider, fsProvider]),
      execute: executePipeline,
      serverPublicKey: server.publicKey,
      logger,
      naming,
      instanceId: 'e2e-runtime',
      executeOptions: { progressIntervalMs: 100, retryBaseDelayMs: 20 },
      localPathRoots: [dir], // fs roots must be allowed (nvisy serve --fs-root)
    })
    await server.catalog()
  })

  afterAll(async () => {
    await runtime?.close()
    await server?.cleanup()
    if (s3) {
      let token: string | undefined
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
        )
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }))
        if (keys.length > 0)
          await s3.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
          )
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {})
      s3.destroy()
    }
    if (dir) await rm(dir, { recursive: true, force: true })
    if (db) {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await db.end()
    }
  })

  it('serves the catalog with the runtime key; check and discover take sealed credentials', async () => {
    const catalog = await server.catalog()
    expect(catalog.runtime).toMatchObject({ id: 'e2e-runtime', publicKey: runtime.publicKey })
    expect(catalog.providers.map((p: any) => p.id).sort()).toEqual(['fs', 'postgres', 's3'])
    const postgres = catalog.providers.find((p: any) => p.id === 'postgres')
    expect(postgres.schemas.credentials.properties.password.secret).toBe(true)

    const check = await server.request(server.subjects.check, {
      provider: 'postgres',
      connection: { params: pgParams, sealedCredentials: server.seal(pgCredentials) },
    })
    expectValid(CheckReplySchema, check, 'check reply')
    const discover = await server.request(server.subjects.discover, {
      provider: 'postgres',
      connection: { params: pgParams, sealedCredentials: server.seal(pgCredentials) },
    })
    expectValid(DiscoverReplySchema, discover, 'discover reply')
    expect(discover.streams.map((s: any) => s.name)).toEqual(
      expect.arrayContaining([`${schema}.items`]),
    )
  })

  it('copies a table to S3 and to a JSONL file: events, checkpoints, every row once', async () => {
    const pipelineId = `pg-s3-fs-${suffix}`
    const accepted = await server.startRun(`run-copy-${suffix}`, copyPipeline(pipelineId))
    expect(accepted).toEqual({
      accepted: true,
      runId: `run-copy-${suffix}`,
      instanceId: 'e2e-runtime',
    })
    const events = await server.runEvents(`run-copy-${suffix}`, { timeoutMs: 90_000 })
    expect(events[0]).toMatchObject({ type: 'started', pipelineId, seq: 0 })
    const done = terminal(events)
    expect(done, JSON.stringify(done)).toMatchObject({ type: 'completed' })
    const stats = (done as Extract<RunEvent, { type: 'completed' }>).stats as unknown as RunStats
    expect(stats.nodes.src).toMatchObject({ items: ROWS, failed: 0 })
    expect(stats.nodes.objects).toMatchObject({ items: ROWS, failed: 0 })
    expect(stats.nodes.files).toMatchObject({ items: ROWS, failed: 0 })
    expect(events.filter((e) => e.type === 'item_failed')).toEqual([])
    const checkpoints = events.filter((e) => e.type === 'checkpoint')
    expect(checkpoints.length).toBeGreaterThan(1)
    // Checkpoints only move forward, and the last is the last row.
    const positions = checkpoints.map((e: any) => Number(e.context.cursor[0]))
    expect(positions).toEqual([...positions].sort((a, b) => a - b))
    expect(positions.at(-1)).toBe(ROWS)
    expect(events.some((e) => e.type === 'progress')).toBe(true)

    const stored = await server.checkpoint(pipelineId, 'src')
    expect(stored).toMatchObject({ runId: `run-copy-${suffix}` })
    expect(postgresProvider.validateContext(stored!.context)).toEqual(checkpoints.at(-1)!.context)
    expect(Number((stored!.context as any).cursor[0])).toBe(ROWS)

    // S3: one object per row, <id>.jsonl, holding the row as one JSON line.
    const keys: string[] = []
    let token: string | undefined
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: 'items/', ContinuationToken: token }),
      )
      for (const o of page.Contents ?? []) keys.push(o.Key!)
      token = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (token)
    expect(keys.length).toBe(ROWS)
    expect(new Set(keys)).toEqual(new Set([...source.keys()].map((id) => `items/${id}.jsonl`)))
    let checked = 0
    await mapConcurrent(keys, 32, async (key) => {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      const text = await object.Body!.transformToString()
      expect(object.ContentType).toBe('application/x-ndjson')
      expect(text.endsWith('\n') && text.indexOf('\n') === text.length - 1, key).toBe(true)
      const content = JSON.parse(text)
      expect(`items/${content.id}.jsonl`).toBe(key)
      expectRowContent(content, key)
      checked++
    })
    expect(checked).toBe(ROWS)

    // fs: one line per row, every id once.
    const lines = (await readFile(join(dir, 'items.jsonl'), 'utf8')).split('\n').filter(Boolean)
    expect(lines.length).toBe(ROWS)
    const ids = lines.map((line, i) => {
      const content = JSON.parse(line)
      expectRowContent(content, `items.jsonl:${i + 1}`)
      return content.id
    })
    expect(new Set(ids).size).toBe(ROWS)

    // Run again: it resumes after the last row and writes nothing.
    await server.startRun(`run-copy-again-${suffix}`, copyPipeline(pipelineId))
    const again = await server.runEvents(`run-copy-again-${suffix}`)
    expect(terminal(again)).toMatchObject({
      type: 'completed',
      stats: { nodes: { src: { items: 0 }, objects: { items: 0 }, files: { items: 0 } } },
    })
  }, 150_000)

  it('cancels a slow run: a cancelled event, a valid checkpoint, and a resume that completes', async () => {
    const pipelineId = `pg-slow-${suffix}`
    const pipeline: Pipeline = {
      id: pipelineId,
      nodes: [
        postgresNode('src', 'source', { table: 'items', pageSize: 100 }),
        { ...postgresNode('dst', 'sink', { table: 'slow_copy' }), batch: { maxItems: 20 } },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 100, checkpointEverySeconds: 0.2 },
    }
    const runId = `run-slow-${suffix}`
    await server.startRun(runId, pipeline)
    // Wait until it has checkpointed once, then cancel it.
    await server.runEvents(runId, { until: (e) => e.type === 'checkpoint', timeoutMs: 20_000 })
    const reply = await server.request(server.subjects.runCancel(runId), {
      reason: 'stopped by the e2e test',
    })
    expectValid(CancelReplySchema, reply, 'cancel reply')
    const events = await server.runEvents(runId)
    const cancelled = terminal(events) as Extract<RunEvent, { type: 'cancelled' }>
    expect(cancelled).toMatchObject({ type: 'cancelled', reason: 'stopped by the e2e test' })

    const stored = await server.checkpoint(pipelineId, 'src')
    expect(stored?.runId).toBe(runId)
    const context = postgresProvider.validateContext(stored!.context) as { cursor: unknown[] }
    expect(cancelled.checkpoints.src).toEqual(stored!.context)
    const at = Number(context.cursor[0])
    expect(at).toBeGreaterThan(0)
    expect(at).toBeLessThan(ROWS)
    // Everything up to the checkpoint is in the sink.
    const { rows } = await db.query(
      `SELECT count(*)::int AS n FROM ${schema}.slow_copy WHERE id <= $1`,
      [at],
    )
    expect(rows[0].n).toBe(at)

    // A new run of the pipeline goes on after the sink's offset (committed with each batch, at
    // least as far as the checkpoint) and completes the copy: it reads exactly the missing rows.
    const held = (await db.query(`SELECT count(*)::int AS n FROM ${schema}.slow_copy`)).rows[0]
      .n as number
    expect(held).toBeGreaterThanOrEqual(at)
    await server.startRun(`${runId}-resumed`, pipeline)
    const resumed = await server.runEvents(`${runId}-resumed`)
    expect(terminal(resumed)).toMatchObject({
      type: 'completed',
      stats: { nodes: { src: { items: ROWS - held } } },
    })
    const [copy, original] = await Promise.all([
      db.query(TABLE_DIGEST(`${schema}.slow_copy`)),
      db.query(TABLE_DIGEST(`${schema}.items`)),
    ])
    expect(copy.rows[0]).toEqual(original.rows[0])
  })

  it('answers malformed messages with error replies naming the path', async () => {
    const { subjects } = server
    const notJson = await server.requestError(subjects.runsStart, '{"runId": "x", "pipeline"')
    expect(notJson).toMatchObject({ kind: 'validation', issues: [{ path: '/', rule: 'json' }] })

    const noPipeline = await server.requestError(subjects.runsStart, { runId: 'r1' })
    expect(noPipeline.issues).toContainEqual(
      expect.objectContaining({ path: '/pipeline', rule: 'required' }),
    )

    const badId = await server.requestError(subjects.runsStart, {
      runId: 'has spaces',
      pipeline: copyPipeline('ok'),
    })
    expect(badId.issues).toContainEqual(expect.objectContaining({ path: '/runId' }))

    const badTable = copyPipeline('bad-table')
    badTable.nodes[0]!.stream = { table: 5 }
    const badTableError = await server.requestError(subjects.runsStart, {
      runId: 'r-bad-table',
      pipeline: badTable,
    })
    expect(badTableError.kind).toBe('validation')
    expect(badTableError.issues).toContainEqual(
      expect.objectContaining({ path: '/pipeline/nodes/0/stream/table', rule: 'type' }),
    )

    const badConvert = copyPipeline('bad-convert') as any
    badConvert.nodes[1].convert = 'xml'
    const badConvertError = await server.requestError(subjects.runsStart, {
      runId: 'r-bad-convert',
      pipeline: badConvert,
    })
    expect(badConvertError.issues.map((i: any) => i.path)).toContain('/pipeline/nodes/1/convert')

    const badEdge = copyPipeline('bad-edge')
    badEdge.edges.push({ from: 'objects', to: 'files' })
    const badEdgeError = await server.requestError(subjects.runsStart, {
      runId: 'r-bad-edge',
      pipeline: badEdge,
    })
    expect(badEdgeError.issues.map((i: any) => i.path)).toContain('/pipeline/edges/2/from')

    const badPort = await server.requestError(subjects.check, {
      provider: 'postgres',
      connection: {
        params: { ...pgParams, port: 'five' },
        sealedCredentials: server.seal(pgCredentials),
      },
    })
    expect(badPort.kind).toBe('config')
    expect(badPort.issues).toContainEqual(
      expect.objectContaining({ path: '/connection/params/port', rule: 'type' }),
    )

    const forged = await server.requestError(subjects.check, {
      provider: 'postgres',
      connection: {
        params: pgParams,
        sealedCredentials: server.seal(pgCredentials, createCurve()),
      },
    })
    expect(forged.kind).toBe('auth')

    const plain = await server.requestError(subjects.check, {
      provider: 'postgres',
      connection: { params: pgParams, credentials: pgCredentials },
    })
    expect(plain.issues).toContainEqual(
      expect.objectContaining({ path: '/connection/credentials', rule: 'sealed' }),
    )

    // The runtime is still serving.
    expect((await server.catalog()).runtime.id).toBe('e2e-runtime')
    expect(runtime.activeRuns()).toEqual([])
  })
})
