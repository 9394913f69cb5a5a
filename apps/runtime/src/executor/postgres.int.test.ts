// The executor's prepare step and exactly-once appends against a real PostgreSQL: the
// destination is created from the source's described columns, and a crash (abort, with the
// later checkpoints lost) then a resume leaves an append-mode target equal to the source,
// compared by PostgreSQL's own md5 over every row.
import { randomBytes } from 'node:crypto'
import { postgresProvider } from '@nvisy/provider-postgres'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LosingCheckpointStore, runPipeline } from '../__fixtures__/run.js'
import { PG, postgresSkip, TABLE_DIGEST } from '../e2e/__fixtures__/harness.js'
import type { Pipeline } from '../pipeline-types.js'
import type { RunEvent } from './types.js'

const skip = await postgresSkip()
const ROWS = 3000
const schema = `nvisy_exec_${randomBytes(4).toString('hex')}`

describe.skipIf(skip)('executor against PostgreSQL', () => {
  const db = new pg.Pool({ ...PG, max: 2 })
  const world = { provider: postgresProvider }

  beforeAll(async () => {
    await db.query(`CREATE SCHEMA ${schema}`)
    await db.query(`CREATE TABLE ${schema}.source (
      id bigint PRIMARY KEY,
      amount numeric(20,6),
      at timestamptz(6),
      doc jsonb,
      raw bytea,
      note text,
      flags bit varying(16)
    )`)
    await db.query(`INSERT INTO ${schema}.source
      SELECT i, (i * 1234567.123457)::numeric(20,6),
        timestamptz '2024-01-01 00:00:00.123456+00' + i * interval '1.000001 second',
        jsonb_build_object('i', i, 'big', 9007199254740993 + i),
        decode(md5(i::text), 'hex'),
        CASE WHEN i % 7 = 0 THEN NULL ELSE 'row ' || i END,
        (i % 65536)::bit(16)::varbit
      FROM generate_series(1, ${ROWS}) AS i`)
  })

  afterAll(async () => {
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await db.end()
  })

  function node(id: string, role: 'source' | 'sink', stream: Record<string, unknown>) {
    return {
      id,
      role,
      provider: 'postgres',
      connection: {
        params: { host: PG.host, port: PG.port, database: PG.database },
        credentials: { user: PG.user },
      },
      stream: { schema, ...stream },
    }
  }

  function copy(id: string, target: string, extra: Record<string, unknown> = {}): Pipeline {
    return {
      id,
      nodes: [
        node('src', 'source', { table: 'source', pageSize: 250 }),
        {
          ...node('dst', 'sink', { table: target, create: 'ifMissing', ...extra }),
          batch: { maxItems: 100 },
        },
      ],
      edges: [{ from: 'src', to: 'dst' }],
      options: { checkpointEveryItems: 100 },
    } as Pipeline
  }

  it("creates the destination from the source's described columns before reading, and the copy is exact", async () => {
    const { summary, events } = await runPipeline(world, copy(`create-${schema}`, 'created'))
    expect(summary.status, JSON.stringify(summary.error)).toBe('completed')
    const prepared = events.find((e) => e.type === 'prepared') as Extract<
      RunEvent,
      { type: 'prepared' }
    >
    expect(prepared).toMatchObject({ nodeId: 'dst', existed: false })
    expect(prepared.actions.join('\n')).toMatch(/CREATE TABLE/i)
    // prepare comes before the first progress that counts a read item.
    const first = events.findIndex((e) => e.type === 'checkpoint')
    expect(events.indexOf(prepared)).toBeLessThan(first)
    const [source, target] = await Promise.all([
      db.query(TABLE_DIGEST(`${schema}.source`)),
      db.query(TABLE_DIGEST(`${schema}.created`)),
    ])
    expect(target.rows[0]).toEqual(source.rows[0])
    expect(target.rows[0].n).toBe(ROWS)
  })

  it('fails before reading when the target is missing and create is never', async () => {
    const { summary, events } = await runPipeline(
      world,
      copy(`never-${schema}`, 'absent', { create: 'never' }),
    )
    expect(summary.status).toBe('failed')
    expect(summary.error?.kind).toBe('not_found')
    expect(summary.error?.message).toContain('sink node dst')
    expect(summary.stats.nodes.src?.items).toBe(0)
    expect(events.some((e) => e.type === 'checkpoint')).toBe(false)
  })

  it('an append copy crashed mid-run and resumed holds every row exactly once', async () => {
    const pipeline = copy(`append-${schema}`, 'appended', { mode: 'append' })
    const store = new LosingCheckpointStore(2)
    const controller = new AbortController()
    let checkpoints = 0
    const first = await runPipeline(world, pipeline, {
      checkpoints: store,
      signal: controller.signal,
      onEvent: (event) => {
        // Later checkpoints are lost: the sink is ahead of the stored one when the run dies.
        if (event.type === 'checkpoint' && ++checkpoints === 8)
          controller.abort(new Error('killed'))
      },
    })
    expect(first.summary.status).toBe('cancelled')
    const held = (await db.query(`SELECT count(*)::int AS n FROM ${schema}.appended`)).rows[0].n
    const stored = (await store.load(pipeline.id, 'src')) as { cursor: unknown[] }
    expect(held).toBeGreaterThan(Number(stored.cursor[0]))
    expect(held).toBeLessThan(ROWS)

    store.keep = Number.POSITIVE_INFINITY
    const second = await runPipeline(world, pipeline, { checkpoints: store })
    expect(second.summary.status, JSON.stringify(second.summary.error)).toBe('completed')
    expect(second.summary.stats.nodes.src?.items).toBe(ROWS - held)
    const [source, target] = await Promise.all([
      db.query(TABLE_DIGEST(`${schema}.source`)),
      db.query(TABLE_DIGEST(`${schema}.appended`)),
    ])
    expect(target.rows[0]).toEqual(source.rows[0])
  })
})
