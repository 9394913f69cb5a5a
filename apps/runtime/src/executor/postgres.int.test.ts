// The executor's prepare step and exactly-once appends against a real PostgreSQL: the
// destination is created from the source's described columns, and a crash (abort, with the
// later checkpoints lost) then a resume leaves an append-mode target equal to the source,
// compared by PostgreSQL's own md5 over every row. Copies between tables of the same column
// types pass the COPY text through (no value decoded; an upsert through a staging table):
// exact, resumable from the middle of a row-by-row batch, and a row the destination refuses
// fails alone, dead-lettered as a record.
import { randomBytes } from 'node:crypto'
import { memoryLogger } from '@nvisy/provider-core'
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

  const digest = (table: string, where = 'true') =>
    db
      .query(
        `SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY id), '')) AS md5 FROM ${schema}.${table} t WHERE ${where}`,
      )
      .then((r) => r.rows[0] as { n: number; md5: string })
  const passedThrough = (logger: ReturnType<typeof memoryLogger>) =>
    logger.lines.some((l) => /pass through as postgresql-copy-text/.test(l.message ?? ''))
  const whyNot = (logger: ReturnType<typeof memoryLogger>) =>
    logger.lines.find((l) => /no pass-through|batches by column/.test(l.message ?? ''))?.message
  const byColumn = (logger: ReturnType<typeof memoryLogger>) =>
    logger.lines.some((l) => /travel in batches by column \(nvisy-columns\)/.test(l.message ?? ''))

  it('an append between tables of the same types passes the rows through as COPY text, exact by md5', async () => {
    const logger = memoryLogger()
    const { summary } = await runPipeline(
      world,
      copy(`wire-${schema}`, 'wire', { mode: 'append' }),
      { logger },
    )
    expect(summary.status, JSON.stringify(summary.error)).toBe('completed')
    expect(passedThrough(logger), whyNot(logger)).toBe(true)
    // Progress counts rows, not pass-through items.
    expect(summary.stats.nodes.src?.items).toBe(ROWS)
    expect(summary.stats.nodes.dst?.items).toBe(ROWS)
    expect(await digest('wire')).toEqual(await digest('source'))
  })

  it('checkpoints a pass-through run by rows, not once per batch item', async () => {
    const pipeline = copy(`wire-cadence-${schema}`, 'wire_cadence', { mode: 'append' })
    const { summary, events } = await runPipeline(world, {
      ...pipeline,
      options: { checkpointEveryItems: 1000 },
    })
    expect(summary.status, JSON.stringify(summary.error)).toBe('completed')
    // 3000 rows in batches of 100 rows, a checkpoint every 1000 rows: about 3, not 30.
    const saves = events.filter((e) => e.type === 'checkpoint').length
    expect(saves).toBeGreaterThanOrEqual(2)
    expect(saves).toBeLessThanOrEqual(5)
  })

  it('an upsert passes COPY text through a staging table: rows already there are updated, others kept, exact by md5', async () => {
    await db.query(`CREATE TABLE ${schema}.wire_merge (LIKE ${schema}.source INCLUDING ALL)`)
    // Every tenth source row is there already with other values, and rows the source lacks.
    await db.query(`INSERT INTO ${schema}.wire_merge (id, amount, note)
      SELECT i, -1, 'stale' FROM generate_series(10, ${ROWS}, 10) AS i
      UNION ALL SELECT ${ROWS} + i, 42, 'kept' FROM generate_series(1, 50) AS i`)
    const logger = memoryLogger()
    const { summary } = await runPipeline(
      world,
      copy(`wire-merge-${schema}`, 'wire_merge', { mode: 'upsert' }),
      { logger },
    )
    expect(summary.status, JSON.stringify(summary.error)).toBe('completed')
    expect(passedThrough(logger), whyNot(logger)).toBe(true)
    expect(summary.stats.nodes.dst?.items).toBe(ROWS)
    expect(await digest('wire_merge', `id <= ${ROWS}`)).toEqual(await digest('source'))
    const kept = await db.query(
      `SELECT count(*)::int AS n FROM ${schema}.wire_merge WHERE id > ${ROWS} AND amount = 42 AND note = 'kept'`,
    )
    expect(kept.rows[0].n).toBe(50)
    // Nothing of the staging table is left in the session for the next batch or user.
    const staged = await db.query(
      "SELECT count(*)::int AS n FROM pg_class WHERE relname = 'nvisy_upsert_stage' AND relpersistence = 't'",
    )
    expect(staged.rows[0].n).toBe(0)
  })

  it('an upsert stages columns of enum, domain, array and bounded types under hostile names, exact by md5', async () => {
    await db.query(`CREATE TYPE ${schema}."mo""od" AS ENUM ('sad', 'ok', 'happy')`)
    await db.query(`CREATE DOMAIN ${schema}.positive AS numeric(12,2) CHECK (VALUE > 0)`)
    const columns = `"id ""key""" bigint PRIMARY KEY, "Mood; DROP TABLE x" ${schema}."mo""od",
      price ${schema}.positive, tags varchar(5)[], code varchar(5), "at" timestamptz(3)`
    await db.query(`CREATE TABLE ${schema}."odd src" (${columns})`)
    await db.query(`CREATE TABLE ${schema}."odd ""dst""" (${columns})`)
    await db.query(`INSERT INTO ${schema}."odd src"
      SELECT i, (ARRAY['sad','ok','happy'])[1 + i % 3]::${schema}."mo""od", i / 100.0 + 0.01,
        ARRAY['a' || i % 10, NULL], 'c' || i % 1000, timestamptz '2024-01-01Z' + i * interval '1.001 second'
      FROM generate_series(1, 700) AS i`)
    // A third of the keys are there already, with other values.
    await db.query(`INSERT INTO ${schema}."odd ""dst"""
      SELECT "id ""key""", 'sad', 1, NULL, 'stale', NULL FROM ${schema}."odd src" WHERE "id ""key""" % 3 = 0`)
    const logger = memoryLogger()
    const { summary } = await runPipeline(
      world,
      {
        id: `odd-${schema}`,
        nodes: [
          node('src', 'source', { table: 'odd src', pageSize: 250 }),
          {
            ...node('dst', 'sink', { table: 'odd "dst"', mode: 'upsert' }),
            batch: { maxItems: 300 },
          },
        ],
        edges: [{ from: 'src', to: 'dst' }],
      } as Pipeline,
      { logger },
    )
    expect(summary.status, JSON.stringify(summary.error)).toBe('completed')
    expect(passedThrough(logger), whyNot(logger)).toBe(true)
    const sum = (table: string) =>
      db
        .query(
          `SELECT count(*)::int AS n, md5(string_agg(t::text, ',' ORDER BY t."id ""key""")) AS md5 FROM ${schema}.${table} t`,
        )
        .then((r) => r.rows[0])
    expect(await sum(`"odd ""dst"""`)).toEqual(await sum(`"odd src"`))
  })

  it('an upsert passed through with keys repeated in a batch keeps the last row of each key, as row by row does', async () => {
    await db.query(
      `CREATE TABLE ${schema}.repeats (id bigint PRIMARY KEY, k int NOT NULL, note text)`,
    )
    await db.query(
      `INSERT INTO ${schema}.repeats SELECT i, i % 37, 'row ' || i FROM generate_series(1, 1000) AS i`,
    )
    const target = (name: string) =>
      db.query(`CREATE TABLE ${schema}.${name} (id bigint, k int PRIMARY KEY, note text)`)
    await target('repeats_text')
    await target('repeats_rows')
    const run = async (into: string, options: Record<string, unknown>) => {
      const logger = memoryLogger()
      const { summary } = await runPipeline(
        world,
        {
          id: `repeats-${into}-${schema}`,
          nodes: [
            node('src', 'source', { table: 'repeats', pageSize: 250 }),
            {
              ...node('dst', 'sink', { table: into, mode: 'upsert', keys: ['k'] }),
              batch: { maxItems: 100 },
            },
          ],
          edges: [{ from: 'src', to: 'dst' }],
          options,
        } as Pipeline,
        { logger },
      )
      expect(summary.status, JSON.stringify(summary.error)).toBe('completed')
      return logger
    }
    expect(passedThrough(await run('repeats_text', {}))).toBe(true)
    expect(passedThrough(await run('repeats_rows', { passThrough: false }))).toBe(false)
    const keyed = (table: string) =>
      db
        .query(
          `SELECT count(*)::int AS n, md5(string_agg(t::text, ',' ORDER BY k)) AS md5 FROM ${schema}.${table} t`,
        )
        .then((r) => r.rows[0])
    const last = await db.query(
      `SELECT count(*)::int AS n, md5(string_agg(t::text, ',' ORDER BY k)) AS md5 FROM (SELECT DISTINCT ON (k) id, k, note FROM ${schema}.repeats ORDER BY k, id DESC) t`,
    )
    expect(await keyed('repeats_text')).toEqual(last.rows[0])
    expect(await keyed('repeats_rows')).toEqual(last.rows[0])
  })

  it('passThrough: false decodes every row; a column of another type is not passed through as text, says why, and goes by column', async () => {
    const off = memoryLogger()
    const first = await runPipeline(
      world,
      {
        ...copy(`wire-off-${schema}`, 'wire_off', { mode: 'append' }),
        options: { passThrough: false },
      },
      { logger: off },
    )
    expect(first.summary.status, JSON.stringify(first.summary.error)).toBe('completed')
    expect(passedThrough(off)).toBe(false)
    expect(byColumn(off)).toBe(false)
    expect(await digest('wire_off')).toEqual(await digest('source'))

    // An upsert keyed by a column the source does not offer cannot be staged: by column.
    await db.query(
      `CREATE TABLE ${schema}.wire_keyed (LIKE ${schema}.source, tag text DEFAULT 'x')`,
    )
    await db.query(`ALTER TABLE ${schema}.wire_keyed ADD UNIQUE (id, tag)`)
    const keyed = memoryLogger()
    const upserted = await runPipeline(
      world,
      copy(`wire-keyed-${schema}`, 'wire_keyed', { mode: 'upsert', keys: ['id', 'tag'] }),
      { logger: keyed },
    )
    expect(upserted.summary.status, JSON.stringify(upserted.summary.error)).toBe('completed')
    expect(passedThrough(keyed)).toBe(false)
    expect(byColumn(keyed)).toBe(true)
    expect(whyNot(keyed)).toContain('the conflict key "tag" is not among the offered columns')

    await db.query(`CREATE TABLE ${schema}.wider (LIKE ${schema}.source)`)
    await db.query(`ALTER TABLE ${schema}.wider ALTER COLUMN amount TYPE numeric(30,10)`)
    const wider = memoryLogger()
    const run = await runPipeline(
      world,
      copy(`wire-wider-${schema}`, 'wider', { mode: 'append' }),
      {
        logger: wider,
      },
    )
    expect(run.summary.status, JSON.stringify(run.summary.error)).toBe('completed')
    expect(passedThrough(wider)).toBe(false)
    expect(byColumn(wider)).toBe(true)
    expect(whyNot(wider)).toContain(
      '"amount" is numeric(30,10) in the destination and numeric(20,6) in the source',
    )
    // Decoded and encoded value by value instead: every amount arrives exactly.
    const differ = await db.query(
      `SELECT count(*)::int AS n FROM ${schema}.source s JOIN ${schema}.wider w USING (id) WHERE s.amount IS DISTINCT FROM w.amount`,
    )
    expect(differ.rows[0].n).toBe(0)
  })

  it('a pass-through run resumes from the middle of a row-by-row batch, exact by md5', async () => {
    // The first run decodes rows in batches of 7 and dies; the sink's offset is at a row no
    // pass-through item of 100 rows would end on. The second run passes rows through from there.
    const pipeline = copy(`wire-resume-${schema}`, 'wire_resume', { mode: 'append' })
    const sink = pipeline.nodes[1]!
    const store = new LosingCheckpointStore(1)
    const controller = new AbortController()
    let checkpoints = 0
    const first = await runPipeline(
      world,
      {
        ...pipeline,
        nodes: [pipeline.nodes[0]!, { ...sink, batch: { maxItems: 7 } }],
        options: { checkpointEveryItems: 7, passThrough: false },
      },
      {
        checkpoints: store,
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'checkpoint' && ++checkpoints === 23)
            controller.abort(new Error('killed'))
        },
      },
    )
    expect(first.summary.status).toBe('cancelled')
    const held = (await digest('wire_resume')).n
    expect(held % 100).not.toBe(0)
    expect(held).toBeLessThan(ROWS)

    store.keep = Number.POSITIVE_INFINITY
    const logger = memoryLogger()
    const second = await runPipeline(world, pipeline, { checkpoints: store, logger })
    expect(second.summary.status, JSON.stringify(second.summary.error)).toBe('completed')
    expect(passedThrough(logger), whyNot(logger)).toBe(true)
    expect(second.summary.stats.nodes.src?.items).toBe(ROWS - held)
    expect(await digest('wire_resume')).toEqual(await digest('source'))
  })

  it.each([
    'append',
    'upsert',
  ] as const)('%s: a row the destination refuses fails alone: the rest commit, and the row is dead-lettered as a decoded record', async (mode) => {
    const checked = `checked_${mode}`
    const refused = `refused_${mode}`
    await db.query(`CREATE TABLE ${schema}.${checked} (LIKE ${schema}.source INCLUDING ALL)`)
    await db.query(
      `ALTER TABLE ${schema}.${checked} ADD CONSTRAINT no_five_hundreds CHECK (id % 500 <> 0)`,
    )
    await db.query(`CREATE TABLE ${schema}.${refused} (LIKE ${schema}.source INCLUDING ALL)`)
    const pipeline = copy(`wire-refused-${mode}-${schema}`, checked, { mode })
    const sink = pipeline.nodes[1]!
    const logger = memoryLogger()
    const { summary, events } = await runPipeline(
      world,
      {
        ...pipeline,
        nodes: [
          pipeline.nodes[0]!,
          { ...sink, deadLetter: 'dead' },
          node('dead', 'sink', { table: refused, mode: 'upsert' }),
        ],
      } as Pipeline,
      { logger },
    )
    expect(summary.status, JSON.stringify(summary.error)).toBe('completed')
    expect(passedThrough(logger), whyNot(logger)).toBe(true)
    const refusedIds = Array.from({ length: ROWS / 500 }, (_, i) => (i + 1) * 500)
    const failures = events.filter((e) => e.type === 'item_failed') as Extract<
      RunEvent,
      { type: 'item_failed' }
    >[]
    expect(failures).toHaveLength(refusedIds.length)
    for (const failure of failures) {
      expect(failure.item).toBe('record')
      expect(failure.error.kind).toBe('data')
      expect(failure.error.message).toContain('no_five_hundreds')
    }
    expect(summary.stats).toMatchObject({
      failedItems: refusedIds.length,
      deadLettered: refusedIds.length,
    })
    expect(summary.stats.nodes.dst?.items).toBe(ROWS - refusedIds.length)
    expect(await digest(checked)).toEqual(await digest('source', 'id % 500 <> 0'))
    // The refused rows, decoded from the COPY text, arrive at the dead-letter table exactly.
    expect(await digest(refused)).toEqual(await digest('source', 'id % 500 = 0'))
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
